//! The ringing sound: MicroSIP's `ringingSound` WAV, or our built-in ring
//! when it is empty, looped at `volumeRing`.

use std::path::Path;

use super::file::{load_wav, LoopSource};
use super::level::Gain;
use super::{AudioFormat, AudioInput, DeviceError, Pacing};

/// The built-in ring's two tones (a classic telephone bell's warble).
const RING_HZ: [f64; 2] = [400.0, 450.0];
/// Its cadence in ms: on, off, on, off (the "ring-ring" of BT SIN 350).
const CADENCE_MS: [u32; 4] = [400, 200, 400, 2_000];
/// Peak of the two tones together: -6 dBFS.
const RING_PEAK: f64 = 16_384.0;
/// Fade in and out of each burst, against clicks.
const FADE_MS: u32 = 10;

/// One period (3 s) of the built-in ring in `format`.
pub fn builtin_ring(format: AudioFormat) -> Vec<i16> {
    let rate = f64::from(format.sample_rate);
    let fade = format.samples_in_ms(FADE_MS) / usize::from(format.channels);
    let mut out = Vec::new();
    for (i, &ms) in CADENCE_MS.iter().enumerate() {
        let frames = format.samples_in_ms(ms) / usize::from(format.channels);
        let on = i % 2 == 0;
        for n in 0..frames {
            let s = if on {
                let t = n as f64 / rate;
                let tones: f64 = RING_HZ
                    .iter()
                    .map(|hz| (2.0 * std::f64::consts::PI * hz * t).sin())
                    .sum();
                let edge = n.min(frames - 1 - n);
                let envelope = if edge < fade {
                    edge as f64 / fade as f64
                } else {
                    1.0
                };
                (tones / RING_HZ.len() as f64 * RING_PEAK * envelope).round() as i16
            } else {
                0
            };
            out.extend(std::iter::repeat_n(s, usize::from(format.channels)));
        }
    }
    out
}

/// The ringing sound as an input to play on the ring device.
///
/// `ringing_sound` is the setting: empty for the built-in ring, else a
/// WAV path; a relative path is looked up in `base_dir` (MicroSIP stores
/// only the file name for files next to it). `volume_ring` is 0-100. A
/// WAV that cannot be read falls back to the built-in ring, with a
/// warning: a phone that stays silent on a call is worse than one that
/// rings with the wrong sound.
pub fn ring_source(
    ringing_sound: &str,
    base_dir: Option<&Path>,
    volume_ring: i64,
    format: AudioFormat,
    pacing: Pacing,
) -> Result<Box<dyn AudioInput>, DeviceError> {
    let format = format.validate()?;
    let mut samples = if ringing_sound.is_empty() {
        builtin_ring(format)
    } else {
        let path = Path::new(ringing_sound);
        let path = match base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        };
        match load_wav(&path, format) {
            Ok(samples) if !samples.is_empty() => samples,
            Ok(_) => {
                tracing::warn!(path = %path.display(), "ringing sound is empty; using the built-in ring");
                builtin_ring(format)
            }
            Err(error) => {
                tracing::warn!(%error, "ringing sound unreadable; using the built-in ring");
                builtin_ring(format)
            }
        }
    };
    Gain::output(volume_ring, false).apply(&mut samples);
    Ok(Box::new(LoopSource::new(samples, format, pacing)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::goertzel;

    fn read(source: &mut dyn AudioInput, samples: usize) -> Vec<i16> {
        let mut out = vec![0i16; samples];
        assert!(source.read_frame(&mut out).expect("reads"));
        out
    }

    #[test]
    fn builtin_ring_has_its_tones_and_cadence() {
        let format = AudioFormat::mono(8_000);
        let ring = builtin_ring(format);
        assert_eq!(ring.len(), 24_000, "3 s period");
        let burst = &ring[80..3_120];
        assert!(goertzel(burst, 400.0, 8_000) > 0.01);
        assert!(goertzel(burst, 450.0, 8_000) > 0.01);
        assert!(goertzel(burst, 1_000.0, 8_000) < 1e-5);
        assert!(ring[3_200..4_800].iter().all(|&s| s == 0), "gap");
        assert!(ring[8_000..].iter().all(|&s| s == 0), "pause");
        assert_eq!(ring[0], 0, "faded in");
    }

    #[test]
    fn ring_source_uses_volume_and_falls_back() {
        let format = AudioFormat::mono(8_000);
        let mut full = ring_source("", None, 100, format, Pacing::Unpaced).expect("opens");
        let mut half = ring_source("", None, 50, format, Pacing::Unpaced).expect("opens");
        let (a, b) = (read(full.as_mut(), 3_000), read(half.as_mut(), 3_000));
        for (x, y) in a.iter().zip(&b) {
            assert!((i32::from(*x) / 2 - i32::from(*y)).abs() <= 1);
        }
        let mut missing =
            ring_source("no-such.wav", None, 100, format, Pacing::Unpaced).expect("falls back");
        assert_eq!(read(missing.as_mut(), 3_000), a);
    }

    #[test]
    fn ring_source_reads_a_relative_wav_from_base_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.path().join("bell.wav"), spec).expect("create");
        for i in 0..50 {
            w.write_sample(i as i16 * 100).expect("write");
        }
        w.finalize().expect("finalize");
        let mut source = ring_source(
            "bell.wav",
            Some(dir.path()),
            100,
            AudioFormat::mono(8_000),
            Pacing::Unpaced,
        )
        .expect("opens");
        let got = read(source.as_mut(), 100);
        assert_eq!(got[49], 4_900);
        assert_eq!(got[50], 0, "looped");
    }
}
