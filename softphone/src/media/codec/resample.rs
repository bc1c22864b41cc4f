//! Sample-rate conversion between an audio device and a codec (e.g. a
//! 48 kHz sound card and 8 kHz G.711).
//!
//! A small polyphase windowed-sinc resampler, hand-written because the
//! candidates did not fit: `audio-codec`'s (already a dependency, for
//! G.722) has 24 taps per output whatever the ratio and lets a 6 kHz tone
//! alias into 48 → 8 kHz at only -20 dB; `rubato` works on fixed-size
//! floating-point chunks over an FFT stack, where a phone needs any chunk
//! size from a device callback, in and out as i16.
//!
//! The ratio is kept as an exact fraction `L/M` (`to/from` reduced), and
//! the read position on the `L`-times upsampled grid is an integer, so the
//! output count is exact (`floor`/`ceil` of `n * to / from`) however the
//! input is chunked: no drift over hours. The prototype low-pass is a sinc
//! cut at 45 % of the lower rate under a Kaiser window (beta 7.9, about
//! 80 dB stop band) spanning 48 periods of the lower rate: flat to
//! ~3.2 kHz for 8 kHz and to ~6.4 kHz for 16 kHz.

/// Why a resampler could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resample from {from} Hz to {to} Hz")]
pub struct ResampleError {
    /// The input rate.
    pub from: u32,
    /// The output rate.
    pub to: u32,
}

/// Filter span in periods of the lower of the two rates.
const SPAN: usize = 48;
/// Kaiser beta for ~80 dB stop-band attenuation.
const KAISER_BETA: f64 = 7.86;
/// Cut-off as a fraction of the lower rate (Nyquist is 0.5).
const CUTOFF: f64 = 0.45;
/// Refuse ratios whose coefficient table would pass this many entries
/// (the standard rates need at most ~21 000).
const MAX_COEFFS: usize = 1 << 20;

