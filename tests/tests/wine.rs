//! The Windows lane: the `x86_64-pc-windows-gnu` builds of both binaries run
//! under Wine, in a throwaway `WINEPREFIX`: `%APPDATA%` paths, and the URL
//! handlers in the registry.
//!
//! `./scripts/test` installs Wine and sets `MSIPPROV_WINE` to its `wine64`.
//! Without it the lane says so and passes (a plain `cargo test` on a machine
//! without Wine); with it every step must pass. One prefix serves every step
//! (booting one takes seconds), so the steps run in order in one test.
//! The window (`msipphone.exe` without `--headless`) needs an X server:
//! its test boots a prefix of its own on a private Xvfb display.

use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use softphone::config::{Encoding, IniDocument};

const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";
/// Where register points the links in these tests.
const EXE: &str = r"C:\Program Files\msipphone\msipphone.exe";
/// Booting a fresh prefix takes about ten seconds; a hang fails the lane.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn windows_binaries_under_wine() {
    let Some(wine) = std::env::var_os("MSIPPROV_WINE").filter(|w| !w.is_empty()) else {
        println!("MSIPPROV_WINE is not set: the Windows lane (Wine) runs in ./scripts/test");
        return;
    };
    let lane = Lane::start(PathBuf::from(wine));
    lane.apply_writes_the_ini_into_appdata();
    let registered = lane.register_writes_the_registry();
    lane.unregister_removes_it();
    lane.an_imported_reg_file_equals_register(&registered);
    lane.another_programs_scheme_needs_force();
    lane.ctl_without_a_phone_says_so();
    lane.a_headless_phone_answers_through_its_pipe();
}

/// A booted prefix and the Windows binaries; dropping it stops every Wine
/// process of the prefix and deletes it.
struct Lane {
    wine: PathBuf,
    prefix: tempfile::TempDir,
    bin_dir: PathBuf,
    /// The X display Wine's programs open their windows on; none: headless.
    display: Option<String>,
}

impl Lane {
    /// A lane without a display (every window-less step).
    fn start(wine: PathBuf) -> Self {
        Self::start_on(wine, None)
    }

    /// A lane whose programs, `wineboot` first (its desktop window and
    /// system tray), open their windows on the X `display`.
    fn start_on(wine: PathBuf, display: Option<String>) -> Self {
        assert!(
            wine.exists(),
            "MSIPPROV_WINE={} does not exist",
            wine.display()
        );
        let bin_dir = build_windows_binaries();
        let lane = Lane {
            wine,
            prefix: tempfile::tempdir().expect("a temporary folder"),
            bin_dir,
            display,
        };
        // A persistent wineserver (until Drop's `wineserver -k`) keeps the
        // prefix's services up between steps: each step then takes a fraction
        // of a second instead of three.
        let mut server = Command::new(wineserver_beside(&lane.wine));
        server.arg("-p").env("WINEPREFIX", lane.prefix.path());
        let server = lane.run(server, RUN_TIMEOUT);
        assert!(
            server.status.success(),
            "wineserver -p failed: {}",
            e2e::stderr(&server)
        );
        let boot = lane.run(lane.wine_command("wineboot", &["-i"]), BOOT_TIMEOUT);
        assert!(
            boot.status.success(),
            "wineboot -i failed: {}",
            e2e::stderr(&boot)
        );
        lane
    }

    /// `wine64 <program> <args>` in the lane's prefix, headless and quiet,
    /// and away from the real home folder.
    fn wine_command(&self, program: impl AsRef<OsStr>, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.wine);
        cmd.arg(program)
            .args(args)
            .env("WINEPREFIX", self.prefix.path())
            .env("WINEDEBUG", "-all")
            // No Mono or Gecko installer at boot, and no winemenubuilder: it
            // would mirror the prefix's URL handlers into the desktop's.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml,winemenubuilder.exe=")
            .env("HOME", self.prefix.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("MSIPPROV_LOG")
            .env_remove("MSIPPROV_TEST_FAULT");
        if let Some(display) = &self.display {
            cmd.env("DISPLAY", display);
        }
        cmd
    }

