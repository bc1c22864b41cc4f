//! Two calls back to back: Alice (192.0.2.10) calls Bob (192.0.2.20).

use std::time::{Duration, Instant};

use rsip::Method;

use super::*;
use crate::sip::sdp::Direction as SdpDirection;
use crate::sip::ua::types::CallState;

struct Pair {
    a: Phone,
    b: Phone,
}

impl Pair {
    /// Alice calls Bob, Bob answers; both connected.
    fn connected(session_timers: bool) -> Self {
        let t0 = Instant::now();
        let mut p = Pair {
            a: Phone::new("alice", ME, t0, session_timers),
            b: Phone::new("bob", PEER, t0, session_timers),
        };
        p.a.dial("sip:bob@192.0.2.20");
        p.shuttle();
        p.b.with(|c, ctx| c.answer(ctx)).expect("answer");
        p.shuttle();
        assert_eq!(p.a.call().state(), CallState::Connected);
        assert_eq!(p.b.call().state(), CallState::Connected);
        let _ = (p.a.events(), p.b.events());
        p
    }

    /// Delivers what each sent to the other until both are quiet.
    fn shuttle(&mut self) {
        loop {
            let from_a = self.a.transmits();
            let from_b = self.b.transmits();
            if from_a.is_empty() && from_b.is_empty() {
                return;
            }
            for t in from_a {
                self.b.receive(parse(&t), ME);
            }
            for t in from_b {
                self.a.receive(parse(&t), PEER);
            }
        }
    }

    /// Advances both phones in step, exchanging messages on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.a.now + by;
        loop {
            let next = [self.a.next_deadline(), self.b.next_deadline()]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= until);
            let Some(next) = next else { break };
            self.a.advance_to(next);
            self.b.advance_to(next);
            self.shuttle();
        }
        self.a.advance_to(until);
        self.b.advance_to(until);
        self.shuttle();
    }
}

fn holds(events: &[UaEvent]) -> Vec<(bool, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            UaEvent::CallHold { local, remote, .. } => Some((*local, *remote)),
            _ => None,
        })
        .collect()
}

#[test]
fn hold_offers_sendonly_and_resume_sendrecv() {
    let mut p = Pair::connected(false);
    p.a.with(|c, ctx| c.hold(ctx)).expect("hold");
    let offer = only_request(&p.a.sent(), Method::Invite);
    let offered = sdp(&offer.body);
    let m = offered.media.first().expect("audio");
    assert_eq!(offered.effective_direction(m), SdpDirection::SendOnly);
    p.b.receive(SipMessage::Request(offer), ME);
    let answer = responses(&p.b.sent()).remove(0);
    let answered = sdp(&answer.body);
    let m = answered.media.first().expect("audio");
    assert_eq!(answered.effective_direction(m), SdpDirection::RecvOnly);
    p.a.receive(SipMessage::Response(answer), PEER);
    p.shuttle();
    assert_eq!(holds(&p.a.events()), [(true, false)]);
    assert_eq!(holds(&p.b.events()), [(false, true)]);
    assert!(p.a.call().local_hold());
    match media_calls(&p.a).last() {
        Some(MediaCall::Update(_, media)) => assert_eq!(media.direction, SdpDirection::SendOnly),
        other => panic!("expected a media update: {other:?}"),
    }
    // Holding twice changes nothing.
    p.a.with(|c, ctx| c.hold(ctx)).expect("hold again");
    assert!(p.a.transmits().is_empty());

    p.a.with(|c, ctx| c.resume(ctx)).expect("resume");
    p.shuttle();
    assert_eq!(holds(&p.a.events()), [(false, false)]);
    assert_eq!(holds(&p.b.events()), [(false, false)]);
    assert!(!p.b.call().remote_hold());
}

