//! The command language of the control socket: MicroSIP's command set in
//! its three spellings, parsed into a [`Command`].
//!
//! - plain: `Dial 5551234`, `SetDevice output "Speakers (USB)"`;
//! - DDE: `[Dial(5551234)]`, `[SetDevice(output,Speakers)]`;
//! - WM_COPYDATA: `action:dial?number=5551234` (values percent-decoded).
//!
//! Command names are case-insensitive. Parsing is pure and never panics:
//! whatever the line, the result is a command or a [`ParseError`] naming
//! what is wrong.
//!
//! `Hangup`, `Answer`, `Reject`, `Hold`, `Transfer` and `SendDTMF` act on
//! the call MicroSIP would pick (the active or ringing one) unless a last
//! argument `call=N` names one by the id `Status` shows: `Hangup call=3`,
//! `[Transfer(5551234,call=3)]`, `action:transfer?number=5551234&call=3`.

use std::fmt;

pub use crate::sip::ua::CallId;

use super::notice::WindowRequest;

/// The longest request line accepted, in bytes (without the newline).
pub const MAX_LINE: usize = 8192;

/// The longest number or URI accepted (MicroSIP keeps 255 characters).
pub const MAX_TARGET: usize = 512;

/// The most DTMF digits (and pauses) one `SendDTMF` may carry.
pub const MAX_DTMF: usize = 64;

/// One request to the running phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Call a number or URI; an active call is put on hold first.
    Dial(String),
    /// Call a number or URI without holding the active call.
    CallTo(String),
    /// End the active call, or the call given (`call=N`).
    Hangup(Option<CallId>),
    /// End every call except ringing incoming ones (MicroSIP's `/hangupall`).
    HangupAll,
    /// Answer the oldest ringing incoming call, or the call given.
    Answer(Option<CallId>),
    /// Reject (486 Busy Here) the oldest ringing incoming call, or the call
    /// given.
    Reject(Option<CallId>),
    /// Toggle hold on the active call (else resume the newest held one),
    /// or on the call given.
    Hold(Option<CallId>),
    /// Blind transfer of the active call, or of the call given.
    Transfer {
        /// The number or URI the far end is sent to.
        to: String,
        /// `call=N`; `None`: the active call.
        call: Option<CallId>,
    },
    /// Send DTMF digits on the active call, or on the call given; `,` is a
    /// pause.
    SendDtmf {
        /// 0-9 * # A-D and `,`.
        digits: String,
        /// `call=N`; `None`: the active call.
        call: Option<CallId>,
    },
    /// Toggle the microphone mute.
    Mute,
    /// Speaker volume up by 1–10 steps.
    VolumeUp(u8),
    /// Speaker volume down by 1–10 steps.
    VolumeDown(u8),
    /// Speaker volume, 0–100.
    SetVolume(u8),
    /// Microphone volume, 0–100.
    SetMicVolume(u8),
    /// Choose an audio device.
    SetDevice {
        /// Which device.
        kind: DeviceKind,
        /// The device's name or id.
        id: String,
    },
    /// Registration and calls.
    Status,
    /// Stop the phone.
    Close,
    /// Re-read the configuration; calls stay up.
    Reload,
    /// Send a SIP MESSAGE.
    Message {
        /// Number or URI.
        to: String,
        /// The text.
        text: String,
    },
    /// Turn the connection into a stream of events (JSON lines).
    Subscribe,
    /// Bring the window to the front (un-hide, restore); headless: code 3.
    Show,
    /// Hide the window to the tray; headless: code 3.
    Hide,
    /// Minimize the window; headless: code 3.
    Minimize,
}

/// Which audio device `SetDevice` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// The microphone (`audioInputDevice`).
    Input,
    /// The speaker (`audioOutputDevice`).
    Output,
    /// The ringer (`audioRingDevice`).
    Ring,
}

impl DeviceKind {
    fn parse(text: &str) -> Option<DeviceKind> {
        match text.to_ascii_lowercase().as_str() {
            "input" | "in" | "mic" | "microphone" => Some(DeviceKind::Input),
            "output" | "out" | "speaker" | "speakers" => Some(DeviceKind::Output),
            "ring" | "ringer" | "ringing" => Some(DeviceKind::Ring),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Input => "input",
            DeviceKind::Output => "output",
            DeviceKind::Ring => "ring",
        }
    }
}

