//! `softphone::sip`: the SIP user agent, sans-IO.
//!
//! Nothing in here owns a socket, a clock or a task: every entry point takes
//! the bytes that arrived (with where they came from) and the current
//! [`std::time::Instant`], and hands back what to send, when to be woken
//! and what happened. The tokio driver in the app layer does the IO; tests
//! drive the same code with simulated time.
//!
//! `rsip` is the message model. Its parsers are not trusted with raw
//! network input (see `shared/research/rust-sip-stack.md` §1.2), so
//! [`wire`] frames and normalises bytes before rsip sees them, and
//! [`headers`] reads the fields the stack routes on from raw header text.

pub mod auth;
pub mod headers;
pub mod sdp;
pub mod transaction;
pub mod ua;
pub mod wire;

use std::net::SocketAddr;

/// The transport a message travels on (the `transport=` of an account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams; the transaction layer retransmits.
    Udp,
    /// A byte stream framed by Content-Length; reliable, no retransmission.
    Tcp,
    /// TCP inside TLS.
    Tls,
}

impl Transport {
    /// Whether the transport delivers reliably (RFC 3261 §17: no
    /// retransmission timers A, E, G over reliable transports).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The token used in Via headers and `transport=` URI parameters.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// Bytes the driver must send: the output of every sans-IO state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Which transport to use.
    pub transport: Transport,
    /// Where to send them.
    pub destination: SocketAddr,
    /// The serialised message (or a keep-alive CRLF).
    pub bytes: Vec<u8>,
}
