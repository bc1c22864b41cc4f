//! G.711 µ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8).
//!
//! Hand-written rather than taken from a crate: it is a few lines per
//! direction, the one crate that bundles it with the codecs we do use
//! (`audio-codec`) has had non-standard µ-law codes in past releases, and
//! writing it ourselves lets the tests pin it, for every input, to an
//! independent implementation (`audio-codec-algorithms`). The algorithm is
//! the ITU-T G.191 reference (`g711.c`): negative inputs use the one's
//! complement, so both laws are symmetric around zero.

use crate::media::AudioCodec;

/// Samples in one 20 ms frame at 8 kHz (the default ptime, RFC 3551 §4.5).
const FRAME_SAMPLES: usize = 160;
/// PCM rate and RTP clock of both laws.
const RATE: u32 = 8000;

/// µ-law encodes one linear sample (16-bit; the 2 low bits are below
/// µ-law's 14-bit resolution).
pub fn ulaw_encode(x: i16) -> u8 {
    let x = i32::from(x);
    // G.191: magnitude on 14 bits plus the 33 bias, one's complement below 0.
    let absno = if x < 0 {
        ((!x) >> 2) + 33
    } else {
        (x >> 2) + 33
    }
    .min(0x1FFF);
    let mut segment = 1;
    let mut rest = absno >> 6;
    while rest != 0 {
        segment += 1;
        rest >>= 1;
    }
    let high = 8 - segment;
    let low = 0x0F - ((absno >> segment) & 0x0F);
    let code = (high << 4) | low;
    // In range 0..=0x7F by construction, plus the sign bit.
    (if x >= 0 { code | 0x80 } else { code }) as u8
}

/// µ-law decodes one code to a 16-bit linear sample.
pub fn ulaw_decode(code: u8) -> i16 {
    let inverted = !code;
    let exponent = i32::from((inverted >> 4) & 0x07);
    let mantissa = i32::from(inverted & 0x0F);
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    // |magnitude| <= 32124: always fits.
    (if code < 0x80 { -magnitude } else { magnitude }) as i16
}

/// A-law encodes one linear sample (16-bit; the 3 low bits are below
/// A-law's 13-bit resolution).
pub fn alaw_encode(x: i16) -> u8 {
    let x = i32::from(x);
    let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
    if ix > 15 {
        let mut exponent = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            exponent += 1;
        }
        ix -= 16;
        ix += exponent << 4;
    }
    if x >= 0 {
        ix |= 0x80;
    }
    // Even bits inverted (G.711 §A.2); ix <= 0xFF by construction.
    (ix ^ 0x55) as u8
}

/// A-law decodes one code to a 16-bit linear sample.
pub fn alaw_decode(code: u8) -> i16 {
    let ix = i32::from((code ^ 0x55) & 0x7F);
    let exponent = ix >> 4;
    let mut mantissa = ix & 0x0F;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 0x08;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    // |mantissa| <= 32256: always fits.
    (if code > 0x7F { mantissa } else { -mantissa }) as i16
}

/// Which G.711 law a [`G711`] codec speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// µ-law, `PCMU`.
    Mu,
    /// A-law, `PCMA`.
    A,
}

/// A G.711 codec: stateless, 8 kHz, one byte per sample.
#[derive(Debug, Clone)]
pub struct G711 {
    law: Law,
}

impl G711 {
    /// A codec for `law`.
    pub fn new(law: Law) -> Self {
        Self { law }
    }

    /// The law this codec speaks.
    pub fn law(&self) -> Law {
        self.law
    }
}

impl AudioCodec for G711 {
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        let encode = match self.law {
            Law::Mu => ulaw_encode,
            Law::A => alaw_encode,
        };
        out.extend(pcm.iter().map(|&s| encode(s)));
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        let decode = match self.law {
            Law::Mu => ulaw_decode,
            Law::A => alaw_decode,
        };
        out.extend(payload.iter().map(|&c| decode(c)));
    }

    /// G.711 has no concealment of its own: appending nothing lets the
    /// playout repeat the last frame with a fade, which is what G.711
    /// Appendix I's simplest form amounts to.
    fn conceal(&mut self, _out: &mut Vec<i16>) {}

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

    #[test]
    fn ulaw_matches_the_oracle_for_every_input() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(
                ulaw_encode(x),
                audio_codec_algorithms::encode_ulaw(x),
                "µ-law encode of {x}"
            );
        }
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_decode(code),
                audio_codec_algorithms::decode_ulaw(code),
                "µ-law decode of {code:#04x}"
            );
        }
    }

    #[test]
    fn alaw_matches_the_oracle_for_every_input() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(
                alaw_encode(x),
                audio_codec_algorithms::encode_alaw(x),
                "A-law encode of {x}"
            );
        }
        for code in 0..=255u8 {
            assert_eq!(
                alaw_decode(code),
                audio_codec_algorithms::decode_alaw(code),
                "A-law decode of {code:#04x}"
            );
        }
    }

    #[test]
    fn known_table_values() {
        // G.711 Tables 1a/2a: the idle codes and the extremes.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
    }

    #[test]
    fn decode_then_encode_is_the_identity_on_codes() {
        for code in 0..=255u8 {
            // µ-law has two zeros (0x7F and 0xFF); both decode to 0, which
            // encodes as the positive one.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(ulaw_encode(ulaw_decode(code)), expected, "µ {code:#04x}");
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A {code:#04x}");
        }
    }

    #[test]
    fn codec_round_trip_frame() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 397) % 20000 - 10000) as i16)
            .collect();
        for law in [Law::Mu, Law::A] {
            let mut codec = G711::new(law);
            let mut payload = vec![0xEE];
            codec.encode(&pcm, &mut payload);
            // Appends after what was there.
            assert_eq!(payload.len(), 161);
            assert_eq!(payload[0], 0xEE);
            let mut decoded = Vec::new();
            codec.decode(&payload[1..], &mut decoded);
            assert_eq!(decoded.len(), 160);
            for (a, b) in pcm.iter().zip(&decoded) {
                // Worst-case G.711 quantisation error in the top segment.
                assert!(
                    (i32::from(*a) - i32::from(*b)).abs() <= 1024,
                    "{law:?} {a} {b}"
                );
            }
            assert_eq!((codec.clock_rate(), codec.sample_rate()), (8000, 8000));
            assert_eq!(codec.frame_samples(), 160);
        }
    }
}
