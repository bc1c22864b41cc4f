//! The call log as MicroSIP keeps it in microsip.ini (research/microsip.md
//! §2.3): `[Calls]` `N=number;name;type;time;duration;info`, a ring buffer
//! of keys 0..=999 whose newest key is `[Settings] callsLastKey` (default
//! -1, next = (last + 1) mod 1000), and `[Dialed]`, recently dialled
//! numbers with `0` the newest (10 kept, [`MAX_DIALED_KEY`]).
//!
//! Written through [`IniDocument`], so every other byte of the user's file
//! (encoding, line ends, comments, unknown keys) stays as it was, and
//! replaced atomically (a temporary file in the same folder, renamed over
//! it): a crash never leaves half a file. The file is read again before
//! each write, so edits made meanwhile are kept.

use std::path::Path;

use crate::config::calls::{CALLS_SECTION, DIALED_SECTION, MAX_CALL_KEY, MAX_DIALED_KEY};
use crate::config::edit::{self, replace_atomically, EditError};
use crate::config::settings::SECTION as SETTINGS_SECTION;
use crate::config::{CallRecord, Contact, Dialed, IniDocument, IniError};

/// One change to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogWrite {
    /// A finished call (its `key` is chosen when written).
    Call(CallRecord),
    /// A number the user dialled.
    Dialed(String),
}

/// The key after `[Settings] callsLastKey` (MicroSIP's default -1 gives 0).
fn next_call_key(doc: &IniDocument) -> u32 {
    let last = doc
        .get(SETTINGS_SECTION, "callsLastKey")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|k| (-1..=i64::from(MAX_CALL_KEY)).contains(k))
        .unwrap_or(-1);
    u32::try_from((last + 1) % (i64::from(MAX_CALL_KEY) + 1)).unwrap_or(0)
}

/// Adds `record` under the next key (replacing what the ring buffer held
/// there) and moves `callsLastKey` to it. Returns the key.
pub fn append_call(doc: &mut IniDocument, record: &CallRecord) -> Result<u32, IniError> {
    let key = next_call_key(doc);
    let record = CallRecord {
        key,
        ..record.clone()
    };
    doc.set(CALLS_SECTION, &key.to_string(), &record.to_value())?;
    doc.set(SETTINGS_SECTION, "callsLastKey", &key.to_string())?;
    Ok(key)
}

/// Puts `number` first in `[Dialed]` (an older copy of it is dropped),
/// keeping the newest [`MAX_DIALED_KEY`]` + 1`.
pub fn push_dialed(doc: &mut IniDocument, number: &str) -> Result<(), IniError> {
    let mut numbers = Dialed::list(doc);
    numbers.retain(|n| n != number);
    numbers.insert(0, number.to_owned());
    numbers.truncate(MAX_DIALED_KEY as usize + 1);
    // Rewritten in order so the file reads newest first, as key 0 is.
    for key in 0..=MAX_DIALED_KEY {
        doc.remove(DIALED_SECTION, &key.to_string());
    }
    for (key, n) in numbers.iter().enumerate() {
        doc.set(DIALED_SECTION, &key.to_string(), n)?;
    }
    Ok(())
}

