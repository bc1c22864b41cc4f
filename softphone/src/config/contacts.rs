//! MicroSIP's `Contacts.xml`: reading it, writing it back byte for byte the
//! way MicroSIP does, and reporting every problem with its line and column.
//!
//! Format facts (from MicroSIP 3.22.3):
//!
//! - The file is the ASCII line `<?xml version="1.0"?>` and CRLF, then UTF-8
//!   without a BOM, one element per line, no indentation, CRLF line ends:
//!   `<contacts>`, one `<contact .../>` per contact, `</contacts>`; a file
//!   without contacts is just `<contacts/>`.
//! - MicroSIP writes all 17 attributes of a contact, in a fixed order
//!   ([`KNOWN_ATTRIBUTES`]), empty ones as `""`, the flags `presence`,
//!   `starred` and `directory` as `1` or `0`. It escapes `<`, `&`, `>`, `'`
//!   and `"` in values.
//! - When reading, every attribute is optional, a flag is true only when it is
//!   exactly `1`, and a contact with an empty `number` is skipped.
//!
//! Files in the wild also have a UTF-8 BOM, LF line ends, indentation,
//! comments, and attributes written by newer MicroSIP builds: all of that is
//! read, and the unknown attributes are kept in order and written back after
//! the known ones.
//!
//! Why quick-xml's event [`Reader`] and not its serde deserializer: an admin
//! needs the exact line and column of a problem, which only the reader's byte
//! positions give, and serde would lose the order (and the very presence) of
//! the attributes this module does not know, which must be written back.

use std::fmt::Write as _;

use quick_xml::escape::escape;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::reader::Reader;

use super::diagnostic::Diagnostic;

/// The attributes MicroSIP writes on every `<contact>`, in its order.
pub const KNOWN_ATTRIBUTES: [&str; 17] = [
    "name",
    "number",
    "firstname",
    "lastname",
    "phone",
    "mobile",
    "email",
    "address",
    "city",
    "state",
    "zip",
    "comment",
    "id",
    "info",
    "presence",
    "starred",
    "directory",
];

/// Values longer than this (in characters) get a warning from
/// [`ContactList::validate`].
pub const MAX_VALUE_CHARS: usize = 255;

/// The first line MicroSIP writes, with its line end.
const HEADER: &str = "<?xml version=\"1.0\"?>\r\n";

/// The UTF-8 byte order mark, which files edited by hand sometimes start with.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One contact: the 17 attributes MicroSIP writes, plus unknown ones kept in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    /// Display name (`name`).
    pub name: String,
    /// What MicroSIP dials: a number, an extension or a SIP URI (`number`).
    pub number: String,
    /// First name (`firstname`).
    pub firstname: String,
    /// Last name (`lastname`).
    pub lastname: String,
    /// Another phone number (`phone`).
    pub phone: String,
    /// Mobile number (`mobile`).
    pub mobile: String,
    /// E-mail address (`email`).
    pub email: String,
    /// Street address (`address`).
    pub address: String,
    /// City (`city`).
    pub city: String,
    /// State or region (`state`).
    pub state: String,
    /// Postal code (`zip`).
    pub zip: String,
    /// Free comment (`comment`).
    pub comment: String,
    /// Identifier from a directory source (`id`).
    pub id: String,
    /// Extra information shown by MicroSIP (`info`).
    pub info: String,
    /// Subscribe to the contact's presence (`presence="1"`).
    pub presence: bool,
    /// Shown among the favourites (`starred="1"`).
    pub starred: bool,
    /// Came from a directory rather than from the user (`directory="1"`).
    pub directory: bool,
    /// Attributes MicroSIP does not write (newer or custom builds), in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<(String, String)>,
}

/// Where the value of one attribute of a [`Contact`] goes.
enum Slot<'c> {
    Text(&'c mut String),
    Flag(&'c mut bool),
}

impl Contact {
    /// The name to show: `name`, or `number` when the name is empty.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.number
        } else {
            &self.name
        }
    }

    /// The field a known attribute is stored in; `None` for unknown attributes.
    fn slot(&mut self, attribute: &str) -> Option<Slot<'_>> {
        Some(match attribute {
            "name" => Slot::Text(&mut self.name),
            "number" => Slot::Text(&mut self.number),
            "firstname" => Slot::Text(&mut self.firstname),
            "lastname" => Slot::Text(&mut self.lastname),
            "phone" => Slot::Text(&mut self.phone),
            "mobile" => Slot::Text(&mut self.mobile),
            "email" => Slot::Text(&mut self.email),
            "address" => Slot::Text(&mut self.address),
            "city" => Slot::Text(&mut self.city),
            "state" => Slot::Text(&mut self.state),
            "zip" => Slot::Text(&mut self.zip),
            "comment" => Slot::Text(&mut self.comment),
            "id" => Slot::Text(&mut self.id),
            "info" => Slot::Text(&mut self.info),
            "presence" => Slot::Flag(&mut self.presence),
            "starred" => Slot::Flag(&mut self.starred),
            "directory" => Slot::Flag(&mut self.directory),
            _ => return None,
        })
    }

    /// Writes `<contact .../>` (without line end) the way MicroSIP does.
    fn write_element(&self, out: &mut String) {
        let flag = |on: bool| if on { "1" } else { "0" };
        let known: [(&str, &str); 17] = [
            ("name", &self.name),
            ("number", &self.number),
            ("firstname", &self.firstname),
            ("lastname", &self.lastname),
            ("phone", &self.phone),
            ("mobile", &self.mobile),
            ("email", &self.email),
            ("address", &self.address),
            ("city", &self.city),
            ("state", &self.state),
            ("zip", &self.zip),
            ("comment", &self.comment),
            ("id", &self.id),
            ("info", &self.info),
            ("presence", flag(self.presence)),
            ("starred", flag(self.starred)),
            ("directory", flag(self.directory)),
        ];
        out.push_str("<contact");
        for (key, value) in known {
            push_attribute(out, key, value);
        }
        let mut written: Vec<&str> = Vec::new();
        for (key, value) in &self.extra {
            // A name that is not an XML name, or that is already written,
            // would make the file unreadable: such an entry cannot be stored.
            if is_xml_name(key)
                && !KNOWN_ATTRIBUTES.contains(&key.as_str())
                && !written.contains(&key.as_str())
            {
                push_attribute(out, key, value);
                written.push(key);
            }
        }
        out.push_str("/>");
    }
}