    /// `<exe>.exe <args>` under Wine, which must succeed; its stdout.
    fn windows_exe_ok(&self, exe: &str, args: &[&str]) -> String {
        let out = self.run(
            self.wine_command(self.bin_dir.join(format!("{exe}.exe")), args),
            RUN_TIMEOUT,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{exe} {args:?}\n{}{}",
            e2e::stdout(&out),
            e2e::stderr(&out)
        );
        e2e::stdout(&out)
    }

    /// `msipprov.exe <args>`, which must succeed; its stdout.
    fn msipprov_ok(&self, args: &[&str]) -> String {
        self.windows_exe_ok("msipprov", args)
    }

    /// `msipprov.exe <args> --json`, parsed.
    fn msipprov_json(&self, args: &[&str]) -> Value {
        let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let text = self.msipprov_ok(&args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("msipprov {args:?}: not JSON ({e}):\n{text}"))
    }

    /// `reg query KEY` (Wine's own reg.exe), as the exit status and stdout.
    fn reg_query(&self, key: &str) -> (bool, String) {
        let out = self.run(self.wine_command("reg", &["query", key]), RUN_TIMEOUT);
        (out.status.success(), e2e::stdout(&out))
    }

    /// `reg add KEY /v NAME /d DATA /f` (`/ve` for the (Default) value).
    fn reg_add(&self, key: &str, name: Option<&str>, data: &str) {
        let mut args = vec!["add", key];
        args.extend(name.map_or(vec!["/ve"], |n| vec!["/v", n]));
        args.extend(["/d", data, "/f"]);
        let out = self.run(self.wine_command("reg", &args), RUN_TIMEOUT);
        assert!(out.status.success(), "reg {args:?}: {}", e2e::stderr(&out));
    }

