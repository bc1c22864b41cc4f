//! `msipprov apply`, `render` and `rollback` through the real binary.

use std::path::Path;

use e2e::{msipprov_env, stderr, stdout, stray_temp_files, templates};
use softphone::config::{Account, CallRecord, ContactList, Encoding, IniDocument, Password};

const HEX160: &str = "3f2a9c0d4e5b6a7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";

fn apply(target: &Path, extra: &[&str]) -> std::process::Output {
    apply_env(target, extra, &[])
}

fn apply_env(target: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut args = vec!["apply", "--target", target.to_str().unwrap()];
    args.extend_from_slice(extra);
    msipprov_env(&args, env)
}

const DEFAULT_VARS: &[&str] = &[
    "--set",
    "server=sip.example.com",
    "--set",
    "domain=example.com",
    "--set",
    "username=alice",
    "--set",
    "password=s3cret-Pa55",
];

fn ini(target: &Path) -> IniDocument {
    IniDocument::parse(&std::fs::read(target.join("microsip.ini")).unwrap()).unwrap()
}

fn corporate_args() -> Vec<String> {
    let t = templates();
    vec![
        "--templates-dir".into(),
        t.to_str().unwrap().into(),
        "--template".into(),
        "corporate".into(),
        "--vars".into(),
        t.join("corporate/example.vars.toml")
            .to_str()
            .unwrap()
            .into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn first_apply_writes_a_file_the_phone_loads_and_the_second_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("MicroSIP");
    let out = apply(&target, DEFAULT_VARS);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).starts_with("changed"), "{}", stdout(&out));
    let path = target.join("microsip.ini");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xFE], "MicroSIP's encoding");
    let doc = IniDocument::parse(&bytes).unwrap();
    assert_eq!(doc.encoding(), Encoding::Utf16LeBom);
    let accounts = Account::list(&doc);
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].keys.server, "sip.example.com");
    assert_eq!(accounts[0].keys.username, "alice");
    assert_eq!(
        accounts[0].keys.password,
        Password::Plain("s3cret-Pa55".into())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "a file with a password is the user's only");
    }

    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = apply(&target, DEFAULT_VARS);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).starts_with("unchanged"),
        "{}",
        stdout(&again)
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        mtime,
        "mtime did not move"
    );
}

#[test]
fn the_users_keys_and_call_log_survive_a_reapply_that_changes_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path();
    assert_eq!(apply(target, DEFAULT_VARS).status.code(), Some(0));
    // The user (or MicroSIP) adds their own keys and history.
    let mut doc = ini(target);
    doc.set("Settings", "audioInputDevice", "\"Микрофон (USB)\"")
        .unwrap();
    doc.set("Settings", "mainX", "1210").unwrap();
    doc.set(
        "Calls",
        "5",
        "9787563142;Hard (Академическая);1;1718273852;0;",
    )
    .unwrap();
    doc.set("Dialed", "0", "9787563142").unwrap();
    std::fs::write(target.join("microsip.ini"), doc.to_bytes()).unwrap();
    let before: Vec<String> = doc.lines().iter().map(|l| l.text().to_owned()).collect();

    let out = apply(
        target,
        &[
            "--set",
            "server=pbx2.example.com",
            "--set",
            "domain=example.com",
            "--set",
            "username=alice",
            "--set",
            "password=s3cret-Pa55",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("changed"));
    let after = ini(target);
    let after_lines: Vec<String> = after.lines().iter().map(|l| l.text().to_owned()).collect();
    assert_eq!(before.len(), after_lines.len());
    let diff: Vec<(&String, &String)> = before
        .iter()
        .zip(&after_lines)
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(diff.len(), 1, "only the server line changed: {diff:?}");
    assert_eq!(diff[0].1, "server=pbx2.example.com");
    assert_eq!(
        after.get("Settings", "audioInputDevice"),
        Some("Микрофон (USB)")
    );
    assert_eq!(CallRecord::list(&after)[0].name, "Hard (Академическая)");
}

#[test]
fn a_password_microsip_encrypted_is_not_rewritten_at_every_logon() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path();
    assert_eq!(apply(target, DEFAULT_VARS).status.code(), Some(0));
    // MicroSIP starts and replaces the plain password with its ciphertext.
    let mut doc = ini(target);
    doc.set("Account1", "password", HEX160).unwrap();
    std::fs::write(target.join("microsip.ini"), doc.to_bytes()).unwrap();
    let out = apply(target, DEFAULT_VARS);
    assert!(stdout(&out).starts_with("unchanged"), "{}", stdout(&out));
    assert_eq!(ini(target).get("Account1", "password"), Some(HEX160));
    // A new password from the admin is written.
    let out = apply(
        target,
        &[
            "--set",
            "server=sip.example.com",
            "--set",
            "domain=example.com",
            "--set",
            "username=alice",
            "--set",
            "password=n3w-Pa55",
        ],
    );
    assert!(stdout(&out).starts_with("changed"));
    assert_eq!(ini(target).get("Account1", "password"), Some("n3w-Pa55"));
    let state = std::fs::read_to_string(target.join(".msipprov/state.json")).unwrap();
    assert!(
        !state.contains("n3w-Pa55") && !state.contains("s3cret"),
        "secrets are never stored in clear"
    );
}

