//! What the running phone does on its own, sans-IO: fed every [`UaEvent`]
//! (with the user agent's [`CallInfo`] snapshot and the time), it answers,
//! rejects, forwards and hangs up as MicroSIP's settings say, and asks the
//! driver to run hooks, post webhooks and write the call log.
//!
//! MicroSIP semantics followed (research/microsip.md §1.5, §4.1, §4.3):
//! - `denyIncoming`: `all` rejects every call; `button` every call while
//!   `DND`=1; `user` calls whose To-user is not the account's username;
//!   `domain` calls whose To-domain is not the account's domain;
//!   `userdomain` either; `remotedomain` calls whose From-domain is not
//!   the account's domain. Rejected with 486.
//! - `callWaiting`=0: a call arriving while another exists gets 486.
//! - `maxConcurrentCalls` > 0: a call above the limit gets 486.
//! - Calls rejected by these checks are hidden: no `cmdCallRing`,
//!   `cmdCallBusy` or `cmdCallEnd`, no `[Calls]` record (a webhook
//!   `call_rejected` is posted). `cmdIncomingCall` fires for every call,
//!   before the checks.
//! - `forwarding`: `all`, or `button` while `FWD`=1, and only with a
//!   `forwardingNumber`: after `forwardingDelay` seconds (0: at once) the
//!   ringing call is redirected there (302 with the number as Contact;
//!   the research does not name the status, 302 is what PJSIP phones
//!   send). When an auto-answer with a shorter delay runs, it wins.
//! - `autoAnswer`: `all` every call; `button` while `AA`=1; `header`
//!   needs INVITE headers the user agent does not report, so it answers
//!   nothing here. `autoAnswerNumber` (patterns split by `;` or `|`, `*`
//!   any run, `?` one character) restricts it to matching callers;
//!   `autoAnswerCalls` says what other calls allow it: `""` none, `hold`
//!   all others on hold, `all` any. Answered after `autoAnswerDelay` s.
//! - `autoHangUpTime` > 0: a call is hung up that many seconds after it
//!   is connected.
//! - Hooks (§4.1): `cmdOutgoingCall` when our INVITE goes out;
//!   `cmdIncomingCall` on every incoming INVITE; `cmdCallRing` when an
//!   incoming call rings (not when it is answered or forwarded at once);
//!   `cmdCallAnswer` then `cmdCallStart` when an incoming call connects,
//!   `cmdCallStart` for an outgoing one; on the end `cmdCallBusy` for 486,
//!   600 and 603, else `cmdCallEnd`. The argument is the remote user part
//!   (percent-decoded), or the domain when it is empty (§4.1 says so for
//!   the ends; we use it for every hook so the argument is never empty).
//!   P-Asserted-Identity is not consulted (the user agent does not report
//!   it).
//! - `[Calls]` (§2.3): type 0 outgoing, 1 incoming answered, 2 missed
//!   (incoming never answered); time = start; duration = connected
//!   seconds; info = the end's status text. `[Dialed]` gets every number
//!   we call. Names: the contact's (Contacts.xml) unless
//!   `disableNameLookup`, else the caller's display name.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use super::calllog::{self, LogWrite};
use super::dialplan::Dialing;
use super::hooks::{Hook, HookRun, Macros};
use super::webhook::WebhookEvent;
use crate::config::settings::{AutoAnswer, AutoAnswerCalls, DenyIncoming, Forwarding};
use crate::config::{Account, CallKind, CallRecord, Contact, Settings};
use crate::sip::ua::{AccountId, CallId, CallInfo, CallState, Direction, UaEvent};

/// 486 Busy Here: what MicroSIP answers refused calls with.
pub const BUSY: u16 = 486;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer the ringing call.
    Answer(CallId),
    /// Reject it with this status.
    Reject(CallId, u16),
    /// Forward it (302) to this number or URI.
    Redirect(CallId, String),
    /// Hang it up.
    Hangup(CallId),
    /// Run a hook (never waited for).
    Hook(HookRun),
    /// Post a webhook event.
    Webhook(WebhookEvent),
    /// Write to the call log.
    Log(LogWrite),
}