    /// Runs `cmd`; a failure to start or a hang fails the lane.
    fn run(&self, cmd: Command, timeout: Duration) -> Output {
        run_bounded(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Step 1: `apply` without `--target` writes `%APPDATA%\MicroSIP\microsip.ini`
    /// as MicroSIP does, and registers the template's handlers for the
    /// msipphone.exe beside msipprov.exe.
    fn apply_writes_the_ini_into_appdata(&self) {
        let vars = [
            "--set",
            "server=sip.example.com",
            "--set",
            "username=alice",
            "--set",
            "password=s3cret",
        ];
        let args: Vec<&str> = ["apply"].into_iter().chain(vars).collect();
        let out = self.msipprov_ok(&args);
        assert!(out.starts_with("changed"), "{out}");

        let ini = self.appdata_ini();
        let bytes = std::fs::read(&ini).expect("microsip.ini is readable");
        assert_eq!(
            &bytes[..2],
            &[0xFF, 0xFE],
            "UTF-16 LE with BOM, as MicroSIP writes it"
        );
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let text = String::from_utf16(&units).expect("valid UTF-16");
        assert!(
            text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'),
            "CRLF only:\n{text}"
        );
        let doc = IniDocument::parse(&bytes).expect("microsip.ini parses");
        assert_eq!(doc.encoding(), Encoding::Utf16LeBom);
        assert_eq!(doc.get("Account1", "server"), Some("sip.example.com"));
        assert_eq!(doc.get("Account1", "username"), Some("alice"));

        // The phone finds the same profile by itself.
        let config = self.windows_exe_ok("msipphone", &["--print-config"]);
        let config: Value =
            serde_json::from_str(&config).unwrap_or_else(|e| panic!("not JSON ({e}):\n{config}"));
        assert_eq!(
            config["accounts"][0]["server"], "sip.example.com",
            "{config:#}"
        );
        assert_eq!(config["accounts"][0]["username"], "alice", "{config:#}");

        let again = self.msipprov_ok(&args);
        assert!(
            again.starts_with("unchanged"),
            "a second apply writes nothing: {again}"
        );
        assert_eq!(std::fs::read(&ini).expect("still there"), bytes);

        // The template's handlers point at the msipphone.exe beside msipprov.exe.
        let status = self.msipprov_json(&["handlers", "status"]);
        for scheme in schemes(&status) {
            assert_eq!(scheme["registered"], true, "{status:#}");
            assert_eq!(scheme["owner"]["kind"], "us", "{status:#}");
        }
        self.msipprov_ok(&["handlers", "unregister"]);
        let (found, _) = self.reg_query(r"HKCU\Software\Classes\sip");
        assert!(!found, "apply's handlers are gone");
    }

    /// `%APPDATA%\MicroSIP\microsip.ini` of the prefix's (only) user.
    fn appdata_ini(&self) -> PathBuf {
        let users = self.prefix.path().join("drive_c").join("users");
        let found: Vec<PathBuf> = std::fs::read_dir(&users)
            .unwrap_or_else(|e| panic!("{}: {e}", users.display()))
            .flatten()
            .map(|user| user.path().join("AppData/Roaming/MicroSIP/microsip.ini"))
            .filter(|ini| ini.is_file())
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one microsip.ini under {}: {found:?}",
            users.display()
        );
        found.into_iter().next().expect("one")
    }

    /// Step 2: register writes the URL classes `reg query` sees, status agrees,
    /// a second register changes nothing. Returns status's JSON.
    fn register_writes_the_registry(&self) -> Value {
        let changes = self.msipprov_json(&["handlers", "register", "--exe", EXE]);
        assert_eq!(changes["exe"], EXE);
        for scheme in schemes(&changes) {
            assert_eq!(scheme["status"], "changed", "{changes:#}");
        }

        let (found, class) = self.reg_query(r"HKCU\Software\Classes\sip");
        assert!(found, "the sip class is there");
        assert!(
            class.contains("URL:sip Protocol") && class.contains("URL Protocol"),
            "{class}"
        );
        let (found, command) = self.reg_query(r"HKCU\Software\Classes\sip\shell\open\command");
        assert!(
            found && command.contains(&format!("\"{EXE}\" \"%1\"")),
            "{command}"
        );
        let (found, apps) = self.reg_query(r"HKCU\Software\RegisteredApplications");
        assert!(
            found && apps.contains(r"Software\msipphone\Capabilities"),
            "{apps}"
        );

        let status = self.msipprov_json(&["handlers", "status", "--exe", EXE]);
        assert_eq!(schemes(&status).len(), 4, "{status:#}");
        for scheme in schemes(&status) {
            assert_eq!(scheme["registered"], true, "{status:#}");
            assert_eq!(scheme["owner"]["kind"], "us", "{status:#}");
        }

        let again = self.msipprov_json(&["handlers", "register", "--exe", EXE]);
        for scheme in schemes(&again) {
            assert_eq!(scheme["status"], "unchanged", "{again:#}");
        }
        status
    }

    /// Step 3: unregister removes every key register wrote.
    fn unregister_removes_it(&self) {
        let changes = self.msipprov_json(&["handlers", "unregister", "--exe", EXE]);
        for scheme in schemes(&changes) {
            assert_eq!(scheme["status"], "changed", "{changes:#}");
        }
        for key in [
            r"HKCU\Software\Classes\sip",
            r"HKCU\Software\Classes\callto",
            r"HKCU\Software\Classes\msipphone.url",
            r"HKCU\Software\msipphone",
        ] {
            let (found, text) = self.reg_query(key);
            assert!(!found, "{key} is gone: {text}");
        }
        let (_, apps) = self.reg_query(r"HKCU\Software\RegisteredApplications");
        assert!(!apps.contains("msipphone"), "{apps}");
        self.assert_nothing_registered();
    }

    fn assert_nothing_registered(&self) {
        let status = self.msipprov_json(&["handlers", "status", "--exe", EXE]);
        for scheme in schemes(&status) {
            assert_eq!(scheme["registered"], false, "{status:#}");
            assert_eq!(scheme["owner"]["kind"], "nobody", "{status:#}");
        }
    }

    /// Step 4: `--emit-reg` writes a file and leaves the registry alone;
    /// `regedit /S` of the file gives what register gave.
    fn an_imported_reg_file_equals_register(&self, registered: &Value) {
        let reg = self.prefix.path().join("handlers.reg");
        let windows_path = format!("Z:{}", reg.display()).replace('/', "\\");
        self.msipprov_ok(&[
            "handlers",
            "register",
            "--exe",
            EXE,
            "--emit-reg",
            &windows_path,
        ]);
        let bytes = std::fs::read(&reg).unwrap_or_else(|e| panic!("{}: {e}", reg.display()));
        assert_eq!(
            &bytes[..2],
            &[0xFF, 0xFE],
            "a .reg file as regedit writes it"
        );
        self.assert_nothing_registered();

        let import = self.run(
            self.wine_command("regedit", &["/S", &windows_path]),
            RUN_TIMEOUT,
        );
        assert!(
            import.status.success(),
            "regedit /S failed: {}",
            e2e::stderr(&import)
        );
        let imported = self.msipprov_json(&["handlers", "status", "--exe", EXE]);
        assert_eq!(
            &imported, registered,
            "the .reg file holds what register writes"
        );
        // Even byte for byte: register finds nothing to change.
        let changes = self.msipprov_json(&["handlers", "register", "--exe", EXE]);
        for scheme in schemes(&changes) {
            assert_eq!(scheme["status"], "unchanged", "{changes:#}");
        }
    }

    /// Step 5: a scheme another program owns is left alone unless `--force`;
    /// a user choice naming another program wins, and only the user can
    /// change it (status's note says so).
    /// `msipphone.exe ctl Status` with no phone: the named pipe does not
    /// exist, which the client reports as "no running phone", exit 6.
    fn ctl_without_a_phone_says_so(&self) {
        let out = self.run(
            self.wine_command(self.bin_dir.join("msipphone.exe"), &["ctl", "Status"]),
            RUN_TIMEOUT,
        );
        assert_eq!(
            out.status.code(),
            Some(6),
            "msipphone.exe ctl Status\n{}{}",
            e2e::stdout(&out),
            e2e::stderr(&out)
        );
        assert!(
            e2e::stderr(&out).contains(
                r"no running phone for this user (nothing answers on \\.\pipe\msipphone-S-1-"
            ),
            "{}",
            e2e::stderr(&out)
        );
    }

    /// `msipphone.exe --headless` serves its named pipe: `ctl Status`
    /// answers, a second `--headless` refuses (exit 7), `ctl Close` stops it.
    fn a_headless_phone_answers_through_its_pipe(&self) {
        use std::io::BufRead;
        let ini = self.prefix.path().join("ctl-phone.ini");
        std::fs::write(
            &ini,
            e2e::utf16le_bom("[Settings]\r\nsourcePort=0\r\n[Account1]\r\ndomain=127.0.0.1:9\r\nusername=alice\r\n"),
        )
        .expect("write the ini");
        let ini = format!("Z:{}", ini.display()).replace('/', "\\");
        let exe = self.bin_dir.join("msipphone.exe");
        let mut phone = self
            .wine_command(&exe, &["--headless", "--config", &ini])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start msipphone.exe --headless");
        let stderr = phone.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains("control channel") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = phone.kill();
                    panic!("msipphone.exe --headless never served its pipe");
                }
            }
        }
        let status = self.run(self.wine_command(&exe, &["ctl", "Status"]), RUN_TIMEOUT);
        let second = self.run(
            self.wine_command(&exe, &["--headless", "--config", &ini]),
            RUN_TIMEOUT,
        );
        let close = self.run(self.wine_command(&exe, &["ctl", "Close"]), RUN_TIMEOUT);
        let deadline = Instant::now() + RUN_TIMEOUT;
        let exit = loop {
            if let Some(exit) = phone.try_wait().expect("try_wait") {
                break Some(exit);
            }
            if Instant::now() >= deadline {
                let _ = phone.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            status.status.code(),
            Some(0),
            "ctl Status: {}",
            e2e::stderr(&status)
        );
        assert!(
            e2e::stdout(&status).contains("account 1 sip:alice@127.0.0.1:9 unregistered"),
            "{}",
            e2e::stdout(&status)
        );
        assert_eq!(
            second.status.code(),
            Some(7),
            "second --headless: {}",
            e2e::stderr(&second)
        );
        assert_eq!(
            close.status.code(),
            Some(0),
            "ctl Close: {}",
            e2e::stderr(&close)
        );
        assert!(
            exit.is_some_and(|e| e.success()),
            "the phone exited {exit:?}"
        );
    }

    fn another_programs_scheme_needs_force(&self) {
        let skype = r#""C:\Skype\Skype.exe" "%1""#;
        self.reg_add(
            r"HKCU\Software\Classes\callto\shell\open\command",
            None,
            skype,
        );
        self.reg_add(
            r"HKCU\Software\Microsoft\Windows\Shell\Associations\UrlAssociations\tel\UserChoice",
            Some("ProgId"),
            "Skype.tel",
        );
        let status = self.msipprov_json(&["handlers", "status", "--exe", EXE]);
        let scheme = |name: &str| {
            schemes(&status)
                .iter()
                .find(|s| s["scheme"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no {name} in {status:#}"))
        };
        let callto = scheme("callto");
        assert_eq!(callto["registered"], false, "{status:#}");
        assert_eq!(callto["owner"]["name"], skype, "{status:#}");
        let tel = scheme("tel");
        assert_eq!(tel["registered"], true, "{status:#}");
        assert_eq!(tel["owner"]["kind"], "other", "{status:#}");
        assert_eq!(tel["owner"]["name"], "Skype.tel", "{status:#}");
        assert!(
            tel["note"]
                .as_str()
                .is_some_and(|n| n.contains("Default apps")),
            "{status:#}"
        );

        let changes = self.msipprov_json(&["handlers", "unregister", "--exe", EXE]);
        for scheme in schemes(&changes) {
            let expected = if scheme["scheme"] == "callto" {
                "skipped"
            } else {
                "changed"
            };
            assert_eq!(scheme["status"], expected, "{changes:#}");
        }
        let (_, command) = self.reg_query(r"HKCU\Software\Classes\callto\shell\open\command");
        assert!(
            command.contains(r"C:\Skype\Skype.exe"),
            "callto stays Skype's: {command}"
        );

        // Register never takes what belongs to another program: the
        // user's choice (tel) or a machine-wide handler (sips, in HKLM).
        self.reg_add(
            r"HKLM\Software\Classes\sips\shell\open\command",
            None,
            r#""C:\Teams\Teams.exe" "%1""#,
        );
        let kept = self.msipprov_json(&[
            "handlers",
            "register",
            "--exe",
            EXE,
            "--schemes",
            "tel,sips",
        ]);
        assert_eq!(schemes(&kept)[0]["status"], "skipped", "{kept:#}");
        assert!(
            schemes(&kept)[0]["why"]
                .as_str()
                .is_some_and(|w| w.contains("Skype.tel")),
            "{kept:#}"
        );
        assert_eq!(schemes(&kept)[1]["status"], "skipped", "{kept:#}");
        assert!(
            schemes(&kept)[1]["why"]
                .as_str()
                .is_some_and(|w| w.contains("every user")),
            "{kept:#}"
        );

        let taken = self.msipprov_json(&[
            "handlers",
            "register",
            "--exe",
            EXE,
            "--schemes",
            "callto",
            "--force",
        ]);
        assert_eq!(schemes(&taken)[0]["status"], "changed", "{taken:#}");
        let status =
            self.msipprov_json(&["handlers", "status", "--exe", EXE, "--schemes", "callto"]);
        assert_eq!(schemes(&status)[0]["registered"], true, "{status:#}");
        assert_eq!(schemes(&status)[0]["owner"]["kind"], "us", "{status:#}");
    }
}

impl Drop for Lane {
    /// Stops the prefix's wineserver and every Wine process it still runs
    /// (services, explorer), and waits until they are gone, before the
    /// prefix folder is deleted.
    fn drop(&mut self) {
        let wineserver = wineserver_beside(&self.wine);
        for arg in ["-k", "-w"] {
            let mut cmd = Command::new(&wineserver);
            cmd.arg(arg).env("WINEPREFIX", self.prefix.path());
            if let Err(e) = run_bounded(cmd, Duration::from_secs(30)) {
                eprintln!("{e}");
            }
        }
    }
}

/// Runs `cmd` with its output captured, killing it after `timeout`. The
/// output goes to files, not pipes: the Wine services a command starts
/// inherit its handles and outlive it, so a pipe would not close.
fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let fail = |e: std::io::Error| format!("{what}: {e}");
    let (mut out, mut err) = (
        tempfile::tempfile().map_err(fail)?,
        tempfile::tempfile().map_err(fail)?,
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(fail)?)
        .stderr(err.try_clone().map_err(fail)?)
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(match outcome {
                    Err(e) => format!("waiting for {what}: {e}"),
                    _ => format!("{what} did not finish within {timeout:?}"),
                });
            }
        }
    };
    let read = |file: &mut std::fs::File| -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(fail)?;
        Ok(bytes)
    };
    Ok(Output {
        status,
        stdout: read(&mut out)?,
        stderr: read(&mut err)?,
    })
}

