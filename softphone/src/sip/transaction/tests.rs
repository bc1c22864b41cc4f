//! Transaction layer scenarios on simulated time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response, SipMessage, StatusCode};

use crate::sip::{headers, wire};
use crate::sip::{Transmit, Transport};

use super::{TimeoutKind, TransactionLayer, TxError, TxEvent, TxId, TxState};

const PEER: &str = "192.0.2.20:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn request(method: &str, branch: &str, transport: Transport, extra: &str) -> Request {
    let text = format!(
        "{method} sip:bob@192.0.2.20 SIP/2.0\r\n\
         Via: SIP/2.0/{tp} 192.0.2.10:5060;branch={branch};rport\r\n\
         Route: <sip:proxy.example;lr>\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: call-1@192.0.2.10\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:alice@192.0.2.10:5060>\r\n\
         {extra}Content-Length: 0\r\n\r\n",
        tp = transport.via_token()
    );
    Request::try_from(text.as_str()).expect("test request parses")
}

fn invite(branch: &str, transport: Transport) -> Request {
    request("INVITE", branch, transport, "")
}

/// A response to `req` as a UAS would build it (§8.2.6).
fn response(req: &Request, code: u16, to_tag: Option<&str>) -> Response {
    let mut out = rsip::Headers::default();
    for h in req.headers.iter() {
        let (name, value) = headers::name_and_value(h);
        match name {
            "To" => {
                let value = match to_tag {
                    Some(tag) if !value.contains("tag=") => format!("{value};tag={tag}"),
                    _ => value.to_owned(),
                };
                out.push(Header::To(rsip::headers::To::new(value)));
            }
            "Via" | "From" | "Call-ID" | "CSeq" => out.push(h.clone()),
            _ => {}
        }
    }
    out.push(Header::ContentLength(rsip::headers::ContentLength::new(
        "0",
    )));
    Response {
        status_code: StatusCode::from(code),
        version: rsip::Version::V2,
        headers: out,
        body: Vec::new(),
    }
}

/// Reads what the layer sent the way the peer's stack would.
fn parse(t: &Transmit) -> SipMessage {
    match wire::parse_datagram(&t.bytes) {
        Ok(wire::Incoming::Message(m)) => m,
        other => panic!("layer output does not parse: {other:?}"),
    }
}

/// Things that happened, with the simulated millisecond they happened at.
type Timed<T> = Vec<(u64, T)>;

struct Sim {
    layer: TransactionLayer,
    t0: Instant,
    now: Instant,
}

impl Sim {
    fn new() -> Self {
        let t0 = Instant::now();
        Self {
            layer: TransactionLayer::default(),
            t0,
            now: t0,
        }
    }

    fn at(&mut self, ms: u64) -> Instant {
        self.now = self.t0 + Duration::from_millis(ms);
        self.now
    }

    fn ms(&self, t: Instant) -> u64 {
        u64::try_from((t - self.t0).as_millis()).expect("small")
    }

    fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.layer.poll_transmit()).collect()
    }

    fn events(&mut self) -> Vec<TxEvent> {
        std::iter::from_fn(|| self.layer.poll_event()).collect()
    }

    /// Fires timers up to `until_ms`; returns (time, transmit) and
    /// (time, event) in order.
    fn run(&mut self, until_ms: u64) -> (Timed<Transmit>, Timed<TxEvent>) {
        let end = self.t0 + Duration::from_millis(until_ms);
        let (mut tx, mut ev) = (vec![], vec![]);
        while let Some(t) = self.layer.poll_timeout().filter(|t| *t <= end) {
            self.now = t;
            self.layer.handle_timeout(t);
            let ms = self.ms(t);
            tx.extend(self.transmits().into_iter().map(|x| (ms, x)));
            ev.extend(self.events().into_iter().map(|e| (ms, e)));
        }
        self.now = end;
        (tx, ev)
    }

    fn send(&mut self, req: Request, transport: Transport) -> TxId {
        let now = self.now;
        self.layer
            .send_request(req, transport, addr(PEER), now)
            .expect("send_request")
    }

    fn receive(&mut self, msg: impl Into<SipMessage>, transport: Transport, from: &str) {
        let now = self.now;
        self.layer
            .handle_message(msg.into(), transport, addr(from), now)
            .expect("handle_message");
    }

    fn respond(&mut self, id: TxId, resp: Response) {
        let now = self.now;
        self.layer
            .send_response(id, resp, now)
            .expect("send_response");
    }
}

fn times(tx: &[(u64, Transmit)]) -> Vec<u64> {
    tx.iter().map(|(t, _)| *t).collect()
}