#[test]
fn bye_from_the_callee_ends_both() {
    let mut p = Pair::connected(false);
    p.b.with(|c, ctx| c.hangup(ctx)).expect("hang up");
    p.shuttle();
    assert_eq!(
        ended(&p.b.events()),
        Some((200, "Call Ended".to_owned(), false))
    );
    assert_eq!(
        ended(&p.a.events()),
        Some((200, "Call Ended".to_owned(), true))
    );
    assert!(p.a.call().is_ended() && p.b.call().is_ended());
    assert!(p.a.media.live().is_empty() && p.b.media.live().is_empty());
}

#[test]
fn glare_is_resolved_by_random_retries() {
    let mut p = Pair::connected(false);
    p.a.with(|c, ctx| c.hold(ctx)).expect("alice holds");
    p.b.with(|c, ctx| c.hold(ctx)).expect("bob holds");
    p.shuttle();
    let now = p.a.now;
    // Alice placed the call, so she owns the Call-ID and waits longer.
    let a_wait = p.a.call().next_timeout().expect("alice retries") - now;
    let b_wait = p.b.call().next_timeout().expect("bob retries") - now;
    assert!(
        (Duration::from_millis(2100)..=Duration::from_millis(4000)).contains(&a_wait),
        "{a_wait:?}"
    );
    assert!(b_wait <= Duration::from_millis(2000), "{b_wait:?}");
    p.advance(Duration::from_secs(5));
    for phone in [&p.a, &p.b] {
        assert!(phone.call().local_hold() && phone.call().remote_hold());
        assert_eq!(phone.call().state(), CallState::Connected);
    }
}

#[test]
fn blind_transfer_both_sides() {
    let mut p = Pair::connected(false);
    p.a.with(|c, ctx| c.transfer("sip:carol@example.com", ctx))
        .expect("transfer");
    let refer = only_request(&p.a.sent(), Method::Refer);
    assert_eq!(
        header(&refer.headers, "Refer-To"),
        Some("<sip:carol@example.com>")
    );
    assert_eq!(
        header(&refer.headers, "Referred-By"),
        Some("<sip:alice@example.com>")
    );
    p.b.receive(SipMessage::Request(refer), ME);
    let sent = p.b.sent();
    assert_eq!(codes(&sent), [202]);
    let notify = only_request(&sent, Method::Notify);
    assert_eq!(header(&notify.headers, "Event"), Some("refer"));
    assert!(header(&notify.headers, "Subscription-State").is_some_and(|s| s.starts_with("active")));
    assert_eq!(notify.body, b"SIP/2.0 100 Trying\r\n");
    p.a.receive(SipMessage::Request(notify), PEER);
    p.shuttle();
    assert_eq!(
        p.a.events(),
        [UaEvent::TransferProgress {
            call: CallId(1),
            status: 100
        }]
    );
    assert_eq!(
        p.b.call
            .as_mut()
            .and_then(Call::take_transfer_request)
            .as_deref(),
        Some("sip:carol@example.com")
    );
    assert_eq!(
        p.b.call.as_mut().and_then(Call::take_transfer_request),
        None
    );

    p.b.with(|c, ctx| c.transfer_progress(200, ctx));
    let sent = p.b.sent();
    let notify = only_request(&sent, Method::Notify);
    assert_eq!(notify.body, b"SIP/2.0 200 OK\r\n");
    assert!(
        header(&notify.headers, "Subscription-State").is_some_and(|s| s.starts_with("terminated"))
    );
    let _ = only_request(&sent, Method::Bye);
    for m in sent {
        p.a.receive(m, PEER);
    }
    p.shuttle();
    let a_events = p.a.events();
    assert!(a_events.contains(&UaEvent::TransferProgress {
        call: CallId(1),
        status: 200
    }));
    assert_eq!(p.a.call().state(), CallState::Ended);
    assert!(ended(&a_events).is_some());
    assert_eq!(
        ended(&p.b.events()),
        Some((200, "Call Transferred".to_owned(), false))
    );
}

