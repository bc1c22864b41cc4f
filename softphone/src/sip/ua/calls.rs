//! The user agent's side of calls: creating them, routing transactions and
//! dialogs to them, the user's commands, transfers (REFER we accepted), and
//! dropping them once ended. The dialog logic itself is [`super::call`].

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rsip::{Header, Request, Response};

use super::call::{Call, CallContext, CallError};
use super::error::UaError;
use super::types::{AccountConfig, AccountId, CallId, CallState, Direction, UaEvent};
use super::UserAgent;
use crate::sip::headers;
use crate::sip::sdp::MediaHandle;
use crate::sip::transaction::{TimeoutKind, TxId};
use crate::sip::Transport;

/// A call as [`UserAgent::calls`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// The call.
    pub id: CallId,
    /// The account it belongs to.
    pub account: AccountId,
    /// Which way it goes.
    pub direction: Direction,
    /// The far end's URI.
    pub remote_uri: String,
    /// The far end's display name (may be empty).
    pub remote_name: String,
    /// Our side as its header shows it (an incoming call's To: the user
    /// and domain that were called).
    pub local_uri: String,
    /// Where it stands.
    pub state: CallState,
    /// We hold the far end.
    pub local_hold: bool,
    /// The far end holds us.
    pub remote_hold: bool,
    /// The codec we send with, once negotiated.
    pub codec: Option<String>,
    /// When the call was created.
    pub started_at: Instant,
    /// When it was answered.
    pub answered_at: Option<Instant>,
}

/// A call we placed because the far end of `old_call` transferred us
/// (REFER); its progress goes back to them as NOTIFY sipfrag.
#[derive(Debug, Clone, Copy)]
pub(super) struct TransferLink {
    old_call: CallId,
    new_call: CallId,
    /// The last status reported, so each is reported once.
    reported: u16,
}

impl UserAgent {
    /// Calls `target_uri` (a number or URI, completed with the account's
    /// domain) from `account`, sending the INVITE to `hop`.
    pub fn call(
        &mut self,
        account: AccountId,
        target_uri: &str,
        hop: SocketAddr,
        now: Instant,
    ) -> Result<CallId, UaError> {
        if self.shutting_down {
            return Err(UaError::ShuttingDown);
        }
        let index = self.account_index(account)?;
        let id = self.start_call(index, target_uri, hop, now)?;
        self.pump(now);
        Ok(id)
    }

    /// Answers an incoming call (200 with our SDP answer).
    pub fn answer(&mut self, call: CallId, now: Instant) -> Result<(), UaError> {
        self.command(call, now, |c, ctx| c.answer(ctx))
    }

    /// Refuses an incoming call with `code` (486 busy, 603 decline, ...).
    pub fn reject(&mut self, call: CallId, code: u16, now: Instant) -> Result<(), UaError> {
        self.command(call, now, |c, ctx| c.reject(code, ctx))
    }

    /// Forwards a ringing incoming call to `target` (a number or URI,
    /// completed with the account's domain): 302 with it as Contact.
    pub fn redirect(&mut self, call: CallId, target: &str, now: Instant) -> Result<(), UaError> {
        self.command(call, now, |c, ctx| {
            let uri = ctx.account.target_uri(target);
            c.redirect(&uri, ctx)
        })
    }

    /// Ends a call in any state (CANCEL, reject or BYE as fits).
    pub fn hangup(&mut self, call: CallId, now: Instant) -> Result<(), UaError> {
        self.command(call, now, |c, ctx| c.hangup(ctx))
    }

    /// Puts a connected call on hold (re-INVITE).
    pub fn hold(&mut self, call: CallId, now: Instant) -> Result<(), UaError> {
        self.command(call, now, |c, ctx| c.hold(ctx))
    }

    /// Takes a held call off hold.
    pub fn resume(&mut self, call: CallId, now: Instant) -> Result<(), UaError> {
        self.command(call, now, |c, ctx| c.resume(ctx))
    }

    /// Blind transfer: asks the far end to call `target_uri` (REFER);
    /// [`UaEvent::TransferProgress`] follows.
    pub fn transfer(
        &mut self,
        call: CallId,
        target_uri: &str,
        now: Instant,
    ) -> Result<(), UaError> {
        self.command(call, now, |c, ctx| c.transfer(target_uri, ctx))
    }

