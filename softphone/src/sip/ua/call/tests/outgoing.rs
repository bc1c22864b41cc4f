//! Outgoing calls against a scripted peer.

use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use rsip::{Method, Request, SipMessage};

use super::*;
use crate::sip::ua::types::CallState;

const TARGET: &str = "sip:bob@192.0.2.20";

fn alice(session_timers: bool) -> Phone {
    Phone::new("alice", ME, Instant::now(), session_timers)
}

/// Dials and returns the INVITE the peer received.
fn dial(phone: &mut Phone) -> Request {
    phone.dial(TARGET);
    only_request(&phone.sent(), Method::Invite)
}

const RR: &str = "Record-Route: <sip:192.0.2.40;lr>\r\nRecord-Route: <sip:192.0.2.41;lr>\r\n";
const CONTACT: &str = "Contact: <sip:bob@192.0.2.30:5070>\r\n";

/// Dials, rings and answers; returns the INVITE and the 200.
fn connect(phone: &mut Phone, extra: &str) -> (Request, SipMessage) {
    let invite = dial(phone);
    phone.receive(reply(&invite, 180, Some("b1"), "", ""), PEER);
    let ok = reply(
        &invite,
        200,
        Some("b1"),
        &format!("{CONTACT}{RR}{extra}"),
        &peer_sdp("sendrecv"),
    );
    phone.receive(ok.clone(), PEER);
    (invite, ok)
}

#[test]
fn invite_carries_the_dialog_headers_and_an_offer() {
    let mut a = alice(true);
    let invite = dial(&mut a);
    assert_eq!(invite.uri.to_string(), TARGET);
    let from = headers::from(&invite.headers).expect("From");
    assert_eq!(from.display_name.as_deref(), Some("Alice Smith"));
    assert_eq!(from.uri, "sip:alice@example.com");
    assert!(from.tag().is_some());
    assert!(headers::to(&invite.headers).expect("To").tag().is_none());
    assert_eq!(
        headers::cseq(&invite.headers).expect("CSeq"),
        (1, Method::Invite)
    );
    assert_eq!(
        header(&invite.headers, "Contact"),
        Some("<sip:alice@192.0.2.10:5060;transport=udp>")
    );
    assert_eq!(header(&invite.headers, "Max-Forwards"), Some("70"));
    assert_eq!(header(&invite.headers, "Session-Expires"), Some("1800"));
    assert_eq!(header(&invite.headers, "Min-SE"), Some("90"));
    assert!(super::super::build::lists(
        &invite.headers,
        "Supported",
        "timer"
    ));
    assert!(header(&invite.headers, "Route").is_none());
    let offer = sdp(&invite.body);
    let formats = &offer.media.first().expect("audio").formats;
    assert_eq!(formats, &["0", "8", "101"]);
    assert_eq!(states(&a.events()), [CallState::Calling]);
}

#[test]
fn without_session_timers_nothing_of_rfc4028_is_sent() {
    let mut a = alice(false);
    a.account.proxy = HostPort::parse("proxy.example.com:5080");
    let invite = dial(&mut a);
    assert!(header(&invite.headers, "Session-Expires").is_none());
    assert!(header(&invite.headers, "Min-SE").is_none());
    assert!(!super::super::build::lists(
        &invite.headers,
        "Supported",
        "timer"
    ));
    assert_eq!(
        header(&invite.headers, "Route"),
        Some("<sip:proxy.example.com:5080;lr>")
    );
}

