//! Routing what arrives: bytes to the transaction layer, and the layer's
//! events to their owner (a registration, a MESSAGE, a call) or to the
//! user agent's own answers (OPTIONS, MESSAGE, 400/405/481).

use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Header, Method, Request, Response};

use super::message::{self, MessageContext, Outcome};
use super::response;
use super::types::{MessageId, UaEvent};
use super::UserAgent;
use crate::sip::headers;
use crate::sip::transaction::{TxEvent, TxId};
use crate::sip::wire::{self, Incoming};
use crate::sip::{Transmit, Transport};

/// Status reported for a request that timed out (timer F/B).
const TIMEOUT: u16 = 408;
/// Status reported when the transport failed (RFC 3261 §8.1.3.1).
const TRANSPORT_FAILED: u16 = 503;

impl UserAgent {
    pub(super) fn on_datagram(
        &mut self,
        bytes: &[u8],
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        match wire::parse_datagram(bytes) {
            Ok(Incoming::KeepAlive(_)) => {}
            Ok(Incoming::Message(message)) => {
                if let Err(e) = self.layer.handle_message(message, transport, source, now) {
                    tracing::debug!(%source, "dropped a message: {e}");
                }
            }
            Err(error) => {
                tracing::debug!(%source, "unreadable message: {error}");
                let tag = new_tag();
                if let Some(bytes) = wire::reject_response(bytes, &error, &tag) {
                    self.transmits.push_back(Transmit {
                        transport,
                        destination: source,
                        bytes,
                    });
                }
            }
        }
    }

    /// Drains the layer's events until none are left (handling one may
    /// cause more), then settles the calls and collects the layer's output.
    pub(super) fn pump(&mut self, now: Instant) {
        loop {
            let mut handled = false;
            while let Some(event) = self.layer.poll_event() {
                handled = true;
                self.on_tx_event(event, now);
            }
            self.settle_calls(now);
            if !handled {
                break;
            }
        }
        while let Some(transmit) = self.layer.poll_transmit() {
            self.transmits.push_back(transmit);
        }
    }

    fn on_tx_event(&mut self, event: TxEvent, now: Instant) {
        match event {
            TxEvent::Request {
                id,
                request,
                transport,
                source,
            } => self.on_request(id, request, transport, source, now),
            TxEvent::Ack { request, .. } => self.call_ack(request, now),
            TxEvent::Response { id, response } => self.on_response(id, response, now),
            TxEvent::Stray2xx { response, .. } => self.call_stray_2xx(response, now),
            TxEvent::Timeout { id, kind } => {
                if !self.client_failed(id, TIMEOUT, "Request Timeout", now) {
                    self.call_timeout(id, kind, now);
                }
            }
            TxEvent::TransportError { id } => {
                if !self.client_failed(id, TRANSPORT_FAILED, "transport error", now) {
                    self.call_transport_error(id, now);
                }
            }
            TxEvent::Terminated { .. } => {}
        }
    }

    fn on_response(&mut self, id: TxId, response: Response, now: Instant) {
        if let Some(index) = self.accounts.iter().position(|a| a.registration.owns(id)) {
            self.with_registration(index, now, |reg, ctx| {
                reg.on_response(id, &response, ctx);
                Ok(())
            })
            .ok();
            return;
        }
        if let Some(position) = self.messages.iter().position(|m| m.tx() == id) {
            self.message_response(position, &response, now);
            return;
        }
        self.call_response(id, response, now);
    }

    fn message_response(&mut self, position: usize, response: &Response, now: Instant) {
        let Self {
            layer,
            accounts,
            config,
            messages,
            events,
            ..
        } = self;
        let Some(message) = messages.get_mut(position) else {
            return;
        };
        let Some(state) = accounts.iter_mut().find(|a| a.config.id == message.account) else {
            return;
        };
        let mut ctx = MessageContext {
            layer,
            auth: &mut state.auth,
            account: &state.config,
            local: &config.local,
            rport: config.rport,
            user_agent: &config.user_agent,
            now,
        };
        if let Outcome::Final(code) = message.on_response(response, &mut ctx) {
            let id = message.id;
            messages.remove(position);
            events.push_back(UaEvent::MessageResult { message: id, code });
        }
    }