/// What an account contributes.
#[derive(Debug, Clone, Default)]
struct AccountInfo {
    username: String,
    domain: String,
    server: String,
    display_name: String,
    dialing: Dialing,
}

/// One call as tracked here.
#[derive(Debug, Clone)]
struct Tracked {
    account: AccountId,
    direction: Direction,
    remote_uri: String,
    number: String,
    argument: String,
    name: String,
    started_wall: i64,
    connected: Option<Instant>,
    /// Refused automatically: hidden from hooks and the log.
    hidden: bool,
    answer_at: Option<Instant>,
    forward_at: Option<Instant>,
    hang_up_at: Option<Instant>,
}

impl Tracked {
    fn deadline(&self) -> Option<Instant> {
        [self.answer_at, self.forward_at, self.hang_up_at]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The settings [`Behavior`] acts on.
#[derive(Debug, Clone)]
struct Rules {
    auto_answer: bool,
    auto_answer_delay: Duration,
    auto_answer_number: Vec<String>,
    auto_answer_calls: AutoAnswerCalls,
    forward_to: Option<String>,
    forwarding_delay: Duration,
    deny: DenyIncoming,
    dnd: bool,
    call_waiting: bool,
    max_calls: usize,
    auto_hang_up: Option<Duration>,
    name_lookup: bool,
    hooks: HashMap<Hook, String>,
}

fn seconds(value: i64) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0))
}

