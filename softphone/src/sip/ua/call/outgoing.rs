//! Outgoing calls: the initial INVITE, its provisional and final
//! responses, digest and 422 retries, CANCEL, and forked 2xx.

use std::net::SocketAddr;

use rsip::{Method, Response, SipMessage};

use super::build::{self, Draft, ALLOW, SDP};
use super::dialog::{contact_uri, Dialog, Identity};
use super::error::CallError;
use super::session_timer::{min_se, SessionTimer, MIN_SE};
use super::{Call, CallContext, CancelState, Outstanding, Purpose, SentAck, UacInvite};
use crate::sip::auth::{AuthHeader, ChallengeKind};
use crate::sip::headers;
use crate::sip::sdp::{CodecOrder, LocalMedia, LocalRtp, SdpSession};
use crate::sip::transaction::TxId;
use crate::sip::ua::types::{CallId, CallState, Direction, UaEvent};
use crate::sip::wire;

/// What we offer and accept, on the RTP port `rtp`.
pub(super) fn local_media(rtp: &LocalRtp, ctx: &CallContext) -> LocalMedia {
    let address = Identity::public_ip(ctx.account).unwrap_or(if rtp.address.is_unspecified() {
        ctx.local.sip.ip()
    } else {
        rtp.address
    });
    LocalMedia {
        address,
        port: rtp.port,
        codecs: ctx.codecs.to_vec(),
        telephone_event: ctx.telephone_event,
        ptime: None,
        answer_order: CodecOrder::Offerer,
        srtp: ctx.account.srtp,
    }
}

/// The From of our requests: display name, if any, and the AOR.
/// The From of a call with the caller id hidden (`hideCID=1`), as
/// MicroSIP sends it (RFC 3323 §4.1.1.3's anonymous URI).
pub(super) const ANONYMOUS_FROM: &str = "\"Anonymous\" <sip:anonymous@anonymous.invalid>";

fn from_value(ctx: &CallContext) -> String {
    if ctx.account.hide_cid {
        return ANONYMOUS_FROM.to_owned();
    }
    headers::NameAddr {
        display_name: (!ctx.account.display_name.is_empty())
            .then(|| ctx.account.display_name.clone()),
        uri: ctx.account.aor(),
        params: Vec::new(),
    }
    .to_string()
}

impl Call {
    /// Calls `target_uri` (a SIP URI, see `AccountConfig::target_uri`),
    /// sending the INVITE to `hop` (the UA resolved the next hop).
    pub fn outgoing(
        id: CallId,
        target_uri: &str,
        hop: SocketAddr,
        ctx: &mut CallContext,
    ) -> Result<Call, CallError> {
        let target = target_uri.trim().to_owned();
        let dialog = Dialog {
            call_id: headers::new_call_id()?,
            local_tag: headers::new_tag()?,
            remote_tag: None,
            local_uri: from_value(ctx),
            remote_uri: format!("<{target}>"),
            remote_target: target.clone(),
            // The preloaded route of §8.1.1.1; replaced by the dialog's.
            route_set: ctx
                .account
                .proxy
                .iter()
                .map(|p| format!("<sip:{};lr>", p.uri_host()))
                .collect(),
            local_cseq: 0,
            remote_cseq: None,
            transport: ctx.account.transport,
            hop,
            forced_hop: true,
            identity: Identity::new(ctx.account, ctx.local),
        };
        let rtp = ctx.media.allocate()?;
        let result = Self::start_outgoing(id, dialog, &rtp, ctx);
        if result.is_err() {
            ctx.media.stop(rtp.handle);
        }
        result
    }

    fn start_outgoing(
        id: CallId,
        dialog: Dialog,
        rtp: &LocalRtp,
        ctx: &mut CallContext,
    ) -> Result<Call, CallError> {
        let mut sdp = SdpSession::with_random_id(local_media(rtp, ctx))?;
        let offer = sdp.create_offer();
        let mut call = Call::new(id, Direction::Outgoing, dialog, sdp, rtp.handle, ctx);
        call.remote_uri = call.dialog.remote_target.clone();
        let mut draft = call.dialog.draft(Method::Invite);
        call.invite_headers(&mut draft);
        if ctx.account.hide_cid {
            draft.push("Privacy", "id");
        }
        draft.set_body(SDP, offer.to_string().into_bytes());
        let tx = call.send(draft, Purpose::Invite, ctx)?;
        call.uac = Some(UacInvite {
            tx,
            provisional: false,
            cancel: CancelState::None,
            cancel_tx: None,
            early_tags: Vec::new(),
        });
        ctx.events.push_back(UaEvent::CallState {
            call: id,
            state: CallState::Calling,
        });
        Ok(call)
    }

    /// Allow, and the RFC 4028 headers when the account uses timers.
    pub(super) fn invite_headers(&self, draft: &mut Draft) {
        draft.push("Allow", ALLOW);
        if self.session_timers {
            draft.push("Supported", "timer");
            let se = match self.timer {
                Some(t) => format!(
                    "{};refresher={}",
                    t.interval,
                    if t.we_refresh { "uac" } else { "uas" }
                ),
                None => self.session_interval.to_string(),
            };
            draft.push("Session-Expires", se);
            draft.push("Min-SE", MIN_SE.to_string());
        }
    }

