//! Session changes inside the dialog: our re-INVITEs (hold, resume,
//! session refresh) with glare handling (RFC 3261 §14), the peer's
//! re-INVITEs and UPDATEs (RFC 3311), and session-timer expiry.

use std::time::Duration;

use rsip::{Method, Request, Response};

use super::build::{self, SDP};
use super::error::CallError;
use super::incoming::{uas_session, unsupported};
use super::session_timer::{min_se, SessionTimer, MIN_SE};
use super::{Call, CallContext, Outstanding, PeerReinvite, Purpose};
use crate::sip::headers;
use crate::sip::transaction::TxId;
use crate::sip::ua::types::CallState;

/// A refusal: status and the extra headers it carries.
type Refusal = (u16, Vec<(&'static str, String)>);

/// A random delay in `[low, high]` milliseconds, in 10 ms steps
/// (§14.1); the middle of the range if the OS random source fails.
fn random_ms(low: u64, high: u64) -> Duration {
    let span = (high - low) / 10 + 1;
    let step = getrandom::u64().map_or(span / 2, |r| r % span);
    Duration::from_millis(low + step * 10)
}

impl Call {
    /// Puts the far end on hold: a re-INVITE with a sendonly (or
    /// inactive) offer. [`crate::sip::ua::UaEvent::CallHold`] follows its 2xx.
    pub fn hold(&mut self, ctx: &mut CallContext) -> Result<(), CallError> {
        self.change_hold(true, ctx)
    }

    /// Takes the far end off hold (re-INVITE with sendrecv).
    pub fn resume(&mut self, ctx: &mut CallContext) -> Result<(), CallError> {
        self.change_hold(false, ctx)
    }

    fn change_hold(&mut self, hold: bool, ctx: &mut CallContext) -> Result<(), CallError> {
        let operation = if hold { "hold" } else { "resume" };
        self.require_state(operation, self.state == CallState::Connected)?;
        if self.invite_in_progress() {
            return Err(CallError::Pending("re-INVITE"));
        }
        if hold == self.local_hold && self.glare_retry.is_none() {
            return Ok(());
        }
        self.hold_wanted = hold;
        self.glare_retry = None;
        self.sdp.set_hold(hold);
        self.send_reinvite(ctx)
    }

    /// An INVITE transaction of this dialog is running, either way, or an
    /// offer of ours awaits its answer.
    fn invite_in_progress(&self) -> bool {
        self.reinvite.is_some()
            || self.peer_reinvite.is_some()
            || self.uas.is_some()
            || self.sdp.has_pending_offer()
    }

    fn send_reinvite(&mut self, ctx: &mut CallContext) -> Result<(), CallError> {
        let offer = self.sdp.create_offer();
        let mut draft = self.dialog.draft(Method::Invite);
        self.invite_headers(&mut draft);
        draft.set_body(SDP, offer.to_string().into_bytes());
        match self.send(draft, Purpose::Reinvite, ctx) {
            Ok(tx) => {
                self.reinvite = Some(tx);
                Ok(())
            }
            Err(e) => {
                self.sdp.rollback_offer();
                self.sdp.set_hold(self.local_hold);
                self.hold_wanted = self.local_hold;
                Err(e)
            }
        }
    }

    pub(super) fn on_reinvite_final(
        &mut self,
        tx: TxId,
        out: &Outstanding,
        response: Response,
        ctx: &mut CallContext,
    ) {
        self.reinvite = None;
        let code = response.status_code.code();
        if (200..300).contains(&code) {
            self.dialog.refresh_target(&response.headers);
            self.send_ack(tx, out.cseq, &out.credentials, None, ctx);
            let answer = build::sdp_of(&response.headers, &response.body)
                .ok()
                .flatten();
            match answer.map(|a| self.sdp.process_answer(&a)) {
                Some(Ok(media)) => {
                    self.apply_media(media, ctx);
                    self.report_hold(ctx);
                }
                Some(Err(e)) => {
                    tracing::info!(call = ?self.id, "re-INVITE answer refused: {e}");
                    self.restore_hold();
                }
                None => {
                    self.sdp.rollback_offer();
                    self.restore_hold();
                }
            }
            if self.session_timers {
                self.timer = SessionTimer::from_uac_2xx(&response.headers, ctx.now);
            }
            return;
        }
        if code == 422 && self.session_timers {
            if let Some(min) = min_se(&response.headers).filter(|m| *m > self.session_interval) {
                self.session_interval = min;
                if let Some(t) = &mut self.timer {
                    t.interval = t.interval.max(min);
                }
                let mut draft = out.draft.clone();
                draft.set("Session-Expires", min.to_string());
                draft.set("Min-SE", min.max(MIN_SE).to_string());
                let cseq = self.dialog.next_cseq();
                match self.transmit(draft, cseq, Purpose::Reinvite, out.auth_retry, ctx) {
                    Ok(tx) => {
                        self.reinvite = Some(tx);
                        return;
                    }
                    Err(e) => tracing::warn!(call = ?self.id, "422 retry: {e}"),
                }
            }
        }
        self.sdp.rollback_offer();
        match code {
            491 => {
                // §14.1: retry later, the Call-ID's owner later still.
                let delay = if self.owns_call_id {
                    random_ms(2100, 4000)
                } else {
                    random_ms(0, 2000)
                };
                self.glare_retry = Some(ctx.now + delay);
            }
            408 | 481 => self.on_in_dialog_failure(code, ctx),
            _ => self.restore_hold(),
        }
    }

    /// A re-INVITE failed: the session stays as it was.
    fn restore_hold(&mut self) {
        self.sdp.set_hold(self.local_hold);
        self.hold_wanted = self.local_hold;
    }

    pub(super) fn retry_after_glare(&mut self, ctx: &mut CallContext) {
        if self.state != CallState::Connected {
            return;
        }
        if self.invite_in_progress() {
            self.glare_retry = Some(ctx.now + Duration::from_secs(1));
            return;
        }
        self.sdp.set_hold(self.hold_wanted);
        if let Err(e) = self.send_reinvite(ctx) {
            tracing::warn!(call = ?self.id, "re-INVITE after glare: {e}");
        }
    }

    /// The session timer fired: refresh (we refresh) or give up (they do).
    pub(super) fn on_session_timer(&mut self, timer: SessionTimer, ctx: &mut CallContext) {
        if !timer.we_refresh {
            self.send_bye(ctx);
            self.end(408, "Session Expired", false, ctx);
            return;
        }
        if self.state != CallState::Connected || self.invite_in_progress() {
            // The running transaction refreshes the session as well.
            self.timer = Some(SessionTimer {
                deadline: ctx.now + Duration::from_secs(1),
                ..timer
            });
            return;
        }
        // Until the 2xx restarts it; a refresh left unanswered for
        // another half interval is tried again.
        self.timer = Some(SessionTimer::start(timer.interval, true, ctx.now));
        if let Err(e) = self.send_reinvite(ctx) {
            tracing::warn!(call = ?self.id, "session refresh: {e}");
        }
    }

    /// Checks that apply to an offer-carrying request from the peer; the
    /// error response when it cannot be taken now.
    fn peer_offer_allowed(&self, request: &Request) -> Result<(), Refusal> {
        if self.reinvite.is_some() || self.sdp.has_pending_offer() {
            // §14.2: our INVITE is in progress.
            return Err((491, Vec::new()));
        }
        if self.peer_reinvite.is_some() || self.uas.is_some() {
            // §14.2: theirs is; they may retry shortly.
            let after = random_ms(0, 10_000).as_secs().to_string();
            return Err((500, vec![("Retry-After", after)]));
        }
        if let Err(e) = unsupported(&request.headers, self.session_timers) {
            return Err((420, e.response_headers()));
        }
        Ok(())
    }

    pub(super) fn on_peer_invite(&mut self, tx: TxId, request: &Request, ctx: &mut CallContext) {
        if let Err((code, extra)) = self.peer_offer_allowed(request) {
            return self.respond(tx, request, code, &extra, ctx);
        }
        let session = match uas_session(&request.headers, self.session_timers) {
            Ok(s) => s,
            Err(e) => return self.respond(tx, request, 422, &e.response_headers(), ctx),
        };
        let offer = match build::sdp_of(&request.headers, &request.body) {
            Ok(o) => o,
            Err(e) => return self.respond(tx, request, e.status().unwrap_or(400), &[], ctx),
        };
        let (body, awaiting_answer) = match offer {
            Some(offer) => match self.sdp.answer_offer(&offer) {
                Ok((answer, media)) => {
                    self.apply_media(media, ctx);
                    self.report_hold(ctx);
                    (answer, false)
                }
                Err(e) => return self.respond(tx, request, e.sip_status(), &[], ctx),
            },
            None => (self.sdp.create_offer(), true),
        };
        self.dialog.refresh_target(&request.headers);
        let mut ok = build::response(request, 200, Some(&self.dialog.local_tag), false);
        ok.headers
            .push(build::header("Contact", self.dialog.contact()));
        for (name, value) in self.session_headers(session) {
            ok.headers.push(build::header(name, value));
        }
        build::set_response_body(&mut ok, SDP, body.to_string().into_bytes());
        if let Err(e) = ctx.layer.send_response(tx, ok, ctx.now) {
            tracing::warn!(call = ?self.id, "cannot answer re-INVITE: {e}");
            if awaiting_answer {
                self.sdp.rollback_offer();
            }
            return;
        }
        let cseq = headers::cseq(&request.headers).map_or(0, |(n, _)| n);
        self.peer_reinvite = Some(PeerReinvite {
            tx,
            cseq,
            awaiting_answer,
        });
        self.start_uas_timer(session, ctx);
    }

    /// UPDATE (RFC 3311): an offer answered in the 200, or (no body) a
    /// session refresh.
    pub(super) fn on_update(&mut self, tx: TxId, request: &Request, ctx: &mut CallContext) {
        let offer = match build::sdp_of(&request.headers, &request.body) {
            Ok(o) => o,
            Err(e) => return self.respond(tx, request, e.status().unwrap_or(400), &[], ctx),
        };
        if offer.is_some() {
            if let Err((code, extra)) = self.peer_offer_allowed(request) {
                return self.respond(tx, request, code, &extra, ctx);
            }
        } else if let Err(e) = unsupported(&request.headers, self.session_timers) {
            return self.respond(tx, request, 420, &e.response_headers(), ctx);
        }
        let session = match uas_session(&request.headers, self.session_timers) {
            Ok(s) => s,
            Err(e) => return self.respond(tx, request, 422, &e.response_headers(), ctx),
        };
        let body = match offer {
            Some(offer) => match self.sdp.answer_offer(&offer) {
                Ok((answer, media)) => {
                    self.apply_media(media, ctx);
                    self.report_hold(ctx);
                    Some(answer)
                }
                Err(e) => return self.respond(tx, request, e.sip_status(), &[], ctx),
            },
            None => None,
        };
        self.dialog.refresh_target(&request.headers);
        let mut ok = build::response(request, 200, Some(&self.dialog.local_tag), false);
        ok.headers
            .push(build::header("Contact", self.dialog.contact()));
        for (name, value) in self.session_headers(session) {
            ok.headers.push(build::header(name, value));
        }
        if let Some(body) = body {
            build::set_response_body(&mut ok, SDP, body.to_string().into_bytes());
        }
        if let Err(e) = ctx.layer.send_response(tx, ok, ctx.now) {
            tracing::warn!(call = ?self.id, "cannot answer UPDATE: {e}");
            return;
        }
        self.start_uas_timer(session, ctx);
    }
}
