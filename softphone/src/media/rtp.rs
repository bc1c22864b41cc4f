//! RTP (RFC 3550): packets, the sender's state and the receiver's
//! statistics.
//!
//! Hand-written rather than `rtp-types`: the fixed header is 12 bytes, we
//! need a serializer and the receiver algorithms (A.1, A.3, A.8) anyway,
//! and owning the ~150 lines of parsing keeps the no-panic guarantee in
//! code we test with proptest.

use std::time::Instant;

/// The RTP version we speak (RFC 3550 §5.1).
pub const RTP_VERSION: u8 = 2;
/// The fixed header length.
pub const HEADER_LEN: usize = 12;

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the header it announces.
    #[error("RTP packet truncated ({0} bytes)")]
    Truncated(usize),
    /// Version field is not 2.
    #[error("RTP version {0} is not 2")]
    BadVersion(u8),
    /// The padding count is zero or longer than the payload.
    #[error("invalid RTP padding length {0}")]
    BadPadding(u8),
    /// The OS random source failed when choosing SSRC/sequence/timestamp.
    #[error("random source failed")]
    Random,
}

/// A header extension (RFC 3550 §5.3.1), kept opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The profile-defined 16-bit identifier.
    pub profile: u16,
    /// The extension data (a multiple of 4 bytes).
    pub data: &'a [u8],
}

/// One RTP packet; the payload borrows from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit (talkspurt start for audio, event start for DTMF).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp in RTP clock units.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrcs: Vec<u32>,
    /// The header extension, if the X bit is set.
    pub extension: Option<RtpExtension<'a>>,
    /// The payload without padding.
    pub payload: &'a [u8],
    /// Padding bytes after the payload (0 = P bit clear).
    pub padding: u8,
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl<'a> RtpPacket<'a> {
    /// A packet with no CSRCs, extension or padding.
    pub fn new(
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload: &'a [u8],
    ) -> Self {
        Self {
            marker: false,
            payload_type: payload_type & 0x7f,
            sequence,
            timestamp,
            ssrc,
            csrcs: Vec::new(),
            extension: None,
            payload,
            padding: 0,
        }
    }

    /// Parses a datagram. Never panics, whatever the bytes.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let truncated = RtpError::Truncated(buf.len());
        let (&b0, &b1) = match buf {
            [b0, b1, ..] if buf.len() >= HEADER_LEN => (b0, b1),
            _ => return Err(truncated),
        };
        let version = b0 >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let csrc_count = usize::from(b0 & 0x0f);
        let sequence = be16(buf, 2).ok_or(truncated)?;
        let timestamp = be32(buf, 4).ok_or(truncated)?;
        let ssrc = be32(buf, 8).ok_or(truncated)?;
        let mut at = HEADER_LEN;
        let mut csrcs = Vec::with_capacity(csrc_count);
        for _ in 0..csrc_count {
            csrcs.push(be32(buf, at).ok_or(truncated)?);
            at += 4;
        }
        let extension = if has_extension {
            let profile = be16(buf, at).ok_or(truncated)?;
            let words = usize::from(be16(buf, at + 2).ok_or(truncated)?);
            let start = at + 4;
            let end = start + words * 4;
            let data = buf.get(start..end).ok_or(truncated)?;
            at = end;
            Some(RtpExtension { profile, data })
        } else {
            None
        };
        let mut end = buf.len();
        let mut padding = 0;
        if has_padding {
            // The last octet counts the padding, itself included.
            let count = *buf.last().ok_or(truncated)?;
            if count == 0 || usize::from(count) > end - at {
                return Err(RtpError::BadPadding(count));
            }
            padding = count;
            end -= usize::from(count);
        }
        let payload = buf.get(at..end).ok_or(truncated)?;
        Ok(Self {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            sequence,
            timestamp,
            ssrc,
            csrcs,
            extension,
            payload,
            padding,
        })
    }

    /// Appends the serialised packet to `out`. CSRCs beyond 15 and
    /// extension data beyond a multiple of 4 bytes (or 256 KiB) are
    /// truncated, as the header cannot express them.
    pub fn write(&self, out: &mut Vec<u8>) {
        let csrcs = &self.csrcs[..self.csrcs.len().min(15)];
        let mut b0 = RTP_VERSION << 6 | csrcs.len() as u8;
        if self.padding > 0 {
            b0 |= 0x20;
        }
        if self.extension.is_some() {
            b0 |= 0x10;
        }
        out.push(b0);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for csrc in csrcs {
            out.extend_from_slice(&csrc.to_be_bytes());
        }
        if let Some(ext) = &self.extension {
            let words = (ext.data.len() / 4).min(usize::from(u16::MAX));
            out.extend_from_slice(&ext.profile.to_be_bytes());
            out.extend_from_slice(&(words as u16).to_be_bytes());
            out.extend_from_slice(&ext.data[..words * 4]);
        }
        out.extend_from_slice(self.payload);
        if self.padding > 0 {
            out.extend(std::iter::repeat_n(0u8, usize::from(self.padding) - 1));
            out.push(self.padding);
        }
    }

    /// The serialised packet as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        self.write(&mut out);
        out
    }
}