    pub(super) fn on_invite_provisional(&mut self, response: &Response, ctx: &mut CallContext) {
        let Some(uac) = self.uac.as_mut() else {
            return;
        };
        let first = !uac.provisional;
        uac.provisional = true;
        if let Some(tag) = headers::to(&response.headers)
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
        {
            if !uac.early_tags.contains(&tag) {
                uac.early_tags.push(tag);
            }
        }
        if uac.cancel == CancelState::Queued && first {
            self.send_cancel(ctx);
        }
        if self
            .uac
            .as_ref()
            .is_some_and(|u| u.cancel != CancelState::None)
        {
            return;
        }
        if response.status_code.code() > 100 {
            self.set_state(CallState::Ringing, ctx);
        }
        // Early media: an unreliable 18x may carry the answer (§13.2.1);
        // the 2xx must then repeat it, so it is applied once.
        if self.sdp.has_pending_offer() {
            if let Ok(Some(answer)) = build::sdp_of(&response.headers, &response.body) {
                match self.sdp.process_answer(&answer) {
                    Ok(media) => self.apply_media(media, ctx),
                    Err(e) => tracing::info!(call = ?self.id, "early SDP ignored: {e}"),
                }
            }
        }
    }

    /// CANCEL of the initial INVITE, or queue it until the first 1xx.
    pub(super) fn cancel_invite(&mut self, ctx: &mut CallContext) {
        let Some(uac) = self.uac.as_mut() else {
            return;
        };
        if uac.cancel != CancelState::None {
            return;
        }
        if uac.provisional {
            self.send_cancel(ctx);
        } else {
            uac.cancel = CancelState::Queued;
            // The user hung up: for them the call is over now, not when a
            // silent far end's INVITE times out 32 s later. The INVITE
            // transaction goes on (the call is not dropped while it is
            // pending): a 1xx still gets its CANCEL, a 2xx its ACK and BYE.
            self.end(487, "Canceled", false, ctx);
        }
    }

    fn send_cancel(&mut self, ctx: &mut CallContext) {
        let Some(uac) = self.uac.as_mut() else {
            return;
        };
        match ctx.layer.send_cancel(uac.tx, ctx.now) {
            Ok(tx) => {
                uac.cancel = CancelState::Sent;
                uac.cancel_tx = Some(tx);
            }
            Err(e) => {
                // The INVITE already has its final response, which will
                // end the call as cancelled.
                tracing::debug!(call = ?self.id, "CANCEL not sent: {e}");
                uac.cancel = CancelState::Sent;
            }
        }
    }

    pub(super) fn on_invite_final(
        &mut self,
        tx: TxId,
        out: &Outstanding,
        response: Response,
        ctx: &mut CallContext,
    ) {
        let code = response.status_code.code();
        if (200..300).contains(&code) {
            self.on_invite_2xx(tx, out, &response, ctx);
            return;
        }
        let cancelled = self
            .uac
            .as_ref()
            .is_some_and(|u| u.cancel != CancelState::None);
        if code == 422 && self.session_timers && !cancelled {
            if let Some(min) = min_se(&response.headers).filter(|m| *m > self.session_interval) {
                // §7.4: the same offer again, asking for what they demand.
                self.session_interval = min;
                let mut draft = out.draft.clone();
                draft.set("Session-Expires", min.to_string());
                draft.set("Min-SE", min.to_string());
                let cseq = self.dialog.next_cseq();
                match self.transmit(draft, cseq, Purpose::Invite, out.auth_retry, ctx) {
                    Ok(tx) => {
                        self.retarget(Purpose::Invite, tx);
                        return;
                    }
                    Err(e) => tracing::warn!(call = ?self.id, "422 retry: {e}"),
                }
            }
        }
        let text = wire::reason_phrase(&response.status_code);
        self.invite_failed(code, &text, true, ctx);
    }

    /// The initial INVITE failed (`code`): the call ends, as cancelled if
    /// the user had hung up.
    pub(super) fn invite_failed(
        &mut self,
        code: u16,
        text: &str,
        by_remote: bool,
        ctx: &mut CallContext,
    ) {
        let cancelled = self
            .uac
            .take()
            .is_some_and(|u| u.cancel != CancelState::None);
        self.sdp.rollback_offer();
        if cancelled {
            self.end(487, "Canceled", false, ctx);
        } else {
            self.end(code, text, by_remote, ctx);
        }
    }

