//! MicroSIP's event hooks (`cmd*` keys, research/microsip.md §4): a program
//! run on a call event with the remote user part as its last argument.
//!
//! MicroSIP splits the stored command line with `CommandLineToArgvW`,
//! re-joins the parameters and appends the caller id unquoted, then starts
//! it with `ShellExecuteEx` and waits up to 10 s (§4.2). The caller id
//! comes from SIP headers, i.e. from whoever calls, so here it is always
//! **one separate argv element**, never seen by a shell: the command line
//! is split the same way (quotes group, `\"` is a quote) into a program
//! and its arguments, and `tokio::process::Command` starts the program
//! directly. The hook runs on its own task (the phone never waits for it),
//! with stdin/stdout/stderr on the null device, and is killed after
//! [`HOOK_TIMEOUT`] (MicroSIP's 10 s wait; it only stops waiting, we stop
//! the program so hooks cannot pile up). Only the program itself is
//! killed, not processes it started.
//!
//! Windows: std quotes arguments for the C runtime's parser, which is what
//! normal programs use. A `.bat`/`.cmd` hook runs through cmd.exe, which
//! parses its command line again; std escapes what it can for cmd.exe and
//! refuses to start it (an error, logged) when an argument cannot be made
//! safe. Point hooks at an `.exe` (or `powershell.exe -File x.ps1`) when
//! caller ids may be hostile.

use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;

use crate::config::Settings;

/// How long a hook may run before it is killed (MicroSIP waits 10 s).
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The hook keys of `[Settings]` (`cmdCallAnswerVideo` never fires: this
/// phone has no video).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    /// `cmdOutgoingCall`: an outgoing INVITE is sent.
    OutgoingCall,
    /// `cmdIncomingCall`: every incoming INVITE, before any check.
    IncomingCall,
    /// `cmdCallRing`: an incoming call rings (not auto-answered or
    /// forwarded at once, not rejected).
    CallRing,
    /// `cmdCallAnswer`: an incoming call is connected.
    CallAnswer,
    /// `cmdCallBusy`: a call ended with 486, 600 or 603.
    CallBusy,
    /// `cmdCallStart`: a call is connected, either direction.
    CallStart,
    /// `cmdCallEnd`: a call ended with any other status.
    CallEnd,
}

impl Hook {
    /// The `[Settings]` key.
    pub fn key(self) -> &'static str {
        match self {
            Hook::OutgoingCall => "cmdOutgoingCall",
            Hook::IncomingCall => "cmdIncomingCall",
            Hook::CallRing => "cmdCallRing",
            Hook::CallAnswer => "cmdCallAnswer",
            Hook::CallBusy => "cmdCallBusy",
            Hook::CallStart => "cmdCallStart",
            Hook::CallEnd => "cmdCallEnd",
        }
    }

    /// Its command line in `settings` (empty: none).
    pub fn command(self, settings: &Settings) -> &str {
        let value = match self {
            Hook::OutgoingCall => &settings.cmd_outgoing_call,
            Hook::IncomingCall => &settings.cmd_incoming_call,
            Hook::CallRing => &settings.cmd_call_ring,
            Hook::CallAnswer => &settings.cmd_call_answer,
            Hook::CallBusy => &settings.cmd_call_busy,
            Hook::CallStart => &settings.cmd_call_start,
            Hook::CallEnd => &settings.cmd_call_end,
        };
        value.trim()
    }
}

/// Splits a command line as `CommandLineToArgvW` does: whitespace
/// separates, `"` toggles quoting, `\"` is a literal quote, `2n`
/// backslashes before a quote are `n` backslashes, other backslashes are
/// themselves (so `C:\Program Files\x.exe` works when quoted).
pub fn split_command(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quoted = false;
    let mut chars = line.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let mut count = 1;
                while chars.peek() == Some(&'\\') {
                    chars.next();
                    count += 1;
                }
                in_token = true;
                if chars.peek() == Some(&'"') {
                    current.extend(std::iter::repeat_n('\\', count / 2));
                    if count % 2 == 1 {
                        chars.next();
                        current.push('"');
                    }
                } else {
                    current.extend(std::iter::repeat_n('\\', count));
                }
            }
            '"' => {
                in_token = true;
                // `""` inside quotes is a literal quote (argv rules).
                if quoted && chars.peek() == Some(&'"') {
                    chars.next();
                    current.push('"');
                } else {
                    quoted = !quoted;
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_token {
                    args.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            c => {
                in_token = true;
                current.push(c);
            }
        }
    }
    if in_token {
        args.push(current);
    }
    args
}

/// What the driver runs: the program, its configured arguments, then the
/// caller id (or whatever `argument` the event gives) as the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    /// Which hook.
    pub hook: Hook,
    /// The program (first token of the command line).
    pub program: String,
    /// Arguments: the command line's other tokens, then the caller id.
    pub args: Vec<String>,
}

impl HookRun {
    /// The run for `command_line` with `argument` appended; `None` when
    /// the command line is empty. `expand` rewrites each configured token
    /// (`cmdOutgoingCall`'s macros); the appended argument is never
    /// rewritten.
    pub fn new(
        hook: Hook,
        command_line: &str,
        argument: &str,
        expand: impl Fn(&str) -> String,
    ) -> Option<HookRun> {
        let mut tokens = split_command(command_line).into_iter();
        let program = tokens.next().filter(|p| !p.is_empty())?;
        let mut args: Vec<String> = tokens.map(|t| expand(&t)).collect();
        args.push(argument.to_owned());
        Some(HookRun {
            hook,
            program: expand(&program),
            args,
        })
    }

