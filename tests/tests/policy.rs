//! Policies through the real binary: `apply --policy` and `check`.

use std::path::Path;

use e2e::{msipprov_env, stderr, stdout, templates, utf16le_bom, workspace};
use softphone::config::IniDocument;

fn ini(dir: &Path) -> IniDocument {
    IniDocument::parse(&std::fs::read(dir.join("microsip.ini")).unwrap()).unwrap()
}

fn write_policy(dir: &Path, text: &str) -> String {
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const VARS: &[&str] = &[
    "--set",
    "server=sip.example.com",
    "--set",
    "domain=example.com",
    "--set",
    "username=alice",
    "--set",
    "password=pw-1234",
];

fn apply(target: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", "--target", target.to_str().unwrap()];
    args.extend_from_slice(VARS);
    args.extend_from_slice(extra);
    msipprov_env(&args, &[])
}

#[test]
fn enforce_beats_template_and_user_and_default_leaves_the_users_value() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        "[Account]\ntransport = { enforce = \"tls\", reason = \"encrypt\" }\n\
         [Settings]\nenableLog = { enforce = \"0\", reason = \"privacy\" }\nEC = { default = \"1\", reason = \"echo\" }\n",
    );
    let target = dir.path().join("profile");
    std::fs::create_dir_all(&target).unwrap();
    // The user's file: logging on, echo canceller off.
    std::fs::write(
        target.join("microsip.ini"),
        utf16le_bom("[Settings]\r\nenableLog=1\r\nEC=0\r\n"),
    )
    .unwrap();
    // The default template renders transport=udp.
    let out = apply(&target, &["--policy", &policy]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let doc = ini(&target);
    assert_eq!(
        doc.get("Account1", "transport"),
        Some("tls"),
        "enforce beats the template"
    );
    assert_eq!(
        doc.get("Settings", "enableLog"),
        Some("0"),
        "enforce beats the user"
    );
    assert_eq!(
        doc.get("Settings", "EC"),
        Some("0"),
        "default leaves the user's value"
    );

    // With the key absent, default writes it; after the user changes it, it stays.
    let fresh = dir.path().join("fresh");
    assert_eq!(apply(&fresh, &["--policy", &policy]).status.code(), Some(0));
    assert_eq!(ini(&fresh).get("Settings", "EC"), Some("1"));
    let mut doc = ini(&fresh);
    doc.set("Settings", "EC", "0").unwrap();
    std::fs::write(fresh.join("microsip.ini"), doc.to_bytes()).unwrap();
    let out = apply(&fresh, &["--policy", &policy]);
    assert!(stdout(&out).starts_with("unchanged"), "{}", stdout(&out));
    assert_eq!(ini(&fresh).get("Settings", "EC"), Some("0"));
}

#[test]
fn a_template_that_breaks_a_rule_exits_3_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        "[Settings]\nautoAnswer = { allow = [\"\", \"button\"], reason = \"no silent answer\" }\n\
         [Account]\nlabel = { require = true, reason = \"users pick accounts by label\" }\n",
    );
    let tpl = dir.path().join("aa");
    std::fs::create_dir_all(&tpl).unwrap();
    std::fs::write(
        tpl.join("template.toml"),
        "name = \"aa\"\ndescription = \"auto answer\"\n",
    )
    .unwrap();
    std::fs::write(tpl.join("microsip.ini.j2"), "[Settings]\r\naccountId=1\r\nautoAnswer=all\r\n[Account1]\r\ndomain=example.com\r\nusername=u\r\n").unwrap();
    let target = dir.path().join("profile");
    std::fs::create_dir_all(&target).unwrap();
    let original = utf16le_bom("[Settings]\r\nEC=1\r\n");
    std::fs::write(target.join("microsip.ini"), &original).unwrap();
    let out = msipprov_env(
        &[
            "apply",
            "--target",
            target.to_str().unwrap(),
            "--template",
            tpl.to_str().unwrap(),
            "--policy",
            &policy,
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("[Settings] autoAnswer: is \"all\", expected one of \"\", \"button\""),
        "{err}"
    );
    assert!(
        err.contains("[Account1] label: is absent, expected a non-empty value"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(target.join("microsip.ini")).unwrap(),
        original
    );
    assert!(!target.join(".msipprov").exists());
}

#[test]
fn a_misspelled_key_in_a_policy_gets_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), "[Settings]\nenableLogs = { enforce = \"0\" }\n[Account]\nSRPT = { enforce = \"mandatory\" }\n");
    let out = msipprov_env(
        &[
            "check",
            "--policy",
            &policy,
            "--target",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("{policy}:2: enableLogs: [Settings] has no key \"enableLogs\" in MicroSIP; did you mean enableLog?")), "{err}");
    assert!(
        err.contains(&format!(
            "{policy}:4: SRPT: [Account] has no key \"SRPT\" in MicroSIP; did you mean SRTP?"
        )),
        "{err}"
    );
    let target = dir.path().join("t");
    let out = apply(&target, &["--policy", &policy]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("did you mean enableLog?"));
    assert!(!target.exists(), "nothing written");
}