impl Rules {
    fn new(s: &Settings) -> Self {
        let auto_answer = match s.auto_answer {
            AutoAnswer::All => true,
            AutoAnswer::Button => s.aa,
            AutoAnswer::Off | AutoAnswer::Header => false,
        };
        let forwarding = match s.forwarding {
            Forwarding::All => true,
            Forwarding::Button => s.fwd,
            Forwarding::Off => false,
        };
        let number = s.forwarding_number.trim();
        let hooks = [
            Hook::OutgoingCall,
            Hook::IncomingCall,
            Hook::CallRing,
            Hook::CallAnswer,
            Hook::CallBusy,
            Hook::CallStart,
            Hook::CallEnd,
        ]
        .into_iter()
        .filter(|h| !h.command(s).is_empty())
        .map(|h| (h, h.command(s).to_owned()))
        .collect();
        Self {
            auto_answer,
            auto_answer_delay: seconds(s.auto_answer_delay),
            auto_answer_number: s
                .auto_answer_number
                .split([';', '|'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            auto_answer_calls: s.auto_answer_calls,
            forward_to: (forwarding && !number.is_empty()).then(|| number.to_owned()),
            forwarding_delay: seconds(s.forwarding_delay),
            deny: s.deny_incoming,
            dnd: s.dnd,
            call_waiting: s.call_waiting,
            max_calls: usize::try_from(s.max_concurrent_calls).unwrap_or(0),
            auto_hang_up: (s.auto_hang_up_time > 0).then(|| seconds(s.auto_hang_up_time)),
            name_lookup: !s.disable_name_lookup,
            hooks,
        }
    }
}

/// The phone's own behaviour. See the module documentation.
#[derive(Debug)]
pub struct Behavior {
    rules: Rules,
    accounts: HashMap<AccountId, AccountInfo>,
    contacts: Vec<Contact>,
    calls: BTreeMap<CallId, Tracked>,
    actions: VecDeque<Action>,
}

impl Behavior {
    /// Built from `[Settings]`, the accounts and Contacts.xml's contacts.
    pub fn new(settings: &Settings, accounts: &[Account], contacts: Vec<Contact>) -> Self {
        let accounts = accounts
            .iter()
            .map(|a| {
                let host = |v: &str| {
                    v.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                };
                (
                    a.number,
                    AccountInfo {
                        username: a.keys.username.clone(),
                        domain: host(&a.keys.domain),
                        server: a.keys.server.clone(),
                        display_name: a.keys.display_name.clone(),
                        dialing: Dialing::from_account(a),
                    },
                )
            })
            .collect();
        Self {
            rules: Rules::new(settings),
            accounts,
            contacts,
            calls: BTreeMap::new(),
            actions: VecDeque::new(),
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Self::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls.values().filter_map(Tracked::deadline).min()
    }

    /// Fires the auto-answer, forwarding and auto-hang-up timers due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (id, call) in &mut self.calls {
            if call.answer_at.is_some_and(|t| t <= now) {
                call.answer_at = None;
                call.forward_at = None;
                self.actions.push_back(Action::Answer(*id));
            }
            if call.forward_at.is_some_and(|t| t <= now) {
                call.forward_at = None;
                call.answer_at = None;
                if let Some(to) = &self.rules.forward_to {
                    self.actions.push_back(Action::Redirect(*id, to.clone()));
                }
            }
            if call.hang_up_at.is_some_and(|t| t <= now) {
                call.hang_up_at = None;
                self.actions.push_back(Action::Hangup(*id));
            }
        }
    }

    /// One event from the user agent. `calls` is its current list of
    /// calls; `wall` the wall-clock time (for the log and webhooks).
    pub fn handle_event(
        &mut self,
        event: &UaEvent,
        calls: &[CallInfo],
        now: Instant,
        wall: SystemTime,
    ) {
        let unix = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        match event {
            UaEvent::IncomingCall {
                call,
                account,
                remote_uri,
                remote_name,
            } => self.incoming(*call, *account, remote_uri, remote_name, calls, now, unix),
            UaEvent::CallState {
                call,
                state: CallState::Calling,
            } => {
                if let Some(info) = calls.iter().find(|c| c.id == *call) {
                    self.outgoing(info, unix);
                }
            }
            UaEvent::CallState {
                call,
                state: CallState::Connected,
            } => self.connected(*call, now, unix),
            UaEvent::CallEnded { call, reason } => {
                self.ended(*call, reason.code, &reason.text, now, unix);
            }
            _ => {}
        }
    }

    fn account(&self, id: AccountId) -> AccountInfo {
        self.accounts.get(&id).cloned().unwrap_or_default()
    }

    fn tracked(
        &self,
        account: AccountId,
        direction: Direction,
        uri: &str,
        display: &str,
        unix: i64,
    ) -> Tracked {
        let info = self.account(account);
        let (user, host) = user_and_host(uri);
        let number = calllog::logged_number(uri, &info.domain, |n| info.dialing.strip_prefix(n));
        let argument = if user.is_empty() { host } else { user };
        let contact = if self.rules.name_lookup {
            calllog::contact_name(&self.contacts, &number)
                .or_else(|| calllog::contact_name(&self.contacts, &argument))
        } else {
            None
        };
        Tracked {
            account,
            direction,
            remote_uri: uri.to_owned(),
            name: contact.unwrap_or(display).to_owned(),
            number,
            argument,
            started_wall: unix,
            connected: None,
            hidden: false,
            answer_at: None,
            forward_at: None,
            hang_up_at: None,
        }
    }

    fn hook(&mut self, hook: Hook, call: &Tracked, macros: Option<&Macros>) {
        let Some(command) = self.rules.hooks.get(&hook) else {
            return;
        };
        let run = HookRun::new(hook, command, &call.argument, |t| match macros {
            Some(m) => m.expand(t),
            None => t.to_owned(),
        });
        if let Some(run) = run {
            self.actions.push_back(Action::Hook(run));
        }
    }

    fn notify(
        &mut self,
        event: &'static str,
        id: CallId,
        call: &Tracked,
        unix: i64,
        end: Option<(u16, &str, u64)>,
    ) {
        self.actions.push_back(Action::Webhook(WebhookEvent {
            event,
            time: unix,
            call: id.0,
            account: call.account,
            direction: match call.direction {
                Direction::Incoming => "incoming",
                Direction::Outgoing => "outgoing",
            },
            number: call.argument.clone(),
            name: call.name.clone(),
            remote_uri: call.remote_uri.clone(),
            code: end.map(|e| e.0),
            reason: end.map(|e| e.1.to_owned()),
            duration: end.map(|e| e.2),
        }));
    }

    #[allow(clippy::too_many_arguments)]
    fn incoming(
        &mut self,
        id: CallId,
        account: AccountId,
        uri: &str,
        display: &str,
        calls: &[CallInfo],
        now: Instant,
        unix: i64,
    ) {
        let mut call = self.tracked(account, Direction::Incoming, uri, display, unix);
        self.hook(Hook::IncomingCall, &call, None);
        self.notify("incoming_call", id, &call, unix, None);
        let others: Vec<&CallInfo> = calls
            .iter()
            .filter(|c| c.id != id && c.state != CallState::Ended)
            .collect();
        let local = calls
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.local_uri.as_str())
            .unwrap_or_default();
        if self.refused(account, uri, local, others.len()) {
            call.hidden = true;
            self.actions.push_back(Action::Reject(id, BUSY));
            self.notify(
                "call_rejected",
                id,
                &call,
                unix,
                Some((BUSY, "Busy Here", 0)),
            );
            self.calls.insert(id, call);
            return;
        }
        let answer_delay = self
            .auto_answers(&call, &others)
            .then_some(self.rules.auto_answer_delay);
        let forward_delay = self
            .rules
            .forward_to
            .as_ref()
            .map(|_| self.rules.forwarding_delay);
        let (answer_delay, forward_delay) = match (answer_delay, forward_delay) {
            (_, Some(f)) if f.is_zero() => (None, Some(f)),
            (Some(a), Some(f)) if a < f => (Some(a), None),
            other => other,
        };
        match (answer_delay, forward_delay) {
            (_, Some(f)) if f.is_zero() => {
                if let Some(to) = self.rules.forward_to.clone() {
                    self.actions.push_back(Action::Redirect(id, to));
                }
            }
            (Some(a), _) if a.is_zero() => self.actions.push_back(Action::Answer(id)),
            (answer, forward) => {
                call.answer_at = answer.map(|d| now + d);
                call.forward_at = forward.map(|d| now + d);
                self.hook(Hook::CallRing, &call, None);
                self.notify("call_ring", id, &call, unix, None);
            }
        }
        self.calls.insert(id, call);
    }

