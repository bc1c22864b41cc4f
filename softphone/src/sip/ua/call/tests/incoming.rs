//! Incoming calls from a scripted peer.

use std::time::{Duration, Instant};

use rsip::{Method, Response};

use super::*;
use crate::sip::sdp::Direction as SdpDirection;
use crate::sip::ua::types::CallState;

const CALL_ID: &str = "in-1@192.0.2.20";
const BRANCH: &str = "z9hG4bKinvite1";

fn invite_text(method: &str, extra: &str, body: &str) -> SipMessage {
    let text = format!(
        "{method} sip:alice@192.0.2.10:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.20:5060;branch={BRANCH}\r\n\
         Max-Forwards: 70\r\n\
         From: \"Bob\" <sip:bob@example.com>;tag=b1\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: {CALL_ID}\r\n\
         CSeq: 10 {method}\r\n\
         Contact: <sip:bob@192.0.2.20:5060>\r\n\
         Record-Route: <sip:192.0.2.40;lr>\r\n\
         {extra}{}Content-Length: {}\r\n\r\n{body}",
        if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        },
        body.len()
    );
    wire::parse_message(text.as_bytes()).expect("INVITE parses")
}

/// Alice receives Bob's INVITE; returns the 180.
fn ring(a: &mut Phone, extra: &str, body: &str) -> Response {
    a.receive(invite_text("INVITE", extra, body), PEER);
    let sent = a.sent();
    assert_eq!(codes(&sent), [180]);
    responses(&sent).remove(0)
}

fn our_tag(response: &Response) -> String {
    headers::to(&response.headers)
        .expect("To")
        .tag()
        .expect("our tag")
        .to_owned()
}

/// A request from Bob inside the dialog.
fn in_dialog(tag: &str, method: &str, cseq: u32, extra: &str, body: &str) -> SipMessage {
    peer_request(
        method,
        "sip:alice@192.0.2.10:5060;transport=udp",
        "\"Bob\" <sip:bob@example.com>;tag=b1",
        &format!("<sip:alice@example.com>;tag={tag}"),
        CALL_ID,
        cseq,
        extra,
        body,
    )
}

fn alice() -> Phone {
    Phone::new("alice", ME, Instant::now(), false)
}

/// Rings, answers and ACKs; returns our tag.
fn connected(a: &mut Phone) -> String {
    let ringing = ring(a, "", &peer_sdp("sendrecv"));
    let tag = our_tag(&ringing);
    a.with(|c, ctx| c.answer(ctx)).expect("answer");
    let _ = a.sent();
    a.receive(in_dialog(&tag, "ACK", 10, "", ""), PEER);
    let _ = (a.sent(), a.events());
    tag
}

#[test]
fn rings_answers_with_sdp_and_connects_on_ack() {
    let mut a = alice();
    let ringing = ring(&mut a, "", &peer_sdp("sendrecv"));
    let tag = our_tag(&ringing);
    assert_eq!(
        header(&ringing.headers, "Contact"),
        Some("<sip:alice@192.0.2.10:5060;transport=udp>")
    );
    assert_eq!(
        header(&ringing.headers, "Record-Route"),
        Some("<sip:192.0.2.40;lr>")
    );
    let events = a.events();
    assert!(events.contains(&UaEvent::IncomingCall {
        call: CallId(2),
        account: 1,
        remote_uri: "sip:bob@example.com".into(),
        remote_name: "Bob".into(),
    }));
    assert_eq!(states(&events), [CallState::Incoming]);
    assert!(a.call().matches_dialog(CALL_ID, &tag, "b1"));

    a.with(|c, ctx| c.answer(ctx)).expect("answer");
    let sent = a.sent();
    assert_eq!(codes(&sent), [200]);
    let ok = responses(&sent).remove(0);
    assert_eq!(our_tag(&ok), tag);
    assert!(header(&ok.headers, "Contact").is_some());
    let answer = sdp(&ok.body);
    let m = answer.media.first().expect("audio");
    assert_eq!(m.port, 40000);
    assert_eq!(m.formats, ["8", "101"]);
    assert_eq!(answer.effective_direction(m), SdpDirection::SendRecv);
    assert!(matches!(media_calls(&a).as_slice(), [MediaCall::Start(..)]));
    assert_eq!(
        a.call().state(),
        CallState::Incoming,
        "Connected on the ACK"
    );

    a.receive(in_dialog(&tag, "ACK", 10, "", ""), PEER);
    assert_eq!(states(&a.events()), [CallState::Connected]);
    assert_eq!(a.call().codec(), Some("PCMA"));
}

