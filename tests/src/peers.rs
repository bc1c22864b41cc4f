//! Real SIP peers for the end-to-end tests: kamailio (registrar/proxy with
//! digest auth), sipp (scripted UAC/UAS) and baresip (a full UA driven over
//! ctrl_tcp), all on 127.0.0.1 and on ports no other test uses.
//!
//! Every helper owns its process (started in a process group of its own)
//! and on Drop sends SIGTERM to the whole group, waits a bounded time, then
//! SIGKILLs it and reaps it, so no peer outlives its test. Every wait is a
//! bounded loop that panics naming what it waited for, with the tail of the
//! peer's captured log.
//!
//! Peer quirks found on Debian 12 (kamailio 5.6.3, sipp 3.6.1, baresip
//! 1.0.0), beyond research/rust-sip-stack.md §6:
//! - kamailio: `--modparam=auth:algorithm:s:SHA-256` fails ("No module
//!   matching <auth>": command-line modparams are applied before the cfg
//!   loads modules), so the algorithm is a `-A 'AUTH_ALGORITHM="…"'` define.
//!   The listeners are passed with `-l` so tests/peers/kamailio.cfg stays
//!   static. `-DD` keeps the creator in the foreground but it still forks
//!   workers: kill the process group with SIGTERM (a SIGKILL of the creator
//!   alone orphans the workers). Users' domain is the proxy's exact
//!   `127.0.0.1:PORT`: `alias="127.0.0.1"` (any port) would make every
//!   loopback UA's Contact "myself" and loop in-dialog requests (ACK) back
//!   into the proxy, and a bare `127.0.0.1` means port 5060.
//! - sipp 3.6.1 cannot answer a SHA-256 challenge ("createAuthHeader:
//!   authentication must use MD5 or AKAv1-MD5"): SHA-256 registrations need
//!   another client (our UA). `-bg` forks and loses the exit status: run it
//!   in the foreground with `-nostdin` and stdout to a file. Exit codes: 0
//!   all calls succeeded, 1 some failed, 97/99 aborted/no calls, 255 (-1)
//!   fatal error (e.g. bad auth algorithm), 254 (-2) cannot bind.
//! - baresip: `net_interface lo` fails ("could not get IPv4 address"); the
//!   IP `127.0.0.1` works. With TLS built in it also listens on TCP
//!   sip_port+1, so its SIP port is allocated as a pair. The menu hangs the
//!   call up when the aufile source reaches its end ("menu: audio error (0,
//!   end of file)"), so the generated WAV lasts minutes. ctrl_tcp serves one
//!   connection: a new one silently replaces the old, and only the newest
//!   gets events. A command's response can arrive after events it caused.
//!   There is no `message <uri> <text>` command in 1.0.0: contact.so's
//!   `message <text>` sends to the *current contact*, so message targets are
//!   configured as contacts up front ([`BaresipConfig::contacts`]). When the
//!   far end hangs up, CALL_CLOSED's param reads "Connection reset by peer".
//!   With `answermode=auto` there is no CALL_INCOMING event. REGISTER_OK
//!   can fire before the ctrl_tcp client connects (events are not
//!   replayed): poll `reginfo` ([`Baresip::wait_registered`]). Seen here:
//!   a MESSAGE challenged with 401 is not resent with credentials, so
//!   messages through kamailio (which challenges MESSAGE) do not arrive;
//!   message peers directly. An incoming MESSAGE is not in the `-v` log.

use serde_json::Value;
use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a peer gets to come up before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a peer gets to exit after SIGTERM before it is SIGKILLed.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Lines of a peer's log quoted in a failure message.
const LOG_TAIL_LINES: usize = 80;

/// The folder with the peers' config files and sipp scenarios.
pub fn peers_dir() -> PathBuf {
    crate::workspace().join("tests").join("peers")
}

// --- Ports -----------------------------------------------------------------

/// Ports handed out by this test process: never handed out twice, so tests
/// running in parallel threads cannot get the same port before binding it.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The lowest and highest port the allocator uses: below Linux's ephemeral
/// range (32768–60999), so no outgoing socket grabs one of ours meanwhile.
const PORT_MIN: u16 = 10_000;
const PORT_MAX: u16 = 32_000;

/// A loopback port on which both UDP and TCP are free right now.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `count` consecutive loopback ports on which UDP and TCP are
/// all free right now (baresip also binds its SIP port + 1; sipp binds its
/// media port + 2).
pub fn free_ports(count: u16) -> u16 {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let taken = guard.get_or_insert_with(HashSet::new);
    // Start at a per-process offset so concurrent test processes (other
    // test binaries, other people's runs) rarely probe the same ports.
    let span = u32::from(PORT_MAX - PORT_MIN);
    let seed = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    let mut candidate = PORT_MIN + (seed % span) as u16;
    for _ in 0..span {
        if candidate + count > PORT_MAX {
            candidate = PORT_MIN;
        }
        let range = candidate..candidate + count;
        if range
            .clone()
            .all(|p| !taken.contains(&p) && port_is_free(p))
        {
            taken.extend(range);
            return candidate;
        }
        candidate += count;
    }
    panic!("no {count} consecutive free loopback ports in {PORT_MIN}..{PORT_MAX}");
}

