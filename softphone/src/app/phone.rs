//! The running phone: the user agent driven by real sockets and the real
//! clock on one tokio task, reached through a [`PhoneHandle`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::accounts::{self, AccountError};
use super::net::{Inbound, Network, ServerNames};
use super::ports::PortReserver;
use super::tls::{TlsClient, TlsError};
use crate::config::{Account, Settings};
use crate::sip::sdp::codecs_from_microsip;
use crate::sip::transaction::TimerConfig;
use crate::sip::ua::{
    AccountConfig, AccountId, CallId, LocalAddrs, MessageId, UaConfig, UaError, UaEvent, UserAgent,
};

/// How long shutdown waits for un-registrations and BYEs to be answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
}

type Job = Box<dyn FnOnce(&mut UserAgent, Instant) + Send>;

/// Talks to a running phone. Cheap to clone.
#[derive(Clone)]
pub struct PhoneHandle {
    jobs: mpsc::UnboundedSender<Job>,
    events: broadcast::Sender<UaEvent>,
    accounts: HashMap<AccountId, AccountConfig>,
    local: SocketAddr,
    names: ServerNames,
}

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
    let tls = TlsClient::new(config.tls_ca.as_deref())?;
    let port = u16::try_from(config.settings.source_port).unwrap_or(0);
    let (mut network, mut inbound) = Network::bind(config.bind, port, Some(tls), names.clone())
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
    let media = PortReserver::new(config.bind, advertised, rtp_min, rtp_max);
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
    let (jobs_tx, mut jobs) = mpsc::unbounded_channel::<Job>();
    let (events, _) = broadcast::channel(1024);
    let events_tx = events.clone();
    let task = tokio::spawn(async move {
        let mut stopping: Option<Instant> = None;
        loop {
            while let Some(t) = ua.poll_transmit() {
                network.send(t);
            }
            while let Some(e) = ua.poll_event() {
                tracing::info!(?e, "event");
                let _ = events_tx.send(e);
            }
            if let Some(since) = stopping {
                if ua.is_idle() || since.elapsed() >= SHUTDOWN_GRACE {
                    break;
                }
            }
            let wake = ua
                .poll_timeout()
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
                }
            }
        }
    });
    let handle = PhoneHandle {
        jobs: jobs_tx,
        events,
        accounts: accounts.into_iter().map(|a| (a.id, a)).collect(),
        local,
        names,
    };
    Ok((handle, task))
}

impl PhoneHandle {
    /// The SIP socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<UaEvent> {
        self.events.subscribe()
    }

    /// The accounts, as the user agent uses them.
    pub fn accounts(&self) -> impl Iterator<Item = &AccountConfig> {
        self.accounts.values()
    }

    /// Runs `f` on the phone's task and returns its result.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut UserAgent, Instant) -> R + Send + 'static,
    ) -> Result<R, PhoneError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |ua, now| {
                let _ = tx.send(f(ua, now));
            }))
            .map_err(|_| PhoneError::Stopped)?;
        rx.await.map_err(|_| PhoneError::Stopped)
    }

    /// Registers every account that has a registrar.
    pub async fn register_all(&self) -> Result<(), PhoneError> {
        let ids: Vec<AccountId> = self
            .accounts
            .values()
            .filter(|a| a.registrar.is_some())
            .map(|a| a.id)
            .collect();
        self.with(move |ua, now| ids.into_iter().try_for_each(|id| ua.register(id, now)))
            .await??;
        Ok(())
    }

    fn account(&self, id: AccountId) -> Result<&AccountConfig, PhoneError> {
        self.accounts.get(&id).ok_or(PhoneError::NoAccount(id))
    }

    /// The Request-URI and resolved first hop for what the user typed.
    async fn route(
        &self,
        account: AccountId,
        typed: &str,
    ) -> Result<(String, SocketAddr), PhoneError> {
        let config = self.account(account)?;
        let uri = config.target_uri(typed);
        let hop = config.next_hop(&uri);
        let addr = if config.proxy.is_some()
            || hop
                == config
                    .registrar
                    .clone()
                    .unwrap_or_else(|| config.domain.clone())
        {
            config.outbound
        } else {
            let addr = accounts::resolve(&hop, config.transport)
                .await
                .map_err(|why| PhoneError::Resolve {
                    host: hop.uri_host(),
                    why,
                })?;
            if let Ok(mut names) = self.names.lock() {
                names.insert(addr, hop.host.clone());
            }
            addr
        };
        Ok((uri, addr))
    }

    /// Calls what the user typed (a number, `sip:` URI, `tel:`/`callto:`).
    pub async fn dial(&self, account: AccountId, typed: &str) -> Result<CallId, PhoneError> {
        let (uri, hop) = self.route(account, typed).await?;
        Ok(self
            .with(move |ua, now| ua.call(account, &uri, hop, now))
            .await??)
    }

    /// Sends a SIP MESSAGE.
    pub async fn message(
        &self,
        account: AccountId,
        typed: &str,
        text: &str,
    ) -> Result<MessageId, PhoneError> {
        let (uri, hop) = self.route(account, typed).await?;
        let text = text.to_owned();
        Ok(self
            .with(move |ua, now| ua.send_message(account, &uri, hop, &text, now))
            .await??)
    }

    /// Answers a ringing call.
    pub async fn answer(&self, call: CallId) -> Result<(), PhoneError> {
        Ok(self.with(move |ua, now| ua.answer(call, now)).await??)
    }

    /// Rejects a ringing call with `code` (486 busy, 603 decline).
    pub async fn reject(&self, call: CallId, code: u16) -> Result<(), PhoneError> {
        Ok(self
            .with(move |ua, now| ua.reject(call, code, now))
            .await??)
    }

    /// Hangs up (CANCEL before answer, BYE after).
    pub async fn hangup(&self, call: CallId) -> Result<(), PhoneError> {
        Ok(self.with(move |ua, now| ua.hangup(call, now)).await??)
    }

    /// Puts a call on hold.
    pub async fn hold(&self, call: CallId) -> Result<(), PhoneError> {
        Ok(self.with(move |ua, now| ua.hold(call, now)).await??)
    }

    /// Takes a call off hold.
    pub async fn resume(&self, call: CallId) -> Result<(), PhoneError> {
        Ok(self.with(move |ua, now| ua.resume(call, now)).await??)
    }

    /// Blind transfer of a call to what the user typed.
    pub async fn transfer(
        &self,
        call: CallId,
        account: AccountId,
        typed: &str,
    ) -> Result<(), PhoneError> {
        let uri = self.account(account)?.target_uri(typed);
        Ok(self
            .with(move |ua, now| ua.transfer(call, &uri, now))
            .await??)
    }

    /// Hangs up every call, un-registers every account, and waits (at most
    /// a few seconds) until the far ends answered.
    pub async fn shutdown(&self, task: tokio::task::JoinHandle<()>) {
        let _ = self.with(|ua, now| ua.shutdown(now)).await;
        // The driver stops by itself once idle; closing our queue tells it
        // no one else is coming.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), task).await;
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
