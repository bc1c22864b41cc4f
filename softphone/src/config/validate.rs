//! Validation: every problem in a file in one pass, each located by line and
//! key, worded so an admin knows what MicroSIP would do with it.

use std::path::Path;

use super::account::{self, ACCOUNT_KEYS};
use super::calls::{CallRecord, CALLS_SECTION, DIALED_SECTION, MAX_CALL_KEY, MAX_DIALED_KEY};
use super::contacts::ContactList;
use super::diagnostic::{Diagnostic, Severity};
use super::document::{Entry, IniDocument, LineKind};
use super::encoding::{DecodeError, Encoding};
use super::kind::{detect_kind, FileKind};
use super::schema::{self, KeySpec};
use super::settings::{self, LEGACY_KEYS, SETTINGS_KEYS};
use super::value::parse_strict_int;

/// Sections MicroSIP knows besides `[AccountN]`.
const KNOWN_SECTIONS: &[&str] = &["Settings", "Calls", "Dialed", "Shortcuts", "Contacts"];

/// Reads and checks a file of either kind; every diagnostic names `path`.
pub fn validate_file(path: &Path) -> std::io::Result<(FileKind, Vec<Diagnostic>)> {
    let bytes = std::fs::read(path)?;
    let kind = detect_kind(&bytes, Some(path));
    let diagnostics = match kind {
        FileKind::Ini => validate_ini(&bytes).1,
        FileKind::Contacts => validate_contacts(&bytes),
    };
    Ok((
        kind,
        diagnostics.into_iter().map(|d| d.in_file(path)).collect(),
    ))
}

/// Checks a contacts XML file.
pub fn validate_contacts(bytes: &[u8]) -> Vec<Diagnostic> {
    ContactList::validate(bytes)
}

/// Checks a `microsip.ini`. Returns the document when the bytes are text,
/// with every problem found, sorted by line.
pub fn validate_ini(bytes: &[u8]) -> (Option<IniDocument>, Vec<Diagnostic>) {
    let doc = match IniDocument::parse(bytes) {
        Ok(doc) => doc,
        Err(super::document::IniError::Decode(e)) => {
            return (None, vec![decode_diagnostic(&e)]);
        }
        Err(e) => return (None, vec![Diagnostic::error(0, e.to_string())]),
    };
    let out = validate_document(&doc);
    (Some(doc), out)
}

/// Checks a document already in memory, as [`validate_ini`] checks the
/// bytes it would be written as (a document's bytes read back are the same
/// document), sorted by line.
pub fn validate_document(doc: &IniDocument) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    check_encoding(doc, &mut out);
    check_lines(doc, &mut out);
    check_sections(doc, &mut out);
    check_accounts(doc, &mut out);
    out.sort_by_key(|d| (d.line, d.severity));
    out
}

fn decode_diagnostic(e: &DecodeError) -> Diagnostic {
    let line = match e {
        DecodeError::UnpairedSurrogate { line, .. } | DecodeError::NulWithoutBom { line } => *line,
        DecodeError::Utf16Be | DecodeError::OddUtf16Length(_) => 0,
    };
    Diagnostic::error(line, e.to_string())
}

fn check_encoding(doc: &IniDocument, out: &mut Vec<Diagnostic>) {
    let first_non_ascii = || {
        doc.lines()
            .iter()
            .position(|l| !l.text().is_ascii())
            .map(|i| i + 1)
    };
    match doc.encoding() {
        Encoding::Utf16LeBom => {}
        Encoding::Utf8 | Encoding::Utf8Bom => {
            if let Some(line) = first_non_ascii() {
                out.push(Diagnostic::error(
                    line,
                    format!(
                        "the file is {} with non-ASCII text; MicroSIP reads a file without the UTF-16 LE BOM in the ANSI code page and garbles it: save it as UTF-16 LE with BOM (as msipprov writes)",
                        doc.encoding().name()
                    ),
                ));
            }
            if doc.encoding() == Encoding::Utf8Bom
                && matches!(
                    doc.lines().first().map(|l| l.kind()),
                    Some(LineKind::Section { .. })
                )
            {
                out.push(Diagnostic::error(
                    1,
                    "the UTF-8 BOM becomes part of line 1 for Windows, so MicroSIP does not see this section header: save the file as UTF-16 LE with BOM",
                ));
            }
        }
        Encoding::Ansi => {
            if let Some(line) = first_non_ascii() {
                out.push(Diagnostic::warning(
                    line,
                    "the file is not UTF-8 and has no UTF-16 BOM, so it is read in the ANSI code page: non-ASCII text depends on each machine's language settings; UTF-16 LE with BOM is safe everywhere",
                ));
            }
        }
    }
}