/// Why a request line is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but blanks.
    #[error("empty command")]
    Empty,
    /// Longer than [`MAX_LINE`].
    #[error("the command is longer than {MAX_LINE} bytes")]
    TooLong,
    /// A NUL or another control character (tabs and the final newline aside).
    #[error("the command contains the control character U+{0:04X}")]
    Control(u32),
    /// Not a command name we know.
    #[error("unknown command {0:?} (known: {KNOWN})")]
    Unknown(String),
    /// A DDE or `action:` form that does not hold together.
    #[error("malformed {form} form: {problem}")]
    Malformed {
        /// `[Name(args)]` or `action:name?key=value`.
        form: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The command is known, its argument is not acceptable.
    #[error("{command}: {problem}")]
    BadArgument {
        /// The command, as documented.
        command: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// Every command name, as documented.
const KNOWN: &str = "Dial, CallTo, Hangup, HangupAll, Answer, Reject, Hold, Transfer, SendDTMF, \
                     Mute, VolumeUp, VolumeDown, SetVolume, SetMicVolume, SetDevice, Status, \
                     Close, Reload, Message, Subscribe, Show, Hide, Minimize";

/// The arguments as one of the three forms carries them.
enum Args<'a> {
    /// Plain and DDE: the raw text after the name (DDE: inside the parens).
    Text { text: &'a str, dde: bool },
    /// `action:` query pairs, decoded.
    Query(Vec<(String, String)>),
}

impl Command {
    /// Parses one request line (any of the three forms).
    pub fn parse(line: &str) -> Result<Command, ParseError> {
        if line.len() > MAX_LINE {
            return Err(ParseError::TooLong);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(ParseError::Control(u32::from(c)));
        }
        let line = line.trim();
        if line.is_empty() {
            return Err(ParseError::Empty);
        }
        if let Some(inner) = line.strip_prefix('[') {
            return parse_dde(inner);
        }
        if line.len() >= 7 && line.is_char_boundary(7) && line[..7].eq_ignore_ascii_case("action:")
        {
            return parse_action(&line[7..]);
        }
        let (name, rest) = match line.split_once(char::is_whitespace) {
            Some((name, rest)) => (name, rest.trim()),
            None => (line, ""),
        };
        build(
            name,
            Args::Text {
                text: rest,
                dde: false,
            },
        )
    }

    /// The command's documented name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Dial(_) => "Dial",
            Command::CallTo(_) => "CallTo",
            Command::Hangup(_) => "Hangup",
            Command::HangupAll => "HangupAll",
            Command::Answer(_) => "Answer",
            Command::Reject(_) => "Reject",
            Command::Hold(_) => "Hold",
            Command::Transfer { .. } => "Transfer",
            Command::SendDtmf { .. } => "SendDTMF",
            Command::Mute => "Mute",
            Command::VolumeUp(_) => "VolumeUp",
            Command::VolumeDown(_) => "VolumeDown",
            Command::SetVolume(_) => "SetVolume",
            Command::SetMicVolume(_) => "SetMicVolume",
            Command::SetDevice { .. } => "SetDevice",
            Command::Status => "Status",
            Command::Close => "Close",
            Command::Reload => "Reload",
            Command::Message { .. } => "Message",
            Command::Subscribe => "Subscribe",
            Command::Show => "Show",
            Command::Hide => "Hide",
            Command::Minimize => "Minimize",
        }
    }

    /// The call `call=N` names, for the commands that take one.
    pub fn call(&self) -> Option<CallId> {
        match self {
            Command::Hangup(call)
            | Command::Answer(call)
            | Command::Reject(call)
            | Command::Hold(call)
            | Command::Transfer { call, .. }
            | Command::SendDtmf { call, .. } => *call,
            _ => None,
        }
    }

    /// What `Show`, `Hide` and `Minimize` ask of the window.
    pub fn window_request(&self) -> Option<WindowRequest> {
        match self {
            Command::Show => Some(WindowRequest::Show),
            Command::Hide => Some(WindowRequest::Hide),
            Command::Minimize => Some(WindowRequest::Minimize),
            _ => None,
        }
    }

    /// Whether carrying it out may change what a window shows: every
    /// command but `Status` (and `Subscribe`, which is not carried out).
    pub fn changes_state(&self) -> bool {
        !matches!(self, Command::Status | Command::Subscribe)
    }
}