/// The `wineserver` of the same Wine as `wine` (Debian keeps both in
/// /usr/lib/wine and puts neither on PATH), else the one on PATH.
fn wineserver_beside(wine: &Path) -> PathBuf {
    wine.parent()
        .map(|dir| dir.join("wineserver"))
        .filter(|w| w.exists())
        .unwrap_or_else(|| PathBuf::from("wineserver"))
}

/// The `schemes` array of a handlers command's JSON.
fn schemes(json: &Value) -> &Vec<Value> {
    json["schemes"]
        .as_array()
        .unwrap_or_else(|| panic!("no schemes in {json:#}"))
}

/// Cargo's target folder (where scripts/test builds the .exe files).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| e2e::workspace().join("target"), PathBuf::from)
}

/// Builds both binaries for Windows (the same command as scripts/test, so
/// normally nothing to do) and the `bcryptprimitives.dll` stand-in beside
/// them (see tests/wine/bcryptprimitives.c); returns their folder.
fn build_windows_binaries() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(e2e::workspace())
        .args([
            "build",
            "--quiet",
            "--workspace",
            "--bins",
            "--target",
            WINDOWS_TARGET,
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the Windows binaries failed");
    let dir = target_dir().join(WINDOWS_TARGET).join("debug");
    for exe in ["msipprov.exe", "msipphone.exe"] {
        assert!(
            dir.join(exe).is_file(),
            "{} was not built",
            dir.join(exe).display()
        );
    }

    let source = e2e::workspace().join("tests/wine/bcryptprimitives.c");
    let dll = dir.join("bcryptprimitives.dll");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&dll) < modified(&source) {
        let status = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(&dll)
            .arg(&source)
            .status()
            .expect("x86_64-w64-mingw32-gcc runs (Debian: gcc-mingw-w64-x86-64)");
        assert!(status.success(), "building {} failed", dll.display());
    }
    dir
}