fn check_lines(doc: &IniDocument, out: &mut Vec<Diagnostic>) {
    for (i, line) in doc.lines().iter().enumerate() {
        if *line.kind() == LineKind::Invalid {
            out.push(Diagnostic::error(
                i + 1,
                format!(
                    "{:?} is neither a [section], a key=value line nor a ; comment",
                    truncate(line.text().trim(), 60)
                ),
            ));
        }
    }
    for Entry { key, line, .. } in doc.prelude_entries() {
        out.push(
            Diagnostic::warning(line, "key before any [section]; MicroSIP ignores it")
                .with_key(None, key),
        );
    }
}

fn check_sections(doc: &IniDocument, out: &mut Vec<Diagnostic>) {
    for section in doc.all_sections() {
        let (name, header_line, entries) = (section.name, section.line, section.entries);
        // The document indexes the first of each section (names folded as
        // Windows compares them): any other is a duplicate.
        let first = doc.section_line(name).unwrap_or(header_line);
        if first != header_line {
            out.push(
                Diagnostic::error(
                    header_line,
                    format!("duplicate section [{name}] (first at line {first}); MicroSIP reads only the first"),
                )
                .with_section(name),
            );
            continue;
        }
        // Whether each entry is the first of its key in the section, from
        // the document's index (the first section of a name is this one).
        let first_of_key: Vec<Option<usize>> = entries
            .iter()
            .map(|e| doc.line_of(name, e.key).filter(|&l| l != e.line))
            .collect();
        check_duplicate_keys(name, &entries, &first_of_key, out);
        if lower_eq(name, "settings") {
            check_keys(
                name,
                &entries,
                &first_of_key,
                SETTINGS_KEYS,
                LEGACY_KEYS,
                out,
            );
        } else if account::account_number(name).is_some() {
            check_keys(name, &entries, &first_of_key, ACCOUNT_KEYS, &[], out);
        } else if lower_eq(name, CALLS_SECTION) {
            check_calls(name, &entries, out);
        } else if lower_eq(name, DIALED_SECTION) {
            check_dialed(name, &entries, out);
        } else if !KNOWN_SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            let known = KNOWN_SECTIONS.iter().copied().chain(["Account1"]);
            let hint = if name.to_lowercase().starts_with("account") {
                Some(
                    "MicroSIP numbers accounts [Account1], [Account2], ... with no leading zeros"
                        .to_owned(),
                )
            } else {
                schema::suggest(name, known).map(|s| format!("did you mean [{s}]?"))
            };
            if let Some(hint) = hint {
                out.push(
                    Diagnostic::warning(header_line, format!("unknown section [{name}]; {hint}"))
                        .with_section(name),
                );
            }
        }
    }
}

/// `name.to_lowercase() == known.to_lowercase()`, without allocating for
/// ASCII names (nearly all).
fn lower_eq(name: &str, known: &str) -> bool {
    if name.is_ascii() && known.is_ascii() {
        name.eq_ignore_ascii_case(known)
    } else {
        name.to_lowercase() == known.to_lowercase()
    }
}

