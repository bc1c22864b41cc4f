//! The phone's side of the control channel: reads one request line per
//! connection, carries it out on the [`PhoneHandle`] and answers one JSON
//! line; `Subscribe` turns the connection into the event stream.
//!
//! MicroSIP semantics: the *active* call is the newest connected call we
//! do not hold, else the newest outgoing call still being set up. `Dial`
//! holds it and calls; `CallTo` calls without holding; `Hangup` ends it;
//! `HangupAll` ends every call but ringing incoming ones; `Hold` toggles
//! (holds the active call, else resumes the newest held one); `Answer`
//! and `Reject` act on the oldest ringing incoming call.
//!
//! With `call=N` those commands act on call N instead (the id `Status`
//! shows); a call that is gone, or in the wrong state for the command,
//! is "nothing to act on" (3) with the reason. `Hold call=N` toggles N.
//!
//! `Mute`, the volumes and `SetDevice` change the phone's audio controls,
//! which the media engine keeps and applies at once to every call (and
//! `Status` shows, with each call's media statistics).
//!
//! [`Server::execute`] is the one entry point of the socket and of the
//! window alike; after each command that changes something it sends a
//! [`Notice`] (see [`Server::notices`]), which the `Subscribe` stream
//! carries too. `Show`, `Hide` and `Minimize` go to the window attached by
//! [`Server::attach_window`]; without one (headless) they answer 3.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, watch};

use super::command::{Command, DeviceKind, ParseError, MAX_LINE};
use super::ipc::{Listener, PeerCheck};
use super::notice::{Notice, WindowRequest, WindowRequests};
use super::reply::{Reply, ReplyCode};
use crate::app::media_engine::{CallMediaStats, DeviceRole, DtmfRoute};
use crate::app::{PhoneError, PhoneHandle};
use crate::config::{self, Account, Settings};
use crate::sip::ua::{AccountId, CallId, CallInfo, CallState, Direction, UaError, UaEvent};

/// A `,` in `SendDTMF`: the pause phone dialers use.
pub const DTMF_PAUSE: Duration = Duration::from_secs(2);
/// The gap between two DTMF digits (each INFO says 160 ms).
pub const DTMF_GAP: Duration = Duration::from_millis(200);
/// How long a connection may take to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Message` waits for the far end's final answer (Timer F).
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(33);
/// One `VolumeUp`/`VolumeDown` step, in percent.
const VOLUME_STEP: u8 = 10;
/// Notices kept for a watcher that is behind (it then hears "lagged").
const NOTICE_BACKLOG: usize = 64;
/// Window requests kept for a window that is behind.
const WINDOW_BACKLOG: usize = 8;
/// What `Show`, `Hide` and `Minimize` answer when no window listens.
pub const HEADLESS: &str = "no window: this phone runs headless";

/// Executes commands against the running phone.
pub struct Server {
    /// Replaced by `Reload` (its account table changes); taken away when
    /// the phone stops, since the driver ends only once every handle is
    /// gone.
    phone: RwLock<Option<PhoneHandle>>,
    /// Serialises reloads.
    reloading: tokio::sync::Mutex<()>,
    /// The file `Reload` reads.
    ini: PathBuf,
    /// `accountId`: the account new calls and messages use.
    account: Mutex<AccountId>,
    /// `true` once the phone is stopping (asked by `Close` or a signal).
    stopping: watch::Sender<bool>,
    /// What was carried out, for the window and `Subscribe`.
    notices: broadcast::Sender<Notice>,
    /// `Show`/`Hide`/`Minimize`; its receivers are the attached windows
    /// (none: headless), so no separate count can drift from the truth.
    window: broadcast::Sender<WindowRequest>,
    /// `[AccountN] label`, what people call each account (MicroSIP's
    /// caption); read at start and by `Reload`.
    labels: RwLock<BTreeMap<AccountId, String>>,
}

impl Server {
    /// A server for `phone`, started from `ini` with `settings`.
    pub fn new(phone: PhoneHandle, ini: PathBuf, settings: &Settings) -> Arc<Server> {
        let account = pick_account(&phone, settings);
        let (stopping, _) = watch::channel(false);
        let (notices, _) = broadcast::channel(NOTICE_BACKLOG);
        let (window, _) = broadcast::channel(WINDOW_BACKLOG);
        Arc::new(Server {
            phone: RwLock::new(Some(phone)),
            reloading: tokio::sync::Mutex::new(()),
            ini,
            account: Mutex::new(account),
            stopping,
            notices,
            window,
            labels: RwLock::new(BTreeMap::new()),
        })
        .with_labels_from_ini()
    }

    /// Reads the account labels from the ini; an unreadable file only
    /// means no labels (the phone itself was started from a good copy).
    fn with_labels_from_ini(self: Arc<Self>) -> Arc<Self> {
        if let Ok(bytes) = std::fs::read(&self.ini) {
            if let Ok(doc) = config::IniDocument::parse(&bytes) {
                self.set_labels(&Account::list(&doc));
            }
        }
        self
    }

    fn set_labels(&self, accounts: &[Account]) {
        let labels = accounts
            .iter()
            .filter(|a| !a.keys.label.trim().is_empty())
            .map(|a| (a.number, a.keys.label.trim().to_owned()))
            .collect();
        if let Ok(mut slot) = self.labels.write() {
            *slot = labels;
        }
    }

    fn label(&self, account: AccountId) -> Option<String> {
        self.labels.read().ok()?.get(&account).cloned()
    }

    /// Every [`Notice`] from now on: one after each command carried out
    /// that changes something (all but `Status`), whoever sent it.
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Makes this phone one with a window: until the returned receiver is
    /// dropped, `Show`, `Hide` and `Minimize` reach it (and answer 0).
    pub fn attach_window(&self) -> WindowRequests {
        WindowRequests::new(self.window.subscribe())
    }

    /// Whether a window is attached (else the phone runs headless).
    pub fn has_window(&self) -> bool {
        self.window.receiver_count() > 0
    }

