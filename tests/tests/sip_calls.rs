//! The SIP core end to end: `softphone::app` (the real tokio driver, real
//! sockets on 127.0.0.1, the sans-IO user agent) against real peers started
//! by the test: kamailio (registrar with digest auth), sipp, baresip.
#![cfg(unix)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use e2e::peers::{
    free_port, udp_request, Baresip, BaresipConfig, DigestAlgorithm, Kamailio, KamailioOptions,
    Sipp, TestPki, AUTO_ANSWER,
};
use softphone::app::{self, PhoneConfig, PhoneHandle};
use softphone::config::{Account, IniDocument, Settings};
use softphone::sip::ua::{CallId, CallState, RegistrationState, UaEvent};
use tokio::sync::broadcast;
use tokio::task::{block_in_place, JoinHandle};

// Generous: a bound for failures, not a speed target (2-core CI runs peers
// and phones side by side).
const WAIT: Duration = Duration::from_secs(20);

/// A phone configured from microsip.ini text, as users configure it.
async fn phone(ini: &str) -> (PhoneHandle, JoinHandle<()>, broadcast::Receiver<UaEvent>) {
    phone_trusting(ini, None).await
}

/// [`phone`], trusting `ca` for TLS besides the system's roots.
async fn phone_trusting(
    ini: &str,
    ca: Option<&std::path::Path>,
) -> (PhoneHandle, JoinHandle<()>, broadcast::Receiver<UaEvent>) {
    // No sound card in tests: the null devices (the SIP tests check signalling).
    let text = format!(
        "[Settings]\r\nsourcePort={}\r\naudioInputDevice=null\r\naudioOutputDevice=null\r\n{ini}",
        free_port()
    );
    let doc = IniDocument::parse(text.as_bytes()).expect("test ini parses");
    let config = PhoneConfig {
        settings: Settings::from_document(&doc),
        accounts: Account::list(&doc),
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        tls_ca: ca.map(std::path::Path::to_owned),
        behavior: Default::default(),
    };
    let (handle, task) = app::start(config).await.expect("the phone starts");
    let events = handle.subscribe();
    (handle, task, events)
}

/// An account registering with `kamailio` as `user`.
fn kamailio_account(kamailio: &Kamailio, user: &str, password: &str, transport: &str) -> String {
    format!(
        "[Account1]\r\nserver={domain}\r\ndomain={domain}\r\nusername={user}\r\npassword={password}\r\ntransport={transport}\r\nregisterRefresh=60\r\n",
        domain = kamailio.domain()
    )
}

/// An account that does not register; bare numbers go to `domain`.
fn direct_account(domain: &str) -> String {
    format!("[Account1]\r\ndomain={domain}\r\nusername=alice\r\n")
}

/// Waits for the first event `pick` accepts.
async fn expect<T>(
    events: &mut broadcast::Receiver<UaEvent>,
    what: &str,
    mut pick: impl FnMut(&UaEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("event stream ended waiting for {what}: {e}"),
            }
        }
    };
    match tokio::time::timeout(WAIT, wait).await {
        Ok(found) => found,
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

fn registered(event: &UaEvent) -> Option<u32> {
    match event {
        UaEvent::Registration {
            state: RegistrationState::Registered { expires },
            ..
        } => Some(*expires),
        _ => None,
    }
}

fn call_state(call: CallId, want: CallState) -> impl FnMut(&UaEvent) -> Option<()> {
    move |event| match event {
        UaEvent::CallState { call: c, state } if *c == call && *state == want => Some(()),
        _ => None,
    }
}

fn ended(call: CallId) -> impl FnMut(&UaEvent) -> Option<(u16, bool)> {
    move |event| match event {
        UaEvent::CallEnded { call: c, reason } if *c == call => {
            Some((reason.code, reason.by_remote))
        }
        _ => None,
    }
}

fn incoming(event: &UaEvent) -> Option<(CallId, String)> {
    match event {
        UaEvent::IncomingCall {
            call, remote_uri, ..
        } => Some((*call, remote_uri.clone())),
        _ => None,
    }
}

/// Runs blocking peer code (the harness is synchronous) beside the phone.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    block_in_place(f)
}

async fn stop(handle: PhoneHandle, task: JoinHandle<()>) {
    handle.shutdown(task).await;
}

