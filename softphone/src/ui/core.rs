//! [`CoreLink`]: the window's client of the phone's core.
//!
//! The phone (the tokio runtime with [`crate::app`], the control
//! [`Server`] and its socket) runs on a background thread; the window runs
//! on the main thread. The window hands [`Command`]s to the link, which
//! carries them out with [`Server::execute`] on the runtime (exactly what
//! `msipphone ctl` gets), and takes back [`CoreUpdate`]s: each reply with
//! its command, every user-agent event, every server [`Notice`] (what
//! `ctl` had carried out), the `Show`/`Hide`/`Minimize` requests for the
//! window, and a fresh `Status` (the same
//! JSON `ctl Status` prints, read into a [`StatusView`]) after every
//! event, notice and reply, and once a second while calls exist (for the
//! durations). Each update wakes the window (`request_repaint`), so what
//! `ctl` does shows at once.

use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use eframe::egui;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};

use crate::control::notice::{Notice, WindowRequest, WindowRequests};
use crate::control::server::Server;
use crate::control::{Command, Reply};
use crate::sip::ua::UaEvent;

/// How often `Status` is fetched while calls exist (their durations tick).
const CALL_TICK: Duration = Duration::from_secs(1);

/// What the core tells the window.
#[derive(Debug, Clone)]
pub enum CoreUpdate {
    /// A command the window sent was carried out (or refused).
    Reply {
        /// The command.
        command: Command,
        /// Its reply.
        reply: Reply,
    },
    /// The user agent reported something (the same stream `ctl subscribe`
    /// prints).
    Event(UaEvent),
    /// The server carried a command out (from `ctl`, MicroSIP's command
    /// line or this window).
    Notice(Notice),
    /// `Show`, `Hide` or `Minimize` for the window.
    Window(WindowRequest),
    /// Registration and calls now.
    Status(StatusView),
    /// The phone is stopping (`Close`, a signal): the window should go.
    Stopped,
}

/// The phone's state as `Status` reports it, typed for the window.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct StatusView {
    /// The account new calls use (`accountId`).
    #[serde(default)]
    pub active_account: u32,
    /// Every account with its registration.
    #[serde(default)]
    pub accounts: Vec<AccountStatus>,
    /// Every call the phone knows.
    #[serde(default)]
    pub calls: Vec<CallStatus>,
    /// Mute, volumes, devices.
    #[serde(default)]
    pub audio: AudioStatus,
}

impl StatusView {
    /// Reads the data of a `Status` reply.
    pub fn from_reply(reply: &Reply) -> Result<StatusView, serde_json::Error> {
        serde_json::from_value(serde_json::Value::Object(reply.data.clone()))
    }

    /// The call with this id.
    pub fn call(&self, id: u64) -> Option<&CallStatus> {
        self.calls.iter().find(|c| c.id == id)
    }
}

/// One account in [`StatusView`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AccountStatus {
    /// `[AccountN]`'s number.
    pub account: u32,
    /// `sip:user@domain`.
    #[serde(default)]
    pub aor: String,
    /// `[AccountN] label`: the caption MicroSIP shows instead of the AOR.
    #[serde(default)]
    pub label: Option<String>,
    /// `unregistered`, `registering`, `registered` or `failed`.
    #[serde(default)]
    pub registration: String,
    /// Seconds the registrar granted (registered).
    #[serde(default)]
    pub expires: Option<u32>,
    /// The SIP status of a failure.
    #[serde(default)]
    pub code: Option<u16>,
    /// Why it failed.
    #[serde(default)]
    pub reason: Option<String>,
}

impl AccountStatus {
    /// The state for people: `registered`, `failed: 403 Forbidden`, ...
    pub fn describe(&self) -> String {
        match (&self.code, &self.reason) {
            (Some(code), Some(reason)) => format!("{} ({code} {reason})", self.registration),
            (None, Some(reason)) => format!("{} ({reason})", self.registration),
            _ => self.registration.clone(),
        }
    }
}

/// Where a call is, as `Status` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    /// Outgoing, nothing back yet.
    Calling,
    /// Outgoing, the far end rings.
    Ringing,
    /// Incoming, we ring.
    Incoming,
    /// Answered.
    Connected,
    /// Over.
    Ended,
    /// A state this window does not know (a newer core).
    #[serde(other)]
    Unknown,
}