/// `first_of_key[i]`: the line of the first entry with the key of
/// `entries[i]` when that is another entry, `None` when it is this one.
fn check_duplicate_keys(
    section: &str,
    entries: &[Entry<'_>],
    first_of_key: &[Option<usize>],
    out: &mut Vec<Diagnostic>,
) {
    for (&Entry { key, line, .. }, first) in entries.iter().zip(first_of_key) {
        if let Some(first_line) = first {
            out.push(
                Diagnostic::error(
                    line,
                    format!(
                        "duplicate key (first at line {first_line}); MicroSIP reads only the first"
                    ),
                )
                .with_key(Some(section), key),
            );
        }
    }
}

fn check_keys(
    section: &str,
    entries: &[Entry<'_>],
    first_of_key: &[Option<usize>],
    table: &'static [KeySpec],
    legacy: &[&str],
    out: &mut Vec<Diagnostic>,
) {
    for (&Entry { key, value, line }, first) in entries.iter().zip(first_of_key) {
        if first.is_some() {
            continue; // a duplicate: reported already, and MicroSIP never reads it
        }
        let Some(spec) = schema::find(table, key) else {
            if !legacy.iter().any(|l| l.eq_ignore_ascii_case(key)) {
                if let Some(close) = schema::suggest(key, table.iter().map(|s| s.name)) {
                    out.push(
                        Diagnostic::warning(line, format!("unknown key; did you mean {close}?"))
                            .with_key(Some(section), key),
                    );
                }
            }
            continue;
        };
        if let Some(problem) = spec.ty.check(value) {
            let d = match problem.severity {
                Severity::Error => Diagnostic::error(line, problem.message),
                Severity::Warning => Diagnostic::warning(line, problem.message),
            };
            out.push(d.with_key(Some(section), spec.name));
        }
        let len = value.encode_utf16().count();
        if len > spec.max_len {
            out.push(
                Diagnostic::error(
                    line,
                    format!(
                        "the value is {len} characters; MicroSIP reads at most {} and cuts the rest",
                        spec.max_len
                    ),
                )
                .with_key(Some(section), spec.name),
            );
        }
    }
}

fn check_calls(section: &str, entries: &[Entry<'_>], out: &mut Vec<Diagnostic>) {
    for &Entry { key, value, line } in entries {
        let number = parse_strict_int(key).filter(|n| (0..=i64::from(MAX_CALL_KEY)).contains(n));
        let Some(number) = number.and_then(|n| u32::try_from(n).ok()) else {
            out.push(
                Diagnostic::error(
                    line,
                    format!("call log keys are numbers from 0 to {MAX_CALL_KEY}"),
                )
                .with_key(Some(section), key),
            );
            continue;
        };
        match CallRecord::parse(number, value) {
            Err(e) => out.push(Diagnostic::error(line, e.to_string()).with_key(Some(section), key)),
            Ok(Some(call)) => {
                if value.split(';').count() > 6 {
                    out.push(
                        Diagnostic::warning(
                            line,
                            "more than 6 fields: a ';' inside a name or number shifts the fields, and MicroSIP drops what follows the 6th",
                        )
                        .with_key(Some(section), key),
                    );
                }
                if call.time < 0 {
                    out.push(
                        Diagnostic::warning(line, "time is before 1970")
                            .with_key(Some(section), key),
                    );
                }
            }
            Ok(None) => {}
        }
        if value.encode_utf16().count() > schema::DEFAULT_MAX_LEN {
            out.push(
                Diagnostic::error(
                    line,
                    "the entry is longer than the 255 characters MicroSIP reads",
                )
                .with_key(Some(section), key),
            );
        }
    }
}

fn check_dialed(section: &str, entries: &[Entry<'_>], out: &mut Vec<Diagnostic>) {
    for &Entry { key, line, .. } in entries {
        match parse_strict_int(key) {
            Some(n) if (0..=i64::from(MAX_DIALED_KEY)).contains(&n) => {}
            Some(_) => out.push(
                Diagnostic::warning(line, format!("MicroSIP keeps dialled numbers 0 to {MAX_DIALED_KEY} only; this one is ignored"))
                    .with_key(Some(section), key),
            ),
            None => out.push(
                Diagnostic::error(line, format!("dialled-number keys are numbers from 0 to {MAX_DIALED_KEY}"))
                    .with_key(Some(section), key),
            ),
        }
    }
}

/// Whether `[AccountN]` exists and MicroSIP loads it (its `domain` is not
/// empty: [`Account::is_valid`](account::Account::is_valid)), without reading every key of it.
fn account_loads(doc: &IniDocument, n: u32) -> Option<bool> {
    let section = account::section_name(n);
    if !doc.has_section(&section) {
        return None;
    }
    // `Account::from_document(doc, n).map(|a| a.is_valid())`: the domain
    // is read as MicroSIP reads it, absent meaning the default, "".
    let domain = doc
        .get(&section, "domain")
        .unwrap_or(schema::find(ACCOUNT_KEYS, "domain").map_or("", |s| s.default));
    Some(n == 0 || !domain.is_empty())
}

fn check_accounts(doc: &IniDocument, out: &mut Vec<Diagnostic>) {
    // `Account::list(doc).len()`.
    let loaded = (1..)
        .take_while(|&n| account_loads(doc, n) == Some(true))
        .count();
    let mut numbers: Vec<(u32, &str, usize)> = doc
        .section_names()
        .filter_map(|name| {
            let n = account::account_number(name)?;
            Some((n, name, doc.section_line(name)?))
        })
        .collect();
    numbers.sort_unstable();
    for (n, name, line) in numbers {
        if n == 0 {
            continue;
        }
        // The accounts MicroSIP loads (1..=loaded) are valid: no need to
        // read them again.
        let invalid = n as usize > loaded && account_loads(doc, n) == Some(false);
        if invalid {
            out.push(
                Diagnostic::warning(line, "domain is empty, so MicroSIP ignores this account (and every account after it)")
                    .with_key(Some(name), "domain"),
            );
        } else if n as usize > loaded + 1 {
            out.push(
                Diagnostic::warning(
                    line,
                    format!(
                        "[{name}] is never loaded: MicroSIP reads accounts 1, 2, 3… and stops at the first missing or empty one ([Account{}])",
                        loaded + 1
                    ),
                )
                .with_section(name),
            );
        }
    }
    if let (Some(raw), Some(line)) = (
        doc.get(settings::SECTION, "accountId"),
        doc.line_of(settings::SECTION, "accountId"),
    ) {
        if let Some(id) = parse_strict_int(raw) {
            if id > 0 && id as usize > loaded {
                out.push(
                    Diagnostic::warning(
                        line,
                        format!("account {id} does not exist or has no domain; MicroSIP falls back to the local account"),
                    )
                    .with_key(Some(settings::SECTION), "accountId"),
                );
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::encoding::encode;

    fn problems(text: &str) -> Vec<String> {
        let bytes = encode(text, Encoding::Utf16LeBom);
        validate_ini(&bytes)
            .1
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn a_clean_file_has_no_problems() {
        let text = "[Settings]\r\naccountId=1\r\nEC=1\r\naudioCodecs=opus/48000/2 PCMA/8000/1\r\naudioInputDevice=\"\"\r\n\
                    [Account1]\r\nlabel=Офис\r\nserver=pbx.example.com:5061\r\ndomain=example.com\r\nusername=100\r\ntransport=tls\r\nSRTP=mandatory\r\n\
                    [Calls]\r\n0=9787563142;Hard (Академическая);1;1718273852;0;\r\n1=null\r\n[Dialed]\r\n0=100\r\n";
        assert_eq!(problems(text), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "orphan=1\r\n[Settings]\r\nEC=maybe\r\nEC=1\r\nsourcePort=70000\r\nenableLogs=1\r\n\
                    this is junk\r\n[Account1]\r\ndomain=example.com\r\ntransport=udpp\r\nserver=sip:pbx\r\n\
                    [Calls]\r\n0=123;x;1\r\nabc=1;2;3;4;5;6\r\n[Settings]\r\nVAD=1\r\n[Account3]\r\ndomain=x\r\n";
        let got = problems(text);
        let expected = [
            "line 1: warning: orphan: key before any [section]; MicroSIP ignores it",
            "line 3: EC: \"maybe\" is not 0 or 1",
            "line 4: EC: duplicate key (first at line 3); MicroSIP reads only the first",
            "line 5: sourcePort: 70000 is out of range (0 to 65535)",
            "line 6: warning: enableLogs: unknown key; did you mean enableLog?",
            "line 7: \"this is junk\" is neither a [section], a key=value line nor a ; comment",
            "line 10: transport: \"udpp\" is not one of udp, tcp, tls (or empty)",
            "line 11: server: \"sip:pbx\" must be a host[:port] without the sip: prefix (MicroSIP adds it)",
            "line 13: 0: has 3 field(s); a call is number;name;type;time;duration;info",
            "line 14: abc: call log keys are numbers from 0 to 999",
            "line 15: duplicate section [Settings] (first at line 2); MicroSIP reads only the first",
            "line 17: warning: [Account3] is never loaded: MicroSIP reads accounts 1, 2, 3… and stops at the first missing or empty one ([Account2])",
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn encoding_problems() {
        let utf8 = "[Account1]\r\ndomain=x\r\nlabel=Офис\r\n".as_bytes();
        let d = validate_ini(utf8).1;
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, 3);
        assert!(d[0].message.contains("garbles"));
        let bom = b"\xEF\xBB\xBF[Settings]\r\nEC=1\r\n";
        assert!(validate_ini(bom)
            .1
            .iter()
            .any(|d| d.line == 1 && d.is_error()));
        let (doc, d) = validate_ini(b"\xFE\xFF\0[");
        assert!(doc.is_none());
        assert!(d[0].message.contains("big endian"));
    }

    #[test]
    fn long_values_are_caught() {
        let long = "x".repeat(256);
        let got = problems(&format!(
            "[Settings]\r\ncmdCallEnd={long}\r\n[Account1]\r\ndomain=d\r\npassword={long}\r\n"
        ));
        assert_eq!(got, vec!["line 2: cmdCallEnd: the value is 256 characters; MicroSIP reads at most 255 and cuts the rest"]);
    }

    #[test]
    fn account_checks() {
        let got = problems("[Settings]\r\naccountId=2\r\n[Account1]\r\ndomain=\r\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("account 2 does not exist"));
        assert!(got[1].contains("domain is empty"));
    }
}
