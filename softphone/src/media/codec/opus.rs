//! Opus (RFC 6716, RTP per RFC 7587) through libopus.
//!
//! The `opus` crate wraps libopus; its `opusic-sys` builds libopus 1.6
//! from the bundled source with CMake, for Linux and for the mingw
//! Windows target alike (softphone/Cargo.toml turns off the stack
//! protector and `_FORTIFY_SOURCE` for Windows, whose mingw runtime has no
//! `libssp` to link them against).
//!
//! PCM is mono at 48 kHz: the rtpmap always says `/2` (RFC 7587 §7) but a
//! mono decoder downmixes stereo packets, and our audio path is mono.

use crate::media::AudioCodec;

/// PCM rate and RTP clock (RFC 7587 §4.1: always 48000).
const RATE: u32 = 48_000;
/// 20 ms at 48 kHz.
const FRAME_SAMPLES: usize = 960;
/// The longest Opus packet duration (120 ms at 48 kHz), for the decoder.
const MAX_PACKET_SAMPLES: usize = 5_760;
/// RFC 6716 §3.2.1: a frame is at most 1275 bytes; six frames fit 120 ms.
const MAX_PAYLOAD: usize = 6 * 1_275;
/// Our bit rate when the peer's fmtp asks for none: wideband speech is
/// transparent well below it, and it fits any VoIP uplink.
pub const DEFAULT_BITRATE: i32 = 32_000;

/// The RFC 7587 §6.1 fmtp parameters that steer our encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusParams {
    /// `maxaveragebitrate`, clamped to libopus's 6000..=510000.
    pub bitrate: i32,
    /// `useinbandfec=1`: add in-band FEC (LBRR) for the receiver.
    pub inband_fec: bool,
    /// `usedtx=1`: discontinuous transmission in silence.
    pub dtx: bool,
}

impl Default for OpusParams {
    fn default() -> Self {
        Self {
            bitrate: DEFAULT_BITRATE,
            inband_fec: false,
            dtx: false,
        }
    }
}

impl OpusParams {
    /// Reads an `a=fmtp` value such as
    /// `stereo=1;sprop-stereo=1;maxaveragebitrate=96000`. Unknown or
    /// malformed parameters are ignored (RFC 7587 §6.1: receivers ignore
    /// what they do not understand).
    pub fn from_fmtp(fmtp: Option<&str>) -> Self {
        let mut params = Self::default();
        for pair in fmtp.unwrap_or("").split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case("maxaveragebitrate") {
                if let Ok(bps) = value.parse::<i32>() {
                    params.bitrate = bps.clamp(6_000, 510_000);
                }
            } else if key.eq_ignore_ascii_case("useinbandfec") {
                params.inband_fec = value == "1";
            } else if key.eq_ignore_ascii_case("usedtx") {
                params.dtx = value == "1";
            }
        }
        params
    }
}

/// Why an Opus codec could not be made.
#[derive(Debug, thiserror::Error)]
#[error("libopus: {0}")]
pub struct OpusError(#[from] opus::Error);

/// An Opus encoder and decoder pair for one stream.
pub struct Opus {
    encoder: opus::Encoder,
    decoder: opus::Decoder,
    scratch: Vec<i16>,
    /// The duration of the last decoded packet: concealment covers as much.
    last_packet_samples: usize,
}

impl Opus {
    /// A codec configured by `params`.
    pub fn new(params: &OpusParams) -> Result<Self, OpusError> {
        let mut encoder = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(params.bitrate))?;
        encoder.set_inband_fec(params.inband_fec)?;
        if params.inband_fec {
            // FEC is only spent when the encoder expects some loss.
            encoder.set_packet_loss_perc(5)?;
        }
        encoder.set_dtx(params.dtx)?;
        let decoder = opus::Decoder::new(RATE, opus::Channels::Mono)?;
        Ok(Self {
            encoder,
            decoder,
            scratch: vec![0; MAX_PACKET_SAMPLES],
            last_packet_samples: FRAME_SAMPLES,
        })
    }

    fn decode_into(&mut self, payload: &[u8], out: &mut Vec<i16>, what: &str) {
        match self.decoder.decode(payload, &mut self.scratch, false) {
            Ok(samples) => {
                let samples = samples.min(self.scratch.len());
                out.extend_from_slice(&self.scratch[..samples]);
                if !payload.is_empty() && samples > 0 {
                    self.last_packet_samples = samples;
                }
            }
            Err(error) => tracing::debug!(%error, "Opus {what} failed"),
        }
    }
}

