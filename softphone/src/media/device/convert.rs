//! Converting interleaved i16 audio between formats: channel count (mix
//! down by averaging, spread up by copying) and rate (the codec module's
//! resampler). Sound cards and WAV files rarely come in the format a call
//! uses.

use super::{AudioFormat, DeviceError};
use crate::media::codec::Resampler;

/// A streaming format converter.
#[derive(Debug)]
pub struct Converter {
    from: AudioFormat,
    to: AudioFormat,
    resampler: Resampler,
    /// A trailing partial channel group, kept for the next call.
    partial: Vec<i16>,
    mono_in: Vec<i16>,
    mono_out: Vec<i16>,
}

impl Converter {
    /// A converter from `from` to `to`.
    pub fn new(from: AudioFormat, to: AudioFormat) -> Result<Self, DeviceError> {
        let (from, to) = (from.validate()?, to.validate()?);
        let resampler = Resampler::new(from.sample_rate, to.sample_rate)
            .map_err(|_| DeviceError::Format(to))?;
        Ok(Self {
            from,
            to,
            resampler,
            partial: Vec::new(),
            mono_in: Vec::new(),
            mono_out: Vec::new(),
        })
    }

    /// Whether this converter changes nothing.
    pub fn is_identity(&self) -> bool {
        self.from == self.to
    }

    /// Converts the next `input` samples and appends them to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.is_identity() {
            out.extend_from_slice(input);
            return;
        }
        let channels = usize::from(self.from.channels);
        self.mono_in.clear();
        let mut rest = input;
        if !self.partial.is_empty() {
            let need = channels - self.partial.len();
            let (head, tail) = rest.split_at(need.min(rest.len()));
            self.partial.extend_from_slice(head);
            rest = tail;
            if self.partial.len() < channels {
                return;
            }
            self.mono_in.push(mix(&self.partial));
            self.partial.clear();
        }
        let whole = rest.len() / channels * channels;
        self.mono_in
            .extend(rest[..whole].chunks_exact(channels).map(mix));
        self.partial.extend_from_slice(&rest[whole..]);
        self.mono_out.clear();
        self.resampler.process(&self.mono_in, &mut self.mono_out);
        let out_channels = usize::from(self.to.channels);
        out.reserve(self.mono_out.len() * out_channels);
        for &s in &self.mono_out {
            out.extend(std::iter::repeat_n(s, out_channels));
        }
    }
}

/// The average of one channel group.
fn mix(group: &[i16]) -> i16 {
    if let [only] = group {
        return *only;
    }
    let sum: i32 = group.iter().map(|&s| i32::from(s)).sum();
    // The mean of i16 values is an i16.
    (sum / group.len().max(1) as i32) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::testutil::{goertzel, sine};

    #[test]
    fn stereo_48k_to_mono_8k_and_back() {
        let mono = sine(1_000.0, 48_000, 10_000.0, 48_000);
        let stereo: Vec<i16> = mono.iter().flat_map(|&s| [s, s]).collect();
        let mut down = Converter::new(
            AudioFormat {
                sample_rate: 48_000,
                channels: 2,
            },
            AudioFormat::mono(8_000),
        )
        .expect("valid");
        let mut out = Vec::new();
        // Odd chunk sizes split channel groups.
        for chunk in stereo.chunks(333) {
            down.process(chunk, &mut out);
        }
        assert_eq!(out.len(), 8_000);
        assert!(goertzel(&out[2_000..], 1_000.0, 8_000) > 0.02);
        let mut up = Converter::new(
            AudioFormat::mono(8_000),
            AudioFormat {
                sample_rate: 16_000,
                channels: 2,
            },
        )
        .expect("valid");
        let mut back = Vec::new();
        up.process(&out, &mut back);
        assert_eq!(back.len(), 32_000);
        assert!(back.chunks_exact(2).all(|g| g[0] == g[1]));
    }

    #[test]
    fn channels_are_averaged() {
        let mut c = Converter::new(
            AudioFormat {
                sample_rate: 8_000,
                channels: 2,
            },
            AudioFormat::mono(8_000),
        )
        .expect("valid");
        let mut out = Vec::new();
        c.process(&[100, 300, -32768, -32768, 32767], &mut out);
        c.process(&[32767], &mut out);
        assert_eq!(out, [200, -32768, 32767]);
        assert!(!c.is_identity());
        let same =
            Converter::new(AudioFormat::mono(8_000), AudioFormat::mono(8_000)).expect("valid");
        assert!(same.is_identity());
    }
}
