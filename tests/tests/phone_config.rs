//! `msipphone --print-config`: the phone loads the provisioned files through
//! the same `softphone::config` as the provisioner.

use e2e::{example, msipphone, stderr, utf16le_bom};

#[test]
fn the_phone_loads_a_microsip_profile() {
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("microsip.ini");
    std::fs::copy(example("microsip.ini"), &ini).unwrap();
    std::fs::copy(example("Contacts.xml"), dir.path().join("Contacts.xml")).unwrap();
    let out = msipphone(&["--print-config", "--config", ini.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["encoding"], "utf16-le-bom");
    assert_eq!(
        v["settings"]["audioCodecs"],
        "opus/48000/2 G722/16000/1 PCMA/8000/1 PCMU/8000/1"
    );
    assert_eq!(
        v["settings"]["audioOutputDevice"],
        "Speakers (Realtek(R) Audio)"
    );
    let account = &v["accounts"][0];
    assert_eq!(account["number"], 1);
    assert_eq!(account["label"], "Офис Москва");
    assert_eq!(account["transport"], "udp");
    assert_eq!(account["password"]["kind"], "encrypted");
    let calls = v["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 6, "the null entry is skipped");
    assert!(calls.iter().any(|c| c["name"] == "Hard (Академическая)"));
    assert_eq!(v["dialed"][0], "9231096480");
    let contacts = v["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 3);
    assert_eq!(contacts[1]["name"], "O'Brien & Sons <Sales>");
}

#[test]
fn a_plain_password_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("microsip.ini");
    std::fs::write(
        &ini,
        utf16le_bom(
            "[Account1]\r\ndomain=example.com\r\nusername=alice\r\npassword=s3cret-Pa55\r\n",
        ),
    )
    .unwrap();
    let out = msipphone(&["--print-config", "--config", ini.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("s3cret-Pa55"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accounts"][0]["password"]["kind"], "plain");
}

#[test]
fn problems_in_the_config_are_reported_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("microsip.ini");
    std::fs::write(
        &ini,
        utf16le_bom("[Account1]\r\ndomain=example.com\r\ntransport=udpp\r\n"),
    )
    .unwrap();
    let out = msipphone(&["--print-config", "--config", ini.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the phone still starts, as MicroSIP would"
    );
    assert!(stderr(&out).contains(&format!("{}:3: transport:", ini.display())));
    let missing = dir.path().join("none.ini");
    let out = msipphone(&["--print-config", "--config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"));
}
