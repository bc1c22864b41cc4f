//! Audio codecs as SDP formats, built from MicroSIP's `audioCodecs` ids.

/// An audio codec as it appears in SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// The rtpmap encoding name, e.g. `PCMU`, `opus`.
    pub encoding: String,
    /// The RTP clock rate (8000 for G.722 although it samples at 16 kHz,
    /// RFC 3551 §4.5.2).
    pub clock_rate: u32,
    /// Channels in the rtpmap (opus is always 2, RFC 7587 §7).
    pub channels: u8,
    /// The static payload type of RFC 3551, if any.
    pub static_pt: Option<u8>,
    /// Our `a=fmtp` parameters (what we want to receive).
    pub fmtp: Option<String>,
}

impl Codec {
    fn new(encoding: &str, clock_rate: u32, channels: u8, static_pt: Option<u8>) -> Self {
        Self {
            encoding: encoding.to_string(),
            clock_rate,
            channels,
            static_pt,
            fmtp: None,
        }
    }

    /// Whether an SDP format (encoding/clock/channels) is this codec.
    pub fn matches(&self, encoding: &str, clock_rate: u32, channels: u8) -> bool {
        if !self.encoding.eq_ignore_ascii_case(encoding) {
            return false;
        }
        // Some peers write G722/16000; the codec is the same.
        if self.encoding.eq_ignore_ascii_case("G722") {
            return true;
        }
        self.clock_rate == clock_rate && self.channels == channels
    }

    /// The rtpmap value after the payload type, e.g. `opus/48000/2`.
    pub fn rtpmap(&self) -> String {
        if self.channels > 1 {
            format!("{}/{}/{}", self.encoding, self.clock_rate, self.channels)
        } else {
            format!("{}/{}", self.encoding, self.clock_rate)
        }
    }
}

/// The RFC 3551 static audio payload types we may meet without an rtpmap.
pub fn static_codec(pt: u8) -> Option<Codec> {
    let (enc, clock, ch) = match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        18 => ("G729", 8000, 1),
        _ => return None,
    };
    Some(Codec::new(enc, clock, ch, Some(pt)))
}

/// Why a MicroSIP codec id was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// Not `NAME/RATE/CHANNELS` with numbers (MicroSIP ignores those too).
    #[error("not of the form NAME/RATE/CHANNELS")]
    Malformed,
    /// A codec name we have no SDP mapping for.
    #[error("unknown codec")]
    Unknown,
    /// A known codec at a rate or channel count it does not come in.
    #[error("unsupported rate or channel count for this codec")]
    UnsupportedVariant,
}

/// A MicroSIP codec id that was skipped, with why (for the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("codec `{id}` skipped: {reason}")]
pub struct SkippedCodec {
    /// The id as configured.
    pub id: String,
    /// Why.
    pub reason: SkipReason,
}

/// Maps MicroSIP's `audioCodecs` ids (priority order) to SDP codecs.
///
/// `opus_stereo` is MicroSIP's `opusStereo`: opus then asks for stereo at
/// 96 kbit/s. Duplicates keep their first position.
pub fn codecs_from_microsip<S: AsRef<str>>(
    ids: &[S],
    opus_stereo: bool,
) -> (Vec<Codec>, Vec<SkippedCodec>) {
    let mut codecs: Vec<Codec> = Vec::new();
    let mut skipped = Vec::new();
    for id in ids {
        let id = id.as_ref();
        match map_id(id, opus_stereo) {
            Ok(c) => {
                if !codecs.contains(&c) {
                    codecs.push(c);
                }
            }
            Err(reason) => skipped.push(SkippedCodec {
                id: id.to_string(),
                reason,
            }),
        }
    }
    (codecs, skipped)
}

