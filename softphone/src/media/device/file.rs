//! `file:PATH.wav`: a WAV file as the microphone (played in a loop) or as
//! the speaker (what we receive, recorded), through `hound`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::convert::Converter;
use super::pacer::Pacer;
use super::{AudioFormat, AudioInput, AudioOutput, DeviceError, Pacing};

/// The longest file we load for looping (it is held in memory).
const MAX_SOURCE_SECONDS: u64 = 600;

/// Loops a clip of audio, already in the caller's format.
#[derive(Debug)]
pub struct LoopSource {
    format: AudioFormat,
    samples: Vec<i16>,
    position: usize,
    pacer: Pacer,
}

impl LoopSource {
    /// Loops `samples` (interleaved in `format`, not empty).
    pub fn new(samples: Vec<i16>, format: AudioFormat, pacing: Pacing) -> Self {
        Self {
            format,
            samples,
            position: 0,
            pacer: Pacer::new(pacing, format.sample_rate),
        }
    }

    fn skip(&mut self, samples: u64) {
        if !self.samples.is_empty() {
            self.position = ((self.position as u64 + samples) % self.samples.len() as u64) as usize;
        }
    }
}

impl AudioInput for LoopSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, DeviceError> {
        let channels = usize::from(self.format.channels);
        let Some(skip) = self.pacer.take(frame.len() / channels) else {
            return Ok(false);
        };
        if self.samples.is_empty() {
            frame.fill(0);
            return Ok(true);
        }
        self.skip(skip * channels as u64);
        let mut filled = 0;
        while filled < frame.len() {
            let n = (frame.len() - filled).min(self.samples.len() - self.position);
            frame[filled..filled + n]
                .copy_from_slice(&self.samples[self.position..self.position + n]);
            filled += n;
            self.position = (self.position + n) % self.samples.len();
        }
        Ok(true)
    }
}

/// Reads a whole WAV file (any PCM or float format `hound` reads) and
/// converts it to `format`.
pub fn load_wav(path: &Path, format: AudioFormat) -> Result<Vec<i16>, DeviceError> {
    let wav_error = |source| DeviceError::Wav {
        path: path.to_path_buf(),
        source,
    };
    let reader = hound::WavReader::open(path).map_err(wav_error)?;
    let spec = reader.spec();
    let file_format = AudioFormat {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
    };
    let frames = u64::from(reader.duration());
    if frames > MAX_SOURCE_SECONDS * u64::from(spec.sample_rate) {
        return Err(wav_error(hound::Error::FormatError(
            "longer than 10 minutes",
        )));
    }
    let samples: Vec<i16> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, _) => reader
            .into_samples::<f32>()
            .map(|s| s.map(|v| (v * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16))
            .collect::<Result<_, _>>(),
        (hound::SampleFormat::Int, bits @ 1..=16) => reader
            .into_samples::<i16>()
            .map(|s| s.map(|v| v << (16 - bits)))
            .collect::<Result<_, _>>(),
        (hound::SampleFormat::Int, bits) => reader
            .into_samples::<i32>()
            .map(|s| s.map(|v| (v >> (bits.clamp(17, 32) - 16)) as i16))
            .collect::<Result<_, _>>(),
    }
    .map_err(wav_error)?;
    let mut converter = Converter::new(file_format, format)?;
    let mut out = Vec::with_capacity(samples.len());
    converter.process(&samples, &mut out);
    Ok(out)
}

/// A WAV file looped as a microphone.
#[derive(Debug)]
pub struct WavSource(LoopSource);

impl WavSource {
    /// Loads `path` and converts it to `format`. An empty file is an
    /// error: looping nothing would be silence that looks like audio.
    pub fn open(path: &Path, format: AudioFormat, pacing: Pacing) -> Result<Self, DeviceError> {
        let samples = load_wav(path, format)?;
        if samples.is_empty() {
            return Err(DeviceError::Wav {
                path: path.to_path_buf(),
                source: hound::Error::FormatError("no audio in the file"),
            });
        }
        Ok(Self(LoopSource::new(samples, format, pacing)))
    }
}

impl AudioInput for WavSource {
    fn format(&self) -> AudioFormat {
        self.0.format()
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, DeviceError> {
        self.0.read_frame(frame)
    }
}

/// Writes 16-bit PCM to a WAV file, rewriting the header every second so
/// a crash leaves a readable file with at most a second missing.
pub struct WavSink {
    path: PathBuf,
    format: AudioFormat,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    since_flush: usize,
    flush_every: usize,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish()
    }
}

