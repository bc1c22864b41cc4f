//! One call: the INVITE dialog state machine on top of the transaction
//! layer (RFC 3261 §12-§15), with offer/answer (RFC 3264), hold, blind
//! transfer (RFC 3515), SIP INFO DTMF and session timers (RFC 4028).
//!
//! The user agent owns the calls and routes to them what the transaction
//! layer reports: responses and timeouts of transactions the call
//! [`owns`](Call::owns_transaction), requests whose dialog it
//! [`matches`](Call::matches_dialog), CANCELs of its INVITE, ACKs and
//! stray 2xx. Every entry point takes a [`CallContext`] with the layer,
//! the media engine, the account's digest state and the time; the call
//! sends through the layer and reports [`UaEvent`]s into the context.
//!
//! Behaviour decisions:
//! - An incoming call becomes [`CallState::Connected`] when the ACK for
//!   our 200 arrives (media already starts when the 200 is sent, if the
//!   INVITE carried the offer); `answered_at` is the time of the 200.
//!   Without an ACK within 64·T1 we send BYE and end with 408.
//! - Hanging up before any 1xx queues the CANCEL (RFC 3261 §9.1) and ends
//!   the call at once as 487 `Canceled`, not by the remote side: the user
//!   hung up. The INVITE transaction goes on in the ended call until its
//!   final response: a 1xx gets the queued CANCEL, a 2xx is ACKed and
//!   BYEd, a 401/407 is not answered with credentials.
//! - [`UaEvent::CallEnded`] is the only event at the end ([`Call::state`]
//!   is then `Ended`). The call may still have transactions running (a
//!   BYE waiting for its answer or a digest retry); [`Call::is_ended`]
//!   turns true when none is left, and the UA may drop it then.
//! - Hanging up an incoming call that rings declines it with 603.
//! - Glare (RFC 3261 §14.1): after a 491 to our re-INVITE we retry after
//!   2.1-4 s when we own the Call-ID (we placed the call), else 0-2 s.
//! - Session timers, when the account enables them: we ask for 1800 s
//!   with Min-SE 90 and let the answerer pick the refresher; as the
//!   answerer we take the caller's choice, else make the caller refresh
//!   when it supports timers, else refresh ourselves. A session the peer
//!   fails to refresh ends with BYE and 408 `Session Expired`.
//! - The Call does not emit [`UaEvent::Transferred`]: the UA does, after
//!   [`Call::take_transfer_request`], because only it knows the new call.

mod build;
mod dialog;
mod error;
mod incoming;
mod indialog;
mod outgoing;
mod refer;
mod reinvite;
mod session_timer;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rsip::{Method, Request, Response, SipMessage};

pub use error::CallError;
pub use session_timer::{DEFAULT_INTERVAL, MIN_SE};

use super::types::{
    AccountConfig, AccountId, CallId, CallState, Direction, EndReason, LocalAddrs, UaEvent,
};
use crate::sip::auth::{AuthHeader, DigestRequest, DigestState};
use crate::sip::sdp::{Codec, MediaEngine, MediaHandle, NegotiatedMedia, SdpSession};
use crate::sip::transaction::{TimeoutKind, TransactionLayer, TxId};
use crate::sip::Transport;

use build::Draft;
use dialog::Dialog;
use session_timer::SessionTimer;

/// Everything a call may touch while handling one input.
pub struct CallContext<'a> {
    /// The transaction layer everything is sent through.
    pub layer: &'a mut TransactionLayer,
    /// The media engine.
    pub media: &'a mut dyn MediaEngine,
    /// The account's digest state.
    pub auth: &'a mut DigestState,
    /// The account the call belongs to.
    pub account: &'a AccountConfig,
    /// Our sockets.
    pub local: &'a LocalAddrs,
    /// The codecs to offer, already filtered by `media.supports()`.
    pub codecs: &'a [Codec],
    /// The RFC 4733 telephone-event payload type to offer, if any.
    pub telephone_event: Option<u8>,
    /// The current time.
    pub now: Instant,
    /// Where the call reports what happened.
    pub events: &'a mut VecDeque<UaEvent>,
}

