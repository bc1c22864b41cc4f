//! Instant messages (RFC 3428): MESSAGE requests we send outside any
//! dialog, with digest retries, and the report of their outcome.

use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Method, Request, Response};

use super::addressing;
use super::error::UaError;
use super::request::RequestTemplate;
use super::types::{AccountConfig, AccountId, LocalAddrs, MessageId};
use crate::sip::auth::{Attempt, ChallengeKind, DigestState};
use crate::sip::headers;
use crate::sip::transaction::{TransactionLayer, TxId};

/// The Content-Type of messages we send.
pub const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";

/// What sending needs besides the message itself.
pub(super) struct MessageContext<'a> {
    pub layer: &'a mut TransactionLayer,
    pub auth: &'a mut DigestState,
    pub account: &'a AccountConfig,
    pub local: &'a LocalAddrs,
    pub rport: bool,
    pub user_agent: &'a str,
    pub now: Instant,
}

/// One MESSAGE on its way.
#[derive(Debug)]
pub(super) struct OutgoingMessage {
    pub id: MessageId,
    pub account: AccountId,
    template: RequestTemplate,
    hop: SocketAddr,
    tx: TxId,
    attempt: Attempt,
}

/// What became of a MESSAGE after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Still waiting (provisional response, or re-sent with credentials).
    Pending,
    /// Done with this final status.
    Final(u16),
}

impl OutgoingMessage {
    /// Builds and sends the MESSAGE.
    pub fn send(
        id: MessageId,
        target_uri: &str,
        hop: SocketAddr,
        text: &str,
        ctx: &mut MessageContext<'_>,
    ) -> Result<Self, UaError> {
        let mut template = RequestTemplate::new(
            Method::Message,
            target_uri.to_owned(),
            format!("<{target_uri}>"),
            ctx.account,
        )?;
        template.extra = vec![("Content-Type", TEXT_PLAIN.to_owned())];
        template.body = text.as_bytes().to_vec();
        let tx = transmit(&mut template, hop, ctx)?;
        Ok(Self {
            id,
            account: ctx.account.id,
            template,
            hop,
            tx,
            attempt: Attempt::First,
        })
    }

    /// The client transaction currently carrying the message.
    pub fn tx(&self) -> TxId {
        self.tx
    }

    /// A response to [`Self::tx`].
    pub fn on_response(&mut self, response: &Response, ctx: &mut MessageContext<'_>) -> Outcome {
        let code = response.status_code.code();
        let (kind, name) = match code {
            100..=199 => return Outcome::Pending,
            401 => (ChallengeKind::Www, "WWW-Authenticate"),
            407 => (ChallengeKind::Proxy, "Proxy-Authenticate"),
            _ => return Outcome::Final(code),
        };
        let values: Vec<&str> = headers::raw_values(&response.headers, name).collect();
        if let Err(e) = ctx.auth.on_challenge(kind, &values, self.attempt) {
            tracing::info!(message = self.id.0, "MESSAGE not authorised: {e}");
            return Outcome::Final(code);
        }
        match transmit(&mut self.template, self.hop, ctx) {
            Ok(tx) => {
                self.tx = tx;
                self.attempt = Attempt::Retry;
                Outcome::Pending
            }
            Err(e) => {
                tracing::warn!(message = self.id.0, "cannot re-send MESSAGE: {e}");
                Outcome::Final(code)
            }
        }
    }
}

fn transmit(
    template: &mut RequestTemplate,
    hop: SocketAddr,
    ctx: &mut MessageContext<'_>,
) -> Result<TxId, UaError> {
    let via = addressing::new_via(ctx.account, ctx.local, ctx.rport)?;
    let request = template.next(&via, ctx.auth, ctx.user_agent)?;
    Ok(ctx
        .layer
        .send_request(request, ctx.account.transport, hop, ctx.now)?)
}

/// An incoming MESSAGE's sender, content type and text, for
/// [`super::UaEvent::MessageReceived`].
pub(super) fn received(request: &Request) -> (String, String, String) {
    let from = headers::from(&request.headers)
        .map(|f| f.uri)
        .unwrap_or_default();
    let content_type = headers::content_type(&request.headers)
        .unwrap_or("text/plain")
        .to_owned();
    let body = String::from_utf8_lossy(&request.body).into_owned();
    (from, content_type, body)
}
