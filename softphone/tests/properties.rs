//! Property tests: the loaders never panic on any bytes, documents survive
//! write-then-read, and our reading agrees with rust-ini on plain files.

use proptest::prelude::*;
use softphone::config::{detect_kind, encoding, validate_ini, ContactList, Encoding, IniDocument};

fn any_encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Utf16LeBom),
        Just(Encoding::Utf8Bom),
        Just(Encoding::Utf8),
    ]
}

/// Lines that look like INI: sections, entries, comments, blanks and junk,
/// with the characters that trip parsers (quotes, `=`, `;`, `\`, Cyrillic).
fn ini_line() -> impl Strategy<Value = String> {
    let word = "[A-Za-z0-9_]{1,12}";
    let value = "[ -~а-яё\"'\\\\]{0,24}";
    prop_oneof![
        word.prop_map(|w| format!("[{w}]")),
        (word, value).prop_map(|(k, v)| format!("{k}={v}")),
        (word, value).prop_map(|(k, v)| format!("  {k} = {v}  ")),
        value.prop_map(|v| format!("; {v}")),
        Just(String::new()),
        "[ -~]{0,30}",
    ]
}

fn ini_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((ini_line(), prop_oneof![Just("\r\n"), Just("\n")]), 0..40),
        any::<bool>(),
    )
        .prop_map(|(lines, final_newline)| {
            let mut text: String = lines.iter().map(|(l, e)| format!("{l}{e}")).collect();
            if !final_newline {
                text.truncate(text.trim_end_matches(['\r', '\n']).len());
            }
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_loaders(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = IniDocument::parse(&bytes);
        let _ = validate_ini(&bytes);
        let _ = ContactList::parse(&bytes);
        let _ = ContactList::validate(&bytes);
        let _ = detect_kind(&bytes, None);
    }

    #[test]
    fn arbitrary_utf16_never_panics(units in prop::collection::vec(any::<u16>(), 0..256)) {
        let mut bytes = vec![0xFF, 0xFE];
        for u in units { bytes.extend_from_slice(&u.to_le_bytes()); }
        let _ = validate_ini(&bytes);
    }

    #[test]
    fn readable_bytes_are_written_back_unchanged(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(doc) = IniDocument::parse(&bytes) {
            prop_assert_eq!(doc.to_bytes(), bytes);
        }
    }

    #[test]
    fn any_document_written_then_read_is_the_same_document(text in ini_text(), enc in any_encoding()) {
        let doc = IniDocument::from_text(enc, &text);
        let bytes = doc.to_bytes();
        let again = IniDocument::parse(&bytes).unwrap();
        prop_assert_eq!(&again, &doc);
        prop_assert_eq!(again.to_bytes(), bytes);
    }

    #[test]
    fn set_changes_one_key_and_get_reads_it_back(
        text in ini_text(),
        section in "[A-Za-z][A-Za-z0-9]{0,8}",
        key in "[A-Za-z][A-Za-z0-9]{0,8}",
        value in "[ -~а-я]{0,20}",
    ) {
        let mut doc = IniDocument::from_text(Encoding::Utf16LeBom, &text);
        let before = doc.clone();
        doc.set(&section, &key, &value).unwrap();
        let reread = IniDocument::parse(&doc.to_bytes()).unwrap();
        let expected = softphone::config::document::unquote(value.trim());
        prop_assert_eq!(reread.get(&section, &key), Some(expected));
        // Every other key reads as before.
        for name in before.section_names() {
            for e in before.entries(name) {
                let (k, v) = (e.key, e.value);
                let same_key = name.eq_ignore_ascii_case(&section) && k.eq_ignore_ascii_case(&key);
                if !same_key && before.get(name, k) == Some(v) {
                    prop_assert_eq!(reread.get(name, k), Some(v));
                }
            }
        }
    }

    #[test]
    fn plain_files_read_the_same_as_rust_ini(
        sections in prop::collection::btree_map("[a-z]{1,8}", prop::collection::btree_map("[a-z]{1,8}", "[A-Za-z0-9 ./:@-]{0,16}", 0..6), 1..5)
    ) {
        let mut text = String::new();
        for (name, keys) in &sections {
            text.push_str(&format!("[{name}]\r\n"));
            for (k, v) in keys { text.push_str(&format!("{k}={v}\r\n")); }
        }
        let bytes = encoding::encode(&text, Encoding::Utf16LeBom);
        let ours = IniDocument::parse(&bytes).unwrap();
        let opt = ini::ParseOption { enabled_quote: false, enabled_escape: false, ..Default::default() };
        let oracle = ini::Ini::load_from_str_opt(&text, opt).unwrap();
        for (name, keys) in &sections {
            for k in keys.keys() {
                prop_assert_eq!(ours.get(name, k), oracle.get_from(Some(name.as_str()), k), "[{}] {}", name, k);
            }
        }
    }
}

fn contact() -> impl Strategy<Value = softphone::config::Contact> {
    let text = "[ -~а-яё\t<>&'\"]{0,16}";
    (
        prop::collection::vec(text, 14),
        any::<[bool; 3]>(),
        prop::collection::btree_map("x-[a-z]{1,6}", text, 0..3),
    )
        .prop_map(|(fields, flags, extra)| {
            let f = |i: usize| fields[i].clone();
            softphone::config::Contact {
                name: f(0),
                number: f(1),
                firstname: f(2),
                lastname: f(3),
                phone: f(4),
                mobile: f(5),
                email: f(6),
                address: f(7),
                city: f(8),
                state: f(9),
                zip: f(10),
                comment: f(11),
                id: f(12),
                info: f(13),
                presence: flags[0],
                starred: flags[1],
                directory: flags[2],
                extra: extra.into_iter().collect(),
            }
        })
}

proptest! {
    #[test]
    fn any_contact_list_written_then_read_is_the_same(contacts in prop::collection::vec(contact(), 0..8)) {
        let list = ContactList { contacts };
        let bytes = list.to_bytes();
        prop_assert!(bytes.starts_with(b"<?xml version=\"1.0\"?>\r\n"));
        prop_assert!(ContactList::validate(&bytes).iter().all(|d| !d.is_error()));
        prop_assert_eq!(ContactList::parse(&bytes).unwrap(), list);
    }
}

#[test]
fn the_shipped_contacts_file_round_trips_byte_for_byte() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/Contacts.xml"
    ))
    .unwrap();
    let list = ContactList::parse(&bytes).unwrap();
    assert_eq!(list.contacts[1].name, "O'Brien & Sons <Sales>");
    assert_eq!(list.contacts[2].city, "Москва");
    assert_eq!(list.to_bytes(), bytes);
}
