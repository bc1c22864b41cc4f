//! [`Behavior`] with simulated time.

use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::config::{Encoding, IniDocument};
use crate::sip::ua::EndReason;

const ACCOUNT: &str =
    "[Account1]\r\ndomain=pbx.example.com\r\nusername=100\r\nserver=pbx.example.com\r\n";

struct Phone {
    behavior: Behavior,
    calls: Vec<CallInfo>,
    t0: Instant,
    wall: SystemTime,
}

fn phone(settings: &str) -> Phone {
    phone_with(settings, Vec::new())
}

fn phone_with(settings: &str, contacts: Vec<Contact>) -> Phone {
    let doc = IniDocument::from_text(
        Encoding::Utf8,
        &format!("[Settings]\r\n{settings}{ACCOUNT}"),
    );
    Phone {
        behavior: Behavior::new(
            &Settings::from_document(&doc),
            &Account::list(&doc),
            contacts,
        ),
        calls: Vec::new(),
        t0: Instant::now(),
        wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_756_109_189),
    }
}

impl Phone {
    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    fn event(&mut self, secs: u64, event: UaEvent) -> Vec<Action> {
        let now = self.at(secs);
        self.behavior.handle_event(
            &event,
            &self.calls,
            now,
            self.wall + Duration::from_secs(secs),
        );
        self.drain()
    }

    fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.behavior.poll_action()).collect()
    }

    fn tick(&mut self, secs: u64) -> Vec<Action> {
        self.behavior.handle_timeout(self.at(secs));
        self.drain()
    }

    /// A call from `user` rings at `secs`.
    fn ring(&mut self, id: u64, user: &str, secs: u64) -> Vec<Action> {
        let call = CallId(id);
        let remote_uri = format!("sip:{user}@pbx.example.com");
        self.calls.push(CallInfo {
            id: call,
            account: 1,
            direction: Direction::Incoming,
            remote_uri: remote_uri.clone(),
            remote_name: "Caller".into(),
            local_uri: "<sip:100@pbx.example.com>".into(),
            state: CallState::Incoming,
            local_hold: false,
            remote_hold: false,
            codec: None,
            started_at: self.at(secs),
            answered_at: None,
        });
        self.event(
            secs,
            UaEvent::IncomingCall {
                call,
                account: 1,
                remote_uri,
                remote_name: "Caller".into(),
            },
        )
    }

    fn connect(&mut self, id: u64, secs: u64) -> Vec<Action> {
        if let Some(c) = self.calls.iter_mut().find(|c| c.id == CallId(id)) {
            c.state = CallState::Connected;
        }
        self.event(
            secs,
            UaEvent::CallState {
                call: CallId(id),
                state: CallState::Connected,
            },
        )
    }

    fn end(&mut self, id: u64, secs: u64, code: u16, text: &str) -> Vec<Action> {
        self.calls.retain(|c| c.id != CallId(id));
        self.event(
            secs,
            UaEvent::CallEnded {
                call: CallId(id),
                reason: EndReason {
                    code,
                    text: text.into(),
                    by_remote: true,
                },
            },
        )
    }
}

/// The UA commands among `actions`.
fn commands(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Answer(_) | Action::Reject(..) | Action::Redirect(..) | Action::Hangup(_)
            )
        })
        .cloned()
        .collect()
}

fn hooks(actions: &[Action]) -> Vec<(Hook, Vec<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Hook(run) => Some((run.hook, run.args.clone())),
            _ => None,
        })
        .collect()
}

fn webhooks(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Webhook(w) => Some(w.event),
            _ => None,
        })
        .collect()
}

fn logs(actions: &[Action]) -> Vec<LogWrite> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn auto_answer_all_waits_for_its_delay() {
    let mut p = phone("autoAnswer=all\r\nautoAnswerDelay=3\r\ndenyIncoming=\r\n");
    assert!(commands(&p.ring(1, "200", 10)).is_empty());
    assert_eq!(p.behavior.poll_timeout(), Some(p.at(13)));
    assert!(p.tick(12).is_empty());
    assert_eq!(p.tick(13), vec![Action::Answer(CallId(1))]);
    assert_eq!(p.behavior.poll_timeout(), None);
    assert!(p.tick(20).is_empty(), "answered once");
}