/// Draws a random `u32` from the OS (used for SSRC and initial values,
/// RFC 3550 §5.1: "SHOULD be random").
pub fn random_u32() -> Result<u32, RtpError> {
    getrandom::u32().map_err(|_| RtpError::Random)
}

/// The sending side of one RTP stream: SSRC, sequence and timestamp.
///
/// The timestamp follows the sampling clock: it advances by every frame
/// captured, sent or not, so a receiver sees silence gaps as gaps.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    /// Set after a gap (start, hold, DTMF) so the next audio packet carries
    /// the marker bit (RFC 3551 §4.1: first packet of a talkspurt).
    talkspurt_start: bool,
    packets_sent: u32,
    octets_sent: u32,
    /// The timestamp and time of the last packet, for the SR's RTP time.
    last_sent: Option<(u32, Instant)>,
}

impl RtpSender {
    /// A sender with random SSRC, sequence and timestamp.
    pub fn new() -> Result<Self, RtpError> {
        let seq = random_u32()? as u16;
        Ok(Self::with_state(random_u32()?, seq, random_u32()?))
    }

    /// A sender with chosen initial values (tests, or keeping the SSRC
    /// across a codec change).
    pub fn with_state(ssrc: u32, sequence: u16, timestamp: u32) -> Self {
        Self {
            ssrc,
            sequence,
            timestamp,
            talkspurt_start: true,
            packets_sent: 0,
            octets_sent: 0,
            last_sent: None,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The timestamp the next audio packet will carry.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The sequence number of the next packet.
    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    /// Packets sent so far (the SR's sender packet count).
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// Payload octets sent so far (the SR's sender octet count).
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }

    /// The last sent timestamp and when, if anything was sent.
    pub fn last_sent(&self) -> Option<(u32, Instant)> {
        self.last_sent
    }

    /// Writes one audio packet carrying `ticks` of media and advances the
    /// timestamp by them. The marker is set on a talkspurt's first packet.
    pub fn send_audio(
        &mut self,
        pt: u8,
        payload: &[u8],
        ticks: u32,
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        let marker = std::mem::take(&mut self.talkspurt_start);
        let ts = self.timestamp;
        self.send_raw(pt, marker, ts, payload, now, out);
        self.timestamp = self.timestamp.wrapping_add(ticks);
    }

    /// Advances the timestamp over media not sent (hold, mute, DTMF) and
    /// marks the next audio packet as a talkspurt start.
    pub fn skip(&mut self, ticks: u32) {
        self.timestamp = self.timestamp.wrapping_add(ticks);
        self.talkspurt_start = true;
    }

    /// Makes the timestamp at least `ts` (wrap-aware): after a DTMF event,
    /// audio must not reuse the event's time span.
    pub fn advance_to(&mut self, ts: u32) {
        if (ts.wrapping_sub(self.timestamp) as i32) > 0 {
            self.timestamp = ts;
        }
        self.talkspurt_start = true;
    }

    /// Writes a packet with an explicit timestamp (telephone-events keep
    /// one timestamp for the whole event) and advances the sequence.
    pub fn send_raw(
        &mut self,
        pt: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        let mut packet = RtpPacket::new(pt, self.sequence, timestamp, self.ssrc, payload);
        packet.marker = marker;
        packet.write(out);
        self.sequence = self.sequence.wrapping_add(1);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        self.last_sent = Some((timestamp, now));
    }
}

/// RFC 3550 A.1 constants.
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const MIN_SEQUENTIAL: u32 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What the receiver made of one packet's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// A valid packet of the stream (in order, late or duplicate: the
    /// jitter buffer sorts those out).
    Valid,
    /// The source is still on probation (RFC 3550 A.1 `MIN_SEQUENTIAL`).
    Probation,
    /// A jump too large to trust; a second in-sequence packet after it
    /// restarts the stream.
    Invalid,
}

