//! `[Settings]`: MicroSIP's global settings, every key typed with its
//! default (MicroSIP 3.22.3's set, in the order its `SettingsSave` writes).

use super::document::IniDocument;
use super::schema::{typed_section, KeySpec, Secret, CODECS_MAX_LEN, DEFAULT_MAX_LEN as M};
use super::value::{ini_enum, BoolRule, ValueType};

/// The section name.
pub const SECTION: &str = "Settings";

const B: ValueType = ValueType::Bool(BoolRule::Wtoi);
const B1: ValueType = ValueType::Bool(BoolRule::ExactlyOne);
const BNZ: ValueType = ValueType::Bool(BoolRule::NotZero);
const TEXT: ValueType = ValueType::Text;
const QUOTED: ValueType = ValueType::Quoted;
const COMMAND: ValueType = ValueType::Command;
const CODECS: ValueType = ValueType::Codecs;
const INT: ValueType = ValueType::Int {
    min: i32::MIN as i64,
    max: i32::MAX as i64,
};
const UINT: ValueType = ValueType::Int {
    min: 0,
    max: i32::MAX as i64,
};
const PORT: ValueType = ValueType::Int { min: 0, max: 65535 };
const PERCENT: ValueType = ValueType::Int { min: 0, max: 100 };
const ACCOUNT_ID: ValueType = ValueType::Int { min: 0, max: 999 };
const CALLS_LAST_KEY: ValueType = ValueType::Int { min: -1, max: 999 };

ini_enum! {
    /// `recordingFormat`.
    pub enum RecordingFormat {
        /// Empty: MP3.
        Default = "",
        /// MP3 (needs lame_enc.dll beside MicroSIP).
        Mp3 = "mp3",
        /// WAV.
        Wav = "wav",
    }
}

ini_enum! {
    /// `DTMFMethod`.
    pub enum DtmfMethod {
        /// Chosen by the call (RFC 2833 when offered).
        Auto = "0",
        /// Tones in the audio.
        InBand = "1",
        /// RFC 2833 / RFC 4733 telephone-event.
        Rfc2833 = "2",
        /// SIP INFO (`application/dtmf-relay`).
        SipInfo = "3",
    }
}

ini_enum! {
    /// `autoAnswer`.
    pub enum AutoAnswer {
        /// Never.
        Off = "",
        /// While the AA toggle is on.
        Button = "button",
        /// When the INVITE asks for it (X-AUTOANSWER, Call-Info).
        Header = "header",
        /// Every call.
        All = "all",
    }
}

ini_enum! {
    /// `autoAnswerCalls`: auto answer while other calls exist.
    pub enum AutoAnswerCalls {
        /// Only when there is no other call.
        NoOtherCall = "",
        /// When the other calls are on hold.
        Hold = "hold",
        /// Always.
        All = "all",
    }
}

ini_enum! {
    /// `forwarding`.
    pub enum Forwarding {
        /// Off.
        Off = "",
        /// While the FWD toggle is on.
        Button = "button",
        /// Always.
        All = "all",
    }
}

ini_enum! {
    /// `denyIncoming`: which incoming calls are rejected (486).
    pub enum DenyIncoming {
        /// None.
        Off = "",
        /// Every call while DND is on.
        Button = "button",
        /// Calls to another user than the account's.
        User = "user",
        /// Calls to another domain than the account's.
        Domain = "domain",
        /// Calls to another user or domain.
        UserDomain = "userdomain",
        /// Calls from another domain.
        RemoteDomain = "remotedomain",
        /// Every call.
        All = "all",
    }
}

ini_enum! {
    /// `defaultAction`: what a double click on a contact does.
    pub enum DefaultAction {
        /// MicroSIP's default.
        Default = "",
        /// Call.
        Call = "call",
        /// Video call.
        Video = "video",
        /// Open a message window.
        Message = "message",
    }
}

ini_enum! {
    /// `updatesInterval`.
    pub enum UpdatesInterval {
        /// Weekly.
        Weekly = "",
        /// Daily.
        Daily = "daily",
        /// Monthly.
        Monthly = "monthly",
        /// Every 90 days.
        Quarterly = "quarterly",
        /// Never check.
        Never = "never",
        /// At every start.
        Always = "always",
    }
}

/// The `ValueType` of each enum above, for the key table.
trait EnumType {
    const TYPE: ValueType;
}

