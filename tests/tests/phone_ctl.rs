//! The control surface through the real binaries: `msipphone --headless`
//! serving its socket, `msipphone ctl`, MicroSIP's command line handed over
//! to the running phone (or starting one), the event stream, and who may
//! connect (the same user only). Each test has its own `XDG_RUNTIME_DIR`,
//! so phones of different tests never meet.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e::peers::{free_port, Kamailio, Sipp};
use serde_json::Value;

/// Bound on every wait for the phone.
const WAIT: Duration = Duration::from_secs(15);

/// A folder standing in for `$XDG_RUNTIME_DIR` and the ini beside it.
struct Profile {
    dir: tempfile::TempDir,
}

impl Profile {
    fn new(ini: &str) -> Profile {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("run")).expect("runtime dir");
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .expect("chmod");
        let text = format!("[Settings]\r\nsourcePort={}\r\n{ini}", free_port());
        std::fs::write(dir.path().join("microsip.ini"), e2e::utf16le_bom(&text)).expect("ini");
        Profile { dir }
    }

    /// A profile provisioned by `msipprov apply` with the embedded default
    /// template and `sets` (`key=value`), as an admin would.
    fn provisioned(sets: &[String]) -> Profile {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("run")).expect("runtime dir");
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .expect("chmod");
        let target = dir.path().to_string_lossy().into_owned();
        let mut args = vec!["apply", "--target", &target, "--no-handlers", "--quiet"];
        for set in sets {
            args.extend(["--set", set]);
        }
        let out = e2e::msipprov_env(&args, &[]);
        assert!(
            out.status.success(),
            "msipprov apply failed: {}",
            e2e::stderr(&out)
        );
        Profile { dir }
    }

    fn runtime(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn ini(&self) -> PathBuf {
        self.dir.path().join("microsip.ini")
    }

    fn socket(&self) -> PathBuf {
        self.runtime().join("msipphone").join("ctl.sock")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(e2e::bin("msipphone"));
        cmd.args(args)
            .env("XDG_RUNTIME_DIR", self.runtime())
            .env_remove("MSIPPHONE_LOG");
        cmd
    }

    /// `msipphone ARGS`, bounded.
    fn run(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args), WAIT + Duration::from_secs(40))
    }

    /// `msipphone ctl --json ARGS`: the exit code and the reply.
    fn ctl(&self, args: &[&str]) -> (Option<i32>, Value) {
        let mut all = vec!["ctl", "--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let reply = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "ctl {args:?}: no JSON reply\nstdout: {}\nstderr: {}",
                e2e::stdout(&out),
                e2e::stderr(&out)
            )
        });
        (out.status.code(), reply)
    }

    /// Starts `msipphone ARGS` as the phone and waits until it answers Status.
    fn start(&self, args: &[&str]) -> Phone {
        let child = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start msipphone");
        let phone = Phone { child };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            // A stale socket file may be there before the phone replaces it.
            if self.socket().exists() && self.run(&["ctl", "Status"]).status.code() == Some(0) {
                return phone;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the phone never answered on {}", self.socket().display());
    }

    /// Status, until `pick` finds what it wants in it.
    fn wait_status<T>(&self, what: &str, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let (code, status) = self.ctl(&["Status"]);
            assert_eq!(code, Some(0), "Status failed: {status}");
            if let Some(found) = pick(&status) {
                return found;
            }
            last = status;
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Status never showed {what}; last: {last:#}");
    }

    /// One raw request line on the socket, as any client could send it.
    fn raw(&self, line: &[u8]) -> Value {
        let mut stream = UnixStream::connect(self.socket()).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        stream.write_all(line).expect("write");
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).expect("read");
        serde_json::from_str(&reply).unwrap_or_else(|_| panic!("not JSON: {reply:?}"))
    }
}

/// A phone process, killed on drop.
struct Phone {
    child: Child,
}

