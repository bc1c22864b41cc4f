//! MicroSIP's `VAD`: a simple energy voice-activity detector. A frame is
//! voice when its RMS level is above a threshold; a hangover keeps the
//! flag up briefly after speech so word endings are not cut.

/// Frame level in dBFS under which a frame counts as silence by default:
/// above a quiet room through a typical headset, below soft speech.
pub const DEFAULT_THRESHOLD_DBFS: f32 = -45.0;
/// Frames the voice flag stays up after the last loud frame (200 ms at
/// 20 ms frames).
pub const DEFAULT_HANGOVER_FRAMES: u32 = 10;

/// The RMS level of `frame` in dBFS (-inf dB for digital silence, as
/// `f32::NEG_INFINITY`).
pub fn rms_dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return f32::NEG_INFINITY;
    }
    let energy: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / frame.len() as f64).sqrt() / 32_768.0;
    (20.0 * rms.log10()) as f32
}

/// An energy VAD with hangover.
#[derive(Debug, Clone)]
pub struct Vad {
    threshold_dbfs: f32,
    hangover_frames: u32,
    /// Frames of hangover left.
    hold: u32,
}

impl Default for Vad {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLD_DBFS, DEFAULT_HANGOVER_FRAMES)
    }
}

impl Vad {
    /// A detector with its threshold and hangover.
    pub fn new(threshold_dbfs: f32, hangover_frames: u32) -> Self {
        Self {
            threshold_dbfs,
            hangover_frames,
            hold: 0,
        }
    }

    /// Whether `frame` (the next one of the stream) carries voice; `false`
    /// means it may be suppressed (not sent, or sent as comfort noise).
    pub fn is_voice(&mut self, frame: &[i16]) -> bool {
        if rms_dbfs(frame) >= self.threshold_dbfs {
            self.hold = self.hangover_frames;
            true
        } else if self.hold > 0 {
            self.hold -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::sine;

    #[test]
    fn levels() {
        assert_eq!(rms_dbfs(&[0; 160]), f32::NEG_INFINITY);
        assert_eq!(rms_dbfs(&[]), f32::NEG_INFINITY);
        let full = rms_dbfs(&[i16::MIN; 160]);
        assert!(full.abs() < 0.01, "{full}");
        // A sine's RMS is its peak / sqrt(2): -3 dB below the peak's level.
        let s = rms_dbfs(&sine(1_000.0, 8_000, 16_384.0, 160));
        assert!((s - (-9.03)).abs() < 0.1, "{s}");
    }

    #[test]
    fn silence_is_not_voice_and_a_tone_is_with_hangover() {
        let mut vad = Vad::new(-45.0, 2);
        let silence = [0i16; 160];
        // Background noise at about -60 dBFS.
        let hiss: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { 33 } else { -33 })
            .collect();
        let tone = sine(440.0, 8_000, 3_000.0, 160);
        assert!(!vad.is_voice(&silence));
        assert!(!vad.is_voice(&hiss));
        assert!(vad.is_voice(&tone));
        assert!(vad.is_voice(&silence), "hangover 1");
        assert!(vad.is_voice(&hiss), "hangover 2");
        assert!(!vad.is_voice(&silence));
        let mut strict = Vad::new(-10.0, 0);
        assert!(!strict.is_voice(&tone), "-23.8 dBFS is below -10");
    }
}