/// The canonical plain form, which [`Command::parse`] reads back to the
/// same command (how a second `msipphone` hands its request over).
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Command::Dial(t) | Command::CallTo(t) => write!(f, "{name} \"{t}\""),
            Command::Transfer { to, call } => {
                write!(f, "{name} \"{to}\"")?;
                write_call(f, *call)
            }
            Command::SendDtmf { digits, call } => {
                write!(f, "{name} {digits}")?;
                write_call(f, *call)
            }
            Command::Hangup(call)
            | Command::Answer(call)
            | Command::Reject(call)
            | Command::Hold(call) => {
                f.write_str(name)?;
                write_call(f, *call)
            }
            Command::VolumeUp(n)
            | Command::VolumeDown(n)
            | Command::SetVolume(n)
            | Command::SetMicVolume(n) => write!(f, "{name} {n}"),
            Command::SetDevice { kind, id } => write!(f, "{name} {} \"{id}\"", kind.as_str()),
            Command::Message { to, text } => write!(f, "{name} \"{to}\" {text}"),
            _ => f.write_str(name),
        }
    }
}

/// ` call=N` after the arguments, when a call is named.
fn write_call(f: &mut fmt::Formatter<'_>, call: Option<CallId>) -> fmt::Result {
    match call {
        Some(id) => write!(f, " call={}", id.0),
        None => Ok(()),
    }
}

fn parse_dde(inner: &str) -> Result<Command, ParseError> {
    let malformed = |problem: &str| ParseError::Malformed {
        form: "[Name(args)]",
        problem: problem.to_owned(),
    };
    let inner = inner
        .strip_suffix(']')
        .ok_or_else(|| malformed("no closing ]"))?;
    let Some((name, rest)) = inner.split_once('(') else {
        // `[Status]`: no parentheses, no arguments.
        if inner.contains([')', '[', ']']) {
            return Err(malformed("unbalanced brackets"));
        }
        return build(
            inner.trim(),
            Args::Text {
                text: "",
                dde: true,
            },
        );
    };
    let args = rest
        .strip_suffix(')')
        .ok_or_else(|| malformed("no closing ) before ]"))?;
    if name.contains(['[', ']']) || args.contains(['[', ']']) {
        return Err(malformed("one command per line"));
    }
    build(
        name.trim(),
        Args::Text {
            text: args.trim(),
            dde: true,
        },
    )
}

fn parse_action(rest: &str) -> Result<Command, ParseError> {
    let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| {
            percent_decode(text).ok_or_else(|| ParseError::Malformed {
                form: "action:name?key=value",
                problem: format!("bad percent-encoding in {pair:?}"),
            })
        };
        pairs.push((decode(key)?.to_ascii_lowercase(), decode(value)?));
    }
    build(name.trim(), Args::Query(pairs))
}

/// `%XX` decoding into UTF-8 (`+` stays a plus: phone numbers carry it).
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    if text.chars().any(|c| c.is_control()) {
        return None;
    }
    Some(text)
}

fn build(name: &str, args: Args<'_>) -> Result<Command, ParseError> {
    let lower = name.to_ascii_lowercase();
    let command = match lower.as_str() {
        "dial" => Command::Dial(target("Dial", one(&args, &["number"])?)?),
        "callto" => Command::CallTo(target("CallTo", one(&args, &["number"])?)?),
        "transfer" => {
            let (args, call) = take_call("Transfer", args)?;
            Command::Transfer {
                to: target("Transfer", one(&args, &["number"])?)?,
                call,
            }
        }
        "senddtmf" | "dtmf" => {
            let (args, call) = take_call("SendDTMF", args)?;
            Command::SendDtmf {
                digits: dtmf(one(&args, &["digits", "number"])?)?,
                call,
            }
        }
        "volumeup" => Command::VolumeUp(steps("VolumeUp", &args)?),
        "volumedown" => Command::VolumeDown(steps("VolumeDown", &args)?),
        "setvolume" => Command::SetVolume(level("SetVolume", &args)?),
        "setmicvolume" => Command::SetMicVolume(level("SetMicVolume", &args)?),
        "setdevice" => set_device(&args)?,
        "message" => message(&args)?,
        "hangup" => on_call("Hangup", args, Command::Hangup)?,
        "hangupall" => none("HangupAll", &args, Command::HangupAll)?,
        "answer" => on_call("Answer", args, Command::Answer)?,
        "reject" => on_call("Reject", args, Command::Reject)?,
        "hold" => on_call("Hold", args, Command::Hold)?,
        "mute" => none("Mute", &args, Command::Mute)?,
        "status" => none("Status", &args, Command::Status)?,
        "close" | "exit" => none("Close", &args, Command::Close)?,
        "reload" => none("Reload", &args, Command::Reload)?,
        "subscribe" => none("Subscribe", &args, Command::Subscribe)?,
        "show" => none("Show", &args, Command::Show)?,
        "hide" => none("Hide", &args, Command::Hide)?,
        "minimize" => none("Minimize", &args, Command::Minimize)?,
        _ => {
            let shown: String = name.chars().take(64).collect();
            return Err(ParseError::Unknown(shown));
        }
    };
    Ok(command)
}

