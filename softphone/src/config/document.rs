//! `microsip.ini` as a lossless document.
//!
//! Why not rust-ini: it parses into maps, so comments, blank lines, the
//! spelling and spacing of each line, line endings and the encoding are gone
//! once a file is read, and its default settings turn `C:\Users` into
//! `C:Users` and strip quotes. Provisioning must edit a user's file without
//! touching anything it does not manage, so this module keeps every line as
//! it was written and edits single lines in place, the way Windows'
//! `WritePrivateProfileString` does. (rust-ini stays as a test oracle.)
//!
//! Lookup rules follow the Win32 profile API that MicroSIP reads through:
//! section and key names match case-insensitively, the first of duplicate
//! sections or keys wins, values are trimmed and lose one pair of
//! surrounding quotes.

use std::collections::HashMap;

use thiserror::Error;

/// The index's maps: keyed by short folded names from the file, looked up
/// for every key read. SipHash (std's default, built against hash flooding
/// by remote input) costs more than the rest of a lookup; a local profile
/// file is not remote input, so rustc's FxHash (one multiply per word)
/// does.
type NameMap<V> = HashMap<String, V, rustc_hash::FxBuildHasher>;

use super::encoding::{self, DecodeError, Encoding, LineEnding};

/// What one line of the file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Empty or only white space.
    Blank,
    /// Starts with `;` or `#`.
    Comment,
    /// `[name]`.
    Section {
        /// The name between the brackets, trimmed.
        name: String,
    },
    /// `key=value`.
    Entry {
        /// The text before the first `=`, trimmed.
        key: String,
        /// The text after the first `=`, trimmed, quotes kept.
        value: String,
    },
    /// Neither blank, comment, section nor entry.
    Invalid,
}

/// One line: its text (without the line ending), its ending, its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    text: String,
    ending: LineEnding,
    kind: LineKind,
}

impl Line {
    fn new(text: String, ending: LineEnding) -> Self {
        let kind = classify(&text);
        Self { text, ending, kind }
    }

    /// The line's text as written, without its line ending.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How the line ends.
    pub fn ending(&self) -> LineEnding {
        self.ending
    }

    /// What the line is.
    pub fn kind(&self) -> &LineKind {
        &self.kind
    }
}

fn classify(text: &str) -> LineKind {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return LineKind::Blank;
    }
    if trimmed.starts_with(';') || trimmed.starts_with('#') {
        return LineKind::Comment;
    }
    if let Some(rest) = trimmed.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => LineKind::Section {
                name: rest[..end].trim().to_owned(),
            },
            None => LineKind::Invalid,
        };
    }
    match trimmed.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => LineKind::Entry {
            key: key.trim().to_owned(),
            value: value.trim().to_owned(),
        },
        _ => LineKind::Invalid,
    }
}

/// Removes one pair of surrounding `"…"` or `'…'`, as Windows does on read.
pub fn unquote(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2 {
        let (first, last) = (bytes[0], bytes[bytes.len() - 1]);
        if (first == b'"' || first == b'\'') && first == last {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// An error reading or editing a document.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IniError {
    /// The bytes are not text in an encoding MicroSIP uses.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A value that would break the file's line structure.
    #[error(
        "[{section}] {key}: the value contains a line break or NUL, which an INI file cannot hold"
    )]
    ValueBreaksLine {
        /// The section written to.
        section: String,
        /// The key written to.
        key: String,
    },
    /// A section or key name that the INI syntax cannot hold.
    #[error("{0:?} cannot be used as a section or key name")]
    BadName(String),
}

/// One section's place in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SectionIndex {
    /// The name as written (empty for the lines before the first section).
    name: String,
    /// Index of the `[name]` line; `None` for the prelude.
    header: Option<usize>,
    /// Lines `start..end` belong to the section (header excluded).
    start: usize,
    end: usize,
    /// Lower-cased key -> index of its first line.
    keys: NameMap<usize>,
}