fn _assert_send<F: Future + Send>(_: F) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_kamailio_md5_over_udp_and_tcp_and_unregisters() {
    let kamailio = Kamailio::start();
    for transport in ["udp", "tcp"] {
        let (handle, task, mut events) = phone(&kamailio_account(
            &kamailio,
            "alice",
            Kamailio::PASSWORD,
            transport,
        ))
        .await;
        handle.register_all().await.expect("register");
        let expires = expect(&mut events, "Registered", registered).await;
        assert!(expires > 0 && expires <= 60, "granted {expires}");
        stop(handle, task).await;
        assert!(
            kamailio.log().contains("REQ REGISTER"),
            "{}",
            kamailio.log_tail()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_a_sha256_challenge() {
    let kamailio = Kamailio::start_with(KamailioOptions {
        algorithm: DigestAlgorithm::Sha256,
    });
    let (handle, task, mut events) = phone(&kamailio_account(
        &kamailio,
        "carol",
        Kamailio::PASSWORD,
        "udp",
    ))
    .await;
    handle.register_all().await.expect("register");
    expect(&mut events, "Registered (SHA-256)", registered).await;
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_reported_not_retried_in_a_loop() {
    let kamailio = Kamailio::start();
    let (handle, task, mut events) =
        phone(&kamailio_account(&kamailio, "dave", "wrong", "udp")).await;
    handle.register_all().await.expect("register");
    let code = expect(&mut events, "registration failure", |e| match e {
        UaEvent::Registration {
            state: RegistrationState::Failed { code, .. },
            ..
        } => Some(*code),
        UaEvent::Registration {
            state: RegistrationState::Registered { .. },
            ..
        } => panic!("registered with a wrong password"),
        _ => None,
    })
    .await;
    assert!(matches!(code, 401 | 403), "failed with {code}");
    // Kamailio saw a bounded number of REGISTERs (one challenge round).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let registers = kamailio.log().matches("REQ REGISTER").count();
    assert!(registers <= 4, "{registers} REGISTERs: a retry loop");
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_sipps_uas_and_hangs_up() {
    let uas = Sipp::uas();
    let (handle, task, mut events) = phone(&direct_account(&uas.addr().to_string())).await;
    let call = handle.dial(1, "service").await.expect("dial");
    expect(
        &mut events,
        "Connected",
        call_state(call, CallState::Connected),
    )
    .await;
    handle.hangup(call).await.expect("hang up");
    let (code, by_remote) = expect(&mut events, "CallEnded", ended(call)).await;
    assert_eq!((code, by_remote), (200, false));
    blocking(|| uas.wait()).assert_success("sipp UAS called by msipphone");
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_called_by_sipps_uac_and_the_caller_hangs_up() {
    let (handle, task, mut events) = phone(&direct_account("127.0.0.1")).await;
    let target = handle.local_addr();
    let caller = tokio::task::spawn_blocking(move || {
        Sipp::call(target, "alice", Duration::from_millis(300))
    });
    let (call, remote) = expect(&mut events, "IncomingCall", incoming).await;
    assert!(remote.starts_with("sip:"), "remote {remote}");
    handle.answer(call).await.expect("answer");
    expect(
        &mut events,
        "Connected",
        call_state(call, CallState::Connected),
    )
    .await;
    let (code, by_remote) = expect(&mut events, "CallEnded", ended(call)).await;
    assert_eq!((code, by_remote), (200, true));
    caller
        .await
        .expect("sipp ran")
        .assert_success("sipp UAC calling msipphone");
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_baresip_holds_resumes_and_hangs_up() {
    let mut bob = blocking(|| Baresip::start(AUTO_ANSWER));
    let (handle, task, mut events) = phone(&direct_account(&bob.addr().to_string())).await;
    let call = handle.dial(1, "bob").await.expect("dial");
    expect(
        &mut events,
        "Connected",
        call_state(call, CallState::Connected),
    )
    .await;
    blocking(|| bob.wait_event("CALL_ESTABLISHED", WAIT));
    handle.hold(call).await.expect("hold");
    expect(&mut events, "held", |e| match e {
        UaEvent::CallHold {
            call: c,
            local: true,
            ..
        } if *c == call => Some(()),
        _ => None,
    })
    .await;
    handle.resume(call).await.expect("resume");
    expect(&mut events, "resumed", |e| match e {
        UaEvent::CallHold {
            call: c,
            local: false,
            ..
        } if *c == call => Some(()),
        _ => None,
    })
    .await;
    handle.hangup(call).await.expect("hang up");
    expect(&mut events, "CallEnded", ended(call)).await;
    blocking(|| bob.wait_event("CALL_CLOSED", WAIT));
    assert!(
        bob.log().matches("INVITE").count() >= 1,
        "baresip log:\n{}",
        bob.log()
    );
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_called_by_baresip_and_baresip_hangs_up() {
    let mut bob = blocking(|| Baresip::start(""));
    let (handle, task, mut events) = phone(&direct_account("127.0.0.1")).await;
    let target = format!("sip:alice@{}", handle.local_addr());
    blocking(|| bob.dial(&target));
    let (call, _) = expect(&mut events, "IncomingCall", incoming).await;
    handle.answer(call).await.expect("answer");
    expect(
        &mut events,
        "Connected",
        call_state(call, CallState::Connected),
    )
    .await;
    blocking(|| {
        bob.wait_event("CALL_ESTABLISHED", WAIT);
        bob.hangup();
    });
    let (code, by_remote) = expect(&mut events, "CallEnded", ended(call)).await;
    assert_eq!((code, by_remote), (200, true));
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_both_ways_with_baresip() {
    let (handle, task, mut events) = phone(&direct_account("127.0.0.1")).await;
    let me = format!("sip:alice@{}", handle.local_addr());
    let mut bob = blocking(|| {
        Baresip::start_with(BaresipConfig {
            contacts: vec![me.clone()],
            ..BaresipConfig::default()
        })
    });
    // To baresip.
    let bob_uri = bob.uri("bob");
    let sent = handle
        .message(1, &bob_uri, "hello from msipphone")
        .await
        .expect("send");
    let code = expect(&mut events, "MessageResult", |e| match e {
        UaEvent::MessageResult { message, code } if *message == sent => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, 200);
    // From baresip.
    blocking(|| bob.send_message(&me, "hello from baresip"));
    let body = expect(&mut events, "MessageReceived", |e| match e {
        UaEvent::MessageReceived { body, .. } => Some(body.clone()),
        _ => None,
    })
    .await;
    assert_eq!(body, "hello from baresip");
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registered_phones_call_through_kamailio_over_tcp() {
    let kamailio = Kamailio::start();
    let (alice, alice_task, mut alice_events) = phone(&kamailio_account(
        &kamailio,
        "alice",
        Kamailio::PASSWORD,
        "tcp",
    ))
    .await;
    let (bob, bob_task, mut bob_events) = phone(&kamailio_account(
        &kamailio,
        "bob",
        Kamailio::PASSWORD,
        "tcp",
    ))
    .await;
    alice.register_all().await.expect("register alice");
    bob.register_all().await.expect("register bob");
    expect(&mut alice_events, "alice Registered", registered).await;
    expect(&mut bob_events, "bob Registered", registered).await;
    let call = alice.dial(1, "bob").await.expect("dial bob");
    let (bob_call, _) = expect(&mut bob_events, "bob IncomingCall", incoming).await;
    bob.answer(bob_call).await.expect("answer");
    expect(
        &mut alice_events,
        "alice Connected",
        call_state(call, CallState::Connected),
    )
    .await;
    alice.hangup(call).await.expect("hang up");
    let (_, by_remote) = expect(&mut bob_events, "bob CallEnded", ended(bob_call)).await;
    assert!(by_remote);
    stop(alice, alice_task).await;
    stop(bob, bob_task).await;
    drop(kamailio);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_baresip_over_tls_and_refuses_an_untrusted_certificate() {
    let pki = blocking(TestPki::generate);
    let mut bob = blocking(|| {
        Baresip::start_with(BaresipConfig {
            options: AUTO_ANSWER.to_owned(),
            tls_certificate: Some(pki.server.clone()),
            ..BaresipConfig::default()
        })
    });
    let account = format!(
        "[Account1]\r\ndomain={}\r\nusername=alice\r\ntransport=tls\r\n",
        bob.tls_addr()
    );
    // Without our test CA the certificate does not verify: no call.
    let (handle, task, mut events) = phone(&account).await;
    let call = handle.dial(1, "bob").await.expect("dial");
    let (code, _) = expect(&mut events, "CallEnded (untrusted)", ended(call)).await;
    assert!(
        code >= 500,
        "an unverified TLS peer got a call through ({code})"
    );
    stop(handle, task).await;
    // Trusting it, the call goes through over TLS.
    let (handle, task, mut events) = phone_trusting(&account, Some(&pki.ca)).await;
    let call = handle.dial(1, "bob").await.expect("dial");
    expect(
        &mut events,
        "Connected over TLS",
        call_state(call, CallState::Connected),
    )
    .await;
    blocking(|| bob.wait_event("CALL_ESTABLISHED", WAIT));
    handle.hangup(call).await.expect("hang up");
    expect(&mut events, "CallEnded", ended(call)).await;
    blocking(|| bob.wait_event("CALL_CLOSED", WAIT));
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_a_baresip_call_to_sipp_by_refer() {
    let uas = Sipp::uas();
    let mut bob = blocking(|| Baresip::start(AUTO_ANSWER));
    let (handle, task, mut events) = phone(&direct_account(&bob.addr().to_string())).await;
    let call = handle.dial(1, "bob").await.expect("dial");
    expect(
        &mut events,
        "Connected",
        call_state(call, CallState::Connected),
    )
    .await;
    blocking(|| bob.wait_event("CALL_ESTABLISHED", WAIT));
    handle
        .transfer(call, 1, &uas.uri("service"))
        .await
        .expect("transfer");
    // baresip calls the target and reports it back by NOTIFY.
    let status = expect(&mut events, "TransferProgress 2xx", |e| match e {
        UaEvent::TransferProgress { call: c, status } if *c == call && *status >= 200 => {
            Some(*status)
        }
        _ => None,
    })
    .await;
    assert_eq!(status, 200);
    // Our leg ends once the transfer succeeded.
    expect(&mut events, "CallEnded", ended(call)).await;
    blocking(|| bob.hangup());
    blocking(|| uas.wait()).assert_success("sipp UAS reached by the transfer");
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_options_after_a_flood_of_garbage() {
    let (handle, task, _events) = phone(&direct_account("127.0.0.1")).await;
    let target = handle.local_addr();
    let flood = tokio::task::spawn_blocking(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut seed: u32 = 0x2545_f491;
        for i in 0..10_000u32 {
            // xorshift: deterministic garbage of every length up to 1.5 KB,
            // with every 10th datagram a truncated or broken SIP request.
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let len = (seed % 1500) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|j| (seed.rotate_left(j as u32 % 32) & 0xff) as u8)
                .collect();
            if i % 10 == 0 {
                bytes = format!("INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{i}\r\nContent-Length: 99999\r\n\r\n").into_bytes();
            }
            let _ = socket.send_to(&bytes, target);
        }
    });
    flood.await.expect("flood sent");
    let options = "OPTIONS sip:alice@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKflood1\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:alice@{target}>\r\nCall-ID: flood-probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        .replace("{target}", &target.to_string());
    let reply = blocking(|| udp_request(target, &options, Duration::from_secs(5)));
    assert!(reply.starts_with("SIP/2.0 200"), "after the flood: {reply}");
    stop(handle, task).await;
}

#[test]
fn msipphone_headless_registers_prints_events_and_unregisters_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let kamailio = Kamailio::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let ini = dir.path().join("microsip.ini");
    let text = format!(
        "[Settings]\r\nsourcePort={}\r\n{}",
        free_port(),
        kamailio_account(&kamailio, "erin", Kamailio::PASSWORD, "udp")
    );
    std::fs::write(&ini, e2e::utf16le_bom(&text)).expect("write the ini");
    let mut phone = Command::new(e2e::bin("msipphone"))
        .args(["--headless", "--config"])
        .arg(&ini)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start msipphone");
    let stdout = phone.stdout.take().expect("stdout");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |state: &str| {
        let deadline = std::time::Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let event: serde_json::Value =
                        serde_json::from_str(&line).expect("stdout is JSON lines");
                    seen.push(line);
                    if event["event"] == "registration" && event["state"] == state {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no registration {state} line; stdout so far: {seen:#?}");
    };
    wait_for("registered");
    let status = Command::new("kill")
        .args(["-TERM", &phone.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for("unregistered");
    let exit = phone.wait().expect("msipphone exits");
    assert!(exit.success(), "msipphone exited {exit}");
    let log = kamailio.log();
    assert!(
        log.matches("REQ REGISTER").count() >= 3,
        "challenge, register and un-register expected:\n{}",
        kamailio.log_tail()
    );
}
