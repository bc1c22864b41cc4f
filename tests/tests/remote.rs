//! Remote templates and variables through the real binary: `msipprov pack`,
//! `keygen` and `sign`, then `apply --template URL --vars URL` against an
//! HTTP/1.1 server started inside each test on 127.0.0.1 (ETags, 304s,
//! a 500, a dropped connection, a hang, a tampered bundle, a proxy).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use e2e::{msipprov_env, stderr, stdout, templates};
use softphone::config::IniDocument;

// ---------------------------------------------------------------- the server

/// What the server does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Serve files, with ETags and 304s.
    Serve,
    /// Answer every request with this status.
    Status(u16),
    /// Answer the next request with this status, then serve.
    FailOnce(u16),
    /// Read the request, then close the connection without answering.
    Drop,
    /// Read the request, then say nothing for 3 s.
    Hang,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Request {
    /// The request target: a path, or an absolute URL when sent to a proxy.
    target: String,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        // A proxy gets `http://host/path`; a server gets `/path`.
        match self.target.strip_prefix("http://") {
            Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => &self.target,
        }
    }
}

struct State {
    files: HashMap<String, Vec<u8>>,
    mode: Mode,
    requests: Vec<Request>,
    /// When set, requests without exactly this Authorization get 401.
    require_auth: Option<String>,
}

struct Server {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            files: HashMap::new(),
            mode: Mode::Serve,
            requests: Vec::new(),
            require_auth: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (state2, stop2) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = state2.clone();
                std::thread::spawn(move || handle(stream, &state));
            }
        });
        Server {
            addr,
            state,
            stop,
            thread: Mutex::new(Some(thread)),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    fn put(&self, path: &str, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap();
        state.files.insert(format!("/{path}"), bytes.to_vec());
    }

    fn remove(&self, path: &str) {
        self.state.lock().unwrap().files.remove(&format!("/{path}"));
    }

    fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    fn require_auth(&self, value: &str) {
        self.state.lock().unwrap().require_auth = Some(value.to_owned());
    }

    /// The requests seen so far, and forget them.
    fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }

    /// Stops listening: the port refuses connections afterwards.
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.lock().unwrap().take() {
            t.join().unwrap();
        }
    }
}

fn etag_of(bytes: &[u8]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

fn handle(stream: TcpStream, state: &Mutex<State>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let request = Request { target, headers };
    let (mode, file, auth_ok) = {
        let mut s = state.lock().unwrap();
        s.requests.push(request.clone());
        let mode = s.mode;
        if let Mode::FailOnce(_) = mode {
            s.mode = Mode::Serve;
        }
        let auth_ok = match &s.require_auth {
            Some(want) => request.header("authorization") == Some(want.as_str()),
            None => true,
        };
        (mode, s.files.get(request.path()).cloned(), auth_ok)
    };
    let mut stream = stream;
    let respond = |stream: &mut TcpStream, code: u16, extra: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        let _ = stream.flush();
    };
    match mode {
        Mode::Drop => {}
        Mode::Hang => std::thread::sleep(Duration::from_secs(3)),
        Mode::Status(code) | Mode::FailOnce(code) => respond(&mut stream, code, "", b"boom"),
        Mode::Serve if !auth_ok => respond(&mut stream, 401, "", b"who are you"),
        Mode::Serve => match file {
            None => respond(&mut stream, 404, "", b"not here"),
            Some(bytes) => {
                let etag = etag_of(&bytes);
                if request.header("if-none-match") == Some(etag.as_str()) {
                    respond(&mut stream, 304, &format!("ETag: {etag}\r\n"), b"");
                } else {
                    respond(&mut stream, 200, &format!("ETag: {etag}\r\n"), &bytes);
                }
            }
        },
    }
}

// ------------------------------------------------------------ the fixtures

/// A signing key, a packed and signed template bundle, a server holding
/// both, and a private cache folder.
struct Fixture {
    dir: tempfile::TempDir,
    server: Server,
}

