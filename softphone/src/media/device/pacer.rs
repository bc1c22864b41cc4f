//! Wall-clock pacing for the synthetic inputs, so they hand out audio at
//! the rate a sound card would.

use std::time::{Duration, Instant};

use super::Pacing;

/// How far behind a paced source may fall before it skips ahead, as a
/// sound card's buffer would overflow: a reader that stalled for a second
/// gets the latest audio, not a second-long burst.
const MAX_BACKLOG: Duration = Duration::from_millis(200);

/// Counts frames (per-channel samples) handed out against the clock.
#[derive(Debug)]
pub(crate) struct Pacer {
    pacing: Pacing,
    rate: u32,
    start: Instant,
    delivered: u64,
}

impl Pacer {
    pub(crate) fn new(pacing: Pacing, rate: u32) -> Self {
        Self {
            pacing,
            rate,
            start: Instant::now(),
            delivered: 0,
        }
    }

    /// Whether `frames` more may be handed out now; if so, counts them.
    /// Returns how many frames to skip first (after a stall), or `None`.
    pub(crate) fn take(&mut self, frames: usize) -> Option<u64> {
        self.take_at(Instant::now(), frames)
    }

    pub(crate) fn take_at(&mut self, now: Instant, frames: usize) -> Option<u64> {
        let frames = frames as u64;
        if self.pacing == Pacing::Unpaced {
            self.delivered += frames;
            return Some(0);
        }
        let elapsed = now.saturating_duration_since(self.start);
        let due = (elapsed.as_nanos() * u128::from(self.rate) / 1_000_000_000) as u64;
        if due < self.delivered + frames {
            return None;
        }
        let backlog = due - self.delivered - frames;
        let limit = MAX_BACKLOG.as_millis() as u64 * u64::from(self.rate) / 1000;
        let skip = backlog.saturating_sub(limit);
        self.delivered += skip + frames;
        Some(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_pacing_follows_the_clock() {
        let mut p = Pacer::new(Pacing::RealTime, 8_000);
        let t0 = p.start;
        assert_eq!(p.take_at(t0, 160), None);
        assert_eq!(p.take_at(t0 + Duration::from_millis(19), 160), None);
        assert_eq!(p.take_at(t0 + Duration::from_millis(20), 160), Some(0));
        assert_eq!(p.take_at(t0 + Duration::from_millis(20), 160), None);
        // A 1 s stall: skip all but 200 ms, then catch up frame by frame.
        let late = t0 + Duration::from_millis(1_020);
        assert_eq!(p.take_at(late, 160), Some(8_000 - 1_600 - 160));
        let mut caught_up = 0;
        while p.take_at(late, 160) == Some(0) {
            caught_up += 1;
        }
        assert_eq!(caught_up, 10);
    }

    #[test]
    fn unpaced_always_gives() {
        let mut p = Pacer::new(Pacing::Unpaced, 8_000);
        for _ in 0..1_000 {
            assert_eq!(p.take(160), Some(0));
        }
    }
}
