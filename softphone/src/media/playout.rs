//! Playout: jitter buffer → decoder → fixed-size PCM frames, with packet
//! loss concealment.
//!
//! Each missing frame is concealed by the codec's own PLC when it has one,
//! else by repeating the last good frame with a fade (×0.7 per frame, so
//! the repeat decays instead of buzzing). After [`MAX_CONCEAL`] frames in
//! a row the output is silence: past ~100 ms a guess sounds worse than a
//! gap.

use std::collections::VecDeque;
use std::time::Instant;

use super::jitter::{JitterBuffer, JitterStats, Pop};
use super::AudioCodec;

/// Consecutive concealed frames before falling silent.
pub const MAX_CONCEAL: u32 = 5;
const FADE: f32 = 0.7;

/// What a pulled frame is made of (the worst part wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FrameKind {
    /// Decoded from received packets.
    Decoded,
    /// At least partly concealment.
    Concealed,
    /// At least partly silence (nothing to play, or concealment gave up).
    Silence,
}

/// Frame counters of the playout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlayoutStats {
    /// Packets decoded.
    pub decoded: u64,
    /// Frames concealed (codec PLC or fade).
    pub concealed: u64,
    /// Frames of silence while a stream was expected.
    pub silent: u64,
    /// Packets whose payload type has no decoder at the playout rate.
    pub undecodable: u64,
}

/// A decoder bound to its payload type.
pub struct Decoder {
    /// The payload type it decodes.
    pub payload_type: u8,
    /// The codec instance.
    pub codec: Box<dyn AudioCodec + Send>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("payload_type", &self.payload_type)
            .finish_non_exhaustive()
    }
}

/// The receive side of a stream, from packets to PCM.
#[derive(Debug)]
pub struct Playout {
    buffer: JitterBuffer,
    decoders: Vec<Decoder>,
    sample_rate: u32,
    current: Option<usize>,
    fifo: VecDeque<i16>,
    fifo_kind: FrameKind,
    last_frame: Vec<i16>,
    conceal_run: u32,
    scratch: Vec<i16>,
    stats: PlayoutStats,
}

impl Playout {
    /// Playout at `sample_rate` with these decoders; packets of other
    /// rates are counted as undecodable (resampling belongs to the codec
    /// layer).
    pub fn new(buffer: JitterBuffer, decoders: Vec<Decoder>, sample_rate: u32) -> Self {
        Self {
            buffer,
            decoders,
            sample_rate,
            current: None,
            fifo: VecDeque::new(),
            fifo_kind: FrameKind::Decoded,
            last_frame: Vec::new(),
            conceal_run: 0,
            scratch: Vec::new(),
            stats: PlayoutStats::default(),
        }
    }

    /// The jitter buffer (to insert packets).
    pub fn buffer_mut(&mut self) -> &mut JitterBuffer {
        &mut self.buffer
    }

    /// The jitter buffer.
    pub fn buffer(&self) -> &JitterBuffer {
        &self.buffer
    }

    /// Whether a payload type has a decoder.
    pub fn decodes(&self, payload_type: u8) -> bool {
        self.decoders.iter().any(|d| d.payload_type == payload_type)
    }

    /// The PCM rate of pulled frames.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Frame counters.
    pub fn stats(&self) -> PlayoutStats {
        self.stats
    }

    /// Jitter buffer counters.
    pub fn jitter_stats(&self) -> JitterStats {
        self.buffer.stats()
    }

    /// Drops buffered audio (new source).
    pub fn reset(&mut self) {
        self.buffer.reset();
        self.fifo.clear();
        self.conceal_run = 0;
    }

    /// Appends exactly `samples` PCM samples to `out`.
    pub fn pull(&mut self, now: Instant, samples: usize, out: &mut Vec<i16>) -> FrameKind {
        while self.fifo.len() < samples {
            let needed = samples - self.fifo.len();
            match self.buffer.pop(now) {
                Pop::Packet(entry) => self.decode(entry.payload_type, &entry.payload, needed),
                Pop::Lost | Pop::Underrun => self.conceal(needed),
                Pop::Empty => {
                    self.fifo.extend(std::iter::repeat_n(0, needed));
                    self.last_frame.clear();
                    self.fifo_kind = self.fifo_kind.max(FrameKind::Silence);
                }
            }
        }
        out.extend(self.fifo.drain(..samples));
        let kind = self.fifo_kind;
        if self.fifo.is_empty() {
            self.fifo_kind = FrameKind::Decoded;
        }
        kind
    }

    fn decode(&mut self, payload_type: u8, payload: &[u8], needed: usize) {
        let index = self.decoders.iter().position(|d| {
            d.payload_type == payload_type && d.codec.sample_rate() == self.sample_rate
        });
        let Some(index) = index else {
            self.stats.undecodable += 1;
            return self.conceal(needed);
        };
        self.current = Some(index);
        self.scratch.clear();
        if let Some(decoder) = self.decoders.get_mut(index) {
            decoder.codec.decode(payload, &mut self.scratch);
        }
        if self.scratch.is_empty() {
            return self.conceal(needed);
        }
        self.stats.decoded += 1;
        self.conceal_run = 0;
        self.fifo.extend(self.scratch.iter().copied());
        std::mem::swap(&mut self.last_frame, &mut self.scratch);
    }

    fn conceal(&mut self, needed: usize) {
        self.conceal_run += 1;
        let frame_len = self.frame_len(needed);
        if self.conceal_run > MAX_CONCEAL || self.last_frame.is_empty() {
            self.stats.silent += 1;
            self.fifo.extend(std::iter::repeat_n(0, frame_len));
            self.fifo_kind = self.fifo_kind.max(FrameKind::Silence);
            return;
        }
        self.stats.concealed += 1;
        self.fifo_kind = self.fifo_kind.max(FrameKind::Concealed);
        self.scratch.clear();
        if let Some(decoder) = self.current.and_then(|i| self.decoders.get_mut(i)) {
            decoder.codec.conceal(&mut self.scratch);
        }
        if !self.scratch.is_empty() {
            self.fifo.extend(self.scratch.iter().copied());
            return;
        }
        // No codec PLC: repeat the last frame, fading a little more each
        // time (the stored frame is faded in place).
        for s in self.last_frame.iter_mut() {
            *s = (f32::from(*s) * FADE) as i16;
        }
        self.fifo.extend(self.last_frame.iter().copied());
    }

    fn frame_len(&self, needed: usize) -> usize {
        let from_codec = self
            .current
            .and_then(|i| self.decoders.get(i))
            .map(|d| d.codec.frame_samples());
        let len = if self.last_frame.is_empty() {
            from_codec.unwrap_or(needed)
        } else {
            self.last_frame.len()
        };
        len.max(1)
    }
}

#[cfg(test)]
#[path = "playout_tests.rs"]
mod tests;
