//! `softphone::media`: one call's RTP audio stream, sans-IO.
//!
//! Like [`crate::sip`], nothing in here owns a socket, a thread or a
//! clock: [`session::MediaSession`] is fed datagrams and
//! [`std::time::Instant`]s and hands back datagrams to send, the next
//! time it wants to be woken, decoded audio and events. The driver owns
//! the UDP sockets and the audio devices.
//!
//! Layers, bottom up:
//! * [`rtp`]: RFC 3550 packets, the sender's sequence/timestamp state and
//!   the receiver's statistics (A.1 sequence validation, A.8 jitter).
//! * [`rtcp`]: SR/RR/SDES/BYE compound packets and the report interval.
//! * [`jitter`]: the adaptive jitter buffer and playout with concealment.
//! * [`playout`]: jitter buffer → decoder → fixed frames, with PLC.
//! * [`dtmf`]: RFC 4733 telephone-events, sending and receiving.
//! * [`inband`]: in-band DTMF tones and their Goertzel detector.
//! * [`tone`]: sine source, Goertzel power at a frequency, tone SNR.
//! * [`session`]: ties them together for one negotiated stream.

pub mod codec;
pub mod device;
pub mod dtmf;
pub mod inband;
pub mod jitter;
pub mod playout;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod srtp;
pub mod tone;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use session::{
    CodecFactory, FrameKind, MediaSession, MediaStats, SessionError, SessionEvent, SessionOptions,
    Transmit, TransmitKind,
};

/// One audio codec instance (encoder and decoder state for one stream).
///
/// Implemented by `media::codec` (G.711, G.722, Opus). PCM is mono,
/// 16-bit, at [`AudioCodec::sample_rate`]; RTP timestamps count at
/// [`AudioCodec::clock_rate`] (they differ for G.722: 16 kHz audio on an
/// 8 kHz RTP clock, RFC 3551 §4.5.2).
pub trait AudioCodec {
    /// Appends the payload for `pcm` to `out`. The session always passes
    /// a whole number of [`AudioCodec::frame_samples`] (one packet's
    /// worth: the negotiated ptime), to be encoded as one RTP payload.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>);
    /// Appends the PCM decoded from one RTP payload to `out`. Hostile
    /// payloads must not panic; a codec that cannot decode appends
    /// nothing (the session then conceals).
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>);
    /// Appends one frame of packet-loss concealment to `out`. Appending
    /// nothing is allowed: the playout then repeats the last frame with a
    /// fade ([`jitter::Playout`]).
    fn conceal(&mut self, out: &mut Vec<i16>);
    /// The RTP clock rate in Hz.
    fn clock_rate(&self) -> u32;
    /// The PCM sample rate in Hz.
    fn sample_rate(&self) -> u32;
    /// Samples (at [`AudioCodec::sample_rate`]) in one codec frame.
    fn frame_samples(&self) -> usize;
}
