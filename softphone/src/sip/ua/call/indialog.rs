//! Requests inside the dialog: CSeq ordering (§12.2.2), BYE (§15),
//! OPTIONS, and DTMF by SIP INFO (`application/dtmf-relay`).

use std::net::SocketAddr;

use rsip::{Method, Request};

use super::build::{self, ACCEPT, ALLOW};
use super::error::CallError;
use super::{Call, CallContext, Purpose};
use crate::sip::headers;
use crate::sip::transaction::TxId;
use crate::sip::ua::types::{CallState, UaEvent};
use crate::sip::Transport;

/// The digit a DTMF INFO names: `5`, `*`, `#`, `A`-`D`, or the numeric
/// event codes 10-15 some gateways send (RFC 4733 numbering).
pub(super) fn dtmf_digit(text: &str) -> Option<char> {
    let text = text.trim();
    match text {
        "10" => return Some('*'),
        "11" => return Some('#'),
        "12" => return Some('A'),
        "13" => return Some('B'),
        "14" => return Some('C'),
        "15" => return Some('D'),
        _ => {}
    }
    let mut chars = text.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && (c.is_ascii_digit() || "*#ABCD".contains(c))).then_some(c)
}

/// The digit of an INFO body: `Signal=5` lines (dtmf-relay) or the bare
/// digit (`application/dtmf`).
fn info_digit(media_type: &str, body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    if media_type == "application/dtmf" {
        return dtmf_digit(text);
    }
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("Signal")
            .then(|| dtmf_digit(value))
            .flatten()
    })
}

impl Call {
    /// A request inside this call's dialog (the UA matched it with
    /// [`Call::matches_dialog`]), or a CANCEL of our INVITE server
    /// transaction.
    pub fn on_request(
        &mut self,
        tx: TxId,
        request: Request,
        transport: Transport,
        source: SocketAddr,
        ctx: &mut CallContext,
    ) {
        tracing::trace!(call = ?self.id, %source, ?transport, method = %request.method, "in-dialog request");
        match request.method {
            Method::Cancel => return self.on_cancel(tx, &request, ctx),
            Method::Ack => return self.on_ack(request, ctx),
            _ => {}
        }
        let Ok((cseq, _)) = headers::cseq(&request.headers) else {
            return self.respond(tx, &request, 400, &[], ctx);
        };
        // §12.2.2: lower than the last one is out of order.
        if self.dialog.remote_cseq.is_some_and(|last| cseq < last) {
            return self.respond(tx, &request, 500, &[], ctx);
        }
        self.dialog.remote_cseq = Some(cseq);
        if self.state == CallState::Ended {
            // Crossing BYEs: theirs is as good as ours.
            let code = if request.method == Method::Bye {
                200
            } else {
                481
            };
            return self.respond(tx, &request, code, &[], ctx);
        }
        match request.method {
            Method::Bye => self.on_bye(tx, &request, ctx),
            Method::Invite => self.on_peer_invite(tx, &request, ctx),
            Method::Update => self.on_update(tx, &request, ctx),
            Method::Refer => self.on_refer(tx, &request, ctx),
            Method::Notify => self.on_notify(tx, &request, ctx),
            Method::Info => self.on_info(tx, &request, ctx),
            Method::Options => {
                let mut extra = vec![("Allow", ALLOW.to_owned()), ("Accept", ACCEPT.to_owned())];
                if self.session_timers {
                    extra.push(("Supported", "timer".to_owned()));
                }
                self.respond(tx, &request, 200, &extra, ctx);
            }
            _ => self.respond(tx, &request, 405, &[("Allow", ALLOW.to_owned())], ctx),
        }
    }

    fn on_bye(&mut self, tx: TxId, request: &Request, ctx: &mut CallContext) {
        self.respond(tx, request, 200, &[], ctx);
        // §15.1.2: a BYE on the early dialog ends the INVITE with 487.
        if let Some(uas) = self.uas.take() {
            if uas.final_code.is_none() {
                let terminated =
                    build::response(&uas.request, 487, Some(&self.dialog.local_tag), false);
                if let Err(e) = ctx.layer.send_response(uas.tx, terminated, ctx.now) {
                    tracing::debug!(call = ?self.id, "487: {e}");
                }
            }
        }
        self.end(200, "Call Ended", true, ctx);
    }

    fn on_info(&mut self, tx: TxId, request: &Request, ctx: &mut CallContext) {
        let media_type = build::media_type(&request.headers).unwrap_or_default();
        if request.body.is_empty() {
            return self.respond(tx, request, 200, &[], ctx);
        }
        if media_type != "application/dtmf-relay" && media_type != "application/dtmf" {
            return self.respond(tx, request, 415, &[("Accept", ACCEPT.to_owned())], ctx);
        }
        match info_digit(&media_type, &request.body) {
            Some(digit) => {
                self.respond(tx, request, 200, &[], ctx);
                self.emit(
                    ctx,
                    UaEvent::Dtmf {
                        call: self.id,
                        digit,
                    },
                );
            }
            None => self.respond(tx, request, 400, &[], ctx),
        }
    }

    /// Sends `digit` as SIP INFO (`application/dtmf-relay`, 160 ms).
    pub fn send_dtmf_info(&mut self, digit: char, ctx: &mut CallContext) -> Result<(), CallError> {
        let d = dtmf_digit(&digit.to_string()).ok_or(CallError::InvalidDigit(digit))?;
        self.require_state("send DTMF on", self.state == CallState::Connected)?;
        let mut draft = self.dialog.draft(Method::Info);
        draft.set_body(
            "application/dtmf-relay",
            format!("Signal={d}\r\nDuration=160\r\n").into_bytes(),
        );
        self.send(draft, Purpose::Info, ctx).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_digits_in_the_forms_gateways_send() {
        assert_eq!(dtmf_digit(" 5 "), Some('5'));
        assert_eq!(dtmf_digit("a"), Some('A'));
        assert_eq!(dtmf_digit("10"), Some('*'));
        assert_eq!(dtmf_digit("11"), Some('#'));
        assert_eq!(dtmf_digit("55"), None);
        assert_eq!(dtmf_digit("x"), None);
        assert_eq!(dtmf_digit(""), None);
        assert_eq!(
            info_digit("application/dtmf-relay", b"signal= #\r\nDuration=250\r\n"),
            Some('#')
        );
        assert_eq!(info_digit("application/dtmf", b"7"), Some('7'));
        assert_eq!(info_digit("application/dtmf-relay", b"Duration=250"), None);
    }
}
