//! `msipphone`: the softphone end users run with the provisioned config.
//!
//! - `msipphone --headless` runs the phone without a window: it registers
//!   its accounts, prints every event as a JSON line, serves the control
//!   socket, and stops on Ctrl+C, SIGTERM or `ctl Close` (hanging up and
//!   un-registering first).
//! - `msipphone --print-config` reports the configuration the phone loads.
//! - `msipphone ctl COMMAND [ARGS]` sends one command to the running phone.
//! - MicroSIP's own command line (`msipphone 5551234`, `sip:`/`tel:`/
//!   `callto:` links, `/answer`, `/hangupall`, `/hangup`, `/minimized`,
//!   `/hide`, `/exit`, `/i:file.ini`, with `/` or `-`) is read before clap,
//!   which cannot take `/answer`: the request goes to the running phone, or,
//!   when none runs, this process becomes the phone and carries it out.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use serde_json::json;
use softphone::config::{self, validate_ini, Account, CallRecord, ContactList, Dialed, Settings};
use softphone::control::args::{parse_args, Invocation};
use softphone::control::ipc::{self, Bound, IpcError};
use softphone::control::server::{self, Server};
use softphone::control::{client, Command, Reply, ReplyCode};
use softphone::sip::ua::{RegistrationState, UaEvent};

/// The exit codes of `msipphone`; 2–5 are also the reply codes of the
/// control protocol, so `ctl` and a handed-over request mirror the reply.
mod exit {
    /// Done, or handed over to the running phone and done there.
    pub const OK: u8 = 0;
    /// An error (unreadable config, cannot start, refused by the phone).
    pub const ERROR: u8 = 1;
    /// Bad command line, unknown command or bad argument.
    pub const USAGE: u8 = 2;
    /// Nothing to act on (no active/ringing call).
    pub const NOTHING: u8 = 3;
    /// The phone tried and failed (SIP or network error).
    pub const FAILED: u8 = 4;
    /// The phone is stopping.
    pub const STOPPING: u8 = 5;
    /// No running phone for this user (`ctl`, `/answer`, `/hangup`, ...).
    pub const NOT_RUNNING: u8 = 6;
    /// Another phone of this user runs already (`--headless`).
    pub const ALREADY_RUNNING: u8 = 7;
}

const EXIT_CODES: &str = "\
Exit codes:
  0  ok (a request handed over to the running phone counts as done there)
  1  error (unreadable config, cannot start, refused)
  2  usage: bad command line, unknown command or bad argument
  3  nothing to act on (no active, ringing or held call)
  4  failed: SIP or network error (the message says why)
  5  the phone is stopping
  6  no running phone for this user
  7  another msipphone runs already for this user (--headless)";

const MICROSIP_ARGS: &str = "\
MicroSIP's command line (with '/' or '-'):
  msipphone NUMBER | sip:user@host | tel:NUMBER | callto:NUMBER   call it
  msipphone NUMBER TEXT...    send TEXT as a SIP MESSAGE
  /answer  /hangup  /hangupall  /exit  /dtmf:DIGITS  /transfer:NUMBER
  /minimized  /hide           accepted; there is no window yet
  /i:FILE                     the microsip.ini to use
When a phone runs for this user, the request is handed to it and this
process exits with the reply's code; otherwise this process becomes the
phone (headless), then carries the request out (/answer, /hangup,
/hangupall exit 6; /exit exits 0).";

#[derive(Parser)]
#[command(
    name = "msipphone",
    version,
    about = "MicroSIP-compatible softphone",
    after_help = format!("Control the running phone: msipphone ctl --help\n\n{MICROSIP_ARGS}\n\n{EXIT_CODES}")
)]
struct Cli {
    /// The microsip.ini to use (default: the profile's MicroSIP folder).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print, as JSON, the configuration the phone loads (passwords masked), then exit.
    #[arg(long)]
    print_config: bool,
    /// Run without a window: register, print events as JSON lines, serve the
    /// control socket; stop on Ctrl+C/SIGTERM or `ctl Close`.
    #[arg(long)]
    headless: bool,
}