#[test]
fn auto_answer_without_delay_answers_at_once_and_does_not_ring() {
    let mut p = phone("autoAnswer=all\r\ncmdCallRing=ring\r\ncmdIncomingCall=in\r\n");
    let actions = p.ring(1, "200", 0);
    assert_eq!(commands(&actions), vec![Action::Answer(CallId(1))]);
    assert_eq!(
        hooks(&actions),
        vec![(Hook::IncomingCall, vec!["200".to_owned()])]
    );
}

#[test]
fn auto_answer_button_follows_the_aa_toggle_and_numbers() {
    let mut p = phone("autoAnswer=button\r\nAA=0\r\n");
    assert!(commands(&p.ring(1, "200", 0)).is_empty());
    let mut p = phone("autoAnswer=button\r\nAA=1\r\nautoAnswerNumber=2*;300\r\n");
    assert_eq!(
        commands(&p.ring(1, "201", 0)),
        vec![Action::Answer(CallId(1))]
    );
    p.end(1, 1, 200, "Call Ended");
    assert!(
        commands(&p.ring(2, "555", 2)).is_empty(),
        "not in autoAnswerNumber"
    );
    let mut p = phone("autoAnswer=\r\n");
    assert!(commands(&p.ring(1, "200", 0)).is_empty());
}

#[test]
fn auto_answer_calls_decides_with_other_calls_up() {
    let mut p = phone("autoAnswer=all\r\n");
    p.ring(1, "200", 0);
    p.connect(1, 1);
    assert!(
        commands(&p.ring(2, "201", 2)).is_empty(),
        "another call is up"
    );
    let mut p = phone("autoAnswer=all\r\nautoAnswerCalls=hold\r\n");
    p.ring(1, "200", 0);
    p.connect(1, 1);
    p.calls[0].local_hold = true;
    assert_eq!(
        commands(&p.ring(2, "201", 2)),
        vec![Action::Answer(CallId(2))]
    );
}

#[test]
fn dnd_and_deny_incoming_reject_with_486_and_hide_the_call() {
    let settings = "denyIncoming=button\r\nDND=1\r\ncmdIncomingCall=in\r\ncmdCallEnd=end\r\ncmdCallBusy=busy\r\ncmdCallRing=ring\r\n";
    let mut p = phone(settings);
    let actions = p.ring(1, "200", 0);
    assert_eq!(commands(&actions), vec![Action::Reject(CallId(1), 486)]);
    assert_eq!(
        hooks(&actions),
        vec![(Hook::IncomingCall, vec!["200".to_owned()])]
    );
    assert_eq!(webhooks(&actions), vec!["incoming_call", "call_rejected"]);
    let end = p.end(1, 0, 486, "Busy Here");
    assert!(end.is_empty(), "no busy/end hook, no log: {end:?}");

    let mut p = phone("denyIncoming=button\r\nDND=0\r\n");
    assert!(commands(&p.ring(1, "200", 0)).is_empty(), "DND off");
    let mut p = phone("denyIncoming=all\r\n");
    assert_eq!(
        commands(&p.ring(1, "200", 0)),
        vec![Action::Reject(CallId(1), 486)]
    );
    let mut p = phone("denyIncoming=remotedomain\r\n");
    assert!(commands(&p.ring(1, "200", 0)).is_empty(), "same domain");
    let mut p = phone("denyIncoming=user\r\n");
    p.calls.clear();
    assert!(commands(&p.ring(1, "200", 0)).is_empty(), "To is 100, ours");
    p.calls[0].local_uri = "<sip:999@pbx.example.com>".into();
    p.calls[0].id = CallId(2);
    let actions = p.event(
        1,
        UaEvent::IncomingCall {
            call: CallId(2),
            account: 1,
            remote_uri: "sip:200@elsewhere.org".into(),
            remote_name: String::new(),
        },
    );
    assert_eq!(commands(&actions), vec![Action::Reject(CallId(2), 486)]);
}

