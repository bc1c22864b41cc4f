//! Audio devices: where call audio comes from and goes to.
//!
//! One interface, [`AudioInput`] (pull whole frames) and [`AudioOutput`]
//! (push samples), at the format the caller asks for, over:
//! * real sound cards through `cpal` (WASAPI on Windows, ALSA on Linux),
//!   chosen by the exact name MicroSIP stores in `audioInputDevice`,
//!   `audioOutputDevice` and `audioRingDevice` ([`real`]);
//! * `file:PATH.wav` (input: played in a loop; output: recorded),
//!   `tone:HZ` (input: a sine) and `null` (silence / discard), for tests
//!   and headless use ([`file`], [`tone`], [`null`]).
//!
//! Nothing here blocks the phone's task: sound cards run on cpal's
//! callback threads and meet the phone through lock-free ring buffers;
//! the synthetic inputs are paced by the wall clock ([`Pacing`]) so they
//! behave like a sound card. File output is buffered and its header is
//! rewritten once a second.
//!
//! Around them: [`level`] (volumes, mute, `micAmplification`), [`vad`]
//! (energy voice detection), [`ring`] (the ringing sound) and
//! [`recorder`] (a call recorded to one WAV).

pub mod convert;
pub mod file;
pub mod level;
pub mod null;
pub mod real;
pub mod recorder;
pub mod ring;
pub mod spec;
pub mod tone;
pub mod vad;

mod pacer;

pub use level::Gain;
pub use real::{list_devices, DeviceInfo, DeviceList};
pub use recorder::{recording_file_name, CivilTime, Recorder};
pub use ring::ring_source;
pub use spec::DeviceSpec;
pub use vad::Vad;

use std::path::PathBuf;

/// A sample format: rate and interleaved channel count of i16 PCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
}

impl AudioFormat {
    /// Mono at `sample_rate`.
    pub fn mono(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            channels: 1,
        }
    }

    /// Checks the rate (1 Hz to 768 kHz) and channels (1 to 8).
    pub fn validate(self) -> Result<Self, DeviceError> {
        if (1..=768_000).contains(&self.sample_rate) && (1..=8).contains(&self.channels) {
            Ok(self)
        } else {
            Err(DeviceError::Format(self))
        }
    }

    /// Interleaved samples in `ms` milliseconds.
    pub fn samples_in_ms(self, ms: u32) -> usize {
        (u64::from(self.sample_rate) * u64::from(ms) / 1000) as usize * usize::from(self.channels)
    }
}

/// Which way audio flows through a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Capture (microphone).
    Input,
    /// Playback (speaker, ringer).
    Output,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Input => "input",
            Direction::Output => "output",
        })
    }
}

/// How the synthetic inputs (`file:`, `tone:`, `null`, the ring sound)
/// hand out frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// As a sound card would: a frame only once its duration has passed
    /// on the wall clock since the device was opened.
    RealTime,
    /// A frame whenever one is asked for (tests, offline processing).
    Unpaced,
}