/// What a client transaction of ours is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The initial INVITE of an outgoing call.
    Invite,
    /// Our re-INVITE (hold, resume, session refresh).
    Reinvite,
    Bye,
    Refer,
    Notify,
    Info,
    /// The BYE that ends a dialog created by an unwanted forked 2xx.
    ForkBye,
}

/// A client transaction of ours, kept to retry it with credentials.
#[derive(Debug, Clone)]
struct Outstanding {
    purpose: Purpose,
    draft: Draft,
    cseq: u32,
    credentials: Vec<AuthHeader>,
    /// This sending already answered a challenge (digest `Attempt::Retry`).
    auth_retry: bool,
}

/// An ACK we sent for a 2xx, re-sent for each retransmission of it.
#[derive(Debug, Clone)]
struct SentAck {
    invite: TxId,
    cseq: u32,
    remote_tag: String,
    request: Request,
    destination: SocketAddr,
}

/// How many ACKs to remember (the initial INVITE's and recent re-INVITEs').
const ACKS_KEPT: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelState {
    None,
    /// Hung up before any 1xx: CANCEL when one arrives.
    Queued,
    Sent,
}

/// Our initial INVITE, until its final response.
#[derive(Debug, Clone)]
struct UacInvite {
    tx: TxId,
    provisional: bool,
    cancel: CancelState,
    /// The CANCEL's own transaction, once sent.
    cancel_tx: Option<TxId>,
    /// Early dialogs' remote tags (1xx with To tag), for dialog matching.
    early_tags: Vec<String>,
}

/// The INVITE of an incoming call, until it is ACKed or rejected.
#[derive(Debug, Clone)]
struct UasInvite {
    tx: TxId,
    request: Request,
    /// Our answer to the INVITE's offer, computed when it arrived (so an
    /// unacceptable offer is refused before ringing).
    answer: Option<(crate::sip::sdp::SessionDescription, NegotiatedMedia)>,
    /// The final status we sent, if any.
    final_code: Option<u16>,
    /// We offered in the 200 (no SDP in the INVITE); the ACK answers.
    offer_in_200: bool,
    /// What RFC 4028 negotiation gave, applied when we answer.
    session: Option<session_timer::SessionExpires>,
    /// The user hung up after the 200 but before the ACK (§15: no BYE
    /// before the ACK).
    bye_after_ack: bool,
}

/// A re-INVITE from the peer we answered with 2xx, until its ACK.
#[derive(Debug, Clone, Copy)]
struct PeerReinvite {
    tx: TxId,
    cseq: u32,
    /// Our 200 carried an offer; the ACK carries the answer.
    awaiting_answer: bool,
}

/// One call. See the module documentation for the behaviour.
pub struct Call {
    id: CallId,
    account: AccountId,
    direction: Direction,
    state: CallState,
    dialog: Dialog,
    sdp: SdpSession,
    rtp: MediaHandle,
    media_started: bool,
    negotiated: Option<NegotiatedMedia>,
    remote_uri: String,
    remote_name: String,
    started_at: Instant,
    answered_at: Option<Instant>,
    /// Hold as last reported in [`UaEvent::CallHold`].
    local_hold: bool,
    remote_hold: bool,
    /// The hold state the user asked for (a re-INVITE may be in flight).
    hold_wanted: bool,
    session_timers: bool,
    pending: HashMap<TxId, Outstanding>,
    uac: Option<UacInvite>,
    uas: Option<UasInvite>,
    acks: VecDeque<SentAck>,
    /// Our re-INVITE in progress.
    reinvite: Option<TxId>,
    peer_reinvite: Option<PeerReinvite>,
    glare_retry: Option<Instant>,
    /// The Session-Expires we ask for (raised by 422).
    session_interval: u32,
    timer: Option<SessionTimer>,
    /// Our REFER was sent (and not finished).
    refer_out: Option<TxId>,
    /// A REFER we accepted: its subscription is active.
    refer_in: bool,
    transfer_target: Option<String>,
    /// The SIP Call-ID was made by us.
    owns_call_id: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("id", &self.id)
            .field("direction", &self.direction)
            .field("state", &self.state)
            .field("call_id", &self.dialog.call_id)
            .finish_non_exhaustive()
    }
}

