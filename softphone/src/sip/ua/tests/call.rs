//! Calls between two agents through the dispatcher, with FakeMedia.

use std::time::Instant;

use super::*;

fn agents() -> (UserAgent, UserAgent) {
    let mut alice = account(1, "alice", "pw");
    alice.registrar = None;
    let mut bob = account(1, "bob", "pw");
    bob.registrar = None;
    (agent(ALICE, vec![alice]), agent(BOB, vec![bob]))
}

fn states(events: &[UaEvent], of: CallId) -> Vec<CallState> {
    events
        .iter()
        .filter_map(|e| match e {
            UaEvent::CallState { call, state } if *call == of => Some(*state),
            _ => None,
        })
        .collect()
}

fn ended(events: &[UaEvent], of: CallId) -> Option<EndReason> {
    events.iter().find_map(|e| match e {
        UaEvent::CallEnded { call, reason } if *call == of => Some(reason.clone()),
        _ => None,
    })
}

/// A calls B; returns both ids once B rings.
fn ring(a: &mut UserAgent, b: &mut UserAgent, now: Instant) -> (CallId, CallId) {
    let outgoing = a
        .call(1, &format!("sip:bob@{BOB}"), addr(BOB), now)
        .expect("call");
    shuttle((&mut *a, ALICE), (&mut *b, BOB), now);
    let b_events = events(b);
    let incoming = b_events
        .iter()
        .find_map(|e| match e {
            UaEvent::IncomingCall {
                call,
                account,
                remote_uri,
                ..
            } => {
                assert_eq!(*account, 1);
                assert_eq!(remote_uri, "sip:alice@example.com");
                Some(*call)
            }
            _ => None,
        })
        .expect("B rings");
    assert!(states(&events(a), outgoing).contains(&CallState::Ringing));
    let a_call = a.calls().next().expect("A's call");
    assert_eq!(
        (a_call.id, a_call.direction, a_call.state),
        (outgoing, Direction::Outgoing, CallState::Ringing)
    );
    let b_call = b.calls().next().expect("B's call");
    assert_eq!(
        (b_call.id, b_call.direction, b_call.state),
        (incoming, Direction::Incoming, CallState::Incoming)
    );
    (outgoing, incoming)
}

#[test]
fn call_rings_connects_and_hangs_up() {
    let (mut a, mut b) = agents();
    let now = Instant::now();
    let (outgoing, incoming) = ring(&mut a, &mut b, now);

    b.answer(incoming, now).expect("answer");
    shuttle((&mut a, ALICE), (&mut b, BOB), now);
    assert!(states(&events(&mut a), outgoing).contains(&CallState::Connected));
    assert!(states(&events(&mut b), incoming).contains(&CallState::Connected));
    let a_call = a.calls().next().expect("A's call");
    assert_eq!(a_call.state, CallState::Connected);
    assert_eq!(a_call.codec.as_deref(), Some("PCMA"));
    assert!(a_call.answered_at.is_some());
    assert_eq!(
        b.calls().next().map(|c| c.state),
        Some(CallState::Connected)
    );

    a.hangup(outgoing, now).expect("hang up");
    shuttle((&mut a, ALICE), (&mut b, BOB), now);
    let a_end = ended(&events(&mut a), outgoing).expect("A's call ended");
    assert!(!a_end.by_remote);
    let b_end = ended(&events(&mut b), incoming).expect("B's call ended");
    assert!(b_end.by_remote);
    assert_eq!(a.calls().count(), 0, "ended calls are dropped");
    assert_eq!(b.calls().count(), 0);
    assert_eq!(a.hangup(outgoing, now), Err(UaError::UnknownCall(outgoing)));

    a.shutdown(now);
    b.shutdown(now);
    assert!(a.is_idle() && b.is_idle());
}

#[test]
fn caller_hangs_up_while_it_rings() {
    let (mut a, mut b) = agents();
    let now = Instant::now();
    let (outgoing, incoming) = ring(&mut a, &mut b, now);
    a.hangup(outgoing, now).expect("cancel");
    shuttle((&mut a, ALICE), (&mut b, BOB), now);
    let b_end = ended(&events(&mut b), incoming).expect("B stops ringing");
    assert_eq!(b_end.code, 487);
    assert!(b_end.by_remote);
    let a_end = ended(&events(&mut a), outgoing).expect("A's call ended");
    assert_eq!(a_end.code, 487);
    assert_eq!(a.calls().count(), 0);
    assert_eq!(b.calls().count(), 0);
}

#[test]
fn shutdown_ends_a_connected_call_and_reaches_idle() {
    let (mut a, mut b) = agents();
    let now = Instant::now();
    let (outgoing, incoming) = ring(&mut a, &mut b, now);
    b.answer(incoming, now).expect("answer");
    shuttle((&mut a, ALICE), (&mut b, BOB), now);
    events(&mut a);
    a.shutdown(now);
    assert!(!a.is_idle(), "the BYE is not answered yet");
    assert_eq!(
        a.call(1, "sip:carol@example.com", addr(BOB), now),
        Err(UaError::ShuttingDown)
    );
    shuttle((&mut a, ALICE), (&mut b, BOB), now);
    assert!(ended(&events(&mut a), outgoing).is_some());
    assert!(a.is_idle());
}