/// A `microsip.ini` file, kept line by line so that writing an untouched
/// document gives back the exact bytes that were read.
#[derive(Debug, Clone)]
pub struct IniDocument {
    encoding: Encoding,
    lines: Vec<Line>,
    /// Sections in file order, duplicates included.
    sections: Vec<SectionIndex>,
    /// Lower-cased section name -> index into `sections` of its first occurrence.
    first_section: NameMap<usize>,
    /// How many lines end in CRLF and in LF, for [`IniDocument::newline`]
    /// (kept, not counted per call: building a file key by key with
    /// [`IniDocument::set`] would otherwise be quadratic).
    endings: (usize, usize),
}

impl PartialEq for IniDocument {
    fn eq(&self, other: &Self) -> bool {
        self.encoding == other.encoding && self.lines == other.lines
    }
}

impl Eq for IniDocument {}

impl Default for IniDocument {
    fn default() -> Self {
        Self::new()
    }
}

/// One `key=value` line as MicroSIP reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The key as written (trimmed).
    pub key: &'a str,
    /// The value as MicroSIP reads it: trimmed, one pair of quotes removed.
    pub value: &'a str,
    /// 1-based line.
    pub line: usize,
}

/// One `[section]` header with the entries under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionView<'a> {
    /// The name as written.
    pub name: &'a str,
    /// 1-based line of the header.
    pub line: usize,
    /// The entries, in file order, duplicates included.
    pub entries: Vec<Entry<'a>>,
}

/// What an edit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// The key already had this value: nothing changed.
    Unchanged,
    /// An existing line was rewritten.
    Replaced,
    /// A new line was added.
    Added,
}

impl IniDocument {
    /// An empty document that will be written the way MicroSIP writes a new
    /// file: UTF-16 LE with BOM and CRLF line endings.
    pub fn new() -> Self {
        Self::from_lines(Encoding::Utf16LeBom, Vec::new())
    }

    /// Reads a document from a file's bytes. Only bytes that are not text
    /// fail; lines that make no sense are kept and reported by validation.
    pub fn parse(bytes: &[u8]) -> Result<Self, IniError> {
        let (encoding, text) = encoding::decode(bytes)?;
        Ok(Self::from_text(encoding, &text))
    }

