//! `[Calls]` (the call log) and `[Dialed]` (recently dialled numbers).
//!
//! `[Calls]` is a ring buffer of keys `0`..`999`; `[Settings] callsLastKey`
//! holds the newest. Each value is `number;name;type;time;duration;info`,
//! with no escaping: a `;` inside a field shifts the rest, and `info` ends
//! at its first `;`. A deleted entry is the literal `null`.

use serde::Serialize;

use super::document::IniDocument;
use super::value::parse_strict_int;

/// The `[Calls]` section name.
pub const CALLS_SECTION: &str = "Calls";
/// The `[Dialed]` section name.
pub const DIALED_SECTION: &str = "Dialed";
/// Keys of `[Calls]` run from 0 to this, then wrap.
pub const MAX_CALL_KEY: u32 = 999;
/// `[Dialed]` holds keys 0 (newest) to this.
pub const MAX_DIALED_KEY: u32 = 9;

/// The `type` field of a call record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallKind {
    /// 0: we called.
    Outgoing,
    /// 1: we answered.
    Incoming,
    /// 2: nobody answered.
    Missed,
    /// 3: another device answered.
    AnsweredElsewhere,
}

impl CallKind {
    /// MicroSIP reads any number outside 0-3 as outgoing.
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => CallKind::Incoming,
            2 => CallKind::Missed,
            3 => CallKind::AnsweredElsewhere,
            _ => CallKind::Outgoing,
        }
    }

    /// The number written in the file.
    pub fn code(self) -> u8 {
        match self {
            CallKind::Outgoing => 0,
            CallKind::Incoming => 1,
            CallKind::Missed => 2,
            CallKind::AnsweredElsewhere => 3,
        }
    }
}

/// One line of the call log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The key in `[Calls]` (0..=999).
    pub key: u32,
    /// The remote number (or `user@domain;params`).
    pub number: String,
    /// The remote name, as shown then.
    pub name: String,
    /// Direction and outcome.
    pub kind: CallKind,
    /// Start, Unix seconds.
    pub time: i64,
    /// Length in seconds.
    pub duration: u64,
    /// Status text (`Call Ended`, a SIP reason phrase, ...).
    pub info: String,
}

/// Why a `[Calls]` value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallParseError {
    /// Fewer than the five fields before `info`.
    TooFewFields(usize),
    /// A numeric field that is not a number.
    NotANumber {
        /// `type`, `time` or `duration`.
        field: &'static str,
        /// What it held.
        value: String,
    },
}

impl std::fmt::Display for CallParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallParseError::TooFewFields(n) => write!(
                f,
                "has {n} field(s); a call is number;name;type;time;duration;info"
            ),
            CallParseError::NotANumber { field, value } => {
                write!(f, "{field} {value:?} is not a whole number")
            }
        }
    }
}

impl CallRecord {
    /// Parses a `[Calls]` value. `Ok(None)` for a deleted (`null`) entry.
    pub fn parse(key: u32, value: &str) -> Result<Option<Self>, CallParseError> {
        if value == "null" {
            return Ok(None);
        }
        let fields: Vec<&str> = value.split(';').collect();
        if fields.len() < 5 {
            return Err(CallParseError::TooFewFields(fields.len()));
        }
        let number = |field: &'static str, text: &str| {
            parse_strict_int(text).ok_or_else(|| CallParseError::NotANumber {
                field,
                value: text.to_owned(),
            })
        };
        let kind = number("type", fields[2])?;
        let time = number("time", fields[3])?;
        let duration = number("duration", fields[4])?;
        let duration = u64::try_from(duration).map_err(|_| CallParseError::NotANumber {
            field: "duration",
            value: fields[4].to_owned(),
        })?;
        Ok(Some(Self {
            key,
            number: fields[0].to_owned(),
            name: fields[1].to_owned(),
            kind: CallKind::from_code(kind),
            time,
            duration,
            info: fields.get(5).copied().unwrap_or("").to_owned(),
        }))
    }

    /// The value as MicroSIP writes it. `;` in a field would shift the
    /// others, so it is replaced by `,` (MicroSIP has no escape for it).
    pub fn to_value(&self) -> String {
        let clean = |s: &str| s.replace(';', ",");
        format!(
            "{};{};{};{};{};{}",
            clean(&self.number),
            clean(&self.name),
            self.kind.code(),
            self.time,
            self.duration,
            clean(&self.info)
        )
    }

    /// The readable records of `[Calls]`, oldest first by time (as MicroSIP
    /// sorts them); unreadable and deleted entries are skipped.
    pub fn list(doc: &IniDocument) -> Vec<Self> {
        let mut calls: Vec<Self> = doc
            .entries(CALLS_SECTION)
            .into_iter()
            .filter_map(|e| {
                let key = u32::try_from(parse_strict_int(e.key)?).ok()?;
                CallRecord::parse(key, e.value).ok().flatten()
            })
            .collect();
        calls.sort_by_key(|c| (c.time, c.key));
        calls
    }
}