#[test]
fn call_waiting_off_and_the_call_limit_reject_the_extra_call() {
    let mut p = phone("callWaiting=0\r\ndenyIncoming=\r\n");
    assert!(commands(&p.ring(1, "200", 0)).is_empty());
    assert_eq!(
        commands(&p.ring(2, "201", 1)),
        vec![Action::Reject(CallId(2), 486)]
    );
    let mut p = phone("maxConcurrentCalls=2\r\ndenyIncoming=\r\n");
    assert!(commands(&p.ring(1, "200", 0)).is_empty());
    assert!(
        commands(&p.ring(2, "201", 1)).is_empty(),
        "call waiting is on by default"
    );
    assert_eq!(
        commands(&p.ring(3, "202", 2)),
        vec![Action::Reject(CallId(3), 486)]
    );
}

#[test]
fn forwarding_at_once_or_after_its_delay() {
    let mut p = phone("forwarding=all\r\nforwardingNumber=300\r\ncmdCallRing=ring\r\n");
    let actions = p.ring(1, "200", 0);
    assert_eq!(
        commands(&actions),
        vec![Action::Redirect(CallId(1), "300".into())]
    );
    assert!(hooks(&actions).is_empty(), "a forwarded call does not ring");

    let mut p = phone(
        "forwarding=all\r\nforwardingNumber=300\r\nforwardingDelay=5\r\ncmdCallRing=ring\r\n",
    );
    let actions = p.ring(1, "200", 0);
    assert!(commands(&actions).is_empty());
    assert_eq!(
        hooks(&actions),
        vec![(Hook::CallRing, vec!["200".to_owned()])]
    );
    assert!(p.tick(4).is_empty());
    assert_eq!(p.tick(5), vec![Action::Redirect(CallId(1), "300".into())]);

    let mut p = phone("forwarding=button\r\nFWD=0\r\nforwardingNumber=300\r\n");
    assert!(commands(&p.ring(1, "200", 0)).is_empty(), "FWD off");
    let mut p = phone("forwarding=all\r\nforwardingNumber=\r\n");
    assert!(
        commands(&p.ring(1, "200", 0)).is_empty(),
        "no number, no forwarding"
    );
}

#[test]
fn a_shorter_auto_answer_wins_over_delayed_forwarding() {
    let mut p = phone("autoAnswer=all\r\nautoAnswerDelay=2\r\nforwarding=all\r\nforwardingNumber=300\r\nforwardingDelay=5\r\n");
    p.ring(1, "200", 0);
    assert_eq!(p.tick(2), vec![Action::Answer(CallId(1))]);
    assert!(p.tick(6).is_empty());
    let mut p = phone("autoAnswer=all\r\nautoAnswerDelay=9\r\nforwarding=all\r\nforwardingNumber=300\r\nforwardingDelay=5\r\n");
    p.ring(1, "200", 0);
    assert_eq!(p.tick(5), vec![Action::Redirect(CallId(1), "300".into())]);
    assert!(p.tick(9).is_empty(), "forwarded calls are not answered");
}

#[test]
fn auto_hang_up_counts_from_the_connection() {
    let mut p = phone("autoHangUpTime=30\r\n");
    p.ring(1, "200", 0);
    p.connect(1, 4);
    assert_eq!(p.behavior.poll_timeout(), Some(p.at(34)));
    assert!(p.tick(33).is_empty());
    assert_eq!(p.tick(34), vec![Action::Hangup(CallId(1))]);
    let mut p = phone("autoHangUpTime=0\r\n");
    p.ring(1, "200", 0);
    p.connect(1, 1);
    assert_eq!(p.behavior.poll_timeout(), None);
}

#[test]
fn hooks_fire_as_microsip_fires_them() {
    let settings = "denyIncoming=\r\ncmdIncomingCall=in\r\ncmdCallRing=\"ring --x\"\r\ncmdCallAnswer=answer\r\ncmdCallStart=start\r\ncmdCallEnd=end\r\ncmdCallBusy=busy\r\n";
    let mut p = phone(settings);
    let hostile = "\"; rm -rf ~; \"";
    let encoded = "%22;%20rm%20-rf%20~;%20%22";
    let ring = hooks(&p.ring(1, encoded, 0));
    assert_eq!(
        ring,
        vec![
            (Hook::IncomingCall, vec![hostile.to_owned()]),
            (Hook::CallRing, vec!["--x".to_owned(), hostile.to_owned()]),
        ]
    );
    let up = hooks(&p.connect(1, 1));
    assert_eq!(
        up.iter().map(|h| h.0).collect::<Vec<_>>(),
        vec![Hook::CallAnswer, Hook::CallStart]
    );
    assert_eq!(
        hooks(&p.end(1, 5, 200, "Call Ended")),
        vec![(Hook::CallEnd, vec![hostile.to_owned()])]
    );
    p.ring(2, "201", 6);
    assert_eq!(
        hooks(&p.end(2, 7, 603, "Decline")),
        vec![(Hook::CallBusy, vec!["201".to_owned()])]
    );
}

