//! `null`: silence in, nothing out (headless machines, tests).

use super::pacer::Pacer;
use super::{AudioFormat, AudioInput, AudioOutput, DeviceError, Pacing};

/// A microphone that hears silence, paced like a sound card.
#[derive(Debug)]
pub struct NullSource {
    format: AudioFormat,
    pacer: Pacer,
}

impl NullSource {
    /// Silence in `format`.
    pub fn new(format: AudioFormat, pacing: Pacing) -> Self {
        Self {
            format,
            pacer: Pacer::new(pacing, format.sample_rate),
        }
    }
}

impl AudioInput for NullSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, DeviceError> {
        let frames = frame.len() / usize::from(self.format.channels.max(1));
        if self.pacer.take(frames).is_none() {
            return Ok(false);
        }
        frame.fill(0);
        Ok(true)
    }
}

/// A speaker that discards everything, counting what it was given.
#[derive(Debug)]
pub struct NullSink {
    format: AudioFormat,
    discarded: u64,
}

impl NullSink {
    /// A sink for `format`.
    pub fn new(format: AudioFormat) -> Self {
        Self {
            format,
            discarded: 0,
        }
    }

    /// Samples discarded so far.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }
}

impl AudioOutput for NullSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, pcm: &[i16]) -> Result<usize, DeviceError> {
        self.discarded += pcm.len() as u64;
        Ok(pcm.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_source_is_silent_and_sink_takes_all() {
        let mut source = NullSource::new(AudioFormat::mono(8_000), Pacing::Unpaced);
        let mut frame = [7i16; 160];
        assert!(source.read_frame(&mut frame).expect("reads"));
        assert!(frame.iter().all(|&s| s == 0));
        let mut sink = NullSink::new(AudioFormat::mono(8_000));
        assert_eq!(sink.write(&[1; 320]).expect("writes"), 320);
        assert_eq!(sink.write(&[]).expect("writes"), 0);
        assert_eq!(sink.discarded(), 320);
    }

    #[test]
    fn paced_null_source_waits() {
        let mut source = NullSource::new(AudioFormat::mono(8_000), Pacing::RealTime);
        let mut frame = [7i16; 160];
        assert!(!source.read_frame(&mut frame).expect("reads"));
        assert_eq!(frame[0], 7, "untouched when not ready");
    }
}
