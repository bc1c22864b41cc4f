//! The running phone: the user agent driven by real sockets and the real
//! clock on one tokio task, reached through a [`PhoneHandle`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use thiserror::Error;
use tokio::sync::{broadcast, mpsc};

use super::accounts::{self, AccountError};
use super::behavior::{Action, Behavior};
use super::calllog::{self, LogWrite};
use super::dialplan::{DialError, Dialing};
use super::handle::PhoneHandle;
use super::hooks::HOOK_TIMEOUT;
use super::media_engine::{self, AudioEngine, MediaSettings, Notifier};
use super::net::{Inbound, Network, ServerNames};
use super::ports::PortRange;
use super::tls::{TlsClient, TlsError};
use super::webhook::{Webhook, WebhookError};
use crate::config::{Account, Contact, Settings};
use crate::sip::sdp::codecs_from_microsip;
use crate::sip::transaction::TimerConfig;
use crate::sip::ua::{
    AccountId, CallId, CallInfo, CallState, LocalAddrs, UaConfig, UaError, UaEvent, UserAgent,
};

/// How long shutdown waits for un-registrations and BYEs to be answered.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the phone cannot start or a request to it failed.
#[derive(Debug, Error)]
pub enum PhoneError {
    /// An account cannot be used.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The SIP socket cannot be bound.
    #[error("cannot open the SIP port {port}: {source}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TLS cannot be set up (a bad CA file).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The user agent refused the request.
    #[error(transparent)]
    Ua(#[from] UaError),
    /// No such account.
    #[error("no account {0}")]
    NoAccount(AccountId),
    /// A destination does not resolve.
    #[error("cannot resolve {host}: {why}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        why: String,
    },
    /// The phone has stopped.
    #[error("the phone has stopped")]
    Stopped,
    /// The media engine refused (e.g. RFC 4733 DTMF without
    /// telephone-event).
    #[error(transparent)]
    Media(#[from] crate::sip::sdp::MediaError),
    /// An audio control could not be changed (a device that will not open).
    #[error(transparent)]
    Audio(#[from] super::media_engine::AudioControlError),
    /// The account's dial plan refuses the number.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// `webhookUrl` is unusable.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

/// What the phone is started with.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// `[Settings]`.
    pub settings: Settings,
    /// The accounts MicroSIP would load.
    pub accounts: Vec<Account>,
    /// The address to listen on (`0.0.0.0` in production, loopback in tests).
    pub bind: IpAddr,
    /// A PEM file of CAs trusted for TLS besides the system's.
    pub tls_ca: Option<std::path::PathBuf>,
    /// What the phone's own behaviour needs besides `settings`.
    pub behavior: BehaviorConfig,
}

/// Files and limits of the phone's own behaviour ([`Behavior`]).
#[derive(Debug, Clone)]
pub struct BehaviorConfig {
    /// Contacts.xml's contacts, to name callers.
    pub contacts: Vec<Contact>,
    /// The microsip.ini finished calls are logged to (`[Calls]`,
    /// `[Dialed]`); `None`: no log.
    pub call_log: Option<PathBuf>,
    /// How long a hook may run before it is killed.
    pub hook_timeout: Duration,
}

impl Default for BehaviorConfig {
    /// No contacts, no log, MicroSIP's 10 s hook limit.
    fn default() -> Self {
        Self {
            contacts: Vec::new(),
            call_log: None,
            hook_timeout: HOOK_TIMEOUT,
        }
    }
}

pub(super) type Job = Box<dyn FnOnce(&mut UserAgent, Instant) + Send>;

/// Starts the phone: binds its sockets and spawns the driver task on the
/// current tokio runtime. Accounts are not registered until asked.
pub async fn start(
    config: PhoneConfig,
) -> Result<(PhoneHandle, tokio::task::JoinHandle<()>), PhoneError> {
    let names = ServerNames::default();
    let mut accounts = Vec::new();
    for account in &config.accounts {
        let (account, host) = accounts::resolved(account).await?;
        if let Ok(mut names) = names.lock() {
            names.insert(account.outbound, host);
        }
        accounts.push(account);
    }
    // The system's roots are only loaded (hundreds of certificates parsed
    // and kept) when an account speaks TLS or a CA file is configured.
    let tls = if accounts
        .iter()
        .any(|a| a.transport == crate::sip::Transport::Tls)
        || config.tls_ca.is_some()
    {
        Some(TlsClient::new(config.tls_ca.as_deref())?)
    } else {
        None
    };
    let port = u16::try_from(config.settings.source_port).unwrap_or(0);
    let (mut network, mut inbound) = Network::bind(config.bind, port, tls, names.clone())
        .await
        .map_err(|source| PhoneError::Bind { port, source })?;
    let local = network
        .local_addr()
        .map_err(|source| PhoneError::Bind { port, source })?;
    let codec_ids = config.settings.codecs();
    let (codecs, skipped) = codecs_from_microsip(&codec_ids, config.settings.opus_stereo);
    for s in skipped {
        tracing::warn!("audioCodecs: {s:?} skipped");
    }
    let rtp_min = u16::try_from(config.settings.rtp_port_min).unwrap_or(0);
    let rtp_max = u16::try_from(config.settings.rtp_port_max).unwrap_or(0);
    // Bound to every interface, the phone still has to name one address
    // in Via, Contact and SDP: the one the system routes to the first
    // account's server from.
    let advertised = if local.ip().is_unspecified() {
        route_source(accounts.first().map(|a| a.outbound))
    } else {
        local.ip()
    };
    let local = SocketAddr::new(advertised, local.port());
    let (jobs_tx, mut jobs) = mpsc::unbounded_channel::<Job>();
    let (events, _) = broadcast::channel(1024);
    let media_settings = MediaSettings::from_settings(&config.settings);
    let media = AudioEngine::new(
        config.bind,
        advertised,
        PortRange::new(rtp_min, rtp_max),
        media_settings.clone(),
        Notifier {
            jobs: jobs_tx.downgrade(),
            events: events.clone(),
        },
    );
    let media_control = media.control();
    let user_agent = if config.settings.user_agent.is_empty() {
        format!("msipphone/{}", env!("CARGO_PKG_VERSION"))
    } else {
        config.settings.user_agent.clone()
    };
    let ua_config = UaConfig {
        local: LocalAddrs { sip: local },
        user_agent,
        timers: TimerConfig::default(),
        codecs,
        telephone_event: Some(101),
        rport: config.settings.rport,
    };
    let mut ua = UserAgent::new(ua_config, accounts.clone(), Box::new(media));
    let mut behavior = Behavior::new(
        &config.settings,
        &config.accounts,
        config.behavior.contacts.clone(),
    );
    let dialing: HashMap<AccountId, Dialing> = config
        .accounts
        .iter()
        .map(|a| (a.number, Dialing::from_account(a)))
        .collect();
    let webhook = match config.settings.webhook_url.trim() {
        "" => None,
        url => Some(Webhook::start(
            url,
            config.settings.webhook_secret.expose(),
        )?),
    };
    let (log, log_writer) = match config.behavior.call_log.clone() {
        Some(path) => {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(tokio::spawn(write_log(path, rx))))
        }
        None => (None, None),
    };
    let hook_timeout = config.behavior.hook_timeout;
    let events_tx = events.clone();
    let recording = media_settings.auto_recording.then(|| {
        (
            media_control.clone(),
            media_settings.recording_dir.clone(),
            config.accounts.clone(),
        )
    });
    let mut ringer = media_engine::Ringer::new(media_engine::RingSettings::from_media_settings(
        &media_settings,
    ));
    let task = tokio::spawn(async move {
        let mut stopping: Option<Instant> = None;
        loop {
            // Behaviour acts on events (answer, reject, ...), which makes
            // more events and messages: drain until quiet.
            loop {
                while let Some(t) = ua.poll_transmit() {
                    network.send(t);
                }
                let mut batch = Vec::new();
                while let Some(e) = ua.poll_event() {
                    batch.push(e);
                }
                if !batch.is_empty() {
                    let calls: Vec<CallInfo> = ua.calls().collect();
                    let (now, wall) = (Instant::now(), SystemTime::now());
                    for e in batch {
                        tracing::info!(?e, "event");
                        if let (
                            Some((media, dir, accounts)),
                            UaEvent::CallState {
                                call,
                                state: CallState::Connected,
                            },
                        ) = (&recording, &e)
                        {
                            start_recording(&ua, media, dir, accounts, &calls, *call);
                        }
                        ringer.handle_event(&e);
                        behavior.handle_event(&e, &calls, now, wall);
                        let _ = events_tx.send(e);
                    }
                }
                let mut acted = false;
                while let Some(action) = behavior.poll_action() {
                    acted |= act(
                        &mut ua,
                        action,
                        hook_timeout,
                        webhook.as_ref(),
                        log.as_ref(),
                    );
                }
                if !acted {
                    break;
                }
            }
            if let Some(since) = stopping {
                if ua.is_idle() || since.elapsed() >= SHUTDOWN_GRACE {
                    break;
                }
            }
            let wake = [ua.poll_timeout(), behavior.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let wake = match stopping {
                Some(since) => wake.min(since + SHUTDOWN_GRACE),
                None => wake,
            };
            tokio::select! {
                got = inbound.recv() => match got.and_then(|i| network.filter(i)) {
                    Some(Inbound::Message { bytes, transport, source }) => {
                        ua.handle_datagram(&bytes, transport, source, Instant::now());
                    }
                    Some(Inbound::Failed { transport, peer }) => {
                        ua.handle_transport_failure(transport, peer, Instant::now());
                    }
                    Some(Inbound::Accepted { .. }) | None => {}
                },
                job = jobs.recv() => match job {
                    Some(job) => job(&mut ua, Instant::now()),
                    None => {
                        // Every handle is gone: stop as if asked to.
                        if stopping.is_none() {
                            ua.shutdown(Instant::now());
                            stopping = Some(Instant::now());
                        }
                    }
                },
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    ua.handle_timeout(Instant::now());
                    behavior.handle_timeout(Instant::now());
                }
            }
        }
        // The last calls' records reach the file before the task ends.
        drop(log);
        if let Some(writer) = log_writer {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, writer).await;
        }
    });
    let handle = PhoneHandle {
        jobs: jobs_tx,
        events,
        accounts: accounts.into_iter().map(|a| (a.id, a)).collect(),
        local,
        names,
        dialing: Arc::new(dialing),
        media: media_control,
        dtmf_method: media_settings.dtmf_method,
    };
    Ok((handle, task))
}

