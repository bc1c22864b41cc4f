//! MicroSIP's command line: `msipphone 5551234`, `msipphone sip:alice@host`,
//! `tel:`/`callto:` links (what the URL handlers pass), `/answer`,
//! `/hangupall`, `/hangup`, `/minimized`, `/hide`, `/exit`, `/i:file.ini`,
//! each switch also with `-`. Parsed before clap, which cannot read `/answer`.
//!
//! Of MicroSIP's other forwarded forms, those with a command behind them
//! are read too: `/dtmf:DIGITS`, `/transfer:NUMBER`, `dialpad:`/`dial:`
//! links and the `msip:` commands (`msip:answer`, `msip:hold`,
//! `msip:transfer_1002`, ...). `NUMBER TEXT...` sends TEXT as a MESSAGE.

use std::ffi::OsString;
use std::path::PathBuf;

use super::command::{percent_decode, target, Command, ParseError};

/// What a MicroSIP-style invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invocation {
    /// `/i:FILE` (or `--config FILE`): the microsip.ini to use.
    pub config: Option<PathBuf>,
    /// The request for the running phone; `None`: only start (or show) it.
    pub command: Option<Command>,
    /// `/minimized`: start without showing a window (no window exists yet).
    pub minimized: bool,
    /// `/hide`: as `/minimized`.
    pub hidden: bool,
}

impl Invocation {
    /// Whether, with no phone running, this request starts one (as
    /// MicroSIP does) rather than exiting: `/answer`, `/hangup`,
    /// `/hangupall` and `/exit` have nothing to act on then.
    pub fn starts_a_phone(&self) -> bool {
        !matches!(
            self.command,
            Some(
                Command::Answer(_)
                    | Command::Hangup(_)
                    | Command::HangupAll
                    | Command::Close
                    | Command::Reject(_)
                    | Command::Hold(_)
                    | Command::Transfer { .. }
                    | Command::SendDtmf { .. }
            )
        )
    }
}

impl Invocation {
    /// What a bare `msipphone` (no request, no `/minimized`, no `/hide`)
    /// asks of a phone already running: bring its window to the front, as
    /// MicroSIP does. `None` otherwise (`/minimized` and `/hide` leave a
    /// running phone alone).
    pub fn window_command(&self) -> Option<Command> {
        (self.command.is_none() && !self.minimized && !self.hidden).then_some(Command::Show)
    }
}

/// Why the command line cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// A `/switch` (or `-switch`) we do not know.
    #[error("unknown option {0:?} (known: /answer /hangup /hangupall /minimized /hide /exit /i:FILE /dtmf:DIGITS /transfer:NUMBER)")]
    UnknownSwitch(String),
    /// An argument is not valid text.
    #[error("argument {0:?} is not valid text")]
    NotUnicode(OsString),
    /// Two requests in one command line.
    #[error("one request at a time: {0:?} and {1:?}")]
    TwoRequests(String, String),
    /// `/i:` or `--config` without a file.
    #[error("{0} needs a file name")]
    MissingFile(String),
    /// The number or argument is not acceptable.
    #[error(transparent)]
    Bad(#[from] ParseError),
}

