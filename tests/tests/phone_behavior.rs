//! The phone's own behaviour end to end: `softphone::app` in-process on
//! 127.0.0.1, called by real sipp UACs. It answers by itself
//! (`autoAnswer=all`), runs the `cmd*` hooks with the caller id as one
//! literal argument (hostile caller ids execute nothing), never waits for
//! a hook and kills it at the timeout, logs the calls into a UTF-16
//! microsip.ini as MicroSIP writes them (every other byte kept), posts
//! HMAC-signed webhooks, and refuses calls under `denyIncoming`.
#![cfg(unix)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::peers::{free_port, Sipp};
use hmac::{KeyInit, Mac};
use softphone::app::{self, BehaviorConfig, PhoneConfig};
use softphone::config::{Account, ContactList, IniDocument, Settings};
use softphone::sip::ua::{CallId, CallState, UaEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};

const SECRET: &str = "webhook-s3cret";
const HOOK_TIMEOUT: Duration = Duration::from_secs(4);

/// UTF-16 LE with BOM, as MicroSIP writes its ini.
fn utf16(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("script written");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// One webhook request: its signature header and body.
type Posted = (Option<String>, String);

/// An HTTP server on 127.0.0.1 answering 200 to every request (several
/// per connection), reporting each.
async fn webhook_server() -> (SocketAddr, mpsc::UnboundedReceiver<Posted>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("webhook server binds");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let header = |name: &str| {
                        head.lines().find_map(|l| {
                            let (n, v) = l.split_once(':')?;
                            n.trim()
                                .eq_ignore_ascii_case(name)
                                .then(|| v.trim().to_owned())
                        })
                    };
                    let len: usize = header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                    buf.drain(..end + 4 + len);
                    let _ = tx.send((header("x-msipphone-signature"), body));
                    if stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// The phone started from the ini at `ini_path` with its Contacts.xml.
async fn phone(
    ini_path: &Path,
) -> (
    app::PhoneHandle,
    tokio::task::JoinHandle<()>,
    broadcast::Receiver<UaEvent>,
) {
    let doc = IniDocument::parse(&std::fs::read(ini_path).expect("ini")).expect("ini parses");
    let contacts = ContactList::parse(
        &std::fs::read(ini_path.with_file_name("Contacts.xml")).expect("contacts"),
    )
    .expect("contacts parse")
    .contacts;
    let config = PhoneConfig {
        settings: Settings::from_document(&doc),
        accounts: Account::list(&doc),
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        tls_ca: None,
        behavior: BehaviorConfig {
            contacts,
            call_log: Some(ini_path.to_owned()),
            hook_timeout: HOOK_TIMEOUT,
        },
    };
    let (handle, task) = app::start(config).await.expect("the phone starts");
    let events = handle.subscribe();
    (handle, task, events)
}

/// Polls `ready` every 50 ms for up to `limit`.
async fn eventually<T>(limit: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = ready() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn alive(pid: &str) -> bool {
    // A killed hook is reaped by the phone, so /proc/<pid> goes away; a
    // zombie (state Z) counts as gone too.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2) != Some("Z"))
}

fn hmac_hex(body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
        .expect("any key length");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_by_itself_runs_hooks_safely_logs_calls_and_posts_signed_webhooks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let hook_log = d.join("hooks.log");
    let pids = d.join("pids");
    let hook = d.join("hook.sh");
    let slow = d.join("slow-hook.sh");
    executable(
        &hook,
        &format!(
            "#!/bin/sh\nprintf '%s|%s|%s\\n' \"$1\" \"$#\" \"$2\" >> '{}'\n",
            hook_log.display()
        ),
    );
    // cmdCallStart never ends by itself: the phone must not wait for it
    // and must kill it after the hook timeout (exec keeps the pid).
    executable(
        &slow,
        &format!(
            "#!/bin/sh\nprintf '%s|%s|%s\\n' \"$1\" \"$#\" \"$2\" >> '{}'\necho $$ >> '{}'\nexec sleep 60\n",
            hook_log.display(),
            pids.display()
        ),
    );
    let canary1 = d.join("canary1");
    let canary2 = d.join("canary2");
    // What sipp puts in From (escaped as SIP needs) and what it means.
    let hostile = [
        (
            format!("%22%3B%20touch%20{}%3B%20%22", canary1.display()),
            format!("\"; touch {}; \"", canary1.display()),
        ),
        (
            format!("$(touch%20{})", canary2.display()),
            format!("$(touch {})", canary2.display()),
        ),
    ];
    let (webhook_addr, mut posted) = webhook_server().await;
    let ini_path = d.join("microsip.ini");
    let original = format!(
        "[Settings]\r\naccountId=1\r\nsourcePort={port}\r\naudioInputDevice=\"Микрофон\"\r\nautoAnswer=all\r\nautoAnswerDelay=1\r\ndenyIncoming=\r\ncmdIncomingCall=\"{hook} incoming\"\r\ncmdCallStart=\"{slow} start\"\r\ncmdCallEnd=\"{hook} end\"\r\ncallsLastKey=-1\r\nwebhookUrl=http://{webhook_addr}/events\r\nwebhookSecret={SECRET}\r\n; kept as is\r\n[Account1]\r\nlabel=Офис\r\ndomain=127.0.0.1\r\nusername=alice\r\n[Shortcuts]\r\n0=Reception;101;0\r\n",
        port = free_port(),
        hook = hook.display(),
        slow = slow.display(),
    );
    std::fs::write(&ini_path, utf16(&original)).expect("ini written");
    std::fs::write(
        d.join("Contacts.xml"),
        "<?xml version=\"1.0\"?>\r\n<contacts>\r\n<contact name=\"Sipp Tester\" number=\"sipp\"/>\r\n</contacts>\r\n",
    )
    .expect("contacts written");
    let (handle, task, mut events) = phone(&ini_path).await;
    let target = handle.local_addr();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();

    let callers = {
        let hostile = hostile.clone();
        tokio::task::spawn_blocking(move || {
            let mut outcomes = vec![Sipp::call(target, "alice", Duration::from_millis(1500))];
            for (from, _) in &hostile {
                outcomes.push(
                    Sipp::scenario("uac_hostile.xml")
                        .remote(target)
                        .service("alice")
                        .pause(Duration::from_millis(300))
                        .arg("-key")
                        .arg("caller")
                        .arg(from)
                        .run(),
                );
            }
            outcomes
        })
    };
    // Nobody answers but the phone; each call is answered about
    // autoAnswerDelay after it rang; while the second call connects, the
    // first call's cmdCallStart hook is still sleeping.
    let mut rang: Vec<(CallId, Instant)> = Vec::new();
    let mut connected = 0;
    let mut ended = 0;
    let mut first_hook_alive_during_second_call = None;
    let watch = async {
        while ended < 3 {
            match events.recv().await {
                Ok(UaEvent::IncomingCall { call, .. }) => rang.push((call, Instant::now())),
                Ok(UaEvent::CallState {
                    call,
                    state: CallState::Connected,
                }) => {
                    let (_, at) = rang
                        .iter()
                        .find(|(c, _)| *c == call)
                        .expect("it rang first");
                    assert!(
                        at.elapsed() >= Duration::from_millis(900),
                        "answered before autoAnswerDelay"
                    );
                    connected += 1;
                    if connected == 2 {
                        let first = std::fs::read_to_string(&pids).unwrap_or_default();
                        let first = first.lines().next().unwrap_or_default().to_owned();
                        first_hook_alive_during_second_call =
                            Some(!first.is_empty() && alive(&first));
                    }
                }
                Ok(UaEvent::CallEnded { .. }) => ended += 1,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(40), watch)
        .await
        .expect("three calls within 40 s");
    assert_eq!(connected, 3, "every call answered by the phone itself");
    for outcome in callers.await.expect("sipp ran") {
        outcome.assert_success("calling the auto-answering phone");
    }
    assert_eq!(
        first_hook_alive_during_second_call,
        Some(true),
        "the phone did not wait for the hook"
    );

    // Hooks: each got the caller id as one literal argument.
    let users = [
        "sipp".to_owned(),
        hostile[0].1.clone(),
        hostile[1].1.clone(),
    ];
    let mut expected: Vec<String> = users
        .iter()
        .flat_map(|u| ["incoming", "start", "end"].map(|h| format!("{h}|2|{u}")))
        .collect();
    expected.sort();
    let lines = eventually(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&hook_log).unwrap_or_default();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        (lines.len() >= expected.len()).then_some(lines)
    })
    .await
    .expect("every hook ran");
    assert_eq!(lines, expected);
    assert!(
        !canary1.exists() && !canary2.exists(),
        "a caller id was executed"
    );

    // The sleeping hooks are killed at the timeout.
    let sleepers: Vec<String> = std::fs::read_to_string(&pids)
        .expect("pids")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(sleepers.len(), 3);
    let gone = eventually(HOOK_TIMEOUT + Duration::from_secs(3), || {
        sleepers.iter().all(|p| !alive(p)).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "hooks still running after the timeout: {sleepers:?}"
    );

    // Webhooks: signed with HMAC-SHA256 of the body.
    let mut bodies: Vec<serde_json::Value> = Vec::new();
    let webhooks = async {
        while bodies.iter().filter(|b| b["event"] == "call_end").count() < 3 {
            let (signature, body) = posted.recv().await.expect("webhook server runs");
            assert_eq!(
                signature,
                Some(format!("sha256={}", hmac_hex(&body))),
                "{body}"
            );
            bodies.push(serde_json::from_str(&body).expect("JSON body"));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), webhooks)
        .await
        .expect("webhooks within 10 s");
    for user in &users {
        let events: Vec<&str> = bodies
            .iter()
            .filter(|b| b["number"] == user.as_str())
            .filter_map(|b| b["event"].as_str())
            .collect();
        assert_eq!(
            events,
            // It rang for autoAnswerDelay before being answered.
            [
                "incoming_call",
                "call_ring",
                "call_answer",
                "call_start",
                "call_end"
            ],
            "{user}"
        );
    }

    // The log: three records in MicroSIP's format, nothing else changed.
    let records = eventually(Duration::from_secs(5), || {
        let doc = IniDocument::parse(&std::fs::read(&ini_path).ok()?).ok()?;
        let calls: Vec<String> = (0..3)
            .map(|k| doc.get("Calls", &k.to_string()).map(str::to_owned))
            .collect::<Option<_>>()?;
        Some(calls)
    })
    .await
    .expect("three [Calls] records");
    handle.shutdown(task).await;
    let names = ["Sipp Tester", "", ""];
    for (i, record) in records.iter().enumerate() {
        let fields: Vec<&str> = record.split(';').collect();
        assert_eq!(fields.len(), 6, "{record}");
        assert_eq!(fields[0], users[i].replace(';', ","), "{record}");
        assert_eq!(fields[1], names[i], "{record}");
        assert_eq!(fields[2], "1", "answered incoming: {record}");
        let time: u64 = fields[3].parse().expect("unix time");
        assert!(time >= started_unix && time < started_unix + 60, "{record}");
        let duration: u64 = fields[4].parse().expect("duration");
        assert!(duration <= 3, "{record}");
        assert_eq!(fields[5], "Call Ended", "{record}");
    }
    assert!(
        records[0].split(';').nth(4) >= Some("1"),
        "1.5 s call: {}",
        records[0]
    );
    let expected = format!(
        "{}[Calls]\r\n0={}\r\n1={}\r\n2={}\r\n",
        original.replace("callsLastKey=-1", "callsLastKey=2"),
        records[0],
        records[1],
        records[2]
    );
    assert_eq!(
        std::fs::read(&ini_path).expect("ini"),
        utf16(&expected),
        "only [Calls] and callsLastKey changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_incoming_refuses_with_486_and_logs_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ini_path: PathBuf = dir.path().join("microsip.ini");
    let original = format!(
        "[Settings]\r\nsourcePort={}\r\nautoAnswer=all\r\ndenyIncoming=all\r\n[Account1]\r\ndomain=127.0.0.1\r\nusername=alice\r\n",
        free_port()
    );
    std::fs::write(&ini_path, utf16(&original)).expect("ini written");
    std::fs::write(
        dir.path().join("Contacts.xml"),
        "<?xml version=\"1.0\"?>\r\n<contacts/>\r\n",
    )
    .expect("contacts written");
    let (handle, task, _events) = phone(&ini_path).await;
    let target = handle.local_addr();
    let outcome = tokio::task::spawn_blocking(move || {
        Sipp::call(target, "alice", Duration::from_millis(100))
    })
    .await
    .expect("sipp ran");
    assert_ne!(outcome.code, Some(0), "the call must fail: {outcome}");
    assert!(
        outcome.messages.contains("SIP/2.0 486"),
        "486 expected: {outcome}"
    );
    handle.shutdown(task).await;
    assert_eq!(
        std::fs::read(&ini_path).expect("ini"),
        utf16(&original),
        "refused calls are hidden: no [Calls] record"
    );
}