/// Applies `writes` to the ini at `path` and replaces it atomically.
pub fn write(path: &Path, writes: &[LogWrite]) -> Result<(), EditError> {
    // The same lock as the window's settings and geometry writes: neither
    // reads the file the other is about to replace. No backup here: the log
    // is written after every call, and each write would overwrite the
    // backup of an edit worth keeping.
    let _guard = edit::lock();
    let mut doc = edit::load_ini(path)?;
    for w in writes {
        match w {
            LogWrite::Call(record) => append_call(&mut doc, record).map(drop),
            LogWrite::Dialed(number) => push_dialed(&mut doc, number),
        }
        .map_err(|source| EditError::Ini {
            path: path.to_owned(),
            source,
        })?;
    }
    replace_atomically(path, &doc.to_bytes()).map_err(|source| EditError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The number a call is logged under (§2.3): the remote user part alone
/// when its domain is empty or the account's and the URI has no
/// parameters; else `user@domain;params`; the domain when the user part is
/// empty; the account's `dialingPrefix` stripped (by `strip`).
pub fn logged_number(
    remote_uri: &str,
    account_domain: &str,
    strip: impl Fn(&str) -> &str,
) -> String {
    let uri = remote_uri
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let lower = uri.to_ascii_lowercase();
    let rest = ["sips:", "sip:", "tel:"]
        .iter()
        .find(|s| lower.starts_with(*s))
        .map_or(uri, |s| &uri[s.len()..]);
    let (user, host_params) = match rest.split_once('@') {
        Some((u, h)) => (percent_decode(u), h),
        None if lower.starts_with("tel:") => (percent_decode(rest), ""),
        None => (String::new(), rest),
    };
    let (host, params) = match host_params.split_once(';') {
        Some((h, p)) => (h, Some(p)),
        None => (host_params, None),
    };
    let own = host.is_empty()
        || host.eq_ignore_ascii_case(account_domain)
        || host
            .split(':')
            .next()
            .is_some_and(|h| h.eq_ignore_ascii_case(account_domain));
    let number = if user.is_empty() {
        host.to_owned()
    } else if own && params.is_none() {
        user
    } else {
        format!("{user}@{host_params}")
    };
    strip(&number).to_owned()
}

/// `%XX` escapes of a URI user part decoded (RFC 3261 §25.1); invalid
/// escapes and non-UTF-8 results are kept as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits make one byte: hi * 16 + lo < 256.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// The contact's name for `number`: the first contact whose `number` (or
/// `phone`/`mobile`) is it, compared without formatting characters.
pub fn contact_name<'c>(contacts: &'c [Contact], number: &str) -> Option<&'c str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect::<String>()
            .to_lowercase()
    };
    let wanted = norm(number);
    if wanted.is_empty() {
        return None;
    }
    contacts
        .iter()
        .find(|c| {
            [&c.number, &c.phone, &c.mobile]
                .iter()
                .any(|n| !n.is_empty() && norm(n) == wanted)
        })
        .map(Contact::display_name)
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CallKind, Encoding};

    fn record(number: &str, name: &str, kind: CallKind, duration: u64, info: &str) -> CallRecord {
        CallRecord {
            key: 0,
            number: number.into(),
            name: name.into(),
            kind,
            time: 1_756_109_189,
            duration,
            info: info.into(),
        }
    }

    #[test]
    fn calls_are_appended_as_microsip_writes_them() {
        let mut doc = IniDocument::from_text(
            Encoding::Utf16LeBom,
            "[Settings]\r\naccountId=1\r\ncallsLastKey=8\r\n[Calls]\r\n8=1;a;0;1;1;Call Ended\r\n",
        );
        let key = append_call(
            &mut doc,
            &record("9231096480", "test", CallKind::Incoming, 30, "Call Ended"),
        )
        .expect("append");
        assert_eq!(key, 9);
        assert_eq!(
            doc.to_text(),
            "[Settings]\r\naccountId=1\r\ncallsLastKey=9\r\n[Calls]\r\n8=1;a;0;1;1;Call Ended\r\n9=9231096480;test;1;1756109189;30;Call Ended\r\n"
        );
    }

    #[test]
    fn the_first_call_is_key_0_and_the_ring_wraps_after_999() {
        let mut doc = IniDocument::from_text(Encoding::Utf8, "[Settings]\r\n");
        assert_eq!(
            append_call(&mut doc, &record("1", "", CallKind::Missed, 0, "")),
            Ok(0)
        );
        assert_eq!(doc.get("Calls", "0"), Some("1;;2;1756109189;0;"));
        assert_eq!(doc.get("Settings", "callsLastKey"), Some("0"));
        let mut doc = IniDocument::from_text(
            Encoding::Utf8,
            "[Settings]\r\ncallsLastKey=999\r\n[Calls]\r\n0=old;;0;1;1;\r\n999=x;;0;1;1;\r\n",
        );
        assert_eq!(
            append_call(
                &mut doc,
                &record("new", "", CallKind::Outgoing, 5, "Call Ended")
            ),
            Ok(0)
        );
        assert_eq!(
            doc.get("Calls", "0"),
            Some("new;;0;1756109189;5;Call Ended")
        );
        assert_eq!(doc.get("Calls", "999"), Some("x;;0;1;1;"));
        assert_eq!(doc.get("Settings", "callsLastKey"), Some("0"));
    }

    #[test]
    fn dialed_keeps_ten_newest_first_without_repeats() {
        let mut doc = IniDocument::from_text(Encoding::Utf8, "[Dialed]\r\n0=111\r\n1=222\r\n");
        push_dialed(&mut doc, "222").expect("push");
        assert_eq!(doc.to_text(), "[Dialed]\r\n0=222\r\n1=111\r\n");
        for n in 0..12 {
            push_dialed(&mut doc, &format!("n{n}")).expect("push");
        }
        let list = Dialed::list(&doc);
        assert_eq!(list.len(), 10);
        assert_eq!(list[0], "n11");
        assert_eq!(list[9], "n2");
    }

    #[test]
    fn a_utf16_file_keeps_every_other_byte() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("microsip.ini");
        let before = "[Settings]\r\n; mine\r\naudioInputDevice=\"Микрофон\"\r\ncmdCallEnd=\"C:\\hooks\\end.exe\"\r\n[Account1]\r\nlabel=Офис\r\ndomain=pbx\r\n";
        let doc = IniDocument::from_text(Encoding::Utf16LeBom, before);
        std::fs::write(&path, doc.to_bytes()).expect("write");
        write(
            &path,
            &[
                LogWrite::Call(record("101", "Иван", CallKind::Incoming, 3, "Call Ended")),
                LogWrite::Dialed("5551234".into()),
            ],
        )
        .expect("log written");
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(&bytes[..2], &[0xFF, 0xFE], "still UTF-16 LE with BOM");
        let after = IniDocument::parse(&bytes).expect("parses").to_text();
        let expected = "[Settings]\r\n; mine\r\naudioInputDevice=\"Микрофон\"\r\ncmdCallEnd=\"C:\\hooks\\end.exe\"\r\ncallsLastKey=0\r\n[Account1]\r\nlabel=Офис\r\ndomain=pbx\r\n[Calls]\r\n0=101;Иван;1;1756109189;3;Call Ended\r\n[Dialed]\r\n0=5551234\r\n";
        assert_eq!(after, expected);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }

    #[test]
    fn numbers_are_logged_as_microsip_shows_them() {
        fn none(n: &str) -> &str {
            n
        }
        assert_eq!(
            logged_number("sip:101@pbx.example.com", "pbx.example.com", none),
            "101"
        );
        assert_eq!(
            logged_number("<sip:101@PBX.example.com:5060>", "pbx.example.com", none),
            "101"
        );
        assert_eq!(
            logged_number("sip:bob@other.org;user=phone", "pbx", none),
            "bob@other.org;user=phone"
        );
        assert_eq!(
            logged_number("sip:bob@other.org", "pbx", none),
            "bob@other.org"
        );
        assert_eq!(logged_number("sip:other.org", "pbx", none), "other.org");
        assert_eq!(
            logged_number("sip:%24(reboot)@pbx", "pbx", none),
            "$(reboot)"
        );
        fn strip(n: &str) -> &str {
            n.strip_prefix('9').unwrap_or(n)
        }
        assert_eq!(logged_number("sip:95551234@pbx", "pbx", strip), "5551234");
    }

    #[test]
    fn contacts_name_callers() {
        let contacts = vec![
            Contact {
                name: "Bob".into(),
                number: "+1 (555) 123".into(),
                ..Contact::default()
            },
            Contact {
                name: String::new(),
                number: "200".into(),
                mobile: "7001".into(),
                ..Contact::default()
            },
        ];
        assert_eq!(contact_name(&contacts, "+1555123"), Some("Bob"));
        assert_eq!(contact_name(&contacts, "7001"), Some("200"));
        assert_eq!(contact_name(&contacts, "999"), None);
        assert_eq!(contact_name(&contacts, ""), None);
    }
}