fn server_request_id(events: &[TxEvent]) -> TxId {
    match events.first() {
        Some(TxEvent::Request { id, .. }) => *id,
        other => panic!("expected a Request event, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Client transactions

#[test]
fn invite_over_udp_backs_off_without_cap_and_times_out_with_b() {
    let mut sim = Sim::new();
    let id = sim.send(invite("z9hG4bKinv1", Transport::Udp), Transport::Udp);
    assert_eq!(sim.transmits().len(), 1);
    let (tx, ev) = sim.run(40_000);
    assert_eq!(times(&tx), [500, 1_500, 3_500, 7_500, 15_500, 31_500]);
    assert!(tx.iter().all(|(_, t)| t.destination == addr(PEER)));
    assert_eq!(
        ev,
        [
            (
                32_000,
                TxEvent::Timeout {
                    id,
                    kind: TimeoutKind::NoResponse
                }
            ),
            (32_000, TxEvent::Terminated { id }),
        ]
    );
    assert!(sim.layer.is_empty());
}

#[test]
fn non_invite_over_udp_caps_at_t2_and_times_out_with_f() {
    let mut sim = Sim::new();
    let id = sim.send(
        request("OPTIONS", "z9hG4bKopt", Transport::Udp, ""),
        Transport::Udp,
    );
    sim.transmits();
    let (tx, ev) = sim.run(40_000);
    assert_eq!(
        times(&tx),
        [500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(
        ev,
        [
            (
                32_000,
                TxEvent::Timeout {
                    id,
                    kind: TimeoutKind::NoResponse
                }
            ),
            (32_000, TxEvent::Terminated { id }),
        ]
    );
}

#[test]
fn non_invite_proceeding_retransmits_every_t2() {
    let mut sim = Sim::new();
    let req = request("REGISTER", "z9hG4bKreg", Transport::Udp, "");
    let id = sim.send(req.clone(), Transport::Udp);
    sim.transmits();
    let (tx, _) = sim.run(700);
    assert_eq!(times(&tx), [500]);
    sim.receive(response(&req, 100, None), Transport::Udp, PEER);
    assert_eq!(sim.layer.state(id), Some(TxState::Proceeding));
    // The next E (due at 1500) re-arms at T2 from then on.
    let (tx, _) = sim.run(10_000);
    assert_eq!(times(&tx), [1_500, 5_500, 9_500]);
    sim.receive(response(&req, 200, Some("b1")), Transport::Udp, PEER);
    let ev = sim.events();
    assert!(
        matches!(&ev[..], [TxEvent::Response { response, .. }] if response.status_code.code() == 200)
    );
    // Completed: a retransmitted 200 is absorbed; K (T4) ends it.
    sim.receive(response(&req, 200, Some("b1")), Transport::Udp, PEER);
    assert!(sim.events().is_empty());
    let (tx, ev) = sim.run(20_000);
    assert!(tx.is_empty());
    assert_eq!(ev, [(15_000, TxEvent::Terminated { id })]);
}

#[test]
fn nothing_is_retransmitted_over_tcp() {
    let mut sim = Sim::new();
    let inv = sim.send(invite("z9hG4bKtcp1", Transport::Tcp), Transport::Tcp);
    let opt = sim.send(
        request("OPTIONS", "z9hG4bKtcp2", Transport::Tcp, ""),
        Transport::Tcp,
    );
    assert_eq!(sim.transmits().len(), 2);
    let (tx, ev) = sim.run(40_000);
    assert!(tx.is_empty(), "retransmitted over TCP: {tx:?}");
    assert_eq!(
        ev,
        [
            (
                32_000,
                TxEvent::Timeout {
                    id: inv,
                    kind: TimeoutKind::NoResponse
                }
            ),
            (32_000, TxEvent::Terminated { id: inv }),
            (
                32_000,
                TxEvent::Timeout {
                    id: opt,
                    kind: TimeoutKind::NoResponse
                }
            ),
            (32_000, TxEvent::Terminated { id: opt }),
        ]
    );

    // Server side: a 486 is not retransmitted by G; H still runs.
    let mut sim = Sim::new();
    sim.receive(invite("z9hG4bKtcp3", Transport::Tcp), Transport::Tcp, PEER);
    let events = sim.events();
    let id = server_request_id(&events);
    let TxEvent::Request { request, .. } = &events[0] else {
        unreachable!()
    };
    sim.respond(id, response(request, 486, Some("b1")));
    assert_eq!(sim.transmits().len(), 1);
    let (tx, ev) = sim.run(40_000);
    assert!(tx.is_empty());
    assert_eq!(
        ev,
        [
            (
                32_000,
                TxEvent::Timeout {
                    id,
                    kind: TimeoutKind::NoAck
                }
            ),
            (32_000, TxEvent::Terminated { id }),
        ]
    );
}

#[test]
fn non_2xx_to_invite_is_acked_by_the_transaction() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKauth", Transport::Udp);
    let id = sim.send(inv.clone(), Transport::Udp);
    sim.transmits();
    sim.at(100);
    let challenge = response(&inv, 401, Some("srv9"));
    sim.receive(challenge.clone(), Transport::Udp, PEER);

    let ev = sim.events();
    assert!(
        matches!(&ev[..], [TxEvent::Response { id: i, response }] if *i == id && response.status_code.code() == 401)
    );
    let tx = sim.transmits();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].destination, addr(PEER));
    let SipMessage::Request(ack) = parse(&tx[0]) else {
        panic!("ACK expected")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, inv.uri);
    let vias = headers::vias(&ack.headers).expect("vias");
    assert_eq!(vias.len(), 1);
    assert_eq!(vias[0].branch(), Some("z9hG4bKauth"));
    assert_eq!(headers::cseq(&ack.headers), Ok((1, Method::Ack)));
    assert_eq!(headers::call_id(&ack.headers), Ok("call-1@192.0.2.10"));
    assert_eq!(headers::from(&ack.headers).expect("from").tag(), Some("a1"));
    assert_eq!(headers::to(&ack.headers).expect("to").tag(), Some("srv9"));
    assert_eq!(headers::routes(&ack.headers), ["<sip:proxy.example;lr>"]);
    assert_eq!(headers::max_forwards(&ack.headers), Ok(Some(70)));
    assert!(headers::contacts(&ack.headers)
        .expect("contacts")
        .is_empty());
    assert_eq!(sim.layer.state(id), Some(TxState::Completed));

    // A retransmitted 401: the same ACK again, the TU is not bothered.
    sim.at(600);
    sim.receive(challenge, Transport::Udp, PEER);
    assert!(sim.events().is_empty());
    let again = sim.transmits();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].bytes, tx[0].bytes);

    // Timer D (32 s over UDP) ends it; no INVITE retransmission meanwhile.
    let (tx, ev) = sim.run(40_000);
    assert!(tx.is_empty());
    assert_eq!(ev, [(32_100, TxEvent::Terminated { id })]);
}

