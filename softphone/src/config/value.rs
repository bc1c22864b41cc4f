//! The kinds of values MicroSIP keeps in `microsip.ini`: how each is read
//! (leniently, as MicroSIP does) and how each is checked (strictly, so lint
//! catches what MicroSIP would silently misread).

use super::diagnostic::Severity;

/// How MicroSIP turns a boolean key's text into true or false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolRule {
    /// `_wtoi(value) != 0`: `2` is true, `yes` is false.
    Wtoi,
    /// True only for exactly `1`.
    ExactlyOne,
    /// True unless exactly `0`.
    NotZero,
}

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `0` or `1`, read by the rule given.
    Bool(BoolRule),
    /// A whole number in `min..=max`.
    Int {
        /// Smallest value that makes sense.
        min: i64,
        /// Largest value that makes sense.
        max: i64,
    },
    /// One of a fixed set of words (`""` listed when empty is allowed).
    Enum(&'static [&'static str]),
    /// Free text.
    Text,
    /// Text MicroSIP writes inside double quotes (audio/video device names).
    Quoted,
    /// Space-separated codec ids `NAME/RATE/CHANNELS`.
    Codecs,
    /// A command line run on an event (the `cmd*` hooks).
    Command,
    /// `host[:port]` (IPv6 in brackets), without a `sip:` prefix.
    HostPort,
    /// Space-separated `host[:port]` list (outbound proxies).
    HostPortList,
    /// A password: plain text, or MicroSIP's encrypted hex.
    Password,
}

/// A problem with one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, without the key name (the caller adds it).
    pub message: String,
}

impl ValueProblem {
    fn error(message: String) -> Self {
        Self {
            severity: Severity::Error,
            message,
        }
    }

    fn warning(message: String) -> Self {
        Self {
            severity: Severity::Warning,
            message,
        }
    }
}

/// Codec ids MicroSIP 3.22 knows (its caption table); others are ignored.
pub const KNOWN_CODECS: &[&str] = &[
    "opus/48000/2",
    "PCMA/8000/1",
    "PCMU/8000/1",
    "G722/16000/1",
    "G7221/16000/1",
    "G7221/32000/1",
    "G723/8000/1",
    "G729/8000/1",
    "GSM/8000/1",
    "GSM-EFR/8000/1",
    "AMR/8000/1",
    "AMR-WB/16000/1",
    "iLBC/8000/1",
    "speex/32000/1",
    "speex/16000/1",
    "speex/8000/1",
    "SILK/24000/1",
    "SILK/16000/1",
    "SILK/12000/1",
    "SILK/8000/1",
    "L16/8000/1",
    "L16/8000/2",
    "L16/16000/1",
    "L16/16000/2",
    "L16/44100/1",
    "L16/44100/2",
    "L16/48000/1",
    "L16/48000/2",
];

impl ValueType {
    /// Checks a value as read (trimmed, unquoted). An empty value is always
    /// accepted for numbers and booleans: MicroSIP reads it as the default.
    pub fn check(&self, value: &str) -> Option<ValueProblem> {
        match *self {
            ValueType::Bool(_) => (!value.is_empty() && value != "0" && value != "1")
                .then(|| ValueProblem::error(format!("{value:?} is not 0 or 1"))),
            ValueType::Int { min, max } => check_int(value, min, max),
            ValueType::Enum(allowed) => check_enum(value, allowed),
            ValueType::Text | ValueType::Quoted | ValueType::Command | ValueType::Password => None,
            ValueType::Codecs => check_codecs(value),
            ValueType::HostPort => check_host_port(value),
            ValueType::HostPortList => value.split_whitespace().find_map(check_host_port),
        }
    }
}

fn check_int(value: &str, min: i64, max: i64) -> Option<ValueProblem> {
    if value.is_empty() {
        return None;
    }
    match parse_strict_int(value) {
        None => Some(ValueProblem::error(format!(
            "{value:?} is not a whole number"
        ))),
        Some(n) if n < min || n > max => Some(ValueProblem::error(format!(
            "{n} is out of range ({min} to {max})"
        ))),
        Some(_) => None,
    }
}

fn check_enum(value: &str, allowed: &[&str]) -> Option<ValueProblem> {
    if allowed.contains(&value) {
        return None;
    }
    let words: Vec<&str> = allowed.iter().copied().filter(|w| !w.is_empty()).collect();
    let mut message = format!("{value:?} is not one of {}", words.join(", "));
    if allowed.contains(&"") {
        message.push_str(" (or empty)");
    }
    if let Some(close) = allowed
        .iter()
        .find(|w| !w.is_empty() && w.eq_ignore_ascii_case(value))
    {
        message.push_str(&format!(
            "; MicroSIP compares case-sensitively: write {close:?}"
        ));
    }
    Some(ValueProblem::error(message))
}

fn check_codecs(value: &str) -> Option<ValueProblem> {
    for token in value.split_whitespace() {
        let parts: Vec<&str> = token.split('/').collect();
        let well_formed = parts.len() == 3
            && !parts[0].is_empty()
            && parse_strict_int(parts[1]).is_some_and(|r| r > 0)
            && parse_strict_int(parts[2]).is_some_and(|c| c == 1 || c == 2);
        if !well_formed {
            return Some(ValueProblem::error(format!(
                "codec {token:?} is not NAME/RATE/CHANNELS (e.g. PCMA/8000/1)"
            )));
        }
        if !KNOWN_CODECS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(token))
        {
            return Some(ValueProblem::warning(format!(
                "codec {token:?} is not one MicroSIP knows; it is ignored"
            )));
        }
    }
    None
}