/// `autoRecording`: records `call`, just connected, to MicroSIP's file
/// name in the recordings folder (once: a re-INVITE does not restart it).
fn start_recording(
    ua: &UserAgent,
    media: &media_engine::MediaControl,
    dir: &std::path::Path,
    accounts: &[Account],
    calls: &[CallInfo],
    call: CallId,
) {
    let (Some(info), Some(handle)) = (calls.iter().find(|c| c.id == call), ua.media_handle(call))
    else {
        return;
    };
    let name = media_engine::recording_name(info, accounts, SystemTime::now());
    if let Err(e) = media.record(handle, dir.join(name)) {
        tracing::warn!(call = call.0, "recording not started: {e}");
    }
}

/// Carries out one [`Action`]; `true` when it went to the user agent (so
/// there may be new events to handle).
fn act(
    ua: &mut UserAgent,
    action: Action,
    hook_timeout: Duration,
    webhook: Option<&Webhook>,
    log: Option<&mpsc::UnboundedSender<LogWrite>>,
) -> bool {
    let now = Instant::now();
    let (call, result) = match action {
        Action::Answer(call) => (call, ua.answer(call, now)),
        Action::Reject(call, code) => (call, ua.reject(call, code, now)),
        Action::Redirect(call, target) => (call, ua.redirect(call, &target, now)),
        Action::Hangup(call) => (call, ua.hangup(call, now)),
        Action::Hook(run) => {
            // Detached: the phone never waits for a hook.
            drop(run.spawn(hook_timeout));
            return false;
        }
        Action::Webhook(event) => {
            if let Some(w) = webhook {
                w.post(event);
            }
            return false;
        }
        Action::Log(write) => {
            if let Some(log) = log {
                let _ = log.send(write);
            }
            return false;
        }
    };
    if let Err(e) = result {
        // The call may have ended meanwhile (the caller gave up).
        tracing::info!(call = call.0, "automatic action not done: {e}");
    }
    true
}

/// Writes the call log, one batch at a time, off the phone's task.
async fn write_log(path: PathBuf, mut writes: mpsc::UnboundedReceiver<LogWrite>) {
    while let Some(first) = writes.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = writes.try_recv() {
            batch.push(more);
        }
        let path = path.clone();
        let done = tokio::task::spawn_blocking(move || calllog::write(&path, &batch)).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("call log not written: {e}"),
            Err(e) => tracing::warn!("call log writer: {e}"),
        }
    }
}

/// The local address the system would send from towards `peer` (a UDP
/// "connect" sends nothing); loopback without a peer or a route.
fn route_source(peer: Option<SocketAddr>) -> IpAddr {
    let fallback = IpAddr::from([127, 0, 0, 1]);
    let Some(peer) = peer else { return fallback };
    std::net::UdpSocket::bind((IpAddr::from([0, 0, 0, 0]), 0))
        .and_then(|s| s.connect(peer).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(fallback)
}