#[test]
fn non_2xx_over_tcp_terminates_at_once() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKtcp401", Transport::Tcp);
    let id = sim.send(inv.clone(), Transport::Tcp);
    sim.transmits();
    sim.receive(response(&inv, 407, Some("x")), Transport::Tcp, PEER);
    assert_eq!(sim.transmits().len(), 1, "the ACK");
    let ev = sim.events();
    assert!(matches!(ev[..], [TxEvent::Response { .. }, TxEvent::Terminated { id: i }] if i == id));
}

#[test]
fn every_2xx_reaches_the_tu_in_accepted() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKok", Transport::Udp);
    let id = sim.send(inv.clone(), Transport::Udp);
    sim.transmits();
    sim.at(200);
    sim.receive(response(&inv, 100, None), Transport::Udp, PEER);
    sim.at(1_000);
    let ok = response(&inv, 200, Some("b1"));
    sim.receive(ok.clone(), Transport::Udp, PEER);
    let codes: Vec<u16> = sim
        .events()
        .iter()
        .map(|e| match e {
            TxEvent::Response { id: i, response } if *i == id => response.status_code.code(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(codes, [100, 200]);
    assert_eq!(sim.layer.state(id), Some(TxState::Accepted));
    // The layer never ACKs a 2xx and never retransmits after a 1xx.
    assert!(sim.transmits().is_empty());

    // A retransmitted 2xx and a forked 2xx both go up (RFC 6026).
    sim.at(1_500);
    sim.receive(ok.clone(), Transport::Udp, PEER);
    sim.receive(response(&inv, 200, Some("fork2")), Transport::Udp, PEER);
    assert_eq!(sim.events().len(), 2);
    assert!(sim.transmits().is_empty());

    // Timer M ends it; a later 2xx is a stray the TU must re-ACK.
    let (_, ev) = sim.run(40_000);
    assert_eq!(ev, [(33_000, TxEvent::Terminated { id })]);
    sim.receive(ok, Transport::Udp, PEER);
    assert!(
        matches!(&sim.events()[..], [TxEvent::Stray2xx { source, .. }] if *source == addr(PEER))
    );
}

#[test]
fn cancel_race_still_delivers_the_200() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKcancel", Transport::Udp);
    let id = sim.send(inv.clone(), Transport::Udp);
    sim.transmits();
    // No CANCEL before a provisional (§9.1).
    assert!(matches!(
        sim.layer.send_cancel(id, sim.now),
        Err(TxError::InvalidState {
            state: TxState::Calling,
            ..
        })
    ));
    sim.at(300);
    sim.receive(response(&inv, 180, Some("b1")), Transport::Udp, PEER);
    sim.events();
    sim.at(2_000);
    let cancel_id = sim.layer.send_cancel(id, sim.now).expect("cancel");
    let tx = sim.transmits();
    assert_eq!(tx.len(), 1);
    let SipMessage::Request(cancel) = parse(&tx[0]) else {
        panic!("CANCEL expected")
    };
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, inv.uri);
    assert_eq!(headers::cseq(&cancel.headers), Ok((1, Method::Cancel)));
    assert_eq!(
        headers::top_via(&cancel.headers).expect("via").branch(),
        Some("z9hG4bKcancel")
    );
    assert_eq!(headers::to(&cancel.headers).expect("to").tag(), None);

    // The 200 to the INVITE crossed the CANCEL: it still goes up.
    sim.at(2_050);
    sim.receive(response(&inv, 200, Some("b1")), Transport::Udp, PEER);
    sim.receive(response(&cancel, 200, Some("b1")), Transport::Udp, PEER);
    let ev = sim.events();
    assert_eq!(ev.len(), 2);
    assert!(
        matches!(&ev[0], TxEvent::Response { id: i, response } if *i == id && response.status_code.code() == 200)
    );
    assert!(
        matches!(&ev[1], TxEvent::Response { id: i, response } if *i == cancel_id && response.status_code.code() == 200)
    );
    assert_eq!(sim.layer.state(id), Some(TxState::Accepted));
    assert_eq!(sim.layer.state(cancel_id), Some(TxState::Completed));
}