/// ` key="value"`, the value escaped by [`push_escaped`].
fn push_attribute(out: &mut String, key: &str, value: &str) {
    out.push(' ');
    out.push_str(key);
    out.push_str("=\"");
    push_escaped(out, value);
    out.push('"');
}

/// Escapes an attribute value: quick-xml's [`escape`] turns `<`, `>`, `&`,
/// `'` and `"` into `&lt;` `&gt;` `&amp;` `&apos;` `&quot;`, as MicroSIP
/// does. On top of that, control characters become character references
/// (`\t` → `&#9;`, `\n` → `&#10;`, `\r` → `&#13;`, ...): an XML reader
/// turns a literal tab or line break in an attribute value into a space
/// (attribute-value normalisation), a reference survives it. NUL cannot be
/// stored in XML at all and is written as U+FFFD.
fn push_escaped(out: &mut String, value: &str) {
    let mut plain_from = 0;
    for (i, c) in value.char_indices() {
        if u32::from(c) < 0x20 {
            out.push_str(&escape(value.get(plain_from..i).unwrap_or_default()));
            if c == '\0' {
                out.push('\u{FFFD}');
            } else {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            plain_from = i + c.len_utf8();
        }
    }
    out.push_str(&escape(value.get(plain_from..).unwrap_or_default()));
}

/// A parsed Contacts.xml.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactList {
    /// The `<contact>` elements, in file order (including those without a
    /// number, which MicroSIP skips; [`ContactList::validate`] warns about them).
    pub contacts: Vec<Contact>,
}

/// Why a Contacts.xml could not be read. Every variant has a 1-based line
/// ([`ContactsError::line`]) and column ([`ContactsError::column`]).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ContactsError {
    /// The file is empty, or holds only a BOM and whitespace.
    #[error("line 1, column 1: empty file")]
    Empty,
    /// The bytes are not UTF-8 (the position is that of the first bad byte).
    #[error("line {line}, column {column}: not UTF-8: {detail}")]
    NotUtf8 {
        /// 1-based line of the first byte that is not UTF-8.
        line: usize,
        /// 1-based column (in characters) of that byte.
        column: usize,
        /// What was found, for the admin.
        detail: String,
    },
    /// The root element is not `<contacts>`.
    #[error("line {line}, column {column}: the root element is <{found}>, but MicroSIP reads only <contacts>")]
    WrongRoot {
        /// 1-based line of the root element.
        line: usize,
        /// 1-based column of its `<`.
        column: usize,
        /// The root element's name.
        found: String,
    },
    /// The file is not well-formed XML (or has something after `</contacts>`).
    #[error("line {line}, column {column}: {message}")]
    Malformed {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl ContactsError {
    /// The 1-based line of the problem.
    pub fn line(&self) -> usize {
        match self {
            Self::Empty => 1,
            Self::NotUtf8 { line, .. }
            | Self::WrongRoot { line, .. }
            | Self::Malformed { line, .. } => *line,
        }
    }

    /// The 1-based column (in characters) of the problem.
    pub fn column(&self) -> Option<usize> {
        match self {
            Self::Empty => Some(1),
            Self::NotUtf8 { column, .. }
            | Self::WrongRoot { column, .. }
            | Self::Malformed { column, .. } => Some(*column),
        }
    }

    /// The message without its position.
    fn message(&self) -> String {
        match self {
            Self::Empty => "empty file".to_owned(),
            Self::NotUtf8 { detail, .. } => format!("not UTF-8: {detail}"),
            Self::WrongRoot { found, .. } => {
                format!("the root element is <{found}>, but MicroSIP reads only <contacts>")
            }
            Self::Malformed { message, .. } => message.clone(),
        }
    }

    /// The error as an [`Error`](super::diagnostic::Severity::Error)
    /// diagnostic with its line and column.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let diagnostic = Diagnostic::error(self.line(), self.message());
        match self.column() {
            Some(column) => diagnostic.with_column(column),
            None => diagnostic,
        }
    }
}

impl ContactList {
    /// Reads a Contacts.xml. Accepts a UTF-8 BOM, LF or CRLF, indentation,
    /// comments, an `<?xml ...?>` declaration, `<contacts/>`, and both
    /// `<contact .../>` and `<contact ...></contact>`; unknown attributes are
    /// kept in [`Contact::extra`], elements other than `<contact>` are
    /// ignored (as MicroSIP does).
    ///
    /// Values are read as an XML reader must: entities (`&lt;` `&gt;`
    /// `&amp;` `&apos;` `&quot;` and `&#..;` / `&#x..;`) are decoded, and a
    /// literal tab, CR or LF in a value becomes a space (CRLF one space).
    /// A flag is true only when it is exactly `1`. When an attribute appears
    /// twice on one element, the first value is used.
    ///
    /// Never panics; any input that is not such a file gives an error with
    /// its line and column.
    pub fn parse(bytes: &[u8]) -> Result<ContactList, ContactsError> {
        Scanner::run(bytes, false).map(|(list, _)| list)
    }

    /// The file MicroSIP would write for these contacts: header line, one
    /// element per line, CRLF, all 17 known attributes in MicroSIP's order,
    /// then the [`Contact::extra`] attributes in their order (an extra entry
    /// whose name is not an XML name, is one of the 17, or repeats an
    /// earlier extra name cannot be written and is left out).
    ///
    /// Values are escaped as MicroSIP does (`<` `&` `>` `'` `"` become
    /// `&lt;` `&amp;` `&gt;` `&apos;` `&quot;`), and control characters
    /// become character references: `\t` `&#9;`, `\n` `&#10;`, `\r`
    /// `&#13;` (and so on), because any XML reader, [`ContactList::parse`]
    /// included, turns a literal tab or line break inside an attribute value
    /// into a space, while a reference survives. NUL cannot be stored in XML
    /// and is written as U+FFFD. So `parse(&list.to_bytes()) == Ok(list)` for
    /// every list without NUL and with writable extra names.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::from(HEADER);
        if self.contacts.is_empty() {
            out.push_str("<contacts/>\r\n");
        } else {
            out.push_str("<contacts>\r\n");
            for contact in &self.contacts {
                contact.write_element(&mut out);
                out.push_str("\r\n");
            }
            out.push_str("</contacts>\r\n");
        }
        out.into_bytes()
    }

    /// All problems in one pass: a file that cannot be read gives exactly
    /// one error (see [`ContactList::parse`]); a readable one gives, with
    /// line, column and attribute name (as the diagnostic's key):
    ///
    /// - error: a flag (`presence`, `starred`, `directory`) that is not `0` or `1`;
    /// - error: an attribute given twice on one element;
    /// - warning: a contact without a number (MicroSIP skips it);
    /// - warning: a value longer than [`MAX_VALUE_CHARS`] characters;
    /// - warning: an element other than `<contact>` inside `<contacts>`, an
    ///   element inside `<contact>`, or text there (MicroSIP ignores them);
    /// - warning: an `<?xml ...?>` declaration naming an encoding other than UTF-8.
    pub fn validate(bytes: &[u8]) -> Vec<Diagnostic> {
        match Scanner::run(bytes, true) {
            Ok((_, diagnostics)) => diagnostics,
            Err(error) => vec![error.to_diagnostic()],
        }
    }
}

