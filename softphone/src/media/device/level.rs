//! Volumes and mute as MicroSIP applies them in software.
//!
//! MicroSIP (`msip_audio_input_set_volume`, `msip_audio_conf_set_volume`)
//! scales the call's audio by `volume / 100`. For the microphone with
//! `micAmplification` and no hardware mixer, the upper half of the slider
//! boosts: `(50 + (v - 50)^1.7) / 100` above 50, so 100 is about x8.2
//! (+18 dB). We have no hardware mixer, so this is always the path.

/// A linear gain applied to i16 samples with saturation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gain(f32);

impl Gain {
    /// No change.
    pub const UNITY: Gain = Gain(1.0);
    /// Silence.
    pub const MUTE: Gain = Gain(0.0);

    /// An explicit factor (negative or non-finite values become silence).
    pub fn linear(factor: f32) -> Self {
        if factor.is_finite() && factor > 0.0 {
            Gain(factor)
        } else {
            Gain::MUTE
        }
    }

    /// The speaker gain for `volumeOutput` (0-100; out-of-range values are
    /// clamped) and the mute state.
    pub fn output(volume: i64, muted: bool) -> Self {
        if muted {
            return Gain::MUTE;
        }
        Gain::linear(volume.clamp(0, 100) as f32 / 100.0)
    }

    /// The microphone gain for `volumeInput` (0-100), `micAmplification`
    /// and the mute state.
    pub fn input(volume: i64, mic_amplification: bool, muted: bool) -> Self {
        if muted {
            return Gain::MUTE;
        }
        let v = volume.clamp(0, 100) as f32;
        let percent = if mic_amplification && v > 50.0 {
            50.0 + (v - 50.0).powf(1.7)
        } else {
            v
        };
        Gain::linear(percent / 100.0)
    }

    /// The factor.
    pub fn factor(self) -> f32 {
        self.0
    }

    /// Scales `samples` in place, clipping at full scale.
    pub fn apply(self, samples: &mut [i16]) {
        if self == Gain::UNITY {
            return;
        }
        if self == Gain::MUTE {
            samples.fill(0);
            return;
        }
        for s in samples {
            *s = (f32::from(*s) * self.0).round().clamp(-32_768.0, 32_767.0) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsip_volume_curves() {
        assert_eq!(Gain::output(100, false), Gain::UNITY);
        assert_eq!(Gain::output(50, false).factor(), 0.5);
        assert_eq!(Gain::output(50, true), Gain::MUTE);
        assert_eq!(Gain::output(250, false), Gain::UNITY);
        assert_eq!(Gain::output(-3, false), Gain::MUTE);
        assert_eq!(Gain::input(100, false, false), Gain::UNITY);
        assert_eq!(Gain::input(40, true, false).factor(), 0.4);
        assert_eq!(Gain::input(50, true, false).factor(), 0.5);
        let max = Gain::input(100, true, false).factor();
        assert!((max - 8.232).abs() < 0.01, "{max}");
        let mid = Gain::input(60, true, false).factor();
        assert!((mid - (50.0 + 10f32.powf(1.7)) / 100.0).abs() < 1e-5);
        assert_eq!(Gain::input(100, true, true), Gain::MUTE);
    }

    #[test]
    fn apply_scales_and_saturates() {
        let mut s = [1_000, -1_000, 20_000, -20_000, 0];
        Gain::linear(2.0).apply(&mut s);
        assert_eq!(s, [2_000, -2_000, 32_767, -32_768, 0]);
        Gain::linear(0.5).apply(&mut s);
        assert_eq!(s, [1_000, -1_000, 16_384, -16_384, 0]);
        Gain::UNITY.apply(&mut s);
        assert_eq!(s[0], 1_000);
        Gain::MUTE.apply(&mut s);
        assert_eq!(s, [0; 5]);
        assert_eq!(Gain::linear(f32::NAN), Gain::MUTE);
        assert_eq!(Gain::linear(-1.0), Gain::MUTE);
    }
}
