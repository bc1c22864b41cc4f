//! Which `[Settings]` keys the dialog shows, in which tab: the ones a user
//! changes in MicroSIP's own settings window. The rest (window geometry,
//! column widths, toggles' saved states the main window owns, hooks an
//! admin sets) stay in the file untouched.

/// The tabs of `[Settings]` keys, each with its keys in order.
pub const SETTINGS_TABS: &[(&str, &[&str])] = &[
    (
        "General",
        &[
            "accountId",
            "singleMode",
            "minimized",
            "alwaysOnTop",
            "bringToFrontOnIncoming",
            "randomAnswerBox",
            "enableLocalAccount",
            "disableNameLookup",
            "defaultAction",
            "disableMessaging",
            "enableShortcuts",
            "enableMediaButtons",
            "headsetSupport",
            "enableLog",
            "userAgent",
        ],
    ),
    (
        "Audio",
        &[
            "audioInputDevice",
            "audioOutputDevice",
            "audioRingDevice",
            "ringingSound",
            "volumeRing",
            "volumeOutput",
            "volumeInput",
            "micAmplification",
            "swLevelAdjustment",
            "EC",
            "VAD",
            "audioCodecs",
            "forceCodec",
            "opusStereo",
            "DTMFMethod",
            "localDTMF",
        ],
    ),
    (
        "Calls",
        &[
            "autoAnswer",
            "autoAnswerDelay",
            "autoAnswerNumber",
            "autoAnswerCalls",
            "AA",
            "denyIncoming",
            "DND",
            "forwarding",
            "forwardingNumber",
            "forwardingDelay",
            "FWD",
            "callWaiting",
            "maxConcurrentCalls",
            "autoHangUpTime",
            "noIgnoreCall",
        ],
    ),
    (
        "Recording",
        &[
            "autoRecording",
            "recordingPath",
            "recordingFormat",
            "recordingButton",
        ],
    ),
    (
        "Network",
        &[
            "sourcePort",
            "rtpPortMin",
            "rtpPortMax",
            "rport",
            "enableSTUN",
            "STUN",
            "dnsSrv",
            "dnsSrvNs",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn every_key_is_in_the_schema_once() {
        let mut seen = std::collections::HashSet::new();
        for (tab, keys) in SETTINGS_TABS {
            for key in *keys {
                let spec = Settings::spec(key).unwrap_or_else(|| panic!("{tab}: {key} unknown"));
                assert_eq!(spec.name, *key, "spelled as MicroSIP writes it");
                assert!(seen.insert(*key), "{key} twice");
            }
        }
    }
}
