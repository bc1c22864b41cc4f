//! The running phone: the user agent driven by real sockets and the real
//! clock on one tokio task, reached through a [`PhoneHandle`].

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::{broadcast, mpsc};

use super::accounts::{self, AccountError};
use super::handle::PhoneHandle;
use super::net::{Inbound, Network, ServerNames};
use super::ports::PortReserver;
use super::tls::{TlsClient, TlsError};
use crate::config::{Account, Settings};
use crate::sip::sdp::codecs_from_microsip;
use crate::sip::transaction::TimerConfig;
use crate::sip::ua::{AccountId, LocalAddrs, UaConfig, UaError, UserAgent};

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