macro_rules! enum_type {
    ($($name:ident),*) => { $( impl EnumType for $name { const TYPE: ValueType = ValueType::Enum(Self::VALUES); } )* };
}
enum_type!(
    RecordingFormat,
    DtmfMethod,
    AutoAnswer,
    AutoAnswerCalls,
    Forwarding,
    DenyIncoming,
    DefaultAction,
    UpdatesInterval
);

typed_section! {
    /// `[Settings]`, typed. Absent keys hold MicroSIP's defaults; keys this
    /// struct does not know stay in the document untouched.
    pub struct Settings, table SETTINGS_KEYS {
        version: String = "version", TEXT, "", M, "MicroSIP version that last wrote the file";
        account_id: i64 = "accountId", ACCOUNT_ID, "1", M, "Active account number; 0 = the local (call by IP) account only";
        single_mode: bool = "singleMode", B, "1", M, "Single call mode user interface";
        ringing_sound: String = "ringingSound", TEXT, "", M, "Custom ring WAV file; empty = built-in ringtone";
        volume_ring: i64 = "volumeRing", PERCENT, "100", M, "Ring volume, 0 to 100";
        audio_ring_device: String = "audioRingDevice", QUOTED, "", M, "Ring device name (written in quotes); empty = system default";
        audio_output_device: String = "audioOutputDevice", QUOTED, "", M, "Speaker device name (written in quotes); empty = system default";
        audio_input_device: String = "audioInputDevice", QUOTED, "", M, "Microphone device name (written in quotes); empty = system default";
        mic_amplification: bool = "micAmplification", B, "0", M, "Microphone amplification";
        sw_level_adjustment: bool = "swLevelAdjustment", B, "0", M, "Software level adjustment";
        audio_codecs: String = "audioCodecs", CODECS, "PCMA/8000/1 PCMU/8000/1", CODECS_MAX_LEN, "Codec ids NAME/RATE/CHANNELS in priority order";
        vad: bool = "VAD", B, "0", M, "Voice activity detection";
        ec: bool = "EC", B, "1", M, "Echo canceller";
        force_codec: bool = "forceCodec", B, "0", M, "Use our codec order on incoming calls";
        opus_stereo: bool = "opusStereo", B, "0", M, "Opus in stereo at 96 kbit/s";
        disable_messaging: bool = "disableMessaging", B, "0", M, "Disable SIP MESSAGE";
        disable_video: bool = "disableVideo", B1, "0", M, "Disable video (video builds)";
        video_capture_device: String = "videoCaptureDevice", QUOTED, "", M, "Camera name (written in quotes)";
        video_codec: String = "videoCodec", TEXT, "", M, "Preferred video codec id";
        video_h264: bool = "videoH264", BNZ, "1", M, "H.264 enabled";
        video_h263: bool = "videoH263", BNZ, "1", M, "H.263 enabled";
        video_vp8: bool = "videoVP8", BNZ, "1", M, "VP8 enabled";
        video_vp9: bool = "videoVP9", BNZ, "1", M, "VP9 enabled";
        video_bitrate: i64 = "videoBitrate", UINT, "0", M, "Video bit rate in kbit/s; 0 = default";
        rport: bool = "rport", BNZ, "1", M, "Use rport (RFC 3581); only 0 turns it off";
        source_port: i64 = "sourcePort", PORT, "0", M, "Local SIP port; 0 = any free port";
        rtp_port_min: i64 = "rtpPortMin", PORT, "0", M, "Lowest RTP port; 0 = any";
        rtp_port_max: i64 = "rtpPortMax", PORT, "0", M, "Highest RTP port";
        dns_srv_ns: String = "dnsSrvNs", TEXT, "", M, "Name servers for SRV lookups, separated by ; or ,";
        dns_srv: bool = "dnsSrv", B1, "0", M, "Use DNS SRV";
        stun: String = "STUN", TEXT, "", M, "STUN servers, separated by ; or ,";
        enable_stun: bool = "enableSTUN", B1, "0", M, "Use STUN";
        recording_path: String = "recordingPath", TEXT, "", M, "Recordings folder; empty = Recordings (portable) or Desktop\\Recordings";
        recording_format: RecordingFormat = "recordingFormat", RecordingFormat::TYPE, "", M, "Recording format: wav, otherwise mp3";
        auto_recording: bool = "autoRecording", B, "0", M, "Record every call";
        recording_button: bool = "recordingButton", B, "1", M, "Show the record button";
        button_ac: bool = "buttonAC", B, "1", M, "Show the auto-conference button";
        button_conf: bool = "buttonCONF", B, "1", M, "Show the conference button";
        dtmf_method: DtmfMethod = "DTMFMethod", DtmfMethod::TYPE, "0", M, "DTMF: 0 auto, 1 in-band, 2 RFC 2833, 3 SIP INFO";
        auto_answer: AutoAnswer = "autoAnswer", AutoAnswer::TYPE, "button", M, "Auto answer: empty = never, button, header, all";
        auto_answer_delay: i64 = "autoAnswerDelay", UINT, "0", M, "Seconds before auto answer";
        auto_answer_number: String = "autoAnswerNumber", TEXT, "", M, "Callers to auto-answer, patterns separated by ; or |";
        auto_answer_calls: AutoAnswerCalls = "autoAnswerCalls", AutoAnswerCalls::TYPE, "", M, "Auto answer with other calls: empty = only when none, hold, all";
        forwarding: Forwarding = "forwarding", Forwarding::TYPE, "", M, "Call forwarding: empty = off, button, all";
        forwarding_number: String = "forwardingNumber", TEXT, "", M, "Number calls are forwarded to";
        forwarding_delay: i64 = "forwardingDelay", UINT, "0", M, "Seconds before forwarding; 0 = at once";
        feature_code_cp: String = "featureCodeCP", TEXT, "**", M, "Call pickup prefix";
        feature_code_bt: String = "featureCodeBT", TEXT, "##", M, "Blind transfer prefix";
        feature_code_at: String = "featureCodeAT", TEXT, "*2", M, "Attended transfer prefix";
        enable_feature_code_cp: bool = "enableFeatureCodeCP", B, "1", M, "Call pickup feature code enabled";
        enable_feature_code_bt: bool = "enableFeatureCodeBT", B, "0", M, "Blind transfer feature code enabled";
        enable_feature_code_at: bool = "enableFeatureCodeAT", B, "0", M, "Attended transfer feature code enabled";
        deny_incoming: DenyIncoming = "denyIncoming", DenyIncoming::TYPE, "button", M, "Reject incoming calls: empty, button, user, domain, userdomain, remotedomain, all";
        users_directory: String = "usersDirectory", TEXT, "", M, "URL of a remote phone book";
        default_action: DefaultAction = "defaultAction", DefaultAction::TYPE, "", M, "Double-click action: empty, call, video, message";
        enable_media_buttons: bool = "enableMediaButtons", B, "0", M, "Handle keyboard media keys";
        headset_support: bool = "headsetSupport", B, "0", M, "HID headset hook and ring";
        local_dtmf: bool = "localDTMF", B, "1", M, "Play DTMF tones locally";
        enable_log: bool = "enableLog", B, "0", M, "Write the SIP log file";
        bring_to_front_on_incoming: bool = "bringToFrontOnIncoming", B, "1", M, "Raise the window on an incoming call";
        enable_local_account: bool = "enableLocalAccount", B, "0", M, "Keep the local (call by IP) account active";
        random_answer_box: bool = "randomAnswerBox", B, "0", M, "Place the incoming call box at random";
        disable_name_lookup: bool = "disableNameLookup", B, "0", M, "Do not name callers from the contacts";
        call_waiting: bool = "callWaiting", B, "1", M, "Accept a second incoming call; 0 answers it 486";
        multi_monitor: bool = "multiMonitor", B, "0", M, "Multi-monitor window placement";
        network_changes: bool = "networkChanges", B, "1", M, "Re-register when the network changes";
        updates_interval: UpdatesInterval = "updatesInterval", UpdatesInterval::TYPE, "", M, "Update checks: empty = weekly, daily, monthly, quarterly, never, always";
        check_updates_time: i64 = "checkUpdatesTime", INT, "0", M, "Unix time of the last update check";
        no_resize: bool = "noResize", B1, "0", M, "Fixed window size";
        user_agent: String = "userAgent", TEXT, "", M, "SIP User-Agent; empty = MicroSIP/<version>";
        auto_hang_up_time: i64 = "autoHangUpTime", UINT, "0", M, "Seconds after answer before hanging up; 0 = never";
        max_concurrent_calls: i64 = "maxConcurrentCalls", UINT, "0", M, "Most calls at once; 0 = unlimited, above it 486";
        no_ignore_call: bool = "noIgnoreCall", B1, "0", M, "Hide the Ignore button";
        cmd_outgoing_call: String = "cmdOutgoingCall", COMMAND, "", M, "Program run on an outgoing call";
        cmd_incoming_call: String = "cmdIncomingCall", COMMAND, "", M, "Program run on every incoming call";
        cmd_call_ring: String = "cmdCallRing", COMMAND, "", M, "Program run when an incoming call rings";
        cmd_call_answer: String = "cmdCallAnswer", COMMAND, "", M, "Program run when we answer a call";
        cmd_call_answer_video: String = "cmdCallAnswerVideo", COMMAND, "", M, "Program run when we answer a video call";
        cmd_call_busy: String = "cmdCallBusy", COMMAND, "", M, "Program run when a call ends busy or declined";
        cmd_call_start: String = "cmdCallStart", COMMAND, "", M, "Program run when a call is established";
        cmd_call_end: String = "cmdCallEnd", COMMAND, "", M, "Program run when a call ends";
        minimized: bool = "minimized", B, "0", M, "Always start hidden in the tray";
        port_knocker_host: String = "portKnockerHost", TEXT, "", M, "Port knocking host; empty = the server";
        port_knocker_ports: String = "portKnockerPorts", TEXT, "", M, "Port knocking ports, comma separated";
        main_x: i64 = "mainX", INT, "0", M, "Window geometry";
        main_y: i64 = "mainY", INT, "0", M, "Window geometry";
        main_w: i64 = "mainW", INT, "0", M, "Window geometry";
        main_h: i64 = "mainH", INT, "0", M, "Window geometry";
        messages_x: i64 = "messagesX", INT, "0", M, "Window geometry";
        messages_y: i64 = "messagesY", INT, "0", M, "Window geometry";
        messages_w: i64 = "messagesW", INT, "0", M, "Window geometry";
        messages_h: i64 = "messagesH", INT, "0", M, "Window geometry";
        ringin_x: i64 = "ringinX", INT, "0", M, "Window geometry";
        ringin_y: i64 = "ringinY", INT, "0", M, "Window geometry";
        calls_width0: i64 = "callsWidth0", INT, "0", M, "Call list column width; 0 = default";
        calls_width1: i64 = "callsWidth1", INT, "0", M, "Call list column width; 0 = default";
        calls_width2: i64 = "callsWidth2", INT, "0", M, "Call list column width; 0 = default";
        calls_width3: i64 = "callsWidth3", INT, "0", M, "Call list column width; 0 = default";
        calls_width4: i64 = "callsWidth4", INT, "0", M, "Call list column width; 0 = default";
        calls_width5: i64 = "callsWidth5", INT, "0", M, "Call list column width; 0 = default";
        contacts_width0: i64 = "contactsWidth0", INT, "0", M, "Contact list column width; 0 = default";
        contacts_width1: i64 = "contactsWidth1", INT, "0", M, "Contact list column width; 0 = default";
        contacts_width2: i64 = "contactsWidth2", INT, "0", M, "Contact list column width; 0 = default";
        volume_output: i64 = "volumeOutput", PERCENT, "100", M, "Speaker volume, 0 to 100";
        volume_input: i64 = "volumeInput", PERCENT, "100", M, "Microphone volume, 0 to 100";
        active_tab: i64 = "activeTab", INT, "0", M, "Tab shown at start";
        fwd: bool = "FWD", B, "0", M, "Forward toggle state";
        aa: bool = "AA", B, "0", M, "Auto-answer toggle state";
        ac: bool = "AC", B, "0", M, "Auto-conference toggle state";
        dnd: bool = "DND", B, "0", M, "Do-not-disturb toggle state";
        always_on_top: bool = "alwaysOnTop", B, "0", M, "Window always on top";
        enable_shortcuts: bool = "enableShortcuts", B, "0", M, "Show the speed-dial panel";
        shortcuts_bottom: bool = "shortcutsBottom", B, "0", M, "Speed-dial panel at the bottom";
        last_call_number: String = "lastCallNumber", TEXT, "", M, "Number of the last call, for redial";
        last_call_has_video: bool = "lastCallHasVideo", B1, "0", M, "The last call had video";
        calls_last_key: i64 = "callsLastKey", CALLS_LAST_KEY, "-1", M, "Newest key of the [Calls] ring buffer";
        webhook_url: String = "webhookUrl", TEXT, "", M, "msipphone extension (not MicroSIP): http(s) URL call events are POSTed to as JSON; empty = off";
        webhook_secret: Secret = "webhookSecret", TEXT, "", M, "msipphone extension (not MicroSIP): key of the X-Msipphone-Signature HMAC-SHA256 of each webhook body";
    }
}