/// `[Dialed]`: recently dialled numbers.
pub struct Dialed;

impl Dialed {
    /// The numbers, newest first (key `0` is the newest).
    pub fn list(doc: &IniDocument) -> Vec<String> {
        let mut numbered: Vec<(i64, String)> = doc
            .entries(DIALED_SECTION)
            .into_iter()
            .filter_map(|e| {
                let (n, value) = (parse_strict_int(e.key)?, e.value);
                (0..=i64::from(MAX_DIALED_KEY))
                    .contains(&n)
                    .then(|| (n, value.to_owned()))
            })
            .filter(|(_, v)| !v.is_empty())
            .collect();
        numbered.sort_by_key(|(n, _)| *n);
        numbered.into_iter().map(|(_, v)| v).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::encoding::Encoding;

    #[test]
    fn records_as_microsip_writes_them() {
        let c = CallRecord::parse(5, "9787563142;Hard (Академическая);1;1718273852;0;")
            .unwrap()
            .unwrap();
        assert_eq!(c.name, "Hard (Академическая)");
        assert_eq!(c.kind, CallKind::Incoming);
        assert_eq!(c.info, "");
        assert_eq!(
            c.to_value(),
            "9787563142;Hard (Академическая);1;1718273852;0;"
        );
        let c = CallRecord::parse(9, "9231096480;test;3;1756109189;30;Answered Elsewhere")
            .unwrap()
            .unwrap();
        assert_eq!(c.kind, CallKind::AnsweredElsewhere);
        assert_eq!(c.duration, 30);
        assert_eq!(CallRecord::parse(1, "null"), Ok(None));
        assert_eq!(CallKind::from_code(7), CallKind::Outgoing);
    }

    #[test]
    fn broken_records_say_what_is_wrong() {
        assert_eq!(
            CallRecord::parse(1, "123;x;1").unwrap_err().to_string(),
            "has 3 field(s); a call is number;name;type;time;duration;info"
        );
        assert_eq!(
            CallRecord::parse(1, "123;x;1;yesterday;0;")
                .unwrap_err()
                .to_string(),
            "time \"yesterday\" is not a whole number"
        );
        assert!(CallRecord::parse(1, "123;x;1;0;-5;").is_err());
    }

    #[test]
    fn lists_skip_junk_and_sort() {
        let doc = IniDocument::from_text(
            Encoding::Utf8,
            "[Calls]\r\n0=1;a;0;200;1;\r\n1=null\r\n2=2;b;2;100;0;Missed Call\r\nx=3;c;0;1;1;\r\n[Dialed]\r\n1=222\r\n0=111\r\n12=999\r\n",
        );
        let numbers: Vec<String> = CallRecord::list(&doc)
            .into_iter()
            .map(|c| c.number)
            .collect();
        assert_eq!(numbers, vec!["2", "1"]);
        assert_eq!(Dialed::list(&doc), vec!["111", "222"]);
    }
}