fn port_is_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

// --- Processes -------------------------------------------------------------

/// A running peer process with its log file; killed with its whole process
/// group on Drop.
struct PeerProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl PeerProcess {
    /// Starts `cmd` in a process group of its own, stdin closed, stdout and
    /// stderr into `log`.
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> PeerProcess {
        let out = File::create(&log)
            .unwrap_or_else(|e| panic!("{name}: cannot create log {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("{name}: cannot share log {}: {e}", log.display()));
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("{name}: cannot start {cmd:?}: {e} (is its Debian package installed?)")
        });
        PeerProcess {
            name,
            child,
            log,
            exited: None,
        }
    }

    fn log_text(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        tail(&self.log_text(), LOG_TAIL_LINES)
    }

    /// Its exit status if it has exited.
    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Panics (with the log) if the process has already exited.
    fn assert_running(&mut self, doing: &str) {
        if let Some(status) = self.try_exit() {
            panic!(
                "{} exited ({status}) while {doing}; its log ends:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }

    fn signal_group(&self, signal: &str) {
        // The group id is the child's pid (process_group(0)); `kill` avoids
        // a libc dependency and unsafe code for one syscall.
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        // Even when the leader has exited, workers may remain in the group.
        self.signal_group("-TERM");
        if self.wait_exit(STOP_TIMEOUT).is_none() {
            self.signal_group("-KILL");
            let _ = self.child.wait();
        }
        // Give the group's other members (kamailio's workers) a moment.
        let deadline = Instant::now() + STOP_TIMEOUT;
        while group_alive(self.child.id()) && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        if group_alive(self.child.id()) {
            self.signal_group("-KILL");
        }
    }
}

/// Whether any live (not zombie) process is in process group `pgid`: a
/// peer's group is its pid, so after dropping a peer this must be false.
pub fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split
        // after its closing parenthesis.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn temp_dir(peer: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("e2e-{peer}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("{peer}: cannot create a temp dir: {e}"))
}

/// Polls `ready` every 50 ms until it returns true or `timeout` passes.
fn poll_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

// --- kamailio --------------------------------------------------------------

/// The digest algorithm kamailio challenges with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `algorithm=MD5` (the default).
    Md5,
    /// `algorithm=SHA-256` (RFC 8760).
    Sha256,
}

impl DigestAlgorithm {
    /// The token as it appears in WWW-Authenticate.
    pub fn token(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
        }
    }
}

/// How to start [`Kamailio`].
#[derive(Clone, Debug)]
pub struct KamailioOptions {
    /// The algorithm of the digest challenges.
    pub algorithm: DigestAlgorithm,
}

impl Default for KamailioOptions {
    fn default() -> Self {
        KamailioOptions {
            algorithm: DigestAlgorithm::Md5,
        }
    }
}

/// A kamailio registrar/proxy on 127.0.0.1 (UDP and TCP on one free port),
/// configured by tests/peers/kamailio.cfg: digest auth (qop=auth) for
/// REGISTER, INVITE, MESSAGE, REFER, SUBSCRIBE and PUBLISH with every
/// user's password [`Kamailio::PASSWORD`], memory usrloc, calls routed to
/// registered users, requests for other hosts relayed as they are.
pub struct Kamailio {
    process: PeerProcess,
    port: u16,
    algorithm: DigestAlgorithm,
    _dir: TempDir,
}

impl Kamailio {
    /// Every user's password.
    pub const PASSWORD: &'static str = "secret";

    /// Starts it challenging with MD5 and waits until it answers OPTIONS.
    pub fn start() -> Kamailio {
        Kamailio::start_with(KamailioOptions::default())
    }