#[test]
fn transport_error_ends_the_transaction() {
    let mut sim = Sim::new();
    let id = sim.send(invite("z9hG4bKicmp", Transport::Udp), Transport::Udp);
    sim.layer
        .handle_transport_failure(Transport::Udp, addr(PEER));
    assert_eq!(
        sim.events(),
        [TxEvent::TransportError { id }, TxEvent::Terminated { id }]
    );
    assert!(sim.layer.poll_timeout().is_none());
    sim.layer.handle_transport_error(id); // already gone: ignored
    assert!(sim.events().is_empty());
}

#[test]
fn send_request_checks_its_input() {
    let mut sim = Sim::new();
    let now = sim.now;
    let l = &mut sim.layer;
    let no_cookie = invite("abc123", Transport::Udp);
    assert_eq!(
        l.send_request(no_cookie, Transport::Udp, addr(PEER), now),
        Err(TxError::NoBranch)
    );
    let ack = request("ACK", "z9hG4bKa", Transport::Udp, "");
    assert_eq!(
        l.send_request(ack, Transport::Udp, addr(PEER), now),
        Err(TxError::AckIsNotATransaction)
    );
    l.send_request(
        invite("z9hG4bKdup", Transport::Udp),
        Transport::Udp,
        addr(PEER),
        now,
    )
    .expect("first");
    assert!(matches!(
        l.send_request(
            invite("z9hG4bKdup", Transport::Udp),
            Transport::Udp,
            addr(PEER),
            now
        ),
        Err(TxError::DuplicateTransaction { .. })
    ));
}

// ---------------------------------------------------------------------------
// Matching

#[test]
fn responses_with_unknown_branch_or_method_are_dropped() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKknown", Transport::Udp);
    let id = sim.send(inv.clone(), Transport::Udp);
    sim.transmits();
    // Unknown branch.
    let other = invite("z9hG4bKother", Transport::Udp);
    sim.receive(response(&other, 180, Some("b")), Transport::Udp, PEER);
    sim.receive(response(&other, 486, Some("b")), Transport::Udp, PEER);
    // Right branch, wrong method: the 200 of a CANCEL we never sent.
    let cancel = request("CANCEL", "z9hG4bKknown", Transport::Udp, "");
    sim.receive(response(&cancel, 200, Some("b")), Transport::Udp, PEER);
    assert!(sim.events().is_empty());
    assert!(sim.transmits().is_empty());
    assert_eq!(sim.layer.state(id), Some(TxState::Calling));

    // Two Vias: not for us (§18.1.2).
    let mut two = response(&inv, 180, Some("b"));
    two.headers.push(Header::Via(rsip::headers::Via::new(
        "SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKproxy",
    )));
    sim.receive(two, Transport::Udp, PEER);
    assert!(sim.events().is_empty());

    // A stray 2xx to an INVITE is the TU's business.
    sim.receive(response(&other, 200, Some("b")), Transport::Udp, PEER);
    assert!(matches!(&sim.events()[..], [TxEvent::Stray2xx { .. }]));
}

