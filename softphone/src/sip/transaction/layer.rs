//! The transaction layer: owns the transactions, matches messages to them
//! and pumps their output.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Method, Request, Response, SipMessage};

use crate::sip::headers;
use crate::sip::{Transmit, Transport};

use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::key::{ClientKey, ServerKey};
use super::messages;
use super::outbox::{Link, Outbox, Step};
use super::server_invite::ServerInvite;
use super::server_non_invite::ServerNonInvite;
use super::timers::TimerConfig;
use super::{TxError, TxEvent, TxId, TxState};

/// How many timer steps one transaction may take per call: guards against
/// a zero T1 turning back-off into a busy loop.
const MAX_STEPS_PER_CALL: usize = 16;

#[derive(Debug)]
enum Txn {
    InviteClient(ClientInvite),
    NonInviteClient(ClientNonInvite),
    InviteServer(ServerInvite),
    NonInviteServer(ServerNonInvite),
}

impl Txn {
    fn state(&self) -> TxState {
        match self {
            Txn::InviteClient(t) => t.state(),
            Txn::NonInviteClient(t) => t.state(),
            Txn::InviteServer(t) => t.state(),
            Txn::NonInviteServer(t) => t.state(),
        }
    }

    fn link(&self) -> Link {
        match self {
            Txn::InviteClient(t) => t.link,
            Txn::NonInviteClient(t) => t.link,
            Txn::InviteServer(t) => t.link,
            Txn::NonInviteServer(t) => t.link,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Txn::InviteClient(t) => t.next_deadline(),
            Txn::NonInviteClient(t) => t.next_deadline(),
            Txn::InviteServer(t) => t.next_deadline(),
            Txn::NonInviteServer(t) => t.next_deadline(),
        }
    }

    fn on_timer(&mut self, out: &mut Outbox<'_>) -> Step {
        match self {
            Txn::InviteClient(t) => t.on_timer(out),
            Txn::NonInviteClient(t) => t.on_timer(out),
            Txn::InviteServer(t) => t.on_timer(out),
            Txn::NonInviteServer(t) => t.on_timer(out),
        }
    }
}

#[derive(Debug)]
enum Index {
    Client(ClientKey),
    Server(ServerKey),
}

#[derive(Debug)]
struct Entry {
    txn: Txn,
    index: Index,
}

