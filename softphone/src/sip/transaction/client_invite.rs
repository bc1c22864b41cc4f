//! INVITE client transaction (§17.1.1, RFC 6026 §8.4 Accepted state).

use std::time::Instant;

use rsip::{Request, Response};

use super::messages;
use super::outbox::{Link, Outbox, Step};
use super::timers::{due, earliest, Retransmit};
use super::{TimeoutKind, TxEvent, TxState};

#[derive(Debug)]
pub(super) struct ClientInvite {
    pub link: Link,
    /// Kept for the non-2xx ACK and for CANCEL.
    pub request: Request,
    bytes: Vec<u8>,
    state: TxState,
    timer_a: Option<Retransmit>,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    timer_m: Option<Instant>,
    ack: Option<Vec<u8>>,
}

impl ClientInvite {
    /// Sends the INVITE and arms A (UDP only) and B.
    pub fn start(link: Link, request: Request, out: &mut Outbox<'_>) -> Self {
        let bytes = messages::encode_request(&request);
        out.send(link, &bytes);
        let now = out.now;
        Self {
            link,
            request,
            bytes,
            state: TxState::Calling,
            timer_a: out
                .config
                .retransmit(link.transport)
                .map(|t1| Retransmit::start(now, t1, None)),
            timer_b: Some(now + out.config.transaction_timeout()),
            timer_d: None,
            timer_m: None,
            ack: None,
        }
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[
            self.timer_a.map(|a| a.at),
            self.timer_b,
            self.timer_d,
            self.timer_m,
        ])
    }

    pub fn on_response(&mut self, response: Response, out: &mut Outbox<'_>) -> Step {
        let code = response.status_code.code();
        let deliver = match (self.state, code) {
            (TxState::Calling | TxState::Proceeding, 100..=199) => {
                self.state = TxState::Proceeding;
                self.timer_a = None;
                self.timer_b = None;
                true
            }
            (TxState::Calling | TxState::Proceeding, 200..=299) => {
                // RFC 6026: stay to pass further 2xx (retransmissions,
                // forks) to the TU, which ACKs each end-to-end.
                self.state = TxState::Accepted;
                self.timer_a = None;
                self.timer_b = None;
                self.timer_m = Some(out.now + out.config.transaction_timeout());
                true
            }
            (TxState::Accepted, 200..=299) => true,
            (TxState::Calling | TxState::Proceeding, 300..=699) => {
                let ack = messages::encode_request(&messages::ack_for(&self.request, &response));
                out.send(self.link, &ack);
                self.ack = Some(ack);
                self.state = TxState::Completed;
                self.timer_a = None;
                self.timer_b = None;
                self.timer_d = Some(out.now + out.config.timer_d(self.link.transport));
                true
            }
            (TxState::Completed, 300..=699) => {
                // The ACK was lost: repeat it, the TU has the response.
                if let Some(ack) = &self.ack {
                    out.send(self.link, ack);
                }
                false
            }
            _ => false,
        };
        if deliver {
            out.emit(TxEvent::Response {
                id: out.id,
                response,
            });
        }
        Step::Alive
    }

    pub fn on_timer(&mut self, out: &mut Outbox<'_>) -> Step {
        let now = out.now;
        if due(self.timer_b, now) {
            out.emit(TxEvent::Timeout {
                id: out.id,
                kind: TimeoutKind::NoResponse,
            });
            return Step::Terminated;
        }
        if due(self.timer_d, now) || due(self.timer_m, now) {
            return Step::Terminated;
        }
        if let Some(a) = self.timer_a.as_mut().filter(|a| a.at <= now) {
            // Timer A has no cap (§17.1.1.2).
            a.back_off(now);
            out.send(self.link, &self.bytes);
        }
        Step::Alive
    }
}