    /// Starts it with `options` and waits until it answers OPTIONS.
    pub fn start_with(options: KamailioOptions) -> Kamailio {
        let dir = temp_dir("kamailio");
        let port = free_port();
        let cfg = peers_dir().join("kamailio.cfg");
        let mut cmd = Command::new("kamailio");
        cmd.current_dir(dir.path())
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "32", "-M", "4"])
            .arg("-Y")
            .arg(dir.path())
            .arg("-w")
            .arg(dir.path())
            .arg("-l")
            .arg(format!("udp:127.0.0.1:{port}"))
            .arg("-l")
            .arg(format!("tcp:127.0.0.1:{port}"))
            .arg("-A")
            .arg(format!("AUTH_ALGORITHM=\"{}\"", options.algorithm.token()));
        let process = PeerProcess::spawn("kamailio", cmd, dir.path().join("kamailio.log"));
        let mut kamailio = Kamailio {
            process,
            port,
            algorithm: options.algorithm,
            _dir: dir,
        };
        kamailio.wait_ready();
        kamailio
    }

    fn wait_ready(&mut self) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set a UDP read timeout");
        let local = socket.local_addr().expect("a bound socket has an address");
        let deadline = Instant::now() + START_TIMEOUT;
        let mut n = 0;
        loop {
            self.process.assert_running("starting");
            n += 1;
            let probe = format!(
                "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-ready-{n}\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:probe@127.0.0.1>;tag=ready\r\n\
                 To: <sip:127.0.0.1:{port}>\r\n\
                 Call-ID: ready-{port}@127.0.0.1\r\n\
                 CSeq: {n} OPTIONS\r\n\
                 Content-Length: 0\r\n\r\n",
                port = self.port
            );
            let _ = socket.send_to(probe.as_bytes(), ("127.0.0.1", self.port));
            let mut buf = [0u8; 2048];
            if let Ok((len, _)) = socket.recv_from(&mut buf) {
                if buf[..len].starts_with(b"SIP/2.0 200") {
                    break;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "kamailio did not answer OPTIONS on udp:127.0.0.1:{} within {START_TIMEOUT:?}; its log ends:\n{}",
                    self.port,
                    self.process.log_tail()
                );
            }
        }
        // UDP answers before the TCP workers may accept: check TCP too.
        let tcp_up = poll_until(START_TIMEOUT, || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        if !tcp_up {
            panic!(
                "kamailio does not accept TCP on 127.0.0.1:{}; its log ends:\n{}",
                self.port,
                self.process.log_tail()
            );
        }
    }

    /// Its address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its port (UDP and TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The algorithm it challenges with.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The users' SIP domain: its exact `127.0.0.1:PORT` (a bare
    /// `127.0.0.1` means port 5060, which is not this proxy).
    pub fn domain(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A user's address of record here: `sip:USER@127.0.0.1:PORT`.
    pub fn aor(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.domain())
    }

    /// Its SIP URI for `transport` ("udp" or "tcp"), e.g. as outbound proxy:
    /// `sip:127.0.0.1:PORT;transport=tcp`.
    pub fn uri(&self, transport: &str) -> String {
        format!("sip:127.0.0.1:{};transport={transport}", self.port)
    }

    /// Account-line options that make a [`Baresip`] (whose AOR is
    /// [`Kamailio::aor`]) register with this proxy over `transport` ("udp"
    /// or "tcp") with the right password, and send every request through it.
    pub fn baresip_options(&self, transport: &str) -> String {
        format!(
            "auth_pass={};outbound=\"{}\";regint=600",
            Kamailio::PASSWORD,
            self.uri(transport)
        )
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.process.log_text()
    }

    /// The last lines it logged, for failure messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// Panics (with its log) if it has exited.
    pub fn assert_running(&mut self) {
        self.process.assert_running("the test ran");
    }

    /// Its pid, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }
}

// --- sipp ------------------------------------------------------------------

/// sipp's transport (`-t`): one socket for all calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SippTransport {
    /// `-t u1`
    Udp,
    /// `-t t1`
    Tcp,
}

/// Builds a sipp run: a built-in scenario (`-sn`) or a file, always with
/// `-m` calls, a global `-timeout`, `-trace_err` and `-trace_msg` into its
/// own temp dir, on a free local port.
#[derive(Clone, Debug)]
pub struct SippBuilder {
    scenario: SippScenario,
    remote: Option<SocketAddr>,
    service: Option<String>,
    auth: Option<(String, String)>,
    transport: SippTransport,
    calls: u32,
    timeout: Duration,
    pause: Option<Duration>,
    extra: Vec<String>,
}

#[derive(Clone, Debug)]
enum SippScenario {
    Builtin(String),
    File(PathBuf),
}

impl SippBuilder {
    /// The remote host (`host:port` positional argument; UAC scenarios).
    pub fn remote(mut self, addr: SocketAddr) -> Self {
        self.remote = Some(addr);
        self
    }

    /// The user part of the request URI (`-s`, `[service]`).
    pub fn service(mut self, user: &str) -> Self {
        self.service = Some(user.to_owned());
        self
    }

    /// Digest credentials (`-au`, `-ap`) for `<recv … auth="true"/>`.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// The transport (UDP by default).
    pub fn transport(mut self, transport: SippTransport) -> Self {
        self.transport = transport;
        self
    }

    /// How many calls to run before exiting (`-m`, 1 by default).
    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// sipp's own global timeout (`-timeout`, 40 s by default: a bound for
    /// failures on a loaded 2-core machine, never waited out on success): it gives up
    /// and exits non-zero after it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The length of `<pause/>` (`-d`), e.g. between ACK and BYE.
    pub fn pause(mut self, pause: Duration) -> Self {
        self.pause = Some(pause);
        self
    }

