//! `msipprov lint` through the real binary.

use e2e::{example, msipprov, stderr, stdout, utf16le_bom};

#[test]
fn accepts_microsips_own_encoding() {
    let ini = example("microsip.ini");
    let bytes = std::fs::read(&ini).unwrap();
    // The sample really is what MicroSIP writes, or this test proves nothing.
    assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
    let units: Vec<u16> = bytes[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16(&units).unwrap();
    assert!(
        text.contains("\r\n") && !text.replace("\r\n", "").contains('\n'),
        "CRLF only"
    );
    assert!(text.contains("5=9787563142;Hard (Академическая);1;1718273852;0;"));
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .unwrap();
    assert_eq!(password.len(), 160);
    assert!(password.bytes().all(|b| b.is_ascii_hexdigit()));

    let out = msipprov(&[
        "lint",
        ini.to_str().unwrap(),
        example("Contacts.xml").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("2 files checked: 0 invalid, 0 errors, 0 warnings"));
}

#[test]
fn rejects_broken_files_with_their_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("microsip.ini");
    let text = "[Settings]\r\nEC=maybe\r\nsourcePort=99999\r\ngarbage line\r\n[Account1]\r\ndomain=example.com\r\ntransport=udpp\r\n[Account1]\r\n[Calls]\r\n3=123;Бухгалтерия;1;yesterday;0;\r\n";
    std::fs::write(&broken, utf16le_bom(text)).unwrap();
    let good = example("microsip.ini");
    let out = msipprov(&["lint", good.to_str().unwrap(), broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let f = broken.display();
    let expected = format!(
        "{f}:2: EC: \"maybe\" is not 0 or 1\n\
         {f}:3: sourcePort: 99999 is out of range (0 to 65535)\n\
         {f}:4: \"garbage line\" is neither a [section], a key=value line nor a ; comment\n\
         {f}:7: transport: \"udpp\" is not one of udp, tcp, tls (or empty)\n\
         {f}:8: duplicate section [Account1] (first at line 5); MicroSIP reads only the first\n\
         {f}:10: 3: time \"yesterday\" is not a whole number\n"
    );
    assert_eq!(stdout(&out), expected);
    assert!(stderr(&out).contains("2 files checked: 1 invalid, 6 errors"));
}

#[test]
fn json_output_is_an_array_of_the_same_problems() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("microsip.ini");
    std::fs::write(
        &broken,
        utf16le_bom("[Account1]\r\ndomain=x\r\ntransport=udpp\r\n"),
    )
    .unwrap();
    let out = msipprov(&["lint", "--json", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["file"], broken.to_str().unwrap());
    assert_eq!(items[0]["line"], 3);
    assert_eq!(items[0]["section"], "Account1");
    assert_eq!(items[0]["key"], "transport");
    assert_eq!(items[0]["severity"], "error");
    assert_eq!(
        items[0]["message"],
        "\"udpp\" is not one of udp, tcp, tls (or empty)"
    );

    let ok = msipprov(&["lint", "--json", example("microsip.ini").to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&ok.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn the_kind_comes_from_the_content_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    // Contacts XML under an .ini name, with a broken flag on line 3.
    let xml_named_ini = dir.path().join("contacts.ini");
    std::fs::write(
        &xml_named_ini,
        "<?xml version=\"1.0\"?>\r\n<contacts>\r\n<contact name=\"A\" number=\"1\" presence=\"yes\"/>\r\n</contacts>\r\n",
    )
    .unwrap();
    // An ini under an .xml name, with a bad enum on line 2.
    let ini_named_xml = dir.path().join("settings.xml");
    std::fs::write(
        &ini_named_xml,
        utf16le_bom("[Settings]\r\nautoAnswer=always\r\n"),
    )
    .unwrap();
    let out = msipprov(&[
        "lint",
        "--json",
        xml_named_ini.to_str().unwrap(),
        ini_named_xml.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2, "{v:#}");
    assert_eq!(items[0]["line"], 3);
    assert_eq!(items[0]["key"], "presence");
    assert_eq!(items[1]["line"], 2);
    assert_eq!(items[1]["key"], "autoAnswer");
}

#[test]
fn malformed_xml_is_located_by_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("Contacts.xml");
    std::fs::write(&xml, "<?xml version=\"1.0\"?>\r\n<contacts>\r\n<contact name=\"A\" number=\"1\">\r\n</contacts>\r\n").unwrap();
    let out = msipprov(&["lint", xml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let prefix = format!("{}:4:", xml.display());
    assert!(text.starts_with(&prefix), "{text}");
    let column: usize = text[prefix.len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(column >= 1, "{text}");
}

#[test]
fn unreadable_files_and_bad_usage() {
    let out = msipprov(&["lint", "/nonexistent/microsip.ini"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("/nonexistent/microsip.ini:0: cannot read the file"));
    let out = msipprov(&["lint"]);
    assert_eq!(out.status.code(), Some(2), "no file is a usage error");
}
