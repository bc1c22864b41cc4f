//! Incoming calls: the INVITE, ringing, answer, reject, CANCEL and the
//! ACK that confirms the dialog.

use std::net::SocketAddr;

use rsip::{Headers, Request};

use super::build::{self, ALLOW, SDP};
use super::dialog::{contact_uri, without_tag, Dialog, Identity};
use super::error::CallError;
use super::outgoing::local_media;
use super::session_timer::{self, Refresher, SessionExpires, SessionTimer};
use super::{Call, CallContext, UasInvite};
use crate::sip::headers;
use crate::sip::sdp::{LocalRtp, SdpSession};
use crate::sip::transaction::TxId;
use crate::sip::ua::types::{CallId, CallState, Direction, UaEvent};
use crate::sip::Transport;

/// RFC 3261 §8.2.2.3: every Require token we do not implement.
pub(super) fn unsupported(headers: &Headers, session_timers: bool) -> Result<(), CallError> {
    let missing: Vec<&str> = headers::list_values(headers, "Require")
        .into_iter()
        .map(str::trim)
        .filter(|t| !(session_timers && t.eq_ignore_ascii_case("timer")))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CallError::BadExtension(missing.join(", ")))
    }
}

/// The RFC 4028 outcome for a request we answer, when timers are on.
pub(super) fn uas_session(
    headers: &Headers,
    session_timers: bool,
) -> Result<Option<SessionExpires>, CallError> {
    if !session_timers {
        return Ok(None);
    }
    session_timer::uas_choice(headers).map_err(|()| {
        CallError::IntervalTooSmall(
            session_timer::session_expires(headers).map_or(0, |s| s.interval),
        )
    })
}

impl Call {
    /// A new incoming call from INVITE server transaction `tx`: reads the
    /// dialog, answers the offer (so an unacceptable one is refused before
    /// ringing) and sends 180 Ringing. An error carries the final status
    /// the user agent must answer the INVITE with
    /// ([`CallError::status`], [`CallError::response_headers`]).
    pub fn incoming(
        id: CallId,
        tx: TxId,
        request: Request,
        transport: Transport,
        source: SocketAddr,
        ctx: &mut CallContext,
    ) -> Result<Call, CallError> {
        let from = headers::from(&request.headers)?;
        let to = headers::to(&request.headers)?;
        if to.tag().is_some() {
            return Err(CallError::NoDialog);
        }
        let call_id = headers::call_id(&request.headers)?.to_owned();
        let (cseq, _) = headers::cseq(&request.headers)?;
        let target = contact_uri(&request.headers)
            .ok_or_else(|| CallError::BadRequest("INVITE without Contact".to_owned()))?;
        unsupported(&request.headers, ctx.account.session_timers)?;
        let session = uas_session(&request.headers, ctx.account.session_timers)?;
        let offer = build::sdp_of(&request.headers, &request.body)?;
        let dialog = Dialog {
            call_id,
            local_tag: headers::new_tag()?,
            remote_tag: Some(from.tag().unwrap_or_default().to_owned()),
            local_uri: without_tag(&to),
            remote_uri: without_tag(&from),
            remote_target: target,
            route_set: headers::record_routes(&request.headers)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            local_cseq: 0,
            remote_cseq: Some(cseq),
            transport,
            hop: if ctx.account.proxy.is_some() {
                ctx.account.outbound
            } else {
                source
            },
            forced_hop: ctx.account.proxy.is_some(),
            identity: Identity::new(ctx.account, ctx.local),
        };
        let rtp = ctx.media.allocate()?;
        let result = Self::ring(id, tx, request, dialog, offer, session, &rtp, ctx);
        if result.is_err() {
            ctx.media.stop(rtp.handle);
        }
        let mut call = result?;
        call.remote_uri = from.uri;
        call.remote_name = from.display_name.unwrap_or_default();
        ctx.events.push_back(UaEvent::IncomingCall {
            call: id,
            account: ctx.account.id,
            remote_uri: call.remote_uri.clone(),
            remote_name: call.remote_name.clone(),
        });
        ctx.events.push_back(UaEvent::CallState {
            call: id,
            state: CallState::Incoming,
        });
        Ok(call)
    }

    #[allow(clippy::too_many_arguments)]
    fn ring(
        id: CallId,
        tx: TxId,
        request: Request,
        dialog: Dialog,
        offer: Option<crate::sip::sdp::SessionDescription>,
        session: Option<SessionExpires>,
        rtp: &LocalRtp,
        ctx: &mut CallContext,
    ) -> Result<Call, CallError> {
        let mut sdp = SdpSession::with_random_id(local_media(rtp, ctx))?;
        let answer = offer.map(|o| sdp.answer_offer(&o)).transpose()?;
        let mut ringing = build::response(&request, 180, Some(&dialog.local_tag), true);
        ringing
            .headers
            .push(build::header("Contact", dialog.contact()));
        ctx.layer.send_response(tx, ringing, ctx.now)?;
        let mut call = Call::new(id, Direction::Incoming, dialog, sdp, rtp.handle, ctx);
        call.uas = Some(UasInvite {
            tx,
            request,
            answer,
            final_code: None,
            offer_in_200: false,
            session,
            bye_after_ack: false,
        });
        Ok(call)
    }

