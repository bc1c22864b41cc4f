//! `msipphone`: the softphone end users run with the provisioned config.
//!
//! - `msipphone` opens the window ([`softphone::ui`]) and runs the phone
//!   behind it; when this user's phone runs already, it asks that one to
//!   show its window (`Show`), as MicroSIP raises its own.
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
//!   when none runs, this process becomes the phone (with its window,
//!   unless `--headless` is given too) and carries it out.
//!
//! Both ways of running share [`phone_main`]: the phone, its control
//! socket and [`Server`] run on a tokio current-thread runtime; headless,
//! on the main thread with the events printed; with the window, on a
//! thread of their own, since the window needs the main thread (winit).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc as std_mpsc, Arc};
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
#[cfg(feature = "window")]
use softphone::ui::{self, core::CoreLink, window::WindowStart, window_prefs::WindowPrefs};

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
  /minimized                  start with the window minimized
  /hide                       start with the window hidden in the tray
  /i:FILE                     the microsip.ini to use
  --headless                  (ours) become the phone without a window
When a phone runs for this user, the request is handed to it and this
process exits with the reply's code (no request: its window is shown);
otherwise this process becomes the phone, with its window, then carries
the request out (/answer, /hangup, /hangupall exit 6; /exit exits 0).";

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
    /// control socket; stop on Ctrl+C/SIGTERM or `ctl Close`. Without it,
    /// the phone runs with its window (exit 1 when no display can be opened).
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
/// (`-answer` must not become clap's `-a -n -s ...`). `--headless` beside
/// MicroSIP's arguments (`msipphone --headless /i:x.ini 5551234`) stays
/// with MicroSIP's command line, which then runs without a window.
fn uses_clap(args: &[OsString]) -> bool {
    let texts: Vec<Option<&str>> = args.iter().map(|a| a.to_str()).collect();
    let asks_clap = texts.iter().flatten().any(|a| {
        matches!(*a, "-h" | "--help" | "-V" | "--version") || a.starts_with("--print-config")
    });
    // Only our options: `--headless`, `--config FILE`, `--config=FILE`.
    let mut only_ours = true;
    let mut i = 0;
    while i < texts.len() {
        match texts[i] {
            Some("--headless") => {}
            Some("--config") => i += 1,
            Some(a) if a.starts_with("--config=") => {}
            _ => only_ours = false,
        }
        i += 1;
    }
    args.is_empty() || asks_clap || only_ours
}

/// Whether `--headless` is among MicroSIP-style arguments; the rest.
fn take_headless(args: &[OsString]) -> (bool, Vec<OsString>) {
    let rest: Vec<OsString> = args
        .iter()
        .filter(|a| a.to_str() != Some("--headless"))
        .cloned()
        .collect();
    (rest.len() != args.len(), rest)
}

