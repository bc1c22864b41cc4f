//! `msipprov bulk` through the real binary.

use e2e::{msipprov_env, stderr, stdout, templates, workspace};
use softphone::config::{Account, IniDocument};

#[test]
fn every_good_row_is_written_and_bad_rows_are_reported_by_line_and_user() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.csv");
    let mut csv = String::from("\u{feff}username;password;display_name;server\r\n");
    for i in 0..30 {
        csv.push_str(&format!(
            "u{i:02};pw-{i};Пользователь {i};pbx.example.com\r\n"
        ));
    }
    csv.push_str("bob;;Bob;pbx.example.com\r\n"); // line 32: no password
    csv.push_str("u05;pw;Dup;pbx.example.com\r\n"); // line 33: duplicate user
    std::fs::write(&users, csv).unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "bulk",
        "--users",
        users.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--jobs",
        "2",
    ];
    let out = msipprov_env(&args, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let prefix = users.display().to_string();
    assert!(
        text.contains(&format!("failed     {prefix}:32 (bob): "))
            && text.contains("missing required variable \"password\""),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "failed     {prefix}:33 (u05): duplicate user: line 7"
        )),
        "{text}"
    );
    assert!(
        stderr(&out).contains("30 written (0 unchanged), 2 failed"),
        "{}",
        stderr(&out)
    );
    let doc =
        IniDocument::parse(&std::fs::read(out_dir.join("u17/microsip.ini")).unwrap()).unwrap();
    let account = &Account::list(&doc)[0];
    assert_eq!(account.keys.username, "u17");
    assert_eq!(account.keys.display_name, "Пользователь 17");
    assert!(!out_dir.join("bob").join("microsip.ini").exists());

    // Idempotent, and a JSON report per row.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let again = msipprov_env(&json_args, &[]);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["summary"]["rows"], 32);
    assert_eq!(v["summary"]["unchanged"], 30);
    assert_eq!(v["summary"]["failed"], 2);
    assert_eq!(v["rows"][31]["line"], 33);
    assert_eq!(v["rows"][31]["status"], "failed");
}

#[test]
fn bulk_applies_policies_and_the_corporate_template() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.csv");
    std::fs::write(
        &users,
        "username,password,display_name\nanna,pw-1,Anna\nboris,pw-2,Boris\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let t = templates();
    let secure = workspace().join("policies/secure.toml");
    let out = msipprov_env(
        &[
            "bulk",
            "--users",
            users.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--templates-dir",
            t.to_str().unwrap(),
            "--template",
            "corporate",
            "--vars",
            t.join("corporate/example.vars.toml").to_str().unwrap(),
            "--policy",
            secure.to_str().unwrap(),
            "--layout",
            "{{ username | upper }}",
            "--quiet",
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
    assert_eq!(stdout(&out), "", "--quiet prints no per-row lines");
    let doc =
        IniDocument::parse(&std::fs::read(out_dir.join("BORIS/microsip.ini")).unwrap()).unwrap();
    assert_eq!(doc.get("Account1", "username"), Some("boris"));
    assert_eq!(doc.get("Account1", "transport"), Some("tls"));
    assert_eq!(
        doc.get("Settings", "autoAnswer"),
        Some(""),
        "secure.toml enforces it"
    );
    assert!(out_dir.join("ANNA/Contacts.xml").exists());
}

/// The names in a folder, sorted.
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn three_users(dir: &std::path::Path) -> std::path::PathBuf {
    let users = dir.join("users.csv");
    std::fs::write(
        &users,
        "username;password;server\nu00;pw-0;pbx.example.com\nu01;pw-1;pbx.example.com\nu02;pw-2;pbx.example.com\n",
    )
    .unwrap();
    users
}

#[test]
fn a_fresh_profile_that_fails_part_way_leaves_nothing_behind() {
    // The second file of u01 (its state), then the rename of u02's folder.
    for (fault, user, line) in [
        ("new-folder:1@u01", "u01", 3),
        ("new-folder:2@u02", "u02", 4),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let users = three_users(dir.path());
        let out_dir = dir.path().join("out");
        let out = msipprov_env(
            &[
                "bulk",
                "--users",
                users.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
            &[("MSIPPROV_TEST_FAULT", fault)],
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let prefix = users.display().to_string();
        assert!(
            stdout(&out).contains(&format!("failed     {prefix}:{line} ({user}): "))
                && stdout(&out).contains("injected fault"),
            "{}",
            stdout(&out)
        );
        assert!(stderr(&out).contains("2 written (0 unchanged), 1 failed"));
        // No part of the failed profile, no staging folder: only the others, whole.
        let expected: Vec<String> = ["u00", "u01", "u02"]
            .iter()
            .filter(|u| **u != user)
            .map(|u| u.to_string())
            .collect();
        assert_eq!(listing(&out_dir), expected, "{fault}");
        for u in &expected {
            assert_eq!(
                listing(&out_dir.join(u)),
                vec![".msipprov", "microsip.ini"],
                "{u}"
            );
            assert_eq!(
                listing(&out_dir.join(u).join(".msipprov")),
                vec!["state.json"]
            );
        }
        // The next run writes it.
        let again = msipprov_env(
            &[
                "bulk",
                "--users",
                users.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
        assert!(stderr(&again).contains("3 written (2 unchanged), 0 failed"));
        assert_eq!(listing(&out_dir), vec!["u00", "u01", "u02"]);
    }
}

#[test]
fn staging_folders_left_by_a_killed_run_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let users = three_users(dir.path());
    let out_dir = dir.path().join("out");
    // A run that was killed while writing u01: its process is gone.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = out_dir.join(format!(".u01.msipprov-{dead}-5.tmp"));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("microsip.ini"), b"half").unwrap();
    // One of a run still going (this test's own process) is not touched.
    let live = format!(".u09.msipprov-{}-0.tmp", std::process::id());
    std::fs::create_dir_all(out_dir.join(&live)).unwrap();
    let out = msipprov_env(
        &[
            "bulk",
            "--users",
            users.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        listing(&out_dir),
        vec![live, "u00".into(), "u01".into(), "u02".into()]
    );
    let doc =
        IniDocument::parse(&std::fs::read(out_dir.join("u01/microsip.ini")).unwrap()).unwrap();
    assert_eq!(doc.get("Account1", "username"), Some("u01"));
}

#[test]
fn existing_profiles_are_merged_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let users = three_users(dir.path());
    let out_dir = dir.path().join("out");
    // u01 exists with the user's own settings and an old server.
    let profile = out_dir.join("u01");
    std::fs::create_dir_all(&profile).unwrap();
    std::fs::write(
        profile.join("microsip.ini"),
        "[Settings]\r\naccountId=1\r\nringingSound=C:\\ring.wav\r\n[Account1]\r\nserver=old.example.com\r\ndomain=old.example.com\r\nusername=u01\r\n",
    )
    .unwrap();
    let out = msipprov_env(
        &[
            "bulk",
            "--users",
            users.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = IniDocument::parse(&std::fs::read(profile.join("microsip.ini")).unwrap()).unwrap();
    assert_eq!(doc.get("Account1", "server"), Some("pbx.example.com"));
    assert_eq!(
        doc.get("Settings", "ringingSound"),
        Some("C:\\ring.wav"),
        "the user's own key stays"
    );
    assert!(profile.join(".msipprov/state.json").exists());
    assert_eq!(listing(&out_dir), vec!["u00", "u01", "u02"]);
}