const VARS: &[&str] = &[
    "--set",
    "server=sip.example.com",
    "--set",
    "username=alice",
    "--set",
    "password=s3cret-Pa55",
];

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let fx = Fixture {
            dir,
            server: Server::start(),
        };
        // The shipped default set, renamed so the report shows where it came from.
        let set = fx.path("corp");
        std::fs::create_dir_all(&set).unwrap();
        for name in ["template.toml", "microsip.ini.j2"] {
            let text = std::fs::read_to_string(templates().join("default").join(name)).unwrap();
            let text = text.replace("name = \"default\"", "name = \"corp\"");
            std::fs::write(set.join(name), text).unwrap();
        }
        let out = fx.run(&["keygen", "-o", fx.path("key").to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let bundle = fx.path("corp.tar.gz");
        let out = fx.run(
            &[
                "pack",
                set.to_str().unwrap(),
                "-o",
                bundle.to_str().unwrap(),
                "--sign",
                fx.path("key").to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains("signed"), "{}", stdout(&out));
        fx.server
            .put("corp.tar.gz", &std::fs::read(&bundle).unwrap());
        fx.server.put(
            "corp.tar.gz.sig",
            &std::fs::read(fx.path("corp.tar.gz.sig")).unwrap(),
        );
        fx
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn target(&self) -> PathBuf {
        self.path("profile")
    }

    fn pubkey(&self) -> String {
        self.path("key.pub").to_str().unwrap().to_owned()
    }

    /// msipprov with this fixture's cache, one retry, and no proxy for the
    /// test server whatever the surrounding environment says.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let cache = self.path("cache");
        let mut all: Vec<(&str, &str)> = env.to_vec();
        for (k, v) in [
            ("MSIPPROV_CACHE_DIR", cache.to_str().unwrap()),
            ("MSIPPROV_HTTP_RETRIES", "1"),
            ("NO_PROXY", "127.0.0.1,localhost"),
            ("no_proxy", "127.0.0.1,localhost"),
            ("MSIPPROV_CONFIG", ""),
        ] {
            if !all.iter().any(|(key, _)| *key == k) {
                all.push((k, v));
            }
        }
        msipprov_env(args, &all)
    }

    /// `apply --template <served bundle> --trust key.pub` into the target.
    fn apply(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let url = self.server.url("corp.tar.gz");
        let target = self.target();
        let mut args = vec![
            "apply",
            "--no-handlers",
            "--target",
            target.to_str().unwrap(),
            "--template",
            &url,
        ];
        args.extend_from_slice(VARS);
        args.extend_from_slice(extra);
        self.run(&args, env)
    }

    fn trusted_apply(&self, extra: &[&str]) -> Output {
        let key = self.pubkey();
        let mut args = vec!["--trust", key.as_str()];
        args.extend_from_slice(extra);
        self.apply(&args, &[])
    }

    fn ini(&self) -> IniDocument {
        IniDocument::parse(&std::fs::read(self.target().join("microsip.ini")).unwrap()).unwrap()
    }

    fn nothing_written(&self) -> bool {
        !self.target().join("microsip.ini").exists()
    }
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn both(out: &Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", both(out)))
}

/// A `.tar.gz` with one entry whose name and type the test chooses, built
/// byte by byte (tar libraries refuse to write such names).
fn hostile_bundle(name: &str, kind: u8) -> Vec<u8> {
    let data = b"[Settings]\n";
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = kind;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

// ----------------------------------------------------------------- the tests

#[test]
fn signed_bundle_applies_then_a_304_uses_the_cache() {
    let fx = Fixture::new();
    let out = fx.trusted_apply(&[]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(fx.ini().get("Account1", "server"), Some("sip.example.com"));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("fetched    {}", fx.server.url("corp.tar.gz"))),
        "{text}"
    );
    assert!(text.contains("signed by SHA256:"), "{text}");
    let seen: Vec<String> = fx
        .server
        .take_requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(seen, ["/corp.tar.gz", "/corp.tar.gz.sig"]);

    let out = fx.trusted_apply(&["--json"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let report = json(&out);
    assert_eq!(report["result"], "unchanged");
    assert_eq!(report["offline"], false);
    assert_eq!(report["remote"][0]["status"], "not_modified");
    assert_eq!(report["remote"][0]["kind"], "template");
    assert!(
        report["template"]
            .as_str()
            .unwrap()
            .contains(&fx.server.url("corp.tar.gz")),
        "{report}"
    );
    // One conditional request, answered 304; the cached signature still holds.
    let requests = fx.server.take_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let etag = etag_of(&std::fs::read(fx.path("corp.tar.gz")).unwrap());
    assert_eq!(requests[0].header("if-none-match"), Some(etag.as_str()));
    assert!(requests[0]
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("msipprov/")));
}

#[test]
fn an_unreachable_server_falls_back_to_the_last_good_copy_and_says_so() {
    let fx = Fixture::new();
    let log = fx.path("run.log");
    let log_arg = log.to_str().unwrap().to_owned();
    assert_eq!(code(&fx.trusted_apply(&[])), Some(0));
    fx.server.take_requests();

    // A 500: retried once (MSIPPROV_HTTP_RETRIES=1), then the cache.
    fx.server.set_mode(Mode::Status(500));
    let out = fx.trusted_apply(&["--log", &log_arg]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let text = stdout(&out);
    assert!(text.contains("offline    "), "{text}");
    assert!(text.contains("HTTP 500"), "{text}");
    assert!(text.contains("used the cached copy from"), "{text}");
    assert!(text.contains("unchanged"), "{text}");
    assert_eq!(fx.server.take_requests().len(), 2);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("remote=offline"), "{logged}");

    // A dropped connection, in JSON.
    fx.server.set_mode(Mode::Drop);
    let out = fx.trusted_apply(&["--json"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let report = json(&out);
    assert_eq!(report["offline"], true);
    assert_eq!(report["remote"][0]["status"], "offline");
    assert!(report["remote"][0]["reason"].as_str().unwrap().len() > 5);
    assert!(report["remote"][0]["fetched_at"].is_string());

    // A server that hangs: the timeout ends the wait.
    fx.server.set_mode(Mode::Hang);
    let started = std::time::Instant::now();
    let out = fx.apply(
        &["--trust", &fx.pubkey()],
        &[
            ("MSIPPROV_HTTP_TIMEOUT", "0.5"),
            ("MSIPPROV_HTTP_RETRIES", "0"),
        ],
    );
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("offline"), "{}", stdout(&out));
    assert!(started.elapsed() < Duration::from_secs(3));

    // Nobody listening: the laptop logging on offline still gets its phone.
    let url = fx.server.url("corp.tar.gz");
    fx.server.stop();
    std::fs::remove_dir_all(fx.target()).unwrap();
    let out = fx.trusted_apply(&["--quiet"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(stdout(&out), "", "--quiet prints nothing on success");
    assert_eq!(fx.ini().get("Account1", "username"), Some("alice"));
    let out = fx.trusted_apply(&[]);
    assert!(
        stdout(&out).contains(&format!("offline    {url}")),
        "{}",
        both(&out)
    );
}

#[test]
fn with_no_cache_a_fetch_failure_fails_cleanly_writing_nothing() {
    let fx = Fixture::new();
    fx.server.set_mode(Mode::Status(500));
    let out = fx.trusted_apply(&[]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains(&fx.server.url("corp.tar.gz")), "{err}");
    assert!(err.contains("no cached copy"), "{err}");
    assert!(fx.nothing_written());

    let out = fx.trusted_apply(&["--json"]);
    assert_eq!(code(&out), Some(1));
    let report = json(&out);
    assert_eq!(report["result"], "failed");
    assert_eq!(report["exit_code"], 1);
    assert!(report["error"].as_str().unwrap().contains("HTTP 500"));

    let url = fx.server.url("corp.tar.gz");
    fx.server.stop();
    let target = fx.target();
    let out = fx.run(
        &[
            "apply",
            "--no-handlers",
            "--target",
            target.to_str().unwrap(),
            "--template",
            &url,
        ],
        &[],
    );
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains("cannot fetch"), "{}", stderr(&out));
    assert!(fx.nothing_written());
}

#[test]
fn a_tampered_bundle_is_refused_and_the_good_copy_stays() {
    let fx = Fixture::new();
    assert_eq!(code(&fx.trusted_apply(&[])), Some(0));
    let before = std::fs::read(fx.target().join("microsip.ini")).unwrap();
    // One byte flipped in the middle of the bundle; the signature is the old one.
    let mut bytes = std::fs::read(fx.path("corp.tar.gz")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fx.server.put("corp.tar.gz", &bytes);
    let out = fx.trusted_apply(&["--set", "username=mallory"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("signature does not match"), "{err}");
    assert!(err.contains(&fx.server.url("corp.tar.gz")), "{err}");
    assert_eq!(
        std::fs::read(fx.target().join("microsip.ini")).unwrap(),
        before,
        "nothing written"
    );
    // The refused bundle did not replace the last good copy.
    fx.server.set_mode(Mode::Status(503));
    let out = fx.trusted_apply(&[]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("offline"), "{}", stdout(&out));
}

#[test]
fn unsigned_bundles_and_other_keys_are_refused_under_trust() {
    let fx = Fixture::new();
    fx.server.remove("corp.tar.gz.sig");
    let out = fx.trusted_apply(&[]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains("is not signed"), "{}", stderr(&out));
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert!(fx.nothing_written());

    // Without trust the same bundle is fine.
    let out = fx.apply(&[], &[]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    std::fs::remove_dir_all(fx.target()).unwrap();

    // Signed, but by a key that is not trusted; also given inline.
    fx.server.put(
        "corp.tar.gz.sig",
        &std::fs::read(fx.path("corp.tar.gz.sig")).unwrap(),
    );
    let other = fx.path("other");
    let out = fx.run(&["keygen", "-o", other.to_str().unwrap()], &[]);
    assert_eq!(code(&out), Some(0));
    let inline = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("trust      ").map(str::to_owned))
        .unwrap();
    let out = fx.apply(&["--trust", &inline], &[]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(
        stderr(&out).contains("signature does not match"),
        "{}",
        stderr(&out)
    );
    assert!(fx.nothing_written());

    // Any one of several trusted keys will do (key rotation).
    let out = fx.apply(&["--trust", &inline, "--trust", &fx.pubkey()], &[]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
}

#[test]
fn trust_from_the_config_file_refuses_unsigned_bundles() {
    let fx = Fixture::new();
    let config = fx.path("msipprov.toml");
    std::fs::write(&config, "trust = [\"key.pub\"]\n").unwrap();
    let config_env = [("MSIPPROV_CONFIG", config.to_str().unwrap())];
    let out = fx.apply(&[], &config_env);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("signed by"), "{}", stdout(&out));
    std::fs::remove_dir_all(fx.target()).unwrap();
    std::fs::remove_dir_all(fx.path("cache")).unwrap();

    fx.server.remove("corp.tar.gz.sig");
    let out = fx.apply(&[], &config_env);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains("is not signed"), "{}", stderr(&out));
    assert!(fx.nothing_written());

    std::fs::write(&config, "trusted = [\"key.pub\"]\n").unwrap();
    let out = fx.apply(&[], &config_env);
    assert_eq!(code(&out), Some(1));
    assert!(stderr(&out).contains("msipprov.toml"), "{}", stderr(&out));
}

#[test]
fn credentials_come_from_the_environment_and_never_show() {
    let fx = Fixture::new();
    let token = "tok-9f8e7d6c5b4a";
    fx.server.require_auth(&format!("Bearer {token}"));
    let log = fx.path("run.log");
    let out = fx.apply(
        &["--log", log.to_str().unwrap()],
        &[("MSIPPROV_HTTP_TOKEN", token), ("MSIPPROV_LOG", "trace")],
    );
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(!both(&out).contains(token), "token leaked: {}", both(&out));
    let requests = fx.server.take_requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    // Without the token the server refuses; the error says how to give one.
    std::fs::remove_dir_all(fx.path("cache")).unwrap();
    let out = fx.apply(&[], &[]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("MSIPPROV_HTTP_TOKEN"),
        "{}",
        stderr(&out)
    );

    // A failing run with the token set, logs on: the token shows nowhere.
    fx.server.set_mode(Mode::Status(500));
    let out = fx.apply(
        &["--log", log.to_str().unwrap(), "--json"],
        &[("MSIPPROV_HTTP_TOKEN", token), ("MSIPPROV_LOG", "trace")],
    );
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    for text in [both(&out), std::fs::read_to_string(&log).unwrap()] {
        assert!(!text.contains(token), "token leaked: {text}");
    }

    // Basic auth from MSIPPROV_HTTP_USER / MSIPPROV_HTTP_PASSWORD.
    fx.server.set_mode(Mode::Serve);
    fx.server.require_auth("Basic cHJvdjpodW50ZXIy"); // prov:hunter2
    let out = fx.apply(
        &[],
        &[
            ("MSIPPROV_HTTP_USER", "prov"),
            ("MSIPPROV_HTTP_PASSWORD", "hunter2"),
            ("MSIPPROV_LOG", "trace"),
        ],
    );
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(!both(&out).contains("hunter2"));

    // Never from the command line.
    let with_creds = fx
        .server
        .url("corp.tar.gz")
        .replace("http://", "http://prov:hunter2@");
    let target = fx.target();
    let out = fx.run(
        &[
            "apply",
            "--target",
            target.to_str().unwrap(),
            "--template",
            &with_creds,
        ],
        &[],
    );
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(!both(&out).contains("hunter2"), "{}", both(&out));
    assert!(
        stderr(&out).contains("MSIPPROV_HTTP_TOKEN"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn remote_vars_files_work_and_are_signed_under_trust() {
    let fx = Fixture::new();
    let vars = "server = \"pbx.remote.example\"\nusername = \"bob\"\npassword = \"Remote-Pa55\"\n";
    fx.server.put("users/bob.toml", vars.as_bytes());
    let vars_url = fx.server.url("users/bob.toml");
    let target = fx.target();
    let t = target.to_str().unwrap();
    let out = fx.run(
        &["apply", "--no-handlers", "--target", t, "--vars", &vars_url],
        &[],
    );
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(
        fx.ini().get("Account1", "server"),
        Some("pbx.remote.example")
    );
    assert!(
        stdout(&out).contains(&format!("fetched    {vars_url}")),
        "{}",
        stdout(&out)
    );

    // Under trust a vars file needs its signature too (`msipprov sign`).
    let key = fx.pubkey();
    let args = [
        "apply",
        "--no-handlers",
        "--target",
        t,
        "--vars",
        &vars_url,
        "--trust",
        &key,
    ];
    let out = fx.run(&args, &[]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains("is not signed"), "{}", stderr(&out));
    let local = fx.path("bob.toml");
    std::fs::write(&local, vars).unwrap();
    let out = fx.run(
        &[
            "sign",
            local.to_str().unwrap(),
            "--key",
            fx.path("key").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    fx.server.put(
        "users/bob.toml.sig",
        &std::fs::read(fx.path("bob.toml.sig")).unwrap(),
    );
    let out = fx.run(&args, &[]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));

    // A broken remote vars file is reported under its URL.
    fx.server.put("users/bad.toml", b"server = \n");
    let bad = fx.server.url("users/bad.toml");
    let out = fx.run(
        &["apply", "--no-handlers", "--target", t, "--vars", &bad],
        &[],
    );
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains(&bad), "{}", stderr(&out));
}

#[test]
fn hostile_bundles_are_refused_even_when_signed() {
    let fx = Fixture::new();
    for (name, kind, why) in [
        ("../evil.txt", b'0', "`..`"),
        ("/tmp/evil.txt", b'0', "absolute"),
        ("template.toml", b'2', "not allowed"),
    ] {
        let bundle = hostile_bundle(name, kind);
        let file = fx.path("evil.tar.gz");
        std::fs::write(&file, &bundle).unwrap();
        let out = fx.run(
            &[
                "sign",
                file.to_str().unwrap(),
                "--key",
                fx.path("key").to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(code(&out), Some(0));
        fx.server.put("evil.tar.gz", &bundle);
        fx.server.put(
            "evil.tar.gz.sig",
            &std::fs::read(fx.path("evil.tar.gz.sig")).unwrap(),
        );
        let url = fx.server.url("evil.tar.gz");
        let target = fx.target();
        let key = fx.pubkey();
        let mut args = vec![
            "apply",
            "--no-handlers",
            "--target",
            target.to_str().unwrap(),
            "--template",
            &url,
            "--trust",
            &key,
        ];
        args.extend_from_slice(VARS);
        let out = fx.run(&args, &[]);
        assert_eq!(code(&out), Some(1), "{name}: {}", both(&out));
        let err = stderr(&out);
        assert!(
            err.contains("refused entry") && err.contains(why),
            "{name}: {err}"
        );
        assert!(fx.nothing_written());
        assert!(!fx.dir.path().join("evil.txt").exists());
    }
}

#[test]
fn a_transient_server_error_is_retried() {
    let fx = Fixture::new();
    fx.server.set_mode(Mode::FailOnce(503));
    let out = fx.trusted_apply(&[]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("fetched"), "{}", stdout(&out));
    let paths: Vec<String> = fx
        .server
        .take_requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(paths, ["/corp.tar.gz", "/corp.tar.gz", "/corp.tar.gz.sig"]);
}

#[test]
fn the_proxy_from_the_environment_is_used() {
    let fx = Fixture::new();
    // The test server plays the proxy: it gets the absolute URL and serves it.
    let proxy = format!("http://{}", fx.server.addr);
    let url = "http://provisioning.invalid/corp.tar.gz";
    let target = fx.target();
    let mut args = vec![
        "apply",
        "--no-handlers",
        "--target",
        target.to_str().unwrap(),
        "--template",
        url,
    ];
    args.extend_from_slice(VARS);
    let out = fx.run(
        &args,
        &[
            ("HTTP_PROXY", &proxy),
            ("http_proxy", &proxy),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ],
    );
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let requests = fx.server.take_requests();
    assert_eq!(requests[0].target, url);
}

#[test]
fn pack_is_deterministic_and_keygen_never_overwrites() {
    let fx = Fixture::new();
    let again = fx.path("again.tar.gz");
    let out = fx.run(
        &[
            "pack",
            fx.path("corp").to_str().unwrap(),
            "-o",
            again.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(fx.path("corp.tar.gz")).unwrap()
    );
    assert!(!fx.path("again.tar.gz.sig").exists());

    let private = std::fs::read(fx.path("key")).unwrap();
    let out = fx.run(&["keygen", "-o", fx.path("key").to_str().unwrap()], &[]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(fx.path("key")).unwrap(), private);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fx.path("key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A folder that is not a template set does not pack.
    let empty = fx.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = fx.run(
        &[
            "pack",
            empty.to_str().unwrap(),
            "-o",
            fx.path("e.tar.gz").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains("template.toml"), "{}", stderr(&out));
}

#[test]
fn bulk_and_render_take_urls_too() {
    let fx = Fixture::new();
    let url = fx.server.url("corp.tar.gz");
    let key = fx.pubkey();
    let users = fx.path("users.csv");
    std::fs::write(
        &users,
        "username;server;password\nu1;sip.example.com;Pa55-one\nu2;sip.example.com;Pa55-two\n",
    )
    .unwrap();
    let out_dir = fx.path("fleet");
    let out = fx.run(
        &[
            "bulk",
            "--users",
            users.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--template",
            &url,
            "--trust",
            &key,
            "--json",
        ],
        &[],
    );
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let report = json(&out);
    assert_eq!(report["summary"]["written"], 2, "{report}");
    assert_eq!(report["remote"][0]["status"], "downloaded", "{report}");
    assert!(out_dir.join("u2").join("microsip.ini").exists());

    let rendered = fx.path("rendered");
    let mut args = vec![
        "render",
        "--out",
        rendered.to_str().unwrap(),
        "--template",
        &url,
        "--trust",
        &key,
    ];
    args.extend_from_slice(VARS);
    let out = fx.run(&args, &[]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("cached     "), "{}", stdout(&out));
    assert!(rendered.join("microsip.ini").exists());

    // A tampered bundle stops bulk before any row is written.
    let mut bytes = std::fs::read(fx.path("corp.tar.gz")).unwrap();
    bytes[40] ^= 0x80;
    fx.server.put("corp.tar.gz", &bytes);
    let other = fx.path("fleet2");
    let out = fx.run(
        &[
            "bulk",
            "--users",
            users.to_str().unwrap(),
            "--out",
            other.to_str().unwrap(),
            "--template",
            &url,
            "--trust",
            &key,
        ],
        &[],
    );
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(
        stderr(&out).contains("signature does not match"),
        "{}",
        stderr(&out)
    );
    assert!(!other.exists());
}
