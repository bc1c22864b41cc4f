//! Non-INVITE client transaction (§17.1.2).

use std::time::Instant;

use rsip::{Request, Response};

use super::messages;
use super::outbox::{Link, Outbox, Step};
use super::timers::{due, earliest, Retransmit};
use super::{TimeoutKind, TxEvent, TxState};

#[derive(Debug)]
pub(super) struct ClientNonInvite {
    pub link: Link,
    bytes: Vec<u8>,
    state: TxState,
    timer_e: Option<Retransmit>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl ClientNonInvite {
    /// Sends the request and arms E (UDP only) and F.
    pub fn start(link: Link, request: &Request, out: &mut Outbox<'_>) -> Self {
        let bytes = messages::encode_request(request);
        out.send(link, &bytes);
        let now = out.now;
        let t2 = out.config.t2;
        Self {
            link,
            bytes,
            state: TxState::Trying,
            timer_e: out
                .config
                .retransmit(link.transport)
                .map(|t1| Retransmit::start(now, t1, Some(t2))),
            timer_f: Some(now + out.config.transaction_timeout()),
            timer_k: None,
        }
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(&[self.timer_e.map(|e| e.at), self.timer_f, self.timer_k])
    }

    pub fn on_response(&mut self, response: Response, out: &mut Outbox<'_>) -> Step {
        let code = response.status_code.code();
        let deliver = match (self.state, code) {
            (TxState::Trying | TxState::Proceeding, 100..=199) => {
                self.state = TxState::Proceeding;
                true
            }
            (TxState::Trying | TxState::Proceeding, 200..=699) => {
                self.state = TxState::Completed;
                self.timer_e = None;
                self.timer_f = None;
                self.timer_k = Some(out.now + out.config.timer_i_k(self.link.transport));
                true
            }
            // Completed absorbs retransmitted finals.
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
        if due(self.timer_f, now) {
            out.emit(TxEvent::Timeout {
                id: out.id,
                kind: TimeoutKind::NoResponse,
            });
            return Step::Terminated;
        }
        if due(self.timer_k, now) {
            return Step::Terminated;
        }
        let t2 = out.config.t2;
        if let Some(e) = self.timer_e.as_mut().filter(|e| e.at <= now) {
            if self.state == TxState::Proceeding {
                // A provisional arrived: the server is alive, poll at T2.
                e.rearm(now, t2);
            } else {
                e.back_off(now);
            }
            out.send(self.link, &self.bytes);
        }
        Step::Alive
    }
}
