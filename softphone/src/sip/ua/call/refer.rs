//! Blind transfer (RFC 3515): our REFER and the NOTIFYs that report on
//! it, and a REFER from the peer with the NOTIFYs we owe it.

use rsip::{Method, Request};

use super::build::{self, bare_uri};
use super::error::CallError;
use super::{Call, CallContext, Purpose};
use crate::sip::headers;
use crate::sip::transaction::TxId;
use crate::sip::ua::types::{CallState, UaEvent};

/// How long the implicit subscription lasts (RFC 3515 §2.4.4 leaves it to
/// the notifier; the transferee's call is placed at once).
const REFER_EXPIRES: u32 = 60;

/// Checks that `uri` reads as a Request-URI (what the transferee will
/// call), the way every request we send is checked.
fn check_uri(uri: &str) -> Result<(), CallError> {
    let probe = format!(
        "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKprobe\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@invalid>;tag=p\r\nTo: <sip:probe@invalid>\r\n\
         Call-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    crate::sip::wire::parse_message(probe.as_bytes())
        .map(|_| ())
        .map_err(|source| CallError::Build {
            what: format!("transfer to {uri}"),
            source,
        })
}

impl Call {
    /// Blind transfer: asks the far end to call `target_uri` (REFER).
    /// Progress comes as [`UaEvent::TransferProgress`]; when the far end
    /// reports a 2xx, we hang up.
    pub fn transfer(&mut self, target_uri: &str, ctx: &mut CallContext) -> Result<(), CallError> {
        self.require_state("transfer", self.state == CallState::Connected)?;
        if self.refer_out.is_some() {
            return Err(CallError::Pending("REFER"));
        }
        let target = target_uri.trim();
        check_uri(target)?;
        let mut draft = self.dialog.draft(Method::Refer);
        draft.push("Refer-To", format!("<{target}>"));
        draft.push("Referred-By", format!("<{}>", ctx.account.aor()));
        let tx = self.send(draft, Purpose::Refer, ctx)?;
        self.refer_out = Some(tx);
        Ok(())
    }

    /// The final response to our REFER: a 2xx means NOTIFYs follow; any
    /// other status is the transfer's result.
    pub(super) fn on_refer_final(&mut self, code: u16, ctx: &mut CallContext) {
        if (200..300).contains(&code) {
            return;
        }
        self.refer_out = None;
        self.emit(
            ctx,
            UaEvent::TransferProgress {
                call: self.id,
                status: code,
            },
        );
        self.on_in_dialog_failure(code, ctx);
    }

    /// A NOTIFY of our REFER's implicit subscription (sipfrag body).
    pub(super) fn on_notify(&mut self, tx: TxId, request: &Request, ctx: &mut CallContext) {
        let event = headers::raw_values(&request.headers, "Event")
            .next()
            .and_then(|e| e.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if !event.eq_ignore_ascii_case("refer") {
            return self.respond(
                tx,
                request,
                489,
                &[("Allow-Events", "refer".to_owned())],
                ctx,
            );
        }
        if self.refer_out.is_none() {
            return self.respond(tx, request, 481, &[], ctx);
        }
        self.respond(tx, request, 200, &[], ctx);
        let terminated = headers::raw_values(&request.headers, "Subscription-State")
            .next()
            .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated"));
        let status = build::sipfrag_status(&request.body);
        if let Some(status) = status {
            self.emit(
                ctx,
                UaEvent::TransferProgress {
                    call: self.id,
                    status,
                },
            );
        }
        let done = status.is_some_and(|s| s >= 200);
        if terminated || done {
            self.refer_out = None;
        }
        if status.is_some_and(|s| (200..300).contains(&s)) {
            // The transferee reached the target: our part is over, as in
            // MicroSIP.
            self.send_bye(ctx);
            self.end(200, "Call Transferred", false, ctx);
        }
    }

    /// A REFER from the peer: 202, NOTIFY 100 Trying, and the target for
    /// the UA ([`Call::take_transfer_request`]).
    pub(super) fn on_refer(&mut self, tx: TxId, request: &Request, ctx: &mut CallContext) {
        if self.state != CallState::Connected {
            return self.respond(tx, request, 403, &[], ctx);
        }
        if self.refer_in || self.transfer_target.is_some() {
            return self.respond(tx, request, 491, &[], ctx);
        }
        let values: Vec<&str> = headers::list_values(&request.headers, "Refer-To");
        let [value] = values.as_slice() else {
            return self.respond(tx, request, 400, &[], ctx);
        };
        let uri = bare_uri(value);
        // Embedded headers (Replaces of an attended transfer) are not
        // supported; the transferee simply calls the target.
        let target = uri.split('?').next().unwrap_or_default().to_owned();
        if check_uri(&target).is_err() {
            return self.respond(tx, request, 400, &[], ctx);
        }
        self.respond(tx, request, 202, &[("Contact", self.dialog.contact())], ctx);
        self.refer_in = true;
        self.transfer_target = Some(target);
        self.send_sipfrag(100, ctx);
    }

    /// The target of a REFER we accepted, once: the UA places that call
    /// (and reports [`UaEvent::Transferred`]), then reports its progress
    /// with [`Call::transfer_progress`].
    pub fn take_transfer_request(&mut self) -> Option<String> {
        self.transfer_target.take()
    }

    /// The progress of the call placed for the peer's REFER: NOTIFY with
    /// a sipfrag of `status`; a final one ends the subscription, and a
    /// 2xx ends this call (BYE).
    pub fn transfer_progress(&mut self, status: u16, ctx: &mut CallContext) {
        if !self.refer_in || self.state == CallState::Ended {
            return;
        }
        self.send_sipfrag(status, ctx);
        if status >= 200 {
            self.refer_in = false;
        }
        if (200..300).contains(&status) {
            self.send_bye(ctx);
            self.end(200, "Call Transferred", false, ctx);
        }
    }

    fn send_sipfrag(&mut self, status: u16, ctx: &mut CallContext) {
        let mut draft = self.dialog.draft(Method::Notify);
        draft.push("Event", "refer");
        let state = if status >= 200 {
            "terminated;reason=noresource".to_owned()
        } else {
            format!("active;expires={REFER_EXPIRES}")
        };
        draft.push("Subscription-State", state);
        draft.set_body(
            "message/sipfrag;version=2.0",
            format!("SIP/2.0 {status} {}\r\n", build::reason(status)).into_bytes(),
        );
        if let Err(e) = self.send(draft, Purpose::Notify, ctx) {
            tracing::warn!(call = ?self.id, "cannot send NOTIFY: {e}");
        }
    }
}