#[test]
fn ringing_then_200_acks_through_the_route_set_and_starts_media() {
    let mut a = alice(false);
    let invite = dial(&mut a);
    let _ = a.events();
    a.receive(reply(&invite, 100, None, "", ""), PEER);
    assert!(a.events().is_empty());
    a.receive(reply(&invite, 180, Some("b1"), "", ""), PEER);
    assert_eq!(states(&a.events()), [CallState::Ringing]);
    let ok = reply(
        &invite,
        200,
        Some("b1"),
        &format!("{CONTACT}{RR}"),
        &peer_sdp("sendrecv"),
    );
    a.receive(ok, PEER);
    let transmits = a.transmits();
    assert_eq!(transmits.len(), 1, "only the ACK");
    // The route set is the Record-Route reversed; the first route is the
    // next hop, the remote target the Request-URI (§12.1.2, §12.2.1.1).
    assert_eq!(transmits[0].destination, addr("192.0.2.41:5060"));
    let ack = only_request(&[parse(&transmits[0])], Method::Ack);
    assert_eq!(ack.uri.to_string(), "sip:bob@192.0.2.30:5070");
    let routes: Vec<&str> = headers::routes(&ack.headers);
    assert_eq!(routes, ["<sip:192.0.2.41;lr>", "<sip:192.0.2.40;lr>"]);
    assert_eq!(headers::cseq(&ack.headers).expect("CSeq"), (1, Method::Ack));
    assert_eq!(headers::to(&ack.headers).expect("To").tag(), Some("b1"));
    assert_eq!(states(&a.events()), [CallState::Connected]);
    match media_calls(&a).as_slice() {
        [MediaCall::Start(_, media)] => {
            assert_eq!(media.send_codec.codec.encoding, "PCMA");
            assert_eq!(media.remote, addr("192.0.2.20:30000"));
        }
        other => panic!("expected one start: {other:?}"),
    }
    assert_eq!(a.call().codec(), Some("PCMA"));
    assert!(a.call().answered_at().is_some());
    assert!(a
        .call()
        .matches_dialog(a.call().call_id(), &from_tag(&invite), "b1"));
}

