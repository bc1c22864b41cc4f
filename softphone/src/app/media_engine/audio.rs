//! The phone-wide audio controls (mute, volumes, devices): kept by the
//! engine, applied live to every running call and used for new ones.
//!
//! As in MicroSIP the controls are the phone's, not a call's: muting mutes
//! every call, and a device switch moves every call to the new device.

use serde::Serialize;
use tokio::sync::oneshot;

use super::{Command, MediaControl, MediaSettings};
use crate::media::device::{DeviceError, DeviceSpec, Gain};

/// Which of the phone's audio devices a control names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceRole {
    /// The microphone (`audioInputDevice`).
    Input,
    /// The speaker (`audioOutputDevice`).
    Output,
    /// Where incoming calls ring (`audioRingDevice`).
    Ring,
}

impl std::fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceRole::Input => "input",
            DeviceRole::Output => "output",
            DeviceRole::Ring => "ring",
        })
    }
}

/// The phone's audio controls, as Status shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioControls {
    /// Microphone muted: calls send silence (RTP keeps flowing).
    pub muted: bool,
    /// Speaker volume, 0–100 (`volumeOutput`).
    pub speaker_volume: u8,
    /// Microphone volume, 0–100 (`volumeInput`).
    pub mic_volume: u8,
    /// `audioInputDevice`; empty: the system's default.
    pub input_device: String,
    /// `audioOutputDevice`; empty: the system's default.
    pub output_device: String,
    /// `audioRingDevice`; empty: the system's default.
    pub ring_device: String,
}

/// A volume setting as a 0–100 percentage (the ini may hold anything).
fn percent(value: i64) -> u8 {
    u8::try_from(value.clamp(0, 100)).unwrap_or(100)
}

impl AudioControls {
    /// The controls as the settings start them: not muted.
    pub fn from_media_settings(settings: &MediaSettings) -> Self {
        Self {
            muted: false,
            speaker_volume: percent(settings.volume_output),
            mic_volume: percent(settings.volume_input),
            input_device: settings.input_device.clone(),
            output_device: settings.output_device.clone(),
            ring_device: settings.ring_device.clone(),
        }
    }

    /// The microphone and speaker gains these controls mean, with
    /// MicroSIP's curves (`micAmplification` boosts the upper half).
    pub fn gains(&self, mic_amplification: bool) -> (Gain, Gain) {
        (
            Gain::input(i64::from(self.mic_volume), mic_amplification, self.muted),
            Gain::output(i64::from(self.speaker_volume), false),
        )
    }

    /// The device value for `role`.
    pub fn device(&self, role: DeviceRole) -> &str {
        match role {
            DeviceRole::Input => &self.input_device,
            DeviceRole::Output => &self.output_device,
            DeviceRole::Ring => &self.ring_device,
        }
    }

    fn device_mut(&mut self, role: DeviceRole) -> &mut String {
        match role {
            DeviceRole::Input => &mut self.input_device,
            DeviceRole::Output => &mut self.output_device,
            DeviceRole::Ring => &mut self.ring_device,
        }
    }
}

/// Why an audio control could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum AudioControlError {
    /// The device is not valid, or a call could not open it (that call
    /// keeps its previous device, and so does the phone).
    #[error("cannot use {device:?} as the audio {role} device: {source}")]
    Device {
        /// Which device was being switched.
        role: DeviceRole,
        /// The value asked for.
        device: String,
        /// Why it is unusable.
        #[source]
        source: DeviceError,
    },
}

impl MediaControl {
    /// The current controls.
    pub fn audio_controls(&self) -> AudioControls {
        self.lock().audio.clone()
    }

    /// Changes the controls with `change` and sends every running call
    /// its new gains; returns the controls as they are now.
    fn change_levels(&self, change: impl FnOnce(&mut AudioControls)) -> AudioControls {
        let mut shared = self.lock();
        change(&mut shared.audio);
        let (input, output) = shared.audio.gains(shared.mic_amplification);
        for entry in shared.calls.values() {
            // A thread that has ended belongs to a call being torn down.
            let _ = entry.commands.send(Command::SetGains { input, output });
        }
        shared.audio.clone()
    }

    /// Mutes or unmutes the microphone of every call.
    pub fn set_muted(&self, muted: bool) -> AudioControls {
        self.change_levels(|a| a.muted = muted)
    }

    /// Flips mute (one step, so two toggles racing cannot both read the
    /// same state).
    pub fn toggle_mute(&self) -> AudioControls {
        self.change_levels(|a| a.muted = !a.muted)
    }

    /// Sets the speaker volume (clamped to 0–100).
    pub fn set_speaker_volume(&self, volume: u8) -> AudioControls {
        self.change_levels(|a| a.speaker_volume = volume.min(100))
    }

    /// Moves the speaker volume by `delta` percent, within 0–100.
    pub fn adjust_speaker_volume(&self, delta: i16) -> AudioControls {
        self.change_levels(|a| {
            a.speaker_volume = percent(i64::from(a.speaker_volume) + i64::from(delta));
        })
    }

    /// Sets the microphone volume (clamped to 0–100).
    pub fn set_mic_volume(&self, volume: u8) -> AudioControls {
        self.change_levels(|a| a.mic_volume = volume.min(100))
    }

    /// Switches the `role` device to `device` (an `audio*Device` value)
    /// for new calls and for every running call, which opens it at once.
    ///
    /// A value that does not parse is refused before anything changes. If
    /// a running call cannot open the device, that call keeps its old one,
    /// the controls go back to the previous device and the error names the
    /// device; calls that did open it keep it (the same device rarely
    /// opens in one call and fails in another). The ring device is only
    /// recorded: calls do not play the ring.
    pub async fn set_device(
        &self,
        role: DeviceRole,
        device: &str,
    ) -> Result<AudioControls, AudioControlError> {
        let error = |source| AudioControlError::Device {
            role,
            device: device.to_owned(),
            source,
        };
        DeviceSpec::parse(device).map_err(error)?;
        // The new value and the commands go out under one lock, so a call
        // starting meanwhile opens the new device itself.
        let (previous, replies) = {
            let mut shared = self.lock();
            let previous = std::mem::replace(shared.audio.device_mut(role), device.to_owned());
            let mut replies = Vec::new();
            if role != DeviceRole::Ring {
                for entry in shared.calls.values() {
                    let (reply, answer) = oneshot::channel();
                    let command = Command::SwitchDevice {
                        role,
                        device: device.to_owned(),
                        reply,
                    };
                    if entry.commands.send(command).is_ok() {
                        replies.push(answer);
                    }
                }
            }
            (previous, replies)
        };
        let mut failure = None;
        for answer in replies {
            // A dropped answer: the call ended meanwhile, nothing to switch.
            if let Ok(Err(e)) = answer.await {
                failure.get_or_insert(e);
            }
        }
        match failure {
            None => Ok(self.audio_controls()),
            Some(source) => {
                let mut shared = self.lock();
                let slot = shared.audio.device_mut(role);
                // Unless another switch has been made since.
                if slot == device {
                    *slot = previous;
                }
                Err(error(source))
            }
        }
    }
}