#[test]
fn without_an_ack_the_answered_call_is_byed() {
    let mut a = alice();
    let _ = ring(&mut a, "", &peer_sdp("sendrecv"));
    a.with(|c, ctx| c.answer(ctx)).expect("answer");
    let _ = a.sent();
    a.advance(Duration::from_secs(33));
    let _ = only_request(&a.sent(), Method::Bye);
    assert_eq!(ended(&a.events()), Some((408, "No ACK".to_owned(), false)));
}

#[test]
fn an_invite_without_offer_gets_ours_and_the_ack_answers() {
    let mut a = alice();
    let ringing = ring(&mut a, "", "");
    let tag = our_tag(&ringing);
    a.with(|c, ctx| c.answer(ctx)).expect("answer");
    let ok = responses(&a.sent()).remove(0);
    let offer = sdp(&ok.body);
    assert_eq!(
        offer.media.first().expect("audio").formats,
        ["0", "8", "101"]
    );
    assert!(media_calls(&a).is_empty());
    a.receive(
        in_dialog(
            &tag,
            "ACK",
            10,
            "Content-Type: application/sdp\r\n",
            &peer_sdp("sendrecv"),
        ),
        PEER,
    );
    assert!(matches!(media_calls(&a).as_slice(), [MediaCall::Start(..)]));
    assert_eq!(a.call().state(), CallState::Connected);
}

#[test]
fn reject_sends_the_status_and_ends() {
    let mut a = alice();
    let _ = ring(&mut a, "", &peer_sdp("sendrecv"));
    let _ = a.events();
    assert_eq!(
        a.with(|c, ctx| c.reject(200, ctx)),
        Err(CallError::BadStatus(200))
    );
    a.with(|c, ctx| c.reject(486, ctx)).expect("reject");
    assert_eq!(codes(&a.sent()), [486]);
    assert_eq!(
        ended(&a.events()),
        Some((486, "Busy Here".to_owned(), false))
    );
    assert!(a.media.live().is_empty());
}

#[test]
fn hangup_between_200_and_ack_byes_once_the_ack_comes() {
    let mut a = alice();
    let tag = our_tag(&ring(&mut a, "", &peer_sdp("sendrecv")));
    a.with(|c, ctx| c.answer(ctx)).expect("answer");
    a.with(|c, ctx| c.hangup(ctx)).expect("hang up");
    assert!(a
        .sent()
        .iter()
        .all(|m| matches!(m, SipMessage::Response(_))));
    assert_eq!(
        ended(&a.events()),
        Some((200, "Call Ended".to_owned(), false))
    );
    assert!(!a.call().is_ended(), "a BYE is still owed");
    a.receive(in_dialog(&tag, "ACK", 10, "", ""), PEER);
    let bye = only_request(&a.sent(), Method::Bye);
    assert_eq!(headers::cseq(&bye.headers).expect("CSeq"), (1, Method::Bye));
    a.receive(reply(&bye, 200, None, "", ""), PEER);
    assert!(a.call().is_ended());
}

#[test]
fn hangup_while_ringing_declines() {
    let mut a = alice();
    let _ = ring(&mut a, "", &peer_sdp("sendrecv"));
    a.with(|c, ctx| c.hangup(ctx)).expect("hang up");
    assert_eq!(codes(&a.sent()), [603]);
}

#[test]
fn cancel_gets_200_and_the_invite_487() {
    let mut a = alice();
    let _ = ring(&mut a, "", &peer_sdp("sendrecv"));
    let _ = a.events();
    // A CANCEL shares the INVITE's branch (§9.1).
    a.receive(invite_text("CANCEL", "", ""), PEER);
    let sent = a.sent();
    let mut got = codes(&sent);
    got.sort_unstable();
    assert_eq!(got, [200, 487]);
    let cancel_ok = responses(&sent)
        .into_iter()
        .find(|r| r.status_code.code() == 200)
        .expect("200");
    assert_eq!(
        headers::cseq(&cancel_ok.headers).expect("CSeq").1,
        Method::Cancel
    );
    assert_eq!(ended(&a.events()), Some((487, "Canceled".to_owned(), true)));
}