/// The window under Wine: `msipphone.exe` without `--headless` on a
/// private Xvfb display (Wine's X11 driver, Mesa's OpenGL for eframe's
/// glow renderer). Unix only, as Wine and Xvfb are.
#[cfg(unix)]
mod window {
    use std::io::BufRead;
    use std::sync::mpsc;

    use super::*;

    /// What the test runs besides Wine, and the Debian package of each.
    const X_TOOLS: [(&str, &str); 4] = [
        ("Xvfb", "xvfb"),
        ("xwininfo", "x11-utils"),
        ("import", "imagemagick"),
        ("convert", "imagemagick"),
    ];
    /// Wine is slow to open a program's first window; a hang fails.
    const WINDOW_TIMEOUT: Duration = Duration::from_secs(60);
    /// From `ctl Close` to the process's exit.
    const CLOSE_TIMEOUT: Duration = Duration::from_secs(20);
    /// A painted window has text, buttons and fields: more colours than
    /// a blank or black one (which has one or two).
    const MIN_COLOURS: usize = 8;

    #[test]
    fn the_window_opens_answers_ctl_and_saves_its_place_on_close() {
        let Some(wine) = std::env::var_os("MSIPPROV_WINE").filter(|w| !w.is_empty()) else {
            println!("MSIPPROV_WINE is not set: the Windows lane (Wine) runs in ./scripts/test");
            return;
        };
        let missing: Vec<String> = X_TOOLS
            .iter()
            .filter(|(tool, _)| !on_path(tool))
            .map(|(tool, package)| format!("{tool} (Debian package {package})"))
            .collect();
        // The lane is on (MSIPPROV_WINE is set): it is never skipped
        // silently, so missing X tools fail it.
        assert!(
            missing.is_empty(),
            "the window under Wine cannot be tested: {} missing (./scripts/test installs them)",
            missing.join(", ")
        );
        // Declared first, dropped last: the prefix's Wine processes are
        // stopped while their X server still runs.
        let xvfb = Xvfb::start();
        let lane = Lane::start_on(PathBuf::from(wine), Some(xvfb.display.clone()));
        lane.the_window_opens_answers_ctl_and_saves_its_place();
    }

