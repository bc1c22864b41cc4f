//! The adaptive jitter buffer: orders packets by sequence number, drops
//! duplicates and late arrivals, and releases one packet per pull.
//!
//! Adaptation rule (all in milliseconds of media):
//! * `desired = p95(transit) − min(transit) + frame` over the last 128
//!   packets (transit = arrival time − RTP timestamp): enough delay for
//!   95 % of packets, plus one frame of pull granularity.
//! * The target jumps up to `desired` at once, and by one frame on every
//!   late packet or underrun (grow fast); it falls towards `desired` by
//!   1 % of a frame per pull only after 2 s without late packets or
//!   underruns (shrink slowly). Always within `min_delay..=max_delay`.
//! * Once a second the mean buffered depth is compared with the target:
//!   above `target + frame` one packet is dropped (time compression),
//!   below `target − frame` one concealment frame is inserted (stretch).
//!   Clock drift between the peers is absorbed by the same rule.
//! * An empty buffer while playing conceals. If the missing packet is
//!   only just due (less than a frame behind the newest packet's pace)
//!   playout waits for it (stretch: a slow sender clock, a small delay
//!   spike); if it is overdue it is given up as lost, so a loss burst
//!   does not add delay. After 10 empty pulls the stream is treated as
//!   paused (DTX, hold) and buffering starts over.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Jitter buffer bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// The least target delay.
    pub min_delay: Duration,
    /// The most target delay (and how much media is kept).
    pub max_delay: Duration,
    /// The target before any statistics exist.
    pub initial_delay: Duration,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(300),
            initial_delay: Duration::from_millis(60),
        }
    }
}

/// One buffered packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its payload type (the decoder to use).
    pub payload_type: u8,
    /// Its RTP timestamp.
    pub timestamp: u32,
    /// The encoded payload.
    pub payload: Vec<u8>,
}

/// What happened to an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Buffered for playout.
    Accepted,
    /// Already buffered or already played.
    Duplicate,
    /// Its playout time has passed.
    Late,
}

/// What to play next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop {
    /// The next packet, in order.
    Packet(Entry),
    /// The next packet is missing (a later one is here): conceal it.
    Lost,
    /// Nothing arrived in time, or the buffer stretches: conceal without
    /// moving on.
    Underrun,
    /// Not playing (start, pause): play silence.
    Empty,
}

/// Counters of the buffer's decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Packets accepted.
    pub accepted: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Late packets dropped.
    pub late: u64,
    /// Frames skipped because their packet was not there in time (the
    /// playout view; RFC 3550 loss is [`super::rtp::RtpReceiver`]'s).
    pub lost: u64,
    /// Pulls that found nothing buffered while playing.
    pub underruns: u64,
    /// Packets dropped to reduce delay.
    pub dropped: u64,
    /// Frames inserted to increase delay.
    pub stretched: u64,
}

const TRANSIT_WINDOW: usize = 128;
const ADJUST_PULLS: u32 = 50;
const STABLE_FOR: Duration = Duration::from_secs(2);
const MAX_UNDERRUN_RUN: u32 = 10;
/// A jump this far (packets) ahead restarts the buffer.
const MAX_JUMP: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Buffering,
    Playing,
}

