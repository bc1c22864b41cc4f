//! User-agent tests in simulated time: a scripted registrar and peers built
//! from `wire` and `headers`, and user agents wired back to back.

mod call;
mod dispatch;
mod message;
mod registration;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::{Request, Response, SipMessage};

use super::*;
use crate::sip::headers;
use crate::sip::sdp::{codecs_from_microsip, FakeMedia};
use crate::sip::wire;

pub(super) const REGISTRAR: &str = "192.0.2.10:5060";
pub(super) const ALICE: &str = "198.51.100.1:5060";
pub(super) const BOB: &str = "198.51.100.2:5060";

pub(super) fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

pub(super) fn account(id: AccountId, username: &str, password: &str) -> AccountConfig {
    AccountConfig {
        id,
        username: username.into(),
        domain: HostPort::parse("example.com").expect("domain"),
        registrar: HostPort::parse(REGISTRAR),
        proxy: None,
        auth_user: username.into(),
        password: password.into(),
        display_name: String::new(),
        transport: Transport::Udp,
        outbound: addr(REGISTRAR),
        register_expires: Duration::from_secs(300),
        keep_alive: None,
        public_addr: None,
        session_timers: true,
        hide_cid: false,
        srtp: crate::sip::sdp::SrtpMode::Off,
    }
}

pub(super) fn config(local: &str) -> UaConfig {
    let (codecs, _) = codecs_from_microsip(&["PCMA/8000/1", "PCMU/8000/1"], false);
    UaConfig {
        local: LocalAddrs { sip: addr(local) },
        user_agent: "msipphone-test".into(),
        timers: Default::default(),
        codecs,
        telephone_event: Some(101),
        rport: true,
    }
}

pub(super) fn agent(local: &str, accounts: Vec<AccountConfig>) -> UserAgent {
    UserAgent::new(config(local), accounts, Box::new(FakeMedia::new()))
}

pub(super) fn transmits(ua: &mut UserAgent) -> Vec<Transmit> {
    std::iter::from_fn(|| ua.poll_transmit()).collect()
}

pub(super) fn events(ua: &mut UserAgent) -> Vec<UaEvent> {
    std::iter::from_fn(|| ua.poll_event()).collect()
}

pub(super) fn parse(bytes: &[u8]) -> SipMessage {
    wire::parse_message(bytes).unwrap_or_else(|e| {
        panic!(
            "we sent something unreadable ({e}):\n{}",
            String::from_utf8_lossy(bytes)
        )
    })
}

pub(super) fn request(t: &Transmit) -> Request {
    match parse(&t.bytes) {
        SipMessage::Request(r) => r,
        SipMessage::Response(r) => panic!("expected a request, got {}", r.status_code),
    }
}

pub(super) fn response(t: &Transmit) -> Response {
    match parse(&t.bytes) {
        SipMessage::Response(r) => r,
        SipMessage::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

/// The single value of header `name`.
pub(super) fn header<'a>(headers: &'a rsip::Headers, name: &'a str) -> &'a str {
    let values: Vec<&str> = headers::raw_values(headers, name).collect();
    assert_eq!(
        values.len(),
        1,
        "one {name} header expected, got {values:?}"
    );
    values[0]
}

pub(super) fn has_header(headers: &rsip::Headers, name: &str) -> bool {
    headers::raw_values(headers, name).next().is_some()
}

/// The single transmit in `list`, a request (retransmissions excluded by
/// the caller's timing).
pub(super) fn only(list: Vec<Transmit>) -> Transmit {
    assert_eq!(
        list.len(),
        1,
        "one transmit expected, got {:?}",
        list.iter()
            .map(|t| String::from_utf8_lossy(&t.bytes)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned())
            .collect::<Vec<_>>()
    );
    list.into_iter().next().expect("one transmit")
}

/// A response to `request` as a peer writes it: Vias, From, To (+ tag),
/// Call-ID, CSeq copied, then `extra` header lines.
pub(super) fn reply(request: &Request, code: u16, reason: &str, extra: &[String]) -> Vec<u8> {
    let mut text = format!("SIP/2.0 {code} {reason}\r\n");
    for via in headers::list_values(&request.headers, "Via") {
        text.push_str(&format!("Via: {via}\r\n"));
    }
    text.push_str(&format!("From: {}\r\n", header(&request.headers, "From")));
    let to = header(&request.headers, "To");
    if to.contains("tag=") {
        text.push_str(&format!("To: {to}\r\n"));
    } else {
        text.push_str(&format!("To: {to};tag=peer1\r\n"));
    }
    text.push_str(&format!(
        "Call-ID: {}\r\n",
        header(&request.headers, "Call-ID")
    ));
    text.push_str(&format!("CSeq: {}\r\n", header(&request.headers, "CSeq")));
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text.into_bytes()
}

/// Runs `ua`'s timers up to `until`, returning what it sent with when.
pub(super) fn run_until(ua: &mut UserAgent, until: Instant) -> Vec<(Instant, Transmit)> {
    let mut out = Vec::new();
    while let Some(at) = ua.poll_timeout().filter(|at| *at <= until) {
        ua.handle_timeout(at);
        out.extend(transmits(ua).into_iter().map(|t| (at, t)));
    }
    out
}

/// Hands every transmit of `from` (at `from_addr`) to whichever of the two
/// agents it is addressed to, until both are quiet.
pub(super) fn shuttle(a: (&mut UserAgent, &str), b: (&mut UserAgent, &str), now: Instant) {
    let (a, a_addr) = a;
    let (b, b_addr) = b;
    for _ in 0..100 {
        let from_a = transmits(a);
        let from_b = transmits(b);
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        for t in from_a {
            if t.destination == addr(b_addr) {
                b.handle_datagram(&t.bytes, t.transport, addr(a_addr), now);
            }
        }
        for t in from_b {
            if t.destination == addr(a_addr) {
                a.handle_datagram(&t.bytes, t.transport, addr(b_addr), now);
            }
        }
    }
    panic!("the agents never went quiet");
}
