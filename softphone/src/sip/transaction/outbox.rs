//! What a state machine may do when it is stepped: queue bytes and events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::sip::{Transmit, Transport};

use super::timers::TimerConfig;
use super::{TxEvent, TxId};

/// Where a transaction's messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Link {
    pub transport: Transport,
    pub peer: SocketAddr,
}

/// Everything a state machine needs from the layer while it is stepped.
pub(super) struct Outbox<'a> {
    pub id: TxId,
    pub now: Instant,
    pub config: &'a TimerConfig,
    pub transmits: &'a mut VecDeque<Transmit>,
    pub events: &'a mut VecDeque<TxEvent>,
}

impl Outbox<'_> {
    /// Queues `bytes` for the transaction's peer.
    pub fn send(&mut self, link: Link, bytes: &[u8]) {
        self.transmits.push_back(Transmit {
            transport: link.transport,
            destination: link.peer,
            bytes: bytes.to_vec(),
        });
    }

    /// Queues an event for the TU.
    pub fn emit(&mut self, event: TxEvent) {
        self.events.push_back(event);
    }
}

/// Whether a transaction lives on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Alive,
    Terminated,
}
