//! Sample-rate conversion between an audio device and a codec (e.g. a
//! 48 kHz sound card and 8 kHz G.711).
//!
//! The filter is `audio-codec`'s polyphase FIR (Kaiser window, 256 phases
//! of 24 taps, cut-off at the lower Nyquist): telephone quality with a few
//! multiply-adds per sample. It keeps its read position on an integer grid,
//! so output counts never drift however the input is chunked. We already
//! depend on that crate for G.722; `rubato` would add an FFT stack for
//! quality a phone call cannot use.

use audio_codec::resampler::BoxedResampler;

/// Why a resampler could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resample from {from} Hz to {to} Hz")]
pub struct ResampleError {
    /// The input rate.
    pub from: u32,
    /// The output rate.
    pub to: u32,
}

/// A streaming mono resampler (interleaved channels are the caller's).
pub struct Resampler {
    from: u32,
    to: u32,
    /// `None` when the rates are equal: samples pass through untouched.
    inner: Option<BoxedResampler>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// The highest rate we accept, far above any sound card: keeps the
/// filter's integer grid (`rate * 256` phases) clear of overflow.
const MAX_RATE: u32 = 768_000;

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        let error = ResampleError { from, to };
        if from == 0 || to == 0 || from > MAX_RATE || to > MAX_RATE {
            return Err(error);
        }
        let inner = if from == to {
            None
        } else {
            Some(BoxedResampler::new(from as usize, to as usize).map_err(|_| error)?)
        };
        Ok(Self { from, to, inner })
    }

    /// The input rate.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// The output rate.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Resamples `input` (the next samples of the stream) and appends the
    /// result to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return;
        };
        let start = out.len();
        out.resize(start + inner.max_output_samples(input.len()), 0);
        match inner.resample_into(input, &mut out[start..]) {
            Ok(written) => out.truncate(start + written),
            Err(error) => {
                // Only a too-small buffer fails, and we sized it above.
                tracing::warn!(%error, "resampling failed");
                out.truncate(start);
            }
        }
    }

    /// Forgets the history (after a discontinuity such as a new stream).
    pub fn reset(&mut self) {
        if let Some(inner) = self.inner.as_mut() {
            inner.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::{goertzel, sine};

    fn resample_all(from: u32, to: u32, input: &[i16], chunk: usize) -> Vec<i16> {
        let mut r = Resampler::new(from, to).expect("valid rates");
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            r.process(c, &mut out);
        }
        out
    }

    #[test]
    fn frequency_is_preserved() {
        for (from, to, hz) in [
            (48_000, 8_000, 1_000.0),
            (8_000, 48_000, 1_000.0),
            (44_100, 16_000, 3_000.0),
            (16_000, 44_100, 5_000.0),
            (48_000, 16_000, 440.0),
        ] {
            let input = sine(hz, from, 12_000.0, from as usize);
            let out = resample_all(from, to, &input, 441);
            let steady = &out[out.len() / 4..];
            let on = goertzel(steady, hz, to);
            // Amplitude kept within 1 dB (a²/4 with a = 12000/32768).
            let expected = (12_000.0f64 / 32_768.0).powi(2) / 4.0;
            assert!(
                (on / expected - 1.0).abs() < 0.26,
                "{from}->{to} {hz} Hz: power ratio {:.3}",
                on / expected
            );
            for off in [hz * 0.5, hz * 1.5, hz * 2.0] {
                if off < f64::from(to) / 2.0 {
                    let p = goertzel(steady, off, to);
                    assert!(on > 1_000.0 * p, "{from}->{to}: {off} Hz leaked");
                }
            }
        }
    }

    #[test]
    fn out_of_band_input_is_filtered_not_aliased() {
        // 6 kHz at 48 kHz would alias to 2 kHz at 8 kHz.
        let input = sine(6_000.0, 48_000, 12_000.0, 48_000);
        let out = resample_all(48_000, 8_000, &input, 960);
        let steady = &out[out.len() / 4..];
        let reference = (12_000.0f64 / 32_768.0).powi(2) / 4.0;
        let alias = goertzel(steady, 2_000.0, 8_000);
        assert!(alias < reference / 1_000.0, "alias at {:.1} dB", 10.0 * (alias / reference).log10());
    }

    #[test]
    fn lengths_are_exact_and_do_not_drift() {
        for (from, to) in [(48_000u32, 8_000u32), (44_100, 16_000), (8_000, 44_100), (16_000, 48_000)] {
            let mut r = Resampler::new(from, to).expect("valid rates");
            let mut out = Vec::new();
            let (mut consumed, mut total) = (0u64, 0u64);
            // Ten minutes in odd-sized chunks.
            let chunk = vec![0i16; 997];
            while consumed < u64::from(from) * 600 {
                r.process(&chunk, &mut out);
                consumed += chunk.len() as u64;
                total += out.len() as u64;
                out.clear();
            }
            let ideal = consumed as f64 * f64::from(to) / f64::from(from);
            assert!((total as f64 - ideal).abs() <= 1.0, "{from}->{to}: {total} vs {ideal}");
        }
        // Whole 20 ms frames give whole frames every time.
        let mut r = Resampler::new(48_000, 8_000).expect("valid rates");
        for _ in 0..1_000 {
            let mut out = Vec::new();
            r.process(&[0; 960], &mut out);
            assert_eq!(out.len(), 160);
        }
    }

    #[test]
    fn equal_rates_pass_through_and_bad_rates_fail() {
        let input = sine(1_000.0, 16_000, 9_000.0, 500);
        assert_eq!(resample_all(16_000, 16_000, &input, 7), input);
        assert!(Resampler::new(0, 8_000).is_err());
        assert!(Resampler::new(8_000, 0).is_err());
        assert!(Resampler::new(8_000, 10_000_000).is_err());
    }
}