    /// Builds a document from decoded text, to be written in `encoding`.
    pub fn from_text(encoding: Encoding, text: &str) -> Self {
        let mut lines = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('\n') {
                Some(pos) => {
                    let (body, ending) = match rest[..pos].strip_suffix('\r') {
                        Some(body) => (body, LineEnding::CrLf),
                        None => (&rest[..pos], LineEnding::Lf),
                    };
                    lines.push(Line::new(body.to_owned(), ending));
                    rest = &rest[pos + 1..];
                }
                None => {
                    lines.push(Line::new(rest.to_owned(), LineEnding::None));
                    rest = "";
                }
            }
        }
        Self::from_lines(encoding, lines)
    }

    fn from_lines(encoding: Encoding, lines: Vec<Line>) -> Self {
        let mut doc = Self {
            encoding,
            lines,
            sections: Vec::new(),
            first_section: NameMap::default(),
            endings: (0, 0),
        };
        doc.reindex();
        doc
    }

    fn reindex(&mut self) {
        // Entries per section first, so that each key map is allocated
        // once at its size instead of growing (and rehashing) key by key.
        let mut counts = vec![0usize];
        for line in &self.lines {
            match line.kind {
                LineKind::Section { .. } => counts.push(0),
                LineKind::Entry { .. } => {
                    if let Some(last) = counts.last_mut() {
                        *last += 1;
                    }
                }
                _ => {}
            }
        }
        let section_index =
            |name: String, header: Option<usize>, start: usize, count: usize| SectionIndex {
                name,
                header,
                start,
                end: start,
                keys: NameMap::with_capacity_and_hasher(count, Default::default()),
            };
        let mut sections = Vec::with_capacity(counts.len());
        sections.push(section_index(String::new(), None, 0, counts[0]));
        for (i, line) in self.lines.iter().enumerate() {
            match &line.kind {
                LineKind::Section { name } => {
                    if let Some(last) = sections.last_mut() {
                        last.end = i;
                    }
                    let count = counts.get(sections.len()).copied().unwrap_or(0);
                    sections.push(section_index(name.clone(), Some(i), i + 1, count));
                }
                LineKind::Entry { key, .. } => {
                    if let Some(last) = sections.last_mut() {
                        if !with_folded(key, |key| last.keys.contains_key(key)) {
                            last.keys.insert(fold(key).into_owned(), i);
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(last) = sections.last_mut() {
            last.end = self.lines.len();
        }
        self.first_section.clear();
        self.first_section.reserve(sections.len());
        for (i, section) in sections.iter().enumerate().skip(1) {
            self.first_section
                .entry(fold(&section.name).into_owned())
                .or_insert(i);
        }
        self.sections = sections;
        self.endings = self
            .lines
            .iter()
            .fold((0, 0), |(crlf, lf), line| match line.ending {
                LineEnding::CrLf => (crlf + 1, lf),
                LineEnding::Lf => (crlf, lf + 1),
                LineEnding::None => (crlf, lf),
            });
    }

    fn count_ending(&mut self, ending: LineEnding) {
        match ending {
            LineEnding::CrLf => self.endings.0 += 1,
            LineEnding::Lf => self.endings.1 += 1,
            LineEnding::None => {}
        }
    }

    /// Updates the index for a line inserted at `at` into the section
    /// `section` (an index into `sections`), without rescanning the file.
    fn index_inserted(&mut self, section: usize, at: usize, key: &str) {
        for s in &mut self.sections {
            if s.header.is_some_and(|h| h >= at) {
                s.header = s.header.map(|h| h + 1);
            }
            if s.start > at {
                s.start += 1;
            }
            if s.end >= at {
                s.end += 1;
            }
            for line in s.keys.values_mut() {
                if *line >= at {
                    *line += 1;
                }
            }
        }
        if let Some(s) = self.sections.get_mut(section) {
            s.keys.entry(fold(key).into_owned()).or_insert(at);
        }
    }

    /// Writes the document back to bytes in its encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(&self.to_text(), self.encoding)
    }

    /// The document as text (no BOM).
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.lines.iter().map(|l| l.text.len() + 2).sum());
        for line in &self.lines {
            text.push_str(&line.text);
            text.push_str(line.ending.as_str());
        }
        text
    }

    /// The encoding the document was read in and will be written in.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Changes the encoding the document will be written in.
    pub fn set_encoding(&mut self, encoding: Encoding) {
        self.encoding = encoding;
    }

    /// The line ending new lines get: the one most lines of the file use,
    /// CRLF (MicroSIP's) for a new or single-line file.
    pub fn newline(&self) -> LineEnding {
        let (crlf, lf) = self.endings;
        if lf > crlf {
            LineEnding::Lf
        } else {
            LineEnding::CrLf
        }
    }

    /// Every line, in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Names of the sections as written, in file order, without duplicates
    /// (the first occurrence of a name counts, as in Windows).
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(i, s)| self.first_section.get(fold(&s.name).as_ref()) == Some(i))
            .map(|(_, s)| s.name.as_str())
    }

    /// Whether a section name appears twice, or a key twice in one section
    /// (names compared as Windows compares them, without regard to case).
    pub fn has_duplicates(&self) -> bool {
        self.first_section.len() + 1 < self.sections.len()
            || self.sections.iter().any(|s| {
                let entries = self.lines[s.start..s.end]
                    .iter()
                    .filter(|l| matches!(l.kind, LineKind::Entry { .. }))
                    .count();
                s.keys.len() < entries
            })
    }

    /// Every section header in file order, duplicates included, as
    /// `(name, 1-based line)`.
    pub fn section_headers(&self) -> impl Iterator<Item = (&str, usize)> {
        self.sections
            .iter()
            .filter_map(|s| s.header.map(|h| (s.name.as_str(), h + 1)))
    }

    /// Whether `[section]` exists (case-insensitive).
    pub fn has_section(&self, section: &str) -> bool {
        with_folded(section, |name| self.first_section.contains_key(name))
    }

    fn section_index(&self, section: &str) -> Option<&SectionIndex> {
        with_folded(section, |name| self.first_section.get(name).copied())
            .and_then(|i| self.sections.get(i))
    }

    /// The value of `key` in `section` as written (trimmed, quotes kept).
    pub fn get_raw(&self, section: &str, key: &str) -> Option<&str> {
        let line = self.key_line_index(section, key)?;
        match &self.lines[line].kind {
            LineKind::Entry { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value of `key` in `section` as MicroSIP reads it: trimmed, one
    /// pair of surrounding quotes removed.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.get_raw(section, key).map(unquote)
    }

    /// The 1-based line of `key` in `section`.
    pub fn line_of(&self, section: &str, key: &str) -> Option<usize> {
        self.key_line_index(section, key).map(|i| i + 1)
    }

    /// The 1-based line of the `[section]` header.
    pub fn section_line(&self, section: &str) -> Option<usize> {
        self.section_index(section)
            .and_then(|s| s.header)
            .map(|h| h + 1)
    }

    fn key_line_index(&self, section: &str, key: &str) -> Option<usize> {
        let keys = &self.section_index(section)?.keys;
        with_folded(key, |key| keys.get(key).copied())
    }

    /// The entries of the first `[section]`, in file order, duplicates
    /// included.
    pub fn entries(&self, section: &str) -> Vec<Entry<'_>> {
        match self.section_index(section) {
            Some(s) => self.entries_in(s.start, s.end),
            None => Vec::new(),
        }
    }

    /// The entries before the first section header (Windows ignores them).
    pub fn prelude_entries(&self) -> Vec<Entry<'_>> {
        match self.sections.first() {
            Some(s) => self.entries_in(s.start, s.end),
            None => Vec::new(),
        }
    }

    /// Every section occurrence with its entries, in file order, duplicate
    /// sections included: what a validator walks.
    pub fn all_sections(&self) -> Vec<SectionView<'_>> {
        self.sections
            .iter()
            .filter_map(|s| {
                s.header.map(|h| SectionView {
                    name: &s.name,
                    line: h + 1,
                    entries: self.entries_in(s.start, s.end),
                })
            })
            .collect()
    }

    fn entries_in(&self, start: usize, end: usize) -> Vec<Entry<'_>> {
        self.lines[start..end]
            .iter()
            .enumerate()
            .filter_map(|(offset, line)| match &line.kind {
                LineKind::Entry { key, value } => Some(Entry {
                    key,
                    value: unquote(value),
                    line: start + offset + 1,
                }),
                _ => None,
            })
            .collect()
    }

    /// Sets `key` in `section` to `value`, written as is (quote it yourself
    /// where MicroSIP quotes). An existing key keeps its line, spelling and
    /// spacing; only the value changes. A new key goes after the section's
    /// last entry; a new section goes at the end of the file.
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> Result<Edit, IniError> {
        check_name(section)?;
        check_name(key)?;
        if key.contains('=') || key.trim_start().starts_with(['[', ';', '#']) {
            return Err(IniError::BadName(key.to_owned()));
        }
        if value.contains(['\r', '\n', '\0']) {
            return Err(IniError::ValueBreaksLine {
                section: section.to_owned(),
                key: key.to_owned(),
            });
        }
        if let Some(i) = self.key_line_index(section, key) {
            let line = &self.lines[i];
            if matches!(&line.kind, LineKind::Entry { value: v, .. } if v == value) {
                return Ok(Edit::Unchanged);
            }
            let text = replace_value(&line.text, value);
            let ending = line.ending;
            // Same key on the same line: the index still holds.
            self.lines[i] = Line::new(text, ending);
            return Ok(Edit::Replaced);
        }
        let newline = self.newline();
        let text = format!("{key}={value}");
        let Some(&section_at) = self.first_section.get(fold(section).as_ref()) else {
            // A new section goes at the end; rare enough to rescan.
            self.end_last_line(newline);
            self.lines.push(Line::new(format!("[{section}]"), newline));
            self.lines.push(Line::new(text, newline));
            self.reindex();
            return Ok(Edit::Added);
        };
        let at = match self.sections.get(section_at) {
            Some(s) => {
                let last_entry = (s.start..s.end)
                    .rev()
                    .find(|&i| matches!(self.lines[i].kind, LineKind::Entry { .. }));
                last_entry.map_or(s.start, |i| i + 1)
            }
            None => self.lines.len(),
        };
        // The line we insert after may be the file's unterminated last line.
        if at > 0 && self.lines[at - 1].ending == LineEnding::None {
            self.lines[at - 1].ending = newline;
            self.count_ending(newline);
        }
        self.lines.insert(at, Line::new(text, newline));
        self.count_ending(newline);
        self.index_inserted(section_at, at, key);
        Ok(Edit::Added)
    }

    /// Removes `key` from `section` (every occurrence in the first section).
    /// Returns whether anything was removed.
    pub fn remove(&mut self, section: &str, key: &str) -> bool {
        let Some(s) = self.section_index(section) else {
            return false;
        };
        let wanted = key.to_lowercase();
        let doomed: Vec<usize> = (s.start..s.end)
            .filter(|&i| matches!(&self.lines[i].kind, LineKind::Entry { key, .. } if key.to_lowercase() == wanted))
            .collect();
        for &i in doomed.iter().rev() {
            self.lines.remove(i);
        }
        self.reindex();
        !doomed.is_empty()
    }

    /// Removes the first `[section]` with all its lines. Returns whether it
    /// existed.
    pub fn remove_section(&mut self, section: &str) -> bool {
        let Some(s) = self.section_index(section) else {
            return false;
        };
        let (Some(header), end) = (s.header, s.end) else {
            return false;
        };
        self.lines.drain(header..end);
        self.reindex();
        true
    }

    fn end_last_line(&mut self, newline: LineEnding) {
        if let Some(last) = self.lines.last_mut() {
            if last.ending == LineEnding::None {
                last.ending = newline;
            }
        }
    }
}