impl AudioCodec for Opus {
    /// Encodes `pcm` as one packet. Opus frames last 2.5 to 120 ms, which
    /// covers every multiple of 20 ms up to 120 ms; other lengths are
    /// refused by libopus and encode to nothing.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + MAX_PAYLOAD, 0);
        match self.encoder.encode(pcm, &mut out[start..]) {
            Ok(written) => out.truncate(start + written),
            Err(error) => {
                tracing::warn!(%error, samples = pcm.len(), "Opus encode failed");
                out.truncate(start);
            }
        }
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        if payload.is_empty() {
            // An empty payload would mean "lost" to libopus; RFC 7587 has
            // no empty packets, so treat it as nothing received.
            return;
        }
        self.decode_into(payload, out, "decode");
    }

    /// libopus's own packet-loss concealment for one packet's duration.
    fn conceal(&mut self, out: &mut Vec<i16>) {
        let samples = self.last_packet_samples.min(MAX_PACKET_SAMPLES);
        match self
            .decoder
            .decode(&[], &mut self.scratch[..samples], false)
        {
            Ok(n) => out.extend_from_slice(&self.scratch[..n.min(samples)]),
            Err(error) => tracing::debug!(%error, "Opus concealment failed"),
        }
    }

    fn clock_rate(&self) -> u32 {
        RATE
    }

    fn sample_rate(&self) -> u32 {
        RATE
    }

    fn frame_samples(&self) -> usize {
        FRAME_SAMPLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::{goertzel, sine, snr_db};

    fn codec(fmtp: Option<&str>) -> Opus {
        match Opus::new(&OpusParams::from_fmtp(fmtp)) {
            Ok(c) => c,
            Err(e) => panic!("libopus refused a valid configuration: {e}"),
        }
    }

    #[test]
    fn fmtp_parameters() {
        let p = OpusParams::from_fmtp(Some(
            "stereo=1; sprop-stereo=1;maxaveragebitrate=96000;useinbandfec=1;usedtx=0;junk",
        ));
        assert_eq!(
            p,
            OpusParams {
                bitrate: 96_000,
                inband_fec: true,
                dtx: false
            }
        );
        assert_eq!(OpusParams::from_fmtp(None), OpusParams::default());
        assert_eq!(
            OpusParams::from_fmtp(Some("maxaveragebitrate=1")).bitrate,
            6_000
        );
        assert_eq!(
            OpusParams::from_fmtp(Some("maxaveragebitrate=x")).bitrate,
            DEFAULT_BITRATE
        );
    }

    #[test]
    fn sine_round_trip_snr_and_packet_sizes() {
        let input = sine(1_000.0, RATE, 10_000.0, RATE as usize * 2);
        let mut codec = codec(Some("maxaveragebitrate=32000"));
        let mut decoded = Vec::new();
        let mut sizes = Vec::new();
        for frame in input.chunks(FRAME_SAMPLES) {
            let mut packet = Vec::new();
            codec.encode(frame, &mut packet);
            sizes.push(packet.len());
            codec.decode(&packet, &mut decoded);
        }
        assert_eq!(decoded.len(), input.len());
        // 32 kbit/s at 20 ms is 80 bytes a packet on average (VBR).
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!(
            (50.0..=110.0).contains(&mean),
            "mean packet {mean:.1} bytes"
        );
        assert!(sizes.iter().all(|&s| s > 2 && s <= 1_275), "{sizes:?}");
        let snr = snr_db(&input, &decoded, 960, 9_600);
        assert!(snr > 12.0, "SNR {snr:.1} dB");
        // The tone is where it was.
        let tail = &decoded[decoded.len() - 9_600..];
        assert!(goertzel(tail, 1_000.0, RATE) > 50.0 * goertzel(tail, 1_500.0, RATE));
    }

    #[test]
    fn bitrate_follows_fmtp() {
        let input = sine(700.0, RATE, 10_000.0, RATE as usize);
        let mean_size = |fmtp: &str| {
            let mut codec = codec(Some(fmtp));
            let total: usize = input
                .chunks(FRAME_SAMPLES)
                .map(|frame| {
                    let mut packet = Vec::new();
                    codec.encode(frame, &mut packet);
                    packet.len()
                })
                .sum();
            total / (input.len() / FRAME_SAMPLES)
        };
        let low = mean_size("maxaveragebitrate=12000");
        let high = mean_size("maxaveragebitrate=96000");
        assert!(low < 45 && high > 2 * low, "12k: {low} B, 96k: {high} B");
    }

    #[test]
    fn longer_ptime_is_one_packet_and_concealment_fills_it() {
        let mut codec = codec(None);
        let pcm = sine(440.0, RATE, 8_000.0, 3 * FRAME_SAMPLES);
        let mut packet = Vec::new();
        codec.encode(&pcm, &mut packet);
        assert!(!packet.is_empty());
        let mut decoded = Vec::new();
        codec.decode(&packet, &mut decoded);
        assert_eq!(decoded.len(), 3 * FRAME_SAMPLES);
        let mut concealed = Vec::new();
        codec.conceal(&mut concealed);
        assert_eq!(concealed.len(), 3 * FRAME_SAMPLES, "PLC covers one packet");
        // An odd length is refused, not a panic.
        let mut bad = Vec::new();
        codec.encode(&pcm[..1_000], &mut bad);
        assert!(bad.is_empty());
    }

    #[test]
    fn hostile_payloads_append_nothing() {
        let mut codec = codec(None);
        let mut out = Vec::new();
        codec.decode(&[], &mut out);
        // TOC byte for code 3 with a frame count of 0: invalid.
        codec.decode(&[0x03, 0x00], &mut out);
        codec.decode(&[0xFF; 3], &mut out);
        assert!(out.is_empty(), "{} samples from garbage", out.len());
    }
}