#[test]
fn same_branch_different_method_is_another_server_transaction() {
    let mut sim = Sim::new();
    sim.receive(
        request("OPTIONS", "z9hG4bKsame", Transport::Udp, ""),
        Transport::Udp,
        PEER,
    );
    sim.receive(
        request("INFO", "z9hG4bKsame", Transport::Udp, ""),
        Transport::Udp,
        PEER,
    );
    let ev = sim.events();
    assert_eq!(ev.len(), 2);
    let ids: Vec<TxId> = ev
        .iter()
        .map(|e| match e {
            TxEvent::Request { id, .. } => *id,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    // Same branch from another sent-by is also another transaction.
    let from_elsewhere = request("OPTIONS", "z9hG4bKsame", Transport::Udp, "")
        .to_string()
        .replace("192.0.2.10:5060;branch", "192.0.2.11:5060;branch");
    let from_elsewhere = Request::try_from(from_elsewhere.as_str()).expect("parse");
    sim.receive(from_elsewhere, Transport::Udp, PEER);
    assert!(matches!(&sim.events()[..], [TxEvent::Request { .. }]));
    assert_eq!(sim.layer.len(), 3);
}

#[test]
fn cancel_finds_the_invite_it_cancels() {
    let mut sim = Sim::new();
    sim.receive(invite("z9hG4bKc1", Transport::Udp), Transport::Udp, PEER);
    let inv_id = server_request_id(&sim.events());
    sim.receive(
        request("CANCEL", "z9hG4bKc1", Transport::Udp, ""),
        Transport::Udp,
        PEER,
    );
    let ev = sim.events();
    let cancel_id = server_request_id(&ev);
    assert_ne!(cancel_id, inv_id);
    assert_eq!(sim.layer.cancelled_invite(cancel_id), Some(inv_id));
    assert_eq!(sim.layer.cancelled_invite(inv_id), None);
    // TU: 200 to the CANCEL, 487 to the INVITE.
    let TxEvent::Request {
        request: cancel, ..
    } = &ev[0]
    else {
        unreachable!()
    };
    sim.respond(cancel_id, response(cancel, 200, Some("u1")));
    let inv = invite("z9hG4bKc1", Transport::Udp);
    sim.respond(inv_id, response(&inv, 487, Some("u1")));
    assert_eq!(sim.transmits().len(), 2);
    assert_eq!(sim.layer.state(inv_id), Some(TxState::Completed));

    sim.receive(
        request("CANCEL", "z9hG4bKnone", Transport::Udp, ""),
        Transport::Udp,
        PEER,
    );
    let orphan = server_request_id(&sim.events());
    assert_eq!(sim.layer.cancelled_invite(orphan), None);
}

// ---------------------------------------------------------------------------
// Server transactions

#[test]
fn invite_retransmission_gets_the_last_provisional() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKs1", Transport::Udp);
    sim.receive(inv.clone(), Transport::Udp, PEER);
    let id = server_request_id(&sim.events());
    // Before any response, a retransmission is silently absorbed.
    sim.at(50);
    sim.receive(inv.clone(), Transport::Udp, PEER);
    assert!(sim.transmits().is_empty());
    assert!(sim.events().is_empty());
    sim.at(100);
    sim.respond(id, response(&inv, 180, Some("u1")));
    let ringing = sim.transmits();
    assert_eq!(ringing.len(), 1);
    sim.at(500);
    sim.receive(inv, Transport::Udp, PEER);
    let again = sim.transmits();
    assert_eq!(again, ringing);
    assert!(sim.events().is_empty());
    assert_eq!(sim.layer.state(id), Some(TxState::Proceeding));
    // No 100 Trying: the TU answered within 200 ms.
    let (tx, _) = sim.run(5_000);
    assert!(tx.is_empty());
}

#[test]
fn slow_tu_gets_an_automatic_100_trying() {
    let mut sim = Sim::new();
    let inv = request("INVITE", "z9hG4bKslow", Transport::Udp, "Timestamp: 54\r\n");
    sim.receive(inv, Transport::Udp, PEER);
    sim.events();
    let (tx, _) = sim.run(1_000);
    assert_eq!(times(&tx), [200]);
    let SipMessage::Response(trying) = parse(&tx[0].1) else {
        panic!("response expected")
    };
    assert_eq!(trying.status_code.code(), 100);
    assert_eq!(headers::cseq(&trying.headers), Ok((1, Method::Invite)));
    assert_eq!(
        headers::raw_values(&trying.headers, "Timestamp").next(),
        Some("54")
    );
    assert_eq!(
        headers::top_via(&trying.headers).expect("via").received(),
        Some("192.0.2.20")
    );
}

#[test]
fn failure_is_retransmitted_by_g_until_the_ack() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKbusy", Transport::Udp);
    sim.receive(inv.clone(), Transport::Udp, PEER);
    let id = server_request_id(&sim.events());
    let busy = response(&inv, 486, Some("u1"));
    sim.respond(id, busy.clone());
    assert_eq!(sim.transmits().len(), 1);
    let (tx, _) = sim.run(10_000);
    assert_eq!(times(&tx), [500, 1_500, 3_500, 7_500]);
    // A retransmitted INVITE gets the 486 again.
    sim.receive(inv.clone(), Transport::Udp, PEER);
    assert_eq!(sim.transmits().len(), 1);
    // The ACK (same branch, §17.1.1.3) is absorbed and stops G.
    let mut ack = request("ACK", "z9hG4bKbusy", Transport::Udp, "");
    ack.headers.retain(|h| !matches!(h, Header::To(_)));
    ack.headers.push(Header::To(rsip::headers::To::new(
        "<sip:bob@example.com>;tag=u1",
    )));
    sim.at(10_100);
    sim.receive(ack.clone(), Transport::Udp, PEER);
    assert!(sim.events().is_empty());
    assert_eq!(sim.layer.state(id), Some(TxState::Confirmed));
    sim.receive(ack, Transport::Udp, PEER);
    assert!(sim.events().is_empty());
    let (tx, ev) = sim.run(40_000);
    assert!(tx.is_empty());
    assert_eq!(ev, [(15_100, TxEvent::Terminated { id })]);
}

