//! RFC 4733 telephone-events (DTMF over RTP): payload, sender, receiver.
//!
//! Sender timing: the first packet of an event carries the marker bit;
//! every packet of the event carries the event's start timestamp; one
//! packet per update interval (the audio ptime) whose duration covers the
//! time up to the end of that interval; the final packet has the E bit
//! and is sent three times (RFC 4733 §2.5.1.4), one interval apart; then
//! a pause of [`INTER_DIGIT_GAP`] before the next queued digit.
//!
//! Receiver: events are keyed by timestamp. Each is reported once, when
//! its End arrives or, if every End packet was lost, [`END_TIMEOUT`] after
//! its last packet. Retransmitted Ends and stragglers of a reported event
//! (same timestamp) are ignored.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The volume we send: −10 dBm0 (the field is −dBm0; sipp sends 10 too).
pub const VOLUME: u8 = 10;
/// Silence between two queued digits.
pub const INTER_DIGIT_GAP: Duration = Duration::from_millis(60);
/// An event without packets for this long has ended (its Ends were lost).
pub const END_TIMEOUT: Duration = Duration::from_millis(250);
/// How many times the final packet is sent.
pub const END_REPEATS: u8 = 3;

/// Why a telephone-event could not be sent or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// Not one of `0-9 * # A-D`.
    #[error("not a DTMF digit: {0:?}")]
    InvalidDigit(char),
    /// A telephone-event payload is 4 bytes.
    #[error("telephone-event payload of {0} bytes")]
    BadPayload(usize),
}

/// The RFC 4733 §3.2 event code of a DTMF digit (case-insensitive A-D).
pub fn event_code(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The DTMF digit of an event code, for codes 0..=15.
pub fn event_digit(code: u8) -> Option<char> {
    match code {
        0..=9 => Some(char::from(b'0' + code)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + code - 12)),
        _ => None,
    }
}

/// The 4-byte telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// The event code.
    pub event: u8,
    /// The E bit: this is the event's final packet.
    pub end: bool,
    /// Power level in −dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Reads a payload (extra bytes, e.g. a second event block, ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(Self {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3f,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(DtmfError::BadPayload(payload.len())),
        }
    }

    /// The wire form.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            u8::from(self.end) << 7 | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

/// One telephone-event packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// Marker bit (first packet of the event).
    pub marker: bool,
    /// The event's RTP timestamp.
    pub timestamp: u32,
    /// The payload.
    pub payload: EventPayload,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    code: u8,
    timestamp: u32,
    start: Instant,
    total_ticks: u16,
    sent: u32,
    ends_sent: u8,
    next_at: Instant,
}

/// Sends queued digits as telephone-events.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    clock_rate: u32,
    interval: Duration,
    queue: VecDeque<(u8, Duration)>,
    active: Option<Active>,
    /// When the next queued digit may start (after the inter-digit gap).
    ready_at: Option<Instant>,
}