#[test]
fn a_refused_refer_is_reported() {
    let mut p = Pair::connected(false);
    p.a.with(|c, ctx| c.transfer("sip:carol@example.com", ctx))
        .expect("transfer");
    let refer = only_request(&p.a.sent(), Method::Refer);
    p.a.receive(reply(&refer, 403, None, "", ""), PEER);
    assert_eq!(
        p.a.events(),
        [UaEvent::TransferProgress {
            call: CallId(1),
            status: 403
        }]
    );
    assert_eq!(p.a.call().state(), CallState::Connected);
    assert!(p.a.with(|c, ctx| c.transfer("not a uri", ctx)).is_err());
}

#[test]
fn dtmf_by_info_both_ways() {
    let mut p = Pair::connected(false);
    p.a.with(|c, ctx| c.send_dtmf_info('#', ctx))
        .expect("send #");
    let info = only_request(&p.a.sent(), Method::Info);
    assert_eq!(
        header(&info.headers, "Content-Type"),
        Some("application/dtmf-relay")
    );
    assert_eq!(info.body, b"Signal=#\r\nDuration=160\r\n");
    p.b.receive(SipMessage::Request(info), ME);
    p.shuttle();
    assert_eq!(
        p.b.events(),
        [UaEvent::Dtmf {
            call: CallId(2),
            digit: '#'
        }]
    );
    p.b.with(|c, ctx| c.send_dtmf_info('7', ctx))
        .expect("send 7");
    p.shuttle();
    assert_eq!(
        p.a.events(),
        [UaEvent::Dtmf {
            call: CallId(1),
            digit: '7'
        }]
    );
    assert_eq!(
        p.a.with(|c, ctx| c.send_dtmf_info('x', ctx)),
        Err(CallError::InvalidDigit('x'))
    );
}

#[test]
fn session_timers_refresh_at_half_the_interval() {
    let t0 = Instant::now();
    let mut p = Pair {
        a: Phone::new("alice", ME, t0, true),
        b: Phone::new("bob", PEER, t0, true),
    };
    p.a.dial("sip:bob@192.0.2.20");
    let invite = only_request(&p.a.sent(), Method::Invite);
    let offer_version = sdp(&invite.body).origin.expect("o=").session_version;
    p.b.receive(SipMessage::Request(invite), ME);
    p.shuttle();
    p.b.with(|c, ctx| c.answer(ctx)).expect("answer");
    let ok = responses(&p.b.sent()).remove(0);
    // Alice supports timers and did not choose: she refreshes (§9).
    assert_eq!(
        header(&ok.headers, "Session-Expires"),
        Some("1800;refresher=uac")
    );
    assert!(super::super::build::lists(&ok.headers, "Require", "timer"));
    p.a.receive(SipMessage::Response(ok), PEER);
    p.shuttle();
    let _ = (p.a.events(), p.b.events());

    p.advance(Duration::from_secs(899));
    assert!(p.a.transmits().is_empty());
    p.a.advance(Duration::from_secs(2));
    let refresh = only_request(&p.a.sent(), Method::Invite);
    assert_eq!(
        header(&refresh.headers, "Session-Expires"),
        Some("1800;refresher=uac")
    );
    assert_eq!(
        sdp(&refresh.body).origin.expect("o=").session_version,
        offer_version,
        "an unchanged session keeps its SDP version"
    );
    p.b.advance(Duration::from_secs(2));
    p.b.receive(SipMessage::Request(refresh), ME);
    p.shuttle();
    // Nobody hangs up over two more hours: each refresh restarts both.
    p.advance(Duration::from_secs(7200));
    assert_eq!(p.a.call().state(), CallState::Connected);
    assert_eq!(p.b.call().state(), CallState::Connected);
    assert!(ended(&p.a.events()).is_none() && ended(&p.b.events()).is_none());
}

#[test]
fn an_unrefreshed_session_is_ended_by_the_waiting_side() {
    let mut p = Pair::connected(true);
    // Alice stops refreshing (as if she had crashed).
    p.a.call = None;
    p.b.advance(Duration::from_secs(1767));
    assert!(p.b.transmits().is_empty());
    p.b.advance(Duration::from_secs(2));
    let _ = only_request(&p.b.sent(), Method::Bye);
    assert_eq!(
        ended(&p.b.events()),
        Some((408, "Session Expired".to_owned(), false))
    );
}