#[test]
fn finished_calls_are_logged_with_contact_names() {
    let contacts = vec![Contact {
        name: "Боб".into(),
        number: "200".into(),
        ..Contact::default()
    }];
    let mut p = phone_with("denyIncoming=\r\n", contacts);
    p.ring(1, "200", 0);
    p.connect(1, 2);
    let log = logs(&p.end(1, 32, 200, "Call Ended"));
    assert_eq!(
        log,
        vec![LogWrite::Call(CallRecord {
            key: 0,
            number: "200".into(),
            name: "Боб".into(),
            kind: CallKind::Incoming,
            time: 1_756_109_189,
            duration: 30,
            info: "Call Ended".into(),
        })]
    );
    p.ring(2, "555", 40);
    let LogWrite::Call(missed) = &logs(&p.end(2, 50, 487, "Canceled"))[0] else {
        panic!("a call record");
    };
    assert_eq!(missed.to_value(), "555;Caller;2;1756109229;0;Canceled");
    let mut p = phone_with(
        "disableNameLookup=1\r\n",
        vec![Contact {
            name: "Bob".into(),
            number: "200".into(),
            ..Contact::default()
        }],
    );
    p.ring(1, "200", 0);
    let LogWrite::Call(c) = &logs(&p.end(1, 1, 487, "Canceled"))[0] else {
        panic!("a call record");
    };
    assert_eq!(c.name, "Caller");
}

#[test]
fn outgoing_calls_are_dialed_logged_and_hooked_with_macros() {
    let mut p = phone("cmdOutgoingCall=crm {number} {extension}\r\ncmdCallStart=start\r\n");
    p.calls.push(CallInfo {
        id: CallId(5),
        account: 1,
        direction: Direction::Outgoing,
        remote_uri: "sip:5551234@pbx.example.com".into(),
        remote_name: String::new(),
        local_uri: "<sip:100@pbx.example.com>".into(),
        state: CallState::Calling,
        local_hold: false,
        remote_hold: false,
        codec: None,
        started_at: p.t0,
        answered_at: None,
    });
    let actions = p.event(
        0,
        UaEvent::CallState {
            call: CallId(5),
            state: CallState::Calling,
        },
    );
    assert_eq!(
        hooks(&actions),
        vec![(
            Hook::OutgoingCall,
            vec!["5551234".to_owned(), "100".to_owned(), "5551234".to_owned()]
        )]
    );
    assert_eq!(logs(&actions), vec![LogWrite::Dialed("5551234".into())]);
    let up = hooks(&p.connect(5, 3));
    assert_eq!(
        up,
        vec![(Hook::CallStart, vec!["5551234".to_owned()])],
        "no cmdCallAnswer for our calls"
    );
    let LogWrite::Call(c) = &logs(&p.end(5, 13, 200, "Call Ended"))[0] else {
        panic!("a call record");
    };
    assert_eq!(c.to_value(), "5551234;;0;1756109189;10;Call Ended");
}

#[test]
fn uris_give_their_user_and_host() {
    assert_eq!(
        user_and_host("\"Bob\" <sip:bob@host:5060;transport=udp>"),
        ("bob".into(), "host".into())
    );
    assert_eq!(
        user_and_host("sip:$(reboot)@[::1]:5060"),
        ("$(reboot)".into(), "::1".into())
    );
    assert_eq!(
        user_and_host("sip:host.example"),
        (String::new(), "host.example".into())
    );
    assert!(wildcard("2*", "201") && wildcard("?0?", "101") && !wildcard("2*", "301"));
}