    /// Any other sipp argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra.push(arg.to_owned());
        self
    }

    /// Starts it in the background.
    pub fn spawn(self) -> Sipp {
        let dir = temp_dir("sipp");
        let port = free_port();
        // sipp binds its media port and +2 even when unused: give it its
        // own so parallel instances do not fight over the default 6000.
        let media_port = free_ports(4);
        let mut cmd = Command::new("sipp");
        cmd.current_dir(dir.path());
        match &self.scenario {
            SippScenario::Builtin(name) => cmd.args(["-sn", name]),
            SippScenario::File(path) => cmd.arg("-sf").arg(path),
        };
        if let Some(remote) = self.remote {
            cmd.arg(remote.to_string());
        }
        if let Some(service) = &self.service {
            cmd.args(["-s", service]);
        }
        if let Some((user, password)) = &self.auth {
            cmd.args(["-au", user, "-ap", password]);
        }
        let transport = match self.transport {
            SippTransport::Udp => "u1",
            SippTransport::Tcp => "t1",
        };
        cmd.args(["-t", transport, "-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .arg("-p")
            .arg(port.to_string())
            .arg("-mp")
            .arg(media_port.to_string())
            .arg("-m")
            .arg(self.calls.to_string())
            .arg("-timeout")
            .arg(format!("{}ms", self.timeout.as_millis()))
            .args(["-nostdin", "-trace_err", "-trace_msg"])
            .arg("-error_file")
            .arg(dir.path().join("errors.log"))
            .arg("-message_file")
            .arg(dir.path().join("messages.log"));
        if let Some(pause) = self.pause {
            cmd.arg("-d").arg(pause.as_millis().to_string());
        }
        cmd.args(&self.extra);
        let process = PeerProcess::spawn("sipp", cmd, dir.path().join("screen.log"));
        let mut sipp = Sipp {
            process,
            port,
            timeout: self.timeout,
            dir,
        };
        // sipp binds before running the scenario; a UAS must be reachable
        // when spawn returns. A run that already ended is for wait() to
        // report, whatever its status.
        let transport = self.transport;
        let up = poll_until(START_TIMEOUT, || {
            sipp.process.try_exit().is_some() || port_in_use(port, transport)
        });
        if !up {
            panic!(
                "sipp did not start listening on 127.0.0.1:{port}: {}",
                sipp.report()
            );
        }
        sipp
    }

    /// Runs it to completion and returns how it ended.
    pub fn run(self) -> SippOutcome {
        self.spawn().wait()
    }
}

/// Whether a socket is bound to 127.0.0.1:`port` for `transport`, read
/// from /proc/net (binding the port to find out could steal it from sipp).
fn port_in_use(port: u16, transport: SippTransport) -> bool {
    let table = match transport {
        SippTransport::Udp => "/proc/net/udp",
        SippTransport::Tcp => "/proc/net/tcp",
    };
    let wanted = format!("0100007F:{port:04X}");
    fs::read_to_string(table).is_ok_and(|t| {
        t.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(wanted.as_str()))
    })
}

/// A running sipp.
pub struct Sipp {
    process: PeerProcess,
    port: u16,
    timeout: Duration,
    dir: TempDir,
}

/// How a sipp run ended, with its traces.
#[derive(Debug)]
pub struct SippOutcome {
    /// Its exit code (`None` if it did not exit in time or died by signal).
    pub code: Option<i32>,
    /// `-trace_err`: the unexpected messages and aborts.
    pub errors: String,
    /// `-trace_msg`: every message sent and received.
    pub messages: String,
    /// Its screen output (statistics).
    pub screen: String,
}

impl SippOutcome {
    /// Panics, quoting the traces, unless every call succeeded (exit 0).
    pub fn assert_success(&self, what: &str) {
        assert_eq!(self.code, Some(0), "sipp {what}: {self}");
    }

    /// Panics, quoting the traces, unless sipp exited with `code`.
    pub fn assert_code(&self, code: i32, what: &str) {
        assert_eq!(self.code, Some(code), "sipp {what}: {self}");
    }
}

impl std::fmt::Display for SippOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {:?}\n--- errors (-trace_err) ---\n{}\n--- messages (-trace_msg, tail) ---\n{}\n--- screen (tail) ---\n{}",
            self.code,
            tail(&self.errors, LOG_TAIL_LINES),
            tail(&self.messages, LOG_TAIL_LINES),
            tail(&self.screen, 30)
        )
    }
}

impl Sipp {
    /// A builder for sipp's built-in scenario `name` (`uac`, `uas`, …; see
    /// `sipp -sd NAME`).
    pub fn builtin(name: &str) -> SippBuilder {
        Sipp::with_scenario(SippScenario::Builtin(name.to_owned()))
    }

