//! MESSAGE both ways between two agents, and through a challenging proxy.

use std::time::{Duration, Instant};

use super::*;

fn agents() -> (UserAgent, UserAgent) {
    let mut alice = account(1, "alice", "pw");
    alice.registrar = None;
    let mut bob = account(1, "bob", "pw");
    bob.registrar = None;
    (agent(ALICE, vec![alice]), agent(BOB, vec![bob]))
}

#[test]
fn messages_travel_both_ways_between_two_agents() {
    let (mut a, mut b) = agents();
    let now = Instant::now();
    let id = a
        .send_message(1, &format!("sip:bob@{BOB}"), addr(BOB), "héllo, Bob", now)
        .expect("send");
    shuttle((&mut a, ALICE), (&mut b, BOB), now);
    assert_eq!(
        events(&mut b),
        vec![UaEvent::MessageReceived {
            account: 1,
            from: "sip:alice@example.com".into(),
            content_type: TEXT_PLAIN.into(),
            body: "héllo, Bob".into(),
        }]
    );
    assert_eq!(
        events(&mut a),
        vec![UaEvent::MessageResult {
            message: id,
            code: 200
        }]
    );

    let reply_id = b
        .send_message(
            1,
            &format!("sip:alice@{ALICE}"),
            addr(ALICE),
            "hi Alice",
            now,
        )
        .expect("send back");
    assert_ne!(reply_id, MessageId(0));
    shuttle((&mut a, ALICE), (&mut b, BOB), now);
    assert_eq!(
        events(&mut a),
        vec![UaEvent::MessageReceived {
            account: 1,
            from: "sip:bob@example.com".into(),
            content_type: TEXT_PLAIN.into(),
            body: "hi Alice".into(),
        }]
    );
    assert_eq!(
        events(&mut b),
        vec![UaEvent::MessageResult {
            message: reply_id,
            code: 200
        }]
    );
}

#[test]
fn other_content_types_are_reported_with_their_type() {
    let (mut a, _) = agents();
    let body = "<is-composing/>";
    let text = format!(
        "MESSAGE sip:alice@{ALICE} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {BOB};branch=z9hG4bKct1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@example.com>;tag=b1\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: ct1@example.com\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: application/im-iscomposing+xml\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    a.handle_datagram(text.as_bytes(), Transport::Udp, addr(BOB), Instant::now());
    assert_eq!(response(&only(transmits(&mut a))).status_code.code(), 200);
    assert_eq!(
        events(&mut a),
        vec![UaEvent::MessageReceived {
            account: 1,
            from: "sip:bob@example.com".into(),
            content_type: "application/im-iscomposing+xml".into(),
            body: body.into(),
        }]
    );
}

#[test]
fn message_through_a_challenging_proxy() {
    let mut alice = account(1, "alice", "pw");
    alice.proxy = HostPort::parse(REGISTRAR);
    let mut ua = agent(ALICE, vec![alice]);
    let now = Instant::now();
    let id = ua
        .send_message(1, "sip:carol@example.org", addr(REGISTRAR), "hi", now)
        .expect("send");
    let first = request(&only(transmits(&mut ua)));
    assert_eq!(first.method, rsip::Method::Message);
    assert_eq!(first.uri.to_string(), "sip:carol@example.org");
    assert_eq!(
        header(&first.headers, "Route"),
        format!("<sip:{REGISTRAR};lr>")
    );
    assert_eq!(header(&first.headers, "Content-Type"), TEXT_PLAIN);
    assert_eq!(first.body, b"hi");
    let challenge =
        "Proxy-Authenticate: Digest realm=\"example.com\", nonce=\"m1\", qop=\"auth\"".to_owned();
    ua.handle_datagram(
        &reply(&first, 407, "Proxy Authentication Required", &[challenge]),
        Transport::Udp,
        addr(REGISTRAR),
        now,
    );
    let second = request(&only(transmits(&mut ua)));
    assert!(header(&second.headers, "Proxy-Authorization").contains("nonce=\"m1\""));
    assert_eq!(
        headers::cseq(&second.headers).expect("CSeq").0,
        headers::cseq(&first.headers).expect("CSeq").0 + 1
    );
    assert!(
        events(&mut ua).is_empty(),
        "no result before the final answer"
    );
    ua.handle_datagram(
        &reply(&second, 202, "Accepted", &[]),
        Transport::Udp,
        addr(REGISTRAR),
        now,
    );
    assert_eq!(
        events(&mut ua),
        vec![UaEvent::MessageResult {
            message: id,
            code: 202
        }]
    );
}

#[test]
fn unanswered_message_reports_408() {
    let (mut a, _) = agents();
    let now = Instant::now();
    let id = a
        .send_message(1, &format!("sip:bob@{BOB}"), addr(BOB), "anyone?", now)
        .expect("send");
    run_until(&mut a, now + Duration::from_secs(33));
    assert_eq!(
        events(&mut a),
        vec![UaEvent::MessageResult {
            message: id,
            code: 408
        }]
    );
    assert!(a
        .send_message(1, "sip:x@[", addr(BOB), "bad uri", now)
        .is_err());
    a.shutdown(now);
    assert!(a.is_idle());
    assert_eq!(
        a.send_message(1, "sip:bob@example.com", addr(BOB), "late", now),
        Err(UaError::ShuttingDown)
    );
}
