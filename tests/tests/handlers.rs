//! URL handlers on Linux through the real binary, in a temporary HOME.

use std::path::Path;

use e2e::{msipprov_env, stderr, stdout};

fn run(home: &Path, args: &[&str]) -> std::process::Output {
    let home = home.to_str().unwrap();
    // Empty XDG variables: the XDG spec falls back to $HOME/.local/share and $HOME/.config.
    msipprov_env(
        args,
        &[
            ("HOME", home),
            ("XDG_DATA_HOME", ""),
            ("XDG_CONFIG_HOME", ""),
        ],
    )
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

#[test]
fn register_status_unregister_in_a_temporary_home() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mimeapps = h.join(".config/mimeapps.list");
    std::fs::create_dir_all(mimeapps.parent().unwrap()).unwrap();
    std::fs::write(&mimeapps, "[Default Applications]\ntext/html=firefox.desktop\nx-scheme-handler/tel=linphone.desktop\n").unwrap();
    let exe = "/opt/msipphone/bin/msipphone";

    let out = run(h, &["handlers", "register", "--exe", exe, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    let status: Vec<&str> = v["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        status,
        vec!["changed", "changed", "skipped", "changed"],
        "tel belongs to linphone"
    );
    assert!(v["schemes"][2]["why"]
        .as_str()
        .unwrap()
        .contains("linphone.desktop"));

    let desktop =
        std::fs::read_to_string(h.join(".local/share/applications/msipphone.desktop")).unwrap();
    assert!(desktop.contains("Exec=\"/opt/msipphone/bin/msipphone\" %u"));
    assert!(desktop
        .contains("MimeType=x-scheme-handler/sip;x-scheme-handler/sips;x-scheme-handler/callto;"));
    let list = std::fs::read_to_string(&mimeapps).unwrap();
    assert!(list.starts_with("[Default Applications]\ntext/html=firefox.desktop\nx-scheme-handler/tel=linphone.desktop\n"), "{list}");
    assert!(list.contains("x-scheme-handler/sip=msipphone.desktop\n"));

    let status = json(&run(h, &["handlers", "status", "--exe", exe, "--json"]));
    let owners: Vec<String> = status["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["owner"]["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(owners, vec!["us", "us", "other", "us"]);
    assert_eq!(status["schemes"][2]["owner"]["name"], "linphone.desktop");
    let text = run(h, &["handlers", "status", "--exe", exe]);
    assert!(
        stdout(&text).contains("tel     not registered  opens with: linphone.desktop"),
        "{}",
        stdout(&text)
    );

    // A second register changes nothing; --force takes tel.
    let again = json(&run(h, &["handlers", "register", "--exe", exe, "--json"]));
    assert!(again["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] != "changed"));
    let forced = json(&run(
        h,
        &[
            "handlers",
            "register",
            "--exe",
            exe,
            "--schemes",
            "tel",
            "--force",
            "--json",
        ],
    ));
    assert_eq!(forced["schemes"][0]["status"], "changed");

    let out = run(h, &["handlers", "unregister", "--exe", exe]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!h
        .join(".local/share/applications/msipphone.desktop")
        .exists());
    assert_eq!(
        std::fs::read_to_string(&mimeapps).unwrap(),
        "[Default Applications]\ntext/html=firefox.desktop\n"
    );
    let status = json(&run(h, &["handlers", "status", "--exe", exe, "--json"]));
    assert!(status["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["registered"] == false && s["owner"]["kind"] == "nobody"));

    let bad = run(h, &["handlers", "register", "--schemes", "http"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("unknown scheme"));
}

#[test]
fn apply_registers_the_templates_handlers_unless_told_not_to() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let target = h.join("profile");
    let vars = [
        "--set",
        "server=pbx.example.com",
        "--set",
        "username=u1",
        "--set",
        "password=pw-1234",
    ];
    let mut args = vec![
        "apply",
        "--target",
        target.to_str().unwrap(),
        "--no-handlers",
    ];
    args.extend(vars);
    let out = run(h, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!h
        .join(".local/share/applications/msipphone.desktop")
        .exists());

    let mut args = vec!["apply", "--target", target.to_str().unwrap()];
    args.extend(vars);
    let out = run(h, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("unchanged  ") && text.contains("changed    handler sip"),
        "{text}"
    );
    assert!(h
        .join(".local/share/applications/msipphone.desktop")
        .exists());
    let out = run(h, &args);
    assert!(
        stdout(&out).contains("unchanged  handler sip"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn emit_reg_writes_what_register_would() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msipphone.reg");
    let out = run(
        dir.path(),
        &[
            "handlers",
            "register",
            "--exe",
            "C:\\Program Files\\msipphone\\msipphone.exe",
            "--emit-reg",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
    let units: Vec<u16> = bytes[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16(&units).unwrap();
    assert!(text.starts_with("Windows Registry Editor Version 5.00\r\n"));
    for scheme in ["sip", "sips", "tel", "callto"] {
        assert!(text.contains(&format!("[HKEY_CURRENT_USER\\Software\\Classes\\{scheme}\\shell\\open\\command]\r\n@=\"\\\"C:\\\\Program Files\\\\msipphone\\\\msipphone.exe\\\" \\\"%1\\\"\"\r\n")), "{scheme}");
    }
    assert!(text.contains("[HKEY_CURRENT_USER\\Software\\RegisteredApplications]\r\n\"msipphone\"=\"Software\\\\msipphone\\\\Capabilities\"\r\n"));
    assert!(
        !dir.path().join(".local").exists(),
        "emitting registers nothing"
    );
}
