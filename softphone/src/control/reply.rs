//! Replies on the control socket: one JSON object per line with a numeric
//! `code` from a small documented table ([`ReplyCode`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What happened to a request. `msipphone ctl` exits with this number.
///
/// | code | status | meaning |
/// |---|---|---|
/// | 0 | `ok` | done |
/// | 1 | `refused` | the connection is not the phone's user's, or an internal error |
/// | 2 | `bad_command` | unknown command or bad argument (the message names it) |
/// | 3 | `nothing_to_act_on` | no call for it (none active/ringing/held, `call=N` unknown, ended or in the wrong state), or no window (headless) |
/// | 4 | `failed` | SIP or network error; the message says why |
/// | 5 | `stopping` | the phone is shutting down |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplyCode {
    /// Done.
    Ok = 0,
    /// Another user, or an internal error.
    Refused = 1,
    /// Unknown command or bad argument.
    BadCommand = 2,
    /// No call (or no window) to act on.
    NothingToActOn = 3,
    /// SIP or network error.
    Failed = 4,
    /// The phone is stopping.
    Stopping = 5,
}

impl ReplyCode {
    /// Every code, for the documentation table.
    pub const ALL: [ReplyCode; 6] = [
        ReplyCode::Ok,
        ReplyCode::Refused,
        ReplyCode::BadCommand,
        ReplyCode::NothingToActOn,
        ReplyCode::Failed,
        ReplyCode::Stopping,
    ];

    /// The number on the wire and the client's exit code.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The `status` word on the wire.
    pub fn status(self) -> &'static str {
        match self {
            ReplyCode::Ok => "ok",
            ReplyCode::Refused => "refused",
            ReplyCode::BadCommand => "bad_command",
            ReplyCode::NothingToActOn => "nothing_to_act_on",
            ReplyCode::Failed => "failed",
            ReplyCode::Stopping => "stopping",
        }
    }

    /// What it means, for `--help`.
    pub fn meaning(self) -> &'static str {
        match self {
            ReplyCode::Ok => "done",
            ReplyCode::Refused => "refused: not the phone's user (or an internal error)",
            ReplyCode::BadCommand => "unknown command or bad argument",
            ReplyCode::NothingToActOn => {
                "nothing to act on (no such call, the call is in the wrong state, or no window)"
            }
            ReplyCode::Failed => "failed: SIP or network error (the message says why)",
            ReplyCode::Stopping => "the phone is stopping",
        }
    }

    /// The code for a number read from the wire.
    pub fn from_number(n: u64) -> Option<ReplyCode> {
        Self::ALL.into_iter().find(|c| u64::from(c.number()) == n)
    }
}

/// One reply line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// [`ReplyCode::number`].
    pub code: u8,
    /// [`ReplyCode::status`].
    pub status: String,
    /// For people: what was done, or what is wrong.
    pub message: String,
    /// Command-specific fields (`call`, `accounts`, `calls`, ...).
    #[serde(flatten)]
    pub data: Map<String, Value>,
}

impl Reply {
    /// A reply with `code` and `message` and no data.
    pub fn new(code: ReplyCode, message: impl Into<String>) -> Reply {
        Reply {
            code: code.number(),
            status: code.status().to_owned(),
            message: message.into(),
            data: Map::new(),
        }
    }

    /// Success.
    pub fn ok(message: impl Into<String>) -> Reply {
        Reply::new(ReplyCode::Ok, message)
    }

    /// Adds a data field (fields named like the fixed ones are ignored).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Reply {
        if !matches!(key, "code" | "status" | "message") {
            self.data.insert(
                key.to_owned(),
                serde_json::to_value(value).unwrap_or(Value::Null),
            );
        }
        self
    }

    /// The reply's code, [`ReplyCode::Refused`] for an unknown number.
    pub fn reply_code(&self) -> ReplyCode {
        ReplyCode::from_number(u64::from(self.code)).unwrap_or(ReplyCode::Refused)
    }

    /// One JSON line, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"code":1,"status":"refused","message":"reply not serialisable"}"#.to_owned()
        });
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_numbers() {
        let table: Vec<(u8, &str)> = ReplyCode::ALL
            .iter()
            .map(|c| (c.number(), c.status()))
            .collect();
        assert_eq!(
            table,
            [
                (0, "ok"),
                (1, "refused"),
                (2, "bad_command"),
                (3, "nothing_to_act_on"),
                (4, "failed"),
                (5, "stopping")
            ]
        );
        for c in ReplyCode::ALL {
            assert_eq!(ReplyCode::from_number(u64::from(c.number())), Some(c));
        }
        assert_eq!(ReplyCode::from_number(9), None);
    }

    #[test]
    fn a_reply_is_one_json_line_and_reads_back() {
        let reply = Reply::new(ReplyCode::NothingToActOn, "no ringing call")
            .with("call", 3)
            .with("code", 99);
        let line = reply.to_line();
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        let value: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["code"], 3);
        assert_eq!(value["status"], "nothing_to_act_on");
        assert_eq!(value["call"], 3);
        let back: Reply = serde_json::from_str(&line).expect("reads back");
        assert_eq!(back, reply);
        assert_eq!(back.reply_code(), ReplyCode::NothingToActOn);
    }
}
