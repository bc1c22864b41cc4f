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
//! `Mute`, the volumes and `SetDevice` change the phone's audio controls,
//! which the media engine keeps and applies at once to every call (and
//! `Status` shows, with each call's media statistics).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, watch};

use super::command::{Command, DeviceKind, ParseError, MAX_LINE};
use super::ipc::{Listener, PeerCheck};
use super::reply::{Reply, ReplyCode};
use crate::app::media_engine::{CallMediaStats, DeviceRole, DtmfRoute};
use crate::app::{PhoneError, PhoneHandle};
use crate::config::{self, Account, Settings};
use crate::sip::ua::{AccountId, CallInfo, CallState, Direction, UaError, UaEvent};

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
}

impl Server {
    /// A server for `phone`, started from `ini` with `settings`.
    pub fn new(phone: PhoneHandle, ini: PathBuf, settings: &Settings) -> Arc<Server> {
        let account = pick_account(&phone, settings);
        let (stopping, _) = watch::channel(false);
        Arc::new(Server {
            phone: RwLock::new(Some(phone)),
            reloading: tokio::sync::Mutex::new(()),
            ini,
            account: Mutex::new(account),
            stopping,
        })
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

    /// Carries out one command (never `Subscribe`: that is the stream).
    pub async fn execute(&self, command: Command) -> Reply {
        if self.is_stopping() {
            return Reply::new(ReplyCode::Stopping, "the phone is stopping");
        }
        match self.run(command).await {
            Ok(reply) => reply,
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
            Command::Hangup => {
                let calls = phone.calls().await.map_err(failed)?;
                let call = active(&calls)
                    .or_else(|| calls.iter().rev().find(|c| c.state != CallState::Ended))
                    .ok_or_else(|| nothing("no call to hang up"))?;
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
            Command::Answer => {
                let calls = phone.calls().await.map_err(failed)?;
                let call = ringing(&calls).ok_or_else(|| nothing("no ringing call"))?;
                if let Some(current) = active(&calls).filter(|c| c.state == CallState::Connected) {
                    phone.hold(current.id).await.map_err(failed)?;
                }
                phone.answer(call.id).await.map_err(failed)?;
                Ok(Reply::ok(format!("answered call {}", call.id.0)).with("call", call.id.0))
            }
            Command::Reject => {
                let calls = phone.calls().await.map_err(failed)?;
                let call = ringing(&calls).ok_or_else(|| nothing("no ringing call"))?;
                phone.reject(call.id, 486).await.map_err(failed)?;
                Ok(Reply::ok(format!("rejected call {}", call.id.0)).with("call", call.id.0))
            }
            Command::Hold => {
                let calls = phone.calls().await.map_err(failed)?;
                if let Some(call) = active(&calls).filter(|c| c.state == CallState::Connected) {
                    phone.hold(call.id).await.map_err(failed)?;
                    return Ok(Reply::ok(format!("call {} on hold", call.id.0))
                        .with("call", call.id.0)
                        .with("held", true));
                }
                let call = calls
                    .iter()
                    .rev()
                    .find(|c| c.state == CallState::Connected && c.local_hold)
                    .ok_or_else(|| nothing("no connected call to hold or resume"))?;
                phone.resume(call.id).await.map_err(failed)?;
                Ok(Reply::ok(format!("call {} resumed", call.id.0))
                    .with("call", call.id.0)
                    .with("held", false))
            }
            Command::Transfer(target) => {
                let calls = phone.calls().await.map_err(failed)?;
                let call =
                    connected(&calls).ok_or_else(|| nothing("no connected call to transfer"))?;
                phone
                    .transfer(call.id, call.account, &target)
                    .await
                    .map_err(failed)?;
                Ok(
                    Reply::ok(format!("call {} transferred to {target}", call.id.0))
                        .with("call", call.id.0),
                )
            }
            Command::SendDtmf(digits) => {
                let calls = phone.calls().await.map_err(failed)?;
                let call =
                    connected(&calls).ok_or_else(|| nothing("no connected call for DTMF"))?;
                let mut first = true;
                // Each way used, in order (auto may differ between digits
                // only if a re-INVITE changed telephone-event meanwhile).
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
                    let route = phone.send_dtmf(call.id, c).await.map_err(failed)?;
                    if !methods.contains(&route) {
                        methods.push(route);
                    }
                }
                let method: Vec<&str> = methods.iter().map(|m| m.name()).collect();
                Ok(Reply::ok(format!("sent {digits} on call {}", call.id.0))
                    .with("call", call.id.0)
                    .with("method", method.join("+")))
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
        }
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
                let mut value = serde_json::json!({ "account": id, "aor": aor });
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
        let calls = phone.calls().await.map_err(failed)?;
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
        let report = phone
            .reload_accounts(&Account::list(&doc))
            .await
            .map_err(failed)?;
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
    use crate::sip::ua::CallId;

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