    /// Whether DND, `denyIncoming`, `callWaiting` or `maxConcurrentCalls`
    /// refuses a call from `remote` to `local` with `others` calls up.
    fn refused(&self, account: AccountId, remote: &str, local: &str, others: usize) -> bool {
        let info = self.account(account);
        let (to_user, to_host) = user_and_host(local);
        let (_, from_host) = user_and_host(remote);
        let other_user = !to_user.is_empty() && to_user != info.username;
        let other_domain = !to_host.is_empty() && !to_host.eq_ignore_ascii_case(&info.domain);
        let denied = match self.rules.deny {
            DenyIncoming::Off => false,
            DenyIncoming::All => true,
            DenyIncoming::Button => self.rules.dnd,
            DenyIncoming::User => other_user,
            DenyIncoming::Domain => other_domain,
            DenyIncoming::UserDomain => other_user || other_domain,
            DenyIncoming::RemoteDomain => !from_host.eq_ignore_ascii_case(&info.domain),
        };
        let waiting = !self.rules.call_waiting && others > 0;
        let limit = self.rules.max_calls > 0 && others + 1 > self.rules.max_calls;
        denied || waiting || limit
    }

    fn auto_answers(&self, call: &Tracked, others: &[&CallInfo]) -> bool {
        if !self.rules.auto_answer {
            return false;
        }
        let numbers = &self.rules.auto_answer_number;
        if !numbers.is_empty()
            && !numbers
                .iter()
                .any(|p| wildcard(p, &call.number) || wildcard(p, &call.argument))
        {
            return false;
        }
        match self.rules.auto_answer_calls {
            AutoAnswerCalls::NoOtherCall => others.is_empty(),
            AutoAnswerCalls::Hold => others.iter().all(|c| c.local_hold),
            AutoAnswerCalls::All => true,
        }
    }

