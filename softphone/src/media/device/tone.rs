//! `tone:HZ`: a sine as the microphone (tests, line checks).

use super::pacer::Pacer;
use super::{AudioFormat, AudioInput, DeviceError, Pacing};

/// The tone's peak: -6 dBFS, loud and clear of clipping.
const AMPLITUDE: f64 = 16_384.0;

/// A sine generator with a continuous phase across frames.
#[derive(Debug)]
pub struct ToneSource {
    format: AudioFormat,
    /// Phase advance per sample, in cycles.
    step: f64,
    /// Current phase in cycles, in [0, 1).
    phase: f64,
    pacer: Pacer,
}

impl ToneSource {
    /// A sine at `hz`, which must be below half the sample rate.
    pub fn new(hz: f64, format: AudioFormat, pacing: Pacing) -> Result<Self, DeviceError> {
        let format = format.validate()?;
        if !(hz > 0.0 && hz < f64::from(format.sample_rate) / 2.0) {
            return Err(DeviceError::InvalidSpec {
                value: format!("tone:{hz}"),
                reason: format!(
                    "the frequency must be below half the sample rate ({} Hz)",
                    format.sample_rate
                ),
            });
        }
        Ok(Self {
            format,
            step: hz / f64::from(format.sample_rate),
            phase: 0.0,
            pacer: Pacer::new(pacing, format.sample_rate),
        })
    }

    fn advance(&mut self, frames: u64) {
        self.phase = (self.phase + self.step * frames as f64).fract();
    }
}

impl AudioInput for ToneSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, DeviceError> {
        let channels = usize::from(self.format.channels);
        let Some(skip) = self.pacer.take(frame.len() / channels) else {
            return Ok(false);
        };
        self.advance(skip);
        for group in frame.chunks_mut(channels) {
            let s = (AMPLITUDE * (2.0 * std::f64::consts::PI * self.phase).sin()).round() as i16;
            group.fill(s);
            self.advance(1);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::goertzel;

    #[test]
    fn tone_has_its_frequency_across_frames() {
        let mut t =
            ToneSource::new(1_000.0, AudioFormat::mono(8_000), Pacing::Unpaced).expect("valid");
        let mut all = Vec::new();
        let mut frame = [0i16; 160];
        for _ in 0..50 {
            assert!(t.read_frame(&mut frame).expect("reads"));
            all.extend_from_slice(&frame);
        }
        let on = goertzel(&all, 1_000.0, 8_000);
        assert!((on - 0.0625).abs() < 0.002, "power {on}");
        for off in [500.0, 1_100.0, 2_000.0] {
            assert!(goertzel(&all, off, 8_000) < on / 10_000.0, "{off} Hz");
        }
        let peak = all.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((16_300..=16_384).contains(&peak), "peak {peak}");
    }

    #[test]
    fn stereo_frames_repeat_the_sample_and_bad_frequencies_fail() {
        let format = AudioFormat {
            sample_rate: 16_000,
            channels: 2,
        };
        let mut t = ToneSource::new(440.0, format, Pacing::Unpaced).expect("valid");
        let mut frame = [0i16; 640];
        assert!(t.read_frame(&mut frame).expect("reads"));
        assert!(frame.chunks_exact(2).all(|g| g[0] == g[1]));
        assert!(ToneSource::new(4_000.0, AudioFormat::mono(8_000), Pacing::Unpaced).is_err());
    }

    #[test]
    fn real_time_tone_waits_for_the_clock() {
        let mut t =
            ToneSource::new(440.0, AudioFormat::mono(8_000), Pacing::RealTime).expect("valid");
        let mut frame = [0i16; 160];
        assert!(!t.read_frame(&mut frame).expect("reads"), "no audio at t=0");
        std::thread::sleep(std::time::Duration::from_millis(45));
        assert!(t.read_frame(&mut frame).expect("reads"));
        assert!(t.read_frame(&mut frame).expect("reads"));
    }
}