fn from_tag(request: &Request) -> String {
    headers::from(&request.headers)
        .expect("From")
        .tag()
        .expect("tag")
        .to_owned()
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

#[test]
fn proxy_challenge_is_answered_with_a_new_cseq_and_valid_credentials() {
    let mut a = alice(false);
    let invite = dial(&mut a);
    a.receive(
        reply(
            &invite,
            407,
            Some("p1"),
            "Proxy-Authenticate: Digest realm=\"pbx\", nonce=\"n1\"\r\n",
            "",
        ),
        PEER,
    );
    let sent = a.sent();
    // The layer ACKs the 407 itself; the retry is a new INVITE.
    let _ = only_request(&sent, Method::Ack);
    let retry = only_request(&sent, Method::Invite);
    assert_eq!(
        headers::cseq(&retry.headers).expect("CSeq"),
        (2, Method::Invite)
    );
    assert_eq!(
        headers::call_id(&retry.headers).ok(),
        headers::call_id(&invite.headers).ok()
    );
    assert_eq!(from_tag(&retry), from_tag(&invite));
    assert_eq!(retry.body, invite.body, "the same offer");
    let auth = header(&retry.headers, "Proxy-Authorization").expect("credentials");
    let ha1 = md5_hex("alice:pbx:secret");
    let ha2 = md5_hex(&format!("INVITE:{TARGET}"));
    let expected = md5_hex(&format!("{ha1}:n1:{ha2}"));
    assert!(auth.contains(&format!("response=\"{expected}\"")), "{auth}");
    assert!(auth.contains("username=\"alice\""));
    a.receive(
        reply(&retry, 200, Some("b1"), CONTACT, &peer_sdp("sendrecv")),
        PEER,
    );
    let ack = only_request(&a.sent(), Method::Ack);
    assert_eq!(header(&ack.headers, "Proxy-Authorization"), Some(auth));
    assert_eq!(
        states(&a.events()),
        [CallState::Calling, CallState::Connected]
    );
}

#[test]
fn a_rejected_password_ends_the_call_with_the_challenge() {
    let mut a = alice(false);
    let invite = dial(&mut a);
    let challenge = "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n1\"\r\n";
    a.receive(reply(&invite, 401, Some("p1"), challenge, ""), PEER);
    let retry = only_request(&a.sent(), Method::Invite);
    a.receive(reply(&retry, 401, Some("p1"), challenge, ""), PEER);
    assert!(a
        .sent()
        .iter()
        .all(|m| !matches!(m, SipMessage::Request(r) if r.method == Method::Invite)));
    assert_eq!(
        ended(&a.events()),
        Some((401, "Unauthorized".to_owned(), true))
    );
}

#[test]
fn busy_ends_the_call_by_the_remote_side() {
    let mut a = alice(false);
    let invite = dial(&mut a);
    a.receive(reply(&invite, 486, Some("b1"), "", ""), PEER);
    assert_eq!(
        ended(&a.events()),
        Some((486, "Busy Here".to_owned(), true))
    );
    assert_eq!(a.call().state(), CallState::Ended);
    assert!(a.call().is_ended());
    assert!(a.media.live().is_empty(), "RTP port released");
}

#[test]
fn no_answer_at_all_ends_with_408() {
    let mut a = alice(false);
    let _ = dial(&mut a);
    a.advance(Duration::from_secs(40));
    assert_eq!(
        ended(&a.events()),
        Some((408, "Request Timeout".to_owned(), false))
    );
}

#[test]
fn cancel_before_any_1xx_waits_for_it() {
    let mut a = alice(false);
    let invite = dial(&mut a);
    a.with(|c, ctx| c.hangup(ctx)).expect("hang up");
    assert!(a.sent().is_empty(), "§9.1: no CANCEL before a 1xx");
    // For the user the call is over at once; the INVITE goes on.
    assert_eq!(a.call().state(), CallState::Ended);
    assert_eq!(
        ended(&a.events()),
        Some((487, "Canceled".to_owned(), false))
    );
    assert!(!a.call().is_ended(), "the INVITE transaction still runs");
    a.receive(reply(&invite, 180, Some("b1"), "", ""), PEER);
    let cancel = only_request(&a.sent(), Method::Cancel);
    assert_eq!(
        headers::cseq(&cancel.headers).expect("CSeq"),
        (1, Method::Cancel)
    );
    a.receive(reply(&cancel, 200, Some("b1"), "", ""), PEER);
    a.receive(reply(&invite, 487, Some("b1"), "", ""), PEER);
    let events = a.events();
    assert!(!states(&events).contains(&CallState::Ringing));
    assert_eq!(ended(&events), None, "CallEnded comes once");
    assert!(a.call().is_ended());
}

#[test]
fn a_2xx_after_hanging_up_before_any_1xx_is_acked_and_byed() {
    let mut a = alice(false);
    let invite = dial(&mut a);
    a.with(|c, ctx| c.hangup(ctx)).expect("hang up");
    assert_eq!(
        ended(&a.events()),
        Some((487, "Canceled".to_owned(), false))
    );
    a.receive(
        reply(&invite, 200, Some("b1"), CONTACT, &peer_sdp("sendrecv")),
        PEER,
    );
    let sent = a.sent();
    let _ = only_request(&sent, Method::Ack);
    let bye = only_request(&sent, Method::Bye);
    let events = a.events();
    assert_eq!(ended(&events), None, "CallEnded comes once");
    assert!(!states(&events).contains(&CallState::Connected));
    a.receive(reply(&bye, 200, None, "", ""), PEER);
    assert!(a.call().is_ended());
}

#[test]
fn a_challenge_after_hanging_up_before_any_1xx_is_not_answered() {
    let mut a = alice(false);
    let invite = dial(&mut a);
    a.with(|c, ctx| c.hangup(ctx)).expect("hang up");
    let _ = a.events();
    a.receive(
        reply(
            &invite,
            407,
            Some("p1"),
            "Proxy-Authenticate: Digest realm=\"pbx\", nonce=\"n1\"\r\n",
            "",
        ),
        PEER,
    );
    let sent = a.sent();
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m, SipMessage::Request(r) if r.method == Method::Invite)),
        "no INVITE with credentials for a call the user hung up"
    );
    assert_eq!(ended(&a.events()), None, "CallEnded comes once");
    assert!(a.call().is_ended());
}