#[test]
fn an_unacceptable_offer_is_refused_with_488_before_ringing() {
    let mut a = alice();
    let g729 = "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n\
                m=audio 30000 RTP/AVP 18\r\n";
    a.receive(invite_text("INVITE", "", g729), PEER);
    assert_eq!(codes(&a.sent()), [488]);
    assert!(a.call.is_none());
    assert!(a.media.live().is_empty(), "the allocated port is released");
    assert!(a.events().is_empty());
}

#[test]
fn unknown_required_extensions_get_420() {
    let mut a = alice();
    a.receive(
        invite_text("INVITE", "Require: 100rel\r\n", &peer_sdp("sendrecv")),
        PEER,
    );
    assert_eq!(codes(&a.sent()), [420]);
    let refused = a.refused.as_ref().expect("refused");
    assert_eq!(
        refused.response_headers(),
        vec![("Unsupported", "100rel".to_owned())]
    );
}

#[test]
fn a_peer_hold_is_answered_recvonly() {
    let mut a = alice();
    let tag = connected(&mut a);
    a.receive(
        in_dialog(
            &tag,
            "INVITE",
            11,
            "Contact: <sip:bob@192.0.2.21>\r\nContent-Type: application/sdp\r\n",
            &peer_sdp("sendonly"),
        ),
        PEER,
    );
    let ok = responses(&a.sent()).remove(0);
    assert_eq!(ok.status_code.code(), 200);
    let answer = sdp(&ok.body);
    let m = answer.media.first().expect("audio");
    assert_eq!(answer.effective_direction(m), SdpDirection::RecvOnly);
    assert_eq!(
        a.events(),
        [UaEvent::CallHold {
            call: CallId(2),
            local: false,
            remote: true
        }]
    );
    match media_calls(&a).last() {
        Some(MediaCall::Update(_, media)) => assert_eq!(media.direction, SdpDirection::RecvOnly),
        other => panic!("expected a media update: {other:?}"),
    }
    assert!(a.call().remote_hold());
    // The re-INVITE refreshed the target: our BYE goes to the new one.
    a.receive(in_dialog(&tag, "ACK", 11, "", ""), PEER);
    a.with(|c, ctx| c.hangup(ctx)).expect("hang up");
    let bye = only_request(&a.sent(), Method::Bye);
    assert_eq!(bye.uri.to_string(), "sip:bob@192.0.2.21");
    assert_eq!(headers::routes(&bye.headers), ["<sip:192.0.2.40;lr>"]);
}

#[test]
fn dtmf_info_is_reported_and_answered() {
    let mut a = alice();
    let tag = connected(&mut a);
    a.receive(
        in_dialog(
            &tag,
            "INFO",
            11,
            "Content-Type: application/dtmf-relay\r\n",
            "Signal=5\r\nDuration=160\r\n",
        ),
        PEER,
    );
    assert_eq!(codes(&a.sent()), [200]);
    assert_eq!(
        a.events(),
        [UaEvent::Dtmf {
            call: CallId(2),
            digit: '5'
        }]
    );
    a.receive(
        in_dialog(
            &tag,
            "INFO",
            12,
            "Content-Type: application/dtmf-relay\r\n",
            "Signal=Z\r\n",
        ),
        PEER,
    );
    assert_eq!(codes(&a.sent()), [400]);
    assert!(a.events().is_empty());
}

#[test]
fn redirect_sends_302_with_the_target_as_contact_and_ends() {
    let mut a = alice();
    let _ = ring(&mut a, "", &peer_sdp("sendrecv"));
    let _ = a.events();
    a.with(|c, ctx| c.redirect("sip:200@example.com", ctx))
        .expect("redirect");
    let sent = a.sent();
    assert_eq!(codes(&sent), [302]);
    let moved = responses(&sent).remove(0);
    assert_eq!(
        header(&moved.headers, "Contact"),
        Some("<sip:200@example.com>")
    );
    assert_eq!(
        ended(&a.events()),
        Some((302, "Moved Temporarily".to_owned(), false))
    );
    assert!(
        a.with(|c, ctx| c.redirect("sip:200@example.com", ctx))
            .is_err(),
        "an ended call cannot be redirected"
    );
}