#[test]
fn failure_without_ack_times_out_with_h() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKnoack", Transport::Udp);
    sim.receive(inv.clone(), Transport::Udp, PEER);
    let id = server_request_id(&sim.events());
    sim.respond(id, response(&inv, 486, Some("u1")));
    sim.transmits();
    let (tx, ev) = sim.run(40_000);
    assert_eq!(
        times(&tx),
        [500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(
        ev,
        [
            (
                32_000,
                TxEvent::Timeout {
                    id,
                    kind: TimeoutKind::NoAck
                }
            ),
            (32_000, TxEvent::Terminated { id }),
        ]
    );
}

/// The end-to-end ACK of a 2xx: new branch, To tag of the 2xx.
fn ack_for_2xx(branch: &str, to_tag: &str) -> Request {
    let mut ack = request("ACK", branch, Transport::Udp, "");
    ack.headers.retain(|h| !matches!(h, Header::To(_)));
    ack.headers.push(Header::To(rsip::headers::To::new(format!(
        "<sip:bob@example.com>;tag={to_tag}"
    ))));
    ack
}

#[test]
fn two_xx_is_retransmitted_until_its_ack() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKans", Transport::Udp);
    sim.receive(inv.clone(), Transport::Udp, PEER);
    let id = server_request_id(&sim.events());
    sim.respond(id, response(&inv, 200, Some("u1")));
    let first = sim.transmits();
    assert_eq!(sim.layer.state(id), Some(TxState::Accepted));
    let (tx, _) = sim.run(4_000);
    assert_eq!(times(&tx), [500, 1_500, 3_500]);
    assert!(tx.iter().all(|(_, t)| t.bytes == first[0].bytes));
    // Retransmitted INVITE in Accepted: absorbed, not a new request.
    sim.receive(inv, Transport::Udp, PEER);
    assert!(sim.events().is_empty());
    assert!(sim.transmits().is_empty());
    // An ACK of another dialog does not stop it.
    sim.receive(ack_for_2xx("z9hG4bKack0", "zz"), Transport::Udp, PEER);
    assert!(matches!(
        &sim.events()[..],
        [TxEvent::Ack { invite: None, .. }]
    ));

    sim.receive(ack_for_2xx("z9hG4bKack1", "u1"), Transport::Udp, PEER);
    assert!(matches!(&sim.events()[..], [TxEvent::Ack { invite: Some(i), .. }] if *i == id));
    // A repeated ACK is absorbed while the transaction lives.
    sim.receive(ack_for_2xx("z9hG4bKack1", "u1"), Transport::Udp, PEER);
    assert!(sim.events().is_empty());
    let (tx, ev) = sim.run(40_000);
    assert!(tx.is_empty());
    assert_eq!(ev, [(32_000, TxEvent::Terminated { id })]);
}

