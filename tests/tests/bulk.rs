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
