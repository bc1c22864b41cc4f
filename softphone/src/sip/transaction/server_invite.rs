//! INVITE server transaction (§17.2.1, RFC 6026 §8.5-8.7 Accepted state),
//! plus the UAS core's 2xx retransmission (§13.3.1.4) so TUs need not.

use std::time::{Duration, Instant};

use rsip::{Request, Response};

use crate::sip::headers;

use super::messages;
use super::outbox::{Link, Outbox, Step};
use super::timers::{due, earliest, Retransmit};
use super::{TimeoutKind, TxError, TxEvent, TxState};

/// §17.2.1: send 100 Trying unless the TU answers within 200 ms.
const TRYING_DELAY: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub(super) struct ServerInvite {
    pub link: Link,
    request: Request,
    state: TxState,
    last_response: Option<Vec<u8>>,
    trying_at: Option<Instant>,
    timer_g: Option<Retransmit>,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
    timer_l: Option<Instant>,
    resend_2xx: Option<Retransmit>,
    ack_wait: Option<Instant>,
    acked: bool,
    /// How the end-to-end ACK of our 2xx (new branch) is recognised:
    /// Call-ID, CSeq number and the To tag of our 2xx.
    call_id: String,
    cseq: u32,
    to_tag: Option<String>,
}

impl ServerInvite {
    pub fn new(link: Link, request: Request, now: Instant) -> Result<Self, TxError> {
        let call_id = headers::call_id(&request.headers)?.to_owned();
        let (cseq, _) = headers::cseq(&request.headers)?;
        Ok(Self {
            link,
            request,
            state: TxState::Proceeding,
            last_response: None,
            trying_at: Some(now + TRYING_DELAY),
            timer_g: None,
            timer_h: None,
            timer_i: None,
            timer_l: None,
            resend_2xx: None,
            ack_wait: None,
            acked: false,
            call_id,
            cseq,
            to_tag: None,
        })
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[
            self.trying_at,
            self.timer_g.map(|g| g.at),
            self.timer_h,
            self.timer_i,
            self.timer_l,
            self.resend_2xx.map(|r| r.at),
            self.ack_wait,
        ])
    }

    /// A retransmission of the INVITE.
    pub fn on_retransmission(&mut self, out: &mut Outbox<'_>) {
        if matches!(self.state, TxState::Proceeding | TxState::Completed) {
            if let Some(bytes) = &self.last_response {
                out.send(self.link, bytes);
            }
        }
        // Accepted: the 2xx retransmission timer covers it (RFC 6026 §8.5);
        // Confirmed: absorbed.
    }

    /// Whether an end-to-end ACK (new branch) acknowledges our 2xx; later
    /// copies of it match too, so that they are absorbed.
    pub fn matches_2xx_ack(&self, ack: &Request) -> bool {
        if self.state != TxState::Accepted {
            return false;
        }
        let same_call = headers::call_id(&ack.headers).is_ok_and(|c| c == self.call_id);
        let same_cseq = headers::cseq(&ack.headers).is_ok_and(|(n, _)| n == self.cseq);
        let same_tag = match &self.to_tag {
            Some(tag) => headers::to(&ack.headers).is_ok_and(|t| t.tag() == Some(tag.as_str())),
            None => true,
        };
        same_call && same_cseq && same_tag
    }

    /// An ACK for this transaction. Returns whether the TU must see it
    /// (the first ACK of our 2xx); the ACK of a non-2xx is absorbed.
    pub fn on_ack(&mut self, out: &mut Outbox<'_>) -> bool {
        match self.state {
            TxState::Completed => {
                self.state = TxState::Confirmed;
                self.timer_g = None;
                self.timer_h = None;
                self.timer_i = Some(out.now + out.config.timer_i_k(self.link.transport));
                false
            }
            TxState::Accepted if !self.acked => {
                self.acked = true;
                self.resend_2xx = None;
                self.ack_wait = None;
                true
            }
            _ => false,
        }
    }

    pub fn send_response(
        &mut self,
        response: &Response,
        out: &mut Outbox<'_>,
    ) -> Result<Step, TxError> {
        let code = response.status_code.code();
        let now = out.now;
        match (self.state, code) {
            (TxState::Proceeding, 100..=199) => {}
            (TxState::Proceeding | TxState::Accepted, 200..=299) => {
                if self.state == TxState::Proceeding {
                    let t1 = out.config.t1;
                    let timeout = out.config.transaction_timeout();
                    self.state = TxState::Accepted;
                    self.timer_l = Some(now + timeout);
                    self.ack_wait = Some(now + timeout);
                    self.resend_2xx = Some(Retransmit::start(now, t1, Some(out.config.t2)));
                }
                self.to_tag = headers::to(&response.headers)
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned));
            }
            (TxState::Proceeding, 300..=699) => {
                self.state = TxState::Completed;
                let t2 = out.config.t2;
                self.timer_g = out
                    .config
                    .retransmit(self.link.transport)
                    .map(|t1| Retransmit::start(now, t1, Some(t2)));
                self.timer_h = Some(now + out.config.transaction_timeout());
            }
            (state, _) => {
                return Err(TxError::InvalidState {
                    operation: "send_response",
                    kind: "INVITE server",
                    state,
                })
            }
        }
        self.trying_at = None;
        let bytes = messages::encode_response(response);
        out.send(self.link, &bytes);
        self.last_response = Some(bytes);
        Ok(Step::Alive)
    }

    pub fn on_timer(&mut self, out: &mut Outbox<'_>) -> Step {
        let now = out.now;
        if due(self.timer_h, now) {
            out.emit(TxEvent::Timeout {
                id: out.id,
                kind: TimeoutKind::NoAck,
            });
            return Step::Terminated;
        }
        if due(self.ack_wait, now) {
            self.ack_wait = None;
            self.resend_2xx = None;
            out.emit(TxEvent::Timeout {
                id: out.id,
                kind: TimeoutKind::No2xxAck,
            });
        }
        if due(self.timer_i, now) || due(self.timer_l, now) {
            return Step::Terminated;
        }
        if due(self.trying_at, now) {
            self.trying_at = None;
            let trying = messages::encode_response(&messages::trying_for(&self.request));
            out.send(self.link, &trying);
            self.last_response = Some(trying);
        }
        let timers = [self.timer_g.as_mut(), self.resend_2xx.as_mut()];
        for timer in timers.into_iter().flatten() {
            if timer.at <= now {
                timer.back_off(now);
                if let Some(bytes) = &self.last_response {
                    out.send(self.link, bytes);
                }
            }
        }
        Step::Alive
    }
}
