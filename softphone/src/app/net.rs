//! The sockets: one UDP socket and a TCP listener on the same port, plus
//! TCP connections made or accepted on demand. Connections are framed with
//! [`StreamDecoder`] here, so the user agent only ever sees whole messages.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::tls::TlsClient;
use crate::sip::wire::{Frame, KeepAlive, StreamDecoder};
use crate::sip::{Transmit, Transport};

/// Host names of the addresses we connect to, for TLS certificate checks
/// (a Transmit carries only the address). Filled by whoever resolves.
pub type ServerNames = Arc<Mutex<HashMap<SocketAddr, String>>>;

/// What the sockets hand the driver.
#[derive(Debug)]
pub enum Inbound {
    /// One complete message (or keep-alive) from `source`.
    Message {
        /// The bytes.
        bytes: Vec<u8>,
        /// How it came.
        transport: Transport,
        /// From where.
        source: SocketAddr,
    },
    /// A connection from `peer` was accepted: replies to it go through
    /// `writer` (handled by [`Network::filter`]).
    Accepted {
        /// The peer.
        peer: SocketAddr,
        /// Its connection's outgoing queue.
        writer: mpsc::UnboundedSender<Vec<u8>>,
    },
    /// A connection to `peer` failed or closed with messages pending.
    Failed {
        /// The transport.
        transport: Transport,
        /// The peer.
        peer: SocketAddr,
    },
}

/// The phone's SIP sockets.
pub struct Network {
    udp: Arc<UdpSocket>,
    tcp_port: Option<u16>,
    connections: HashMap<(Transport, SocketAddr), mpsc::UnboundedSender<Vec<u8>>>,
    inbound: mpsc::UnboundedSender<Inbound>,
    tls: Option<TlsClient>,
    names: ServerNames,
}

impl Network {
    /// Binds UDP on `ip:port` (MicroSIP's `sourcePort`; 0: 5060 when free,
    /// else any free port) and TCP on the same port when it is free.
    /// Returns the network and the receiver of everything inbound.
    pub async fn bind(
        ip: IpAddr,
        port: u16,
        tls: Option<TlsClient>,
        names: ServerNames,
    ) -> io::Result<(Network, mpsc::UnboundedReceiver<Inbound>)> {
        let udp = if port == 0 {
            match UdpSocket::bind((ip, 5060)).await {
                Ok(socket) => socket,
                Err(_) => UdpSocket::bind((ip, 0)).await?,
            }
        } else {
            UdpSocket::bind((ip, port)).await?
        };
        let local = udp.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let tcp_port = match TcpListener::bind(local).await {
            Ok(listener) => {
                tokio::spawn(accept_loop(listener, tx.clone()));
                Some(local.port())
            }
            Err(e) => {
                tracing::warn!("no TCP listener on {local}: {e}; TCP calls in cannot reach us");
                None
            }
        };
        let udp = Arc::new(udp);
        tokio::spawn(udp_loop(Arc::clone(&udp), tx.clone()));
        Ok((
            Network {
                udp,
                tcp_port,
                connections: HashMap::new(),
                inbound: tx,
                tls,
                names,
            },
            rx,
        ))
    }

    /// The UDP socket's address (TCP listens on the same port when it can).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Whether TCP listens too.
    pub fn tcp_listening(&self) -> bool {
        self.tcp_port.is_some()
    }

    /// Sends `t`; a stream is opened (or reused) for TCP. Failures come
    /// back as [`Inbound::Failed`].
    pub fn send(&mut self, t: Transmit) {
        match t.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.try_send_to(&t.bytes, t.destination) {
                    tracing::debug!("UDP to {}: {e}", t.destination);
                    let _ = self.inbound.send(Inbound::Failed {
                        transport: Transport::Udp,
                        peer: t.destination,
                    });
                }
            }
            Transport::Tcp | Transport::Tls => {
                let key = (t.transport, t.destination);
                let alive = self.connections.get(&key).is_some_and(|c| !c.is_closed());
                if !alive {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let inbound = self.inbound.clone();
                    if t.transport == Transport::Tcp {
                        tokio::spawn(connect_tcp(t.destination, rx, inbound));
                    } else {
                        let Some(tls) = self.tls.clone() else {
                            tracing::warn!("no TLS configuration; cannot reach {}", t.destination);
                            let _ = inbound.send(Inbound::Failed {
                                transport: Transport::Tls,
                                peer: t.destination,
                            });
                            return;
                        };
                        let name = self
                            .names
                            .lock()
                            .ok()
                            .and_then(|n| n.get(&t.destination).cloned())
                            .unwrap_or_else(|| t.destination.ip().to_string());
                        tokio::spawn(connect_tls(t.destination, name, tls, rx, inbound));
                    }
                    self.connections.insert(key, tx);
                }
                if let Some(conn) = self.connections.get(&key) {
                    let _ = conn.send(t.bytes);
                }
            }
        }
    }

    /// Handles the sockets' own bookkeeping (an accepted connection is
    /// kept so replies to its peer reuse it); returns what is for the user
    /// agent.
    pub fn filter(&mut self, inbound: Inbound) -> Option<Inbound> {
        match inbound {
            Inbound::Accepted { peer, writer } => {
                self.connections.insert((Transport::Tcp, peer), writer);
                None
            }
            Inbound::Failed { transport, peer } => {
                if self
                    .connections
                    .get(&(transport, peer))
                    .is_some_and(|c| c.is_closed())
                {
                    self.connections.remove(&(transport, peer));
                }
                Some(Inbound::Failed { transport, peer })
            }
            other => Some(other),
        }
    }
}