    /// Resolves once the phone should stop (`Close`, or [`Self::set_stopping`]).
    pub async fn stop_requested(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// From now on every command is answered "stopping"; the server lets
    /// go of its phone handle.
    pub fn set_stopping(&self) {
        self.stopping.send_replace(true);
        let mut slot = self
            .phone
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = None;
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// A clone of the current handle (cheap); `None` once stopping.
    fn phone(&self) -> Option<PhoneHandle> {
        self.phone
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The account new calls use.
    pub fn account(&self) -> AccountId {
        self.account.lock().map(|a| *a).unwrap_or(1)
    }

    /// Carries out one command (never `Subscribe`: that is the stream);
    /// the one entry point of the socket and the window. The future is
    /// `Send`: a window thread runs it through a runtime `Handle`.
    pub async fn execute(&self, command: Command) -> Reply {
        if self.is_stopping() {
            return Reply::new(ReplyCode::Stopping, "the phone is stopping");
        }
        let notice = command.changes_state().then(|| command.clone());
        match self.run(command).await {
            Ok(reply) => {
                if let Some(command) = notice {
                    let notice = match command.window_request() {
                        Some(request) => Notice::Window(request),
                        None => Notice::Executed {
                            command,
                            reply: reply.clone(),
                        },
                    };
                    // No watcher is fine: nobody needs telling.
                    let _ = self.notices.send(notice);
                }
                reply
            }
            Err(e) => e,
        }
    }

    async fn run(&self, command: Command) -> Result<Reply, Reply> {
        let phone = self
            .phone()
            .ok_or_else(|| Reply::new(ReplyCode::Stopping, "the phone is stopping"))?;
        match command {
            Command::Dial(target) => {
                let calls = phone.calls().await.map_err(failed)?;
                let held = match active(&calls) {
                    Some(call) if call.state == CallState::Connected => {
                        phone.hold(call.id).await.map_err(failed)?;
                        Some(call.id.0)
                    }
                    _ => None,
                };
                let id = phone.dial(self.account(), &target).await.map_err(failed)?;
                Ok(Reply::ok(format!("calling {target}"))
                    .with("call", id.0)
                    .with("held", held))
            }
            Command::CallTo(target) => {
                let id = phone.dial(self.account(), &target).await.map_err(failed)?;
                Ok(Reply::ok(format!("calling {target}")).with("call", id.0))
            }
            Command::Hangup(None) => {
                let calls = phone.calls().await.map_err(failed)?;
                let call = active(&calls)
                    .or_else(|| calls.iter().rev().find(|c| c.state != CallState::Ended))
                    .ok_or_else(|| nothing("no call to hang up"))?;
                phone.hangup(call.id).await.map_err(failed)?;
                Ok(Reply::ok(format!("call {} ended", call.id.0)).with("call", call.id.0))
            }
            Command::Hangup(Some(id)) => {
                let calls = phone.calls().await.map_err(failed)?;
                let call = named(&calls, id)?;
                phone.hangup(call.id).await.map_err(failed)?;
                Ok(Reply::ok(format!("call {} ended", call.id.0)).with("call", call.id.0))
            }
            Command::HangupAll => {
                let calls = phone.calls().await.map_err(failed)?;
                let ids: Vec<u64> = calls
                    .iter()
                    .filter(|c| !matches!(c.state, CallState::Incoming | CallState::Ended))
                    .map(|c| c.id.0)
                    .collect();
                if ids.is_empty() {
                    return Err(nothing("no call to hang up"));
                }
                for call in calls.iter().filter(|c| ids.contains(&c.id.0)) {
                    phone.hangup(call.id).await.map_err(failed)?;
                }
                Ok(Reply::ok(format!("{} call(s) ended", ids.len())).with("calls", ids))
            }
            Command::Answer(which) => {
                let calls = phone.calls().await.map_err(failed)?;
                let call = match which {
                    None => ringing(&calls).ok_or_else(|| nothing("no ringing call"))?,
                    Some(id) => in_state(&calls, id, CallState::Incoming, "answer")?,
                };
                if let Some(current) = active(&calls).filter(|c| c.state == CallState::Connected) {
                    phone.hold(current.id).await.map_err(failed)?;
                }
                phone.answer(call.id).await.map_err(failed)?;
                Ok(Reply::ok(format!("answered call {}", call.id.0)).with("call", call.id.0))
            }
            Command::Reject(which) => {
                let calls = phone.calls().await.map_err(failed)?;
                let call = match which {
                    None => ringing(&calls).ok_or_else(|| nothing("no ringing call"))?,
                    Some(id) => in_state(&calls, id, CallState::Incoming, "reject")?,
                };
                phone.reject(call.id, 486).await.map_err(failed)?;
                Ok(Reply::ok(format!("rejected call {}", call.id.0)).with("call", call.id.0))
            }
            Command::Hold(which) => {
                let calls = phone.calls().await.map_err(failed)?;
                let (call, hold) = match which {
                    None => hold_target(&calls)
                        .ok_or_else(|| nothing("no connected call to hold or resume"))?,
                    Some(id) => {
                        let call = in_state(&calls, id, CallState::Connected, "hold or resume")?;
                        (call, !call.local_hold)
                    }
                };
                if hold {
                    phone.hold(call.id).await.map_err(failed)?;
                    return Ok(Reply::ok(format!("call {} on hold", call.id.0))
                        .with("call", call.id.0)
                        .with("held", true));
                }
                phone.resume(call.id).await.map_err(failed)?;
                Ok(Reply::ok(format!("call {} resumed", call.id.0))
                    .with("call", call.id.0)
                    .with("held", false))
            }
            Command::Transfer { to, call: which } => {
                let calls = phone.calls().await.map_err(failed)?;
                let call = match which {
                    None => {
                        connected(&calls).ok_or_else(|| nothing("no connected call to transfer"))?
                    }
                    Some(id) => in_state(&calls, id, CallState::Connected, "transfer")?,
                };
                phone
                    .transfer(call.id, call.account, &to)
                    .await
                    .map_err(failed)?;
                Ok(Reply::ok(format!("call {} transferred to {to}", call.id.0))
                    .with("call", call.id.0))
            }
            Command::SendDtmf {
                digits,
                call: which,
            } => {
                let calls = phone.calls().await.map_err(failed)?;
                let call = match which {
                    None => {
                        connected(&calls).ok_or_else(|| nothing("no connected call for DTMF"))?
                    }
                    Some(id) => in_state(&calls, id, CallState::Connected, "send DTMF on")?,
                };
                send_dtmf(&phone, call.id, &digits).await
            }
            Command::Mute => {
                let audio = phone.toggle_mute();
                let word = if audio.muted { "muted" } else { "unmuted" };
                Ok(Reply::ok(format!("microphone {word}")).with("audio", audio))
            }
            Command::VolumeUp(steps) | Command::VolumeDown(steps) => {
                let delta = i16::from(steps) * i16::from(VOLUME_STEP);
                let delta = if matches!(command, Command::VolumeUp(_)) {
                    delta
                } else {
                    -delta
                };
                let audio = phone.adjust_speaker_volume(delta);
                Ok(
                    Reply::ok(format!("speaker volume {}", audio.speaker_volume))
                        .with("audio", audio),
                )
            }
            Command::SetVolume(level) => {
                let audio = phone.set_speaker_volume(level);
                Ok(
                    Reply::ok(format!("speaker volume {}", audio.speaker_volume))
                        .with("audio", audio),
                )
            }
            Command::SetMicVolume(level) => {
                let audio = phone.set_mic_volume(level);
                Ok(Reply::ok(format!("microphone volume {}", audio.mic_volume))
                    .with("audio", audio))
            }
            Command::SetDevice { kind, id } => {
                let role = match kind {
                    DeviceKind::Input => DeviceRole::Input,
                    DeviceKind::Output => DeviceRole::Output,
                    DeviceKind::Ring => DeviceRole::Ring,
                };
                let audio = phone.set_audio_device(role, &id).await.map_err(failed)?;
                Ok(Reply::ok(format!("{role} device: {id}")).with("audio", audio))
            }
            Command::Status => self.status(&phone).await,
            Command::Close => {
                self.set_stopping();
                Ok(Reply::ok("stopping the phone"))
            }
            Command::Reload => self.reload().await,
            Command::Message { to, text } => {
                let mut events = phone.subscribe();
                let id = phone
                    .message(self.account(), &to, &text)
                    .await
                    .map_err(failed)?;
                let deadline = tokio::time::Instant::now() + MESSAGE_TIMEOUT;
                loop {
                    match tokio::time::timeout_at(deadline, events.recv()).await {
                        Ok(Ok(UaEvent::MessageResult { message, code })) if message == id => {
                            return if (200..300).contains(&code) {
                                Ok(Reply::ok(format!("message delivered to {to}"))
                                    .with("sip_code", code))
                            } else {
                                Err(Reply::new(
                                    ReplyCode::Failed,
                                    format!("message to {to} refused with SIP {code}"),
                                )
                                .with("sip_code", code))
                            };
                        }
                        Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                        Ok(Err(broadcast::error::RecvError::Closed)) => {
                            return Err(Reply::new(ReplyCode::Stopping, "the phone stopped"))
                        }
                        Err(_) => {
                            return Err(Reply::new(
                                ReplyCode::Failed,
                                format!("no answer to the message to {to}"),
                            ))
                        }
                    }
                }
            }
            Command::Subscribe => Err(Reply::new(
                ReplyCode::BadCommand,
                "Subscribe: only as a connection's request",
            )),
            Command::Show => self.to_window(WindowRequest::Show),
            Command::Hide => self.to_window(WindowRequest::Hide),
            Command::Minimize => self.to_window(WindowRequest::Minimize),
        }
    }

    /// Passes a request to the attached window; headless, nothing to act on.
    fn to_window(&self, request: WindowRequest) -> Result<Reply, Reply> {
        // Sending fails exactly when no window listens.
        self.window.send(request).map_err(|_| nothing(HEADLESS))?;
        let done = match request {
            WindowRequest::Show => "window shown",
            WindowRequest::Hide => "window hidden",
            WindowRequest::Minimize => "window minimized",
        };
        Ok(Reply::ok(done).with("window", request))
    }

    async fn status(&self, phone: &PhoneHandle) -> Result<Reply, Reply> {
        let registrations = phone.registrations().await.map_err(failed)?;
        let accounts: Vec<serde_json::Value> = registrations
            .into_iter()
            .map(|(id, state)| {
                let aor = phone
                    .accounts()
                    .find(|a| a.id == id)
                    .map(|a| a.aor())
                    .unwrap_or_default();
                let mut value =
                    serde_json::json!({ "account": id, "aor": aor, "label": self.label(id) });
                if let (Some(map), Ok(serde_json::Value::Object(reg))) =
                    (value.as_object_mut(), serde_json::to_value(&state))
                {
                    map.insert(
                        "registration".into(),
                        reg.get("state").cloned().unwrap_or_default(),
                    );
                    for (k, v) in reg {
                        if k != "state" {
                            map.insert(k, v);
                        }
                    }
                }
                value
            })
            .collect();
        // An ended call may linger in the user agent while its last
        // transaction finishes (a BYE's answer, a CANCEL waiting for a
        // 1xx); for the user it is gone.
        let mut calls = phone.calls().await.map_err(failed)?;
        calls.retain(|c| c.state != CallState::Ended);
        let audio = phone.audio_controls();
        let mut media = Vec::with_capacity(calls.len());
        for c in &calls {
            media.push(phone.media_stats(c.id).await.map_err(failed)?);
        }
        let now = Instant::now();
        let calls: Vec<serde_json::Value> = calls
            .iter()
            .zip(media)
            .map(|(c, media)| {
                let mut value = serde_json::json!({
                    "id": c.id.0,
                    "account": c.account,
                    "direction": c.direction,
                    "remote": c.remote_uri,
                    "remote_name": c.remote_name,
                    "state": c.state,
                    "duration": c.answered_at.map_or(0, |at| now.saturating_duration_since(at).as_secs()),
                    "held": c.local_hold,
                    "remote_held": c.remote_hold,
                    "muted": audio.muted,
                    "codec": c.codec,
                });
                if let (Some(map), Some(media)) = (value.as_object_mut(), media) {
                    map.insert("media".into(), media_json(&media));
                }
                value
            })
            .collect();
        let message = format!("{} account(s), {} call(s)", accounts.len(), calls.len());
        Ok(Reply::ok(message)
            .with("active_account", self.account())
            .with("accounts", accounts)
            .with("calls", calls)
            .with("audio", audio))
    }

    async fn reload(&self) -> Result<Reply, Reply> {
        let _one_at_a_time = self.reloading.lock().await;
        let bytes = std::fs::read(&self.ini).map_err(|e| {
            Reply::new(
                ReplyCode::Failed,
                format!("cannot read {}: {e}", self.ini.display()),
            )
        })?;
        let (doc, diagnostics) = config::validate_ini(&bytes);
        let doc = doc.ok_or_else(|| {
            let first = diagnostics
                .first()
                .map(|d| d.to_string())
                .unwrap_or_default();
            Reply::new(
                ReplyCode::Failed,
                format!(
                    "{} is not a readable microsip.ini: {first}",
                    self.ini.display()
                ),
            )
        })?;
        let mut phone = self
            .phone()
            .ok_or_else(|| Reply::new(ReplyCode::Stopping, "the phone is stopping"))?;
        let accounts = Account::list(&doc);
        let report = phone.reload_accounts(&accounts).await.map_err(failed)?;
        self.set_labels(&accounts);
        let settings = Settings::from_document(&doc);
        let account = pick_account(&phone, &settings);
        if let Ok(mut slot) = self.phone.write() {
            // Not while stopping: the driver waits for every handle to go.
            if slot.is_some() {
                *slot = Some(phone);
            }
        }
        if let Ok(mut slot) = self.account.lock() {
            *slot = account;
        }
        let message = format!(
            "reloaded: {} added, {} changed, {} removed, {} unchanged{}",
            report.added.len(),
            report.changed.len(),
            report.removed.len(),
            report.unchanged.len(),
            if report.failed.is_empty() {
                String::new()
            } else {
                format!(", {} failed", report.failed.len())
            }
        );
        let code = if report.failed.is_empty() {
            ReplyCode::Ok
        } else {
            ReplyCode::Failed
        };
        Ok(Reply::new(code, message).with("reload", report))
    }
}

/// A call's media statistics as Status shows them (figures to 0.1).
fn media_json(media: &CallMediaStats) -> serde_json::Value {
    let tenth = |v: f64| (v * 10.0).round() / 10.0;
    let s = &media.stats;
    serde_json::json!({
        "codec": media.codec,
        "packets_sent": s.packets_sent,
        "packets_received": s.packets_received,
        "packets_lost": s.packets_lost,
        "loss_percent": tenth(s.loss_percent),
        "jitter_ms": tenth(s.jitter_ms),
        "rtt_ms": s.rtt_ms.map(tenth),
        "remote_loss_percent": s.remote_loss_percent.map(tenth),
        "remote_jitter_ms": s.remote_jitter_ms.map(tenth),
    })
}

/// `accountId` when that account exists, else the lowest-numbered one.
fn pick_account(phone: &PhoneHandle, settings: &Settings) -> AccountId {
    let wanted = u32::try_from(settings.account_id).unwrap_or(1);
    let mut ids: Vec<AccountId> = phone.accounts().map(|a| a.id).collect();
    ids.sort_unstable();
    if ids.contains(&wanted) {
        wanted
    } else {
        ids.first().copied().unwrap_or(wanted)
    }
}

/// The active call: the newest connected call we do not hold, else the
/// newest outgoing call being set up.
fn active(calls: &[CallInfo]) -> Option<&CallInfo> {
    calls
        .iter()
        .rev()
        .find(|c| c.state == CallState::Connected && !c.local_hold)
        .or_else(|| {
            calls.iter().rev().find(|c| {
                c.direction == Direction::Outgoing
                    && matches!(c.state, CallState::Calling | CallState::Ringing)
            })
        })
}

/// The connected call commands like Transfer act on: the active one, else
/// the newest connected one.
fn connected(calls: &[CallInfo]) -> Option<&CallInfo> {
    active(calls)
        .filter(|c| c.state == CallState::Connected)
        .or_else(|| calls.iter().rev().find(|c| c.state == CallState::Connected))
}

/// The oldest ringing incoming call.
fn ringing(calls: &[CallInfo]) -> Option<&CallInfo> {
    calls.iter().find(|c| c.state == CallState::Incoming)
}

/// What a plain `Hold` toggles, and whether it holds (else resumes): the
/// active connected call is held, else the newest held one resumed.
fn hold_target(calls: &[CallInfo]) -> Option<(&CallInfo, bool)> {
    if let Some(call) = active(calls).filter(|c| c.state == CallState::Connected) {
        return Some((call, true));
    }
    calls
        .iter()
        .rev()
        .find(|c| c.state == CallState::Connected && c.local_hold)
        .map(|c| (c, false))
}

/// The call `call=N` names, unless it has ended or never was.
fn named(calls: &[CallInfo], id: CallId) -> Result<&CallInfo, Reply> {
    match calls.iter().find(|c| c.id == id) {
        Some(call) if call.state != CallState::Ended => Ok(call),
        Some(_) => Err(nothing(&format!("call {} has ended", id.0))),
        None => Err(nothing(&format!(
            "no call {} (Status lists the calls and their ids)",
            id.0
        ))),
    }
}

/// The call `call=N` names, which must be in `state` for the command to
/// `act` on it (else the reply says what it is instead).
fn in_state<'a>(
    calls: &'a [CallInfo],
    id: CallId,
    state: CallState,
    act: &str,
) -> Result<&'a CallInfo, Reply> {
    let call = named(calls, id)?;
    if call.state == state {
        return Ok(call);
    }
    let wanted = match state {
        CallState::Incoming => "a ringing incoming call",
        _ => "a connected call",
    };
    Err(nothing(&format!(
        "cannot {act} call {}: it is {}, not {wanted}",
        id.0,
        describe(call)
    ))
    .with("call", id.0))
}

/// A call's direction and state in words ("an outgoing call, connected").
fn describe(call: &CallInfo) -> String {
    let direction = match call.direction {
        Direction::Outgoing => "an outgoing call",
        Direction::Incoming => "an incoming call",
    };
    let state = match call.state {
        CallState::Calling => "being set up",
        CallState::Ringing => "ringing at the far end",
        CallState::Incoming => "ringing here",
        CallState::Connected if call.local_hold => "connected, on hold",
        CallState::Connected => "connected",
        CallState::Ended => "ended",
    };
    format!("{direction}, {state}")
}

/// Sends `digits` on `call`, pausing at each `,` and between digits.
async fn send_dtmf(phone: &PhoneHandle, call: CallId, digits: &str) -> Result<Reply, Reply> {
    let mut first = true;
    // Each way used, in order (auto may differ between digits only if a
    // re-INVITE changed telephone-event meanwhile).
    let mut methods: Vec<DtmfRoute> = Vec::new();
    for c in digits.chars() {
        if c == ',' {
            tokio::time::sleep(DTMF_PAUSE).await;
            first = true;
            continue;
        }
        if !first {
            tokio::time::sleep(DTMF_GAP).await;
        }
        first = false;
        let route = phone.send_dtmf(call, c).await.map_err(failed)?;
        if !methods.contains(&route) {
            methods.push(route);
        }
    }
    let method: Vec<&str> = methods.iter().map(|m| m.name()).collect();
    Ok(Reply::ok(format!("sent {digits} on call {}", call.0))
        .with("call", call.0)
        .with("method", method.join("+")))
}

fn nothing(message: &str) -> Reply {
    Reply::new(ReplyCode::NothingToActOn, message)
}

/// A phone error as a reply: a vanished call is "nothing to act on", a
/// stopping phone "stopping", everything else "failed" with the reason.
fn failed(e: PhoneError) -> Reply {
    let code = match &e {
        PhoneError::Stopped | PhoneError::Ua(UaError::ShuttingDown) => ReplyCode::Stopping,
        PhoneError::Ua(UaError::UnknownCall(_)) => ReplyCode::NothingToActOn,
        _ => ReplyCode::Failed,
    };
    Reply::new(code, e.to_string())
}

/// Serves `listener` for the life of the process, one task per
/// connection. While the phone stops, requests are answered "stopping";
/// the socket goes when the listener is dropped (process exit).
pub async fn serve(mut listener: Listener, server: Arc<Server>) {
    loop {
        match listener.accept().await {
            Ok((stream, check)) => {
                let server = server.clone();
                tokio::spawn(async move { connection(stream, check, server).await });
            }
            Err(e) => {
                tracing::warn!(
                    "control channel {}: accept failed: {e}",
                    listener.describe()
                );
                // A persistent failure (descriptor exhaustion) must not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads at most [`MAX_LINE`] bytes up to a newline.
async fn read_request<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<String, Reply> {
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_LINE + 2).unwrap_or(u64::MAX);
    let read = tokio::time::timeout(
        REQUEST_TIMEOUT,
        (&mut *reader).take(limit).read_until(b'\n', &mut line),
    )
    .await;
    match read {
        Err(_) => Err(Reply::new(
            ReplyCode::BadCommand,
            "no request line within 10 s",
        )),
        Ok(Err(e)) => Err(Reply::new(
            ReplyCode::BadCommand,
            format!("cannot read the request: {e}"),
        )),
        Ok(Ok(_)) => {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if line.len() > MAX_LINE {
                return Err(Reply::new(
                    ReplyCode::BadCommand,
                    ParseError::TooLong.to_string(),
                ));
            }
            String::from_utf8(line)
                .map_err(|_| Reply::new(ReplyCode::BadCommand, "the request is not UTF-8"))
        }
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    check: PeerCheck,
    server: Arc<Server>,
) {
    let (read, mut write) = tokio::io::split(stream);
    if let Err(why) = check {
        tracing::warn!("control channel: refused a connection: {why}");
        let _ = write
            .write_all(Reply::new(ReplyCode::Refused, why).to_line().as_bytes())
            .await;
        return;
    }
    let mut reader = BufReader::new(read);
    let reply = match read_request(&mut reader).await {
        Err(reply) => reply,
        Ok(line) => match Command::parse(&line) {
            Err(e) => Reply::new(ReplyCode::BadCommand, e.to_string()),
            Ok(Command::Subscribe) => {
                subscribe(reader, write, &server).await;
                return;
            }
            Ok(command) => {
                tracing::info!("control: {command}");
                server.execute(command).await
            }
        },
    };
    let _ = write.write_all(reply.to_line().as_bytes()).await;
    let _ = write.shutdown().await;
}

/// The event stream: an "ok" reply, then one JSON line per event, until
/// the client goes away or the phone stops.
async fn subscribe<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut reader: BufReader<R>,
    mut write: W,
    server: &Server,
) {
    let mut notices = server.notices();
    let Some(mut events) = server.phone().map(|p| p.subscribe()) else {
        let _ = write
            .write_all(
                Reply::new(ReplyCode::Stopping, "the phone is stopping")
                    .to_line()
                    .as_bytes(),
            )
            .await;
        return;
    };
    if write
        .write_all(Reply::ok("subscribed").to_line().as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let mut sink = [0u8; 256];
    loop {
        let line = tokio::select! {
            got = events.recv() => match got {
                Ok(event) => serde_json::to_string(&event).ok(),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some(serde_json::json!({"event": "lagged", "missed": missed}).to_string())
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            got = notices.recv() => match got {
                Ok(notice) => serde_json::to_string(&notice).ok(),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some(serde_json::json!({"event": "lagged", "missed": missed}).to_string())
                }
                // Not while this connection holds the server; never spin.
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // Anything the client sends is ignored; its end closes the stream.
            read = reader.read(&mut sink) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => None,
            },
        };
        if let Some(mut line) = line {
            line.push('\n');
            if write.write_all(line.as_bytes()).await.is_err() || write.flush().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn call(id: u64, direction: Direction, state: CallState, held: bool) -> CallInfo {
        CallInfo {
            id: CallId(id),
            account: 1,
            direction,
            remote_uri: format!("sip:{id}@x"),
            remote_name: String::new(),
            local_uri: "sip:me@x".into(),
            state,
            local_hold: held,
            remote_hold: false,
            codec: None,
            started_at: Instant::now(),
            answered_at: None,
        }
    }

    #[test]
    fn the_active_call_is_the_newest_unheld_connected_one() {
        use CallState::{Connected, Ringing};
        use Direction::{Incoming as In, Outgoing};
        let ringing_in = CallState::Incoming;
        let calls = [
            call(1, Outgoing, Connected, false),
            call(2, In, Connected, true),
            call(3, In, ringing_in, false),
        ];
        assert_eq!(active(&calls).map(|c| c.id.0), Some(1));
        assert_eq!(ringing(&calls).map(|c| c.id.0), Some(3));
        let calls = [
            call(1, Outgoing, Connected, true),
            call(2, Outgoing, Ringing, false),
        ];
        assert_eq!(active(&calls).map(|c| c.id.0), Some(2));
        assert_eq!(
            connected(&calls).map(|c| c.id.0),
            Some(1),
            "held, but connected"
        );
        let calls = [call(1, In, ringing_in, false)];
        assert!(
            active(&calls).is_none(),
            "a ringing incoming call is not active"
        );
        assert!(ringing(&[]).is_none());
    }

    #[test]
    fn status_shows_a_calls_media_figures_rounded() {
        let media = CallMediaStats {
            codec: "PCMU/8000".into(),
            stats: crate::media::MediaStats {
                packets_sent: 120,
                packets_received: 118,
                packets_lost: 2,
                loss_percent: 1.666_666,
                jitter_ms: 3.125,
                rtt_ms: Some(12.049),
                ..Default::default()
            },
        };
        let value = media_json(&media);
        assert_eq!(value["codec"], "PCMU/8000");
        assert_eq!(value["packets_sent"], 120);
        assert_eq!(value["packets_received"], 118);
        assert_eq!(value["loss_percent"], 1.7);
        assert_eq!(value["jitter_ms"], 3.1);
        assert_eq!(value["rtt_ms"], 12.0);
        assert!(value["remote_jitter_ms"].is_null(), "{value}");
    }

    #[test]
    fn a_named_call_must_exist_and_be_in_the_right_state() {
        use CallState::{Connected, Ended, Ringing};
        use Direction::{Incoming as In, Outgoing};
        let calls = [
            call(1, Outgoing, Connected, false),
            call(2, In, CallState::Incoming, false),
            call(3, Outgoing, Ringing, false),
            call(4, In, Connected, true),
            call(5, Outgoing, Ended, false),
        ];
        assert_eq!(named(&calls, CallId(3)).map(|c| c.id.0), Ok(3));
        let gone = named(&calls, CallId(9)).expect_err("no call 9");
        assert_eq!(gone.code, ReplyCode::NothingToActOn.number());
        assert_eq!(
            gone.message,
            "no call 9 (Status lists the calls and their ids)"
        );
        let ended = named(&calls, CallId(5)).expect_err("ended");
        assert_eq!(ended.message, "call 5 has ended");
        assert_eq!(
            in_state(&calls, CallId(2), CallState::Incoming, "answer").map(|c| c.id.0),
            Ok(2)
        );
        let wrong = in_state(&calls, CallId(1), CallState::Incoming, "answer")
            .expect_err("an outgoing call is not answered");
        assert_eq!(wrong.code, ReplyCode::NothingToActOn.number());
        assert_eq!(
            wrong.message,
            "cannot answer call 1: it is an outgoing call, connected, \
             not a ringing incoming call"
        );
        assert_eq!(wrong.data["call"], 1);
        let ringing_far = in_state(&calls, CallId(3), Connected, "hold or resume")
            .expect_err("not connected yet");
        assert_eq!(
            ringing_far.message,
            "cannot hold or resume call 3: it is an outgoing call, ringing at the far end, \
             not a connected call"
        );
        let ringing_here =
            in_state(&calls, CallId(2), Connected, "transfer").expect_err("ringing here");
        assert!(
            ringing_here
                .message
                .contains("an incoming call, ringing here"),
            "{}",
            ringing_here.message
        );
        assert_eq!(
            in_state(&calls, CallId(4), Connected, "hold or resume").map(|c| c.local_hold),
            Ok(true),
            "a held call is connected: Hold call=4 resumes it"
        );
    }

    #[test]
    fn a_plain_hold_holds_the_active_call_else_resumes_the_newest_held() {
        use CallState::Connected;
        use Direction::{Incoming as In, Outgoing};
        let calls = [
            call(1, Outgoing, Connected, true),
            call(2, In, Connected, false),
        ];
        assert_eq!(
            hold_target(&calls).map(|(c, h)| (c.id.0, h)),
            Some((2, true))
        );
        let calls = [
            call(1, Outgoing, Connected, true),
            call(2, In, Connected, true),
        ];
        assert_eq!(
            hold_target(&calls).map(|(c, h)| (c.id.0, h)),
            Some((2, false))
        );
        assert!(hold_target(&[call(1, In, CallState::Incoming, false)]).is_none());
    }

    /// A phone on loopback with one account (never registering) whose
    /// numbers go to `domain`, and its server.
    async fn server(domain: &str) -> (Arc<Server>, PhoneHandle, tokio::task::JoinHandle<()>) {
        let text = format!(
            "[Settings]\r\nsourcePort=0\r\naudioInputDevice=null\r\naudioOutputDevice=null\r\n\
             [Account1]\r\ndomain={domain}\r\nusername=alice\r\n"
        );
        let doc = config::IniDocument::parse(text.as_bytes()).expect("test ini");
        let settings = Settings::from_document(&doc);
        let (phone, task) = crate::app::start(crate::app::PhoneConfig {
            settings: settings.clone(),
            accounts: Account::list(&doc),
            bind: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            tls_ca: None,
            behavior: Default::default(),
        })
        .await
        .expect("the phone starts");
        let server = Server::new(phone.clone(), PathBuf::from("unused.ini"), &settings);
        (server, phone, task)
    }

    async fn stop(server: Arc<Server>, phone: PhoneHandle, task: tokio::task::JoinHandle<()>) {
        server.set_stopping();
        phone.stop(task).await;
    }

    #[tokio::test]
    async fn window_requests_need_an_attached_window() {
        let (server, phone, task) = server("127.0.0.1:9").await;
        let mut notices = server.notices();
        assert!(!server.has_window());
        for command in [Command::Show, Command::Hide, Command::Minimize] {
            let reply = server.execute(command.clone()).await;
            assert_eq!(reply.code, ReplyCode::NothingToActOn.number(), "{command}");
            assert_eq!(reply.message, HEADLESS);
        }
        assert!(
            notices.try_recv().is_err(),
            "a refused request is no notice"
        );

        let mut window = server.attach_window();
        assert!(server.has_window());
        let reply = server.execute(Command::Show).await;
        assert_eq!(
            (reply.code, reply.message.as_str()),
            (0, "window shown"),
            "{reply:?}"
        );
        assert_eq!(reply.data["window"], "show");
        assert_eq!(server.execute(Command::Minimize).await.code, 0);
        assert_eq!(window.try_recv(), Some(WindowRequest::Show));
        assert_eq!(window.recv().await, Some(WindowRequest::Minimize));
        assert_eq!(window.try_recv(), None);
        assert_eq!(
            notices.try_recv().ok(),
            Some(Notice::Window(WindowRequest::Show))
        );
        assert_eq!(
            notices.try_recv().ok(),
            Some(Notice::Window(WindowRequest::Minimize))
        );

        // Two windows both hear it; with both gone the phone is headless.
        let mut second = server.attach_window();
        assert_eq!(server.execute(Command::Hide).await.code, 0);
        assert_eq!(window.try_recv(), Some(WindowRequest::Hide));
        assert_eq!(second.try_recv(), Some(WindowRequest::Hide));
        drop(window);
        drop(second);
        assert!(!server.has_window());
        assert_eq!(
            server.execute(Command::Show).await.code,
            ReplyCode::NothingToActOn.number()
        );
        stop(server, phone, task).await;
    }

    #[tokio::test]
    async fn every_command_that_changes_something_is_a_notice() {
        let (server, phone, task) = server("127.0.0.1:9").await;
        let mut notices = server.notices();
        let reply = server.execute(Command::Mute).await;
        assert_eq!(reply.code, 0, "{reply:?}");
        match notices.try_recv() {
            Ok(Notice::Executed { command, reply: r }) => {
                assert_eq!(command, Command::Mute);
                assert_eq!(r, reply);
            }
            other => panic!("no Mute notice: {other:?}"),
        }
        assert_eq!(server.execute(Command::Status).await.code, 0);
        assert!(notices.try_recv().is_err(), "Status changes nothing");
        let failed = server.execute(Command::Hangup(None)).await;
        assert_eq!(failed.code, ReplyCode::NothingToActOn.number());
        assert!(notices.try_recv().is_err(), "nothing was done");
        assert_eq!(server.execute(Command::SetVolume(30)).await.code, 0);
        let Ok(Notice::Executed { command, reply }) = notices.try_recv() else {
            panic!("no SetVolume notice");
        };
        assert_eq!(command, Command::SetVolume(30));
        assert_eq!(reply.data["audio"]["speaker_volume"], 30);
        // Close too: a window learns the phone stops.
        assert_eq!(server.execute(Command::Close).await.code, 0);
        assert!(matches!(
            notices.try_recv(),
            Ok(Notice::Executed {
                command: Command::Close,
                ..
            })
        ));
        stop(server, phone, task).await;
    }

    #[tokio::test]
    async fn a_named_call_is_the_one_acted_on_or_the_reply_says_why_not() {
        // A far end that never answers: the call stays "being set up".
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let domain = silent.local_addr().expect("addr").to_string();
        let (server, phone, task) = server(&domain).await;
        for command in [
            Command::Hangup(Some(CallId(77))),
            Command::Answer(Some(CallId(77))),
            Command::Reject(Some(CallId(77))),
            Command::Hold(Some(CallId(77))),
            Command::Transfer {
                to: "1002".into(),
                call: Some(CallId(77)),
            },
            Command::SendDtmf {
                digits: "1".into(),
                call: Some(CallId(77)),
            },
        ] {
            let reply = server.execute(command.clone()).await;
            assert_eq!(reply.code, ReplyCode::NothingToActOn.number(), "{command}");
            assert!(reply.message.contains("no call 77"), "{command}: {reply:?}");
        }
        let dialed = server.execute(Command::CallTo("1001".into())).await;
        assert_eq!(dialed.code, 0, "{dialed:?}");
        let id = CallId(dialed.data["call"].as_u64().expect("a call id"));
        for (command, why) in [
            (Command::Answer(Some(id)), "cannot answer call"),
            (Command::Reject(Some(id)), "cannot reject call"),
            (Command::Hold(Some(id)), "cannot hold or resume call"),
            (
                Command::Transfer {
                    to: "1002".into(),
                    call: Some(id),
                },
                "cannot transfer call",
            ),
        ] {
            let reply = server.execute(command.clone()).await;
            assert_eq!(reply.code, ReplyCode::NothingToActOn.number(), "{command}");
            assert!(
                reply.message.contains(why) && reply.message.contains("an outgoing call"),
                "{command}: {reply:?}"
            );
        }
        // Two calls ring here; naming the newer one acts on it, where a
        // plain Reject would take the oldest.
        let to = phone.local_addr();
        for n in [1, 2] {
            silent
                .send_to(
                    invite(n, silent.local_addr().expect("addr"), to).as_bytes(),
                    to,
                )
                .await
                .expect("send the INVITE");
        }
        let ringing = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let calls = phone.calls().await.expect("calls");
                let ids: Vec<CallId> = calls
                    .iter()
                    .filter(|c| c.state == CallState::Incoming)
                    .map(|c| c.id)
                    .collect();
                if ids.len() == 2 {
                    return ids;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("two incoming calls");
        let (first, second) = (ringing[0], ringing[1]);
        let reply = server.execute(Command::Hold(Some(first))).await;
        assert_eq!(reply.code, ReplyCode::NothingToActOn.number());
        assert_eq!(
            reply.message,
            format!(
                "cannot hold or resume call {}: it is an incoming call, ringing here, \
                 not a connected call",
                first.0
            )
        );
        let reply = server.execute(Command::Reject(Some(second))).await;
        assert_eq!(
            (reply.code, &reply.data["call"]),
            (0, &Value::from(second.0))
        );
        assert_eq!(final_code(&silent, "call-2@test").await, 486);
        let calls = phone.calls().await.expect("calls");
        let state = |c: CallId| calls.iter().find(|i| i.id == c).map(|i| i.state);
        assert_eq!(
            state(first),
            Some(CallState::Incoming),
            "the other still rings"
        );
        assert!(matches!(state(second), None | Some(CallState::Ended)));
        let again = server.execute(Command::Reject(Some(second))).await;
        assert_eq!(again.code, ReplyCode::NothingToActOn.number());
        assert!(
            again
                .message
                .starts_with(&format!("call {} has ended", second.0))
                || again.message.starts_with(&format!("no call {}", second.0)),
            "{again:?}"
        );
        let reply = server.execute(Command::Hangup(Some(first))).await;
        assert_eq!(reply.code, 0, "{reply:?}");
        assert_eq!(final_code(&silent, "call-1@test").await, 603);
        stop(server, phone, task).await;
    }

    /// An INVITE from `from` to alice at `to`, Call-ID `call-N@test`.
    fn invite(n: u32, from: std::net::SocketAddr, to: std::net::SocketAddr) -> String {
        let sdp = format!(
            "v=0\r\no=- {n} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4{n}000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        format!(
            "INVITE sip:alice@{to} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {from};branch=z9hG4bK-test-{n}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:bob@{from}>;tag=bob-{n}\r\n\
             To: <sip:alice@{to}>\r\n\
             Call-ID: call-{n}@test\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:bob@{from}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    }

    /// The first final (>= 200) response `socket` receives for `call_id`.
    async fn final_code(socket: &tokio::net::UdpSocket, call_id: &str) -> u16 {
        let mut buf = vec![0u8; 65536];
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (n, _) = socket.recv_from(&mut buf).await.expect("recv");
                let text = String::from_utf8_lossy(&buf[..n]);
                let code = text
                    .strip_prefix("SIP/2.0 ")
                    .and_then(|t| t.get(..3))
                    .and_then(|c| c.parse::<u16>().ok());
                let ours = text
                    .lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("call-id:") && l.contains(call_id));
                if let (Some(code), true) = (code, ours) {
                    if code >= 200 {
                        return code;
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no final response for {call_id}"))
    }

    #[test]
    fn the_server_is_driven_from_another_thread_through_a_handle() {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let runtime = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let (server, phone, task) = server("127.0.0.1:9").await;
                let _ = ready_tx.send((tokio::runtime::Handle::current(), server.clone()));
                server.stop_requested().await;
                stop(server, phone, task).await;
            });
        });
        let (handle, server): (tokio::runtime::Handle, Arc<Server>) =
            ready_rx.recv().expect("the phone started");
        let run = |command: Command| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let server = server.clone();
            // What a window does: spawn the command, wait off the runtime.
            handle.spawn(async move {
                let _ = tx.send(server.execute(command).await);
            });
            rx.blocking_recv().expect("a reply")
        };
        assert_eq!(run(Command::Mute).data["audio"]["muted"], true);
        assert_eq!(run(Command::Close).code, 0);
        runtime.join().expect("the runtime thread ends");
    }

    #[test]
    fn dtmf_methods_have_reply_names() {
        let names: Vec<&str> = [DtmfRoute::Rfc4733, DtmfRoute::InBand, DtmfRoute::SipInfo]
            .iter()
            .map(|r| r.name())
            .collect();
        assert_eq!(names, ["rfc4733", "inband", "info"]);
    }

    #[test]
    fn errors_map_to_their_codes() {
        assert_eq!(
            failed(PhoneError::Stopped).code,
            ReplyCode::Stopping.number()
        );
        assert_eq!(
            failed(PhoneError::Ua(UaError::UnknownCall(CallId(4)))).code,
            ReplyCode::NothingToActOn.number()
        );
        let reply = failed(PhoneError::Resolve {
            host: "nowhere.invalid".into(),
            why: "no such host".into(),
        });
        assert_eq!(reply.code, ReplyCode::Failed.number());
        assert!(
            reply.message.contains("nowhere.invalid"),
            "{}",
            reply.message
        );
    }
}