    /// Sends a DTMF digit by SIP INFO.
    pub fn send_dtmf_info(
        &mut self,
        call: CallId,
        digit: char,
        now: Instant,
    ) -> Result<(), UaError> {
        self.command(call, now, |c, ctx| c.send_dtmf_info(digit, ctx))
    }

    /// The media engine's handle for `call`'s stream (the driver routes
    /// DTMF and Status queries to the engine with it).
    pub fn media_handle(&self, call: CallId) -> Option<MediaHandle> {
        self.calls.get(&call).map(Call::media_handle)
    }

    /// The live call whose stream is `handle` (the engine reports media
    /// events, such as RFC 4733 digits, by handle).
    pub fn call_for_media(&self, handle: MediaHandle) -> Option<CallId> {
        self.calls
            .values()
            .find(|c| c.media_handle() == handle)
            .map(Call::id)
    }

    /// Every live call, oldest first.
    pub fn calls(&self) -> impl Iterator<Item = CallInfo> + '_ {
        self.calls.values().map(|c| CallInfo {
            id: c.id(),
            account: c.account(),
            direction: c.direction(),
            remote_uri: c.remote_uri().to_owned(),
            remote_name: c.remote_name().to_owned(),
            local_uri: c.local_uri().to_owned(),
            state: c.state(),
            local_hold: c.local_hold(),
            remote_hold: c.remote_hold(),
            codec: c.codec().map(str::to_owned),
            started_at: c.started_at(),
            answered_at: c.answered_at(),
        })
    }

    fn command(
        &mut self,
        call: CallId,
        now: Instant,
        f: impl FnOnce(&mut Call, &mut CallContext<'_>) -> Result<(), CallError>,
    ) -> Result<(), UaError> {
        let result = self
            .with_call(call, now, f)
            .and_then(|r| r.map_err(UaError::Call));
        self.pump(now);
        result
    }

    fn start_call(
        &mut self,
        index: usize,
        target_uri: &str,
        hop: SocketAddr,
        now: Instant,
    ) -> Result<CallId, UaError> {
        self.next_call += 1;
        let id = CallId(self.next_call);
        let Self {
            layer,
            media,
            accounts,
            config,
            codecs,
            events,
            calls,
            ..
        } = self;
        let state = accounts.get_mut(index).ok_or(UaError::UnknownAccount(0))?;
        let target = state.config.target_uri(target_uri);
        let mut ctx = CallContext {
            layer,
            media: media.as_mut(),
            auth: &mut state.auth,
            account: &state.config,
            local: &config.local,
            codecs,
            telephone_event: config.telephone_event,
            now,
            events,
        };
        let call = Call::outgoing(id, &target, hop, &mut ctx)?;
        calls.insert(id, call);
        Ok(id)
    }

    /// Runs `f` on call `id` with its account's context.
    fn with_call<R>(
        &mut self,
        id: CallId,
        now: Instant,
        f: impl FnOnce(&mut Call, &mut CallContext<'_>) -> R,
    ) -> Result<R, UaError> {
        let Self {
            layer,
            media,
            accounts,
            config,
            codecs,
            events,
            calls,
            ..
        } = self;
        let call = calls.get_mut(&id).ok_or(UaError::UnknownCall(id))?;
        let account = call.account();
        let state = accounts
            .iter_mut()
            .find(|a| a.config.id == account)
            .ok_or(UaError::UnknownAccount(account))?;
        let mut ctx = CallContext {
            layer,
            media: media.as_mut(),
            auth: &mut state.auth,
            account: &state.config,
            local: &config.local,
            codecs,
            telephone_event: config.telephone_event,
            now,
            events,
        };
        Ok(f(call, &mut ctx))
    }

    fn call_where(&self, mut matches: impl FnMut(&Call) -> bool) -> Option<CallId> {
        self.calls.values().find(|c| matches(c)).map(|c| c.id())
    }

    pub(super) fn call_incoming(
        &mut self,
        tx: TxId,
        request: Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        if self.shutting_down {
            self.respond(tx, &request, 503, Vec::new(), now);
            return;
        }
        let Some(index) = self
            .account_for(&request)
            .and_then(|a| self.account_index(a.config.id).ok())
        else {
            self.respond(tx, &request, 480, Vec::new(), now);
            return;
        };
        self.next_call += 1;
        let id = CallId(self.next_call);
        let created = {
            let Self {
                layer,
                media,
                accounts,
                config,
                codecs,
                events,
                ..
            } = self;
            let Some(state) = accounts.get_mut(index) else {
                return;
            };
            let mut ctx = CallContext {
                layer,
                media: media.as_mut(),
                auth: &mut state.auth,
                account: &state.config,
                local: &config.local,
                codecs,
                telephone_event: config.telephone_event,
                now,
                events,
            };
            Call::incoming(id, tx, request.clone(), transport, source, &mut ctx)
        };
        match created {
            Ok(call) => {
                self.calls.insert(id, call);
            }
            Err(e) => {
                tracing::info!("refusing an incoming call: {e}");
                let extra = e
                    .response_headers()
                    .into_iter()
                    .map(|(name, value)| Header::Other(name.to_owned(), value))
                    .collect();
                self.respond(tx, &request, e.status().unwrap_or(500), extra, now);
            }
        }
    }

    /// An in-dialog request: `false` when no call has its dialog (the
    /// caller answers 481).
    pub(super) fn call_in_dialog(
        &mut self,
        tx: TxId,
        request: &Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) -> bool {
        let Some((call_id, local, remote)) = request_dialog(request) else {
            return false;
        };
        let Some(id) = self.call_where(|c| c.matches_dialog(&call_id, &local, &remote)) else {
            return false;
        };
        self.with_call(id, now, |c, ctx| {
            c.on_request(tx, request.clone(), transport, source, ctx)
        })
        .is_ok()
    }

    pub(super) fn call_cancel(
        &mut self,
        tx: TxId,
        request: Request,
        transport: Transport,
        source: SocketAddr,
        now: Instant,
    ) {
        let owner = self
            .layer
            .cancelled_invite(tx)
            .and_then(|invite| self.call_where(|c| c.owns_transaction(invite)));
        match owner {
            Some(id) => {
                self.with_call(id, now, |c, ctx| {
                    c.on_request(tx, request, transport, source, ctx)
                })
                .ok();
            }
            None => self.respond(tx, &request, 481, Vec::new(), now),
        }
    }

    pub(super) fn call_ack(&mut self, request: Request, now: Instant) {
        let Some((call_id, local, remote)) = request_dialog(&request) else {
            return;
        };
        if let Some(id) = self.call_where(|c| c.matches_dialog(&call_id, &local, &remote)) {
            self.with_call(id, now, |c, ctx| c.on_ack(request, ctx))
                .ok();
        }
    }

    pub(super) fn call_stray_2xx(&mut self, response: Response, now: Instant) {
        let dialog = (|| {
            let call_id = headers::call_id(&response.headers).ok()?.to_owned();
            let local = headers::from(&response.headers).ok()?.tag()?.to_owned();
            let remote = headers::to(&response.headers).ok()?.tag()?.to_owned();
            Some((call_id, local, remote))
        })();
        let Some((call_id, local, remote)) = dialog else {
            return;
        };
        if let Some(id) = self.call_where(|c| c.matches_dialog(&call_id, &local, &remote)) {
            self.with_call(id, now, |c, ctx| c.on_stray_2xx(response, ctx))
                .ok();
        }
    }

    pub(super) fn call_response(&mut self, tx: TxId, response: Response, now: Instant) {
        if let Some(id) = self.call_where(|c| c.owns_transaction(tx)) {
            self.with_call(id, now, |c, ctx| c.on_response(tx, response, ctx))
                .ok();
        }
    }

    pub(super) fn call_timeout(&mut self, tx: TxId, kind: TimeoutKind, now: Instant) {
        if let Some(id) = self.call_where(|c| c.owns_transaction(tx)) {
            self.with_call(id, now, |c, ctx| c.on_timeout(tx, kind, ctx))
                .ok();
        }
    }

    pub(super) fn call_transport_error(&mut self, tx: TxId, now: Instant) {
        if let Some(id) = self.call_where(|c| c.owns_transaction(tx)) {
            self.with_call(id, now, |c, ctx| c.on_transport_error(tx, ctx))
                .ok();
        }
    }

    /// Fires the calls' own timers (session refresh, re-INVITE retry, ...).
    pub(super) fn calls_timeout(&mut self, now: Instant) {
        let due: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| c.next_timeout().is_some_and(|at| at <= now))
            .map(|c| c.id())
            .collect();
        for id in due {
            self.with_call(id, now, |c, ctx| c.handle_timeout(ctx)).ok();
        }
    }

    pub(super) fn hangup_all(&mut self, now: Instant) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            if let Ok(Err(e)) = self.with_call(id, now, |c, ctx| c.hangup(ctx)) {
                tracing::debug!(call = id.0, "hangup at shutdown: {e}");
            }
        }
    }

    /// After events were handled: places the calls transfers asked for,
    /// reports transfer progress, and forgets ended calls.
    pub(super) fn settle_calls(&mut self, now: Instant) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            let target = self
                .calls
                .get_mut(&id)
                .and_then(|c| c.take_transfer_request());
            if let Some(target) = target {
                self.place_transfer(id, &target, now);
            }
        }
        self.report_transfers(now);
        self.calls.retain(|_, c| !c.is_ended());
    }

    fn place_transfer(&mut self, old_call: CallId, target: &str, now: Instant) {
        let placed = (|| {
            if self.shutting_down {
                return Err(UaError::ShuttingDown);
            }
            let account = self
                .calls
                .get(&old_call)
                .ok_or(UaError::UnknownCall(old_call))?
                .account();
            let index = self.account_index(account)?;
            let config = &self
                .accounts
                .get(index)
                .ok_or(UaError::UnknownAccount(account))?
                .config;
            let uri = config.target_uri(target);
            let hop = hop_for(config, &uri);
            self.start_call(index, &uri, hop, now)
        })();
        let new_call = match placed {
            Ok(new_call) => {
                self.transfers.push(TransferLink {
                    old_call,
                    new_call,
                    reported: 0,
                });
                Some(new_call)
            }
            Err(e) => {
                tracing::info!(call = old_call.0, "cannot place the transferred call: {e}");
                self.with_call(old_call, now, |c, ctx| c.transfer_progress(503, ctx))
                    .ok();
                None
            }
        };
        self.events.push_back(UaEvent::Transferred {
            call: old_call,
            target: target.to_owned(),
            new_call,
        });
    }

    fn report_transfers(&mut self, now: Instant) {
        let links = std::mem::take(&mut self.transfers);
        for mut link in links {
            let live = self
                .calls
                .get(&link.new_call)
                .filter(|c| !c.is_ended())
                .map(|c| c.state());
            let status = match live {
                Some(CallState::Ringing) => 180,
                Some(CallState::Connected) => 200,
                Some(_) => 100,
                // Ended: the status that ended it, as its event said; a
                // call that never got a final status was cancelled.
                None => self
                    .events
                    .iter()
                    .rev()
                    .find_map(|e| match e {
                        UaEvent::CallEnded { call, reason } if *call == link.new_call => {
                            Some(reason.code)
                        }
                        _ => None,
                    })
                    .filter(|code| *code >= 200)
                    .unwrap_or(487),
            };
            if status > link.reported && link.reported < 200 {
                link.reported = status;
                self.with_call(link.old_call, now, |c, ctx| {
                    c.transfer_progress(status, ctx)
                })
                .ok();
            }
            let finished = live.is_none() || status >= 200;
            if !finished && self.calls.contains_key(&link.old_call) {
                self.transfers.push(link);
            }
        }
    }
}

/// `(Call-ID, local tag, remote tag)` of a request we received.
fn request_dialog(request: &Request) -> Option<(String, String, String)> {
    let call_id = headers::call_id(&request.headers).ok()?.to_owned();
    let local = headers::to(&request.headers).ok()?.tag()?.to_owned();
    let remote = headers::from(&request.headers)
        .ok()?
        .tag()
        .unwrap_or_default()
        .to_owned();
    Some((call_id, local, remote))
}

/// Where to send a request for `uri` when the driver did not say: the
/// account's resolved `outbound`, unless the URI names a foreign host by
/// IP address (the user agent cannot resolve names; the driver's hop for
/// a foreign host name would be needed, so `outbound` is the best guess).
pub(super) fn hop_for(account: &AccountConfig, uri: &str) -> SocketAddr {
    if account.proxy.is_some() {
        return account.outbound;
    }
    let hop = account.next_hop(uri);
    match hop.host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, hop.port_or_default(account.transport)),
        Err(_) => account.outbound,
    }
}