fn main() -> ExitCode {
    // Logs go to stderr (stdout carries JSON); MSIPPHONE_LOG=debug for more.
    // A plain level unless MSIPPHONE_LOG asks for filters: the filter
    // syntax is parsed with regular expressions, which an idle phone would
    // otherwise keep resident for nothing.
    match std::env::var_os("MSIPPHONE_LOG") {
        Some(_) => tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("MSIPPHONE_LOG"))
            .with_writer(std::io::stderr)
            .init(),
        None => tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(std::io::stderr)
            .init(),
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = match args.first().and_then(|a| a.to_str()) {
        Some("ctl") => ctl(&args[1..]),
        _ if uses_clap(&args) => clap_main(),
        _ => microsip_main(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("msipphone: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

/// Our own options go to clap; everything else is MicroSIP's command line
/// (`-answer` must not become clap's `-a -n -s ...`).
fn uses_clap(args: &[OsString]) -> bool {
    args.is_empty()
        || args.iter().any(|a| {
            a.to_str().is_some_and(|a| {
                matches!(a, "-h" | "--help" | "-V" | "--version" | "--headless")
                    || a.starts_with("--print-config")
                    || a.starts_with("--headless")
            })
        })
}

fn clap_main() -> Result<u8> {
    let cli = Cli::parse();
    if !cli.print_config && !cli.headless {
        eprintln!(
            "msipphone: this build has no window yet; use --headless to run the phone, --print-config to see what it loads, or msipphone ctl to control a running phone"
        );
        return Ok(exit::USAGE);
    }
    let ini_path = ini_path(cli.config.as_deref())?;
    let doc = load(&ini_path)?;
    if cli.headless {
        return run_phone(&ini_path, &doc, None);
    }
    print_config(&ini_path, &doc)
}

fn ini_path(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(path) => Ok(path.to_owned()),
        None => config::paths::default_ini_path()
            .ok_or_else(|| anyhow!("no profile folder for MicroSIP's files on this system")),
    }
}

fn load(ini_path: &Path) -> Result<config::IniDocument> {
    let bytes =
        std::fs::read(ini_path).with_context(|| format!("cannot read {}", ini_path.display()))?;
    let (doc, diagnostics) = validate_ini(&bytes);
    for d in &diagnostics {
        eprintln!("{}", d.clone().in_file(ini_path));
    }
    doc.ok_or_else(|| anyhow!("{} is not a readable microsip.ini", ini_path.display()))
}

fn print_config(ini_path: &Path, doc: &config::IniDocument) -> Result<u8> {
    let contacts_path = ini_path.with_file_name(config::CONTACTS_FILE_NAME);
    let contacts = match std::fs::read(&contacts_path) {
        Ok(bytes) => ContactList::parse(&bytes)
            .map(|list| list.contacts)
            .with_context(|| format!("{}", contacts_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", contacts_path.display()))
        }
    };
    let report = json!({
        "file": ini_path,
        "encoding": doc.encoding(),
        "settings": Settings::from_document(doc),
        "accounts": Account::list(doc),
        "calls": CallRecord::list(doc),
        "dialed": Dialed::list(doc),
        "contacts": contacts,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(exit::OK)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The exit code for a reply.
fn reply_exit(reply: &Reply) -> u8 {
    match reply.reply_code() {
        ReplyCode::Ok => exit::OK,
        ReplyCode::Refused => exit::ERROR,
        ReplyCode::BadCommand => exit::USAGE,
        ReplyCode::NothingToActOn => exit::NOTHING,
        ReplyCode::Failed => exit::FAILED,
        ReplyCode::Stopping => exit::STOPPING,
    }
}

/// Prints a reply: the message on stdout when it succeeded, on stderr
/// when not; the JSON line with `json`.
fn print_reply(reply: &Reply, json: bool) {
    if json {
        print!("{}", reply.to_line());
    } else if reply.code == 0 {
        println!("{}", reply.message);
    } else {
        eprintln!("msipphone: {}", reply.message);
    }
}

/// What an unreachable phone means for the exit code.
fn ipc_exit(e: &IpcError) -> u8 {
    match e {
        IpcError::NotRunning(_) => exit::NOT_RUNNING,
        _ => exit::ERROR,
    }
}

const CTL_HELP: &str = "\
Usage: msipphone ctl [--json] COMMAND [ARGS...]
       msipphone ctl subscribe

Sends one command to this user's running phone and prints the reply; the
exit code is the reply's code. Commands (case-insensitive; also as
[Dial(5551234)] or action:dial?number=5551234):
  Dial NUMBER|URI       call; an active call is put on hold first
  CallTo NUMBER|URI     call without holding the active call
  Hangup                end the active call
  HangupAll             end every call except ringing incoming ones
  Answer | Reject       answer / reject (486) the ringing call
  Hold                  toggle hold on the active call
  Transfer NUMBER|URI   blind transfer of the active call
  SendDTMF DIGITS       0-9 * # A-D by SIP INFO; ',' pauses 2 s
  Mute                  toggle the microphone mute
  VolumeUp [1-10] | VolumeDown [1-10]   speaker volume, 10 points a step
  SetVolume 0-100 | SetMicVolume 0-100
  SetDevice input|output|ring NAME
  Message NUMBER|URI TEXT               send a SIP MESSAGE
  Status                registration per account and every call
  Reload                re-read the config; calls stay up
  Close                 stop the phone
  subscribe             stream events as JSON lines until the phone stops
                        (first line: the reply {\"code\":0,...}; then one
                        {\"event\":...} line per event)
Until audio exists, Mute, the volumes and SetDevice are kept and shown by
Status; the media engine applies them.

--json prints the reply as its JSON line.

Reply codes (JSON field \"code\"; also the exit code):
  0 ok   1 refused (another user)   2 unknown command or bad argument
  3 nothing to act on   4 failed (SIP/network error)   5 the phone is stopping
  6 (exit only) no running phone for this user";

/// `msipphone ctl [--json] COMMAND [ARGS]`.
fn ctl(args: &[OsString]) -> Result<u8> {
    let mut json = false;
    let mut words = Vec::new();
    for arg in args {
        let arg = arg
            .to_str()
            .ok_or_else(|| anyhow!("argument {arg:?} is not valid text"))?;
        match arg {
            "--json" if words.is_empty() => json = true,
            "-h" | "--help" if words.is_empty() => {
                println!("{CTL_HELP}");
                return Ok(exit::OK);
            }
            _ => words.push(arg),
        }
    }
    if words.is_empty() {
        eprintln!("{CTL_HELP}");
        return Ok(exit::USAGE);
    }
    let line = words.join(" ");
    // Refuse bad commands here, with the same message the phone would give.
    let command = match Command::parse(&line) {
        Ok(command) => command,
        Err(e) => {
            let reply = Reply::new(ReplyCode::BadCommand, e.to_string());
            print_reply(&reply, json);
            return Ok(exit::USAGE);
        }
    };
    let endpoint = ipc::endpoint()?;
    runtime()?.block_on(async {
        if command == Command::Subscribe {
            let mut out = std::io::stdout();
            return match client::subscribe(&endpoint, &mut out).await {
                Ok(reply) if reply.code == 0 => Ok(exit::OK),
                Ok(reply) => {
                    print_reply(&reply, json);
                    Ok(reply_exit(&reply))
                }
                Err(client::ClientError::Ipc(e)) => {
                    eprintln!("msipphone: {e}");
                    Ok(ipc_exit(&e))
                }
                Err(e) => Err(e.into()),
            };
        }
        match client::request(&endpoint, &line).await {
            Ok(reply) => {
                if !json && command == Command::Status && reply.code == 0 {
                    print_status(&reply);
                } else {
                    print_reply(&reply, json);
                }
                Ok(reply_exit(&reply))
            }
            Err(client::ClientError::Ipc(e)) => {
                eprintln!("msipphone: {e}");
                Ok(ipc_exit(&e))
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// `Status` for people.
fn print_status(reply: &Reply) {
    let empty = Vec::new();
    let list = |key: &str| {
        reply
            .data
            .get(key)
            .and_then(|v| v.as_array())
            .unwrap_or(&empty)
            .clone()
    };
    let text = |v: &serde_json::Value, key: &str| match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    for a in list("accounts") {
        let mut line = format!(
            "account {} {} {}",
            text(&a, "account"),
            text(&a, "aor"),
            text(&a, "registration")
        );
        if a.get("expires").is_some() {
            line.push_str(&format!(" (expires {} s)", text(&a, "expires")));
        }
        if a.get("reason").is_some() {
            line.push_str(&format!(" ({} {})", text(&a, "code"), text(&a, "reason")));
        }
        println!("{line}");
    }
    let calls = list("calls");
    if calls.is_empty() {
        println!("no calls");
    }
    for c in calls {
        println!(
            "call {} {} {} {} {}s held={} muted={} codec={}",
            text(&c, "id"),
            text(&c, "direction"),
            text(&c, "remote"),
            text(&c, "state"),
            text(&c, "duration"),
            text(&c, "held"),
            text(&c, "muted"),
            text(&c, "codec"),
        );
    }
}

/// MicroSIP's command line.
fn microsip_main(args: &[OsString]) -> Result<u8> {
    let invocation = match parse_args(args) {
        Ok(invocation) => invocation,
        Err(e) => {
            eprintln!("msipphone: {e}\n\n{MICROSIP_ARGS}");
            return Ok(exit::USAGE);
        }
    };
    let endpoint = ipc::endpoint()?;
    let handed = runtime()?.block_on(hand_over(&endpoint, &invocation))?;
    if let Some(code) = handed {
        return Ok(code);
    }
    if !invocation.starts_a_phone() {
        if invocation.command == Some(Command::Close) {
            return Ok(exit::OK);
        }
        eprintln!("msipphone: no running phone for this user; nothing to act on");
        return Ok(exit::NOT_RUNNING);
    }
    let ini_path = ini_path(invocation.config.as_deref())?;
    let doc = load(&ini_path)?;
    run_phone(&ini_path, &doc, invocation.command)
}

/// Gives the request to the running phone: `Some(exit code)` when one runs.
async fn hand_over(endpoint: &ipc::Endpoint, invocation: &Invocation) -> Result<Option<u8>> {
    let Some(command) = &invocation.command else {
        // `/minimized` or `/hide` with a phone running: MicroSIP does nothing.
        return match ipc::connect(endpoint).await {
            Ok(_) => Ok(Some(exit::OK)),
            Err(IpcError::NotRunning(_)) => Ok(None),
            Err(e) => {
                eprintln!("msipphone: {e}");
                Ok(Some(ipc_exit(&e)))
            }
        };
    };
    match client::request(endpoint, &command.to_string()).await {
        Ok(reply) => {
            print_reply(&reply, false);
            Ok(Some(reply_exit(&reply)))
        }
        Err(client::ClientError::Ipc(IpcError::NotRunning(_))) => Ok(None),
        Err(client::ClientError::Ipc(e)) => {
            eprintln!("msipphone: {e}");
            Ok(Some(ipc_exit(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

/// How long a request given on the command line waits for the account to
/// register before it is carried out (MicroSIP defers dialing likewise).
const REGISTER_WAIT: Duration = Duration::from_secs(10);

/// Runs the phone without a window until Ctrl+C, SIGTERM or `Close`; first
/// becomes this user's one phone (exit 7 when another runs), then carries
/// out `initial` once the active account is registered.
fn run_phone(ini_path: &Path, doc: &config::IniDocument, initial: Option<Command>) -> Result<u8> {
    runtime()?.block_on(async {
        let endpoint = ipc::endpoint()?;
        let listener = match ipc::bind(&endpoint)? {
            Bound::Listening(listener) => listener,
            Bound::AlreadyRunning => {
                eprintln!(
                    "msipphone: another msipphone runs already for this user (control channel {})",
                    endpoint.describe()
                );
                return Ok(exit::ALREADY_RUNNING);
            }
        };
        let settings = Settings::from_document(doc);
        let phone_config = softphone::app::PhoneConfig {
            settings: settings.clone(),
            accounts: Account::list(doc),
            bind: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            // MicroSIP has no key for it; private PBX CAs come from the
            // environment until the settings dialog grows one.
            tls_ca: std::env::var_os("MSIPPHONE_TLS_CA").map(std::path::PathBuf::from),
            behavior: softphone::app::BehaviorConfig {
                contacts: contacts_beside(ini_path),
                // Finished calls go to `[Calls]`/`[Dialed]` of the same ini.
                call_log: Some(ini_path.to_owned()),
                ..softphone::app::BehaviorConfig::default()
            },
        };
        let (phone, task) = softphone::app::start(phone_config).await?;
        let mut events = phone.subscribe();
        let mut registrations = phone.subscribe();
        eprintln!(
            "msipphone: listening on {}; control channel {}",
            phone.local_addr(),
            listener.describe()
        );
        phone.register_all().await?;
        // Once start-up has settled, and again after each call, hand back
        // what only start-up or the call used (see app::residency).
        let mut quiet = phone.subscribe();
        tokio::spawn(async move {
            const SETTLE: std::time::Duration = std::time::Duration::from_secs(3);
            tokio::time::sleep(SETTLE).await;
            softphone::app::residency::trim();
            loop {
                match quiet.recv().await {
                    Ok(softphone::sip::ua::UaEvent::CallEnded { .. }) => {
                        tokio::time::sleep(SETTLE).await;
                        softphone::app::residency::trim();
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        });
        let printer = tokio::spawn(async move {
            use std::io::Write;
            while let Ok(event) = events.recv().await {
                if let Ok(line) = serde_json::to_string(&event) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
        });
        let server = Server::new(phone.clone(), ini_path.to_owned(), &settings);
        tokio::spawn(server::serve(listener, server.clone()));
        if let Some(command) = initial {
            let account = server.account();
            if phone
                .accounts()
                .any(|a| a.id == account && a.registrar.is_some())
            {
                let _ = tokio::time::timeout(REGISTER_WAIT, async {
                    while let Ok(event) = registrations.recv().await {
                        if let UaEvent::Registration { account: a, state } = event {
                            if a == account
                                && matches!(
                                    state,
                                    RegistrationState::Registered { .. }
                                        | RegistrationState::Failed { .. }
                                )
                            {
                                break;
                            }
                        }
                    }
                })
                .await;
            }
            let reply = server.execute(command).await;
            if reply.code != 0 {
                eprintln!("msipphone: {}", reply.message);
            }
        }
        drop(registrations);
        wait_for_stop(&server).await;
        // The server lets go of its handle, this one goes into `stop`: the
        // driver then ends as soon as the far ends answered, and the event
        // stream ends after the final events (un-registrations) are printed.
        server.set_stopping();
        phone.stop(task).await;
        drop(server);
        let _ = tokio::time::timeout(Duration::from_secs(1), printer).await;
        Ok::<u8, anyhow::Error>(exit::OK)
    })
}

/// Contacts.xml beside the ini, to name callers; a missing or unreadable
/// file means no contacts (the phone runs without names).
fn contacts_beside(ini_path: &Path) -> Vec<config::Contact> {
    let path = ini_path.with_file_name(config::CONTACTS_FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => match ContactList::parse(&bytes) {
            Ok(list) => list.contacts,
            Err(e) => {
                eprintln!("msipphone: {}: {e}; callers are not named", path.display());
                Vec::new()
            }
        },
        Err(_) => Vec::new(),
    }
}

/// Ctrl+C everywhere; SIGTERM too on Unix (how services and tests stop
/// us); `Close` on the control channel.
async fn wait_for_stop(server: &Arc<Server>) {
    tokio::select! {
        () = stop_signal() => {}
        () = server.stop_requested() => {}
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