impl Call {
    // ------------------------------------------------------------------
    // Queries

    /// The call's id.
    pub fn id(&self) -> CallId {
        self.id
    }

    /// The account it belongs to.
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// Where it is.
    pub fn state(&self) -> CallState {
        self.state
    }

    /// Over, with no transaction of it left (nor a BYE owed once the ACK
    /// of our 200 comes): the UA may drop it.
    pub fn is_ended(&self) -> bool {
        self.state == CallState::Ended
            && self.pending.is_empty()
            && !self.uas.as_ref().is_some_and(|u| u.bye_after_ack)
    }

    /// Which way it goes.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The far end's URI (the target we called, or the caller's From).
    pub fn remote_uri(&self) -> &str {
        &self.remote_uri
    }

    /// The far end's display name, unquoted (may be empty).
    pub fn remote_name(&self) -> &str {
        &self.remote_name
    }

    /// Our side of the dialog as the From/To header shows it (for an
    /// incoming call: the INVITE's To, the user and domain called).
    pub fn local_uri(&self) -> &str {
        &self.dialog.local_uri
    }

    /// We hold the far end.
    pub fn local_hold(&self) -> bool {
        self.local_hold
    }

    /// The far end holds us.
    pub fn remote_hold(&self) -> bool {
        self.remote_hold
    }

    /// The call's stream in the media engine.
    pub fn media_handle(&self) -> MediaHandle {
        self.rtp
    }

    /// The codec we send with, once negotiated (`PCMU`, `opus`, ...).
    pub fn codec(&self) -> Option<&str> {
        self.negotiated
            .as_ref()
            .map(|m| m.send_codec.codec.encoding.as_str())
    }

    /// The negotiated media, once an offer/answer completed.
    pub fn media(&self) -> Option<&NegotiatedMedia> {
        self.negotiated.as_ref()
    }

    /// When the call was answered (our 200 sent, or theirs received).
    pub fn answered_at(&self) -> Option<Instant> {
        self.answered_at
    }

    /// When the call was created.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// The SIP Call-ID.
    pub fn call_id(&self) -> &str {
        &self.dialog.call_id
    }

    /// Whether `tx` is one of this call's transactions (client ones, the
    /// incoming INVITE, a re-INVITE from the peer awaiting its ACK).
    pub fn owns_transaction(&self, tx: TxId) -> bool {
        self.pending.contains_key(&tx)
            || self
                .uac
                .as_ref()
                .is_some_and(|u| u.tx == tx || u.cancel_tx == Some(tx))
            || self.uas.as_ref().is_some_and(|u| u.tx == tx)
            || self.peer_reinvite.is_some_and(|p| p.tx == tx)
            || self.acks.iter().any(|a| a.invite == tx)
    }

    /// Whether a request with this Call-ID and tags (ours: the To tag of a
    /// request to us) belongs to this call's dialog, early ones included.
    pub fn matches_dialog(&self, call_id: &str, local_tag: &str, remote_tag: &str) -> bool {
        if call_id != self.dialog.call_id || local_tag != self.dialog.local_tag {
            return false;
        }
        match &self.dialog.remote_tag {
            Some(tag) => tag == remote_tag,
            None => self
                .uac
                .as_ref()
                .is_some_and(|u| u.early_tags.iter().any(|t| t == remote_tag)),
        }
    }