    /// A builder for a scenario file; a relative path is taken from
    /// tests/peers/sipp/.
    pub fn scenario(path: impl AsRef<Path>) -> SippBuilder {
        let path = path.as_ref();
        let path = if path.is_absolute() {
            path.to_owned()
        } else {
            peers_dir().join("sipp").join(path)
        };
        assert!(path.is_file(), "no sipp scenario {}", path.display());
        Sipp::with_scenario(SippScenario::File(path))
    }

    fn with_scenario(scenario: SippScenario) -> SippBuilder {
        SippBuilder {
            scenario,
            remote: None,
            service: None,
            auth: None,
            transport: SippTransport::Udp,
            calls: 1,
            timeout: Duration::from_secs(40),
            pause: None,
            extra: Vec::new(),
        }
    }

    /// sipp's built-in UAS in the background, answering one call (INVITE →
    /// 180 → 200, ACK, then the caller's BYE → 200). It exits 4 s after
    /// the BYE (the scenario's `<timewait>`), so [`Sipp::wait`] takes that.
    pub fn uas() -> Sipp {
        Sipp::builtin("uas").spawn()
    }

    /// sipp calling `user` at `target` with tests/peers/sipp/uac_call.xml
    /// (INVITE, optional 100/180/183, 200, ACK to the Contact with the
    /// route set, `pause`, BYE, 200), run to completion.
    pub fn call(target: SocketAddr, user: &str, pause: Duration) -> SippOutcome {
        Sipp::scenario("uac_call.xml")
            .remote(target)
            .service(user)
            .pause(pause)
            .run()
    }

    /// Its local address (where a UAS listens).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `sip:USER@127.0.0.1:PORT`, for calling it.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }

    /// Waits for it to exit (bounded by its `-timeout` plus a margin; then
    /// it is killed) and returns the outcome with its traces.
    pub fn wait(mut self) -> SippOutcome {
        let status = self
            .process
            .wait_exit(self.timeout + Duration::from_secs(5));
        self.outcome(status)
    }

    fn outcome(&self, status: Option<ExitStatus>) -> SippOutcome {
        let read = |name: &str| {
            fs::read(self.dir.path().join(name))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        SippOutcome {
            code: status.and_then(|s| s.code()),
            errors: read("errors.log"),
            messages: read("messages.log"),
            screen: self.process.log_text(),
        }
    }

    /// Its pid, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Its exit code if it has exited.
    pub fn try_exit(&mut self) -> Option<i32> {
        self.process.try_exit().and_then(|s| s.code())
    }

    /// The traces so far, for a failure message.
    pub fn report(&self) -> String {
        self.outcome(self.process.exited).to_string()
    }
}

// --- baresip ---------------------------------------------------------------

/// How to start [`Baresip`].
#[derive(Clone, Debug)]
pub struct BaresipConfig {
    /// The account's address of record, e.g. `sip:bob@127.0.0.1`.
    pub aor: String,
    /// Account-line parameters, `;`-separated without the leading `;`
    /// (e.g. `answermode=auto`, or [`Kamailio::baresip_options`]).
    /// `regint=0` and `audio_codecs=PCMU` are added unless given.
    pub options: String,
    /// SIP URIs written to its contacts file: the only targets of
    /// [`Baresip::send_message`] (baresip 1.0.0 messages its current
    /// contact only).
    pub contacts: Vec<String>,
    /// A PEM file with the certificate and key baresip serves TLS with
    /// (on [`Baresip::tls_addr`]); `None`: no TLS.
    pub tls_certificate: Option<PathBuf>,
    /// The WAV its microphone plays (aufile; loops are not supported, so
    /// make it outlast the call); `None`: minutes of silence.
    pub audio_file: Option<PathBuf>,
    /// A folder where sndfile.so records each call's audio (`snd_path`):
    /// `dump-<time>-enc.wav` is what it sends, `-dec.wav` what it hears.
    pub record_dir: Option<PathBuf>,
    /// Extra modules to load (e.g. `g722.so`, `opus.so`).
    pub modules: Vec<String>,
}

impl Default for BaresipConfig {
    fn default() -> Self {
        BaresipConfig {
            aor: "sip:bob@127.0.0.1".to_owned(),
            options: String::new(),
            contacts: Vec::new(),
            tls_certificate: None,
            audio_file: None,
            record_dir: None,
            modules: Vec::new(),
        }
    }
}

/// A headless baresip on 127.0.0.1 (UDP and TCP on a free SIP port),
/// audio from a generated silent WAV into ALSA's null device, driven over
/// ctrl_tcp (netstring JSON) on another free port.
pub struct Baresip {
    process: PeerProcess,
    sip_port: u16,
    ctrl: TcpStream,
    buf: Vec<u8>,
    events: VecDeque<Value>,
    next_token: u64,
    contacts: Vec<String>,
    _dir: TempDir,
}

/// The answer mode that makes baresip answer every call at once.
pub const AUTO_ANSWER: &str = "answermode=auto";

impl Baresip {
    /// Starts `sip:bob@127.0.0.1` with `options` added to its account line
    /// (see [`BaresipConfig::options`]) and connects to its ctrl_tcp.
    pub fn start(options: &str) -> Baresip {
        Baresip::start_with(BaresipConfig {
            options: options.to_owned(),
            ..BaresipConfig::default()
        })
    }

