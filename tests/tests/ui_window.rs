//! The window clicked through headless: `egui_kittest` drives
//! [`PhoneApp::frame`] (no GPU, no display) in front of a real phone
//! (`softphone::app` on 127.0.0.1, the control [`Server`] `ctl` talks to)
//! and sipp as the far end.
#![cfg(unix)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::peers::{free_port, Sipp};
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use softphone::app::{self, BehaviorConfig, PhoneConfig, PhoneHandle};
use softphone::config::{Account, IniDocument, Settings};
use softphone::control::server::Server;
use softphone::control::Command;
use softphone::ui::core::{CallPhase, CoreLink};
use softphone::ui::egui;
use softphone::ui::window::WindowStart;
use softphone::ui::window_prefs::WindowPrefs;
use softphone::ui::PhoneApp;

/// A bound for failures, not a speed target (2 cores run peers and phones).
const WAIT: Duration = Duration::from_secs(20);

/// A phone with its server on a runtime of its own, as `msipphone` runs it
/// behind the window.
struct Rig {
    runtime: tokio::runtime::Runtime,
    server: Arc<Server>,
    phone: Option<(PhoneHandle, tokio::task::JoinHandle<()>)>,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// The phone configured with `account` (ini text), Contacts.xml
    /// beside it when given, and the window linked to it.
    fn start(account: &str, contacts: Option<&str>) -> (Rig, PhoneApp) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ini: PathBuf = dir.path().join("microsip.ini");
        // No sound card in tests: the null devices.
        let text = format!(
            "[Settings]\r\nsourcePort={}\r\naudioInputDevice=null\r\naudioOutputDevice=null\r\n{account}",
            free_port()
        );
        std::fs::write(&ini, e2e::utf16le_bom(&text)).expect("ini");
        if let Some(xml) = contacts {
            std::fs::write(dir.path().join("Contacts.xml"), xml).expect("contacts");
        }
        let doc = IniDocument::parse(text.as_bytes()).expect("test ini parses");
        let settings = Settings::from_document(&doc);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (phone, task, server, link) = runtime.block_on(async {
            let config = PhoneConfig {
                settings: settings.clone(),
                accounts: Account::list(&doc),
                bind: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                tls_ca: None,
                behavior: BehaviorConfig {
                    call_log: Some(ini.clone()),
                    ..BehaviorConfig::default()
                },
            };
            let (phone, task) = app::start(config).await.expect("the phone starts");
            let server = Server::new(phone.clone(), ini.clone(), &settings);
            let link = CoreLink::attach(server.clone(), phone.subscribe());
            (phone, task, server, link)
        });
        let start = WindowStart::new(ini, WindowPrefs::from_settings(&settings), false, false);
        let window = PhoneApp::new(link, start);
        let rig = Rig {
            runtime,
            server,
            phone: Some((phone, task)),
            _dir: dir,
        };
        (rig, window)
    }

    /// Where the phone listens for SIP.
    fn sip_addr(&self) -> std::net::SocketAddr {
        self.phone.as_ref().expect("running").0.local_addr()
    }

    /// Carries out `command` as `ctl` would (over the socket the same
    /// `Server::execute` runs).
    fn ctl(&self, command: Command) -> softphone::control::Reply {
        self.runtime.block_on(self.server.execute(command))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.server.set_stopping();
        if let Some((phone, task)) = self.phone.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), phone.stop(task)).await
            });
        }
    }
}

/// The window in a test harness, as big as the real one.
fn harness(window: PhoneApp) -> Harness<'static, PhoneApp> {
    Harness::builder()
        .with_size(egui::vec2(360.0, 640.0))
        .build_ui_state(|ui, window: &mut PhoneApp| window.frame(ui), window)
}