fn bad(command: &'static str, problem: impl Into<String>) -> ParseError {
    ParseError::BadArgument {
        command,
        problem: problem.into(),
    }
}

/// Removes one pair of surrounding double quotes.
fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

/// The single argument: the whole text (unquoted), or the first of `keys`
/// in the query. Empty when absent.
fn one(args: &Args<'_>, keys: &[&str]) -> Result<String, ParseError> {
    match args {
        Args::Text { text, .. } => Ok(unquote(text).to_owned()),
        Args::Query(pairs) => Ok(keys
            .iter()
            .find_map(|k| pairs.iter().find(|(key, _)| key == k))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()),
    }
}

fn none(name: &'static str, args: &Args<'_>, command: Command) -> Result<Command, ParseError> {
    let empty = match args {
        Args::Text { text, .. } => text.is_empty(),
        Args::Query(pairs) => pairs.is_empty(),
    };
    if empty {
        Ok(command)
    } else {
        Err(bad(name, "takes no argument"))
    }
}

/// A command whose only argument is an optional `call=N`.
fn on_call(
    name: &'static str,
    args: Args<'_>,
    command: fn(Option<CallId>) -> Command,
) -> Result<Command, ParseError> {
    let (args, call) = take_call(name, args)?;
    let empty = match &args {
        Args::Text { text, .. } => text.is_empty(),
        Args::Query(pairs) => pairs.is_empty(),
    };
    if empty {
        Ok(command(call))
    } else {
        Err(bad(name, "takes no argument but call=N"))
    }
}

/// Whether `part` is a `call=...` argument (any case).
fn is_call_arg(part: &str) -> bool {
    part.trim()
        .get(..5)
        .is_some_and(|head| head.eq_ignore_ascii_case("call="))
}

/// Takes the optional `call=N` out of the arguments: the last blank- (DDE:
/// comma-) separated part, or the `call` query key. The rest of the
/// arguments are returned for the command's own reading.
fn take_call<'a>(
    command: &'static str,
    args: Args<'a>,
) -> Result<(Args<'a>, Option<CallId>), ParseError> {
    match args {
        Args::Text { text, dde } => {
            let split = if dde {
                text.rsplit_once(',')
            } else {
                text.rsplit_once(char::is_whitespace)
            };
            let (rest, last) = split.unwrap_or(("", text));
            let rest = rest.trim();
            let earlier = if dde {
                rest.split(',').any(is_call_arg)
            } else {
                rest.split_whitespace().any(is_call_arg)
            };
            if !is_call_arg(last) {
                if earlier {
                    return Err(bad(command, "call=N must be the last argument"));
                }
                return Ok((Args::Text { text, dde }, None));
            }
            if earlier {
                return Err(bad(command, "call= is given more than once"));
            }
            let id = call_id(command, &last.trim()[5..])?;
            Ok((Args::Text { text: rest, dde }, Some(id)))
        }
        Args::Query(pairs) => {
            let (calls, rest): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| k == "call");
            match calls.as_slice() {
                [] => Ok((Args::Query(rest), None)),
                [(_, value)] => Ok((Args::Query(rest), Some(call_id(command, value)?))),
                _ => Err(bad(command, "call= is given more than once")),
            }
        }
    }
}

/// The id in `call=N`: the number `Status` shows for the call.
fn call_id(command: &'static str, text: &str) -> Result<CallId, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(bad(
            command,
            "call= needs a call id (the number Status shows for the call)",
        ));
    }
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .map(CallId)
        .ok_or_else(|| {
            bad(
                command,
                format!(
                    "call={:?} is not a call id (the number Status shows for the call)",
                    text.chars().take(32).collect::<String>()
                ),
            )
        })
}

/// A number or URI to call, send to or transfer to. Phone numbers lose
/// their separators (`555 12-34`, `(555) 123.4`); a URI or user name keeps
/// its text but may not hold blanks.
pub(crate) fn target(command: &'static str, text: String) -> Result<String, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(bad(command, "a number or SIP URI is required"));
    }
    if text.len() > MAX_TARGET {
        return Err(bad(
            command,
            format!("the number is longer than {MAX_TARGET} bytes"),
        ));
    }
    if text.contains('"') {
        return Err(bad(command, format!("{text:?} contains a double quote")));
    }
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '-' | '.' | '(' | ')'))
        .collect();
    let is_phone_number = !digits.is_empty()
        && digits
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || matches!(c, '*' | '#') || (c == '+' && i == 0))
        && digits.chars().any(|c| c.is_ascii_digit());
    if is_phone_number {
        return Ok(digits);
    }
    if text.contains(char::is_whitespace) {
        return Err(bad(
            command,
            format!("{text:?} is neither a phone number nor a URI (it contains blanks)"),
        ));
    }
    Ok(text.to_owned())
}