    /// Headers of a 2xx that answers a request we negotiated `session` for
    /// (§9: Require: timer when the UAC is to refresh).
    pub(super) fn session_headers(
        &self,
        session: Option<SessionExpires>,
    ) -> Vec<(&'static str, String)> {
        let mut out = vec![("Allow", ALLOW.to_owned())];
        if !self.session_timers {
            return out;
        }
        out.push(("Supported", "timer".to_owned()));
        if let Some(se) = session {
            let refresher = se.refresher.unwrap_or(Refresher::Uas);
            out.push((
                "Session-Expires",
                format!("{};refresher={}", se.interval, refresher.token()),
            ));
            if refresher == Refresher::Uac {
                out.push(("Require", "timer".to_owned()));
            }
        }
        out
    }

    /// Starts (or stops) the session timer after a 2xx we sent.
    pub(super) fn start_uas_timer(&mut self, session: Option<SessionExpires>, ctx: &CallContext) {
        if self.session_timers {
            self.timer = session.map(|se| {
                SessionTimer::start(se.interval, se.refresher != Some(Refresher::Uac), ctx.now)
            });
        }
    }

    /// Answers the ringing call with 200 and our SDP (the answer to the
    /// INVITE's offer, or our offer when it had none). Connected follows
    /// on the ACK.
    pub fn answer(&mut self, ctx: &mut CallContext) -> Result<(), CallError> {
        let ringing = self.state == CallState::Incoming
            && self.uas.as_ref().is_some_and(|u| u.final_code.is_none());
        self.require_state("answer", ringing)?;
        let Some(mut uas) = self.uas.take() else {
            return Err(CallError::InvalidState {
                operation: "answer",
                state: self.state,
            });
        };
        let (body, media) = match uas.answer.take() {
            Some((sdp, media)) => (sdp, Some(media)),
            None => {
                uas.offer_in_200 = true;
                (self.sdp.create_offer(), None)
            }
        };
        let mut ok = build::response(&uas.request, 200, Some(&self.dialog.local_tag), true);
        ok.headers
            .push(build::header("Contact", self.dialog.contact()));
        for (name, value) in self.session_headers(uas.session) {
            ok.headers.push(build::header(name, value));
        }
        build::set_response_body(&mut ok, SDP, body.to_string().into_bytes());
        if let Err(e) = ctx.layer.send_response(uas.tx, ok, ctx.now) {
            if uas.offer_in_200 {
                self.sdp.rollback_offer();
            }
            self.uas = Some(uas);
            return Err(e.into());
        }
        uas.final_code = Some(200);
        let session = uas.session;
        self.uas = Some(uas);
        self.answered_at = Some(ctx.now);
        if let Some(media) = media {
            self.apply_media(media, ctx);
            self.report_hold(ctx);
        }
        self.start_uas_timer(session, ctx);
        Ok(())
    }

    /// Refuses the ringing call with `code` (486 Busy Here, 603 Decline,
    /// ...; 300-699).
    pub fn reject(&mut self, code: u16, ctx: &mut CallContext) -> Result<(), CallError> {
        if !(300..=699).contains(&code) {
            return Err(CallError::BadStatus(code));
        }
        let ringing = self.state == CallState::Incoming
            && self.uas.as_ref().is_some_and(|u| u.final_code.is_none());
        self.require_state("reject", ringing)?;
        let Some(uas) = self.uas.take() else {
            return Ok(());
        };
        let response = build::response(&uas.request, code, Some(&self.dialog.local_tag), false);
        let sent = ctx.layer.send_response(uas.tx, response, ctx.now);
        self.end(code, &build::reason(code), false, ctx);
        sent.map_err(CallError::from)
    }

    /// Forwards the ringing call: 302 Moved Temporarily with
    /// `Contact: <target_uri>` (the caller places the new call).
    pub fn redirect(&mut self, target_uri: &str, ctx: &mut CallContext) -> Result<(), CallError> {
        let ringing = self.state == CallState::Incoming
            && self.uas.as_ref().is_some_and(|u| u.final_code.is_none());
        self.require_state("redirect", ringing)?;
        let Some(uas) = self.uas.take() else {
            return Ok(());
        };
        let mut response = build::response(&uas.request, 302, Some(&self.dialog.local_tag), false);
        response
            .headers
            .push(build::header("Contact", format!("<{target_uri}>")));
        let sent = ctx.layer.send_response(uas.tx, response, ctx.now);
        self.end(302, &build::reason(302), false, ctx);
        sent.map_err(CallError::from)
    }

