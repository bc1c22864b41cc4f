//! Tones and tone measurement: a sine source, Goertzel power at one
//! frequency and a tone's SNR (used by tests to check received audio).

/// A 16-bit full-scale sine is +3.14 dBm0 (ITU-T G.711: the digital
/// milliwatt is 3.14 dB below a full-scale sine). Written as a sum so
/// clippy does not take it for an approximation of π.
const FULL_SCALE_DBM0: f64 = 3.0 + 0.14;

/// The peak amplitude of a sine at `dbm0` in 16-bit PCM.
pub fn dbm0_to_peak(dbm0: f64) -> f64 {
    32767.0 * 10f64.powf((dbm0 - FULL_SCALE_DBM0) / 20.0)
}

/// A phase-continuous sine generator.
#[derive(Debug, Clone)]
pub struct SineSource {
    phase: f64,
    step: f64,
    amplitude: f64,
}

impl SineSource {
    /// A sine of `hz` at `sample_rate` with peak `amplitude` (16-bit
    /// units, clamped to full scale).
    pub fn new(hz: f64, sample_rate: u32, amplitude: f64) -> Self {
        Self {
            phase: 0.0,
            step: std::f64::consts::TAU * hz / f64::from(sample_rate.max(1)),
            amplitude: amplitude.clamp(0.0, 32767.0),
        }
    }

    /// The next sample as a float (for mixing).
    pub fn next_f64(&mut self) -> f64 {
        let v = self.amplitude * self.phase.sin();
        self.phase = (self.phase + self.step) % std::f64::consts::TAU;
        v
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = self.next_f64().round() as i16;
        }
    }

    /// The next `n` samples.
    pub fn frame(&mut self, n: usize) -> Vec<i16> {
        let mut out = vec![0; n];
        self.fill(&mut out);
        out
    }
}

/// Goertzel: the mean power of `pcm` at `hz`, normalised so that a sine
/// of peak `A` at exactly `hz` measures `A²/2` (its mean power), whatever
/// the length. Works for any frequency, not only bin centres.
pub fn frequency_power(pcm: &[i16], sample_rate: u32, hz: f64) -> f64 {
    if pcm.is_empty() || sample_rate == 0 {
        return 0.0;
    }
    let w = std::f64::consts::TAU * hz / f64::from(sample_rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = pcm.len() as f64;
    2.0 * power / (n * n)
}

/// The mean power (mean square) of `pcm`.
pub fn total_power(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    pcm.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / pcm.len() as f64
}

/// The tone at `hz` against everything else in `pcm`, in dB. Infinite
/// for a pure tone; very negative when the tone is absent.
pub fn tone_snr_db(pcm: &[i16], sample_rate: u32, hz: f64) -> f64 {
    let tone = frequency_power(pcm, sample_rate, hz);
    let rest = (total_power(pcm) - tone).max(1e-9);
    10.0 * (tone.max(1e-9) / rest).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_power_is_half_amplitude_squared() {
        let pcm = SineSource::new(1000.0, 8000, 10000.0).frame(8000);
        let p = frequency_power(&pcm, 8000, 1000.0);
        assert!((p / 5.0e7 - 1.0).abs() < 0.01, "power {p}");
        assert!(frequency_power(&pcm, 8000, 1500.0) < p / 1000.0);
        assert!(tone_snr_db(&pcm, 8000, 1000.0) > 40.0);
        assert!(tone_snr_db(&pcm, 8000, 400.0) < -20.0);
    }

    #[test]
    fn off_bin_frequency_is_measured() {
        // 697 Hz over 205 samples is not a bin centre.
        let pcm = SineSource::new(697.0, 8000, 8000.0).frame(205);
        let p = frequency_power(&pcm, 8000, 697.0);
        assert!((p / 3.2e7 - 1.0).abs() < 0.05, "power {p}");
    }

    #[test]
    fn dbm0_scale() {
        assert!((dbm0_to_peak(FULL_SCALE_DBM0) - 32767.0).abs() < 1e-6);
        let p = dbm0_to_peak(-10.0);
        assert!(p > 7000.0 && p < 7300.0, "{p}");
    }

    #[test]
    fn empty_input_is_silent() {
        assert_eq!(frequency_power(&[], 8000, 1000.0), 0.0);
        assert_eq!(total_power(&[]), 0.0);
    }
}