/// All client and server transactions of one user agent (sans-IO).
///
/// Inputs: [`send_request`](Self::send_request),
/// [`send_cancel`](Self::send_cancel), [`send_response`](Self::send_response),
/// [`send_stateless`](Self::send_stateless) from the TU;
/// [`handle_message`](Self::handle_message),
/// [`handle_transport_error`](Self::handle_transport_error) and
/// [`handle_timeout`](Self::handle_timeout) from the driver. Outputs: drain
/// [`poll_transmit`](Self::poll_transmit) and
/// [`poll_event`](Self::poll_event) after every input, then sleep until
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Debug, Default)]
pub struct TransactionLayer {
    config: TimerConfig,
    next_id: u64,
    // Ordered, so that timers firing together are handled in creation
    // order and runs are reproducible.
    entries: BTreeMap<TxId, Entry>,
    clients: HashMap<ClientKey, TxId>,
    servers: HashMap<ServerKey, TxId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    /// An empty layer with the given timer values.
    pub fn new(config: TimerConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The timer values in use.
    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The state of transaction `id`, `None` once it has terminated.
    pub fn state(&self, id: TxId) -> Option<TxState> {
        self.entries.get(&id).map(|e| e.txn.state())
    }

    // -----------------------------------------------------------------
    // TU commands

    /// Starts a client transaction for `request` (any method but ACK) and
    /// sends it to `destination`.
    ///
    /// The request must be complete: its top Via carries a fresh
    /// `z9hG4bK` branch ([`headers::new_branch`]), and CSeq names its
    /// method. Responses arrive as [`TxEvent::Response`] with the returned
    /// id.
    pub fn send_request(
        &mut self,
        request: Request,
        transport: Transport,
        destination: SocketAddr,
        now: Instant,
    ) -> Result<TxId, TxError> {
        if request.method == Method::Ack {
            return Err(TxError::AckIsNotATransaction);
        }
        let via = headers::top_via(&request.headers)?;
        let branch = match via.branch() {
            Some(b) if via.has_rfc3261_branch() => b.to_owned(),
            _ => return Err(TxError::NoBranch),
        };
        check_cseq_method(&request)?;
        let key = ClientKey::new(&branch, request.method);
        if self.clients.contains_key(&key) {
            return Err(TxError::DuplicateTransaction {
                branch,
                method: request.method.to_string(),
            });
        }
        let id = self.allocate_id();
        let link = Link {
            transport,
            peer: destination,
        };
        let mut out = Outbox {
            id,
            now,
            config: &self.config,
            transmits: &mut self.transmits,
            events: &mut self.events,
        };
        let txn = if request.method == Method::Invite {
            Txn::InviteClient(ClientInvite::start(link, request, &mut out))
        } else {
            Txn::NonInviteClient(ClientNonInvite::start(link, &request, &mut out))
        };
        self.clients.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                txn,
                index: Index::Client(key),
            },
        );
        Ok(id)
    }

    /// Cancels the INVITE of client transaction `invite` (§9.1): builds the
    /// CANCEL and sends it as a client transaction of its own on the same
    /// transport and destination.
    ///
    /// §9.1 forbids a CANCEL before a provisional response, so this fails
    /// unless the INVITE is in Proceeding; a TU that wants to cancel
    /// earlier remembers it and calls again on the first 1xx. The INVITE
    /// transaction keeps running: its final response (487, or a 200 that
    /// crossed the CANCEL) still arrives as [`TxEvent::Response`].
    pub fn send_cancel(&mut self, invite: TxId, now: Instant) -> Result<TxId, TxError> {
        let entry = self
            .entries
            .get(&invite)
            .ok_or(TxError::UnknownTransaction(invite))?;
        let Txn::InviteClient(txn) = &entry.txn else {
            return Err(TxError::InvalidState {
                operation: "send_cancel",
                kind: "non-INVITE-client",
                state: entry.txn.state(),
            });
        };
        if txn.state() != TxState::Proceeding {
            return Err(TxError::InvalidState {
                operation: "send_cancel",
                kind: "INVITE client",
                state: txn.state(),
            });
        }
        let cancel = messages::cancel_for(&txn.request);
        let link = txn.link;
        self.send_request(cancel, link.transport, link.peer, now)
    }

    /// Sends `response` in server transaction `id`, to the address the
    /// request's top Via designates (over UDP: `received`/`rport`, RFC
    /// 3581 §4; over TCP/TLS: back to where the request came from).
    ///
    /// The TU builds the response from the request of [`TxEvent::Request`]
    /// (Vias, From, To plus tag, Call-ID, CSeq). A 2xx to an INVITE is then
    /// retransmitted by the layer until its ACK arrives.
    pub fn send_response(
        &mut self,
        id: TxId,
        response: Response,
        now: Instant,
    ) -> Result<(), TxError> {
        let code = response.status_code.code();
        if !(100..=699).contains(&code) {
            return Err(TxError::BadStatus(code));
        }
        let entry = self
            .entries
            .get_mut(&id)
            .ok_or(TxError::UnknownTransaction(id))?;
        let mut out = Outbox {
            id,
            now,
            config: &self.config,
            transmits: &mut self.transmits,
            events: &mut self.events,
        };
        let step = match &mut entry.txn {
            Txn::InviteServer(t) => t.send_response(&response, &mut out)?,
            Txn::NonInviteServer(t) => t.send_response(&response, &mut out)?,
            other => {
                return Err(TxError::InvalidState {
                    operation: "send_response",
                    kind: "client",
                    state: other.state(),
                })
            }
        };
        if step == Step::Terminated {
            self.terminate(id);
        }
        // Timer J is zero on reliable transports.
        self.run_timers(now);
        Ok(())
    }

    /// Sends a message outside any transaction: the ACK for a 2xx
    /// (§13.2.2.4, again for each [`TxEvent::Stray2xx`] or retransmitted
    /// 2xx), or a stateless response.
    pub fn send_stateless(
        &mut self,
        msg: &SipMessage,
        transport: Transport,
        destination: SocketAddr,
    ) {
        self.transmits.push_back(Transmit {
            transport,
            destination,
            bytes: messages::encode(msg),
        });
    }

    /// The INVITE server transaction that CANCEL server transaction
    /// `cancel` targets (same branch, sent-by; §9.2). `None` means the TU
    /// answers the CANCEL with 481.
    pub fn cancelled_invite(&self, cancel: TxId) -> Option<TxId> {
        let Index::Server(key) = &self.entries.get(&cancel)?.index else {
            return None;
        };
        if !key.is_method(Method::Cancel) {
            return None;
        }
        let invite = *self.servers.get(&key.with_method(Method::Invite))?;
        matches!(self.entries.get(&invite)?.txn, Txn::InviteServer(_)).then_some(invite)
    }

    // -----------------------------------------------------------------
    // Driver inputs

    /// A message arrived on `transport` from `source`.
    ///
    /// Responses go to their client transaction; a 2xx to an INVITE
    /// without one becomes [`TxEvent::Stray2xx`]; other strays are
    /// dropped. Requests are absorbed as retransmissions, or create a
    /// server transaction and a [`TxEvent::Request`]; ACKs of 2xx become
    /// [`TxEvent::Ack`]. An error means the message was dropped because a
    /// routing header (Via, CSeq, Call-ID, From) is unusable.
    pub fn handle_message(
        &mut self,
        msg: SipMessage,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) -> Result<(), TxError> {
        let result = match msg {
            SipMessage::Request(r) => self.on_request(r, transport, source, now),
            SipMessage::Response(r) => self.on_response(r, transport, source, now),
        };
        self.run_timers(now);
        result
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_timers(now);
    }

    /// The transport could not send for transaction `id` (ICMP
    /// unreachable, connection refused or reset): reports
    /// [`TxEvent::TransportError`] and ends it. Unknown ids are ignored.
    pub fn handle_transport_error(&mut self, id: TxId) {
        if self.entries.contains_key(&id) {
            self.events.push_back(TxEvent::TransportError { id });
            self.terminate(id);
        }
    }

    /// The transport to `peer` failed (a [`Transmit`] carries no
    /// transaction id): every transaction using it gets
    /// [`handle_transport_error`](Self::handle_transport_error).
    pub fn handle_transport_failure(&mut self, transport: Transport, peer: SocketAddr) {
        let link = Link { transport, peer };
        let ids: Vec<TxId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.txn.link() == link)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.handle_transport_error(id);
        }
    }

    // -----------------------------------------------------------------
    // Pumps

    /// The next datagram or stream write to perform.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing the TU must hear.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| e.txn.next_deadline())
            .min()
    }

    // -----------------------------------------------------------------
    // Internals

    fn allocate_id(&mut self) -> TxId {
        self.next_id += 1;
        TxId(self.next_id)
    }

    fn terminate(&mut self, id: TxId) {
        let Some(entry) = self.entries.remove(&id) else {
            return;
        };
        match entry.index {
            Index::Client(key) => {
                if self.clients.get(&key) == Some(&id) {
                    self.clients.remove(&key);
                }
            }
            Index::Server(key) => {
                if self.servers.get(&key) == Some(&id) {
                    self.servers.remove(&key);
                }
            }
        }
        self.events.push_back(TxEvent::Terminated { id });
    }

    fn run_timers(&mut self, now: Instant) {
        let due: Vec<TxId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.txn.next_deadline().is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            for _ in 0..MAX_STEPS_PER_CALL {
                let Some(entry) = self.entries.get_mut(&id) else {
                    break;
                };
                if entry.txn.next_deadline().is_none_or(|at| at > now) {
                    break;
                }
                let mut out = Outbox {
                    id,
                    now,
                    config: &self.config,
                    transmits: &mut self.transmits,
                    events: &mut self.events,
                };
                if entry.txn.on_timer(&mut out) == Step::Terminated {
                    self.terminate(id);
                    break;
                }
            }
        }
    }

    fn on_response(
        &mut self,
        response: Response,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) -> Result<(), TxError> {
        let vias = headers::vias(&response.headers)?;
        let Some(top) = vias.first() else {
            return Err(headers::HeaderError::Missing("Via").into());
        };
        if vias.len() > 1 {
            // §18.1.2: a response with more than one Via was not meant for us.
            tracing::debug!(%source, "dropping response with {} Vias", vias.len());
            return Ok(());
        }
        let (_, method) = headers::cseq(&response.headers)?;
        let code = response.status_code.code();
        if !(100..=699).contains(&code) {
            tracing::debug!(%source, code, "dropping response with invalid status");
            return Ok(());
        }
        let id = top
            .branch()
            .and_then(|b| self.clients.get(&ClientKey::new(b, method)))
            .copied();
        let Some(id) = id else {
            if method == Method::Invite && (200..=299).contains(&code) {
                self.events.push_back(TxEvent::Stray2xx {
                    response,
                    transport,
                    source,
                });
            } else {
                tracing::debug!(%source, code, %method, "dropping stray response");
            }
            return Ok(());
        };
        let Some(entry) = self.entries.get_mut(&id) else {
            return Ok(());
        };
        let mut out = Outbox {
            id,
            now,
            config: &self.config,
            transmits: &mut self.transmits,
            events: &mut self.events,
        };
        let step = match &mut entry.txn {
            Txn::InviteClient(t) => t.on_response(response, &mut out),
            Txn::NonInviteClient(t) => t.on_response(response, &mut out),
            // Client keys only ever index client transactions.
            Txn::InviteServer(_) | Txn::NonInviteServer(_) => Step::Alive,
        };
        if step == Step::Terminated {
            self.terminate(id);
        }
        Ok(())
    }

    fn on_request(
        &mut self,
        mut request: Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) -> Result<(), TxError> {
        let mut via = headers::top_via(&request.headers)?;
        via.stamp_received(source);
        headers::set_top_via(&mut request.headers, &via)?;
        check_cseq_method(&request)?;
        let key = ServerKey::for_request(&request, &via)?;
        if request.method == Method::Ack {
            self.on_ack(request, &key, transport, source, now);
            return Ok(());
        }
        if let Some(&id) = self.servers.get(&key) {
            if let Some(entry) = self.entries.get_mut(&id) {
                let mut out = Outbox {
                    id,
                    now,
                    config: &self.config,
                    transmits: &mut self.transmits,
                    events: &mut self.events,
                };
                match &mut entry.txn {
                    Txn::InviteServer(t) => t.on_retransmission(&mut out),
                    Txn::NonInviteServer(t) => t.on_retransmission(&mut out),
                    Txn::InviteClient(_) | Txn::NonInviteClient(_) => {}
                }
            }
            return Ok(());
        }
        // §18.2.2 / RFC 3581 §4: streams answer on the connection the
        // request came in on; datagrams go to received/rport. Stamping
        // guarantees an IP there; a peer's bogus `received` falls back to
        // the source.
        let peer = if transport.is_reliable() {
            source
        } else {
            via.response_address().unwrap_or(source)
        };
        let link = Link { transport, peer };
        let txn = if request.method == Method::Invite {
            Txn::InviteServer(ServerInvite::new(link, request.clone(), now)?)
        } else {
            Txn::NonInviteServer(ServerNonInvite::new(link))
        };
        let id = self.allocate_id();
        self.servers.insert(key.clone(), id);
        self.entries.insert(
            id,
            Entry {
                txn,
                index: Index::Server(key),
            },
        );
        self.events.push_back(TxEvent::Request {
            id,
            request,
            transport,
            source,
        });
        Ok(())
    }

    fn on_ack(
        &mut self,
        request: Request,
        key: &ServerKey,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        // A non-2xx ACK shares the INVITE's branch; the ACK of a 2xx has a
        // branch of its own and is matched on the dialog instead.
        let by_branch = self.servers.get(key).copied().filter(|id| {
            matches!(
                self.entries.get(id),
                Some(Entry {
                    txn: Txn::InviteServer(_),
                    ..
                })
            )
        });
        let target = by_branch.or_else(|| {
            self.entries.iter().find_map(|(id, e)| match &e.txn {
                Txn::InviteServer(t) if t.matches_2xx_ack(&request) => Some(*id),
                _ => None,
            })
        });
        let Some(id) = target else {
            self.events.push_back(TxEvent::Ack {
                invite: None,
                request,
                transport,
                source,
            });
            return;
        };
        let Some(Entry {
            txn: Txn::InviteServer(t),
            ..
        }) = self.entries.get_mut(&id)
        else {
            return;
        };
        let mut out = Outbox {
            id,
            now,
            config: &self.config,
            transmits: &mut self.transmits,
            events: &mut self.events,
        };
        if t.on_ack(&mut out) {
            self.events.push_back(TxEvent::Ack {
                invite: Some(id),
                request,
                transport,
                source,
            });
        }
    }
}

fn check_cseq_method(request: &Request) -> Result<(), TxError> {
    let (_, cseq_method) = headers::cseq(&request.headers)?;
    if cseq_method != request.method {
        return Err(TxError::MethodMismatch {
            method: request.method.to_string(),
            cseq: cseq_method.to_string(),
        });
    }
    Ok(())
}