    /// Starts it as `config` says and connects to its ctrl_tcp.
    pub fn start_with(config: BaresipConfig) -> Baresip {
        let dir = temp_dir("baresip");
        // SIP port and +1 (baresip's TLS listener), ctrl port, RTP range.
        let sip_port = free_ports(2);
        let ctrl_port = free_port();
        let rtp = free_ports(10);
        let audio = match &config.audio_file {
            Some(path) => path.clone(),
            None => {
                let audio = dir.path().join("silence.wav");
                fs::write(&audio, silent_wav(Duration::from_secs(600)))
                    .expect("write the audio WAV");
                audio
            }
        };
        let template = fs::read_to_string(peers_dir().join("baresip").join("config"))
            .expect("read tests/peers/baresip/config");
        let conf = template
            .replace("@SIP_PORT@", &sip_port.to_string())
            .replace("@CTRL_PORT@", &ctrl_port.to_string())
            .replace("@RTP_PORTS@", &format!("{rtp}-{}", rtp + 9))
            .replace("@AUDIO_FILE@", &audio.to_string_lossy());
        let conf = match &config.tls_certificate {
            Some(pem) => format!("{conf}sip_certificate\t\t{}\n", pem.display()),
            None => conf,
        };
        let mut conf = conf;
        for module in &config.modules {
            let _ = writeln!(conf, "module\t\t\t{module}");
        }
        if let Some(record) = &config.record_dir {
            let _ = writeln!(
                conf,
                "module\t\t\tsndfile.so\nsnd_path\t\t{}",
                record.display()
            );
        }
        fs::write(dir.path().join("config"), conf).expect("write baresip's config");
        let mut line = format!("<{}>", config.aor);
        if !config.options.is_empty() {
            line.push(';');
            line.push_str(config.options.trim_start_matches(';'));
        }
        for default in ["regint=0", "audio_codecs=PCMU"] {
            let key = default.split('=').next().unwrap_or(default);
            if !config.options.contains(&format!("{key}=")) {
                let _ = write!(line, ";{default}");
            }
        }
        fs::write(dir.path().join("accounts"), format!("{line}\n")).expect("write accounts");
        let contacts: String = config.contacts.iter().map(|c| format!("<{c}>\n")).collect();
        fs::write(dir.path().join("contacts"), contacts).expect("write contacts");
        let mut cmd = Command::new("baresip");
        cmd.current_dir(dir.path())
            .arg("-f")
            .arg(dir.path())
            .arg("-v");
        let mut process = PeerProcess::spawn("baresip", cmd, dir.path().join("baresip.log"));
        let mut ctrl = None;
        let connected = poll_until(START_TIMEOUT, || {
            if process.try_exit().is_some() {
                return true;
            }
            ctrl = TcpStream::connect(("127.0.0.1", ctrl_port)).ok();
            ctrl.is_some()
        });
        process.assert_running("starting");
        let Some(ctrl) = ctrl.filter(|_| connected) else {
            panic!(
                "baresip's ctrl_tcp did not accept on 127.0.0.1:{ctrl_port} within {START_TIMEOUT:?}; its log ends:\n{}",
                process.log_tail()
            );
        };
        ctrl.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set a TCP read timeout");
        let mut baresip = Baresip {
            process,
            sip_port,
            ctrl,
            buf: Vec::new(),
            events: VecDeque::new(),
            next_token: 0,
            contacts: config.contacts,
            _dir: dir,
        };
        // ctrl_tcp listens before the UA is up: a round trip proves both.
        baresip.command("reginfo", None);
        baresip
    }