fn check_host_port(value: &str) -> Option<ValueProblem> {
    if value.is_empty() {
        return None;
    }
    let bad = |why: &str| Some(ValueProblem::error(format!("{value:?} {why}")));
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        return bad("must be a host[:port] without the sip: prefix (MicroSIP adds it)");
    }
    if value.chars().any(char::is_whitespace) {
        return bad("must be a single host[:port] without spaces");
    }
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, tail)) => match tail.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return bad("has text after the IPv6 address"),
            },
            None => return bad("opens an IPv6 address with [ but does not close it"),
        }
    } else {
        match value.split_once(':') {
            Some((_, rest)) if rest.contains(':') => {
                return bad(
                    "looks like an IPv6 address: write it in brackets, e.g. [2001:db8::1]:5060",
                )
            }
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    if host.is_empty() {
        return bad("has no host");
    }
    if !value.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return bad("is not a valid host name");
    }
    if let Some(port) = port {
        if !parse_strict_int(port).is_some_and(|p| (1..=65535).contains(&p)) {
            return Some(ValueProblem::error(format!(
                "{value:?}: port {port:?} is not a number from 1 to 65535"
            )));
        }
    }
    None
}

/// `-?[0-9]+` with nothing around it, as a lint wants.
pub fn parse_strict_int(value: &str) -> Option<i64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Windows' `_wtoi`: optional white space and sign, then as many digits as
/// there are; anything else gives 0. This is how MicroSIP reads numbers.
pub fn wtoi(value: &str) -> i64 {
    let s = value.trim_start();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    let n = if negative { -n } else { n };
    n.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

/// Reads a boolean the way MicroSIP does for a key with `rule`.
pub fn read_bool(value: &str, rule: BoolRule) -> bool {
    match rule {
        BoolRule::Wtoi => wtoi(value) != 0,
        BoolRule::ExactlyOne => value == "1",
        BoolRule::NotZero => value != "0",
    }
}

/// Defines a closed set of words a key may hold, as a Rust enum that knows
/// its spelling in the file.
macro_rules! ini_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name { $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+ }

        impl $name {
            /// Every spelling the file may use, `""` included when allowed.
            pub const VALUES: &'static [&'static str] = &[$($text),+];

            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value for its spelling in the file, if it is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some(Self::$variant), )+
                    _ => None,
                }
            }

            /// The spelling in the file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl $crate::config::schema::FromIni for $name {
            fn from_ini(raw: Option<&str>, spec: &$crate::config::schema::KeySpec) -> Self {
                // Text MicroSIP does not know acts like the default.
                raw.and_then(Self::parse)
                    .or_else(|| Self::parse(spec.default))
                    .unwrap_or(Self::ALL[0])
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use ini_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wtoi_is_as_lenient_as_windows() {
        assert_eq!(wtoi("42abc"), 42);
        assert_eq!(wtoi("  -7"), -7);
        assert_eq!(wtoi("yes"), 0);
        assert_eq!(wtoi("99999999999"), i64::from(i32::MAX));
        assert!(read_bool("2", BoolRule::Wtoi));
        assert!(!read_bool("2", BoolRule::ExactlyOne));
        assert!(read_bool("", BoolRule::NotZero));
    }

    #[test]
    fn checks_name_what_is_wrong() {
        let transport = ValueType::Enum(&["", "udp", "tcp", "tls"]);
        assert_eq!(
            transport.check("udpp").unwrap().message,
            "\"udpp\" is not one of udp, tcp, tls (or empty)"
        );
        assert!(transport
            .check("UDP")
            .unwrap()
            .message
            .contains("write \"udp\""));
        assert!(transport.check("").is_none());
        let port = ValueType::Int { min: 0, max: 65535 };
        assert_eq!(
            port.check("70000").unwrap().message,
            "70000 is out of range (0 to 65535)"
        );
        assert_eq!(
            port.check("5o60").unwrap().message,
            "\"5o60\" is not a whole number"
        );
        assert!(ValueType::Bool(BoolRule::Wtoi).check("yes").is_some());
        assert!(ValueType::Codecs
            .check("PCMA/8000/1 opus/48000/2")
            .is_none());
        assert_eq!(
            ValueType::Codecs.check("PCMA").unwrap().severity,
            Severity::Error
        );
        assert_eq!(
            ValueType::Codecs.check("foo/8000/1").unwrap().severity,
            Severity::Warning
        );
    }

    #[test]
    fn host_port_checks() {
        for ok in [
            "sip.example.com",
            "10.0.0.1:5060",
            "[2001:db8::1]:5061",
            "[::1]",
            "pbx_1.local",
        ] {
            assert!(ValueType::HostPort.check(ok).is_none(), "{ok}");
        }
        for bad in [
            "sip:pbx",
            "pbx:0",
            "pbx:abc",
            "a b",
            "2001:db8::1",
            "[::1",
            "[::1]x",
            ":5060",
        ] {
            assert!(ValueType::HostPort.check(bad).is_some(), "{bad}");
        }
        assert!(ValueType::HostPortList.check("p1:5060 p2").is_none());
        assert!(ValueType::HostPortList.check("p1 sip:p2").is_some());
    }
}