fn map_id(id: &str, opus_stereo: bool) -> Result<Codec, SkipReason> {
    let parts: Vec<&str> = id.split('/').collect();
    let [name, rate, channels] = parts.as_slice() else {
        return Err(SkipReason::Malformed);
    };
    let rate: u32 = rate.parse().map_err(|_| SkipReason::Malformed)?;
    let channels: u8 = channels.parse().map_err(|_| SkipReason::Malformed)?;
    let name_uc = name.to_ascii_uppercase();
    let mono = channels == 1;
    let codec = match (name_uc.as_str(), rate) {
        ("PCMU", 8000) if mono => Codec::new("PCMU", 8000, 1, Some(0)),
        ("PCMA", 8000) if mono => Codec::new("PCMA", 8000, 1, Some(8)),
        ("G722", 16000) if mono => Codec::new("G722", 8000, 1, Some(9)),
        ("G723", 8000) if mono => Codec::new("G723", 8000, 1, Some(4)),
        ("G729", 8000) if mono => Codec::new("G729", 8000, 1, Some(18)),
        ("GSM", 8000) if mono => Codec::new("GSM", 8000, 1, Some(3)),
        ("OPUS", 48000) if channels == 2 => {
            let mut c = Codec::new("opus", 48000, 2, None);
            if opus_stereo {
                c.fmtp = Some("stereo=1;sprop-stereo=1;maxaveragebitrate=96000".to_string());
            }
            c
        }
        // RFC 5577 §6: bitrate is mandatory for G.722.1.
        ("G7221", 16000) if mono => with_fmtp(Codec::new("G7221", 16000, 1, None), "bitrate=24000"),
        ("G7221", 32000) if mono => with_fmtp(Codec::new("G7221", 32000, 1, None), "bitrate=48000"),
        ("GSM-EFR", 8000) if mono => Codec::new("GSM-EFR", 8000, 1, None),
        ("AMR", 8000) if mono => Codec::new("AMR", 8000, 1, None),
        ("AMR-WB", 16000) if mono => Codec::new("AMR-WB", 16000, 1, None),
        ("ILBC", 8000) if mono => Codec::new("iLBC", 8000, 1, None),
        ("SPEEX", 8000 | 16000 | 32000) if mono => Codec::new("speex", rate, 1, None),
        ("SILK", 8000 | 12000 | 16000 | 24000) if mono => Codec::new("SILK", rate, 1, None),
        ("L16", 44100) if channels <= 2 && channels > 0 => {
            Codec::new("L16", 44100, channels, Some(if mono { 11 } else { 10 }))
        }
        ("L16", 8000 | 16000 | 48000) if channels <= 2 && channels > 0 => {
            Codec::new("L16", rate, channels, None)
        }
        (
            "PCMU" | "PCMA" | "G722" | "G723" | "G729" | "GSM" | "OPUS" | "G7221" | "GSM-EFR"
            | "AMR" | "AMR-WB" | "ILBC" | "SPEEX" | "SILK" | "L16",
            _,
        ) => return Err(SkipReason::UnsupportedVariant),
        _ => return Err(SkipReason::Unknown),
    };
    Ok(codec)
}

fn with_fmtp(mut c: Codec, fmtp: &str) -> Codec {
    c.fmtp = Some(fmtp.to_string());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsip_ids_map_to_sdp() {
        let ids = "opus/48000/2 PCMU/8000/1 PCMA/8000/1 G722/16000/1 G729/8000/1 L16/44100/2 \
                   speex/16000/1 FOO/8000/1 PCMU/16000/1 garbage PCMU/8000/1";
        let ids: Vec<&str> = ids.split_whitespace().collect();
        let (codecs, skipped) = codecs_from_microsip(&ids, false);
        let names: Vec<String> = codecs.iter().map(Codec::rtpmap).collect();
        assert_eq!(
            names,
            [
                "opus/48000/2",
                "PCMU/8000",
                "PCMA/8000",
                "G722/8000",
                "G729/8000",
                "L16/44100/2",
                "speex/16000"
            ]
        );
        assert_eq!(codecs[3].static_pt, Some(9));
        assert_eq!(codecs[5].static_pt, Some(10));
        assert_eq!(codecs[0].static_pt, None);
        let reasons: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            [
                "codec `FOO/8000/1` skipped: unknown codec",
                "codec `PCMU/16000/1` skipped: unsupported rate or channel count for this codec",
                "codec `garbage` skipped: not of the form NAME/RATE/CHANNELS",
            ]
        );
    }

    #[test]
    fn opus_stereo_sets_fmtp() {
        let (c, _) = codecs_from_microsip(&["opus/48000/2"], true);
        assert!(c[0].fmtp.as_deref().unwrap_or("").contains("stereo=1"));
    }

    #[test]
    fn matching_is_case_insensitive_and_g722_tolerant() {
        let g722 = static_codec(9).unwrap();
        assert!(g722.matches("g722", 16000, 1));
        let pcmu = static_codec(0).unwrap();
        assert!(pcmu.matches("pcmu", 8000, 1) && !pcmu.matches("PCMU", 16000, 1));
    }
}