/// Keys MicroSIP no longer writes but that old files carry: `silent` and
/// `crashReport` from 3.19-3.21 builds, and the single-account keys that
/// MicroSIP moves into `[Account1]` when `accountId` is missing.
pub const LEGACY_KEYS: &[&str] = &[
    "silent",
    "crashReport",
    "server",
    "proxy",
    "SRTP",
    "transport",
    "publicAddr",
    "publish",
    "ICE",
    "allowRewrite",
    "domain",
    "authID",
    "username",
    "passwordSize",
    "password",
    "id",
    "displayName",
];

impl Settings {
    /// Reads `[Settings]` from a document.
    pub fn from_document(doc: &IniDocument) -> Self {
        Self::read_with(|key| doc.get(SECTION, key))
    }

    /// The key's spec, if `[Settings]` has such a key.
    pub fn spec(key: &str) -> Option<&'static KeySpec> {
        super::schema::find(SETTINGS_KEYS, key)
    }

    /// The codec ids in priority order; an empty list means MicroSIP's
    /// default, as at its stack start.
    pub fn codecs(&self) -> Vec<&str> {
        let list: Vec<&str> = self.audio_codecs.split_whitespace().collect();
        if list.is_empty() {
            vec!["PCMA/8000/1", "PCMU/8000/1"]
        } else {
            list
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::read_with(|_| None)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_webhook_secret_never_shows() {
        let doc = IniDocument::parse(b"[Settings]\nwebhookSecret=hunter2\n").unwrap();
        let settings = Settings::from_document(&doc);
        assert_eq!(settings.webhook_secret.expose(), "hunter2");
        let json = serde_json::to_string(&settings).unwrap();
        assert!(
            !json.contains("hunter2") && json.contains("\"webhookSecret\":\"********\""),
            "{json}"
        );
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    use super::*;
    use crate::config::encoding::Encoding;

    #[test]
    fn absent_keys_give_microsip_defaults() {
        let s = Settings::default();
        assert!(s.ec && s.rport && s.single_mode && s.call_waiting);
        assert!(!s.vad && !s.enable_log);
        assert_eq!(s.volume_ring, 100);
        assert_eq!(s.auto_answer, AutoAnswer::Button);
        assert_eq!(s.deny_incoming, DenyIncoming::Button);
        assert_eq!(s.feature_code_at, "*2");
        assert_eq!(s.calls_last_key, -1);
        assert_eq!(s.codecs(), vec!["PCMA/8000/1", "PCMU/8000/1"]);
    }

    #[test]
    fn values_are_read_as_microsip_reads_them() {
        let doc = IniDocument::from_text(
            Encoding::Utf8,
            "[Settings]\r\nEC=0\r\nrport=2\r\nenableSTUN=2\r\nVAD=2\r\nautoAnswer=all\r\n\
             audioInputDevice=\"Mic (USB)\"\r\nDTMFMethod=9\r\nvolumeRing=\r\nsourcePort=5062\r\n\
             audioCodecs=opus/48000/2 PCMU/8000/1\r\n",
        );
        let s = Settings::from_document(&doc);
        assert!(!s.ec);
        assert!(s.rport, "rport: anything but 0 is on");
        assert!(!s.enable_stun, "enableSTUN: only 1 is on");
        assert!(s.vad, "VAD: _wtoi != 0");
        assert_eq!(s.auto_answer, AutoAnswer::All);
        assert_eq!(s.audio_input_device, "Mic (USB)");
        assert_eq!(
            s.dtmf_method,
            DtmfMethod::Auto,
            "unknown DTMFMethod acts as 0"
        );
        assert_eq!(s.volume_ring, 100, "empty number: the default");
        assert_eq!(s.source_port, 5062);
        assert_eq!(s.codecs(), vec!["opus/48000/2", "PCMU/8000/1"]);
    }

    #[test]
    fn the_table_has_unique_keys_with_valid_defaults() {
        let mut seen = std::collections::HashSet::new();
        for spec in SETTINGS_KEYS {
            assert!(
                seen.insert(spec.name.to_lowercase()),
                "duplicate key {}",
                spec.name
            );
            assert!(
                spec.ty.check(spec.default).is_none(),
                "bad default for {}",
                spec.name
            );
        }
        assert!(SETTINGS_KEYS.len() > 110);
    }
}