/// One call in [`StatusView`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallStatus {
    /// The call's number (`call=N` in commands).
    pub id: u64,
    /// The account it runs on.
    #[serde(default)]
    pub account: u32,
    /// `incoming` or `outgoing`.
    #[serde(default)]
    pub direction: String,
    /// The far end's URI.
    #[serde(default)]
    pub remote: String,
    /// The far end's display name (may be empty).
    #[serde(default)]
    pub remote_name: String,
    /// Where the call is.
    pub state: CallPhase,
    /// Seconds since it was answered.
    #[serde(default)]
    pub duration: u64,
    /// We hold it.
    #[serde(default)]
    pub held: bool,
    /// They hold us.
    #[serde(default)]
    pub remote_held: bool,
    /// The codec in use.
    #[serde(default)]
    pub codec: Option<String>,
}

/// The audio controls in [`StatusView`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AudioStatus {
    /// The microphone is muted.
    #[serde(default)]
    pub muted: bool,
    /// Speaker volume, 0–100.
    #[serde(default)]
    pub speaker_volume: u8,
    /// Microphone volume, 0–100.
    #[serde(default)]
    pub mic_volume: u8,
}

/// Wakes the window when an update is queued (set once the window's
/// context exists; before that, updates simply wait in the queue).
#[derive(Clone, Default)]
struct Waker(Arc<Mutex<Option<egui::Context>>>);

impl Waker {
    fn wake(&self) {
        let ctx = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(ctx) = ctx {
            ctx.request_repaint();
        }
    }

    fn set(&self, ctx: &egui::Context) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ctx.clone());
    }
}

/// The sending half, on the runtime.
#[derive(Clone)]
struct Updates {
    tx: std_mpsc::Sender<CoreUpdate>,
    waker: Waker,
}

impl Updates {
    /// Queues `update`; `false` once the window is gone.
    fn send(&self, update: CoreUpdate) -> bool {
        let sent = self.tx.send(update).is_ok();
        self.waker.wake();
        sent
    }
}

/// The window's end of the link to the core. Cheap to poll; never blocks.
pub struct CoreLink {
    commands: mpsc::UnboundedSender<Command>,
    updates: std_mpsc::Receiver<CoreUpdate>,
    waker: Waker,
}

impl CoreLink {
    /// Links a window to `server`, with `events` from the phone's
    /// `subscribe()`. Call it on the phone's runtime (it spawns the task
    /// that carries commands out and watches the phone); the link itself
    /// may then move to the window's thread. From now on the phone has a
    /// window (`Show`, `Hide` and `Minimize` reach it) until the link is
    /// dropped.
    pub fn attach(server: Arc<Server>, events: broadcast::Receiver<UaEvent>) -> CoreLink {
        let watch = Watch {
            events,
            notices: server.notices(),
            window: server.attach_window(),
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (tx, updates) = std_mpsc::channel();
        let waker = Waker::default();
        let out = Updates {
            tx,
            waker: waker.clone(),
        };
        tokio::spawn(drive(server, watch, command_rx, out));
        CoreLink {
            commands,
            updates,
            waker,
        }
    }

    /// Asks the core to carry out `command`; the reply comes back as
    /// [`CoreUpdate::Reply`]. Never blocks (long commands such as
    /// `Message` or `SendDTMF` with pauses run on their own).
    pub fn run(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::debug!("window: the core is gone; command dropped");
        }
    }

    /// The next queued update, if any.
    pub fn try_recv(&self) -> Option<CoreUpdate> {
        self.updates.try_recv().ok()
    }

    /// Makes every update wake `ctx` (repaint), also while the window is hidden.
    pub fn wake_on_update(&self, ctx: &egui::Context) {
        self.waker.set(ctx);
        // Updates queued before the window existed are waiting.
        ctx.request_repaint();
    }
}

/// What the link's task listens to besides the window's commands.
struct Watch {
    events: broadcast::Receiver<UaEvent>,
    notices: broadcast::Receiver<Notice>,
    window: WindowRequests,
}