/// Steps the window until `done` holds; panics with `what` after [`WAIT`].
fn step_until(
    harness: &mut Harness<'static, PhoneApp>,
    what: &str,
    mut done: impl FnMut(&Harness<'static, PhoneApp>) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        harness.step();
        if done(harness) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "the window never showed {what} within {WAIT:?}; status: {:#?}",
                harness.state().status()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The state of the only call the window shows.
fn only_call(harness: &Harness<'static, PhoneApp>) -> Option<(CallPhase, String)> {
    let status = harness.state().status()?;
    match status.calls.as_slice() {
        [call] => Some((call.state, call.remote.clone())),
        _ => None,
    }
}

fn no_calls(harness: &Harness<'static, PhoneApp>) -> bool {
    harness.state().status().is_some_and(|s| s.calls.is_empty())
}

/// An account that does not register; bare numbers go to `domain`.
fn direct_account(domain: &str) -> String {
    format!("[Account1]\r\ndomain={domain}\r\nusername=alice\r\n")
}

#[test]
fn a_number_typed_with_dashes_is_called_and_hung_up() {
    let uas = Sipp::uas();
    let (rig, window) = Rig::start(&direct_account(&uas.addr().to_string()), None);
    let mut h = harness(window);
    step_until(&mut h, "the account", |h| {
        h.query_by_label_contains("sip:alice@").is_some()
    });
    let number = h.get_by_label("Number");
    number.focus();
    h.step();
    h.get_by_label("Number").type_text("555-12 34");
    h.step();
    assert_eq!(
        h.get_by_label("Number").value().as_deref(),
        Some("555-12 34")
    );
    h.get_by_label("Call").click();
    step_until(&mut h, "the call connected", |h| {
        matches!(only_call(h), Some((CallPhase::Connected, _)))
    });
    let (_, remote) = only_call(&h).expect("one call");
    assert!(
        remote.starts_with("sip:5551234@"),
        "dialled without separators: {remote}"
    );
    // The list shows it with its buttons.
    assert!(h.query_by_label_contains("connected").is_some());
    h.get_by_label("Hang up").click();
    step_until(&mut h, "no call", no_calls);
    assert!(h.query_by_label("Hang up").is_none());
    drop(h);
    uas.wait()
        .assert_success("sipp UAS called from the window and hung up");
    drop(rig);
}

#[test]
fn hanging_up_a_call_nobody_answers_ends_it_at_once() {
    // A far end that takes the INVITE and never says a word: no 100, so
    // the CANCEL must wait (RFC 3261 §9.1), but the user's call ends now.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("silent peer");
    let addr = silent.local_addr().expect("address");
    let (rig, window) = Rig::start(&direct_account(&addr.to_string()), None);
    let mut h = harness(window);
    step_until(&mut h, "the first status", |h| h.state().status().is_some());
    h.get_by_label("Number").focus();
    h.step();
    h.get_by_label("Number").type_text("1234");
    h.step();
    h.get_by_label("Call").click();
    step_until(&mut h, "the call being placed", |h| only_call(h).is_some());
    let hung_up = Instant::now();
    h.get_by_label("Hang up").click();
    step_until(&mut h, "no call", no_calls);
    assert!(
        hung_up.elapsed() < Duration::from_secs(5),
        "the call stayed {:?} after Hang up",
        hung_up.elapsed()
    );
    let mut buf = [0u8; 4096];
    silent
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let (n, _) = silent.recv_from(&mut buf).expect("the INVITE arrived");
    assert!(buf[..n].starts_with(b"INVITE "));
    drop(h);
    drop(rig);
}

#[test]
fn an_incoming_call_pops_up_named_from_the_contacts_and_is_answered() {
    let contacts = "<?xml version=\"1.0\"?>\r\n<contacts>\r\n<contact name=\"Sam Sipp\" number=\"sipp\" firstname=\"\" lastname=\"\" phone=\"\" mobile=\"\" email=\"\" address=\"\" city=\"\" state=\"\" zip=\"\" comment=\"\" id=\"\" info=\"\" presence=\"0\" starred=\"0\" directory=\"0\"/>\r\n</contacts>\r\n";
    let account = format!("{}label=Front desk\r\n", direct_account("127.0.0.1"));
    let (rig, window) = Rig::start(&account, Some(contacts));
    let mut h = harness(window);
    // MicroSIP's caption: the account's label, not its address.
    step_until(&mut h, "the account's label", |h| {
        h.query_by_label("Front desk").is_some()
    });
    let target = rig.sip_addr();
    // sipp calls, waits 3 s after our 200 OK, then hangs up.
    let caller = std::thread::spawn(move || Sipp::call(target, "alice", Duration::from_secs(3)));
    step_until(&mut h, "the incoming-call popup", |h| {
        h.query_by_label("Incoming call").is_some()
    });
    assert!(
        h.query_all_by_label("Sam Sipp").next().is_some(),
        "the caller is named from Contacts.xml"
    );
    assert!(
        matches!(only_call(&h), Some((CallPhase::Incoming, _))),
        "{:?}",
        only_call(&h)
    );
    h.get_by_label("Answer").click();
    step_until(&mut h, "the call connected", |h| {
        matches!(only_call(h), Some((CallPhase::Connected, _)))
    });
    assert!(
        h.query_by_label("Incoming call").is_none(),
        "the popup goes once answered"
    );
    step_until(&mut h, "the caller's hang-up", no_calls);
    caller
        .join()
        .expect("sipp ran")
        .assert_success("sipp UAC answered from the window");
    drop(h);
    drop(rig);
}

#[test]
fn what_ctl_does_shows_at_once_and_a_pasted_number_is_cleaned_and_dialled_by_enter() {
    let uas = Sipp::uas();
    let (rig, window) = Rig::start(&direct_account(&uas.addr().to_string()), None);
    let mut h = harness(window);
    step_until(&mut h, "the first status", |h| h.state().status().is_some());
    let mute_state =
        |h: &Harness<'static, PhoneApp>| h.get_by_label("Mute").accesskit_node().toggled();
    assert_eq!(mute_state(&h), Some(egui::accesskit::Toggled::False));
    // `ctl Mute`: the same Server::execute the socket calls.
    let reply = rig.ctl(Command::Mute);
    assert_eq!(reply.code, 0, "{}", reply.message);
    step_until(&mut h, "the Mute button pressed", |h| {
        mute_state(h) == Some(egui::accesskit::Toggled::True)
    });
    assert!(
        h.query_by_label("microphone muted").is_some(),
        "the status line shows what ctl did"
    );
    // And back from the window.
    h.get_by_label("Mute").click();
    step_until(&mut h, "the Mute button released", |h| {
        mute_state(h) == Some(egui::accesskit::Toggled::False)
    });
    // A number pasted from a web page is cleaned in the field.
    h.get_by_label("Number").focus();
    h.step();
    h.event(egui::Event::Paste("+1 (555) 123\u{2011}4567".to_owned()));
    h.step();
    assert_eq!(
        h.get_by_label("Number").value().as_deref(),
        Some("+15551234567")
    );
    // Enter dials it.
    h.key_press(egui::Key::Enter);
    step_until(&mut h, "the call Enter placed, connected", |h| {
        only_call(h).is_some_and(|(state, remote)| {
            state == CallPhase::Connected && remote.starts_with("sip:+15551234567@")
        })
    });
    h.get_by_label("Hang up").click();
    step_until(&mut h, "no call", no_calls);
    drop(h);
    uas.wait().assert_success("sipp UAS called by Enter");
    drop(rig);
}

/// `msipphone ARGS` for a profile in `dir` (its own runtime folder, so its
/// control channel is the test's), with no display.
fn msipphone_without_display(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(e2e::bin("msipphone"));
    cmd.args(args)
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("MSIPPHONE_LOG");
    cmd
}

/// Runs it to the end, bounded.
fn run_bounded(mut cmd: std::process::Command) -> std::process::Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("msipphone runs");
    let pid = child.id();
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match wait.recv_timeout(WAIT) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            // SAFETY: kill has no memory preconditions; the pid is our child's.
            unsafe { libc_kill(pid as i32, 9) };
            panic!("msipphone did not exit within {WAIT:?}");
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn without_a_display_the_window_says_why_and_a_running_phone_is_asked_to_show() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("run")).expect("runtime dir");
    std::fs::set_permissions(
        dir.path().join("run"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    let ini = dir.path().join("microsip.ini");
    let text = format!(
        "[Settings]\r\nsourcePort={}\r\naudioInputDevice=null\r\naudioOutputDevice=null\r\n[Account1]\r\ndomain=127.0.0.1:9\r\nusername=alice\r\n",
        free_port()
    );
    std::fs::write(&ini, e2e::utf16le_bom(&text)).expect("ini");
    let ini = ini.to_string_lossy().into_owned();
    for args in [vec!["--config", ini.as_str()], vec![&*format!("/i:{ini}")]] {
        let out = run_bounded(msipphone_without_display(dir.path(), &args));
        let stderr = e2e::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                "cannot open the window: no display (DISPLAY and WAYLAND_DISPLAY are unset); run msipphone --headless"
            ),
            "{args:?}: {stderr}"
        );
        assert!(
            !dir.path().join("run/msipphone/ctl.sock").exists(),
            "no phone was left running"
        );
    }
    // A headless phone runs: `msipphone` again asks it to show its window,
    // and it has none.
    let mut phone = msipphone_without_display(dir.path(), &["--headless", "--config", &ini])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the headless phone starts");
    let deadline = Instant::now() + WAIT;
    loop {
        let status = run_bounded(msipphone_without_display(dir.path(), &["ctl", "Status"]));
        if status.status.code() == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the headless phone never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let again = run_bounded(msipphone_without_display(dir.path(), &[]));
    assert_eq!(again.status.code(), Some(3), "{}", e2e::stderr(&again));
    assert!(
        e2e::stderr(&again).contains("no window"),
        "{}",
        e2e::stderr(&again)
    );
    let close = run_bounded(msipphone_without_display(dir.path(), &["ctl", "Close"]));
    assert_eq!(close.status.code(), Some(0), "{}", e2e::stderr(&close));
    let deadline = Instant::now() + WAIT;
    while phone.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = phone.kill();
            panic!("the headless phone did not stop on Close");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
