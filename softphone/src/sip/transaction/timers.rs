//! Timer values (RFC 3261 Table 4) and retransmission back-off.

use std::time::{Duration, Instant};

use crate::sip::Transport;

/// The base timer values; every transaction timer derives from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms): first retransmission interval.
    pub t1: Duration,
    /// Cap on non-INVITE and response retransmission intervals (4 s).
    pub t2: Duration,
    /// How long a message may stay in the network (5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1: timers B, F, H, L, M, unreliable J, and the 2xx ACK wait.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// First interval of timers A, E, G: T1, and none on reliable
    /// transports, which do not retransmit.
    pub(super) fn retransmit(&self, transport: Transport) -> Option<Duration> {
        (!transport.is_reliable()).then_some(self.t1)
    }

    /// Timer D: at least 32 s over UDP (long enough to absorb the server's
    /// retransmissions for its timer H), zero otherwise.
    pub(super) fn timer_d(&self, transport: Transport) -> Duration {
        self.unreliable(
            transport,
            self.transaction_timeout().max(Duration::from_secs(32)),
        )
    }

    /// Timers I and K: T4 over UDP, zero otherwise.
    pub(super) fn timer_i_k(&self, transport: Transport) -> Duration {
        self.unreliable(transport, self.t4)
    }

    /// Timer J: 64·T1 over UDP, zero otherwise.
    pub(super) fn timer_j(&self, transport: Transport) -> Duration {
        self.unreliable(transport, self.transaction_timeout())
    }

    fn unreliable(&self, transport: Transport, value: Duration) -> Duration {
        if transport.is_reliable() {
            Duration::ZERO
        } else {
            value
        }
    }
}

/// A retransmission timer whose interval doubles up to an optional cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Retransmit {
    /// When it fires next.
    pub at: Instant,
    interval: Duration,
    cap: Option<Duration>,
}

impl Retransmit {
    /// Armed to fire `first` after `now`.
    pub fn start(now: Instant, first: Duration, cap: Option<Duration>) -> Self {
        Self {
            at: now + first,
            interval: first,
            cap,
        }
    }

    /// After firing: double the interval (capped) and re-arm from `now`.
    pub fn back_off(&mut self, now: Instant) {
        let doubled = self.interval.saturating_mul(2);
        self.interval = self.cap.map_or(doubled, |cap| doubled.min(cap));
        self.at = now + self.interval;
    }

    /// After firing: re-arm with a fixed interval (timer E in Proceeding).
    pub fn rearm(&mut self, now: Instant, interval: Duration) {
        self.interval = interval;
        self.at = now + interval;
    }
}

/// Whether an optional deadline has passed.
pub(super) fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|at| at <= now)
}

/// The earliest of several optional deadlines.
pub(super) fn earliest(deadlines: &[Option<Instant>]) -> Option<Instant> {
    deadlines.iter().flatten().min().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_4_values() {
        let c = TimerConfig::default();
        assert_eq!(c.transaction_timeout(), Duration::from_secs(32));
        assert_eq!(
            c.retransmit(Transport::Udp),
            Some(Duration::from_millis(500))
        );
        assert_eq!(c.retransmit(Transport::Tcp), None);
        assert_eq!(c.timer_d(Transport::Udp), Duration::from_secs(32));
        assert_eq!(c.timer_d(Transport::Tls), Duration::ZERO);
        assert_eq!(c.timer_i_k(Transport::Udp), Duration::from_secs(5));
        assert_eq!(c.timer_j(Transport::Tcp), Duration::ZERO);
    }

    #[test]
    fn back_off_caps() {
        let t0 = Instant::now();
        let mut r = Retransmit::start(t0, Duration::from_millis(500), Some(Duration::from_secs(4)));
        let mut fired = vec![];
        for _ in 0..6 {
            let at = r.at;
            fired.push(at - t0);
            r.back_off(at);
        }
        let ms: Vec<u128> = fired.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1500, 3500, 7500, 11500, 15500]);
    }
}