/// Why a device could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A device value that does not parse (`tone:abc`, `file:`).
    #[error("invalid audio device {value:?}: {reason}")]
    InvalidSpec {
        /// The value as configured.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No device has this name; lists what there is.
    #[error("no audio {direction} device named {name:?}; available: {}", quoted_list(.available))]
    UnknownDevice {
        /// Input or output.
        direction: Direction,
        /// The name asked for.
        name: String,
        /// The names that exist.
        available: Vec<String>,
    },
    /// The system has no default device for this direction.
    #[error("no default audio {0} device")]
    NoDefault(Direction),
    /// The device kind cannot work in this direction (e.g. `tone:` output).
    #[error("{spec} cannot be used as an audio {direction} device")]
    WrongDirection {
        /// The device.
        spec: String,
        /// The direction asked for.
        direction: Direction,
    },
    /// An unusable sample format was asked for.
    #[error("unsupported audio format: {} Hz, {} channels", .0.sample_rate, .0.channels)]
    Format(AudioFormat),
    /// The sound system refused (cpal's message).
    #[error("audio device {device:?}: {message}")]
    Backend {
        /// The device's name.
        device: String,
        /// What the backend said.
        message: String,
    },
    /// A WAV file could not be read or written.
    #[error("WAV file {}: {source}", .path.display())]
    Wav {
        /// The file.
        path: PathBuf,
        /// Why.
        source: hound::Error,
    },
    /// A file or folder could not be created.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A capture device: the phone pulls whole frames from it.
pub trait AudioInput: Send {
    /// The format frames come in (what was asked for at open).
    fn format(&self) -> AudioFormat;
    /// Fills `frame` (interleaved, a whole number of channel groups) and
    /// returns `true` when that much audio is ready; returns `false`,
    /// leaving `frame` alone, when it is not yet. Never blocks. An error
    /// means the device is gone (unplugged, stream failed).
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<bool, DeviceError>;
}

/// A playback device: the phone pushes samples to it.
pub trait AudioOutput: Send {
    /// The format samples are expected in (what was asked for at open).
    fn format(&self) -> AudioFormat;
    /// Queues `pcm` (interleaved) for playback and returns how many of its
    /// samples were taken; the rest were dropped because the device's
    /// buffer is full (it plays slower than we feed it). Never blocks.
    fn write(&mut self, pcm: &[i16]) -> Result<usize, DeviceError>;
}

/// Opens the capture device `spec` delivering `format`.
pub fn open_input(
    spec: &DeviceSpec,
    format: AudioFormat,
    pacing: Pacing,
) -> Result<Box<dyn AudioInput>, DeviceError> {
    let format = format.validate()?;
    Ok(match spec {
        DeviceSpec::Default | DeviceSpec::Named(_) => {
            Box::new(real::RealInput::open(spec, format)?)
        }
        DeviceSpec::File(path) => Box::new(file::WavSource::open(path, format, pacing)?),
        DeviceSpec::Tone(hz) => Box::new(tone::ToneSource::new(*hz, format, pacing)?),
        DeviceSpec::Null => Box::new(null::NullSource::new(format, pacing)),
    })
}

/// Opens the playback device `spec` accepting `format`.
pub fn open_output(
    spec: &DeviceSpec,
    format: AudioFormat,
) -> Result<Box<dyn AudioOutput>, DeviceError> {
    let format = format.validate()?;
    Ok(match spec {
        DeviceSpec::Default | DeviceSpec::Named(_) => {
            Box::new(real::RealOutput::open(spec, format)?)
        }
        DeviceSpec::File(path) => Box::new(file::WavSink::create(path, format)?),
        DeviceSpec::Null => Box::new(null::NullSink::new(format)),
        DeviceSpec::Tone(_) => {
            return Err(DeviceError::WrongDirection {
                spec: spec.to_string(),
                direction: Direction::Output,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_devices_open_through_the_front_door() {
        let format = AudioFormat::mono(8_000);
        for value in ["null", "tone:440"] {
            let spec = DeviceSpec::parse(value).expect("parses");
            let mut input = open_input(&spec, format, Pacing::Unpaced).expect("opens");
            let mut frame = [1i16; 160];
            assert!(input.read_frame(&mut frame).expect("reads"));
            assert_eq!(input.format(), format);
        }
        let mut out = open_output(&DeviceSpec::Null, format).expect("opens");
        assert_eq!(out.write(&[0; 160]).expect("writes"), 160);
        let tone = DeviceSpec::Tone(440.0);
        let error = open_output(&tone, format).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("tone:440 cannot be used as an audio output device")
        );
        let bad = AudioFormat {
            sample_rate: 8_000,
            channels: 0,
        };
        assert!(matches!(
            open_input(&DeviceSpec::Null, bad, Pacing::Unpaced),
            Err(DeviceError::Format(_))
        ));
    }

    #[test]
    fn unknown_device_error_lists_names() {
        let e = DeviceError::UnknownDevice {
            direction: Direction::Input,
            name: "Mic 9".into(),
            available: vec!["Mic (USB)".into(), "null".into()],
        };
        assert_eq!(
            e.to_string(),
            "no audio input device named \"Mic 9\"; available: \"Mic (USB)\", \"null\""
        );
    }
}