impl DtmfSender {
    /// A sender for a telephone-event clock of `clock_rate`, updating
    /// every `interval` (use the audio ptime).
    pub fn new(clock_rate: u32, interval: Duration) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            interval: interval.max(Duration::from_millis(10)),
            queue: VecDeque::new(),
            active: None,
            ready_at: None,
        }
    }

    /// Queues a digit. Durations are limited to what the 16-bit field
    /// holds (8.19 s at 8 kHz) and to at least one interval.
    pub fn queue(
        &mut self,
        digit: char,
        duration: Duration,
        now: Instant,
    ) -> Result<(), DtmfError> {
        let code = event_code(digit).ok_or(DtmfError::InvalidDigit(digit))?;
        self.queue.push_back((code, duration.max(self.interval)));
        self.ready_at.get_or_insert(now);
        Ok(())
    }

    /// Whether an event is being sent (audio is suppressed meanwhile).
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// Whether nothing is queued or being sent.
    pub fn is_idle(&self) -> bool {
        self.active.is_none() && self.queue.is_empty()
    }

    /// When [`DtmfSender::poll`] next has something to do.
    pub fn timeout(&self) -> Option<Instant> {
        match &self.active {
            Some(a) => Some(a.next_at),
            None if self.queue.is_empty() => None,
            None => self.ready_at,
        }
    }

    fn ticks(&self, d: Duration) -> u64 {
        (d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u64
    }

    /// The next packet due at `now`, if any. `timestamp` is the RTP
    /// timestamp a new event starts at (the sender's current one).
    /// Returns the finished event's end timestamp alongside the last End,
    /// so audio can resume after it.
    pub fn poll(&mut self, now: Instant, timestamp: u32) -> Option<(EventPacket, Option<u32>)> {
        if self.active.is_none() {
            if self.ready_at.is_some_and(|r| now < r) {
                return None;
            }
            let (code, duration) = self.queue.pop_front()?;
            let total_ticks = self.ticks(duration).min(u64::from(u16::MAX)) as u16;
            self.active = Some(Active {
                code,
                timestamp,
                start: now,
                total_ticks,
                sent: 0,
                ends_sent: 0,
                next_at: now,
            });
        }
        let interval = self.interval;
        let mut active = self.active?;
        if now < active.next_at {
            return None;
        }
        let covered = self.ticks(interval * (active.sent + 1));
        let end = covered >= u64::from(active.total_ticks) || active.ends_sent > 0;
        let duration = if end {
            active.total_ticks
        } else {
            covered as u16
        };
        let packet = EventPacket {
            marker: active.sent == 0,
            timestamp: active.timestamp,
            payload: EventPayload {
                event: active.code,
                end,
                volume: VOLUME,
                duration,
            },
        };
        active.sent += 1;
        active.next_at = active.start + interval * active.sent;
        if end {
            active.ends_sent += 1;
        }
        if active.ends_sent >= END_REPEATS {
            self.active = None;
            self.ready_at = Some(now + INTER_DIGIT_GAP);
            let resume = active.timestamp.wrapping_add(u32::from(active.total_ticks));
            return Some((packet, Some(resume)));
        }
        self.active = Some(active);
        Some((packet, None))
    }
}

/// A received digit, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// `0-9 * # A-D`.
    pub digit: char,
    /// How long it lasted.
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    timestamp: u32,
    code: u8,
    duration: u16,
    last_at: Instant,
}

/// Reassembles telephone-event packets into digits.
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    clock_rate: u32,
    current: Option<Current>,
    /// Timestamps of events already reported, newest last.
    done: VecDeque<u32>,
    events: VecDeque<DtmfEvent>,
}

impl DtmfReceiver {
    /// A receiver for a telephone-event clock of `clock_rate`.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            current: None,
            done: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Feeds one telephone-event packet's timestamp and payload.
    pub fn on_packet(
        &mut self,
        timestamp: u32,
        payload: &[u8],
        now: Instant,
    ) -> Result<(), DtmfError> {
        let event = EventPayload::parse(payload)?;
        if self.done.contains(&timestamp) {
            return Ok(());
        }
        match self.current {
            Some(cur) if cur.timestamp == timestamp => {
                let updated = Current {
                    duration: cur.duration.max(event.duration),
                    last_at: now,
                    ..cur
                };
                self.current = Some(updated);
            }
            Some(cur) if (timestamp.wrapping_sub(cur.timestamp) as i32) < 0 => {
                // A straggler from before the current event.
                return Ok(());
            }
            _ => {
                self.finish();
                self.current = Some(Current {
                    timestamp,
                    code: event.event,
                    duration: event.duration,
                    last_at: now,
                });
            }
        }
        if event.end {
            self.finish();
        }
        Ok(())
    }

    /// Reports the current event (End lost, or a new event started).
    fn finish(&mut self) {
        let Some(cur) = self.current.take() else {
            return;
        };
        if self.done.len() >= 16 {
            self.done.pop_front();
        }
        self.done.push_back(cur.timestamp);
        if let Some(digit) = event_digit(cur.code) {
            let duration =
                Duration::from_secs_f64(f64::from(cur.duration) / f64::from(self.clock_rate));
            self.events.push_back(DtmfEvent { digit, duration });
        }
    }

    /// When an unfinished event times out.
    pub fn timeout(&self) -> Option<Instant> {
        self.current.map(|c| c.last_at + END_TIMEOUT)
    }

    /// Ends an event whose End packets never came.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timeout().is_some_and(|t| now >= t) {
            self.finish();
        }
    }

    /// The next reported digit.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
#[path = "dtmf_tests.rs"]
mod tests;