/// Byte offsets to 1-based line and column (in characters). A line ends at
/// LF, CRLF or a lone CR.
struct Positions<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Positions<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        let mut bytes = text.bytes().enumerate().peekable();
        while let Some((i, byte)) = bytes.next() {
            let ends_line = match byte {
                b'\n' => true,
                b'\r' => !matches!(bytes.peek(), Some((_, b'\n'))),
                _ => false,
            };
            if ends_line {
                line_starts.push(i + 1);
            }
        }
        Self { text, line_starts }
    }

    /// (line, column) of the character at (or containing) byte `offset`;
    /// an offset past the end is the end of the text.
    fn at(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        (line, column)
    }
}

/// What an open element is, for what its content means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `<contacts>`.
    Root,
    /// A `<contact>` directly inside `<contacts>`.
    Contact,
    /// Anything else; a warning was given (or its parent got one).
    Ignored,
}

/// An element whose end tag has not been read yet.
struct Open {
    name: String,
    offset: usize,
    kind: Kind,
    text_warned: bool,
}

/// One attribute as read: name, decoded value, byte offset of the name.
struct Attr {
    key: String,
    value: String,
    offset: usize,
}

/// One pass over a file, shared by [`ContactList::parse`] (which ignores the
/// diagnostics) and [`ContactList::validate`].
struct Scanner<'a> {
    positions: Positions<'a>,
    collect: bool,
    diagnostics: Vec<Diagnostic>,
    contacts: Vec<Contact>,
}

impl<'a> Scanner<'a> {
    fn run(bytes: &[u8], collect: bool) -> Result<(ContactList, Vec<Diagnostic>), ContactsError> {
        let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
        let text = match std::str::from_utf8(body) {
            Ok(text) => text,
            Err(error) => return Err(not_utf8(body, error.valid_up_to())),
        };
        if text.bytes().all(is_xml_whitespace) {
            return Err(ContactsError::Empty);
        }
        let mut scanner = Scanner {
            positions: Positions::new(text),
            collect,
            diagnostics: Vec::new(),
            contacts: Vec::new(),
        };
        scanner.scan(text)?;
        Ok((
            ContactList {
                contacts: scanner.contacts,
            },
            scanner.diagnostics,
        ))
    }