impl WavSink {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path, format: AudioFormat) -> Result<Self, DeviceError> {
        let format = format.validate()?;
        let spec = hound::WavSpec {
            channels: format.channels,
            sample_rate: format.sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(|source| DeviceError::Wav {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            format,
            writer: Some(writer),
            since_flush: 0,
            flush_every: format.samples_in_ms(1_000),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn wav_error(&self, source: hound::Error) -> DeviceError {
        DeviceError::Wav {
            path: self.path.clone(),
            source,
        }
    }

    /// Completes the header and closes the file.
    pub fn finish(mut self) -> Result<(), DeviceError> {
        match self.writer.take() {
            Some(writer) => writer.finalize().map_err(|e| self.wav_error(e)),
            None => Ok(()),
        }
    }
}

impl AudioOutput for WavSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, pcm: &[i16]) -> Result<usize, DeviceError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(0);
        };
        let mut result = Ok(());
        {
            let mut block = writer.get_i16_writer(pcm.len() as u32);
            for &s in pcm {
                block.write_sample(s);
            }
            if let Err(e) = block.flush() {
                result = Err(e);
            }
        }
        if result.is_ok() {
            self.since_flush += pcm.len();
            if self.since_flush >= self.flush_every {
                self.since_flush = 0;
                result = writer.flush();
            }
        }
        result.map(|()| pcm.len()).map_err(|e| self.wav_error(e))
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            if let Err(error) = writer.finalize() {
                tracing::warn!(path = %self.path.display(), %error, "closing WAV file failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::{goertzel, sine};

    fn write_wav(path: &Path, spec: hound::WavSpec, samples: &[i16]) {
        let mut w = hound::WavWriter::create(path, spec).expect("create");
        for &s in samples {
            w.write_sample(s).expect("write");
        }
        w.finalize().expect("finalize");
    }

    fn spec(rate: u32, channels: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[test]
    fn source_loops_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clip.wav");
        let clip: Vec<i16> = (0..100).collect();
        write_wav(&path, spec(8_000, 1), &clip);
        let mut source =
            WavSource::open(&path, AudioFormat::mono(8_000), Pacing::Unpaced).expect("opens");
        let mut frame = [0i16; 160];
        assert!(source.read_frame(&mut frame).expect("reads"));
        let expected: Vec<i16> = (0..160).map(|i| (i % 100) as i16).collect();
        assert_eq!(frame.to_vec(), expected);
        assert!(source.read_frame(&mut frame).expect("reads"));
        assert_eq!(frame[0], 60, "continues where it left off");
    }

    #[test]
    fn source_converts_stereo_44k1_to_mono_8k() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stereo.wav");
        let mono = sine(700.0, 44_100, 9_000.0, 44_100);
        let stereo: Vec<i16> = mono.iter().flat_map(|&s| [s, s]).collect();
        write_wav(&path, spec(44_100, 2), &stereo);
        let mut source =
            WavSource::open(&path, AudioFormat::mono(8_000), Pacing::Unpaced).expect("opens");
        let mut all = vec![0i16; 4_000];
        assert!(source.read_frame(&mut all).expect("reads"));
        assert!(goertzel(&all[400..], 700.0, 8_000) > 0.015);
    }

    #[test]
    fn missing_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.wav");
        let e = WavSource::open(&missing, AudioFormat::mono(8_000), Pacing::Unpaced).err();
        assert!(e
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("nope.wav"));
        let empty = dir.path().join("empty.wav");
        write_wav(&empty, spec(8_000, 1), &[]);
        assert!(WavSource::open(&empty, AudioFormat::mono(8_000), Pacing::Unpaced).is_err());
    }

    #[test]
    fn sink_writes_a_valid_wav_readable_before_finish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.wav");
        let mut sink = WavSink::create(&path, AudioFormat::mono(8_000)).expect("creates");
        let audio: Vec<i16> = (0..12_000).map(|i| (i % 321) as i16 - 160).collect();
        for chunk in audio.chunks(160) {
            assert_eq!(sink.write(chunk).expect("writes"), chunk.len());
        }
        // Not finished: the header from the last periodic flush (at 8000
        // samples) must already make a valid file, as after a crash.
        let early = hound::WavReader::open(&path).expect("readable mid-call");
        assert_eq!(early.spec().sample_rate, 8_000);
        let early_len = early.duration();
        assert!((8_000..=12_000).contains(&early_len), "{early_len}");
        sink.finish().expect("finishes");
        let mut reader = hound::WavReader::open(&path).expect("readable");
        assert_eq!(reader.spec(), spec(8_000, 1));
        let back: Vec<i16> = reader
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("samples");
        assert_eq!(back, audio);
    }

    #[test]
    fn sink_finishes_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dropped.wav");
        {
            let mut sink = WavSink::create(&path, AudioFormat::mono(16_000)).expect("creates");
            sink.write(&[5; 100]).expect("writes");
        }
        let reader = hound::WavReader::open(&path).expect("readable");
        assert_eq!(reader.duration(), 100);
    }
}