    /// A client transaction of a registration or MESSAGE failed without a
    /// response; `false` if `id` belongs to neither.
    fn client_failed(&mut self, id: TxId, code: u16, why: &str, now: Instant) -> bool {
        if let Some(index) = self.accounts.iter().position(|a| a.registration.owns(id)) {
            self.with_registration(index, now, |reg, ctx| {
                reg.on_failure(id, code, why, ctx);
                Ok(())
            })
            .ok();
            return true;
        }
        if let Some(position) = self.messages.iter().position(|m| m.tx() == id) {
            let message: MessageId = self.messages.remove(position).id;
            self.events
                .push_back(UaEvent::MessageResult { message, code });
            return true;
        }
        false
    }

    fn on_request(
        &mut self,
        id: TxId,
        request: Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        let in_dialog = headers::to(&request.headers)
            .ok()
            .is_some_and(|to| to.tag().is_some());
        match request.method {
            Method::Cancel => self.call_cancel(id, request, transport, source, now),
            // The layer reports ACKs as `TxEvent::Ack`, never as requests.
            Method::Ack => {}
            _ if in_dialog => {
                if !self.call_in_dialog(id, &request, transport, source, now) {
                    self.respond(id, &request, 481, Vec::new(), now);
                }
            }
            Method::Invite => self.call_incoming(id, request, transport, source, now),
            Method::Options => {
                let timers = self
                    .account_for(&request)
                    .is_some_and(|a| a.config.session_timers);
                let extra = response::capabilities(&self.config.user_agent, timers);
                self.respond(id, &request, 200, extra, now);
            }
            Method::Message => self.on_message(id, &request, now),
            // Methods we support only inside a dialog.
            Method::Bye | Method::Info | Method::Notify | Method::Refer | Method::Update => {
                self.respond(id, &request, 481, Vec::new(), now);
            }
            _ => self.respond(id, &request, 405, response::allow(), now),
        }
    }

    fn on_message(&mut self, id: TxId, request: &Request, now: Instant) {
        let account = self.account_for(request).map(|a| a.config.id);
        self.respond(id, request, 200, Vec::new(), now);
        let (from, content_type, body) = message::received(request);
        if let Some(account) = account {
            self.events.push_back(UaEvent::MessageReceived {
                account,
                from,
                content_type,
                body,
            });
        }
    }

    /// The account a request is for: the one whose user the Request-URI
    /// (else the To URI) names, else the first.
    pub(super) fn account_for(&self, request: &Request) -> Option<&super::AccountState> {
        let uri_user = request.uri.auth.as_ref().map(|a| a.user.clone());
        let to_user = headers::to(&request.headers)
            .ok()
            .and_then(|to| user_of(&to.uri).map(str::to_owned));
        let by_user = |user: &Option<String>| {
            user.as_deref().and_then(|user| {
                self.accounts
                    .iter()
                    .find(|a| a.config.username.eq_ignore_ascii_case(user))
            })
        };
        by_user(&uri_user)
            .or_else(|| by_user(&to_user))
            .or_else(|| self.accounts.first())
    }

    /// Answers server transaction `id` with `code` (a fresh To tag).
    pub(super) fn respond(
        &mut self,
        id: TxId,
        request: &Request,
        code: u16,
        extra: Vec<Header>,
        now: Instant,
    ) {
        let response = response::response_to(request, code, &new_tag(), extra);
        if let Err(e) = self.layer.send_response(id, response, now) {
            tracing::debug!("cannot answer {}: {e}", request.method);
        }
    }
}

/// A To tag for a response; a time-derived one should the OS random
/// source fail, since answering matters more than tag quality.
pub(super) fn new_tag() -> String {
    headers::new_tag().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{nanos:x}")
    })
}

/// The user part of a SIP URI.
fn user_of(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once(':')?;
    let (user, _) = rest.split_once('@')?;
    Some(user.split(';').next().unwrap_or(user))
}
