//! What the user agent answers by itself, and robustness against garbage.

use std::time::Instant;

use super::*;

const PEER: &str = "192.0.2.77:5060";

fn out_of_dialog(method: &str, branch: &str, to_tag: Option<&str>) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:alice@{ALICE} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {PEER};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:carol@example.org>;tag=c1\r\n\
         To: <sip:alice@example.com>{to_tag}\r\n\
         Call-ID: {branch}@example.org\r\n\
         CSeq: 7 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Sends `bytes` from PEER and returns the one response.
fn ask(ua: &mut UserAgent, bytes: &[u8]) -> Response {
    ua.handle_datagram(bytes, Transport::Udp, addr(PEER), Instant::now());
    let sent = only(transmits(ua));
    assert_eq!(sent.destination, addr(PEER));
    response(&sent)
}

fn code(r: &Response) -> u16 {
    r.status_code.code()
}

#[test]
fn options_is_answered_with_capabilities() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "pw")]);
    let r = ask(&mut ua, &out_of_dialog("OPTIONS", "opt1", None));
    assert_eq!(code(&r), 200);
    let allow = header(&r.headers, "Allow");
    for method in ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "MESSAGE"] {
        assert!(allow.contains(method), "{method} in Allow: {allow}");
    }
    assert_eq!(header(&r.headers, "Accept"), "application/sdp");
    assert_eq!(header(&r.headers, "Supported"), "timer");
    assert!(
        headers::to(&r.headers).expect("To").tag().is_some(),
        "To tag added"
    );
    assert_eq!(header(&r.headers, "CSeq"), "7 OPTIONS");
    let via = headers::top_via(&r.headers).expect("Via");
    assert_eq!(via.rport(), Some(Some(5060)), "Via stamped");
    assert!(events(&mut ua).is_empty());
}

#[test]
fn unsupported_methods_get_405_with_allow() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "pw")]);
    for (i, method) in ["SUBSCRIBE", "PUBLISH", "REGISTER", "PRACK"]
        .iter()
        .enumerate()
    {
        let r = ask(&mut ua, &out_of_dialog(method, &format!("m405x{i}"), None));
        assert_eq!(code(&r), 405, "{method}");
        assert!(header(&r.headers, "Allow").contains("INVITE"));
    }
}

#[test]
fn requests_for_unknown_dialogs_get_481() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "pw")]);
    let r = ask(&mut ua, &out_of_dialog("BYE", "bye1", Some("gone")));
    assert_eq!(code(&r), 481);
    let r = ask(&mut ua, &out_of_dialog("BYE", "bye2", None));
    assert_eq!(code(&r), 481, "out-of-dialog BYE");
    let r = ask(&mut ua, &out_of_dialog("INFO", "info1", Some("gone")));
    assert_eq!(code(&r), 481);
    let r = ask(&mut ua, &out_of_dialog("INVITE", "reinv1", Some("gone")));
    assert_eq!(code(&r), 481, "re-INVITE for no dialog");
    let r = ask(&mut ua, &out_of_dialog("CANCEL", "nothing", None));
    assert_eq!(code(&r), 481, "CANCEL matching no INVITE");
}

#[test]
fn a_retransmitted_request_is_answered_from_the_transaction() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "pw")]);
    let first = ask(&mut ua, &out_of_dialog("OPTIONS", "same", None));
    let again = ask(&mut ua, &out_of_dialog("OPTIONS", "same", None));
    assert_eq!(first, again, "the same response, same To tag");
}

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn garbage_never_stops_the_agent() {
    let mut ua = agent(ALICE, vec![account(1, "alice", "pw")]);
    let now = Instant::now();
    let valid = out_of_dialog("OPTIONS", "template", None);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut answered = 0;
    for i in 0..10_000 {
        let bytes: Vec<u8> = match i % 3 {
            0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            1 => valid[..rng.below(valid.len())].to_vec(),
            _ => {
                let mut v = valid.clone();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(v.len());
                    v[at] = rng.next() as u8;
                }
                v
            }
        };
        ua.handle_datagram(&bytes, Transport::Udp, addr(PEER), now);
        for t in transmits(&mut ua) {
            // Whatever garbage provokes is a response to its source, and
            // never a 2xx to something unreadable. (Not parsed: a 400
            // echoes the request's header values, garbage included.)
            assert_eq!(t.destination, addr(PEER));
            let text = String::from_utf8_lossy(&t.bytes);
            let status: u16 = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|rest| rest.get(..3))
                .and_then(|code| code.parse().ok())
                .unwrap_or_else(|| panic!("not a response: {text}"));
            assert!(status == 200 || status >= 400, "{text}");
            answered += 1;
        }
    }
    assert!(answered > 0, "some mangled requests deserved an answer");
    events(&mut ua);

    // A request that is readable enough to answer but invalid: 400 with
    // its Via, CSeq and Call-ID.
    let broken = String::from_utf8(out_of_dialog("OPTIONS", "broken", None))
        .expect("ascii")
        .replace("CSeq: 7 OPTIONS", "CSeq: 7 INVITE");
    let r = ask(&mut ua, broken.as_bytes());
    assert_eq!(code(&r), 400);
    assert_eq!(
        headers::top_via(&r.headers).expect("Via").branch(),
        Some("z9hG4bKbroken")
    );
    assert_eq!(header(&r.headers, "CSeq"), "7 INVITE");
    assert_eq!(header(&r.headers, "Call-ID"), "broken@example.org");
    assert!(headers::to(&r.headers).expect("To").tag().is_some());

    // A broken response is dropped silently.
    let bad_response = b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n";
    ua.handle_datagram(bad_response, Transport::Udp, addr(PEER), now);
    assert!(transmits(&mut ua).is_empty());
    // Keep-alives too.
    ua.handle_datagram(b"\r\n\r\n", Transport::Udp, addr(PEER), now);
    assert!(transmits(&mut ua).is_empty());

    let r = ask(&mut ua, &out_of_dialog("OPTIONS", "after", None));
    assert_eq!(code(&r), 200);
}