/// Reads the arguments after the program name.
pub fn parse_args(args: &[OsString]) -> Result<Invocation, ArgsError> {
    let mut out = Invocation::default();
    let mut request: Option<(String, Command)> = None;
    let mut texts: Vec<String> = Vec::new();
    let mut iter = args.iter();
    while let Some(raw) = iter.next() {
        let arg = raw
            .to_str()
            .ok_or_else(|| ArgsError::NotUnicode(raw.clone()))?;
        let arg = unquote(arg.trim());
        if arg.is_empty() {
            continue;
        }
        if arg == "--config" {
            let file = iter
                .next()
                .ok_or_else(|| ArgsError::MissingFile("--config".into()))?;
            out.config = Some(PathBuf::from(file));
            continue;
        }
        if let Some(file) = arg.strip_prefix("--config=") {
            if file.is_empty() {
                return Err(ArgsError::MissingFile("--config".into()));
            }
            out.config = Some(PathBuf::from(file));
            continue;
        }
        let switch = arg
            .strip_prefix('/')
            .or_else(|| arg.strip_prefix('-'))
            // `-5` is not a switch but `-x` is; a number never starts with '-'.
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()));
        let command = if let Some(switch) = switch {
            let lower = switch.to_ascii_lowercase();
            if let Some(file) = lower.strip_prefix("i:").map(|_| &switch[2..]) {
                if file.is_empty() {
                    return Err(ArgsError::MissingFile(arg.to_owned()));
                }
                out.config = Some(PathBuf::from(file));
                continue;
            }
            match lower.as_str() {
                "answer" => Command::Answer(None),
                "hangup" => Command::Hangup(None),
                "hangupall" => Command::HangupAll,
                "exit" => Command::Close,
                "minimized" | "minimize" => {
                    out.minimized = true;
                    continue;
                }
                "hide" | "hidden" => {
                    out.hidden = true;
                    continue;
                }
                _ if lower.starts_with("dtmf:") => {
                    Command::parse(&format!("SendDTMF {}", &switch[5..]))?
                }
                _ if lower.starts_with("transfer:") => Command::Transfer {
                    to: target("Transfer", switch[9..].to_owned())?,
                    call: None,
                },
                _ => return Err(ArgsError::UnknownSwitch(arg.to_owned())),
            }
        } else if request.is_some() || !texts.is_empty() {
            // MicroSIP: `NUMBER TEXT...` sends TEXT as a SIP MESSAGE.
            texts.push(arg.to_owned());
            continue;
        } else if let Some(cmd) = strip_scheme(arg, "msip:") {
            msip_command(cmd)?
        } else {
            Command::Dial(dial_target(arg)?)
        };
        if let Some((first, _)) = &request {
            return Err(ArgsError::TwoRequests(first.clone(), arg.to_owned()));
        }
        request = Some((arg.to_owned(), command));
    }
    if !texts.is_empty() {
        match request {
            Some((_, Command::Dial(to))) => {
                request = Some((
                    String::new(),
                    Command::Message {
                        to,
                        text: texts.join(" "),
                    },
                ));
            }
            Some((first, _)) => return Err(ArgsError::TwoRequests(first, texts.join(" "))),
            None => {}
        }
    }
    out.command = request.map(|(_, c)| c);
    Ok(out)
}

/// Removes one pair of surrounding double quotes (URL handlers pass `"%1"`).
fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

fn strip_scheme<'a>(text: &'a str, scheme: &str) -> Option<&'a str> {
    let head = text.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &text[scheme.len()..])
}

/// What MicroSIP dials for a link or number: `tel:`, `callto:`, `dialpad:`
/// and `dial:` are removed with a leading `//` and a trailing `/`, and the
/// rest is percent-decoded (`%20`, `%2B`); `sip:`/`sips:` URIs are kept
/// (their escapes belong to the URI).
fn dial_target(arg: &str) -> Result<String, ArgsError> {
    let arg = arg.trim_end_matches('/');
    if strip_scheme(arg, "sip:").is_some() || strip_scheme(arg, "sips:").is_some() {
        return Ok(target("Dial", arg.to_owned())?);
    }
    let rest = ["tel:", "callto:", "dialpad:", "dial:"]
        .iter()
        .find_map(|s| strip_scheme(arg, s))
        .unwrap_or(arg);
    let rest = rest.trim_start_matches("//");
    let decoded = percent_decode(rest).ok_or_else(|| ParseError::BadArgument {
        command: "Dial",
        problem: format!("bad percent-encoding in {arg:?}"),
    })?;
    Ok(target("Dial", decoded)?)
}