    /// Its SIP address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    /// Its TLS address (the SIP port + 1), served when started with
    /// [`BaresipConfig::tls_certificate`].
    pub fn tls_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port + 1))
    }

    /// `sip:USER@127.0.0.1:PORT`, for calling it directly.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.sip_port)
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.process.log_text()
    }

    /// Its pid, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Sends a ctrl_tcp command and returns its response
    /// (`{"response":true,"ok":…,"data":…,"token":…}`), keeping the events
    /// that arrive meanwhile for [`Baresip::wait_event`]. Panics if no
    /// response arrives within 5 s.
    pub fn command(&mut self, command: &str, params: Option<&str>) -> Value {
        self.next_token += 1;
        let token = format!("t{}", self.next_token);
        let mut request = serde_json::json!({"command": command, "token": token});
        if let Some(params) = params {
            request["params"] = Value::from(params);
        }
        let body = request.to_string();
        let frame = format!("{}:{body},", body.len());
        if let Err(e) = self.ctrl.write_all(frame.as_bytes()) {
            panic!(
                "baresip ctrl_tcp: cannot send {body}: {e}; its log ends:\n{}",
                self.process.log_tail()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            while let Some(message) = self.read_message() {
                if message["response"] == true && message["token"] == token.as_str() {
                    return message;
                }
                if message["event"] == true {
                    self.events.push_back(message);
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "baresip ctrl_tcp: no response to {body} within 5 s; its log ends:\n{}",
                    self.process.log_tail()
                );
            }
            self.fill();
        }
    }

    /// Sends a command and panics unless the response says ok; returns its
    /// `data`.
    pub fn command_ok(&mut self, command: &str, params: Option<&str>) -> String {
        let response = self.command(command, params);
        if response["ok"] != true {
            panic!(
                "baresip: command {command} {params:?} failed: {response}; its log ends:\n{}",
                self.process.log_tail()
            );
        }
        response["data"].as_str().unwrap_or_default().to_owned()
    }

    /// Calls `uri` (`dial`).
    pub fn dial(&mut self, uri: &str) {
        self.command_ok("dial", Some(uri));
    }

    /// Answers the incoming call (`accept`).
    pub fn accept(&mut self) {
        self.command_ok("accept", None);
    }

    /// Hangs the current call up (`hangup`).
    pub fn hangup(&mut self) {
        self.command_ok("hangup", None);
    }

    /// Puts the current call on hold (`hold`: re-INVITE with sendonly).
    pub fn hold(&mut self) {
        self.command_ok("hold", None);
    }

    /// Resumes the current call (`resume`).
    pub fn resume(&mut self) {
        self.command_ok("resume", None);
    }

    /// Transfers the current call to `uri` (`transfer`: REFER).
    pub fn transfer(&mut self, uri: &str) {
        self.command_ok("transfer", Some(uri));
    }

    /// Sends a SIP MESSAGE with `text` to `uri`, which must be one of
    /// [`BaresipConfig::contacts`] (baresip 1.0.0 messages its current
    /// contact: this steps through the contacts to it).
    pub fn send_message(&mut self, uri: &str, text: &str) {
        if !self.contacts.iter().any(|c| c == uri) {
            panic!(
                "baresip can only message its configured contacts {:?}, not {uri}",
                self.contacts
            );
        }
        // contact_next answers "Current contact: …"; step until it is `uri`
        // (at most once around the list, wherever it started).
        let mut answers = Vec::new();
        for _ in 0..=self.contacts.len() {
            let answer = self.command_ok("contact_next", None);
            if answer.contains(uri) {
                self.command_ok("message", Some(text));
                return;
            }
            answers.push(answer);
        }
        panic!("baresip: contact_next never selected {uri}: {answers:?}");
    }

    /// Waits up to `timeout` for the next event of `kind` (e.g.
    /// `CALL_ESTABLISHED`, `CALL_CLOSED`, `REGISTER_OK`) and returns it;
    /// events of other kinds before it are dropped. Panics with the events
    /// seen and baresip's log if none arrives.
    pub fn wait_event(&mut self, kind: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            while let Some(event) = self.next_event() {
                if event["type"] == kind {
                    return event;
                }
                seen.push(event["type"].to_string());
            }
            if Instant::now() >= deadline {
                panic!(
                    "baresip: no {kind} event within {timeout:?} (saw {seen:?}); its log ends:\n{}",
                    self.process.log_tail()
                );
            }
            self.fill();
        }
    }

    /// Every event received so far that no wait consumed yet.
    pub fn drain_events(&mut self) -> Vec<Value> {
        let mut all = Vec::new();
        while let Some(event) = self.next_event() {
            all.push(event);
        }
        all
    }

    /// Waits up to `timeout` until its account is registered, polling
    /// `reginfo` (REGISTER_OK may fire before the ctrl_tcp connection is
    /// up, and events are not replayed).
    pub fn wait_registered(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.command_ok("reginfo", None);
            if info.contains("OK") {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "baresip: not registered within {timeout:?} (reginfo: {info}); its log ends:\n{}",
                    self.process.log_tail()
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `timeout` for `needle` to appear in its log (`-v`), for
    /// what ctrl_tcp reports no event for. (A received MESSAGE is not
    /// logged: baresip 1.0.0 shows it on UI modules only.)
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) {
        if !poll_until(timeout, || self.process.log_text().contains(needle)) {
            panic!(
                "baresip: {needle:?} not logged within {timeout:?}; its log ends:\n{}",
                self.process.log_tail()
            );
        }
    }

    fn next_event(&mut self) -> Option<Value> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        while let Some(message) = self.read_message() {
            if message["event"] == true {
                return Some(message);
            }
        }
        None
    }

    /// Reads what is available (waiting at most ~50 ms) into the buffer.
    fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        match self.ctrl.read(&mut chunk) {
            Ok(0) => {
                self.process.assert_running("ctrl_tcp was read");
                panic!(
                    "baresip closed its ctrl_tcp connection (another client connected?); its log ends:\n{}",
                    self.process.log_tail()
                );
            }
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.process.assert_running("waiting on ctrl_tcp");
            }
            Err(e) => panic!(
                "baresip ctrl_tcp read failed: {e}; its log ends:\n{}",
                self.process.log_tail()
            ),
        }
    }

    /// Takes one complete netstring `LEN:JSON,` off the buffer.
    fn read_message(&mut self) -> Option<Value> {
        let colon = self.buf.iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&self.buf[..colon])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "baresip ctrl_tcp: bad netstring length in {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            });
        let end = colon + 1 + len;
        if self.buf.len() <= end {
            return None;
        }
        let body = self.buf[colon + 1..end].to_vec();
        self.buf.drain(..=end);
        match serde_json::from_slice(&body) {
            Ok(value) => Some(value),
            Err(e) => panic!(
                "baresip ctrl_tcp: not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        // A polite quit first lets it send BYE/un-REGISTER; the process
        // guard then makes sure it is gone.
        let body = r#"{"command":"quit","token":"quit"}"#;
        let _ = self
            .ctrl
            .write_all(format!("{}:{body},", body.len()).as_bytes());
        let _ = self.process.wait_exit(Duration::from_millis(500));
    }
}

