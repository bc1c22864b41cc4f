//! Byte-exact round trips of whole files: what a user's file looks like
//! after we read it and write it back, untouched or with one key changed.

use softphone::config::{Encoding, IniDocument};

fn sample() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/microsip.ini"
    ))
    .expect("the sample ships with the repository")
}

/// Lines of decoded text, each with its ending.
fn lines(bytes: &[u8]) -> Vec<String> {
    let doc = IniDocument::parse(bytes).unwrap();
    doc.lines()
        .iter()
        .map(|l| format!("{}{}", l.text(), l.ending().as_str()))
        .collect()
}

fn assert_one_line_diff(before: &[u8], after: &[u8], expected_new_line: &str) {
    let (a, b) = (lines(before), lines(after));
    assert_eq!(a.len(), b.len(), "no line added or removed");
    let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert_eq!(changed.len(), 1, "exactly one line differs: {changed:?}");
    assert_eq!(b[changed[0]].trim_end(), expected_new_line);
}

#[test]
fn microsip_utf16_file_round_trips_byte_for_byte() {
    let bytes = sample();
    assert_eq!(
        &bytes[..2],
        &[0xFF, 0xFE],
        "the sample is in MicroSIP's encoding"
    );
    let doc = IniDocument::parse(&bytes).unwrap();
    assert_eq!(doc.encoding(), Encoding::Utf16LeBom);
    assert_eq!(doc.to_bytes(), bytes);
}

#[test]
fn handmade_utf8_files_round_trip_byte_for_byte() {
    let files: [&[u8]; 4] = [
        // LF, comments, blank lines, spaces, unknown keys and sections, no final newline.
        b"; provisioned by hand\n\n[Settings]\nEC = 1\n  VAD=0\ncustomKey=keep me\n\n[Custom]\nx=1\n# the end\nlast=line",
        // UTF-8 with BOM and CRLF.
        b"\xEF\xBB\xBF[Settings]\r\naudioInputDevice=\"Mic\"\r\n\r\n[Account1]\r\ndomain=example.com\r\n",
        // Mixed line endings.
        b"[Settings]\r\nEC=1\nVAD=0\r\n",
        // ANSI (Windows-1252) as old scripts wrote it.
        b"[Account1]\r\nlabel=B\xfcro M\xfcnchen\r\ndomain=example.com\r\n",
    ];
    for bytes in files {
        let doc = IniDocument::parse(bytes).unwrap();
        assert_eq!(doc.to_bytes(), bytes, "{}", String::from_utf8_lossy(bytes));
    }
}

#[test]
fn a_one_key_edit_is_a_one_line_diff_in_utf16() {
    let before = sample();
    let mut doc = IniDocument::parse(&before).unwrap();
    doc.set("Account1", "transport", "tls").unwrap();
    let after = doc.to_bytes();
    assert_eq!(&after[..2], &[0xFF, 0xFE], "still UTF-16 LE with BOM");
    assert_one_line_diff(&before, &after, "transport=tls");
}

#[test]
fn a_one_key_edit_keeps_the_style_of_a_handmade_file() {
    let before = b"; ours\n[Settings]\nEC = 1\nVAD=0\n\n[Custom]\nx=1\n".to_vec();
    let mut doc = IniDocument::parse(&before).unwrap();
    doc.set("settings", "ec", "0").unwrap();
    let after = doc.to_bytes();
    assert_one_line_diff(&before, &after, "EC = 0");
    assert_eq!(
        after,
        b"; ours\n[Settings]\nEC = 0\nVAD=0\n\n[Custom]\nx=1\n"
    );
}

#[test]
fn a_new_file_is_written_the_way_microsip_writes_one() {
    let mut doc = IniDocument::new();
    doc.set("Settings", "accountId", "1").unwrap();
    doc.set("Account1", "label", "Офис").unwrap();
    let mut expected = vec![0xFF, 0xFE];
    for unit in "[Settings]\r\naccountId=1\r\n[Account1]\r\nlabel=Офис\r\n".encode_utf16() {
        expected.extend_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(doc.to_bytes(), expected);
}