    /// Hangs up: CANCEL (or queues it) before an answer, BYE after, 603
    /// for an incoming call that rings.
    pub fn hangup(&mut self, ctx: &mut CallContext) -> Result<(), CallError> {
        match self.state {
            CallState::Ended => self.require_state("hang up", false),
            CallState::Calling | CallState::Ringing => {
                self.cancel_invite(ctx);
                Ok(())
            }
            CallState::Incoming => {
                let answered = self.uas.as_ref().is_some_and(|u| u.final_code.is_some());
                if !answered {
                    return self.reject(603, ctx);
                }
                // §15: no BYE before the ACK of our 200.
                if let Some(uas) = &mut self.uas {
                    uas.bye_after_ack = true;
                }
                self.end(200, "Call Ended", false, ctx);
                Ok(())
            }
            CallState::Connected => {
                self.send_bye(ctx);
                self.end(200, "Call Ended", false, ctx);
                Ok(())
            }
        }
    }

    /// An ACK for a 2xx we sent (the initial INVITE's or a re-INVITE's).
    pub fn on_ack(&mut self, request: Request, ctx: &mut CallContext) {
        let Ok((cseq, _)) = headers::cseq(&request.headers) else {
            return;
        };
        let initial = self.uas.as_ref().is_some_and(|u| {
            u.final_code == Some(200)
                && headers::cseq(&u.request.headers).is_ok_and(|(n, _)| n == cseq)
        });
        if initial {
            let Some(uas) = self.uas.take() else {
                return;
            };
            if uas.bye_after_ack {
                self.send_bye(ctx);
                return;
            }
            if uas.offer_in_200 && !self.take_ack_answer(&request, ctx) {
                self.send_bye(ctx);
                self.end(488, &build::reason(488), false, ctx);
                return;
            }
            self.set_state(CallState::Connected, ctx);
            return;
        }
        if let Some(peer) = self.peer_reinvite.filter(|p| p.cseq == cseq) {
            self.peer_reinvite = None;
            if peer.awaiting_answer && !self.take_ack_answer(&request, ctx) {
                tracing::info!(call = ?self.id, "ACK without a usable answer; media unchanged");
            }
        }
    }

    /// Applies the answer an ACK carries to the offer in our 2xx.
    fn take_ack_answer(&mut self, request: &Request, ctx: &mut CallContext) -> bool {
        let answer = build::sdp_of(&request.headers, &request.body)
            .ok()
            .flatten();
        let Some(answer) = answer else {
            self.sdp.rollback_offer();
            return false;
        };
        match self.sdp.process_answer(&answer) {
            Ok(media) => {
                self.apply_media(media, ctx);
                self.report_hold(ctx);
                true
            }
            Err(e) => {
                tracing::info!(call = ?self.id, "answer in ACK refused: {e}");
                false
            }
        }
    }

    /// A CANCEL: 200 to it; 487 to our INVITE while it still rings.
    pub(super) fn on_cancel(&mut self, tx: TxId, request: &Request, ctx: &mut CallContext) {
        let target = ctx.layer.cancelled_invite(tx);
        let ringing = self
            .uas
            .as_ref()
            .filter(|u| Some(u.tx) == target)
            .map(|u| u.final_code.is_none());
        match ringing {
            None => self.respond(tx, request, 481, &[], ctx),
            Some(still_ringing) => {
                self.respond(tx, request, 200, &[], ctx);
                if still_ringing {
                    if let Some(uas) = self.uas.take() {
                        let terminated =
                            build::response(&uas.request, 487, Some(&self.dialog.local_tag), false);
                        if let Err(e) = ctx.layer.send_response(uas.tx, terminated, ctx.now) {
                            tracing::debug!(call = ?self.id, "487: {e}");
                        }
                    }
                    self.end(487, "Canceled", true, ctx);
                }
            }
        }
    }

    /// Sends a response to `request` in server transaction `tx`, with our
    /// tag when its To has none.
    pub(super) fn respond(
        &self,
        tx: TxId,
        request: &Request,
        code: u16,
        extra: &[(&'static str, String)],
        ctx: &mut CallContext,
    ) {
        let mut response = build::response(request, code, Some(&self.dialog.local_tag), false);
        for (name, value) in extra {
            response.headers.push(build::header(name, value.clone()));
        }
        if let Err(e) = ctx.layer.send_response(tx, response, ctx.now) {
            tracing::debug!(call = ?self.id, "cannot answer {}: {e}", request.method);
        }
    }
}