/// Reception statistics of one source: RFC 3550 A.1 sequence validation,
/// A.3 loss and A.8 interarrival jitter.
#[derive(Debug, Clone)]
pub struct RtpReceiver {
    ssrc: u32,
    clock_rate: u32,
    epoch: Instant,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    bytes: u64,
    transit: Option<u32>,
    /// Jitter in 1/16 timestamp units (A.8's fixed-point estimator).
    jitter_q4: u64,
}

impl RtpReceiver {
    /// Starts tracking `ssrc` at its first packet's sequence number; the
    /// source is on probation until `MIN_SEQUENTIAL` packets in a row.
    pub fn new(ssrc: u32, first_seq: u16, clock_rate: u32, epoch: Instant) -> Self {
        let mut r = Self {
            ssrc,
            clock_rate: clock_rate.max(1),
            epoch,
            max_seq: first_seq,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            bytes: 0,
            transit: None,
            jitter_q4: 0,
        };
        // A.1: init_seq, then max_seq = seq - 1 so the first packet itself
        // (passed to on_packet by the caller) counts as in sequence.
        r.init_seq(first_seq);
        r.max_seq = first_seq.wrapping_sub(1);
        r
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// The source tracked.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Whether the source has left probation.
    pub fn is_valid(&self) -> bool {
        self.probation == 0
    }

    /// RFC 3550 A.1 `update_seq`, verbatim in logic.
    fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqVerdict::Valid;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump: accept it only if the next packet follows it.
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqVerdict::Invalid;
            }
        }
        // else: duplicate or reordered packet.
        self.received = self.received.wrapping_add(1);
        SeqVerdict::Valid
    }

    /// Accounts one packet arriving at `now`: sequence validation, byte
    /// count and the A.8 jitter estimate.
    pub fn on_packet(
        &mut self,
        seq: u16,
        timestamp: u32,
        payload_len: usize,
        now: Instant,
    ) -> SeqVerdict {
        let verdict = self.update_seq(seq);
        if verdict != SeqVerdict::Valid {
            return verdict;
        }
        self.bytes = self.bytes.saturating_add(payload_len as u64);
        let elapsed = now.saturating_duration_since(self.epoch);
        // Arrival in timestamp units; only differences matter, mod 2^32.
        let arrival = (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.transit {
            let d = u64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            // J += (|D| - J) / 16 in A.8's fixed point (jitter_q4 = 16 J).
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
        verdict
    }

    /// The extended highest sequence number received (cycles + max).
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected since the stream (re)started.
    pub fn expected(&self) -> u32 {
        self.extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Valid packets received (duplicates included, as in A.3).
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Payload bytes of valid packets.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Cumulative packets lost, clamped to RTCP's signed 24 bits.
    pub fn cumulative_lost(&self) -> i32 {
        let lost = i64::from(self.expected()) - i64::from(self.received);
        lost.clamp(-0x80_0000, 0x7f_ffff) as i32
    }

    /// The interarrival jitter in timestamp units (the RR field).
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4).min(u64::from(u32::MAX)) as u32
    }

    /// The interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        f64::from(self.jitter()) * 1000.0 / f64::from(self.clock_rate)
    }

    /// The fraction lost since the previous call (A.3), as the 8-bit RR
    /// field; starts a new interval.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        }
    }
}

#[cfg(test)]
#[path = "rtp_tests.rs"]
mod tests;