    fn on_invite_2xx(
        &mut self,
        tx: TxId,
        out: &Outstanding,
        response: &Response,
        ctx: &mut CallContext,
    ) {
        let cancelled = self
            .uac
            .take()
            .is_some_and(|u| u.cancel != CancelState::None);
        let to = headers::to(&response.headers).ok();
        let tag = to
            .as_ref()
            .and_then(|t| t.tag())
            .unwrap_or_default()
            .to_owned();
        // §12.1.2: the dialog as the 2xx defines it.
        self.dialog.remote_tag = Some(tag);
        self.dialog.refresh_target(&response.headers);
        self.dialog.route_set = headers::record_routes(&response.headers)
            .into_iter()
            .rev()
            .map(str::to_owned)
            .collect();
        // The outbound proxy stays the first hop only if it record-routed
        // or nothing names an address (see Dialog::destination).
        self.dialog.forced_hop = ctx.account.proxy.is_some();
        if let Some(name) = to.and_then(|t| t.display_name) {
            self.remote_name = name;
        }
        let media = if self.sdp.has_pending_offer() {
            match build::sdp_of(&response.headers, &response.body) {
                Ok(Some(answer)) => self
                    .sdp
                    .process_answer(&answer)
                    .map(Some)
                    .map_err(CallError::from),
                Ok(None) => Err(CallError::BadRequest("2xx without SDP answer".to_owned())),
                Err(e) => Err(e),
            }
        } else {
            Ok(None)
        };
        self.send_ack(tx, out.cseq, &out.credentials, None, ctx);
        if cancelled {
            // The 2xx crossed our CANCEL (§9.1): the session exists, so
            // it is ended with BYE.
            self.send_bye(ctx);
            self.end(487, "Canceled", false, ctx);
            return;
        }
        match media {
            Ok(Some(media)) => self.apply_media(media, ctx),
            Ok(None) => {}
            Err(e) => {
                self.sdp.rollback_offer();
                self.send_bye(ctx);
                let code = e.status().unwrap_or(488);
                self.end(code, &build::reason(code), false, ctx);
                return;
            }
        }
        if self.session_timers {
            self.timer = SessionTimer::from_uac_2xx(&response.headers, ctx.now);
        }
        self.answered_at = Some(ctx.now);
        self.set_state(CallState::Connected, ctx);
        self.report_hold(ctx);
    }

    /// A 2xx to an INVITE we already ACKed: re-send that ACK; a 2xx from
    /// another fork of our initial INVITE gets an ACK and a BYE
    /// (§13.2.2.4: we keep only the first dialog).
    pub(super) fn resend_or_reject_fork(&mut self, response: Response, ctx: &mut CallContext) {
        let Ok((cseq, Method::Invite)) = headers::cseq(&response.headers) else {
            return;
        };
        let tag = headers::to(&response.headers)
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default();
        if let Some(ack) = self
            .acks
            .iter()
            .find(|a| a.cseq == cseq && a.remote_tag == tag)
        {
            ctx.layer.send_stateless(
                &SipMessage::Request(ack.request.clone()),
                self.dialog.transport,
                ack.destination,
            );
            return;
        }
        let Some(first) = self.acks.iter().find(|a| a.cseq == cseq).cloned() else {
            return;
        };
        if self.direction == Direction::Outgoing {
            if let Err(e) = self.reject_fork(&response, first, tag, ctx) {
                tracing::warn!(call = ?self.id, "cannot end forked dialog: {e}");
            }
        }
    }

    fn reject_fork(
        &mut self,
        response: &Response,
        first: SentAck,
        tag: String,
        ctx: &mut CallContext,
    ) -> Result<(), CallError> {
        let mut fork = self.dialog.clone();
        fork.remote_tag = Some(tag.clone());
        if let Some(uri) = contact_uri(&response.headers) {
            fork.remote_target = uri;
        }
        fork.route_set = headers::record_routes(&response.headers)
            .into_iter()
            .rev()
            .map(str::to_owned)
            .collect();
        // §13.2.2.4: the ACK carries the INVITE's credentials.
        let credentials: Vec<AuthHeader> = first
            .request
            .headers
            .iter()
            .filter_map(|h| {
                let (name, value) = headers::name_and_value(h);
                let kind = if headers::same_name(name, "Authorization") {
                    ChallengeKind::Www
                } else if headers::same_name(name, "Proxy-Authorization") {
                    ChallengeKind::Proxy
                } else {
                    return None;
                };
                Some(AuthHeader {
                    kind,
                    value: value.to_owned(),
                })
            })
            .collect();
        let ack = fork
            .draft(Method::Ack)
            .render(&fork.via()?, first.cseq, &credentials)?;
        let destination = fork.destination();
        ctx.layer.send_stateless(
            &SipMessage::Request(ack.clone()),
            fork.transport,
            destination,
        );
        self.acks.push_back(SentAck {
            invite: first.invite,
            cseq: first.cseq,
            remote_tag: tag,
            request: ack,
            destination,
        });
        let draft = fork.draft(Method::Bye);
        let cseq = fork.next_cseq();
        let bye = draft.render(&fork.via()?, cseq, &[])?;
        let tx = ctx
            .layer
            .send_request(bye, fork.transport, destination, ctx.now)?;
        self.pending.insert(
            tx,
            Outstanding {
                purpose: Purpose::ForkBye,
                draft,
                cseq,
                credentials: Vec::new(),
                auth_retry: false,
            },
        );
        Ok(())
    }

    /// A 2xx to an INVITE of ours whose transaction is gone.
    pub fn on_stray_2xx(&mut self, response: Response, ctx: &mut CallContext) {
        self.resend_or_reject_fork(response, ctx);
    }
}