    /// Starts it on its own task, killed after `timeout`. Never blocks.
    pub fn spawn(self, timeout: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut command = tokio::process::Command::new(&self.program);
            command
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            #[cfg(windows)]
            {
                // MicroSIP starts hooks hidden (SW_HIDE): no console window.
                const CREATE_NO_WINDOW: u32 = 0x0800_0000;
                command.creation_flags(CREATE_NO_WINDOW);
            }
            let key = self.hook.key();
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(e) => {
                    tracing::warn!(hook = key, program = %self.program, "cannot run the hook: {e}");
                    return;
                }
            };
            match tokio::time::timeout(timeout, child.wait()).await {
                Ok(Ok(status)) => tracing::debug!(hook = key, %status, "hook finished"),
                Ok(Err(e)) => tracing::warn!(hook = key, "hook: {e}"),
                Err(_) => {
                    tracing::warn!(hook = key, program = %self.program, "hook still running after {timeout:?}: killed");
                    if let Err(e) = child.kill().await {
                        tracing::warn!(hook = key, "cannot kill the hook: {e}");
                    }
                }
            }
        })
    }
}

/// `cmdOutgoingCall`'s macros (§4.2): `{server}`, `{extension}`, `{time}`,
/// `{callerid}`, `{user}`, `{number}`, `{domain}`, `{name}`, `{duration}`
/// (0), `{callid}` and `{direction}` (empty), values URL-encoded as UTF-8.
/// `{password}` and `{md5_password}` are left as written: a hook's command
/// line is no place for the account's secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Macros {
    /// `{server}`: the account's server, else `localhost`.
    pub server: String,
    /// `{extension}`: the account's username.
    pub extension: String,
    /// `{callerid}`: our display name, else the username.
    pub caller_id: String,
    /// `{user}` and `{number}`: the remote user.
    pub number: String,
    /// `{domain}`: the remote domain.
    pub domain: String,
    /// `{name}`: the remote name.
    pub name: String,
    /// `{time}`: Unix seconds.
    pub time: i64,
}

impl Macros {
    /// `token` with every macro replaced.
    pub fn expand(&self, token: &str) -> String {
        if !token.contains('{') {
            return token.to_owned();
        }
        let time = self.time.to_string();
        let pairs: [(&str, &str); 11] = [
            ("{server}", &self.server),
            ("{extension}", &self.extension),
            ("{callerid}", &self.caller_id),
            ("{user}", &self.number),
            ("{number}", &self.number),
            ("{domain}", &self.domain),
            ("{name}", &self.name),
            ("{time}", &time),
            ("{duration}", "0"),
            ("{callid}", ""),
            ("{direction}", ""),
        ];
        pairs.iter().fold(token.to_owned(), |t, (name, value)| {
            t.replace(name, &url_encode(value))
        })
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_as_windows_does() {
        assert_eq!(
            split_command(r#""C:\Program Files\hook\hook.exe" --event "call end" x"#),
            vec![
                r"C:\Program Files\hook\hook.exe",
                "--event",
                "call end",
                "x"
            ]
        );
        assert_eq!(
            split_command(r#"a\\\"b "c\\" d"#),
            vec![r#"a\"b"#, r"c\", "d"]
        );
        assert_eq!(split_command(r#"prog """#), vec!["prog", ""]);
        assert!(split_command("   ").is_empty());
    }

    #[test]
    fn the_caller_id_is_one_argument_whatever_it_holds() {
        for hostile in [
            "\"; rm -rf ~; \"",
            "$(reboot)",
            "`id` && calc.exe",
            "a b\tc",
        ] {
            let run = HookRun::new(Hook::CallEnd, "/bin/hook --from {user}", hostile, |t| {
                t.to_owned()
            })
            .expect("a command");
            assert_eq!(run.program, "/bin/hook");
            assert_eq!(run.args, vec!["--from", "{user}", hostile]);
        }
        assert_eq!(HookRun::new(Hook::CallEnd, "  ", "x", str::to_owned), None);
    }

    #[test]
    fn outgoing_macros_are_url_encoded_and_only_in_the_command_line() {
        let macros = Macros {
            server: "pbx".into(),
            extension: "100".into(),
            caller_id: "Alice".into(),
            number: "$(reboot) x".into(),
            domain: "pbx".into(),
            name: "Bob".into(),
            time: 42,
        };
        let run = HookRun::new(
            Hook::OutgoingCall,
            "notify http://crm/?n={number}&t={time}&p={password}",
            "$(reboot) x",
            |t| macros.expand(t),
        )
        .expect("a command");
        assert_eq!(
            run.args,
            vec![
                "http://crm/?n=%24%28reboot%29%20x&t=42&p={password}",
                "$(reboot) x"
            ]
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_hook_gets_a_literal_argument_and_is_killed_at_its_timeout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("out");
        let canary = dir.path().join("canary");
        let script = dir.path().join("hook.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s|%s\\n' \"$#\" \"$1\" >> '{}'\nexec sleep \"$2\"\n",
                out.display()
            ),
        )
        .expect("script");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let hostile = format!("$(touch {})", canary.display());
        let run = HookRun {
            hook: Hook::CallStart,
            program: script.display().to_string(),
            args: vec![hostile.clone(), "30".into()],
        };
        let started = std::time::Instant::now();
        run.spawn(Duration::from_millis(500))
            .await
            .expect("hook task");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "killed at the timeout"
        );
        let written = std::fs::read_to_string(&out).expect("the hook ran");
        assert_eq!(written, format!("2|{hostile}\n"));
        assert!(!canary.exists(), "the caller id was executed");
    }
}