fn clap_main() -> Result<u8> {
    let cli = Cli::parse();
    if !cli.print_config && !cli.headless {
        // The window; when this user's phone runs already, show its window.
        let endpoint = ipc::endpoint()?;
        if let Some(code) = runtime()?.block_on(show_running(&endpoint))? {
            return Ok(code);
        }
    }
    let ini_path = ini_path(cli.config.as_deref())?;
    let doc = load(&ini_path)?;
    if cli.print_config {
        return print_config(&ini_path, &doc);
    }
    let face = if cli.headless {
        Face::Headless
    } else {
        Face::Window {
            hide: false,
            minimize: false,
        }
    };
    run_phone(ini_path, doc, None, face)
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
  Hangup [call=N]       end the active call (or call N)
  HangupAll             end every call except ringing incoming ones
  Answer [call=N] | Reject [call=N]
                        answer / reject (486) the ringing call (or call N)
  Hold [call=N]         toggle hold on the active call (or on call N)
  Transfer NUMBER|URI [call=N]   blind transfer of the active call (or N)
  SendDTMF DIGITS [call=N]       0-9 * # A-D on the active call (or N);
                        ',' pauses 2 s
  Mute                  toggle the microphone mute
  VolumeUp [1-10] | VolumeDown [1-10]   speaker volume, 10 points a step
  SetVolume 0-100 | SetMicVolume 0-100
  SetDevice input|output|ring NAME
  Message NUMBER|URI TEXT               send a SIP MESSAGE
  Status                registration per account and every call (with ids)
  Reload                re-read the config; calls stay up
  Show | Hide | Minimize
                        bring the window to the front / hide it to the
                        tray / minimize it (3 when the phone runs headless)
  Close                 stop the phone
  subscribe             stream events as JSON lines until the phone stops
                        (first line: the reply {\"code\":0,...}; then one
                        {\"event\":...} line per event)
call=N names a call by the id Status shows, as the last argument:
  Hangup call=3   [Transfer(5551234,call=3)]   action:hold?call=3
An unknown or ended call, or one in the wrong state (Answer on an outgoing
call), answers 3 with the reason.

Besides the phone's events (registration, incoming_call, call_state,
call_ended, ...), subscribe shows every command carried out, whoever sent
it (ctl, the window, MicroSIP's command line; not Status):
  {\"event\":\"command\",\"command\":\"Mute\",\"line\":\"Mute\",\"code\":0,
   \"status\":\"ok\",\"message\":\"microphone muted\",\"data\":{...}}
and the requests to the window:
  {\"event\":\"window\",\"request\":\"show\"}   (show, hide, minimize)

--json prints the reply as its JSON line.

Reply codes (JSON field \"code\"; also the exit code):
  0 ok   1 refused (another user)   2 unknown command or bad argument
  3 nothing to act on (no such call, wrong state, or no window)
  4 failed (SIP/network error)   5 the phone is stopping
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
    let (headless, args) = take_headless(args);
    let invocation = match parse_args(&args) {
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
    let face = if headless {
        Face::Headless
    } else {
        Face::Window {
            hide: invocation.hidden,
            minimize: invocation.minimized,
        }
    };
    run_phone(ini_path, doc, invocation.command, face)
}

/// Gives the request to the running phone: `Some(exit code)` when one runs.
async fn hand_over(endpoint: &ipc::Endpoint, invocation: &Invocation) -> Result<Option<u8>> {
    let Some(command) = &invocation.command else {
        if !invocation.minimized && !invocation.hidden {
            // Started again with nothing to do: MicroSIP raises its window.
            return show_running(endpoint).await;
        }
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
    request_running(endpoint, command, true).await
}

/// Asks this user's running phone to show its window: `Some(exit code)`
/// when one runs (3 when it runs headless), `None` when none does.
async fn show_running(endpoint: &ipc::Endpoint) -> Result<Option<u8>> {
    request_running(endpoint, &Command::Show, false).await
}

/// Sends `command` to this user's running phone and prints the reply (a
/// success only with `print_ok`): `Some(exit code)` when one runs, `None`
/// when none does.
async fn request_running(
    endpoint: &ipc::Endpoint,
    command: &Command,
    print_ok: bool,
) -> Result<Option<u8>> {
    match client::request(endpoint, &command.to_string()).await {
        Ok(reply) => {
            if print_ok || reply.code != 0 {
                print_reply(&reply, false);
            }
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

/// How the phone process shows itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    /// No window: every event as a JSON line on stdout.
    Headless,
    /// The window (`/hide`: hidden in the tray, `/minimize`: minimized).
    Window {
        /// Start hidden in the tray.
        hide: bool,
        /// Start minimized.
        minimize: bool,
    },
}

/// Runs the phone until Ctrl+C, SIGTERM, `Close` or (with the window) the
/// window's Exit; then hangs up and un-registers. Carries out `initial`
/// once the active account is registered.
fn run_phone(
    ini_path: PathBuf,
    doc: config::IniDocument,
    initial: Option<Command>,
    face: Face,
) -> Result<u8> {
    match face {
        Face::Headless => runtime()?.block_on(phone_main(ini_path, doc, initial, None)),
        Face::Window { hide, minimize } => run_windowed(ini_path, doc, initial, hide, minimize),
    }
}

/// What the phone's thread hands the window once the phone runs.
#[cfg(feature = "window")]
struct Running {
    /// The window's client of the core.
    link: CoreLink,
    /// To stop the phone when the window closes for good.
    server: Arc<Server>,
}

/// A build without the window (cargo feature `window` off) has nothing
/// to hand over: this type has no values.
#[cfg(not(feature = "window"))]
enum Running {}

/// A build without the window says so and runs nothing.
#[cfg(not(feature = "window"))]
fn run_windowed(
    _ini_path: PathBuf,
    _doc: config::IniDocument,
    _initial: Option<Command>,
    _hide: bool,
    _minimize: bool,
) -> Result<u8> {
    eprintln!(
        "msipphone: this build has no window (built without the cargo feature `window`); run msipphone --headless"
    );
    Ok(exit::USAGE)
}

/// The window on this (the main) thread, the phone on its own.
#[cfg(feature = "window")]
fn run_windowed(
    ini_path: PathBuf,
    doc: config::IniDocument,
    initial: Option<Command>,
    hide: bool,
    minimize: bool,
) -> Result<u8> {
    // Before the phone takes the control channel: a phone that cannot show
    // its window should not run at all.
    if let Err(why) = ui::display::check() {
        eprintln!(
            "msipphone: cannot open the window: {why}; run msipphone --headless to run the phone without a window (msipphone ctl controls it)"
        );
        return Ok(exit::ERROR);
    }
    let prefs = WindowPrefs::from_settings(&Settings::from_document(&doc));
    let start = WindowStart::new(ini_path.clone(), prefs, hide, minimize);
    let (ready, running) = std_mpsc::channel();
    let phone = std::thread::Builder::new()
        .name("phone".into())
        .spawn(move || runtime()?.block_on(phone_main(ini_path, doc, initial, Some(ready))))
        .context("cannot start the phone's thread")?;
    let join = |phone: std::thread::JoinHandle<Result<u8>>| {
        phone
            .join()
            .map_err(|_| anyhow!("the phone's thread panicked"))?
    };
    let Ok(Running { link, server }) = running.recv() else {
        // The phone did not start (another runs: 7; or an error): it said why.
        return join(phone);
    };
    let shown = ui::app::run(link, start);
    // The window is closed for good (Exit, or the phone stopped): stop the
    // phone, which hangs up and un-registers before its thread ends.
    server.set_stopping();
    drop(server);
    let code = join(phone)?;
    match shown {
        Ok(()) => Ok(code),
        Err(e) => {
            eprintln!("msipphone: cannot open the window: {e}");
            Ok(exit::ERROR)
        }
    }
}

/// The phone: becomes this user's one phone (exit 7 when another runs),
/// starts the SIP core and the control socket, hands the window its link
/// (`window`; headless: prints the events), carries out `initial` once
/// the active account is registered, and runs until asked to stop.
async fn phone_main(
    ini_path: PathBuf,
    doc: config::IniDocument,
    initial: Option<Command>,
    window: Option<std_mpsc::Sender<Running>>,
) -> Result<u8> {
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
    let settings = Settings::from_document(&doc);
    let phone_config = softphone::app::PhoneConfig {
        settings: settings.clone(),
        accounts: Account::list(&doc),
        bind: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        // MicroSIP has no key for it; private PBX CAs come from the
        // environment until the settings dialog grows one.
        tls_ca: std::env::var_os("MSIPPHONE_TLS_CA").map(std::path::PathBuf::from),
        behavior: softphone::app::BehaviorConfig {
            contacts: contacts_beside(&ini_path),
            // Finished calls go to `[Calls]`/`[Dialed]` of the same ini.
            call_log: Some(ini_path.clone()),
            ..softphone::app::BehaviorConfig::default()
        },
    };
    let (phone, task) = softphone::app::start(phone_config).await?;
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
    let server = Server::new(phone.clone(), ini_path, &settings);
    let printer = match window {
        None => {
            let mut events = phone.subscribe();
            Some(tokio::spawn(async move {
                use std::io::Write;
                while let Ok(event) = events.recv().await {
                    if let Ok(line) = serde_json::to_string(&event) {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{line}");
                        let _ = out.flush();
                    }
                }
            }))
        }
        // Only the window's start-up passes a sender, and this build has none.
        #[cfg(not(feature = "window"))]
        Some(_) => None,
        #[cfg(feature = "window")]
        Some(window) => {
            let running = Running {
                link: CoreLink::attach(server.clone(), phone.subscribe()),
                server: server.clone(),
            };
            if window.send(running).is_err() {
                // The window's thread is gone: nothing to run for.
                server.set_stopping();
            }
            None
        }
    };
    tokio::spawn(server::serve(listener, server.clone()));
    if let Some(command) = initial {
        let account = server.account();
        if phone
            .accounts()
            .any(|a| a.id == account && a.registrar.is_some())
        {
            let registered = tokio::time::timeout(REGISTER_WAIT, async {
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
            });
            // The window may close (or a signal come) meanwhile.
            tokio::select! {
                _ = registered => {}
                () = server.stop_requested() => {}
            }
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
    if let Some(printer) = printer {
        let _ = tokio::time::timeout(Duration::from_secs(1), printer).await;
    }
    Ok::<u8, anyhow::Error>(exit::OK)
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