    /// When [`Call::handle_timeout`] must run next (glare retry, session
    /// refresh or expiry).
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.state == CallState::Ended {
            return None;
        }
        [self.glare_retry, self.timer.map(|t| t.deadline)]
            .into_iter()
            .flatten()
            .min()
    }

    // ------------------------------------------------------------------
    // Inputs

    /// A response to one of our client transactions.
    pub fn on_response(&mut self, tx: TxId, response: Response, ctx: &mut CallContext) {
        let code = response.status_code.code();
        if self.acks.iter().any(|a| a.invite == tx) {
            // A retransmitted (or forked) 2xx of an INVITE we ACKed.
            if (200..300).contains(&code) {
                self.resend_or_reject_fork(response, ctx);
            }
            return;
        }
        if code < 200 {
            if self.uac.as_ref().is_some_and(|u| u.tx == tx) {
                self.on_invite_provisional(&response, ctx);
            }
            return;
        }
        let Some(out) = self.pending.remove(&tx) else {
            return;
        };
        // A challenge to an INVITE the user already hung up is not
        // answered: retrying would only place the call to cancel it.
        let hung_up = out.purpose == Purpose::Invite
            && self
                .uac
                .as_ref()
                .is_some_and(|u| u.cancel != CancelState::None);
        if (code == 401 || code == 407)
            && !hung_up
            && self.retry_with_credentials(&out, &response, ctx)
        {
            return;
        }
        match out.purpose {
            Purpose::Invite => self.on_invite_final(tx, &out, response, ctx),
            Purpose::Reinvite => self.on_reinvite_final(tx, &out, response, ctx),
            Purpose::Refer => self.on_refer_final(code, ctx),
            Purpose::Bye | Purpose::ForkBye => {}
            Purpose::Notify | Purpose::Info => self.on_in_dialog_failure(code, ctx),
        }
    }

    /// A client or server transaction of this call gave up.
    pub fn on_timeout(&mut self, tx: TxId, kind: TimeoutKind, ctx: &mut CallContext) {
        match kind {
            TimeoutKind::NoResponse => self.client_failed(tx, 408, ctx),
            TimeoutKind::NoAck => {}
            TimeoutKind::No2xxAck => {
                let ours = self.uas.as_ref().is_some_and(|u| u.tx == tx)
                    || self.peer_reinvite.is_some_and(|p| p.tx == tx);
                if ours {
                    self.uas = None;
                    self.peer_reinvite = None;
                    // §13.3.1.4: the session is confirmed and at once ended.
                    self.send_bye(ctx);
                    self.end(408, "No ACK", false, ctx);
                }
            }
        }
    }

    /// The transport failed for transaction `tx` (treated as a 503).
    pub fn on_transport_error(&mut self, tx: TxId, ctx: &mut CallContext) {
        self.client_failed(tx, 503, ctx);
    }

    /// Runs due call timers: glare retry, session refresh or expiry.
    pub fn handle_timeout(&mut self, ctx: &mut CallContext) {
        if self.state == CallState::Ended {
            return;
        }
        if self.glare_retry.is_some_and(|at| at <= ctx.now) {
            self.glare_retry = None;
            self.retry_after_glare(ctx);
        }
        if let Some(timer) = self.timer.filter(|t| t.deadline <= ctx.now) {
            self.on_session_timer(timer, ctx);
        }
    }

    // ------------------------------------------------------------------
    // Shared machinery

    fn new(
        id: CallId,
        direction: Direction,
        dialog: Dialog,
        sdp: SdpSession,
        rtp: MediaHandle,
        ctx: &CallContext,
    ) -> Self {
        Self {
            id,
            account: ctx.account.id,
            direction,
            state: match direction {
                Direction::Outgoing => CallState::Calling,
                Direction::Incoming => CallState::Incoming,
            },
            dialog,
            sdp,
            rtp,
            media_started: false,
            negotiated: None,
            remote_uri: String::new(),
            remote_name: String::new(),
            started_at: ctx.now,
            answered_at: None,
            local_hold: false,
            remote_hold: false,
            hold_wanted: false,
            session_timers: ctx.account.session_timers,
            pending: HashMap::new(),
            uac: None,
            uas: None,
            acks: VecDeque::new(),
            reinvite: None,
            peer_reinvite: None,
            glare_retry: None,
            session_interval: DEFAULT_INTERVAL,
            timer: None,
            refer_out: None,
            refer_in: false,
            transfer_target: None,
            owns_call_id: direction == Direction::Outgoing,
        }
    }

    fn emit(&self, ctx: &mut CallContext, event: UaEvent) {
        ctx.events.push_back(event);
    }

    fn set_state(&mut self, state: CallState, ctx: &mut CallContext) {
        if self.state != state && self.state != CallState::Ended {
            self.state = state;
            self.emit(
                ctx,
                UaEvent::CallState {
                    call: self.id,
                    state,
                },
            );
        }
    }

    /// Ends the call once: stops media and timers, reports why.
    fn end(&mut self, code: u16, text: &str, by_remote: bool, ctx: &mut CallContext) {
        if self.state == CallState::Ended {
            return;
        }
        self.state = CallState::Ended;
        ctx.media.stop(self.rtp);
        self.timer = None;
        self.glare_retry = None;
        self.emit(
            ctx,
            UaEvent::CallEnded {
                call: self.id,
                reason: EndReason {
                    code,
                    text: text.to_owned(),
                    by_remote,
                },
            },
        );
    }

    /// Hands a completed offer/answer to the media engine.
    fn apply_media(&mut self, media: NegotiatedMedia, ctx: &mut CallContext) {
        if self.negotiated.as_ref() == Some(&media) && self.media_started {
            return;
        }
        let result = if self.media_started {
            ctx.media.update(self.rtp, &media)
        } else {
            ctx.media.start(self.rtp, &media)
        };
        match result {
            Ok(()) => self.media_started = true,
            // Signalling goes on: the user hears the problem and hangs up.
            Err(e) => tracing::warn!(call = ?self.id, "media engine: {e}"),
        }
        self.negotiated = Some(media);
    }

    /// Reports hold changes after an offer/answer.
    fn report_hold(&mut self, ctx: &mut CallContext) {
        let local = self.sdp.is_local_hold();
        let remote = self.sdp.is_remote_hold();
        if (local, remote) != (self.local_hold, self.remote_hold) {
            self.local_hold = local;
            self.remote_hold = remote;
            self.emit(
                ctx,
                UaEvent::CallHold {
                    call: self.id,
                    local,
                    remote,
                },
            );
        }
    }

    /// Sends a new request of the dialog (next CSeq).
    fn send(
        &mut self,
        draft: Draft,
        purpose: Purpose,
        ctx: &mut CallContext,
    ) -> Result<TxId, CallError> {
        let cseq = self.dialog.next_cseq();
        self.transmit(draft, cseq, purpose, false, ctx)
    }

    /// Renders and sends one sending of `draft` with the credentials the
    /// account's digest state holds.
    fn transmit(
        &mut self,
        draft: Draft,
        cseq: u32,
        purpose: Purpose,
        auth_retry: bool,
        ctx: &mut CallContext,
    ) -> Result<TxId, CallError> {
        let method = draft.method.to_string();
        let credentials = ctx.auth.authorize(&DigestRequest {
            method: &method,
            uri: &draft.uri,
            body: draft.body_bytes(),
        });
        let request = draft.render(&self.dialog.via()?, cseq, &credentials)?;
        let tx = ctx.layer.send_request(
            request,
            self.dialog.transport,
            self.dialog.destination(),
            ctx.now,
        )?;
        self.pending.insert(
            tx,
            Outstanding {
                purpose,
                draft,
                cseq,
                credentials,
                auth_retry,
            },
        );
        Ok(tx)
    }

    /// 401/407: answers the challenge and re-sends with a new CSeq (§22.2).
    /// `false` when the challenge cannot be answered (wrong password).
    fn retry_with_credentials(
        &mut self,
        out: &Outstanding,
        response: &Response,
        ctx: &mut CallContext,
    ) -> bool {
        if out.purpose == Purpose::ForkBye {
            return false;
        }
        if out.purpose == Purpose::Invite
            && self
                .uac
                .as_ref()
                .is_some_and(|u| u.cancel != CancelState::None)
        {
            return false;
        }
        let (kind, name) = if response.status_code.code() == 401 {
            (crate::sip::auth::ChallengeKind::Www, "WWW-Authenticate")
        } else {
            (crate::sip::auth::ChallengeKind::Proxy, "Proxy-Authenticate")
        };
        let values: Vec<&str> = crate::sip::headers::raw_values(&response.headers, name).collect();
        let attempt = if out.auth_retry {
            crate::sip::auth::Attempt::Retry
        } else {
            crate::sip::auth::Attempt::First
        };
        if let Err(e) = ctx.auth.on_challenge(kind, &values, attempt) {
            tracing::info!(call = ?self.id, "challenge not answered: {e}");
            return false;
        }
        let cseq = self.dialog.next_cseq();
        match self.transmit(out.draft.clone(), cseq, out.purpose, true, ctx) {
            Ok(tx) => {
                self.retarget(out.purpose, tx);
                true
            }
            Err(e) => {
                tracing::warn!(call = ?self.id, "retry with credentials: {e}");
                false
            }
        }
    }

    /// Points the state that tracks a re-sent request at its new
    /// transaction.
    fn retarget(&mut self, purpose: Purpose, tx: TxId) {
        match purpose {
            Purpose::Invite => {
                if let Some(uac) = &mut self.uac {
                    uac.tx = tx;
                    uac.provisional = false;
                }
            }
            Purpose::Reinvite => self.reinvite = Some(tx),
            Purpose::Refer => self.refer_out = Some(tx),
            _ => {}
        }
    }

    /// A client transaction ended without a response (timeout: 408,
    /// transport failure: 503).
    fn client_failed(&mut self, tx: TxId, code: u16, ctx: &mut CallContext) {
        let Some(out) = self.pending.remove(&tx) else {
            return;
        };
        let text = build::reason(code);
        match out.purpose {
            Purpose::Invite => self.invite_failed(code, &text, false, ctx),
            Purpose::Reinvite => {
                self.reinvite = None;
                self.sdp.rollback_offer();
                self.send_bye(ctx);
                self.end(code, &text, false, ctx);
            }
            Purpose::Refer => self.on_refer_final(code, ctx),
            Purpose::Notify | Purpose::Info => self.on_in_dialog_failure(code, ctx),
            Purpose::Bye | Purpose::ForkBye => {}
        }
    }

    /// §12.2.1.2: a 481 or 408 to a request in the dialog ends it.
    fn on_in_dialog_failure(&mut self, code: u16, ctx: &mut CallContext) {
        if code == 481 || code == 408 {
            if code == 408 {
                self.send_bye(ctx);
            }
            self.end(code, &build::reason(code), code == 481, ctx);
        }
    }

    /// Sends BYE in the dialog (nothing before it is confirmed).
    fn send_bye(&mut self, ctx: &mut CallContext) {
        if self.dialog.remote_tag.is_none() {
            return;
        }
        let draft = self.dialog.draft(Method::Bye);
        if let Err(e) = self.send(draft, Purpose::Bye, ctx) {
            tracing::warn!(call = ?self.id, "cannot send BYE: {e}");
        }
    }

    /// Sends (and remembers) the ACK for a 2xx to INVITE `invite` with
    /// CSeq `cseq` (§13.2.2.4: end to end, same credentials as the INVITE).
    fn send_ack(
        &mut self,
        invite: TxId,
        cseq: u32,
        credentials: &[AuthHeader],
        body: Option<(String, Vec<u8>)>,
        ctx: &mut CallContext,
    ) {
        let mut draft = self.dialog.draft(Method::Ack);
        draft.body = body;
        let request = self
            .dialog
            .via()
            .and_then(|via| draft.render(&via, cseq, credentials));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(call = ?self.id, "cannot build ACK: {e}");
                return;
            }
        };
        let destination = self.dialog.destination();
        ctx.layer.send_stateless(
            &SipMessage::Request(request.clone()),
            self.dialog.transport,
            destination,
        );
        if self.acks.len() >= ACKS_KEPT {
            self.acks.pop_front();
        }
        self.acks.push_back(SentAck {
            invite,
            cseq,
            remote_tag: self.dialog.remote_tag.clone().unwrap_or_default(),
            request,
            destination,
        });
    }

    fn require_state(&self, operation: &'static str, ok: bool) -> Result<(), CallError> {
        if ok {
            Ok(())
        } else {
            Err(CallError::InvalidState {
                operation,
                state: self.state,
            })
        }
    }

    /// The transport the dialog's requests use.
    pub fn transport(&self) -> Transport {
        self.dialog.transport
    }
}
