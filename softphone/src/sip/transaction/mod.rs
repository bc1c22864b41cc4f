//! SIP transactions (RFC 3261 §17 with the RFC 6026 corrections), sans-IO.
//!
//! [`TransactionLayer`] owns every client and server transaction of one
//! user agent. It never touches a socket or a clock: the driver feeds it
//! what arrived ([`TransactionLayer::handle_message`]), what the transport
//! could not deliver ([`TransactionLayer::handle_transport_error`]) and the
//! current time ([`TransactionLayer::handle_timeout`]); the transaction user
//! (TU, the UA core) starts transactions and answers requests. After any of
//! those calls the driver drains the three pumps:
//! [`poll_transmit`](TransactionLayer::poll_transmit) (bytes to send),
//! [`poll_event`](TransactionLayer::poll_event) (what the TU must hear) and
//! [`poll_timeout`](TransactionLayer::poll_timeout) (when to call
//! `handle_timeout` next).
//!
//! Division of labour with the TU:
//! - The ACK for a non-2xx final response to our INVITE is built and sent
//!   here (§17.1.1.3). The ACK for a 2xx is end-to-end: the TU builds it and
//!   sends it with [`TransactionLayer::send_stateless`], also again for every
//!   retransmitted 2xx it is shown (RFC 6026 Accepted state, and
//!   [`TxEvent::Stray2xx`] once the transaction is gone).
//! - Retransmission of a 2xx we send to an INVITE (§13.3.1.4) lives here:
//!   the server transaction resends it (T1 doubling up to T2, on every
//!   transport, as §13.3.1.4 asks) until the ACK arrives, and reports
//!   [`TimeoutKind::No2xxAck`] after 64·T1 without one.
//! - A CANCEL is a server transaction of its own; the TU finds the INVITE it
//!   cancels with [`TransactionLayer::cancelled_invite`].

mod client_invite;
mod client_non_invite;
mod key;
mod layer;
mod messages;
mod outbox;
mod server_invite;
mod server_non_invite;
mod timers;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub use layer::TransactionLayer;
pub use timers::TimerConfig;

use super::headers::HeaderError;
use super::Transport;

/// Identifies one transaction for the lifetime of a [`TransactionLayer`];
/// never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(u64);

/// Where a transaction stands (the union of the four RFC state machines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Client INVITE: sent, nothing heard yet.
    Calling,
    /// Non-INVITE (client or server): no response yet.
    Trying,
    /// A provisional response was received or sent.
    Proceeding,
    /// RFC 6026: a 2xx to an INVITE was received or sent; 2xx
    /// retransmissions and their ACKs are still being handled.
    Accepted,
    /// A non-2xx final (or, non-INVITE, any final) response was received or
    /// sent; retransmissions are being absorbed.
    Completed,
    /// Server INVITE: the ACK for our non-2xx final arrived.
    Confirmed,
}

/// Why a transaction gave up waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// Timer B or F: no final response to our request (treat as 408).
    NoResponse,
    /// Timer H: the ACK for our non-2xx final response never came.
    NoAck,
    /// The ACK for our 2xx to an INVITE never came within 64·T1
    /// (§13.3.1.4): the TU should end the session with a BYE.
    No2xxAck,
}

/// What the transaction user must hear about.
#[derive(Debug, Clone, PartialEq)]
pub enum TxEvent {
    /// A new request created server transaction `id`; answer it with
    /// [`TransactionLayer::send_response`]. Its top Via already carries
    /// `received`/`rport`, so copying the Vias into the response is right.
    Request {
        /// The new server transaction.
        id: TxId,
        /// The request as received (top Via stamped).
        request: rsip::Request,
        /// How it arrived.
        transport: Transport,
        /// From where.
        source: SocketAddr,
    },
    /// An ACK that is not absorbed by a transaction: the ACK for a 2xx we
    /// sent (`invite` is the server transaction that sent it, whose 2xx
    /// retransmission has now stopped), or an ACK matching nothing.
    Ack {
        /// The INVITE server transaction it acknowledges, if known.
        invite: Option<TxId>,
        /// The ACK (top Via stamped).
        request: rsip::Request,
        /// How it arrived.
        transport: Transport,
        /// From where.
        source: SocketAddr,
    },
    /// A response for client transaction `id` (provisional, final, and in
    /// the INVITE Accepted state every retransmitted or forked 2xx).
    Response {
        /// The client transaction.
        id: TxId,
        /// The response.
        response: rsip::Response,
    },
    /// A 2xx to an INVITE whose client transaction has ended: the TU must
    /// re-send its ACK (§13.2.2.4).
    Stray2xx {
        /// The response.
        response: rsip::Response,
        /// How it arrived.
        transport: Transport,
        /// From where.
        source: SocketAddr,
    },
    /// A timer gave up on transaction `id`; it is terminated.
    Timeout {
        /// The transaction.
        id: TxId,
        /// Which wait failed.
        kind: TimeoutKind,
    },
    /// The transport could not deliver for transaction `id`; it is
    /// terminated (treat a client transaction as 503, §8.1.3.1).
    TransportError {
        /// The transaction.
        id: TxId,
    },
    /// Transaction `id` is gone; later messages for it are strays.
    Terminated {
        /// The transaction.
        id: TxId,
    },
}

/// Why the layer refused a call or dropped a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// A header the layer routes on is missing or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// No transaction has this id (it may have terminated).
    #[error("no transaction {0:?}")]
    UnknownTransaction(TxId),
    /// Requests we send need an RFC 3261 branch (`z9hG4bK...`).
    #[error("the top Via of the request has no z9hG4bK branch")]
    NoBranch,
    /// ACK is never a transaction of its own: a 2xx ACK goes through
    /// [`TransactionLayer::send_stateless`]; a non-2xx ACK is made here.
    #[error("ACK is sent with send_stateless, not as a transaction")]
    AckIsNotATransaction,
    /// A client transaction with this branch and method already exists.
    #[error("a {method} transaction with branch {branch} already exists")]
    DuplicateTransaction {
        /// The branch.
        branch: String,
        /// The method.
        method: String,
    },
    /// The operation does not fit the transaction's kind or state.
    #[error("{operation} not allowed on {kind} transaction in state {state:?}")]
    InvalidState {
        /// What was attempted.
        operation: &'static str,
        /// Which kind of transaction.
        kind: &'static str,
        /// Its state.
        state: TxState,
    },
    /// Status codes must be 100..=699.
    #[error("status code {0} out of range")]
    BadStatus(u16),
    /// The request's CSeq method differs from its request line.
    #[error("CSeq method {cseq} does not match request method {method}")]
    MethodMismatch {
        /// The request line's method.
        method: String,
        /// The CSeq method.
        cseq: String,
    },
}