/// The adaptive jitter buffer of one received stream.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    clock_rate: u32,
    frame: Duration,
    packets: BTreeMap<i64, (Entry, Instant)>,
    highest: Option<i64>,
    /// When the packet with the highest sequence number arrived.
    last_arrival: Option<Instant>,
    next: Option<i64>,
    /// Bit i set: sequence `next - 1 - i` was played from a packet.
    played: u64,
    state: State,
    target: Duration,
    epoch: Option<Instant>,
    last_ts: Option<(i64, u32)>,
    ext_ts: i64,
    transits: VecDeque<f64>,
    last_trouble: Option<Instant>,
    underrun_run: u32,
    pulls: u32,
    depth_sum: f64,
    pending_adjust: Option<bool>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer for a stream with `clock_rate` and a nominal packet
    /// duration `frame` (the ptime; refined from timestamps).
    pub fn new(config: JitterConfig, clock_rate: u32, frame: Duration) -> Self {
        let target = config
            .initial_delay
            .clamp(config.min_delay, config.max_delay);
        Self {
            config,
            clock_rate: clock_rate.max(1),
            frame: frame.max(Duration::from_millis(1)),
            packets: BTreeMap::new(),
            highest: None,
            last_arrival: None,
            next: None,
            played: 0,
            state: State::Buffering,
            target,
            epoch: None,
            last_ts: None,
            ext_ts: 0,
            transits: VecDeque::with_capacity(TRANSIT_WINDOW),
            last_trouble: None,
            underrun_run: 0,
            pulls: 0,
            depth_sum: 0.0,
            pending_adjust: None,
            stats: JitterStats::default(),
        }
    }

    /// The current target delay.
    pub fn target(&self) -> Duration {
        self.target
    }

    /// The packet duration in use.
    pub fn frame(&self) -> Duration {
        self.frame
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets buffered.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Media buffered ahead of the playout point (missing packets
    /// included), as a duration.
    pub fn depth(&self) -> Duration {
        match (self.next, self.highest) {
            (Some(next), Some(high)) if high >= next => {
                self.frame * u32::try_from(high - next + 1).unwrap_or(u32::MAX)
            }
            _ => Duration::ZERO,
        }
    }

    /// Forgets everything (new SSRC, restarted stream) but keeps the
    /// learnt target delay.
    pub fn reset(&mut self) {
        self.packets.clear();
        self.highest = None;
        self.last_arrival = None;
        self.next = None;
        self.played = 0;
        self.state = State::Buffering;
        self.last_ts = None;
        self.transits.clear();
        self.underrun_run = 0;
    }

    fn extend(&self, seq: u16) -> i64 {
        match self.highest {
            // Start well above zero so "before the first" stays positive.
            None => (1 << 32) + i64::from(seq),
            Some(high) => high + i64::from(seq.wrapping_sub(high as u16) as i16),
        }
    }

    fn trouble(&mut self, now: Instant) {
        self.last_trouble = Some(now);
        self.target = (self.target + self.frame).min(self.config.max_delay);
    }

    /// Buffers one packet that arrived at `now`.
    pub fn insert(&mut self, seq: u16, entry: Entry, now: Instant) -> Insert {
        let mut ext = self.extend(seq);
        if let Some(high) = self.highest {
            if ext - high > MAX_JUMP || high - ext > MAX_JUMP {
                // The sender restarted its sequence: start over.
                self.reset();
                ext = self.extend(seq);
            }
        }
        if let Some(next) = self.next {
            if ext < next {
                let age = next - 1 - ext;
                if age < 64 && self.played & (1 << age) != 0 {
                    self.stats.duplicates += 1;
                    return Insert::Duplicate;
                }
                self.stats.late += 1;
                self.trouble(now);
                return Insert::Late;
            }
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return Insert::Duplicate;
        }
        self.learn_timing(ext, entry.timestamp, now);
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
            self.last_arrival = Some(now);
        }
        self.packets.insert(ext, (entry, now));
        self.stats.accepted += 1;
        // Bound memory: never hold more than twice the maximum delay.
        let cap = (2 * self.config.max_delay.as_millis() / self.frame.as_millis().max(1)).max(8);
        while self.packets.len() as u128 > cap {
            if let Some((&first, _)) = self.packets.iter().next() {
                self.packets.remove(&first);
                self.stats.dropped += 1;
                if self.next.is_some_and(|n| n <= first) {
                    self.next = Some(first + 1);
                }
            }
        }
        Insert::Accepted
    }

    /// Updates the frame duration and the transit window from one packet.
    fn learn_timing(&mut self, ext: i64, ts: u32, now: Instant) {
        let epoch = *self.epoch.get_or_insert(now);
        match self.last_ts {
            None => self.ext_ts = 0,
            Some((last_seq, last)) => {
                let delta = i64::from(ts.wrapping_sub(last) as i32);
                if ext == last_seq + 1 && delta > 0 && delta < i64::from(self.clock_rate) {
                    let frame = Duration::from_secs_f64(delta as f64 / f64::from(self.clock_rate));
                    if frame >= Duration::from_millis(5) {
                        self.frame = frame;
                    }
                }
                self.ext_ts += delta;
            }
        }
        self.last_ts = Some((ext, ts));
        let arrival_ms = now.saturating_duration_since(epoch).as_secs_f64() * 1000.0;
        let media_ms = self.ext_ts as f64 * 1000.0 / f64::from(self.clock_rate);
        if self.transits.len() == TRANSIT_WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(arrival_ms - media_ms);
        let desired = self.desired();
        if desired > self.target {
            self.target = desired;
        }
    }

    /// The delay the transit spread asks for (see the module docs).
    fn desired(&self) -> Duration {
        let mut sorted: Vec<f64> = self.transits.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let spread = match (sorted.first(), sorted.get(sorted.len() * 95 / 100)) {
            (Some(min), Some(p95)) => (p95 - min).max(0.0),
            _ => 0.0,
        };
        let wanted = Duration::from_secs_f64(spread / 1000.0) + self.frame;
        wanted.clamp(self.config.min_delay, self.config.max_delay)
    }

    /// The next thing to play; call once per packet duration.
    pub fn pop(&mut self, now: Instant) -> Pop {
        if self.state == State::Buffering && !self.start_playing(now) {
            return Pop::Empty;
        }
        let Some(next) = self.next else {
            return Pop::Empty;
        };
        self.adapt(now);
        match self.pending_adjust.take() {
            // Drop one packet (if there is one to drop) to cut delay.
            Some(true) if self.packets.remove(&next).is_some() => {
                self.advance(true);
                self.stats.dropped += 1;
            }
            Some(false) => {
                self.stats.stretched += 1;
                return Pop::Underrun;
            }
            _ => {}
        }
        let Some(next) = self.next else {
            return Pop::Empty;
        };
        if let Some((entry, _)) = self.packets.remove(&next) {
            self.underrun_run = 0;
            self.advance(true);
            return Pop::Packet(entry);
        }
        if self.packets.range(next..).next().is_some() {
            self.underrun_run = 0;
            self.stats.lost += 1;
            self.advance(false);
            return Pop::Lost;
        }
        // Nothing buffered at or after `next`.
        self.underrun_run += 1;
        self.stats.underruns += 1;
        if self.underrun_run >= MAX_UNDERRUN_RUN {
            // A pause in the stream (DTX, hold): buffer afresh, expecting
            // the sequence to continue after the newest packet seen.
            self.state = State::Buffering;
            self.underrun_run = 0;
            self.next = self.highest.map(|h| h + 1);
            self.played = 0;
            return Pop::Empty;
        }
        if self.overdue(next, now) {
            // It should have come a frame ago: lost in a burst, or so
            // late that waiting would only add delay (the target grows).
            self.stats.lost += 1;
            self.advance(false);
            return Pop::Lost;
        }
        // Only just due (a slow sender clock, a small delay spike):
        // conceal and wait for it, which adds one frame of delay.
        self.trouble(now);
        Pop::Underrun
    }

    /// Whether packet `next` is more than a frame past the time it would
    /// have arrived at the newest packet's pace.
    fn overdue(&self, next: i64, now: Instant) -> bool {
        let newest = self.highest.zip(self.last_arrival);
        let Some((high, arrived)) = newest else {
            return true;
        };
        let frames = u32::try_from(next - high + 1).unwrap_or(u32::MAX);
        now.saturating_duration_since(arrived) > self.frame.saturating_mul(frames)
    }

    fn advance(&mut self, played: bool) {
        if let Some(next) = self.next.as_mut() {
            *next += 1;
            self.played = self.played << 1 | u64::from(played);
        }
    }

    /// Buffering ends once the oldest packet has waited the target delay.
    fn start_playing(&mut self, now: Instant) -> bool {
        let Some((&first, (_, arrived))) = self.packets.iter().next() else {
            return false;
        };
        if now.saturating_duration_since(*arrived) < self.target {
            return false;
        }
        // Anything before `next` was refused as late at insert, so the
        // oldest buffered packet is where playout resumes; the played-bits
        // move along with the skipped sequence numbers.
        if let Some(next) = self.next {
            let skipped = u32::try_from(first - next).unwrap_or(64);
            self.played = self.played.checked_shl(skipped).unwrap_or(0);
        }
        self.next = Some(first);
        self.state = State::Playing;
        self.pulls = 0;
        self.depth_sum = 0.0;
        true
    }

    /// Once per `ADJUST_PULLS`: shrink the target when stable and decide
    /// whether to drop or stretch a frame.
    fn adapt(&mut self, now: Instant) {
        let stable = self
            .last_trouble
            .is_none_or(|t| now.saturating_duration_since(t) >= STABLE_FOR);
        let desired = self.desired();
        if stable && self.target > desired {
            self.target = self.target.saturating_sub(self.frame / 100).max(desired);
        }
        self.target = self
            .target
            .clamp(self.config.min_delay, self.config.max_delay);
        self.pulls += 1;
        self.depth_sum += self.depth().as_secs_f64();
        if self.pulls < ADJUST_PULLS {
            return;
        }
        let mean = Duration::from_secs_f64(self.depth_sum / f64::from(self.pulls));
        self.pulls = 0;
        self.depth_sum = 0.0;
        if mean > self.target + self.frame {
            self.pending_adjust = Some(true);
        } else if mean + self.frame < self.target {
            self.pending_adjust = Some(false);
        }
    }
}

#[cfg(test)]
#[path = "jitter_tests.rs"]
mod tests;