impl Phone {
    /// Waits (bounded) for it to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the phone did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to completion, killing it after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// `msipphone ctl subscribe` in the background, its lines on a channel.
struct Subscription {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Subscription {
    fn start(profile: &Profile) -> Subscription {
        let mut child = profile
            .command(&["ctl", "subscribe"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ctl subscribe");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Subscription {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first event line `pick` accepts.
    fn expect(&mut self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let event: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|_| panic!("not a JSON line: {line:?}"));
                    self.seen.push(line);
                    if pick(&event) {
                        return event;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no {what} event; seen: {:#?}", self.seen);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn calls(status: &Value) -> Vec<Value> {
    status["calls"].as_array().cloned().unwrap_or_default()
}

/// An account without registrar whose numbers go to `domain`, and one
/// registering with kamailio.
fn two_accounts(domain: &str, kamailio: &Kamailio) -> String {
    format!(
        "accountId=1\r\n[Account1]\r\ndomain={domain}\r\nusername=alice\r\n\
         [Account2]\r\nserver={k}\r\ndomain={k}\r\nusername=erin\r\npassword={p}\r\nregisterRefresh=60\r\n",
        k = kamailio.domain(),
        p = Kamailio::PASSWORD
    )
}

#[test]
fn ctl_and_microsips_command_line_drive_a_running_phone() {
    let kamailio = Kamailio::start();
    let uas = Sipp::uas();
    let profile = Profile::new(&two_accounts(&uas.addr().to_string(), &kamailio));
    let mut phone = profile.start(&["--headless", "--config", &profile.ini().to_string_lossy()]);

    // Registration per account.
    profile.wait_status("account 2 registered", |s| {
        let accounts = s["accounts"].as_array()?;
        let erin = accounts.iter().find(|a| a["account"] == 2)?;
        (erin["registration"] == "registered").then_some(())
    });
    let text = profile.run(&["ctl", "Status"]);
    let text = e2e::stdout(&text);
    assert!(
        text.contains(&format!(
            "account 2 sip:erin@{} registered",
            kamailio.domain()
        )),
        "{text}"
    );
    assert!(text.contains("account 1 sip:alice@"), "{text}");

    // Forms of the language; with no call, Hold and Hangup have nothing to
    // act on (3), which shows the command was understood and carried out.
    let (code, reply) = profile.ctl(&["[Hold()]"]);
    assert_eq!(
        (code, &reply["status"]),
        (Some(3), &Value::from("nothing_to_act_on")),
        "{reply}"
    );
    let (code, reply) = profile.ctl(&["action:hangup"]);
    assert_eq!(code, Some(3), "{reply}");
    assert_eq!(reply["message"], "no call to hang up");
    let (code, reply) = profile.ctl(&["[SetVolume(40)]"]);
    assert_eq!(
        (code, &reply["audio"]["speaker_volume"]),
        (Some(0), &Value::from(40)),
        "{reply}"
    );
    let (code, reply) = profile.ctl(&["action:mute"]);
    assert_eq!(
        (code, &reply["audio"]["muted"]),
        (Some(0), &Value::from(true)),
        "{reply}"
    );

    // Bad requests, sent raw so the phone's own parser answers.
    let reply = profile.raw(b"Frobnicate now\n");
    assert_eq!(reply["code"], 2, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unknown command \"Frobnicate\"")),
        "{reply}"
    );
    let reply = profile.raw(b"SetVolume 101\n");
    assert_eq!(reply["code"], 2);
    assert_eq!(
        reply["message"],
        "SetVolume: \"101\" is not a whole number from 0 to 100"
    );
    let mut huge = vec![b'9'; 20_000];
    huge.push(b'\n');
    let reply = profile.raw(&huge);
    assert_eq!(reply["code"], 2);
    assert!(
        reply["message"]
            .as_str()
            .is_some_and(|m| m.contains("longer than 8192")),
        "{reply}"
    );
    let reply = profile.raw(b"Dial 1\x002\n");
    assert_eq!(reply["code"], 2);
    assert!(
        reply["message"]
            .as_str()
            .is_some_and(|m| m.contains("U+0000")),
        "{reply}"
    );
    // ctl refuses the same way, with exit code 2.
    let out = profile.run(&["ctl", "Frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        e2e::stderr(&out).contains("unknown command \"Frobnicate\""),
        "{}",
        e2e::stderr(&out)
    );

    // A second invocation hands the number over; the call connects.
    let mut events = Subscription::start(&profile);
    events.expect("the subscription's acknowledgement", |e| e["code"] == 0);
    let out = profile.run(&["1001"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        e2e::stdout(&out),
        e2e::stderr(&out)
    );
    assert!(
        e2e::stdout(&out).contains("calling 1001"),
        "{}",
        e2e::stdout(&out)
    );
    let call = profile.wait_status("a connected call", |s| {
        calls(s).into_iter().find(|c| c["state"] == "connected")
    });
    assert_eq!(call["direction"], "outgoing");
    assert!(
        call["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("sip:1001@")),
        "{call}"
    );
    assert!(call["duration"].is_u64(), "{call}");
    assert_eq!(call["held"], false);
    assert_eq!(call["muted"], true, "the microphone was muted above");
    events.expect("connected", |e| {
        e["event"] == "call_state" && e["state"] == "connected"
    });

    // /hangupall ends it; the subscriber hears about it.
    let out = profile.run(&["/hangupall"]);
    assert_eq!(out.status.code(), Some(0), "{}", e2e::stderr(&out));
    let ended = events.expect("call_ended", |e| e["event"] == "call_ended");
    assert_eq!(ended["reason"]["code"], 200, "{ended}");
    assert_eq!(ended["reason"]["by_remote"], false, "{ended}");
    uas.wait()
        .assert_success("sipp UAS called through the control socket");
    profile.wait_status("no calls", |s| calls(s).is_empty().then_some(()));
    let out = profile.run(&["-hangup"]);
    assert_eq!(out.status.code(), Some(3), "nothing left to hang up");

    // Close stops the phone; it un-registers and removes its socket.
    let (code, reply) = profile.ctl(&["Close"]);
    assert_eq!(code, Some(0), "{reply}");
    let status = phone.wait_exit();
    assert!(
        status.success(),
        "the phone exited {status}: {}",
        phone.stderr()
    );
    assert!(!profile.socket().exists(), "the socket file stays behind");
    events.expect("unregistered", |e| {
        e["event"] == "registration" && e["account"] == 2 && e["state"] == "unregistered"
    });
    let (code, _) = {
        let out = profile.run(&["ctl", "Status"]);
        (out.status.code(), ())
    };
    assert_eq!(code, Some(6), "no running phone");
}

#[test]
fn microsips_command_line_starts_the_phone_when_none_runs() {
    let uas = Sipp::uas();
    let profile = Profile::new(&format!(
        "[Account1]\r\ndomain={}\r\nusername=alice\r\n",
        uas.addr()
    ));
    // Nothing runs: /answer and /hangupall have nothing to act on, /exit
    // has nothing to close.
    assert_eq!(profile.run(&["/answer"]).status.code(), Some(6));
    assert_eq!(profile.run(&["-hangupall"]).status.code(), Some(6));
    assert_eq!(profile.run(&["/exit"]).status.code(), Some(0));
    assert_eq!(profile.run(&["/frobnicate"]).status.code(), Some(2));
    // `msipphone /i:INI sip:...` becomes the phone and calls (without a
    // window here: the tests have no display).
    let ini = format!("/i:{}", profile.ini().display());
    let target = uas.uri("service");
    let mut phone = profile.start(&["--headless", &ini, &target]);
    let call = profile.wait_status("the call from the command line", |s| {
        calls(s).into_iter().find(|c| c["state"] == "connected")
    });
    assert_eq!(call["remote"], target.as_str());
    // The running phone takes the next ones.
    assert_eq!(profile.run(&["/hangupall"]).status.code(), Some(0));
    uas.wait()
        .assert_success("sipp UAS called by msipphone sip:...");
    assert_eq!(profile.run(&["-exit"]).status.code(), Some(0));
    let status = phone.wait_exit();
    assert!(status.success(), "{status}: {}", phone.stderr());
}

#[test]
fn a_stale_socket_is_replaced_and_a_second_phone_refuses() {
    let profile = Profile::new("[Account1]\r\ndomain=127.0.0.1:9\r\nusername=alice\r\n");
    // A crashed phone's socket: the file is there, nobody listens.
    let dir = profile.runtime().join("msipphone");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    drop(std::os::unix::net::UnixListener::bind(profile.socket()).expect("bind"));
    assert!(profile.socket().exists());
    assert_eq!(
        profile.run(&["ctl", "Status"]).status.code(),
        Some(6),
        "a dead socket is no running phone"
    );
    let ini = profile.ini().to_string_lossy().into_owned();
    let _phone = profile.start(&["--headless", "--config", &ini]);
    let mode = std::fs::metadata(profile.socket())
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let second = profile.run(&["--headless", "--config", &ini]);
    assert_eq!(second.status.code(), Some(7), "{}", e2e::stderr(&second));
    assert!(
        e2e::stderr(&second).contains("another msipphone runs already"),
        "{}",
        e2e::stderr(&second)
    );
    // The first phone is unharmed.
    let (code, _) = profile.ctl(&["Status"]);
    assert_eq!(code, Some(0));
}

#[test]
fn another_user_cannot_use_the_socket() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        println!("not root: the other-user check (setpriv to nobody) is skipped");
        return;
    }
    let profile = Profile::new("[Account1]\r\ndomain=127.0.0.1:9\r\nusername=alice\r\n");
    let ini = profile.ini().to_string_lossy().into_owned();
    let _phone = profile.start(&["--headless", "--config", &ini]);
    let as_nobody = || {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(e2e::bin("msipphone"))
            .args(["ctl", "Status"])
            .env("XDG_RUNTIME_DIR", profile.runtime());
        run_bounded(cmd, WAIT)
    };
    // The folders and the socket keep other users out.
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(1), "{}", e2e::stderr(&out));
    assert!(
        e2e::stderr(&out).contains("ermission denied"),
        "{}",
        e2e::stderr(&out)
    );
    // Opened up by hand, the peer-uid check still refuses.
    let open = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    open(profile.dir.path(), 0o755);
    open(&profile.runtime(), 0o755);
    open(&profile.runtime().join("msipphone"), 0o755);
    open(&profile.socket(), 0o666);
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(1), "{}", e2e::stderr(&out));
    let err = e2e::stderr(&out);
    assert!(
        err.contains("serves uid 0 only; the peer is uid 65534"),
        "{err}"
    );
    // And the phone still serves its own user.
    let (code, _) = profile.ctl(&["Status"]);
    assert_eq!(code, Some(0));
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The issue's whole flow: provisioned by msipprov, the phone registers
/// with kamailio, a second `msipphone 1001` dials (through kamailio, which
/// relays to sipp's UAS), Status shows it connected, `/hangupall` ends it,
/// the subscribed stream says so, and the call is in `[Calls]`.
#[test]
fn a_profile_provisioned_by_msipprov_registers_dials_and_logs_the_call() {
    // Build both binaries before the peers start: sipp's UAS gives up
    // after its own timeout.
    let _ = (e2e::bin("msipprov"), e2e::bin("msipphone"));
    let kamailio = Kamailio::start();
    let uas = Sipp::uas();
    // The AOR's domain is the UAS: bare numbers go there, through the
    // registrar (kamailio relays requests for hosts other than itself).
    let profile = Profile::provisioned(&[
        format!("server={}", kamailio.domain()),
        format!("domain={}", uas.addr()),
        "username=alice".to_owned(),
        format!("password={}", Kamailio::PASSWORD),
    ]);
    let mut phone = profile.start(&["--headless", "--config", &profile.ini().to_string_lossy()]);
    profile.wait_status("account 1 registered", |s| {
        let accounts = s["accounts"].as_array()?;
        let alice = accounts.iter().find(|a| a["account"] == 1)?;
        (alice["registration"] == "registered").then_some(())
    });
    let mut events = Subscription::start(&profile);
    let dial = profile.run(&["1001"]);
    assert_eq!(dial.status.code(), Some(0), "{}", e2e::stderr(&dial));
    let call = profile.wait_status("the call connected", |s| {
        calls(s).into_iter().find(|c| {
            c["state"] == "connected" && c["remote"].as_str().is_some_and(|r| r.contains("1001"))
        })
    });
    assert_eq!(call["direction"], "outgoing", "{call}");
    let hang = profile.run(&["/hangupall"]);
    assert_eq!(hang.status.code(), Some(0), "{}", e2e::stderr(&hang));
    events.expect("call_ended", |e| e["event"] == "call_ended");
    uas.wait()
        .assert_success("sipp UAS called through msipprov's profile");
    let (code, _) = profile.ctl(&["Close"]);
    assert_eq!(code, Some(0));
    assert!(phone.wait_exit().success());
    let ini = softphone::config::IniDocument::parse(&std::fs::read(profile.ini()).expect("ini"))
        .expect("the ini still parses");
    let calls = softphone::config::CallRecord::list(&ini);
    assert!(
        calls.iter().any(|c| c.number == "1001"),
        "no [Calls] record for 1001: {calls:?}"
    );
}

/// sipp's UAS for calls that get held: INVITE → 180 → 200, ACK, then any
/// number of re-INVITEs (each answered 200 with the same SDP, ACKed)
/// before the caller's BYE → 200. The built-in `uas` takes no re-INVITE.
const UAS_WITH_HOLD: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAS that takes re-INVITEs">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <label id="1"/>
  <recv request="INVITE" optional="true" next="2"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <nop next="3"/>
  <label id="2"/>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687638 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK" crlf="true" next="1"/>
  <label id="3"/>
  <timewait milliseconds="1000"/>
</scenario>
"#;

/// The window's commands and per-call targets through the real binary: a
/// headless phone with two calls to sipp; `Hangup call=ID` ends exactly
/// that one, `Hold call=ID` (in the other spellings too) holds and resumes
/// the other, `Show` exits 3 (no window), and a subscriber sees each
/// command carried out as a `command` line.
#[test]
fn ctl_names_calls_and_a_headless_phone_has_no_window() {
    let _ = e2e::bin("msipphone");
    let scenario = tempfile::tempdir().expect("temp dir");
    let path = scenario.path().join("uas_hold.xml");
    std::fs::write(&path, UAS_WITH_HOLD).expect("write the scenario");
    let uas = Sipp::scenario(&path).calls(2).spawn();
    let profile = Profile::new(&format!(
        "[Account1]\r\ndomain={}\r\nusername=alice\r\n",
        uas.addr()
    ));
    let mut phone = profile.start(&["--headless", "--config", &profile.ini().to_string_lossy()]);
    let mut events = Subscription::start(&profile);
    events.expect("the subscription's acknowledgement", |e| e["code"] == 0);

    // Headless: no window to show, hide or minimize.
    for command in ["Show", "[Hide]", "action:minimize"] {
        let (code, reply) = profile.ctl(&[command]);
        assert_eq!(code, Some(3), "{command}: {reply}");
        assert_eq!(
            reply["message"], "no window: this phone runs headless",
            "{command}"
        );
    }
    let out = profile.run(&["ctl", "Show"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        e2e::stderr(&out).contains("no window: this phone runs headless"),
        "{}",
        e2e::stderr(&out)
    );

    // A command carried out over the socket is streamed to subscribers.
    let (code, reply) = profile.ctl(&["Mute"]);
    assert_eq!(code, Some(0), "{reply}");
    let muted = events.expect("the Mute command", |e| {
        e["event"] == "command" && e["command"] == "Mute"
    });
    assert_eq!(muted["code"], 0, "{muted}");
    assert_eq!(muted["line"], "Mute", "{muted}");
    assert_eq!(muted["message"], "microphone muted", "{muted}");
    assert_eq!(muted["data"]["audio"]["muted"], true, "{muted}");

    // Two calls, both connected.
    let mut ids = Vec::new();
    for number in ["1001", "1002"] {
        let (code, reply) = profile.ctl(&["CallTo", number]);
        assert_eq!(code, Some(0), "{reply}");
        ids.push(reply["call"].as_u64().expect("the call's id"));
    }
    let (first, second) = (ids[0], ids[1]);
    profile.wait_status("both calls connected", |s| {
        let calls = calls(s);
        (calls.len() == 2 && calls.iter().all(|c| c["state"] == "connected")).then_some(())
    });

    // Wrong targets answer 3 (or 2 for a bad id) and change nothing.
    let (code, reply) = profile.ctl(&["Answer", &format!("call={first}")]);
    assert_eq!(code, Some(3), "{reply}");
    assert_eq!(
        reply["message"],
        format!(
            "cannot answer call {first}: it is an outgoing call, connected, \
             not a ringing incoming call"
        )
    );
    let (code, reply) = profile.ctl(&["Hangup", "call=999"]);
    assert_eq!(code, Some(3), "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no call 999")),
        "{reply}"
    );
    let (code, reply) = profile.ctl(&["Hangup", "call=x"]);
    assert_eq!(code, Some(2), "{reply}");

    // The first call by id: exactly that one ends.
    let (code, reply) = profile.ctl(&["Hangup", &format!("call={first}")]);
    assert_eq!(code, Some(0), "{reply}");
    assert_eq!(reply["call"], first);
    let hung = events.expect("the Hangup command", |e| {
        e["event"] == "command" && e["command"] == "Hangup"
    });
    assert_eq!(hung["line"], format!("Hangup call={first}"), "{hung}");
    // The call's end may come before or after the command's line.
    let ended = |e: &Value| e["event"] == "call_ended" && e["call"] == first;
    let already = events
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| ended(&e));
    if !already {
        events.expect("call_ended of the first call", ended);
    }
    let left = profile.wait_status("only the second call", |s| {
        let calls: Vec<Value> = calls(s)
            .into_iter()
            .filter(|c| c["state"] != "ended")
            .collect();
        (calls.len() == 1).then(|| calls[0].clone())
    });
    assert_eq!(left["id"], second, "{left}");
    assert_eq!(left["state"], "connected", "{left}");
    let (code, reply) = profile.ctl(&["Hangup", &format!("call={first}")]);
    assert_eq!(code, Some(3), "the first call is gone: {reply}");

