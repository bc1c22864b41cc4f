//! Call recording: both directions mixed into one WAV in `recordingPath`,
//! named as MicroSIP names its recordings.

use std::path::{Path, PathBuf};

use super::file::WavSink;
use super::{AudioFormat, AudioOutput, DeviceError};

/// A calendar date and time of day (the caller's local time, as MicroSIP
/// uses; see [`CivilTime::from_unix`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    /// Year, e.g. 2025.
    pub year: i32,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    /// 0-23.
    pub hour: u32,
    /// 0-59.
    pub minute: u32,
    /// 0-59.
    pub second: u32,
}

impl CivilTime {
    /// The local time at `unix_seconds`, in the system's time zone (with
    /// its daylight saving rules at that instant), as MicroSIP names its
    /// recordings and shows its call log; UTC when the zone is unknown.
    pub fn local(unix_seconds: i64) -> Self {
        use chrono::{Offset, TimeZone};
        let offset = chrono::Local
            .timestamp_opt(unix_seconds, 0)
            .earliest()
            .map_or(0, |t| t.offset().fix().local_minus_utc());
        Self::from_unix(unix_seconds, offset)
    }

    /// The time `unix_seconds` after the epoch, shifted by
    /// `utc_offset_seconds` (0 for UTC; the local offset for local time).
    pub fn from_unix(unix_seconds: i64, utc_offset_seconds: i32) -> Self {
        let t = unix_seconds + i64::from(utc_offset_seconds);
        let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self {
            year,
            month,
            day,
            hour: (secs / 3_600) as u32,
            minute: (secs % 3_600 / 60) as u32,
            second: (secs % 60) as u32,
        }
    }
}

/// The file name MicroSIP gives a recording:
/// `YYYYMMDD-HHMMSS-<remote user>-<outgoing|incoming>-<local>.wav`, where
/// `<local>` is the account's label, or its user when it has none, and
/// each of `/ \ ? % * : | " < > .` and space becomes `_`.
pub fn recording_file_name(
    time: &CivilTime,
    remote_user: &str,
    outgoing: bool,
    local: &str,
) -> String {
    let stem = format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{}-{}-{}",
        time.year,
        time.month,
        time.day,
        time.hour,
        time.minute,
        time.second,
        remote_user,
        if outgoing { "outgoing" } else { "incoming" },
        local
    );
    let stem: String = stem
        .chars()
        .map(|c| if "/\\?%*:|\"<>. ".contains(c) { '_' } else { c })
        .collect();
    format!("{stem}.wav")
}

/// Records a call: what we send and what we receive, mixed, 16-bit mono.
#[derive(Debug)]
pub struct Recorder {
    sink: WavSink,
    mix: Vec<i16>,
}

impl Recorder {
    /// Creates `dir` if needed and starts `dir/file_name` at `sample_rate`.
    pub fn create(dir: &Path, file_name: &str, sample_rate: u32) -> Result<Self, DeviceError> {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| DeviceError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let sink = WavSink::create(&dir.join(file_name), AudioFormat::mono(sample_rate))?;
        Ok(Self {
            sink,
            mix: Vec::new(),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        self.sink.path()
    }

    /// Adds one tick of the call: `local` (the microphone, as sent) and
    /// `remote` (as played), both at the recorder's rate. The shorter one
    /// counts as silence for the rest (one side may be on hold). Mixing
    /// sums and clips, as a conference bridge does.
    pub fn write(&mut self, local: &[i16], remote: &[i16]) -> Result<(), DeviceError> {
        self.mix.clear();
        let len = local.len().max(remote.len());
        self.mix.extend((0..len).map(|i| {
            let a = local.get(i).copied().unwrap_or(0);
            let b = remote.get(i).copied().unwrap_or(0);
            a.saturating_add(b)
        }));
        self.sink.write(&self.mix).map(|_| ())
    }

    /// Completes the file and returns its path.
    pub fn finish(self) -> Result<PathBuf, DeviceError> {
        let path = self.sink.path().to_path_buf();
        self.sink.finish()?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_from_unix() {
        let t = CivilTime::from_unix(1_756_109_189, 0);
        assert_eq!(
            t,
            CivilTime {
                year: 2025,
                month: 8,
                day: 25,
                hour: 8,
                minute: 6,
                second: 29
            }
        );
        let t = CivilTime::from_unix(0, -3_600);
        assert_eq!((t.year, t.month, t.day, t.hour), (1969, 12, 31, 23));
        let leap = CivilTime::from_unix(951_782_400, 0);
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
    }

    #[test]
    fn microsip_file_names() {
        let t = CivilTime::from_unix(1_756_109_189, 3 * 3_600);
        assert_eq!(
            recording_file_name(&t, "5551234", true, "Office"),
            "20250825-110629-5551234-outgoing-Office.wav"
        );
        assert_eq!(
            recording_file_name(&t, "+1 (555) 12.34", false, "a/b:c"),
            "20250825-110629-+1_(555)_12_34-incoming-a_b_c.wav"
        );
    }

    #[test]
    fn recorder_mixes_both_directions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("Recordings");
        let mut rec = Recorder::create(&folder, "call.wav", 8_000).expect("creates");
        rec.write(&[100, 200, 30_000, -30_000], &[1, 2, 30_000, -30_000])
            .expect("writes");
        rec.write(&[5, 5], &[7]).expect("writes");
        rec.write(&[], &[9, 9]).expect("writes");
        let path = rec.finish().expect("finishes");
        assert_eq!(path, folder.join("call.wav"));
        let mut reader = hound::WavReader::open(&path).expect("readable");
        assert_eq!(reader.spec().sample_rate, 8_000);
        assert_eq!(reader.spec().channels, 1);
        let got: Vec<i16> = reader
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("samples");
        assert_eq!(got, [101, 202, 32_767, -32_768, 12, 5, 9, 9]);
    }

    #[test]
    fn recorder_reports_an_unwritable_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").expect("write");
        let e = Recorder::create(&file.join("sub"), "a.wav", 8_000).err();
        assert!(e
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("not-a-dir"));
    }
}