    /// A top-level X window as `xwininfo -root -tree` lists it.
    #[derive(Debug)]
    struct XWindow {
        width: u32,
        height: u32,
        /// `WxH+X+Y`, for cropping a screenshot of the root window.
        geometry: String,
    }

    impl Lane {
        /// `msipphone.exe --config INI` opens its window within
        /// [`WINDOW_TIMEOUT`], painted; `ctl Status` (its named pipe)
        /// shows the profile's account; `ctl Close` ends it with exit 0
        /// within [`CLOSE_TIMEOUT`], and the ini then holds the window's
        /// place and size, still in MicroSIP's encoding.
        fn the_window_opens_answers_ctl_and_saves_its_place(&self) {
            let dead_port = e2e::peers::free_port();
            let ini = self.prefix.path().join("window-phone.ini");
            let text = format!(
                "[Settings]\r\nsourcePort={}\r\naudioInputDevice=null\r\naudioOutputDevice=null\r\n[Account1]\r\ndomain=127.0.0.1:{dead_port}\r\nusername=alice\r\n",
                e2e::peers::free_port()
            );
            std::fs::write(&ini, e2e::utf16le_bom(&text)).expect("write the ini");
            let windows_ini = format!("Z:{}", ini.display()).replace('/', "\\");
            let log = self.prefix.path().join("window-phone.err");
            let exe = self.bin_dir.join("msipphone.exe");
            let started = Instant::now();
            let mut phone = self
                .wine_command(&exe, &["--config", &windows_ini])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("the phone's log file"))
                .spawn()
                .expect("start msipphone.exe");
            let phone_log = || std::fs::read_to_string(&log).unwrap_or_default();

