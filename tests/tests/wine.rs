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
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| e2e::workspace().join("target"), PathBuf::from);
    let dir = target.join(WINDOWS_TARGET).join("debug");
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