    fn scan(&mut self, text: &'a str) -> Result<(), ContactsError> {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        // End tags are matched here, to name the line of the start tag.
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        // `--` inside a comment is not XML.
        config.check_comments = true;
        config.expand_empty_elements = false;
        config.trim_text(false);

        let mut stack: Vec<Open> = Vec::new();
        let mut root_seen = false;
        let mut root_done = false;
        loop {
            // Text is never trimmed, so every event starts where the last ended.
            let start = to_offset(reader.buffer_position());
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(error) => {
                    let at = to_offset(reader.error_position());
                    return Err(self.malformed(at, format!("malformed XML: {error}")));
                }
            };
            match event {
                Event::Start(element) => {
                    let kind = self.element(&element, start, stack.last(), root_done)?;
                    root_seen = true;
                    stack.push(Open {
                        name: lossy(element.name().as_ref()),
                        offset: start,
                        kind,
                        text_warned: false,
                    });
                }
                Event::Empty(element) => {
                    self.element(&element, start, stack.last(), root_done)?;
                    root_seen = true;
                    root_done |= stack.is_empty();
                }
                Event::End(end) => {
                    let name = end.name();
                    match stack.pop() {
                        None => {
                            let message =
                                format!("</{}> closes no open element", lossy(name.as_ref()));
                            return Err(self.malformed(start, message));
                        }
                        Some(open) if open.name.as_bytes() != name.as_ref() => {
                            let (line, _) = self.positions.at(open.offset);
                            let message = format!(
                                "</{}> does not match <{}> opened on line {line}",
                                lossy(name.as_ref()),
                                open.name
                            );
                            return Err(self.malformed(start, message));
                        }
                        Some(_) => root_done |= stack.is_empty(),
                    }
                }
                Event::Text(content) => {
                    if let Some(i) = content.iter().position(|&b| !is_xml_whitespace(b)) {
                        self.stray_text(start + i, &mut stack, root_done)?;
                    }
                }
                Event::CData(_) => self.stray_text(start, &mut stack, root_done)?,
                Event::GeneralRef(reference) => {
                    let name = lossy(&reference);
                    if decode_reference(&name).is_none() {
                        let message = format!("unknown entity &{name}; (only &lt; &gt; &amp; &apos; &quot; and &#...; exist here)");
                        return Err(self.malformed(start, message));
                    }
                    self.stray_text(start, &mut stack, root_done)?;
                }
                Event::Decl(declaration) => self.declaration(&declaration, start)?,
                Event::DocType(_) => {
                    if root_seen {
                        return Err(
                            self.malformed(start, "<!DOCTYPE ...> must come before <contacts>")
                        );
                    }
                }
                Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => {
                    if let Some(open) = stack.last() {
                        let message =
                            format!("<{}> is never closed (missing </{}>)", open.name, open.name);
                        return Err(self.malformed(open.offset, message));
                    }
                    if !root_seen {
                        return Err(self.malformed(start, "no <contacts> element in the file"));
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Checks a start or empty element and, for a `<contact>`, reads it.
    fn element(
        &mut self,
        element: &BytesStart<'_>,
        offset: usize,
        parent: Option<&Open>,
        root_done: bool,
    ) -> Result<Kind, ContactsError> {
        let name = lossy(element.name().as_ref());
        if !is_xml_name(&name) {
            let message = if name.is_empty() {
                "'<' must be followed by an element name (write &lt; for a literal '<')".to_owned()
            } else {
                format!("\"{name}\" is not a valid element name")
            };
            return Err(self.malformed(offset + 1, message));
        }
        let kind = match parent.map(|open| open.kind) {
            None if root_done => {
                let message = format!(
                    "<{name}> after the end of <contacts>: a file has only one root element"
                );
                return Err(self.malformed(offset, message));
            }
            None if name != "contacts" => {
                let (line, column) = self.positions.at(offset);
                return Err(ContactsError::WrongRoot {
                    line,
                    column,
                    found: name,
                });
            }
            None => Kind::Root,
            Some(Kind::Root) if name == "contact" => Kind::Contact,
            Some(Kind::Root) => {
                let message = format!(
                    "<{name}> inside <contacts> is ignored by MicroSIP (it reads only <contact>)"
                );
                self.warning(offset, None, message);
                Kind::Ignored
            }
            Some(Kind::Contact) => {
                self.warning(
                    offset,
                    None,
                    format!("<{name}> inside <contact> is ignored by MicroSIP"),
                );
                Kind::Ignored
            }
            Some(Kind::Ignored) => Kind::Ignored,
        };
        let attributes = self.attributes(element, offset)?;
        if kind == Kind::Contact {
            self.contact(attributes, offset);
        }
        Ok(kind)
    }

    /// Reads and decodes the attributes of an element starting at byte
    /// `offset`; a repeated one gets an error diagnostic and is dropped.
    fn attributes(
        &mut self,
        element: &BytesStart<'_>,
        offset: usize,
    ) -> Result<Vec<Attr>, ContactsError> {
        // The element's buffer is the text between `<` and `>` (or `/>`).
        let buffer: &[u8] = element;
        let base = offset + 1;
        let mut attributes: Vec<Attr> = Vec::new();
        for attribute in element.attributes().with_checks(false) {
            let attribute = match attribute {
                Ok(attribute) => attribute,
                Err(error) => {
                    let (at, message) = describe_attr_error(buffer, &error);
                    return Err(self.malformed(base + at, message));
                }
            };
            let key_at = base + offset_in(buffer, attribute.key.as_ref()).unwrap_or(0);
            let key = lossy(attribute.key.as_ref());
            if !is_xml_name(&key) {
                return Err(
                    self.malformed(key_at, format!("\"{key}\" is not a valid attribute name"))
                );
            }
            let value_at = offset_in(buffer, &attribute.value).map_or(key_at, |at| base + at);
            let raw = lossy(&attribute.value);
            let value = decode_value(&raw)
                .map_err(|(at, message)| self.malformed(value_at + at, message))?;
            if attributes.iter().any(|seen| seen.key == key) {
                let message = format!(
                    "attribute \"{key}\" is given twice on this element (not valid XML); the first value is used"
                );
                self.error(key_at, Some(&key), message);
                continue;
            }
            attributes.push(Attr {
                key,
                value,
                offset: key_at,
            });
        }
        Ok(attributes)
    }

    /// Builds a contact from its attributes, checking them.
    fn contact(&mut self, attributes: Vec<Attr>, offset: usize) {
        let mut contact = Contact::default();
        let mut number_at = offset;
        for Attr {
            key,
            value,
            offset: at,
        } in attributes
        {
            let chars = value.chars().count();
            if chars > MAX_VALUE_CHARS {
                let message = format!(
                    "value is {chars} characters long, more than {MAX_VALUE_CHARS}; MicroSIP may not show or keep it whole"
                );
                self.warning(at, Some(&key), message);
            }
            if key == "number" {
                number_at = at;
            }
            match contact.slot(&key) {
                Some(Slot::Text(field)) => *field = value,
                Some(Slot::Flag(flag)) => {
                    *flag = value == "1";
                    if value != "0" && value != "1" {
                        let message = format!(
                            "must be 0 or 1, not \"{}\"; MicroSIP reads anything but 1 as 0",
                            shorten(&value)
                        );
                        self.error(at, Some(&key), message);
                    }
                }
                None => contact.extra.push((key, value)),
            }
        }
        if contact.number.is_empty() {
            self.warning(
                number_at,
                Some("number"),
                "MicroSIP skips a contact without a number",
            );
        }
        self.contacts.push(contact);
    }

    /// Non-whitespace text (or CDATA, or a reference) at byte `at`.
    fn stray_text(
        &mut self,
        at: usize,
        stack: &mut [Open],
        root_done: bool,
    ) -> Result<(), ContactsError> {
        let Some(open) = stack.last_mut() else {
            let message = if root_done {
                "text after the end of <contacts>"
            } else {
                "text before <contacts>: the file must start with <contacts> (after an optional <?xml ...?> line)"
            };
            return Err(self.malformed(at, message));
        };
        if open.kind != Kind::Ignored && !open.text_warned {
            open.text_warned = true;
            let message = format!("text inside <{}> is ignored by MicroSIP", open.name);
            self.warning(at, None, message);
        }
        Ok(())
    }

    /// Checks the `<?xml ...?>` declaration at byte `offset`.
    fn declaration(
        &mut self,
        declaration: &BytesDecl<'_>,
        offset: usize,
    ) -> Result<(), ContactsError> {
        if offset != 0 {
            return Err(self.malformed(
                offset,
                "the <?xml ...?> declaration must be at the very start of the file",
            ));
        }
        if let Err(error) = declaration.version() {
            return Err(self.malformed(
                offset,
                format!("malformed <?xml ...?> declaration: {error}"),
            ));
        }
        match declaration.encoding() {
            None => {}
            Some(Err(error)) => {
                return Err(self.malformed(
                    offset,
                    format!("malformed <?xml ...?> declaration: {error}"),
                ));
            }
            Some(Ok(encoding)) => {
                let encoding = lossy(&encoding);
                if !encoding.eq_ignore_ascii_case("utf-8") && !encoding.eq_ignore_ascii_case("utf8")
                {
                    let message = format!("declares encoding \"{encoding}\", but MicroSIP reads Contacts.xml as UTF-8");
                    self.warning(offset, Some("encoding"), message);
                }
            }
        }
        Ok(())
    }

    fn malformed(&self, offset: usize, message: impl Into<String>) -> ContactsError {
        let (line, column) = self.positions.at(offset);
        ContactsError::Malformed {
            line,
            column,
            message: message.into(),
        }
    }

    fn error(&mut self, offset: usize, key: Option<&str>, message: impl Into<String>) {
        if self.collect {
            let (line, column) = self.positions.at(offset);
            self.push(Diagnostic::error(line, message).with_column(column), key);
        }
    }

    fn warning(&mut self, offset: usize, key: Option<&str>, message: impl Into<String>) {
        if self.collect {
            let (line, column) = self.positions.at(offset);
            self.push(Diagnostic::warning(line, message).with_column(column), key);
        }
    }

    fn push(&mut self, diagnostic: Diagnostic, key: Option<&str>) {
        self.diagnostics.push(match key {
            Some(key) => diagnostic.with_key(None, key),
            None => diagnostic,
        });
    }
}

/// The error for bytes that are valid UTF-8 only up to `valid_up_to`.
fn not_utf8(body: &[u8], valid_up_to: usize) -> ContactsError {
    let prefix = body
        .get(..valid_up_to)
        .and_then(|prefix| std::str::from_utf8(prefix).ok())
        .unwrap_or_default();
    let (line, column) = Positions::new(prefix).at(prefix.len());
    let mut detail = match body.get(valid_up_to) {
        Some(byte) => format!("byte 0x{byte:02X} cannot start or continue a UTF-8 character here"),
        None => "the file ends inside a UTF-8 character".to_owned(),
    };
    if body.starts_with(b"\xFF\xFE") || body.starts_with(b"\xFE\xFF") {
        detail.push_str(" (the file looks like UTF-16)");
    }
    detail.push_str("; MicroSIP reads and writes Contacts.xml as UTF-8");
    ContactsError::NotUtf8 {
        line,
        column,
        detail,
    }
}

/// quick-xml's positions are `u64`; anything too large is simply the end.
fn to_offset(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// Where `part` starts inside `whole`, when it is a slice of it. quick-xml's
/// attribute keys and values borrow from the element's buffer, which is how
/// their columns are found.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let at = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = at.checked_add(part.len())?;
    (end <= whole.len()).then_some(at)
}

/// Position (in the element's buffer) and message for a bad attribute.
fn describe_attr_error(buffer: &[u8], error: &AttrError) -> (usize, String) {
    match *error {
        AttrError::ExpectedEq(at) => {
            // quick-xml reports where it expected `=`; point at the name instead.
            let before = buffer.get(..at).unwrap_or(buffer);
            let end = before
                .iter()
                .rposition(|&b| !is_xml_whitespace(b))
                .map_or(0, |i| i + 1);
            let start = before
                .get(..end)
                .and_then(|name| name.iter().rposition(|&b| is_xml_whitespace(b)))
                .map_or(0, |i| i + 1);
            let name = lossy(buffer.get(start..end).unwrap_or_default());
            (
                start,
                format!("attribute \"{name}\" has no value (write {name}=\"...\")"),
            )
        }
        AttrError::ExpectedValue(at) => (at, "attribute has no value after '='".to_owned()),
        AttrError::UnquotedValue(at) => (
            at,
            "attribute value must be in double or single quotes".to_owned(),
        ),
        AttrError::ExpectedQuote(at, quote) => (
            at,
            format!(
                "attribute value is missing its closing {}",
                char::from(quote)
            ),
        ),
        AttrError::Duplicated(at, _) => (at, "attribute is given twice".to_owned()),
    }
}

/// Decodes an attribute value as an XML reader must: a literal tab, LF, CR
/// or CRLF becomes one space, then the five named entities and character
/// references are replaced. On error, the byte offset in `raw` and a message.
fn decode_value(raw: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(raw.len());
    let mut skip_to = 0;
    let mut after_cr = false;
    for (i, c) in raw.char_indices() {
        if i < skip_to {
            continue;
        }
        let was_cr = std::mem::replace(&mut after_cr, c == '\r');
        match c {
            '\n' if was_cr => {}
            '\t' | '\n' | '\r' => out.push(' '),
            '<' => {
                return Err((
                    i,
                    "'<' must be written as &lt; in an attribute value".to_owned(),
                ))
            }
            '&' => {
                let rest = raw.get(i + 1..).unwrap_or_default();
                let name = rest.find(';').and_then(|end| rest.get(..end));
                let Some(name) = name.filter(|name| is_reference_name(name)) else {
                    return Err((i, "'&' must be written as &amp;".to_owned()));
                };
                let Some(decoded) = decode_reference(name) else {
                    let message = if name.starts_with('#') {
                        format!("&{name}; is not a valid character reference")
                    } else {
                        format!("unknown entity &{name}; (only &lt; &gt; &amp; &apos; &quot; and &#...; exist here)")
                    };
                    return Err((i, message));
                };
                out.push(decoded);
                skip_to = i + name.len() + 2;
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Whether `name` (between `&` and `;`) looks like a reference at all.
fn is_reference_name(name: &str) -> bool {
    let name = name.strip_prefix('#').unwrap_or(name);
    !name.is_empty() && name.chars().all(is_xml_name_char)
}

/// The character a reference stands for: `lt`, `gt`, `amp`, `apos`, `quot`,
/// `#N` or `#xH` (any character except NUL).
fn decode_reference(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix('x') {
                Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    u32::from_str_radix(hex, 16).ok()?
                }
                None if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
                    number.parse().ok()?
                }
                _ => return None,
            };
            char::from_u32(code).filter(|&c| c != '\0')
        }
    }
}

/// XML's whitespace: space, tab, CR, LF.
fn is_xml_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// XML 1.0's `Name` production.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_xml_name_start_char) && chars.all(is_xml_name_char)
}

fn is_xml_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_xml_name_char(c: char) -> bool {
    is_xml_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Bytes from the reader as text (they come from a `&str`, so this is exact).
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A value short enough to quote in a message.
fn shorten(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let mut short: String = value.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::diagnostic::Severity;

    const MICROSIP_LAYOUT: &[u8] =
        include_bytes!("../../tests/fixtures/contacts/microsip-layout.xml");

    fn contact(name: &str, number: &str) -> Contact {
        Contact {
            name: name.to_owned(),
            number: number.to_owned(),
            ..Contact::default()
        }
    }

    fn malformed(input: &str) -> ContactsError {
        match ContactList::parse(input.as_bytes()) {
            Ok(list) => panic!("parsed {input:?} as {list:?}"),
            Err(error) => error,
        }
    }

    fn position(input: &str) -> (usize, Option<usize>) {
        let error = malformed(input);
        (error.line(), error.column())
    }

    #[test]
    fn writes_two_contacts_exactly_like_microsip() {
        let mut sales = contact("O'Brien & Sons <Sales>", "+15550100199");
        sales.email = "sales@obrien.example".to_owned();
        sales.comment = "says \"hi\"".to_owned();
        sales.starred = true;
        let mut ivan = contact("Иван Петров", "101");
        ivan.firstname = "Иван".to_owned();
        ivan.presence = true;
        ivan.directory = true;
        let list = ContactList {
            contacts: vec![sales, ivan],
        };
        let expected = "<?xml version=\"1.0\"?>\r\n<contacts>\r\n\
            <contact name=\"O&apos;Brien &amp; Sons &lt;Sales&gt;\" number=\"+15550100199\" firstname=\"\" \
            lastname=\"\" phone=\"\" mobile=\"\" email=\"sales@obrien.example\" address=\"\" city=\"\" state=\"\" \
            zip=\"\" comment=\"says &quot;hi&quot;\" id=\"\" info=\"\" presence=\"0\" starred=\"1\" directory=\"0\"/>\r\n\
            <contact name=\"Иван Петров\" number=\"101\" firstname=\"Иван\" lastname=\"\" phone=\"\" mobile=\"\" \
            email=\"\" address=\"\" city=\"\" state=\"\" zip=\"\" comment=\"\" id=\"\" info=\"\" presence=\"1\" \
            starred=\"0\" directory=\"1\"/>\r\n</contacts>\r\n";
        assert_eq!(String::from_utf8(list.to_bytes()).unwrap(), expected);
        assert_eq!(ContactList::parse(expected.as_bytes()), Ok(list));
    }

    #[test]
    fn empty_list_is_a_self_closing_root() {
        assert_eq!(
            ContactList::default().to_bytes(),
            b"<?xml version=\"1.0\"?>\r\n<contacts/>\r\n"
        );
        assert_eq!(
            ContactList::parse(b"<?xml version=\"1.0\"?>\r\n<contacts/>\r\n"),
            Ok(ContactList::default())
        );
        assert_eq!(
            ContactList::parse(b"<contacts></contacts>"),
            Ok(ContactList::default())
        );
    }

    #[test]
    fn microsip_file_parses_and_writes_back_byte_identical() {
        let list = ContactList::parse(MICROSIP_LAYOUT).unwrap();
        assert_eq!(list.contacts.len(), 3);
        let sales = &list.contacts[0];
        assert_eq!(sales.name, "O'Brien & Sons <Sales>");
        assert_eq!(sales.comment, "says \"hi\"");
        assert!(sales.starred && !sales.presence && !sales.directory);
        let ivan = &list.contacts[1];
        assert_eq!(ivan.name, "Иван Петров");
        assert_eq!(ivan.city, "Москва");
        assert!(ivan.presence && !ivan.starred);
        let reception = &list.contacts[2];
        assert_eq!(
            (reception.id.as_str(), reception.info.as_str()),
            ("42", "ext")
        );
        assert!(reception.presence && reception.starred && reception.directory);
        assert!(list.contacts.iter().all(|c| c.extra.is_empty()));
        assert_eq!(list.to_bytes(), MICROSIP_LAYOUT);
        assert_eq!(ContactList::validate(MICROSIP_LAYOUT), Vec::new());
    }

    #[test]
    fn unknown_attributes_are_kept_in_order_after_the_known_ones() {
        let input = "<contacts>\n<contact zeta=\"z &amp; z\" name=\"A\" alpha=\"1\" number=\"100\" omega=\"\"/>\n</contacts>\n";
        let list = ContactList::parse(input.as_bytes()).unwrap();
        let extra: Vec<(&str, &str)> = list.contacts[0]
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(extra, [("zeta", "z & z"), ("alpha", "1"), ("omega", "")]);
        let written = String::from_utf8(list.to_bytes()).unwrap();
        assert!(
            written.contains(
                "<contact name=\"A\" number=\"100\" firstname=\"\" lastname=\"\" phone=\"\" mobile=\"\" email=\"\" \
                 address=\"\" city=\"\" state=\"\" zip=\"\" comment=\"\" id=\"\" info=\"\" presence=\"0\" starred=\"0\" \
                 directory=\"0\" zeta=\"z &amp; z\" alpha=\"1\" omega=\"\"/>\r\n"
            ),
            "{written}"
        );
        assert_eq!(ContactList::parse(written.as_bytes()), Ok(list));
    }

    #[test]
    fn extras_that_cannot_be_written_are_left_out() {
        let mut c = contact("A", "1");
        c.extra = vec![
            ("ok".into(), "1".into()),
            ("name".into(), "dup".into()),
            ("bad name".into(), "x".into()),
            ("ok".into(), "2".into()),
        ];
        let list = ContactList { contacts: vec![c] };
        let parsed = ContactList::parse(&list.to_bytes()).unwrap();
        assert_eq!(parsed.contacts[0].name, "A");
        assert_eq!(
            parsed.contacts[0].extra,
            vec![("ok".to_owned(), "1".to_owned())]
        );
    }

    #[test]
    fn bom_lf_indentation_comments_and_declarations_are_read() {
        let input = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
            <!-- exported by hand -->\n\
            <contacts>\n\
            \t<contact name=\"Alice\" number=\"200\" starred=\"1\"/>\n\
            \x20 <!-- a comment inside -->\n\
            \x20 <contact number = '201' name='Bob &#x41;&#66;' presence=\"1\">\n\
            \x20 </contact>\n\
            </contacts >\n\
            <!-- trailing comment -->\n";
        let list = ContactList::parse(input.as_bytes()).unwrap();
        let mut alice = contact("Alice", "200");
        alice.starred = true;
        let mut bob = contact("Bob AB", "201");
        bob.presence = true;
        assert_eq!(
            list,
            ContactList {
                contacts: vec![alice, bob]
            }
        );
        assert_eq!(ContactList::validate(input.as_bytes()), Vec::new());
    }

    #[test]
    fn flags_are_true_only_for_exactly_one() {
        let input = "<contacts><contact number=\"1\" presence=\"yes\" starred=\"01\" directory=\"1\"/></contacts>";
        let c = &ContactList::parse(input.as_bytes()).unwrap().contacts[0];
        assert!(!c.presence && !c.starred && c.directory);
    }

    #[test]
    fn literal_line_breaks_in_values_are_normalised_but_references_survive() {
        let input = "<contacts><contact number=\"1\" comment=\"a\r\nb\tc\nd&#10;e&#13;f&#9;g\"/></contacts>";
        let c = &ContactList::parse(input.as_bytes()).unwrap().contacts[0];
        assert_eq!(c.comment, "a b c d\ne\rf\tg");
        let written = String::from_utf8(
            ContactList {
                contacts: vec![c.clone()],
            }
            .to_bytes(),
        )
        .unwrap();
        assert!(
            written.contains("comment=\"a b c d&#10;e&#13;f&#9;g\""),
            "{written}"
        );
    }

    #[test]
    fn round_trips_awkward_strings() {
        let alphabet: Vec<char> =
            "aZ09 <>&'\"\t\n\r;#x=/é€Иж😀\u{1}\u{7f}\u{85}\u{a0}\u{2028}\u{fffd}"
                .chars()
                .collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % bound as u64).unwrap()
        };
        for _ in 0..300 {
            let flags = next(8);
            let mut random = |len: usize| {
                (0..len)
                    .map(|_| alphabet[next(alphabet.len())])
                    .collect::<String>()
            };
            let mut c = Contact {
                name: random(12),
                number: random(5),
                comment: random(30),
                zip: random(3),
                info: random(8),
                presence: flags & 1 != 0,
                starred: flags & 2 != 0,
                directory: flags & 4 != 0,
                ..Contact::default()
            };
            c.extra.push(("x-new".to_owned(), random(10)));
            let list = ContactList {
                contacts: vec![c, Contact::default()],
            };
            let bytes = list.to_bytes();
            assert_eq!(
                ContactList::parse(&bytes),
                Ok(list.clone()),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            assert_eq!(ContactList::parse(&bytes).unwrap().to_bytes(), bytes);
        }
    }

    #[test]
    fn nul_is_written_as_a_replacement_character() {
        let list = ContactList {
            contacts: vec![contact("a\0b", "1")],
        };
        let parsed = ContactList::parse(&list.to_bytes()).unwrap();
        assert_eq!(parsed.contacts[0].name, "a\u{fffd}b");
    }

    #[test]
    fn mismatched_end_tag_is_reported_on_its_line() {
        let error = malformed("<contacts>\r\n<contact number=\"1\">\r\n</contacts>\r\n");
        assert_eq!((error.line(), error.column()), (3, Some(1)));
        assert!(error.to_string().contains("opened on line 2"), "{error}");
        let error = malformed("<contacts>\n  <contact number=\"1\"/>\n  </contact>\n</contacts>\n");
        assert_eq!((error.line(), error.column()), (3, Some(3)));
    }

    #[test]
    fn malformed_inputs_give_line_and_column() {
        // Unclosed root: points at the start tag that is never closed.
        assert_eq!(
            position("<contacts>\n<contact number=\"1\"/>\n"),
            (1, Some(1))
        );
        // Unclosed contact element.
        assert_eq!(
            position("<contacts>\n<x/>\n  <contact number=\"1\">\n"),
            (3, Some(3))
        );
        // Tag cut off by the end of the file.
        assert_eq!(
            position("<contacts>\n  <contact number=\"1\""),
            (2, Some(3))
        );
        // Unquoted value: points at the value.
        assert_eq!(
            position("<contacts>\r\n<contact name=John number=\"1\"/>\r\n</contacts>"),
            (2, Some(15))
        );
        // Attribute without a value: points at its name.
        assert_eq!(
            position("<contacts>\n<contact  starred number=\"1\"/>\n</contacts>"),
            (2, Some(11))
        );
        // Missing closing quote swallows the rest of the file: points at the tag.
        assert_eq!(
            position("<contacts>\n<contact name=\"x/>\n</contacts>\n"),
            (2, Some(1))
        );
        // Bad references and a raw '<' in a value point at the character.
        assert_eq!(
            position("<contacts>\n<contact name=\"a &nbsp; b\"/>\n</contacts>"),
            (2, Some(18))
        );
        assert_eq!(
            position("<contacts>\n<contact name=\"Tom & Jerry\"/>\n</contacts>"),
            (2, Some(20))
        );
        assert_eq!(
            position("<contacts>\n<contact name=\"a<b\"/>\n</contacts>"),
            (2, Some(17))
        );
        assert_eq!(
            position("<contacts>\n<contact name=\"&#0;\"/>\n</contacts>"),
            (2, Some(16))
        );
        // Column counts characters, not bytes.
        assert_eq!(
            position("<contacts>\n<contact name=\"Иван\" x=&amp;/>\n</contacts>"),
            (2, Some(24))
        );
        // Garbage.
        assert_eq!(position("hello"), (1, Some(1)));
        assert_eq!(position("\n\n  hello <contacts/>"), (3, Some(3)));
        assert_eq!(position("<contacts/>\njunk"), (2, Some(1)));
        assert_eq!(position("<contacts/>\n<contacts/>\n"), (2, Some(1)));
        assert_eq!(
            position("<contacts>\n</contacts>\n</contacts>\n"),
            (3, Some(1))
        );
        assert_eq!(position("<contacts>\n<>\n</contacts>"), (2, Some(2)));
        assert_eq!(
            position("<contacts>\n<!-- a -- b -->\n</contacts>"),
            (2, Some(8))
        );
        assert_eq!(
            position("<contacts>\n<contact 1x=\"2\"/>\n</contacts>"),
            (2, Some(10))
        );
        assert_eq!(
            position("<contacts>\n<contact/>\n&bogus;</contacts>"),
            (3, Some(1))
        );
        assert_eq!(
            position("<?xml version=\"1.0\"?>\n<?xml version=\"1.0\"?>\n<contacts/>"),
            (2, Some(1))
        );
        assert_eq!(
            position("<?xml version=\"1.0\"?>\n<!-- nothing -->\n"),
            (3, Some(1))
        );
        // The BOM is not a column.
        assert_eq!(position("\u{feff}<contacts>\n</contact>"), (2, Some(1)));
        assert_eq!(position("\u{feff}x"), (1, Some(1)));
    }

    #[test]
    fn wrong_root_is_its_own_error() {
        let error = malformed("<?xml version=\"1.0\"?>\r\n<phonebook>\r\n</phonebook>\r\n");
        assert_eq!(
            error,
            ContactsError::WrongRoot {
                line: 2,
                column: 1,
                found: "phonebook".to_owned()
            }
        );
    }

    #[test]
    fn empty_input_says_empty_file() {
        for input in ["", "\u{feff}", " \r\n\t\n"] {
            let error = malformed(input);
            assert_eq!(error, ContactsError::Empty);
            assert_eq!(error.to_diagnostic().message, "empty file");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_located() {
        let error = ContactList::parse(b"<contacts>\r\n<contact name=\"\xff\"/>\r\n</contacts>")
            .unwrap_err();
        assert!(
            matches!(
                error,
                ContactsError::NotUtf8 {
                    line: 2,
                    column: 16,
                    ..
                }
            ),
            "{error:?}"
        );
        let error = ContactList::parse(b"\xff\xfe<\0c\0").unwrap_err();
        assert!(error.to_string().contains("UTF-16"), "{error}");
        assert_eq!((error.line(), error.column()), (1, Some(1)));
        // Cut inside a multi-byte character.
        let error =
            ContactList::parse("<contacts>\nИ".as_bytes().split_last().unwrap().1).unwrap_err();
        assert!(
            matches!(
                error,
                ContactsError::NotUtf8 {
                    line: 2,
                    column: 1,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn error_converts_to_a_located_diagnostic() {
        let error = malformed("<contacts>\n<contact number=\"1\">\n</contacts>");
        let diagnostic = error.to_diagnostic();
        assert_eq!(diagnostic.severity, Severity::Error);
        assert_eq!((diagnostic.line, diagnostic.column), (3, Some(1)));
        assert!(
            !diagnostic.message.contains("line 3"),
            "{}",
            diagnostic.message
        );
        assert_eq!(
            ContactList::validate(b"<contacts>\n<contact number=\"1\">\n</contacts>"),
            vec![diagnostic]
        );
    }

    /// (severity, line, column, key, message) of one diagnostic.
    type Summary = (Severity, usize, Option<usize>, Option<String>, String);

    fn summary(input: &str) -> Vec<Summary> {
        ContactList::validate(input.as_bytes())
            .into_iter()
            .map(|d| (d.severity, d.line, d.column, d.key, d.message))
            .collect()
    }

    #[test]
    fn validate_reports_flags_that_are_not_0_or_1() {
        let input = "<contacts>\n<contact number=\"1\"\n  presence=\"yes\" starred=\"1\" directory=\"\"/>\n</contacts>\n";
        let found = summary(input);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, Severity::Error);
        assert_eq!(
            (found[0].1, found[0].2, found[0].3.as_deref()),
            (3, Some(3), Some("presence"))
        );
        assert!(found[0].4.contains("\"yes\""), "{}", found[0].4);
        assert_eq!(
            (found[1].0, found[1].1, found[1].2),
            (Severity::Error, 3, Some(30))
        );
        assert_eq!(found[1].3.as_deref(), Some("directory"));
    }

    #[test]
    fn validate_warns_about_a_contact_without_a_number() {
        let input = "<contacts>\r\n<contact name=\"A\" number=\"1\"/>\r\n<contact name=\"B\"/>\r\n<contact name=\"C\" number=\"\"/>\r\n</contacts>";
        let found = summary(input);
        let skip = "MicroSIP skips a contact without a number".to_owned();
        let number = Some("number".to_owned());
        assert_eq!(
            found,
            vec![
                (Severity::Warning, 3, Some(1), number.clone(), skip.clone()),
                (Severity::Warning, 4, Some(19), number, skip),
            ]
        );
        // It is still read, so that writing the file back keeps it.
        assert_eq!(
            ContactList::parse(input.as_bytes()).unwrap().contacts.len(),
            3
        );
    }

    #[test]
    fn validate_warns_about_long_values() {
        let long = "é".repeat(MAX_VALUE_CHARS + 1);
        let exact = "x".repeat(MAX_VALUE_CHARS);
        let input = format!("<contacts>\n<contact number=\"1\" name=\"{exact}\"/>\n<contact number=\"2\" comment=\"{long}\"/>\n</contacts>");
        let found = summary(&input);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].0, found[0].1, found[0].2),
            (Severity::Warning, 3, Some(21))
        );
        assert_eq!(found[0].3.as_deref(), Some("comment"));
        assert!(found[0].4.contains("256 characters"), "{}", found[0].4);
    }

    #[test]
    fn validate_reports_duplicate_attributes_and_parse_keeps_the_first() {
        let input = "<contacts>\n<contact number=\"1\" name=\"A\"\n name=\"B\"/>\n</contacts>";
        let found = summary(input);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].0, found[0].1, found[0].2),
            (Severity::Error, 3, Some(2))
        );
        assert_eq!(found[0].3.as_deref(), Some("name"));
        assert_eq!(
            ContactList::parse(input.as_bytes()).unwrap().contacts[0].name,
            "A"
        );
    }

    #[test]
    fn validate_warns_about_other_elements_and_text() {
        let input = "<contacts>\n<group name=\"x\"><contact number=\"9\"/></group>\n<contact number=\"1\"><note/>hi</contact>\nstray\n</contacts>";
        let found = summary(input);
        let brief: Vec<(Severity, usize, Option<usize>)> =
            found.iter().map(|f| (f.0, f.1, f.2)).collect();
        assert_eq!(
            brief,
            vec![
                (Severity::Warning, 2, Some(1)),
                (Severity::Warning, 3, Some(21)),
                (Severity::Warning, 3, Some(28)),
                (Severity::Warning, 4, Some(1)),
            ],
            "{found:?}"
        );
        assert!(found[0].4.contains("<group>"), "{}", found[0].4);
        assert!(found.iter().all(|f| f.3.is_none()));
        // The contact inside <group> is not one MicroSIP reads.
        let list = ContactList::parse(input.as_bytes()).unwrap();
        assert_eq!(list.contacts, vec![contact("", "1")]);
    }

    #[test]
    fn validate_warns_about_a_declared_encoding_other_than_utf8() {
        let found = summary("<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n<contacts/>");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].0, found[0].1, found[0].3.as_deref()),
            (Severity::Warning, 1, Some("encoding"))
        );
    }

    #[test]
    fn display_name_falls_back_to_the_number() {
        assert_eq!(contact("Alice", "200").display_name(), "Alice");
        assert_eq!(contact("", "200").display_name(), "200");
    }

    #[test]
    fn never_panics_on_damaged_input() {
        for len in 0..=MICROSIP_LAYOUT.len() {
            let cut = &MICROSIP_LAYOUT[..len];
            let _ = ContactList::parse(cut);
            let _ = ContactList::validate(cut);
        }
        let mut seed: u32 = 12345;
        let mut bytes = MICROSIP_LAYOUT.to_vec();
        for round in 0..2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let at = (seed >> 8) as usize % bytes.len();
            let value = [
                b'<', b'>', b'"', b'\'', b'&', b';', b'/', b'=', 0xFF, 0xD0, b'\n', b' ',
            ][(seed >> 3) as usize % 12];
            bytes[at] = value;
            if round % 100 == 0 {
                bytes = MICROSIP_LAYOUT.to_vec();
            }
            if let Ok(list) = ContactList::parse(&bytes) {
                assert_eq!(ContactList::parse(&list.to_bytes()), Ok(list));
            }
            let _ = ContactList::validate(&bytes);
        }
    }
}