/// A name as the index keys it: lower-cased, as Windows compares profile
/// names without regard to case. ASCII names (nearly all) take the fast
/// path, and lower-case ones are not copied.
/// Calls `f` with [`fold`]`(name)`, folded on the stack when it is short
/// ASCII (every lookup of a mixed-case name like `registerRefresh` would
/// otherwise allocate).
fn with_folded<R>(name: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 64];
    match buf.get_mut(..name.len()) {
        Some(folded) if name.is_ascii() => {
            folded.copy_from_slice(name.as_bytes());
            folded.make_ascii_lowercase();
            // ASCII in, ASCII out.
            match std::str::from_utf8(folded) {
                Ok(folded) => f(folded),
                Err(_) => f(&fold(name)),
            }
        }
        _ => f(&fold(name)),
    }
}

pub(crate) fn fold(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.is_ascii() {
        std::borrow::Cow::Owned(name.to_lowercase())
    } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

fn check_name(name: &str) -> Result<(), IniError> {
    if name.trim().is_empty() || name.contains(['\r', '\n', '\0', ']']) || name.trim() != name {
        return Err(IniError::BadName(name.to_owned()));
    }
    Ok(())
}

/// Rewrites the value part of an entry line, keeping everything up to and
/// including the `=` and the spaces after it.
fn replace_value(line: &str, value: &str) -> String {
    match line.find('=') {
        Some(eq) => {
            let after = &line[eq + 1..];
            let spaces = after.len() - after.trim_start().len();
            format!("{}{}", &line[..eq + 1 + spaces], value)
        }
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// The kept index equals a fresh scan of the lines.
    fn assert_index_fresh(doc: &IniDocument) {
        let mut fresh = doc.clone();
        fresh.reindex();
        assert_eq!(doc.sections, fresh.sections);
        assert_eq!(doc.first_section, fresh.first_section);
        assert_eq!(doc.endings, fresh.endings);
    }

    proptest! {
        #[test]
        fn set_keeps_the_index_as_a_rescan_would(
            start in "(\\[[ab]\\]\r?\n|[a-c]=[0-9]\r?\n|;x\n|\n){0,8}",
            edits in proptest::collection::vec(("[ABC]|a|b", "[a-dA-D]", "[0-9]{0,2}"), 0..12),
        ) {
            let mut doc = IniDocument::parse(start.as_bytes()).unwrap();
            for (section, key, value) in &edits {
                doc.set(section, key, value).unwrap();
                assert_index_fresh(&doc);
                prop_assert_eq!(doc.get(section, key), Some(value.as_str()));
            }
            let reread = IniDocument::parse(&doc.to_bytes()).unwrap();
            prop_assert_eq!(&reread, &doc);
        }
    }
    use super::*;

    fn doc(text: &str) -> IniDocument {
        IniDocument::from_text(Encoding::Utf8, text)
    }

    #[test]
    fn untouched_text_round_trips_exactly() {
        for text in [
            "",
            "\r\n",
            "[Settings]\r\nEC=1\r\n",
            "[Settings]\nEC=1",
            "; comment\n\n[A]\r\n  key = \"quoted\" \n\r\n[B]\nmixed\r\n",
            "\r\r\n[x]\r",
        ] {
            assert_eq!(doc(text).to_text(), text);
        }
    }

    #[test]
    fn lookups_follow_the_windows_profile_rules() {
        let d = doc("[Settings]\r\nEC=0\r\nec=1\r\naudioInputDevice=\"Mic (USB)\"\r\n[settings]\r\nVAD=1\r\n");
        assert_eq!(d.get("SETTINGS", "Ec"), Some("0"));
        assert_eq!(d.get("Settings", "audioInputDevice"), Some("Mic (USB)"));
        assert_eq!(
            d.get_raw("Settings", "audioInputDevice"),
            Some("\"Mic (USB)\"")
        );
        assert_eq!(
            d.get("Settings", "VAD"),
            None,
            "a duplicate section is ignored"
        );
        assert_eq!(d.line_of("Settings", "ec"), Some(2));
        assert_eq!(d.section_names().collect::<Vec<_>>(), vec!["Settings"]);
    }

    #[test]
    fn setting_an_existing_key_changes_only_its_value() {
        let mut d = doc("[A]\r\nkey = old ; not a comment\r\nother=1\r\n");
        assert_eq!(d.set("a", "KEY", "new").unwrap(), Edit::Replaced);
        assert_eq!(d.to_text(), "[A]\r\nkey = new\r\nother=1\r\n");
        assert_eq!(d.set("A", "other", "1").unwrap(), Edit::Unchanged);
    }

    #[test]
    fn new_keys_go_after_the_last_entry_and_new_sections_at_the_end() {
        let mut d = doc("[A]\nx=1\n\n[B]\ny=2");
        d.set("A", "z", "3").unwrap();
        d.set("C", "w", "4").unwrap();
        assert_eq!(d.to_text(), "[A]\nx=1\nz=3\n\n[B]\ny=2\n[C]\nw=4\n");
        let mut fresh = IniDocument::new();
        fresh.set("Settings", "accountId", "1").unwrap();
        assert_eq!(fresh.to_text(), "[Settings]\r\naccountId=1\r\n");
        assert_eq!(&fresh.to_bytes()[..4], &[0xFF, 0xFE, b'[', 0]);
    }

    #[test]
    fn a_value_that_would_break_the_file_is_refused() {
        let mut d = doc("[A]\r\n");
        assert!(matches!(
            d.set("A", "k", "a\r\nb=c"),
            Err(IniError::ValueBreaksLine { .. })
        ));
        assert!(d.set("A", "k=v", "x").is_err());
        assert!(d.set("A]", "k", "x").is_err());
        assert_eq!(d.to_text(), "[A]\r\n");
    }

    #[test]
    fn remove_key_and_section() {
        let mut d = doc("[A]\r\nx=1\r\nX=2\r\ny=3\r\n[B]\r\nz=1\r\n");
        assert!(d.remove("A", "x"));
        assert_eq!(d.to_text(), "[A]\r\ny=3\r\n[B]\r\nz=1\r\n");
        assert!(d.remove_section("a"));
        assert_eq!(d.to_text(), "[B]\r\nz=1\r\n");
        assert!(!d.remove_section("A"));
    }

    #[test]
    fn classification() {
        assert_eq!(classify("  ; c"), LineKind::Comment);
        assert_eq!(
            classify("[ Account1 ] trailing"),
            LineKind::Section {
                name: "Account1".into()
            }
        );
        assert_eq!(classify("[broken"), LineKind::Invalid);
        assert_eq!(classify("=value"), LineKind::Invalid);
        assert_eq!(classify("just words"), LineKind::Invalid);
        assert_eq!(
            classify("path=C:\\Users\\x=y"),
            LineKind::Entry {
                key: "path".into(),
                value: "C:\\Users\\x=y".into()
            }
        );
    }
}
