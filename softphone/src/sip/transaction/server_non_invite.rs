//! Non-INVITE server transaction (§17.2.2).

use std::time::Instant;

use rsip::Response;

use super::messages;
use super::outbox::{Link, Outbox, Step};
use super::timers::due;
use super::{TxError, TxState};

#[derive(Debug)]
pub(super) struct ServerNonInvite {
    pub link: Link,
    state: TxState,
    last_response: Option<Vec<u8>>,
    timer_j: Option<Instant>,
}

impl ServerNonInvite {
    pub fn new(link: Link) -> Self {
        Self {
            link,
            state: TxState::Trying,
            last_response: None,
            timer_j: None,
        }
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.timer_j
    }

    /// A retransmission of the request: silence in Trying (the TU has not
    /// answered), else the last response again.
    pub fn on_retransmission(&mut self, out: &mut Outbox<'_>) {
        if let Some(bytes) = &self.last_response {
            out.send(self.link, bytes);
        }
    }

    pub fn send_response(
        &mut self,
        response: &Response,
        out: &mut Outbox<'_>,
    ) -> Result<Step, TxError> {
        let code = response.status_code.code();
        match (self.state, code) {
            (TxState::Trying | TxState::Proceeding, 100..=199) => {
                self.state = TxState::Proceeding;
            }
            (TxState::Trying | TxState::Proceeding, 200..=699) => {
                self.state = TxState::Completed;
                self.timer_j = Some(out.now + out.config.timer_j(self.link.transport));
            }
            (state, _) => {
                return Err(TxError::InvalidState {
                    operation: "send_response",
                    kind: "non-INVITE server",
                    state,
                })
            }
        }
        let bytes = messages::encode_response(response);
        out.send(self.link, &bytes);
        self.last_response = Some(bytes);
        Ok(Step::Alive)
    }

    pub fn on_timer(&mut self, out: &mut Outbox<'_>) -> Step {
        if due(self.timer_j, out.now) {
            Step::Terminated
        } else {
            Step::Alive
        }
    }
}