#[test]
fn a_200_crossing_the_cancel_is_acked_then_byed() {
    let mut a = alice(false);
    let invite = dial(&mut a);
    a.receive(reply(&invite, 180, Some("b1"), "", ""), PEER);
    a.with(|c, ctx| c.hangup(ctx)).expect("hang up");
    let _ = only_request(&a.sent(), Method::Cancel);
    a.receive(
        reply(&invite, 200, Some("b1"), CONTACT, &peer_sdp("sendrecv")),
        PEER,
    );
    let sent = a.sent();
    let ack = only_request(&sent, Method::Ack);
    let bye = only_request(&sent, Method::Bye);
    assert_eq!(ack.uri.to_string(), "sip:bob@192.0.2.30:5070");
    assert_eq!(headers::to(&bye.headers).expect("To").tag(), Some("b1"));
    assert_eq!(headers::cseq(&bye.headers).expect("CSeq"), (2, Method::Bye));
    let events = a.events();
    assert_eq!(ended(&events), Some((487, "Canceled".to_owned(), false)));
    assert!(!states(&events).contains(&CallState::Connected));
    assert!(!a.call().is_ended(), "the BYE still runs");
    a.receive(reply(&bye, 200, None, "", ""), PEER);
    assert!(a.call().is_ended());
}

#[test]
fn a_retransmitted_200_after_the_transaction_is_re_acked() {
    let mut a = alice(false);
    let (_, ok) = connect(&mut a, "");
    let first = a.transmits();
    assert_eq!(first.len(), 1);
    // Within the transaction (RFC 6026 Accepted) and after it (stray).
    a.receive(ok.clone(), PEER);
    let again = a.transmits();
    a.advance(Duration::from_secs(40));
    let _ = a.transmits();
    a.receive(ok, PEER);
    let stray = a.transmits();
    for later in [again, stray] {
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].bytes, first[0].bytes, "the same ACK");
        assert_eq!(later[0].destination, first[0].destination);
    }
}

#[test]
fn a_second_fork_answering_is_acked_and_released() {
    let mut a = alice(false);
    let (invite, _) = connect(&mut a, "");
    let _ = a.sent();
    a.receive(
        reply(
            &invite,
            200,
            Some("b2"),
            "Contact: <sip:bob@192.0.2.31>\r\n",
            &peer_sdp("sendrecv"),
        ),
        PEER,
    );
    let sent = a.sent();
    let ack = only_request(&sent, Method::Ack);
    let bye = only_request(&sent, Method::Bye);
    for r in [&ack, &bye] {
        assert_eq!(r.uri.to_string(), "sip:bob@192.0.2.31");
        assert_eq!(headers::to(&r.headers).expect("To").tag(), Some("b2"));
    }
    assert_eq!(
        a.call().state(),
        CallState::Connected,
        "the first dialog lives on"
    );
}

#[test]
fn bye_from_the_peer_is_answered_and_ends_the_call() {
    let mut a = alice(false);
    let (invite, _) = connect(&mut a, "");
    let _ = (a.sent(), a.events());
    let bye = peer_request(
        "BYE",
        "sip:alice@192.0.2.10:5060",
        &format!("<{TARGET}>;tag=b1"),
        &format!(
            "\"Alice Smith\" <sip:alice@example.com>;tag={}",
            from_tag(&invite)
        ),
        headers::call_id(&invite.headers).expect("Call-ID"),
        1,
        "",
        "",
    );
    a.receive(bye, PEER);
    assert_eq!(codes(&a.sent()), [200]);
    assert_eq!(
        ended(&a.events()),
        Some((200, "Call Ended".to_owned(), true))
    );
    assert!(a.media.live().is_empty());
}

#[test]
fn our_bye_goes_through_the_route_set() {
    let mut a = alice(false);
    let _ = connect(&mut a, "");
    let _ = (a.sent(), a.events());
    a.with(|c, ctx| c.hangup(ctx)).expect("hang up");
    let transmits = a.transmits();
    let bye = only_request(
        &transmits.iter().map(parse).collect::<Vec<_>>(),
        Method::Bye,
    );
    assert_eq!(transmits[0].destination, addr("192.0.2.41:5060"));
    assert_eq!(bye.uri.to_string(), "sip:bob@192.0.2.30:5070");
    assert_eq!(headers::cseq(&bye.headers).expect("CSeq"), (2, Method::Bye));
    assert_eq!(
        ended(&a.events()),
        Some((200, "Call Ended".to_owned(), false))
    );
    assert_eq!(
        a.with(|c, ctx| c.hangup(ctx)),
        Err(CallError::InvalidState {
            operation: "hang up",
            state: CallState::Ended
        })
    );
}