            let deadline = started + WINDOW_TIMEOUT;
            let window = loop {
                let tree = self.x_tree();
                if let Some(window) = phone_window(&tree) {
                    break window;
                }
                if let Some(exit) = phone.try_wait().expect("try_wait") {
                    panic!(
                        "msipphone.exe exited ({exit}) before its window showed; its stderr:\n{}",
                        phone_log()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "no window named msipphone within {WINDOW_TIMEOUT:?}; windows:\n{tree}\nmsipphone.exe's stderr:\n{}",
                    phone_log()
                );
                std::thread::sleep(Duration::from_millis(250));
            };
            let shown_after = started.elapsed();

            // Painted, not just mapped: the first frames may still be blank.
            let shot = target_dir().join("wine-window.png");
            let colours = loop {
                let colours = self.colours_in(&shot, &window.geometry);
                if colours >= MIN_COLOURS || Instant::now() >= deadline {
                    break colours;
                }
                std::thread::sleep(Duration::from_millis(250));
            };
            assert!(
                colours >= MIN_COLOURS,
                "the window {window:?} is blank: {colours} colours in {} (want >= {MIN_COLOURS}); msipphone.exe's stderr:\n{}",
                shot.display(),
                phone_log()
            );

            let status = self.run(self.wine_command(&exe, &["ctl", "Status"]), RUN_TIMEOUT);
            let close = self.run(self.wine_command(&exe, &["ctl", "Close"]), RUN_TIMEOUT);
            let closed = Instant::now();
            let exit = loop {
                if let Some(exit) = phone.try_wait().expect("try_wait") {
                    break Some(exit);
                }
                if closed.elapsed() >= CLOSE_TIMEOUT {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            assert_eq!(
                status.status.code(),
                Some(0),
                "ctl Status: {}",
                e2e::stderr(&status)
            );
            assert!(
                e2e::stdout(&status).contains(&format!(
                    "account 1 sip:alice@127.0.0.1:{dead_port} unregistered"
                )),
                "{}",
                e2e::stdout(&status)
            );
            assert_eq!(
                close.status.code(),
                Some(0),
                "ctl Close: {}",
                e2e::stderr(&close)
            );
            assert!(
                exit.is_some_and(|e| e.success()),
                "msipphone.exe exited {exit:?} (None: still running {CLOSE_TIMEOUT:?} after ctl Close); its stderr:\n{}",
                phone_log()
            );

            let bytes = std::fs::read(&ini).expect("the ini is still there");
            let doc = IniDocument::parse(&bytes).expect("the ini still parses");
            assert_eq!(doc.encoding(), Encoding::Utf16LeBom, "still MicroSIP's");
            let number = |key: &str| {
                doc.get("Settings", key)
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or_else(|| panic!("no number in {key} of the ini:\n{}", doc.to_text()))
            };
            number("mainX");
            number("mainY");
            assert_eq!(
                (number("mainW"), number("mainH")),
                (i64::from(window.width), i64::from(window.height)),
                "the saved size is the window's ({window:?})"
            );
            assert_eq!(
                doc.get("Account1", "domain"),
                Some(&*format!("127.0.0.1:{dead_port}"))
            );
            println!(
                "msipphone.exe under Wine: window after {shown_after:?}, exit {:?} after ctl Close",
                closed.elapsed()
            );
        }

        /// `xwininfo -root -tree` on the lane's display.
        fn x_tree(&self) -> String {
            let mut cmd = Command::new("xwininfo");
            cmd.args(["-root", "-tree"]);
            if let Some(display) = &self.display {
                cmd.env("DISPLAY", display);
            }
            let out = self.run(cmd, RUN_TIMEOUT);
            assert!(out.status.success(), "xwininfo: {}", e2e::stderr(&out));
            e2e::stdout(&out)
        }

        /// Takes a screenshot of the whole display into `shot` and counts
        /// the distinct colours inside `geometry`.
        fn colours_in(&self, shot: &Path, geometry: &str) -> usize {
            let display = self.display.as_deref().expect("a lane with a display");
            let mut import = Command::new("import");
            import
                .args(["-display", display, "-window", "root"])
                .arg(shot);
            let out = self.run(import, RUN_TIMEOUT);
            assert!(out.status.success(), "import: {}", e2e::stderr(&out));
            let mut convert = Command::new("convert");
            convert
                .arg(shot)
                .args(["-crop", geometry, "+repage", "-format", "%k", "info:"]);
            let out = self.run(convert, RUN_TIMEOUT);
            assert!(out.status.success(), "convert: {}", e2e::stderr(&out));
            let text = e2e::stdout(&out);
            text.trim()
                .parse()
                .unwrap_or_else(|e| panic!("convert's colour count {text:?}: {e}"))
        }
    }

    /// The window titled `msipphone` in `xwininfo -root -tree`'s output,
    /// whose lines read `0x600003 "msipphone": ("msipphone.exe"
    /// "msipphone.exe")  340x560+4+23  +4+23`.
    fn phone_window(tree: &str) -> Option<XWindow> {
        let line = tree
            .lines()
            .find(|line| line.contains(r#" "msipphone": ("#))?;
        let geometry = line.rsplit(')').next()?.split_whitespace().next()?;
        let (width, rest) = geometry.split_once('x')?;
        let height = rest.split(['+', '-']).next()?;
        Some(XWindow {
            width: width.parse().ok()?,
            height: height.parse().ok()?,
            geometry: geometry.to_owned(),
        })
    }

    /// Whether `program` is an executable file in a folder of `PATH`.
    fn on_path(program: &str) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| {
                std::fs::metadata(dir.join(program))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
    }

    /// A private Xvfb server on a display number it picks itself; dropping
    /// it stops the server.
    struct Xvfb {
        child: std::process::Child,
        /// `:N`.
        display: String,
    }

    impl Xvfb {
        fn start() -> Self {
            let log = tempfile::tempfile().expect("a log file for Xvfb");
            // -displayfd 1: the server takes the first free display and
            // writes its number to stdout once it accepts clients.
            let child = Command::new("Xvfb")
                .args(["-displayfd", "1", "-screen", "0", "1024x768x24"])
                .args(["-nolisten", "tcp", "-noreset"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log.try_clone().expect("the log's handle"))
                .spawn()
                .expect("Xvfb starts");
            let mut xvfb = Xvfb {
                child,
                display: String::new(),
            };
            let stdout = xvfb.child.stdout.take().expect("Xvfb's stdout");
            let (tx, number) = mpsc::channel();
            std::thread::spawn(move || {
                let mut stdout = std::io::BufReader::new(stdout);
                let mut line = String::new();
                let _ = stdout.read_line(&mut line);
                let _ = tx.send(line);
                // Keep the pipe open as long as the server runs.
                let _ = std::io::copy(&mut stdout, &mut std::io::sink());
            });
            let line = number
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_default();
            let number = line.trim();
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                let mut text = String::new();
                let mut log = log;
                let _ = log
                    .seek(SeekFrom::Start(0))
                    .and_then(|_| log.read_to_string(&mut text));
                panic!("Xvfb reported no display within 10 s ({line:?}); its log:\n{text}");
            }
            xvfb.display = format!(":{number}");
            xvfb
        }
    }

    impl Drop for Xvfb {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