/// MicroSIP's `msip:` commands; anything else is a number to dial.
fn msip_command(cmd: &str) -> Result<Command, ArgsError> {
    let lower = cmd.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "answer" => Command::Answer(None),
        "hangupall" => Command::HangupAll,
        "hold" => Command::Hold(None),
        "micmuteclick" => Command::Mute,
        "speakup" => Command::VolumeUp(1),
        "speakdown" => Command::VolumeDown(1),
        _ if lower.starts_with("transfer_") => Command::Transfer {
            to: target("Transfer", cmd[9..].to_owned())?,
            call: None,
        },
        _ => Command::Dial(dial_target(cmd)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, ArgsError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse_args(&args)
    }

    fn command(args: &[&str]) -> Option<Command> {
        parse(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
    }

    #[test]
    fn numbers_and_links_dial() {
        let dial = |t: &str| Some(Command::Dial(t.into()));
        assert_eq!(command(&["5551234"]), dial("5551234"));
        assert_eq!(command(&["\"555-1234\""]), dial("5551234"));
        assert_eq!(command(&["555 12 34"]), dial("5551234"));
        assert_eq!(
            command(&["sip:alice@example.com"]),
            dial("sip:alice@example.com")
        );
        assert_eq!(
            command(&["SIP:alice@example.com/"]),
            dial("SIP:alice@example.com")
        );
        assert_eq!(command(&["tel:+1-555-1234"]), dial("+15551234"));
        assert_eq!(command(&["tel:%2B1%20555%201234"]), dial("+15551234"));
        assert_eq!(command(&["callto://5551234/"]), dial("5551234"));
        assert_eq!(
            command(&["callto:bob@example.com"]),
            dial("bob@example.com")
        );
        assert_eq!(command(&["dialpad:100"]), dial("100"));
        assert_eq!(command(&["msip:answer"]), Some(Command::Answer(None)));
        assert_eq!(
            command(&["msip:transfer_1002"]),
            Some(Command::Transfer {
                to: "1002".into(),
                call: None
            })
        );
        assert_eq!(command(&["msip:1003"]), dial("1003"));
    }

    #[test]
    fn switches_with_slash_or_dash_in_any_case() {
        for (args, want) in [
            (&["/answer"][..], Some(Command::Answer(None))),
            (&["-answer"], Some(Command::Answer(None))),
            (&["/HangupAll"], Some(Command::HangupAll)),
            (&["-hangupall"], Some(Command::HangupAll)),
            (&["/hangup"], Some(Command::Hangup(None))),
            (&["-hangup"], Some(Command::Hangup(None))),
            (&["/exit"], Some(Command::Close)),
            (&["-exit"], Some(Command::Close)),
            (
                &["/dtmf:12#"],
                Some(Command::SendDtmf {
                    digits: "12#".into(),
                    call: None,
                }),
            ),
            (
                &["/transfer:1002"],
                Some(Command::Transfer {
                    to: "1002".into(),
                    call: None,
                }),
            ),
            (&["/minimized"], None),
        ] {
            assert_eq!(command(args), want, "{args:?}");
        }
        let inv = parse(&["-minimize", "/hide"]).expect("ok");
        assert!(inv.minimized && inv.hidden && inv.command.is_none());
    }

    #[test]
    fn the_ini_comes_from_slash_i_or_config() {
        let inv = parse(&["/i:C:\\Users\\bob\\my.ini", "5551234"]).expect("ok");
        assert_eq!(
            inv.config,
            Some(PathBuf::from("C:\\Users\\bob\\my.ini")),
            "the file name keeps its case"
        );
        assert_eq!(inv.command, Some(Command::Dial("5551234".into())));
        let inv = parse(&["-I:/tmp/x.ini", "/answer"]).expect("ok");
        assert_eq!(inv.config, Some(PathBuf::from("/tmp/x.ini")));
        assert_eq!(
            parse(&["--config", "a.ini"]).expect("ok").config,
            Some(PathBuf::from("a.ini"))
        );
        assert_eq!(
            parse(&["--config=b.ini", "/hangupall"]).expect("ok").config,
            Some(PathBuf::from("b.ini"))
        );
        assert!(matches!(parse(&["/i:"]), Err(ArgsError::MissingFile(_))));
        assert!(matches!(
            parse(&["--config"]),
            Err(ArgsError::MissingFile(_))
        ));
    }

    #[test]
    fn number_then_text_is_a_message() {
        assert_eq!(
            command(&["1001", "hello", "there"]),
            Some(Command::Message {
                to: "1001".into(),
                text: "hello there".into()
            })
        );
    }

    #[test]
    fn errors_are_precise() {
        let err = |args: &[&str]| parse(args).expect_err("error").to_string();
        assert!(err(&["/frob"]).contains("unknown option \"/frob\""));
        assert!(err(&["-x"]).contains("unknown option \"-x\""));
        assert!(err(&["/answer", "/hangupall"]).contains("one request at a time"));
        assert!(err(&["/answer", "hi"]).contains("one request at a time"));
        assert!(err(&["tel:%zz"]).contains("percent-encoding"));
        assert!(err(&["/dtmf:12x"]).contains("not a DTMF digit"));
        assert!(err(&["alice smith"]).contains("blanks"));
        assert_eq!(parse(&[]).expect("empty is fine"), Invocation::default());
    }

    #[test]
    fn a_bare_invocation_shows_the_running_phones_window() {
        assert_eq!(
            parse(&[]).expect("ok").window_command(),
            Some(Command::Show)
        );
        assert_eq!(
            parse(&["/i:x.ini"]).expect("ok").window_command(),
            Some(Command::Show)
        );
        assert_eq!(parse(&["/minimized"]).expect("ok").window_command(), None);
        assert_eq!(parse(&["/hide"]).expect("ok").window_command(), None);
        assert_eq!(parse(&["1001"]).expect("ok").window_command(), None);
    }

    #[test]
    fn who_starts_a_phone() {
        assert!(parse(&["5551234"]).expect("ok").starts_a_phone());
        assert!(parse(&["/minimized"]).expect("ok").starts_a_phone());
        assert!(!parse(&["/answer"]).expect("ok").starts_a_phone());
        assert!(!parse(&["/hangupall"]).expect("ok").starts_a_phone());
        assert!(!parse(&["/exit"]).expect("ok").starts_a_phone());
    }
}