async fn udp_loop(socket: Arc<UdpSocket>, tx: mpsc::UnboundedSender<Inbound>) {
    // Larger than any UDP SIP message (RFC 3261 §18.1.1 wants < 1300; some
    // PBXes send up to 64 KiB).
    let mut buf = vec![0u8; 65_536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, source)) => {
                let bytes = buf.get(..n).unwrap_or_default().to_vec();
                let message = Inbound::Message {
                    bytes,
                    transport: Transport::Udp,
                    source,
                };
                if tx.send(message).is_err() {
                    return;
                }
            }
            // ICMP port unreachable surfaces as an error on Linux and as
            // WSAECONNRESET on Windows: not fatal for the socket.
            Err(e) => tracing::debug!("UDP receive: {e}"),
        }
    }
}

async fn accept_loop(listener: TcpListener, tx: mpsc::UnboundedSender<Inbound>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let (writer, wrx) = mpsc::unbounded_channel();
                let _ = tx.send(Inbound::Accepted { peer, writer });
                tokio::spawn(run_stream(stream, Transport::Tcp, peer, wrx, tx.clone()));
            }
            Err(e) => tracing::debug!("TCP accept: {e}"),
        }
    }
}

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn connect_tcp(
    peer: SocketAddr,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    tx: mpsc::UnboundedSender<Inbound>,
) {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
        Ok(Ok(stream)) => run_stream(stream, Transport::Tcp, peer, rx, tx).await,
        Ok(Err(e)) => connect_failed(Transport::Tcp, peer, &e.to_string(), &tx),
        Err(_) => connect_failed(Transport::Tcp, peer, "timed out", &tx),
    }
}

async fn connect_tls(
    peer: SocketAddr,
    name: String,
    tls: TlsClient,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    tx: mpsc::UnboundedSender<Inbound>,
) {
    let handshake = async {
        let tcp = TcpStream::connect(peer).await?;
        tls.connect(&name, tcp).await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => run_stream(stream, Transport::Tls, peer, rx, tx).await,
        Ok(Err(e)) => {
            tracing::warn!("TLS to {peer} ({name}): {e}");
            connect_failed(Transport::Tls, peer, &e.to_string(), &tx);
        }
        Err(_) => connect_failed(Transport::Tls, peer, "timed out", &tx),
    }
}

fn connect_failed(
    transport: Transport,
    peer: SocketAddr,
    why: &str,
    tx: &mpsc::UnboundedSender<Inbound>,
) {
    tracing::debug!("{transport:?} connect {peer}: {why}");
    let _ = tx.send(Inbound::Failed { transport, peer });
}

/// Reads frames from and writes queued bytes to one connection until it
/// closes or its framing breaks.
async fn run_stream<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    transport: Transport,
    peer: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    tx: mpsc::UnboundedSender<Inbound>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut decoder = StreamDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(bytes) => {
                    if writer.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if decoder.push(buf.get(..n).unwrap_or_default()).is_err() {
                    break;
                }
                loop {
                    match decoder.next_frame() {
                        Ok(Some(Frame::Message(bytes))) => {
                            let _ = tx.send(Inbound::Message { bytes, transport, source: peer });
                        }
                        Ok(Some(Frame::KeepAlive(KeepAlive::Ping))) => {
                            // RFC 5626 §3.5.1: a CRLF pong for a double-CRLF ping.
                            if writer.write_all(b"\r\n").await.is_err() {
                                break;
                            }
                        }
                        Ok(Some(Frame::KeepAlive(_))) => {}
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!("{transport:?} {peer}: {e}; closing");
                            let _ = tx.send(Inbound::Failed { transport, peer });
                            return;
                        }
                    }
                }
            }
        }
    }
    let _ = tx.send(Inbound::Failed { transport, peer });
}
