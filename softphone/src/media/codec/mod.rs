//! The audio codecs behind [`AudioCodec`], and the resampler that bridges
//! a device's rate and a codec's.
//!
//! * [`g711`]: PCMU and PCMA, hand-written (G.191 reference algorithm).
//! * [`g722`]: G.722 at 64 kbit/s, from the pure Rust `audio-codec` crate.
//! * [`opus`]: Opus through libopus, built from source by `opusic-sys`.
//! * [`resample`]: streaming polyphase resampling, drift-free.
//!
//! [`for_negotiated`] (a [`crate::media::CodecFactory`]) and
//! [`for_payload`] build the codec signalling negotiated.

pub mod g711;
pub mod g722;
pub mod opus;
pub mod resample;

#[cfg(test)]
pub(crate) mod testutil;

pub use g711::{Law, G711};
pub use g722::G722;
pub use opus::{Opus, OpusParams};
pub use resample::{ResampleError, Resampler};

use crate::media::AudioCodec;
use crate::sip::sdp::{Codec, PayloadCodec};

/// A codec instance for an SDP format, or `None` when we cannot encode
/// it (e.g. G.729, or an Opus library failure, which is logged). The
/// encoder follows `codec.fmtp`; for a negotiated stream, where the
/// peer's fmtp is what matters, use [`for_negotiated`].
///
/// Matching is by encoding name (case-insensitive, RFC 4855 §3), clock
/// rate and channels. G.722 is accepted at 8000 (RFC 3551) and at 16000
/// (what some peers write). Opus is always `opus/48000/2` in SDP (RFC 7587
/// §7), but `/1` is tolerated; the fmtp's `maxaveragebitrate`,
/// `useinbandfec` and `usedtx` configure the encoder. MicroSIP's
/// `opusStereo` asks for `stereo=1;maxaveragebitrate=96000`: our audio path
/// is mono, so only the bit rate applies to what we send.
pub fn for_payload(codec: &Codec) -> Option<Box<dyn AudioCodec + Send>> {
    build(codec, codec.fmtp.as_deref())
}

/// The codec for a negotiated payload, its encoder configured by the
/// peer's `a=fmtp` (RFC 7587 §6.1: `maxaveragebitrate` and the like say
/// what the *receiver* wants). Fits [`crate::media::CodecFactory`].
pub fn for_negotiated(payload: &PayloadCodec) -> Option<Box<dyn AudioCodec + Send>> {
    build(&payload.codec, payload.remote_fmtp.as_deref())
}

fn build(codec: &Codec, encoder_fmtp: Option<&str>) -> Option<Box<dyn AudioCodec + Send>> {
    let name = codec.encoding.as_str();
    let (clock, channels) = (codec.clock_rate, codec.channels);
    if name.eq_ignore_ascii_case("PCMU") && clock == 8_000 && channels == 1 {
        Some(Box::new(G711::new(Law::Mu)))
    } else if name.eq_ignore_ascii_case("PCMA") && clock == 8_000 && channels == 1 {
        Some(Box::new(G711::new(Law::A)))
    } else if name.eq_ignore_ascii_case("G722") && matches!(clock, 8_000 | 16_000) && channels == 1
    {
        Some(Box::new(G722::new()))
    } else if name.eq_ignore_ascii_case("opus") && clock == 48_000 && matches!(channels, 1 | 2) {
        match Opus::new(&OpusParams::from_fmtp(encoder_fmtp)) {
            Ok(opus) => Some(Box::new(opus)),
            Err(error) => {
                tracing::warn!(%error, "cannot create an Opus codec");
                None
            }
        }
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::sdp::{codecs_from_microsip, static_codec};

    fn sdp(encoding: &str, clock_rate: u32, channels: u8, fmtp: Option<&str>) -> Codec {
        Codec {
            encoding: encoding.to_string(),
            clock_rate,
            channels,
            static_pt: None,
            fmtp: fmtp.map(str::to_string),
        }
    }

    fn rates(codec: &Codec) -> Option<(u32, u32, usize)> {
        for_payload(codec).map(|c| (c.clock_rate(), c.sample_rate(), c.frame_samples()))
    }

    #[test]
    fn factory_covers_microsip_ids() {
        let ids = [
            "opus/48000/2",
            "G722/16000/1",
            "PCMU/8000/1",
            "PCMA/8000/1",
            "G729/8000/1",
        ];
        let (codecs, skipped) = codecs_from_microsip(&ids, true);
        assert!(skipped.is_empty());
        let got: Vec<_> = codecs.iter().map(rates).collect();
        assert_eq!(
            got,
            [
                Some((48_000, 48_000, 960)),
                Some((8_000, 16_000, 320)),
                Some((8_000, 8_000, 160)),
                Some((8_000, 8_000, 160)),
                None,
            ]
        );
    }

    #[test]
    fn factory_matches_name_clock_and_channels() {
        assert!(static_codec(0).as_ref().and_then(rates).is_some());
        assert!(static_codec(9).as_ref().and_then(rates).is_some());
        assert!(rates(&sdp("pcmu", 8_000, 1, None)).is_some());
        assert!(rates(&sdp("G722", 16_000, 1, None)).is_some());
        assert!(rates(&sdp("OPUS", 48_000, 2, Some("stereo=1"))).is_some());
        assert!(rates(&sdp("PCMU", 16_000, 1, None)).is_none());
        assert!(rates(&sdp("PCMA", 8_000, 2, None)).is_none());
        assert!(rates(&sdp("opus", 16_000, 2, None)).is_none());
        assert!(rates(&sdp("telephone-event", 8_000, 1, None)).is_none());
        assert!(rates(&sdp("G729", 8_000, 1, None)).is_none());
    }

    #[test]
    fn negotiated_factory_fits_the_session() {
        let factory: &crate::media::CodecFactory = &for_negotiated;
        let payload = PayloadCodec {
            pt: 111,
            codec: sdp("opus", 48_000, 2, Some("useinbandfec=1")),
            remote_fmtp: Some("maxaveragebitrate=12000".into()),
        };
        let mut c = factory(&payload).expect("opus");
        // The peer's 12 kbit/s cap governs what we send: about 30 bytes.
        let pcm = testutil::sine(500.0, 48_000, 8_000.0, 960 * 50);
        let mut total = 0;
        for frame in pcm.chunks(960) {
            let mut packet = Vec::new();
            c.encode(frame, &mut packet);
            total += packet.len();
        }
        assert!(total / 50 < 45, "mean {} bytes", total / 50);
        let pcmu = PayloadCodec {
            pt: 0,
            codec: sdp("PCMU", 8_000, 1, None),
            remote_fmtp: None,
        };
        assert!(factory(&pcmu).is_some());
    }

    #[test]
    fn factory_codecs_round_trip_a_frame() {
        for codec in [
            sdp("PCMU", 8_000, 1, None),
            sdp("G722", 8_000, 1, None),
            sdp("opus", 48_000, 2, None),
        ] {
            let mut c = for_payload(&codec).expect("supported");
            let pcm = testutil::sine(800.0, c.sample_rate(), 8_000.0, c.frame_samples());
            let mut payload = Vec::new();
            c.encode(&pcm, &mut payload);
            assert!(!payload.is_empty(), "{}", codec.encoding);
            let mut decoded = Vec::new();
            c.decode(&payload, &mut decoded);
            assert_eq!(decoded.len(), c.frame_samples(), "{}", codec.encoding);
        }
    }
}