#[test]
fn check_finds_planted_drift_in_a_fleet_and_fix_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    let secure = workspace().join("policies/secure.toml");
    let secure = secure.to_str().unwrap();
    // 40 compliant profiles, rendered by the corporate template under the secure policy.
    for i in 0..40 {
        let target = fleet.join(format!("u{i:03}")).join("MicroSIP");
        let t = templates();
        let out = msipprov_env(
            &[
                "apply",
                "--target",
                target.to_str().unwrap(),
                "--templates-dir",
                t.to_str().unwrap(),
                "--template",
                "corporate",
                "--vars",
                t.join("corporate/example.vars.toml").to_str().unwrap(),
                "--set",
                &format!("username={}", 1000 + i),
                "--policy",
                secure,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let pattern = format!("{}/*/MicroSIP", fleet.display());
    let clean = msipprov_env(
        &[
            "check",
            "--policy",
            secure,
            "--profiles",
            &pattern,
            "--json",
        ],
        &[],
    );
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    // Plant drift in 4 of them.
    let drift = [
        (3, "Account1", "transport", "udp"),
        (11, "Settings", "enableLog", "1"),
        (20, "Settings", "autoAnswer", "all"),
        (33, "Settings", "cmdCallEnd", "\"C:\\evil.exe\""),
    ];
    for (i, section, key, value) in drift {
        let profile = fleet.join(format!("u{i:03}")).join("MicroSIP");
        let mut doc = ini(&profile);
        doc.set(section, key, value).unwrap();
        std::fs::write(profile.join("microsip.ini"), doc.to_bytes()).unwrap();
    }
    let out = msipprov_env(
        &[
            "check",
            "--policy",
            secure,
            "--profiles",
            &pattern,
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["profiles"], 40);
    assert_eq!(v["summary"]["with_violations"], 4);
    assert_eq!(v["summary"]["errors"], 4);
    let drifted: Vec<(String, String)> = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["violations"].as_array().unwrap().is_empty())
        .map(|p| {
            (
                p["profile"].as_str().unwrap().to_owned(),
                p["violations"][0]["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(drifted.len(), 4);
    assert!(
        drifted[0].0.contains("u003") && drifted[0].1 == "transport",
        "{drifted:?}"
    );
    let first = &v["profiles"][3]["violations"][0];
    assert_eq!(first["current"], "udp");
    assert_eq!(first["expected"], "tls");
    assert_eq!(first["rule"], "enforce");
    assert!(first["reason"].as_str().unwrap().contains("encrypted"));

    // Text output names file and line.
    let text = msipprov_env(&["check", "--policy", secure, "--profiles", &pattern], &[]);
    assert!(
        stdout(&text).contains("u011/MicroSIP/microsip.ini:"),
        "{}",
        stdout(&text)
    );
    assert!(stderr(&text).contains("40 profile(s) checked: 4 with violations (4 error(s)"));

    // --fix writes the enforce rules; the hook (an allow rule) stays for a human.
    let fixed = msipprov_env(
        &["check", "--policy", secure, "--profiles", &pattern, "--fix"],
        &[],
    );
    assert_eq!(
        fixed.status.code(),
        Some(3),
        "the hook cannot be fixed by enforce: {}",
        stdout(&fixed)
    );
    assert_eq!(
        stdout(&fixed).matches("fixed ").count(),
        3,
        "{}",
        stdout(&fixed)
    );
    let after = msipprov_env(
        &[
            "check",
            "--policy",
            secure,
            "--profiles",
            &pattern,
            "--json",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(v["summary"]["with_violations"], 1);
    assert_eq!(
        ini(&fleet.join("u003/MicroSIP")).get("Account1", "transport"),
        Some("tls")
    );
    assert!(
        fleet.join("u003/MicroSIP/.msipprov/backups").is_dir(),
        "--fix backs up like apply"
    );
    assert_eq!(
        e2e::stray_temp_files(&fleet),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn the_shipped_policies_load_and_judge_the_sample() {
    let baseline = workspace().join("policies/baseline.toml");
    let secure = workspace().join("policies/secure.toml");
    let examples = workspace().join("examples");
    let out = msipprov_env(
        &[
            "check",
            "--policy",
            baseline.to_str().unwrap(),
            "--target",
            examples.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = msipprov_env(
        &[
            "check",
            "--policy",
            secure.to_str().unwrap(),
            "--target",
            examples.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = v["profiles"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec!["autoAnswer", "cmdIncomingCall", "transport", "SRTP"]
    );
}

#[test]
fn apply_records_what_its_policies_lock_for_the_phone() {
    use softphone::config::{LockRule, PolicyLocks};
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("profile");
    let ini_path = target.join("microsip.ini");
    let secure = workspace().join("policies/secure.toml");
    let secure = secure.to_str().unwrap();
    let out = apply(&target, &["--policy", secure]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("note: policy locks recorded: "),
        "{}",
        stdout(&out)
    );

    let locks = PolicyLocks::load_for_ini(&ini_path).unwrap();
    let log = locks
        .lock_for("Settings", "enableLog")
        .expect("enableLog locked");
    assert_eq!(log.rule, LockRule::Enforce);
    assert_eq!(log.value.as_deref(), Some("0"));
    assert_eq!(
        log.reason,
        "SIP logs hold phone numbers and digest challenges"
    );
    assert_eq!(log.policy, "secure");
    let transport = locks.lock_for("Account1", "transport").unwrap();
    assert_eq!(transport.value.as_deref(), Some("tls"));
    assert_eq!(
        locks.lock_for("Settings", "denyIncoming"),
        None,
        "a default is the user's choice"
    );

    // The same run again changes nothing, the state included.
    let state = target.join(".msipprov/state.json");
    let before = std::fs::metadata(&state).unwrap().modified().unwrap();
    let again = apply(&target, &["--policy", secure]);
    assert!(
        stdout(&again).starts_with("unchanged"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        std::fs::metadata(&state).unwrap().modified().unwrap(),
        before
    );

    // Without --policy the profile is no longer under one.
    let out = apply(&target, &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "changed", "{v}");
    assert!(PolicyLocks::load_for_ini(&ini_path).unwrap().is_empty());

    // A policy the files already meet changes only the locks: still a change.
    let policy = write_policy(
        dir.path(),
        "name = \"no-hooks\"\n[Settings]\ncmdCallEnd = { forbid = true, reason = \"no hooks\" }\n",
    );
    let ini_before = std::fs::read(&ini_path).unwrap();
    let out = apply(&target, &["--policy", &policy, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "changed", "{v}");
    assert_eq!(v["files"][0]["status"], "unchanged", "{v}");
    assert_eq!(std::fs::read(&ini_path).unwrap(), ini_before);
    let locks = PolicyLocks::load_for_ini(&ini_path).unwrap();
    assert_eq!(locks.len(), 1);
    let hook = locks.lock_for("SETTINGS", "cmdcallend").unwrap();
    assert_eq!(
        (hook.rule, hook.policy.as_str(), hook.reason.as_str()),
        (LockRule::Forbid, "no-hooks", "no hooks")
    );
}