/// The link's task: commands in, replies, events and status out.
async fn drive(
    server: Arc<Server>,
    watch: Watch,
    mut commands: mpsc::UnboundedReceiver<Command>,
    out: Updates,
) {
    let Watch {
        mut events,
        mut notices,
        mut window,
    } = watch;
    // Replies of commands running on their own tasks come back here.
    let (done_tx, mut done) = mpsc::unbounded_channel::<(Command, Reply)>();
    let mut tick = tokio::time::interval(CALL_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = server.stop_requested();
    tokio::pin!(stopped);
    let mut calls_exist = false;
    let mut refresh = true;
    loop {
        if refresh {
            refresh = false;
            match fetch_status(&server).await {
                Some(view) => {
                    calls_exist = !view.calls.is_empty();
                    if !out.send(CoreUpdate::Status(view)) {
                        return;
                    }
                }
                None => calls_exist = false,
            }
        }
        tokio::select! {
            () = &mut stopped => {
                out.send(CoreUpdate::Stopped);
                return;
            }
            command = commands.recv() => {
                // The window is gone.
                let Some(command) = command else { return };
                let server = server.clone();
                let done_tx = done_tx.clone();
                tokio::spawn(async move {
                    let reply = server.execute(command.clone()).await;
                    let _ = done_tx.send((command, reply));
                });
            }
            Some((command, reply)) = done.recv() => {
                if !out.send(CoreUpdate::Reply { command, reply }) {
                    return;
                }
                refresh = true;
            }
            event = events.recv() => match event {
                Ok(event) => {
                    if !out.send(CoreUpdate::Event(event)) {
                        return;
                    }
                    // A burst (state, hold, media) needs one Status.
                    while let Ok(event) = events.try_recv() {
                        if !out.send(CoreUpdate::Event(event)) {
                            return;
                        }
                    }
                    refresh = true;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!("window: {missed} events missed; Status tells the rest");
                    refresh = true;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    out.send(CoreUpdate::Stopped);
                    return;
                }
            },
            notice = notices.recv() => match notice {
                // The window hears its requests from `window` below.
                Ok(Notice::Window(_)) => {}
                Ok(notice) => {
                    if !out.send(CoreUpdate::Notice(notice)) {
                        return;
                    }
                    refresh = true;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => refresh = true,
                // The server is gone: the phone stops (seen above).
                Err(broadcast::error::RecvError::Closed) => {
                    out.send(CoreUpdate::Stopped);
                    return;
                }
            },
            Some(request) = window.recv() => {
                if !out.send(CoreUpdate::Window(request)) {
                    return;
                }
            }
            _ = tick.tick(), if calls_exist => refresh = true,
        }
    }
}

/// `Status`, typed; `None` (logged) when the phone cannot answer it.
async fn fetch_status(server: &Server) -> Option<StatusView> {
    let reply = server.execute(Command::Status).await;
    if reply.code != 0 {
        tracing::debug!("window: Status: {}", reply.message);
        return None;
    }
    match StatusView::from_reply(&reply) {
        Ok(view) => Some(view),
        Err(e) => {
            tracing::warn!("window: cannot read the Status reply: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reply_reads_into_the_view() {
        let line = r#"{"code":0,"status":"ok","message":"1 account(s), 1 call(s)","active_account":2,
            "accounts":[{"account":2,"aor":"sip:alice@pbx","registration":"failed","code":403,"reason":"Forbidden"}],
            "calls":[{"id":7,"account":2,"direction":"incoming","remote":"sip:1001@pbx","remote_name":"Bob",
                      "state":"connected","duration":12,"held":true,"remote_held":false,"muted":true,
                      "codec":"PCMU/8000","media":{"codec":"PCMU/8000"}},
                     {"id":8,"account":2,"direction":"outgoing","remote":"sip:x@y","remote_name":"",
                      "state":"transferring","duration":0,"held":false,"remote_held":false,"muted":true,"codec":null}],
            "audio":{"muted":true,"speaker_volume":80,"mic_volume":70,"input_device":"","output_device":"","ring_device":""}}"#;
        let reply: Reply = serde_json::from_str(line).expect("a reply");
        let view = StatusView::from_reply(&reply).expect("reads");
        assert_eq!(view.active_account, 2);
        assert_eq!(view.accounts[0].describe(), "failed (403 Forbidden)");
        let call = view.call(7).expect("call 7");
        assert_eq!(call.state, CallPhase::Connected);
        assert!(call.held && !call.remote_held);
        assert_eq!(call.duration, 12);
        assert_eq!(call.codec.as_deref(), Some("PCMU/8000"));
        assert_eq!(view.call(8).map(|c| c.state), Some(CallPhase::Unknown));
        assert!(view.audio.muted);
        assert_eq!(view.audio.speaker_volume, 80);
    }
}