#[test]
fn broken_templates_and_missing_variables_leave_every_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("profile");
    assert_eq!(apply(&target, DEFAULT_VARS).status.code(), Some(0));
    let snapshot = |t: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = walk(t)
            .into_iter()
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&target);

    // A missing required variable.
    let out = apply(&target, &["--set", "server=sip.example.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("username"), "{}", stderr(&out));
    assert_eq!(snapshot(&target), before);

    // A template with a syntax error and one using an undefined variable.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("template.toml"),
        "name = \"bad\"\ndescription = \"broken\"\n",
    )
    .unwrap();
    std::fs::write(
        bad.join("microsip.ini.j2"),
        "[Settings]\r\naccountId=1\r\n[Account1]\r\ndomain={{ nosuch }}\r\n",
    )
    .unwrap();
    let out = apply(&target, &["--template", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nosuch") && stderr(&out).contains(":4"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&target), before);
    std::fs::write(bad.join("microsip.ini.j2"), "[Settings]\r\n{% if %}\r\n").unwrap();
    let out = apply(&target, &["--template", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(snapshot(&target), before);

    // A value that would break the ini.
    let out = apply(
        &target,
        &[
            "--set",
            "server=sip.example.com",
            "--set",
            "username=alice\r\nEC=0",
            "--set",
            "password=x",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(snapshot(&target), before);

    // A rendered file that the config authority rejects.
    std::fs::write(
        bad.join("microsip.ini.j2"),
        "[Settings]\r\naccountId=1\r\n[Account1]\r\ndomain=x\r\ntransport=udpp\r\n",
    )
    .unwrap();
    let out = apply(&target, &["--template", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("transport: \"udpp\" is not one of"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&target), before);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p)
            } else {
                found.push(p)
            }
        }
    }
    found
}

#[test]
fn a_failure_between_temp_file_and_rename_loses_nothing() {
    if !cfg!(debug_assertions) {
        return; // the fault switch exists in debug builds only
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path();
    let corporate = corporate_args();
    let mut args = strs(&corporate);
    assert_eq!(apply(target, &args).status.code(), Some(0));
    let ini_before = std::fs::read(target.join("microsip.ini")).unwrap();
    let xml_before = std::fs::read(target.join("Contacts.xml")).unwrap();
    args.extend_from_slice(&["--set", "server=other.example.com", "--set", "directory=[]"]);
    let backups = || {
        std::fs::read_dir(target.join(".msipprov/backups"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let backups_before = backups();
    // First rename fails: nothing replaced. Second fails: the first is put back.
    for fault in ["rename:0", "rename:1"] {
        let out = apply_env(target, &args, &[("MSIPPROV_TEST_FAULT", fault)]);
        assert_eq!(out.status.code(), Some(1), "{fault}: {}", stdout(&out));
        assert!(stderr(&out).contains("injected fault"), "{}", stderr(&out));
        assert_eq!(
            std::fs::read(target.join("microsip.ini")).unwrap(),
            ini_before,
            "{fault}"
        );
        assert_eq!(
            std::fs::read(target.join("Contacts.xml")).unwrap(),
            xml_before,
            "{fault}"
        );
        assert_eq!(
            stray_temp_files(target),
            Vec::<std::path::PathBuf>::new(),
            "{fault}"
        );
        assert_eq!(
            backups(),
            backups_before,
            "{fault}: a failed run leaves no backup to roll back to"
        );
    }
}

#[test]
fn rollback_restores_the_previous_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path();
    let original = e2e::utf16le_bom("[Settings]\r\nEC=0\r\n; the user's own comment\r\n");
    std::fs::write(target.join("microsip.ini"), &original).unwrap();
    assert_eq!(apply(target, DEFAULT_VARS).status.code(), Some(0));
    assert_ne!(
        std::fs::read(target.join("microsip.ini")).unwrap(),
        original
    );
    let out = msipprov_env(&["rollback", "--target", target.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("restored"));
    assert_eq!(
        std::fs::read(target.join("microsip.ini")).unwrap(),
        original
    );
    let out = msipprov_env(&["rollback", "--target", target.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "no older backup");
    assert!(stderr(&out).contains("no backup"));
}

#[test]
fn a_running_softphone_makes_the_target_busy() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("profile");
    // A stand-in phone: a copy of `sleep` under a name of its own.
    let name = format!("msipbusy{}", std::process::id() % 100_000);
    let fake = dir.path().join(&name);
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let mut phone = std::process::Command::new(&fake).arg("30").spawn().unwrap();
    let env = [("MSIPPROV_TEST_PHONE_NAMES", name.as_str())];
    let out = apply_env(&target, DEFAULT_VARS, &env);
    let written_while_busy = target.join("microsip.ini").exists();
    let forced = apply_env(&target, &[DEFAULT_VARS, &["--force"]].concat(), &env);
    phone.kill().unwrap();
    phone.wait().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains(&name), "{}", stderr(&out));
    assert!(!written_while_busy, "nothing written while busy");
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(target.join("microsip.ini").exists());
}

#[test]
fn dry_run_diff_json_quiet_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p");
    let out = apply(&target, &[DEFAULT_VARS, &["--dry-run", "--diff"]].concat());
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("would change"), "{text}");
    assert!(text.contains("+server=sip.example.com"), "{text}");
    assert!(
        text.contains("+password=********") && !text.contains("s3cret-Pa55"),
        "{text}"
    );
    assert!(!target.exists(), "a dry run writes nothing");

    let log = dir.path().join("msipprov.log");
    let out = apply(
        &target,
        &[DEFAULT_VARS, &["--json", "--log", log.to_str().unwrap()]].concat(),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "changed");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(
        v["template"], "default (embedded)",
        "no files needed: the default set is compiled in"
    );
    assert_eq!(v["files"][0]["status"], "changed");
    assert!(v["backup"].is_string());
    let out = apply(
        &target,
        &[DEFAULT_VARS, &["--quiet", "--log", log.to_str().unwrap()]].concat(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].contains("result=changed exit=0") && lines[0].contains("microsip.ini:changed"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("result=unchanged"), "{}", lines[1]);
    assert!(!lines.concat().contains("s3cret"));

    let out = apply(&target, &["--json", "--set", "server=x"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "failed");
    assert!(v["error"].as_str().unwrap().contains("username"));
}

#[test]
fn corporate_contacts_merge_keeps_the_users_own() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path();
    let corporate = corporate_args();
    let args = strs(&corporate);
    let out = apply(target, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let xml = target.join("Contacts.xml");
    let directory = ContactList::parse(&std::fs::read(&xml).unwrap()).unwrap();
    assert!(!directory.contacts.is_empty());
    let doc = ini(target);
    let account = &Account::list(&doc)[0];
    assert_eq!(account.keys.transport.as_str(), "tls");
    assert_eq!(account.keys.srtp.as_str(), "mandatory");

    // The user adds a contact of their own.
    let mut mine = directory.clone();
    mine.contacts.insert(
        0,
        softphone::config::Contact {
            name: "Mum".into(),
            number: "555".into(),
            ..Default::default()
        },
    );
    std::fs::write(&xml, mine.to_bytes()).unwrap();
    let out = apply(target, &args);
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));
    let after = ContactList::parse(&std::fs::read(&xml).unwrap()).unwrap();
    assert_eq!(after, mine, "no duplicates, the user's contact kept");

    // --contacts replace writes exactly the template's.
    let out = apply(target, &[&args[..], &["--contacts", "replace"]].concat());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        ContactList::parse(&std::fs::read(&xml).unwrap()).unwrap(),
        directory
    );
}

#[test]
fn render_writes_microsip_files_without_touching_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let corporate = corporate_args();
    let mut args = vec!["render", "--out", out_dir.to_str().unwrap()];
    args.extend(strs(&corporate));
    let out = msipprov_env(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lint = msipprov_env(
        &[
            "lint",
            out_dir.join("microsip.ini").to_str().unwrap(),
            out_dir.join("Contacts.xml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(lint.status.code(), Some(0), "{}", stdout(&lint));
    assert!(!out_dir.join(".msipprov").exists(), "render keeps no state");
}

#[test]
fn set_wins_over_vars_files() {
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("vars.toml");
    std::fs::write(&vars, "server = \"from-file.example.com\"\nusername = \"file-user\"\npassword = \"pw-from-file\"\n").unwrap();
    let target = dir.path().join("t");
    let out = apply(
        &target,
        &[
            "--vars",
            vars.to_str().unwrap(),
            "--set",
            "username=set-user",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let account = &Account::list(&ini(&target))[0];
    assert_eq!(account.keys.server, "from-file.example.com");
    assert_eq!(account.keys.username, "set-user", "--set wins over --vars");
}

#[test]
fn replace_mode_writes_only_what_the_template_renders() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path();
    std::fs::write(
        target.join("microsip.ini"),
        e2e::utf16le_bom("[Settings]\r\nmainX=5\r\n[Calls]\r\n0=1;a;0;1;1;\r\n"),
    )
    .unwrap();
    let out = apply(target, &[DEFAULT_VARS, &["--mode", "replace"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = ini(target);
    assert_eq!(doc.get("Settings", "mainX"), None);
    assert!(!doc.has_section("Calls"));
    assert_eq!(Account::list(&doc)[0].keys.username, "alice");
    // The previous file is one rollback away.
    let out = msipprov_env(&["rollback", "--target", target.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(ini(target).get("Settings", "mainX"), Some("5"));
}