/// A mono 8 kHz 16-bit WAV of silence lasting `length` (baresip's aufile
/// source; when it ends baresip hangs up, so make it outlast the test).
pub fn silent_wav(length: Duration) -> Vec<u8> {
    tone_wav(0.0, 0.0, length)
}

/// A mono 8 kHz 16-bit WAV of a sine at `hz` with peak `amplitude`
/// (0 for silence) lasting `length`.
pub fn tone_wav(hz: f64, amplitude: f64, length: Duration) -> Vec<u8> {
    let samples = (length.as_millis() * 8) as u32;
    let data_len = samples * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
    wav.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for n in 0..samples {
        let phase = 2.0 * std::f64::consts::PI * hz * f64::from(n) / 8000.0;
        let v = (amplitude * phase.sin()).round() as i16;
        wav.extend_from_slice(&v.to_le_bytes());
    }
    wav
}

/// Sends one SIP request over UDP to `to` (resending it every 200 ms) and
/// returns the first final response (skipping 1xx), or panics after
/// `timeout`. Every `{local}` in `request` becomes the sending socket's
/// address (for Via and Contact). For probing a peer without sipp, e.g.
/// reading a challenge's WWW-Authenticate.
pub fn udp_request(to: SocketAddr, request: &str, timeout: Duration) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a UDP read timeout");
    let local = socket.local_addr().expect("a bound socket has an address");
    let request = request.replace("{local}", &local.to_string());
    let deadline = Instant::now() + timeout;
    loop {
        socket
            .send_to(request.as_bytes(), to)
            .unwrap_or_else(|e| panic!("send a request to {to}: {e}"));
        let mut buf = [0u8; 8192];
        while let Ok((len, _)) = socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            if text.starts_with("SIP/2.0 ") && !text.starts_with("SIP/2.0 1") {
                return text;
            }
        }
        if Instant::now() >= deadline {
            panic!("no final response from {to} within {timeout:?} to:\n{request}");
        }
    }
}

/// A throwaway PKI made with the `openssl` command: a CA and a server
/// certificate for 127.0.0.1 signed by it.
pub struct TestPki {
    /// The CA certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The server certificate followed by its key (PEM), as baresip's
    /// `sip_certificate` wants it.
    pub server: PathBuf,
    _dir: TempDir,
}

impl TestPki {
    /// Makes the CA and the server certificate (EC P-256, one day).
    pub fn generate() -> TestPki {
        let dir = temp_dir("pki");
        let path = |name: &str| dir.path().join(name);
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("run openssl (Debian package openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=msipphone test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        fs::write(
            path("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
        )
        .expect("write the extensions file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ]);
        let mut pem = fs::read(path("server.crt")).expect("read server.crt");
        pem.extend(fs::read(path("server.key")).expect("read server.key"));
        fs::write(path("server.pem"), pem).expect("write server.pem");
        TestPki {
            ca: path("ca.pem"),
            server: path("server.pem"),
            _dir: dir,
        }
    }
}
