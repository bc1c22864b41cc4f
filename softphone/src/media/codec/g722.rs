//! G.722 at 64 kbit/s (payload type 9): 16 kHz audio on an 8 kHz RTP
//! clock (RFC 3551 §4.5.2 keeps the clock at 8000 for historical reasons).
//!
//! The sub-band ADPCM itself comes from `audio-codec` (restsend, MIT, pure
//! Rust: a port of the widely used spandsp/libg722 code that follows the
//! ITU-T G.722 blocks). It builds for Windows with no C toolchain. We only
//! adapt it to [`AudioCodec`] and test its quality.

use audio_codec::g722::{G722Decoder, G722Encoder};
use audio_codec::{Decoder as _, Encoder as _};

use crate::media::AudioCodec;

/// PCM rate: G.722 is wideband.
const SAMPLE_RATE: u32 = 16_000;
/// RTP clock rate (RFC 3551 §4.5.2).
const CLOCK_RATE: u32 = 8_000;
/// 20 ms at 16 kHz.
const FRAME_SAMPLES: usize = 320;

/// A G.722 encoder and decoder pair for one stream.
pub struct G722 {
    encoder: G722Encoder,
    decoder: G722Decoder,
}

impl G722 {
    /// A fresh codec (64 kbit/s, unpacked: one octet per two samples).
    pub fn new() -> Self {
        Self {
            encoder: G722Encoder::new(),
            decoder: G722Decoder::new(),
        }
    }
}

impl Default for G722 {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioCodec for G722 {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.encoder.max_encode_bytes(pcm.len()), 0);
        match self.encoder.encode_into(pcm, &mut out[start..]) {
            Ok(written) => out.truncate(start + written),
            Err(error) => {
                // Only a too-small buffer can fail, and we sized it above.
                tracing::warn!(%error, "G.722 encode failed");
                out.truncate(start);
            }
        }
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        let start = out.len();
        out.resize(start + self.decoder.max_decode_samples(payload.len()), 0);
        match self.decoder.decode_into(payload, &mut out[start..]) {
            Ok(written) => out.truncate(start + written),
            Err(error) => {
                tracing::debug!(%error, "G.722 decode failed");
                out.truncate(start);
            }
        }
    }

    /// No concealment of its own (G.722 Appendix III is not implemented by
    /// the crate): the playout repeats the last frame with a fade.
    fn conceal(&mut self, _out: &mut Vec<i16>) {}

    fn clock_rate(&self) -> u32 {
        CLOCK_RATE
    }

    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    fn frame_samples(&self) -> usize {
        FRAME_SAMPLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::{sine, snr_db};

    fn round_trip(input: &[i16]) -> (Vec<u8>, Vec<i16>) {
        let mut codec = G722::new();
        let mut payload = Vec::new();
        let mut decoded = Vec::new();
        for frame in input.chunks(FRAME_SAMPLES) {
            let mut packet = Vec::new();
            codec.encode(frame, &mut packet);
            assert_eq!(packet.len(), frame.len() / 2, "one octet per sample pair");
            codec.decode(&packet, &mut decoded);
            payload.extend(packet);
        }
        (payload, decoded)
    }

    #[test]
    fn sine_survives_with_high_snr() {
        for hz in [440.0, 1000.0, 3000.0, 6000.0] {
            let input = sine(hz, SAMPLE_RATE, 12_000.0, 16_000);
            let (payload, decoded) = round_trip(&input);
            assert_eq!(payload.len(), 8_000, "64 kbit/s for one second");
            assert_eq!(decoded.len(), input.len());
            let snr = snr_db(&input, &decoded, 64, 1_600);
            assert!(snr > 20.0, "{hz} Hz: SNR {snr:.1} dB");
        }
    }

    #[test]
    fn silence_stays_quiet_and_garbage_does_not_panic() {
        let (_, decoded) = round_trip(&vec![0; 3_200]);
        let peak = decoded[320..]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        assert!(peak < 64, "idle noise peak {peak}");
        let mut codec = G722::new();
        let mut out = Vec::new();
        let garbage: Vec<u8> = (0..=255).collect();
        codec.decode(&garbage, &mut out);
        assert_eq!(out.len(), 512);
    }

    #[test]
    fn rates() {
        let codec = G722::new();
        assert_eq!(codec.clock_rate(), 8_000);
        assert_eq!(codec.sample_rate(), 16_000);
        assert_eq!(codec.frame_samples(), 320);
    }
}