#[test]
fn out_of_order_requests_get_500() {
    let mut a = alice(false);
    let (invite, _) = connect(&mut a, "");
    let _ = a.sent();
    let request = |method: &str, cseq: u32, extra: &str, body: &str| {
        peer_request(
            method,
            "sip:alice@192.0.2.10:5060",
            &format!("<{TARGET}>;tag=b1"),
            &format!("<sip:alice@example.com>;tag={}", from_tag(&invite)),
            headers::call_id(&invite.headers).expect("Call-ID"),
            cseq,
            extra,
            body,
        )
    };
    a.receive(request("OPTIONS", 5, "", ""), PEER);
    assert_eq!(codes(&a.sent()), [200]);
    a.receive(request("OPTIONS", 3, "", ""), PEER);
    assert_eq!(codes(&a.sent()), [500]);
    a.receive(request("MESSAGE", 6, "", ""), PEER);
    let sent = a.sent();
    assert_eq!(codes(&sent), [405]);
    assert!(header(&responses(&sent)[0].headers, "Allow").is_some());
}

#[test]
fn session_interval_too_small_is_retried_with_the_minimum() {
    let mut a = alice(true);
    let invite = dial(&mut a);
    a.receive(reply(&invite, 422, Some("p"), "Min-SE: 3600\r\n", ""), PEER);
    let retry = only_request(&a.sent(), Method::Invite);
    assert_eq!(header(&retry.headers, "Session-Expires"), Some("3600"));
    assert_eq!(header(&retry.headers, "Min-SE"), Some("3600"));
    assert_eq!(
        headers::cseq(&retry.headers).expect("CSeq"),
        (2, Method::Invite)
    );
    // The same demand again is not retried forever.
    a.receive(reply(&retry, 422, Some("p"), "Min-SE: 3600\r\n", ""), PEER);
    assert!(ended(&a.events()).is_some_and(|(code, _, _)| code == 422));
}

#[test]
fn a_session_the_peer_does_not_refresh_is_ended() {
    let mut a = alice(true);
    let t0 = a.now;
    let _ = connect(
        &mut a,
        "Session-Expires: 90;refresher=uas\r\nRequire: timer\r\n",
    );
    let _ = (a.sent(), a.events());
    a.advance_to(t0 + Duration::from_secs(59));
    assert!(a.sent().is_empty());
    a.advance_to(t0 + Duration::from_secs(61));
    // 90 - min(32, 90/3) = 60 s.
    let _ = only_request(&a.sent(), Method::Bye);
    assert_eq!(
        ended(&a.events()),
        Some((408, "Session Expired".to_owned(), false))
    );
}

#[test]
fn early_media_in_183_starts_before_the_answer() {
    let mut a = alice(false);
    let invite = dial(&mut a);
    a.receive(
        reply(&invite, 183, Some("b1"), "", &peer_sdp("sendrecv")),
        PEER,
    );
    assert!(matches!(media_calls(&a).as_slice(), [MediaCall::Start(..)]));
    assert_eq!(
        states(&a.events()),
        [CallState::Calling, CallState::Ringing]
    );
    a.receive(
        reply(&invite, 200, Some("b1"), CONTACT, &peer_sdp("sendrecv")),
        PEER,
    );
    assert_eq!(
        media_calls(&a).len(),
        1,
        "the same answer is not applied twice"
    );
    assert_eq!(a.call().state(), CallState::Connected);
}

#[test]
fn hide_cid_sends_privacy_and_an_anonymous_from() {
    let mut a = alice(false);
    a.account.hide_cid = true;
    let invite = dial(&mut a);
    assert_eq!(header(&invite.headers, "Privacy"), Some("id"));
    let from = header(&invite.headers, "From").expect("From");
    assert!(
        from.starts_with("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag="),
        "From: {from}"
    );
    let mut b = alice(false);
    let plain = dial(&mut b);
    assert_eq!(header(&plain.headers, "Privacy"), None);
    assert!(header(&plain.headers, "From").is_some_and(|f| f.contains("sip:alice@")));
}