    fn outgoing(&mut self, info: &CallInfo, unix: i64) {
        let call = self.tracked(
            info.account,
            Direction::Outgoing,
            &info.remote_uri,
            &info.remote_name,
            unix,
        );
        let account = self.account(info.account);
        let (_, domain) = user_and_host(&info.remote_uri);
        let macros = Macros {
            server: if account.server.is_empty() {
                "localhost".to_owned()
            } else {
                account.server.clone()
            },
            extension: account.username.clone(),
            caller_id: if account.display_name.is_empty() {
                account.username.clone()
            } else {
                account.display_name.clone()
            },
            number: call.argument.clone(),
            domain,
            name: call.name.clone(),
            time: unix,
        };
        self.hook(Hook::OutgoingCall, &call, Some(&macros));
        self.notify("outgoing_call", info.id, &call, unix, None);
        self.actions
            .push_back(Action::Log(LogWrite::Dialed(call.number.clone())));
        self.calls.insert(info.id, call);
    }

    fn connected(&mut self, id: CallId, now: Instant, unix: i64) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        if call.connected.is_none() {
            call.connected = Some(now);
            call.answer_at = None;
            call.forward_at = None;
            call.hang_up_at = self.rules.auto_hang_up.map(|d| now + d);
            if call.direction == Direction::Incoming {
                self.hook(Hook::CallAnswer, &call, None);
                self.notify("call_answer", id, &call, unix, None);
            }
            self.hook(Hook::CallStart, &call, None);
            self.notify("call_start", id, &call, unix, None);
        }
        self.calls.insert(id, call);
    }

    fn ended(&mut self, id: CallId, code: u16, text: &str, now: Instant, unix: i64) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        if call.hidden {
            return;
        }
        let duration = call
            .connected
            .map_or(0, |t| now.saturating_duration_since(t).as_secs());
        let busy = matches!(code, 486 | 600 | 603);
        let (hook, event) = if busy {
            (Hook::CallBusy, "call_busy")
        } else {
            (Hook::CallEnd, "call_end")
        };
        self.hook(hook, &call, None);
        if code == 302 && call.direction == Direction::Incoming && call.connected.is_none() {
            self.notify("call_forwarded", id, &call, unix, Some((code, text, 0)));
        }
        self.notify(event, id, &call, unix, Some((code, text, duration)));
        let kind = match (call.direction, call.connected) {
            (Direction::Outgoing, _) => CallKind::Outgoing,
            (Direction::Incoming, Some(_)) => CallKind::Incoming,
            (Direction::Incoming, None) => CallKind::Missed,
        };
        self.actions
            .push_back(Action::Log(LogWrite::Call(CallRecord {
                key: 0,
                number: call.number,
                name: call.name,
                kind,
                time: call.started_wall,
                duration,
                info: text.to_owned(),
            })));
    }
}

/// The user part (percent-decoded) and host of a URI or name-addr
/// (`"Bob" <sip:bob@host:5060;transport=udp>`).
pub fn user_and_host(uri: &str) -> (String, String) {
    let inner = match (uri.find('<'), uri.rfind('>')) {
        (Some(a), Some(b)) if a < b => &uri[a + 1..b],
        _ => uri.trim(),
    };
    let lower = inner.to_ascii_lowercase();
    let rest = ["sips:", "sip:", "tel:"]
        .iter()
        .find(|s| lower.starts_with(*s))
        .map_or(inner, |s| &inner[s.len()..]);
    let (user, host) = match rest.rsplit_once('@') {
        Some((u, h)) => (calllog::percent_decode(u), h),
        None => (String::new(), rest),
    };
    let host = host.split([';', '?']).next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    (user, host.to_owned())
}

/// `autoAnswerNumber`'s wildcards: `*` any run, `?` one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(&p, &t)
}

#[cfg(test)]
mod tests;
