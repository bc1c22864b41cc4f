//! Which of MicroSIP's files a byte string is, judged from its content.

use std::path::Path;

use serde::Serialize;

use super::encoding;

/// A MicroSIP file kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// `microsip.ini`.
    Ini,
    /// `Contacts.xml`.
    Contacts,
}

impl FileKind {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Ini => "ini",
            FileKind::Contacts => "contacts",
        }
    }
}

/// Detects the kind from the content: text that starts with `<` is the
/// contacts XML, anything else is an ini. Content that says nothing (empty,
/// or not text at all) falls back to the file name: `.xml` is contacts.
pub fn detect_kind(bytes: &[u8], name_hint: Option<&Path>) -> FileKind {
    let by_name = || match name_hint.and_then(Path::extension) {
        Some(ext) if ext.eq_ignore_ascii_case("xml") => FileKind::Contacts,
        _ => FileKind::Ini,
    };
    match encoding::decode(bytes) {
        Ok((_, text)) => match text
            .trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n'])
            .chars()
            .next()
        {
            Some('<') => FileKind::Contacts,
            Some(_) => FileKind::Ini,
            None => by_name(),
        },
        Err(_) => by_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::encoding::{encode, Encoding};

    #[test]
    fn content_decides_before_the_name() {
        let xml = Path::new("x.xml");
        let ini = Path::new("x.ini");
        assert_eq!(
            detect_kind(b"\xEF\xBB\xBF\r\n<?xml version=\"1.0\"?>", Some(ini)),
            FileKind::Contacts
        );
        assert_eq!(
            detect_kind(&encode("[Settings]\r\n", Encoding::Utf16LeBom), Some(xml)),
            FileKind::Ini
        );
        assert_eq!(detect_kind(b"; comment", None), FileKind::Ini);
        assert_eq!(detect_kind(b"", Some(xml)), FileKind::Contacts);
        assert_eq!(detect_kind(b"a\0b", Some(ini)), FileKind::Ini);
    }
}
