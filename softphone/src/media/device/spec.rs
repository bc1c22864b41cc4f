//! Device values as MicroSIP's keys and our `SetDevice` command carry them.

use std::path::PathBuf;

use super::DeviceError;

/// The highest `tone:` frequency we accept (beyond hearing anyway).
const MAX_TONE_HZ: f64 = 20_000.0;

/// Which device a setting names.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceSpec {
    /// Empty: the system's default device.
    Default,
    /// A sound card, by the exact name MicroSIP stores (e.g.
    /// `Microphone (USB Audio)`) or by cpal's device id.
    Named(String),
    /// `file:PATH`: a WAV file (input: looped; output: recorded).
    File(PathBuf),
    /// `tone:HZ`: a sine (input only).
    Tone(f64),
    /// `null`: silence in, discard out.
    Null,
}

impl DeviceSpec {
    /// Parses a value of `audioInputDevice`, `audioOutputDevice`,
    /// `audioRingDevice` or `SetDevice`.
    ///
    /// One pair of surrounding double quotes is removed (MicroSIP writes
    /// the names quoted). A *quoted* value is always a sound card name, so
    /// a card really called `null` stays reachable as `"null"`; unquoted,
    /// `null`, `file:` and `tone:` are our synthetic devices.
    pub fn parse(value: &str) -> Result<Self, DeviceError> {
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        if quoted {
            let name = &value[1..value.len() - 1];
            return Ok(if name.is_empty() {
                Self::Default
            } else {
                Self::Named(name.to_string())
            });
        }
        let invalid = |reason: &str| DeviceError::InvalidSpec {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if value.is_empty() {
            Ok(Self::Default)
        } else if value == "null" {
            Ok(Self::Null)
        } else if let Some(path) = value.strip_prefix("file:") {
            if path.is_empty() {
                return Err(invalid("a file path is required after file:"));
            }
            Ok(Self::File(PathBuf::from(path)))
        } else if let Some(hz) = value.strip_prefix("tone:") {
            match hz.trim().parse::<f64>() {
                Ok(hz) if hz > 0.0 && hz <= MAX_TONE_HZ => Ok(Self::Tone(hz)),
                _ => Err(invalid(
                    "tone: needs a frequency in Hz, above 0 and at most 20000",
                )),
            }
        } else {
            Ok(Self::Named(value.to_string()))
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    /// The value [`DeviceSpec::parse`] reads back; sound card names are
    /// quoted only when they would otherwise read as a synthetic device.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => Ok(()),
            Self::Named(name) => {
                let ambiguous = name == "null"
                    || name.starts_with("file:")
                    || name.starts_with("tone:")
                    || name.starts_with('"');
                if ambiguous {
                    write!(f, "\"{name}\"")
                } else {
                    f.write_str(name)
                }
            }
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Tone(hz) => write!(f, "tone:{hz}"),
            Self::Null => f.write_str("null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> DeviceSpec {
        match DeviceSpec::parse(v) {
            Ok(s) => s,
            Err(e) => panic!("{v:?}: {e}"),
        }
    }

    #[test]
    fn parses_every_kind() {
        assert_eq!(parse(""), DeviceSpec::Default);
        assert_eq!(parse("\"\""), DeviceSpec::Default);
        assert_eq!(parse("null"), DeviceSpec::Null);
        assert_eq!(parse("\"null\""), DeviceSpec::Named("null".into()));
        assert_eq!(parse("Null"), DeviceSpec::Named("Null".into()));
        assert_eq!(parse("tone:440"), DeviceSpec::Tone(440.0));
        assert_eq!(parse("tone: 1000.5"), DeviceSpec::Tone(1000.5));
        assert_eq!(
            parse("file:/tmp/a b.wav"),
            DeviceSpec::File("/tmp/a b.wav".into())
        );
        assert_eq!(
            parse("file:C:\\x.wav"),
            DeviceSpec::File("C:\\x.wav".into())
        );
        assert_eq!(
            parse("\"Microphone (Realtek(R) Audio)\""),
            DeviceSpec::Named("Microphone (Realtek(R) Audio)".into())
        );
        assert_eq!(
            parse("Микрофон (USB)"),
            DeviceSpec::Named("Микрофон (USB)".into())
        );
        assert_eq!(
            parse("\"file:x.wav\""),
            DeviceSpec::Named("file:x.wav".into())
        );
        // A lone quote is a name, not an empty quoted value.
        assert_eq!(parse("\""), DeviceSpec::Named("\"".into()));
    }

    #[test]
    fn rejects_bad_values() {
        for v in [
            "tone:",
            "tone:abc",
            "tone:0",
            "tone:-5",
            "tone:30000",
            "tone:NaN",
            "file:",
        ] {
            let e = DeviceSpec::parse(v)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.starts_with(&format!("invalid audio device {v:?}")),
                "{v}: {e}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for v in [
            "",
            "null",
            "tone:440",
            "file:/x.wav",
            "Speakers (USB)",
            "\"null\"",
            "\"tone:1\"",
        ] {
            let spec = parse(v);
            assert_eq!(parse(&spec.to_string()), spec, "{v}");
        }
    }
}