    // Hold the second by id (DDE form), then resume it (action: form).
    let (code, reply) = profile.ctl(&[&format!("[Hold(call={second})]")]);
    assert_eq!(code, Some(0), "{reply}");
    assert_eq!(reply["held"], true, "{reply}");
    profile.wait_status("the second call held", |s| {
        calls(s)
            .into_iter()
            .find(|c| c["id"] == second && c["held"] == true && c["state"] == "connected")
    });
    let (code, reply) = profile.ctl(&[&format!("action:hold?call={second}")]);
    assert_eq!(code, Some(0), "{reply}");
    assert_eq!(reply["held"], false, "{reply}");
    profile.wait_status("the second call resumed", |s| {
        calls(s)
            .into_iter()
            .find(|c| c["id"] == second && c["held"] == false)
    });

    // A plain Hangup (MicroSIP's) takes the one left.
    let (code, reply) = profile.ctl(&["Hangup"]);
    assert_eq!(code, Some(0), "{reply}");
    assert_eq!(reply["call"], second);
    uas.wait()
        .assert_success("sipp UAS with two calls, one held and resumed");

    let (code, reply) = profile.ctl(&["Close"]);
    assert_eq!(code, Some(0), "{reply}");
    let status = phone.wait_exit();
    assert!(status.success(), "{status}: {}", phone.stderr());
}