fn dtmf(text: String) -> Result<String, ParseError> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.is_empty() {
        return Err(bad(
            "SendDTMF",
            "digits are required (0-9 * # A-D, ',' pauses)",
        ));
    }
    if digits.chars().count() > MAX_DTMF {
        return Err(bad(
            "SendDTMF",
            format!("at most {MAX_DTMF} digits and pauses"),
        ));
    }
    if let Some(c) = digits.chars().find(|c| {
        !(c.is_ascii_digit() || matches!(c.to_ascii_uppercase(), '*' | '#' | 'A'..='D' | ','))
    }) {
        return Err(bad(
            "SendDTMF",
            format!("{c:?} is not a DTMF digit (0-9 * # A-D, ',' pauses)"),
        ));
    }
    Ok(digits.to_ascii_uppercase())
}

fn number(
    command: &'static str,
    text: &str,
    range: std::ops::RangeInclusive<u8>,
) -> Result<u8, ParseError> {
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            bad(
                command,
                format!(
                    "{:?} is not a whole number from {} to {}",
                    text.chars().take(32).collect::<String>(),
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn steps(command: &'static str, args: &Args<'_>) -> Result<u8, ParseError> {
    let text = one(args, &["steps", "value"])?;
    if text.trim().is_empty() {
        return Ok(1);
    }
    number(command, &text, 1..=10)
}

fn level(command: &'static str, args: &Args<'_>) -> Result<u8, ParseError> {
    let text = one(args, &["level", "value", "volume"])?;
    if text.trim().is_empty() {
        return Err(bad(command, "a level from 0 to 100 is required"));
    }
    number(command, &text, 0..=100)
}

/// Splits "first rest": the first argument (quoted or up to a blank, or up
/// to the first comma in the DDE form) and the rest.
fn split_two(text: &str, dde: bool) -> (&str, &str) {
    if dde {
        let (a, b) = text.split_once(',').unwrap_or((text, ""));
        return (unquote(a.trim()), unquote(b.trim()));
    }
    if let Some(rest) = text.strip_prefix('"') {
        if let Some((a, b)) = rest.split_once('"') {
            return (a, b.trim());
        }
    }
    let (a, b) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    (a, b.trim())
}

fn set_device(args: &Args<'_>) -> Result<Command, ParseError> {
    let (kind, id) = match args {
        Args::Text { text, dde } => {
            let (kind, id) = split_two(text, *dde);
            (kind.to_owned(), unquote(id).to_owned())
        }
        Args::Query(_) => (one(args, &["type", "kind"])?, one(args, &["id", "device"])?),
    };
    let kind = DeviceKind::parse(&kind).ok_or_else(|| {
        bad(
            "SetDevice",
            format!(
                "{:?} is not input, output or ring",
                kind.chars().take(32).collect::<String>()
            ),
        )
    })?;
    if id.is_empty() || id.contains('"') {
        return Err(bad(
            "SetDevice",
            "a device name or id is required (no double quotes)",
        ));
    }
    Ok(Command::SetDevice { kind, id })
}

fn message(args: &Args<'_>) -> Result<Command, ParseError> {
    let (to, text) = match args {
        Args::Text { text, dde } => {
            let (to, text) = split_two(text, *dde);
            (to.to_owned(), text.to_owned())
        }
        Args::Query(_) => (
            one(args, &["number", "to"])?,
            one(args, &["text", "message"])?,
        ),
    };
    let to = target("Message", to)?;
    if text.trim().is_empty() {
        return Err(bad("Message", "the text is missing"));
    }
    Ok(Command::Message { to, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        Command::parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn dtmf(digits: &str, call: Option<CallId>) -> Command {
        Command::SendDtmf {
            digits: digits.into(),
            call,
        }
    }

    #[test]
    fn the_three_forms_and_any_case_give_the_same_command() {
        let want = Command::Dial("5551234".into());
        for line in [
            "Dial 5551234",
            "dial 5551234",
            "DIAL   5551234  \r\n",
            "[Dial(5551234)]",
            "[dial( 5551234 )]",
            "action:dial?number=5551234",
            "ACTION:Dial?number=5551234",
        ] {
            assert_eq!(ok(line), want, "{line}");
        }
        assert_eq!(ok("[Hold()]"), Command::Hold(None));
        assert_eq!(ok("[Hold]"), Command::Hold(None));
        assert_eq!(ok("action:hangup"), Command::Hangup(None));
        assert_eq!(ok("hangupall"), Command::HangupAll);
        assert_eq!(ok("status"), Command::Status);
        assert_eq!(ok("exit"), Command::Close);
    }

    #[test]
    fn numbers_lose_separators_uris_keep_their_text() {
        assert_eq!(ok("Dial \"555 12-34\""), Command::Dial("5551234".into()));
        assert_eq!(ok("Dial 555 12-34"), Command::Dial("5551234".into()));
        assert_eq!(
            ok("Dial +1 (555) 123.4567"),
            Command::Dial("+15551234567".into())
        );
        assert_eq!(
            ok("[CallTo(\"*72 100\")]"),
            Command::CallTo("*72100".into())
        );
        assert_eq!(
            ok("action:dial?number=%2B1%20555%201234"),
            Command::Dial("+15551234".into())
        );
        assert_eq!(
            ok("Dial sip:alice@example.com"),
            Command::Dial("sip:alice@example.com".into())
        );
        assert_eq!(ok("Dial john.doe"), Command::Dial("john.doe".into()));
        assert_eq!(
            ok("Transfer sip:bob@pbx;transport=tcp"),
            Command::Transfer {
                to: "sip:bob@pbx;transport=tcp".into(),
                call: None
            }
        );
    }

    #[test]
    fn arguments_of_every_command() {
        assert_eq!(ok("SendDTMF 12,3#"), dtmf("12,3#", None));
        assert_eq!(ok("[SendDTMF(1,,2)]"), dtmf("1,,2", None));
        assert_eq!(ok("action:senddtmf?digits=a*"), dtmf("A*", None));
        assert_eq!(ok("VolumeUp"), Command::VolumeUp(1));
        assert_eq!(ok("VolumeDown 10"), Command::VolumeDown(10));
        assert_eq!(ok("[SetVolume(0)]"), Command::SetVolume(0));
        assert_eq!(
            ok("action:setmicvolume?level=100"),
            Command::SetMicVolume(100)
        );
        assert_eq!(
            ok("SetDevice output \"Speakers (USB Audio)\""),
            Command::SetDevice {
                kind: DeviceKind::Output,
                id: "Speakers (USB Audio)".into()
            }
        );
        assert_eq!(
            ok("[SetDevice(input,Mic 2)]"),
            Command::SetDevice {
                kind: DeviceKind::Input,
                id: "Mic 2".into()
            }
        );
        assert_eq!(
            ok("action:setdevice?type=ring&id=hw%3A1"),
            Command::SetDevice {
                kind: DeviceKind::Ring,
                id: "hw:1".into()
            }
        );
        assert_eq!(
            ok("Message 1001 hello there"),
            Command::Message {
                to: "1001".into(),
                text: "hello there".into()
            }
        );
        assert_eq!(
            ok("Message \"555 1234\" hi"),
            Command::Message {
                to: "5551234".into(),
                text: "hi".into()
            }
        );
        assert_eq!(
            ok("[Message(sip:a@b, hi, you)]"),
            Command::Message {
                to: "sip:a@b".into(),
                text: "hi, you".into()
            }
        );
        assert_eq!(
            ok("action:message?number=1001&text=caf%C3%A9"),
            Command::Message {
                to: "1001".into(),
                text: "café".into()
            }
        );
        for line in [
            "Mute",
            "Answer",
            "Reject",
            "Reload",
            "Subscribe",
            "Close",
            "Hangup",
            "Show",
            "Hide",
            "Minimize",
        ] {
            assert_eq!(
                ok(line).name().to_ascii_lowercase(),
                line.to_ascii_lowercase()
            );
        }
    }

    #[test]
    fn the_canonical_form_reads_back() {
        for command in [
            Command::Dial("sip:alice@example.com".into()),
            Command::CallTo("+15551234".into()),
            Command::Transfer {
                to: "1002".into(),
                call: None,
            },
            Command::Transfer {
                to: "sip:carol@example.com".into(),
                call: Some(CallId(3)),
            },
            dtmf("1,2#", None),
            dtmf("1,2#", Some(CallId(12))),
            Command::Hangup(None),
            Command::Hangup(Some(CallId(1))),
            Command::Answer(Some(CallId(2))),
            Command::Reject(Some(CallId(u64::MAX))),
            Command::Hold(Some(CallId(0))),
            Command::Hold(None),
            Command::Show,
            Command::Hide,
            Command::Minimize,
            Command::VolumeUp(3),
            Command::SetMicVolume(40),
            Command::SetDevice {
                kind: DeviceKind::Output,
                id: "Speakers (USB)".into(),
            },
            Command::Message {
                to: "sip:bob@example.com".into(),
                text: "see you \"soon\"".into(),
            },
            Command::HangupAll,
            Command::Status,
        ] {
            assert_eq!(ok(&command.to_string()), command, "{command}");
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = |line: &str| Command::parse(line).expect_err(line).to_string();
        assert!(err("Frobnicate 1").contains("unknown command \"Frobnicate\""));
        assert!(err("[Frobnicate()]").contains("unknown command \"Frobnicate\""));
        assert!(err("action:frob?x=1").contains("unknown command \"frob\""));
        assert_eq!(err("Dial"), "Dial: a number or SIP URI is required");
        assert_eq!(
            err("action:dial?to=1"),
            "Dial: a number or SIP URI is required"
        );
        assert!(err("Dial alice smith").contains("contains blanks"));
        assert!(err("Hold now").contains("Hold: takes no argument"));
        assert!(
            err("SetVolume 101").contains("SetVolume: \"101\" is not a whole number from 0 to 100")
        );
        assert!(err("SetVolume -1").contains("from 0 to 100"));
        assert!(err("SetVolume").contains("a level from 0 to 100 is required"));
        assert!(err("VolumeUp 11").contains("from 1 to 10"));
        assert!(err("VolumeUp 0").contains("from 1 to 10"));
        assert!(err("SendDTMF 12x").contains("'x' is not a DTMF digit"));
        assert!(err("SetDevice speaker").contains("device name or id is required"));
        assert!(err("SetDevice left x").contains("\"left\" is not input, output or ring"));
        assert!(err("Message 1001").contains("text is missing"));
        assert!(err("[Dial(1)").contains("no closing ]"));
        assert!(err("[Dial(1]").contains("no closing )"));
        assert!(err("[Dial(1)][Hold()]").contains("malformed"));
        assert!(err("action:dial?number=%zz").contains("percent-encoding"));
        assert_eq!(Command::parse("   "), Err(ParseError::Empty));
    }

    #[test]
    fn call_targets_in_the_three_forms() {
        let three = Some(CallId(3));
        for line in [
            "Hangup call=3",
            "hangup CALL=3",
            "Hangup   call=3  ",
            "[Hangup(call=3)]",
            "[Hangup( call=3 )]",
            "action:hangup?call=3",
            "action:hangup?CALL=3",
        ] {
            assert_eq!(ok(line), Command::Hangup(three), "{line}");
        }
        for (line, want) in [
            ("Answer call=7", Command::Answer(Some(CallId(7)))),
            ("[Reject(call=8)]", Command::Reject(Some(CallId(8)))),
            ("action:hold?call=9", Command::Hold(Some(CallId(9)))),
            ("Hold call=0012", Command::Hold(Some(CallId(12)))),
        ] {
            assert_eq!(ok(line), want, "{line}");
        }
        let transfer = Command::Transfer {
            to: "5551234".into(),
            call: three,
        };
        for line in [
            "Transfer 5551234 call=3",
            "Transfer \"555 1234\" call=3",
            "Transfer 555 12-34 call=3",
            "[Transfer(5551234,call=3)]",
            "[Transfer(5551234, call=3)]",
            "[Transfer(\"555 1234\",call=3)]",
            "action:transfer?number=5551234&call=3",
            "action:transfer?call=3&number=555%201234",
        ] {
            assert_eq!(ok(line), transfer, "{line}");
        }
        for line in [
            "SendDTMF 12# call=3",
            "SendDTMF 1 2 # call=3",
            "[SendDTMF(12#,call=3)]",
            "action:senddtmf?digits=12%23&call=3",
        ] {
            assert_eq!(ok(line), dtmf("12#", three), "{line}");
        }
        // DDE pauses are commas too: only a last `call=` part is the call.
        assert_eq!(ok("[SendDTMF(1,,2,call=3)]"), dtmf("1,,2", three));
        assert_eq!(ok("[SendDTMF(1,,2)]"), dtmf("1,,2", None));
        // Without call=, the command is MicroSIP's.
        assert_eq!(ok("Transfer 5551234").call(), None);
        assert_eq!(transfer.call(), three);
        assert_eq!(Command::Status.call(), None);
    }

    #[test]
    fn bad_call_targets_are_refused_precisely() {
        let err = |line: &str| Command::parse(line).expect_err(line).to_string();
        for line in ["Hangup call=x", "[Hangup(call=x)]", "action:hangup?call=x"] {
            assert_eq!(
                err(line),
                "Hangup: call=\"x\" is not a call id (the number Status shows for the call)",
                "{line}"
            );
        }
        for line in ["Hangup call=", "[Hold(call=)]", "action:answer?call="] {
            assert!(err(line).contains("call= needs a call id"), "{line}");
        }
        for line in [
            "Hangup call=-1",
            "Hangup call=+3",
            "Hangup call=3.0",
            "Hangup call=99999999999999999999999",
            "Hangup call=1e3",
        ] {
            assert!(err(line).contains("is not a call id"), "{line}");
        }
        for line in [
            "Hangup call=1 call=2",
            "[Hangup(call=1,call=2)]",
            "action:hangup?call=1&call=2",
            "Transfer 1002 call=1 call=2",
            "action:transfer?number=1&call=1&call=1",
        ] {
            assert!(
                err(line).ends_with(": call= is given more than once"),
                "{line}"
            );
        }
        for line in ["Transfer call=1 1002", "[Transfer(call=1,1002)]"] {
            assert_eq!(
                err(line),
                "Transfer: call=N must be the last argument",
                "{line}"
            );
        }
        assert!(err("Hangup 3").contains("Hangup: takes no argument but call=N"));
        assert_eq!(
            err("Hangup call=3 now"),
            "Hangup: call=N must be the last argument"
        );
        assert!(err("action:hangup?call=3&now=1").contains("takes no argument but call=N"));
        assert_eq!(
            err("Transfer call=3"),
            "Transfer: a number or SIP URI is required"
        );
        assert!(err("SendDTMF call=3").contains("digits are required"));
        assert!(err("HangupAll call=3").contains("HangupAll: takes no argument"));
        assert!(err("Dial 1001 call=3").contains("contains blanks"));
        assert!(err("Show now").contains("Show: takes no argument"));
    }

    #[test]
    fn window_requests() {
        assert_eq!(ok("show"), Command::Show);
        assert_eq!(ok("[Hide]"), Command::Hide);
        assert_eq!(ok("action:minimize"), Command::Minimize);
        assert_eq!(Command::Show.window_request(), Some(WindowRequest::Show));
        assert_eq!(Command::Hide.window_request(), Some(WindowRequest::Hide));
        assert_eq!(
            Command::Minimize.window_request(),
            Some(WindowRequest::Minimize)
        );
        assert_eq!(Command::Mute.window_request(), None);
        assert!(Command::Show.changes_state());
        assert!(Command::Mute.changes_state());
        assert!(!Command::Status.changes_state());
        assert!(!Command::Subscribe.changes_state());
    }

    #[test]
    fn hostile_lines_are_refused_not_crashed_on() {
        assert_eq!(
            Command::parse(&"Dial 1".repeat(MAX_LINE)),
            Err(ParseError::TooLong)
        );
        assert_eq!(Command::parse("Dial 1\0 2"), Err(ParseError::Control(0)));
        assert_eq!(
            Command::parse("Status\u{1b}[2J"),
            Err(ParseError::Control(0x1b))
        );
        assert!(Command::parse("action:dial?number=1%00").is_err());
        assert!(
            Command::parse(&format!("Dial {}", "9".repeat(MAX_TARGET + 1)))
                .expect_err("too long")
                .to_string()
                .contains("longer than")
        );
        assert!(Command::parse(&format!("SendDTMF {}", "1".repeat(MAX_DTMF + 1))).is_err());
        // Multi-byte text where byte offsets are tempting.
        assert!(Command::parse("actioné:dial").is_err());
        assert!(Command::parse("ñ").is_err());
        assert!(Command::parse("[").is_err());
        assert!(Command::parse("]").is_err());
        assert!(Command::parse("[()]").is_err());
        assert!(Command::parse("action:").is_err());
        assert!(Command::parse("action:?&&=&").is_err());
        assert!(Command::parse("SetVolume 99999999999999999999").is_err());
        // The unknown name is shown, but cut.
        let long = format!("{} x", "A".repeat(1000));
        let msg = Command::parse(&long).expect_err("unknown").to_string();
        assert!(msg.len() < 600, "{msg}");
    }
}