/// A streaming mono resampler (interleaved channels are the caller's).
pub struct Resampler {
    from: u32,
    to: u32,
    /// `None` when the rates are equal: samples pass through untouched.
    filter: Option<Filter>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// The polyphase filter and its stream state.
struct Filter {
    /// Upsampling factor `L` (output rate / gcd).
    up: usize,
    /// Downsampling factor `M` (input rate / gcd).
    down: usize,
    /// Input samples each output reads.
    taps: usize,
    /// `up` phases of `taps` coefficients, oldest sample's first.
    coeffs: Vec<f32>,
    /// Recent input, newest last; starts with `taps` zeros.
    history: Vec<f32>,
    /// Next output's position on the upsampled grid, relative to the
    /// newest input sample times `up`.
    phase: usize,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The modified Bessel function I0, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0f64, 1.0f64);
    let quarter_x2 = x * x / 4.0;
    for k in 1..64 {
        term *= quarter_x2 / (k * k) as f64;
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

impl Filter {
    fn new(from: u32, to: u32) -> Option<Self> {
        let g = gcd(u64::from(from), u64::from(to));
        let up = usize::try_from(u64::from(to) / g).ok()?;
        let down = usize::try_from(u64::from(from) / g).ok()?;
        let low = from.min(to);
        // Enough input samples to span SPAN periods of the lower rate.
        let taps = (SPAN * from as usize).div_ceil(low as usize).max(2);
        let len = taps.checked_mul(up)?;
        if len > MAX_COEFFS {
            return None;
        }
        // Prototype at the upsampled rate `from * up`.
        let cutoff = CUTOFF * f64::from(low) / (f64::from(from) * up as f64);
        let center = (len - 1) as f64 / 2.0;
        let i0_beta = bessel_i0(KAISER_BETA);
        let prototype: Vec<f64> = (0..len)
            .map(|m| {
                let x = m as f64 - center;
                let arg = 2.0 * std::f64::consts::PI * cutoff * x;
                let sinc = if x == 0.0 { 1.0 } else { arg.sin() / arg };
                let r = x / center;
                let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
                // Gain `up` makes up for the zeros of the upsampling.
                2.0 * cutoff * sinc * window * up as f64
            })
            .collect();
        // Output on phase p reads input k samples back with h[p + k*up];
        // store each phase oldest first so the dot product runs forward.
        let mut coeffs = vec![0.0f32; len];
        for p in 0..up {
            for k in 0..taps {
                coeffs[p * taps + (taps - 1 - k)] = prototype[p + k * up] as f32;
            }
        }
        Some(Self {
            up,
            down,
            taps,
            coeffs,
            history: vec![0.0; taps],
            phase: 0,
        })
    }

    fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        for &sample in input {
            self.history.push(f32::from(sample));
            let window = &self.history[self.history.len() - self.taps..];
            while self.phase < self.up {
                let c = &self.coeffs[self.phase * self.taps..(self.phase + 1) * self.taps];
                let y: f32 = c.iter().zip(window).map(|(a, b)| a * b).sum();
                out.push(y.round().clamp(-32768.0, 32767.0) as i16);
                self.phase += self.down;
            }
            self.phase -= self.up;
            // Compact now and then rather than shifting on every sample.
            if self.history.len() >= 4 * self.taps {
                self.history.drain(..self.history.len() - self.taps);
            }
        }
    }

    fn reset(&mut self) {
        self.history.clear();
        self.history.resize(self.taps, 0.0);
        self.phase = 0;
    }
}

/// The highest rate we accept, far above any sound card.
const MAX_RATE: u32 = 768_000;

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        if from == 0 || to == 0 || from > MAX_RATE || to > MAX_RATE {
            return Err(ResampleError { from, to });
        }
        let filter = if from == to {
            None
        } else {
            Some(Filter::new(from, to).ok_or(ResampleError { from, to })?)
        };
        Ok(Self { from, to, filter })
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
    /// result to `out`. The filter delays the signal by half its span
    /// (24 periods of the lower rate, 3 ms at 8 kHz).
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match self.filter.as_mut() {
            Some(filter) => filter.process(input, out),
            None => out.extend_from_slice(input),
        }
    }

    /// Forgets the history (after a discontinuity such as a new stream).
    pub fn reset(&mut self) {
        if let Some(filter) = self.filter.as_mut() {
            filter.reset();
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
            (48_000, 8_000, 3_000.0),
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
        // Above 4 kHz, a 48 kHz input would fold back into the 8 kHz band.
        let reference = (12_000.0f64 / 32_768.0).powi(2) / 4.0;
        for (tone, alias_hz) in [(6_000.0, 2_000.0), (4_600.0, 3_400.0)] {
            let input = sine(tone, 48_000, 12_000.0, 48_000);
            let out = resample_all(48_000, 8_000, &input, 960);
            let alias = goertzel(&out[out.len() / 4..], alias_hz, 8_000);
            let db = 10.0 * (alias / reference).log10();
            assert!(db < -60.0, "{tone} Hz aliased at {db:.1} dB");
        }
    }

    #[test]
    fn lengths_are_exact_and_do_not_drift() {
        for (from, to) in [
            (48_000u32, 8_000u32),
            (44_100, 16_000),
            (8_000, 44_100),
            (16_000, 48_000),
        ] {
            let mut r = Resampler::new(from, to).expect("valid rates");
            let mut out = Vec::new();
            let (mut consumed, mut total) = (0u64, 0u64);
            // A minute in odd-sized chunks (the position is integer
            // arithmetic, so a minute shows what an hour would).
            let chunk = vec![0i16; 997];
            while consumed < u64::from(from) * 60 {
                r.process(&chunk, &mut out);
                consumed += chunk.len() as u64;
                total += out.len() as u64;
                out.clear();
            }
            let ideal = consumed as f64 * f64::from(to) / f64::from(from);
            assert!(
                (total as f64 - ideal).abs() <= 1.0,
                "{from}->{to}: {total} vs {ideal}"
            );
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
        // Coprime odd rates would need a huge table.
        assert!(Resampler::new(44_099, 8_000).is_err());
    }
}