#[test]
fn lost_ack_for_2xx_is_reported() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKlost", Transport::Udp);
    sim.receive(inv.clone(), Transport::Udp, PEER);
    let id = server_request_id(&sim.events());
    sim.respond(id, response(&inv, 200, Some("u1")));
    sim.transmits();
    let (tx, ev) = sim.run(40_000);
    assert_eq!(
        times(&tx),
        [500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(
        ev,
        [
            (
                32_000,
                TxEvent::Timeout {
                    id,
                    kind: TimeoutKind::No2xxAck
                }
            ),
            (32_000, TxEvent::Terminated { id }),
        ]
    );
}

#[test]
fn non_invite_server_absorbs_retransmissions_until_j() {
    let mut sim = Sim::new();
    let opt = request("OPTIONS", "z9hG4bKo1", Transport::Udp, "");
    sim.receive(opt.clone(), Transport::Udp, PEER);
    let id = server_request_id(&sim.events());
    // Trying: absorbed without a response.
    sim.receive(opt.clone(), Transport::Udp, PEER);
    assert!(sim.transmits().is_empty());
    assert!(sim.events().is_empty());
    sim.at(100);
    sim.respond(id, response(&opt, 200, Some("u1")));
    let ok = sim.transmits();
    assert_eq!(ok.len(), 1);
    sim.at(1_000);
    sim.receive(opt.clone(), Transport::Udp, PEER);
    assert_eq!(sim.transmits(), ok);
    assert!(sim.events().is_empty());
    assert!(matches!(
        sim.layer
            .send_response(id, response(&opt, 500, None), sim.now),
        Err(TxError::InvalidState {
            state: TxState::Completed,
            ..
        })
    ));
    let (tx, ev) = sim.run(40_000);
    assert!(tx.is_empty());
    assert_eq!(ev, [(32_100, TxEvent::Terminated { id })]);
    // After J the same request is new again.
    sim.receive(opt, Transport::Udp, PEER);
    assert!(matches!(&sim.events()[..], [TxEvent::Request { .. }]));
}

#[test]
fn non_invite_server_over_tcp_ends_with_the_final_response() {
    let mut sim = Sim::new();
    let opt = request("OPTIONS", "z9hG4bKo2", Transport::Tcp, "");
    sim.receive(opt.clone(), Transport::Tcp, PEER);
    let id = server_request_id(&sim.events());
    sim.respond(id, response(&opt, 200, Some("u1")));
    assert_eq!(sim.events(), [TxEvent::Terminated { id }]);
}

#[test]
fn responses_follow_received_and_rport() {
    let mut sim = Sim::new();
    // rport requested: back to the source address and port.
    let nat = "203.0.113.5:40000";
    let opt = request("OPTIONS", "z9hG4bKnat", Transport::Udp, "");
    sim.receive(opt, Transport::Udp, nat);
    let ev = sim.events();
    let id = server_request_id(&ev);
    let TxEvent::Request { request: req, .. } = &ev[0] else {
        unreachable!()
    };
    let via = headers::top_via(&req.headers).expect("via");
    assert_eq!(via.received(), Some("203.0.113.5"));
    assert_eq!(via.rport(), Some(Some(40000)));
    sim.respond(id, response(req, 200, Some("u1")));
    assert_eq!(sim.transmits()[0].destination, addr(nat));

    // No rport: received IP, sent-by port.
    let plain = request("OPTIONS", "z9hG4bKplain", Transport::Udp, "")
        .to_string()
        .replace(";rport", "");
    let plain = Request::try_from(plain.as_str()).expect("parse");
    sim.receive(plain.clone(), Transport::Udp, nat);
    let id = server_request_id(&sim.events());
    sim.respond(id, response(&plain, 200, Some("u1")));
    assert_eq!(sim.transmits()[0].destination, addr("203.0.113.5:5060"));

    // TCP: the connection it came in on.
    let tcp = request("OPTIONS", "z9hG4bKtcpr", Transport::Tcp, "");
    sim.receive(tcp.clone(), Transport::Tcp, "203.0.113.5:51000");
    let id = server_request_id(&sim.events());
    sim.respond(id, response(&tcp, 200, Some("u1")));
    let t = sim.transmits();
    assert_eq!(t[0].destination, addr("203.0.113.5:51000"));
    assert_eq!(t[0].transport, Transport::Tcp);
}

#[test]
fn malformed_requests_are_refused_not_panicked_on() {
    let mut sim = Sim::new();
    let now = sim.now;
    let mut bad_via = request("OPTIONS", "z9hG4bKx", Transport::Udp, "");
    bad_via.headers.retain(|h| !matches!(h, Header::Via(_)));
    bad_via
        .headers
        .push(Header::Via(rsip::headers::Via::new("garbage")));
    assert!(matches!(
        sim.layer
            .handle_message(bad_via.into(), Transport::Udp, addr(PEER), now),
        Err(TxError::Header(_))
    ));
    let mismatch = request("OPTIONS", "z9hG4bKy", Transport::Udp, "")
        .to_string()
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
    let mismatch = Request::try_from(mismatch.as_str()).expect("parse");
    assert!(matches!(
        sim.layer
            .handle_message(mismatch.into(), Transport::Udp, addr(PEER), now),
        Err(TxError::MethodMismatch { .. })
    ));
    assert!(sim.layer.is_empty());
    assert!(sim.events().is_empty());
}

#[test]
fn rfc2543_peer_ack_matches_its_invite() {
    let mut sim = Sim::new();
    let old = |method: &str| {
        let text = request(method, "z9hG4bKunused", Transport::Udp, "")
            .to_string()
            .replace(";branch=z9hG4bKunused", "");
        Request::try_from(text.as_str()).expect("parse")
    };
    sim.receive(old("INVITE"), Transport::Udp, PEER);
    let id = server_request_id(&sim.events());
    sim.respond(id, response(&old("INVITE"), 486, Some("u1")));
    sim.receive(old("INVITE"), Transport::Udp, PEER);
    assert_eq!(sim.transmits().len(), 2, "486 and its retransmission");
    sim.receive(old("ACK"), Transport::Udp, PEER);
    assert!(sim.events().is_empty());
    assert_eq!(sim.layer.state(id), Some(TxState::Confirmed));
}

// ---------------------------------------------------------------------------
// Two layers talking through `sip::wire`

/// Delivers everything `from` (at `from_addr`) has queued to `to`.
fn pump(from: &mut TransactionLayer, to: &mut TransactionLayer, from_addr: &str, now: Instant) {
    while let Some(t) = from.poll_transmit() {
        let msg = parse(&t);
        to.handle_message(msg, t.transport, addr(from_addr), now)
            .expect("peer accepts");
    }
}

#[test]
fn back_to_back_rejected_call_and_options() {
    const UAC: &str = "192.0.2.10:5060";
    let t0 = Instant::now();
    let mut uac = TransactionLayer::default();
    let mut uas = TransactionLayer::default();
    let branch = headers::new_branch().expect("branch");
    let cid = uac
        .send_request(
            invite(&branch, Transport::Udp),
            Transport::Udp,
            addr(PEER),
            t0,
        )
        .expect("send");
    pump(&mut uac, &mut uas, UAC, t0);
    let Some(TxEvent::Request {
        id: sid,
        request: inv,
        ..
    }) = uas.poll_event()
    else {
        panic!("UAS saw no INVITE");
    };
    uas.send_response(sid, response(&inv, 180, Some("u1")), t0)
        .expect("180");
    uas.send_response(sid, response(&inv, 486, Some("u1")), t0)
        .expect("486");
    pump(&mut uas, &mut uac, PEER, t0);
    let codes: Vec<u16> = std::iter::from_fn(|| uac.poll_event())
        .filter_map(|e| match e {
            TxEvent::Response { id, response } if id == cid => Some(response.status_code.code()),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [180, 486]);
    // The UAC's ACK reaches the UAS transaction and is absorbed there.
    pump(&mut uac, &mut uas, UAC, t0);
    assert_eq!(uas.state(sid), Some(TxState::Confirmed));
    assert!(uas.poll_event().is_none());

    // A non-INVITE over TCP: no timers left once answered.
    let ob = headers::new_branch().expect("branch");
    let oid = uac
        .send_request(
            request("OPTIONS", &ob, Transport::Tcp, ""),
            Transport::Tcp,
            addr(PEER),
            t0,
        )
        .expect("send");
    pump(&mut uac, &mut uas, UAC, t0);
    let Some(TxEvent::Request {
        id, request: opt, ..
    }) = uas.poll_event()
    else {
        panic!("UAS saw no OPTIONS");
    };
    uas.send_response(id, response(&opt, 200, Some("u2")), t0)
        .expect("200");
    assert_eq!(uas.poll_event(), Some(TxEvent::Terminated { id }));
    pump(&mut uas, &mut uac, PEER, t0);
    assert!(matches!(uac.poll_event(), Some(TxEvent::Response { id, .. }) if id == oid));
    assert_eq!(uac.poll_event(), Some(TxEvent::Terminated { id: oid }));
}
