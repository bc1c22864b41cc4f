//! Header section → one clean `name: value` per header, before rsip sees it.
//!
//! Hand-written because rsip's tokenizer is exactly what fails here: it
//! rejects folding and whitespace before the colon, does not know compact
//! names, and keeps comma lists in one header (research §1.2).

use super::error::WireError;

/// One header after unfolding, with its canonical name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    /// Canonical spelling for known headers (compact forms expanded),
    /// otherwise the name as received.
    pub name: String,
    /// The value, unfolded and trimmed.
    pub value: String,
}

/// The start line and header fields of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    pub start_line: String,
    pub fields: Vec<Field>,
}

/// RFC 3261 §7.3.3 compact forms, plus those registered since (RFC 3515,
/// 3841, 3892, 4028, 4474, 6665).
const COMPACT: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'n', "Identity-Info"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// Names written in their registered spelling whatever case they arrive in.
const CANONICAL: &[&str] = &[
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "CSeq",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "RSeq",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "Server",
    "Service-Route",
    "Session-Expires",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "WWW-Authenticate",
    "Warning",
];

/// Headers whose comma-separated values become one header each.
const SPLIT: &[&str] = &["Via", "Contact", "Route", "Record-Route"];

/// Headers built from name-addr / addr-spec (RFC 3261 §20), where `;` and
/// `=` may carry LWS and quoted display names must be closed.
pub(crate) const ADDRESS: &[&str] = &[
    "From",
    "To",
    "Contact",
    "Route",
    "Record-Route",
    "Reply-To",
    "Refer-To",
    "Referred-By",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Service-Route",
];

/// The canonical name of a header as received (compact forms expanded).
pub(crate) fn canonical_name(name: &str) -> String {
    if let [single] = name.as_bytes() {
        let lower = single.to_ascii_lowercase();
        if let Some((_, full)) = COMPACT.iter().find(|(c, _)| *c == lower) {
            return (*full).to_owned();
        }
    }
    CANONICAL
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |known| (*known).to_owned())
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Splits a header section (start line included, final empty line
/// excluded) into the start line and unfolded fields.
///
/// Strict mode refuses control characters, bare CR/LF, non-UTF-8 and lines
/// without a colon. Lenient mode (used only to answer a broken request)
/// decodes lossily and skips lines it cannot read.
pub(crate) fn read_section(section: &[u8], lenient: bool) -> Result<Section, WireError> {
    let text = if lenient {
        String::from_utf8_lossy(section).into_owned()
    } else {
        check_octets(section)?;
        String::from_utf8(section.to_vec()).map_err(|e| WireError::MalformedLine {
            line: line_of(section, e.utf8_error().valid_up_to()),
            reason: "not valid UTF-8",
        })?
    };
    let mut lines = text.split("\r\n");
    let start_line = lines.next().unwrap_or_default().to_owned();
    let mut fields: Vec<Field> = Vec::new();
    for (index, line) in lines.enumerate() {
        let number = index + 2;
        if line.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some(field) => {
                    let more = line.trim_matches([' ', '\t']);
                    if !more.is_empty() {
                        if !field.value.is_empty() {
                            field.value.push(' ');
                        }
                        field.value.push_str(more);
                    }
                }
                None if lenient => {}
                None => {
                    return Err(WireError::MalformedLine {
                        line: number,
                        reason: "continuation line before the first header",
                    })
                }
            }
            continue;
        }
        match split_field(line) {
            Ok(field) => fields.push(field),
            Err(_) if lenient => {}
            Err(reason) => {
                return Err(WireError::MalformedLine {
                    line: number,
                    reason,
                })
            }
        }
    }
    Ok(Section { start_line, fields })
}

fn split_field(line: &str) -> Result<Field, &'static str> {
    let (name, value) = line.split_once(':').ok_or("header line without a colon")?;
    let name = name.trim_end_matches([' ', '\t']);
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err("header name is not a token");
    }
    Ok(Field {
        name: canonical_name(name),
        value: value.trim_matches([' ', '\t']).to_owned(),
    })
}

/// Header text may hold HTAB but no other control octet outside a
/// quoted-pair, and CR only before LF (RFC 3261 §25.1: lines end in CRLF).
fn check_octets(section: &[u8]) -> Result<(), WireError> {
    let mut previous = 0u8;
    for (offset, &byte) in section.iter().enumerate() {
        let next = section.get(offset + 1).copied();
        let reason = match byte {
            b'\r' if next != Some(b'\n') => Some("bare CR"),
            b'\n' if previous != b'\r' => Some("bare LF"),
            b'\r' | b'\n' | b'\t' => None,
            // A quoted-pair may escape any octet but CR and LF (RFC 4475 intmeth).
            0..=0x1f | 0x7f if previous == b'\\' => None,
            0..=0x1f | 0x7f => Some("control character"),
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(WireError::MalformedLine {
                line: line_of(section, offset),
                reason,
            });
        }
        previous = byte;
    }
    Ok(())
}

fn line_of(section: &[u8], offset: usize) -> usize {
    1 + section
        .get(..offset)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Splits list headers into one field per value and tightens LWS that
/// carries no meaning, so the value text downstream is canonical.
pub(crate) fn normalize_fields(fields: Vec<Field>) -> Result<Vec<Field>, WireError> {
    let mut out = Vec::with_capacity(fields.len());
    for field in fields {
        let name = field.name;
        let tighten_around: &[char] = if name == "Via" {
            &['/', ';', '=', ':']
        } else if ADDRESS.contains(&name.as_str()) {
            &[';', '=']
        } else {
            &[]
        };
        if !tighten_around.is_empty() {
            check_quotes(&name, &field.value)?;
        }
        let values = if SPLIT.contains(&name.as_str()) {
            split_list(&name, &field.value)?
        } else {
            vec![field.value]
        };
        for value in values {
            let value = if tighten_around.is_empty() {
                value
            } else {
                tighten(&value, tighten_around)
            };
            out.push(Field {
                name: name.clone(),
                value,
            });
        }
    }
    Ok(out)
}

/// A small scanner over header text that knows quoted strings (with
/// quoted-pairs) and `<...>` URIs, where commas and spaces are literal.
struct Scan {
    in_quotes: bool,
    escaped: bool,
    angle: bool,
}

impl Scan {
    fn new() -> Self {
        Self {
            in_quotes: false,
            escaped: false,
            angle: false,
        }
    }

    /// Feeds one character; true when it is structural (outside quotes and `<>`).
    fn structural(&mut self, c: char) -> bool {
        if self.in_quotes {
            if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == '"' {
                self.in_quotes = false;
            }
            return false;
        }
        if self.angle {
            if c == '>' {
                self.angle = false;
            }
            return false;
        }
        match c {
            '"' => {
                self.in_quotes = true;
                false
            }
            '<' => {
                self.angle = true;
                false
            }
            _ => true,
        }
    }
}

/// Fails when a quoted string is never closed (RFC 4475 quotbal).
pub(crate) fn check_quotes(name: &str, value: &str) -> Result<(), WireError> {
    let mut scan = Scan::new();
    value.chars().for_each(|c| {
        scan.structural(c);
    });
    if scan.in_quotes {
        return Err(WireError::UnterminatedQuote {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Comma-separated values, commas inside quotes and `<>` left alone.
pub(crate) fn split_list(name: &str, value: &str) -> Result<Vec<String>, WireError> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut scan = Scan::new();
    for c in value.chars() {
        if scan.structural(c) && c == ',' {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| {
            let p = p.trim_matches([' ', '\t']).to_owned();
            if p.is_empty() {
                Err(WireError::InvalidHeader {
                    name: name.to_owned(),
                    reason: "empty element in a comma-separated list",
                })
            } else {
                Ok(p)
            }
        })
        .collect()
}

/// Drops whitespace next to the given separators and collapses other runs
/// to one space, outside quoted strings and `<>`.
fn tighten(value: &str, around: &[char]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut scan = Scan::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let structural = scan.structural(c);
        if structural && matches!(c, ' ' | '\t') {
            while chars.next_if(|n| matches!(n, ' ' | '\t')).is_some() {}
            let before = out.chars().last();
            let after = chars.peek().copied();
            let keep = match (before, after) {
                (Some(b), Some(a)) => !around.contains(&b) && !around.contains(&a),
                _ => false,
            };
            if keep {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, value: &str) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn compact_names_expand_and_known_names_take_their_canonical_case() {
        for (compact, full) in [
            ("i", "Call-ID"),
            ("m", "Contact"),
            ("e", "Content-Encoding"),
            ("L", "Content-Length"),
            ("c", "Content-Type"),
            ("f", "From"),
            ("s", "Subject"),
            ("k", "Supported"),
            ("t", "To"),
            ("V", "Via"),
            ("o", "Event"),
            ("u", "Allow-Events"),
            ("x", "Session-Expires"),
            ("y", "Identity"),
            ("r", "Refer-To"),
            ("b", "Referred-By"),
        ] {
            assert_eq!(canonical_name(compact), full);
        }
        assert_eq!(canonical_name("cseq"), "CSeq");
        assert_eq!(canonical_name("MaX-fOrWaRdS"), "Max-Forwards");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
        assert_eq!(canonical_name("q"), "q");
    }

    #[test]
    fn folded_lines_unfold_and_whitespace_before_the_colon_is_allowed() {
        let section =
            b"INVITE sip:a@b SIP/2.0\r\nSubject  :\r\n first\r\n\t second\r\ncseq: 1\r\n  INVITE";
        let read = read_section(section, false).unwrap();
        assert_eq!(read.start_line, "INVITE sip:a@b SIP/2.0");
        assert_eq!(
            read.fields,
            vec![field("Subject", "first second"), field("CSeq", "1 INVITE")]
        );
    }

    #[test]
    fn an_empty_folded_value_stays_empty() {
        let read = read_section(b"X\r\ns :\r\nTo: a", false).unwrap();
        assert_eq!(read.fields, vec![field("Subject", ""), field("To", "a")]);
    }

    #[test]
    fn malformed_lines_are_named_by_number() {
        let err = read_section(b"X\r\nTo: a\r\nno colon here", false).unwrap_err();
        assert_eq!(
            err,
            WireError::MalformedLine {
                line: 3,
                reason: "header line without a colon"
            }
        );
        let err = read_section(b"X\r\n folded too early", false).unwrap_err();
        assert!(matches!(err, WireError::MalformedLine { line: 2, .. }));
        let err = read_section(b"X\r\nTo: a\nFrom: b", false).unwrap_err();
        assert_eq!(
            err,
            WireError::MalformedLine {
                line: 2,
                reason: "bare LF"
            }
        );
        let err = read_section(b"X\r\nTo: a\0", false).unwrap_err();
        assert!(matches!(err, WireError::MalformedLine { line: 2, .. }));
        let err = read_section(b"X\r\nTo: \xff", false).unwrap_err();
        assert!(matches!(err, WireError::MalformedLine { line: 2, .. }));
        let err = read_section(b"X\r\nT o: a", false).unwrap_err();
        assert!(matches!(err, WireError::MalformedLine { line: 2, .. }));
    }

    #[test]
    fn lenient_reading_skips_what_it_cannot_read() {
        let read = read_section(b"X\r\n junk\r\nno colon\r\nTo: \xff\r\nFrom: a\0", true).unwrap();
        assert_eq!(read.fields.len(), 2);
        assert_eq!(read.fields.first().map(|f| f.name.as_str()), Some("To"));
    }

    #[test]
    fn lists_split_outside_quotes_and_angle_brackets() {
        let fields = normalize_fields(vec![
            field("Contact", r#""Doe, John" <sip:a@b;x=1,2>;q=0.5, <sip:c@d>"#),
            field("Via", "SIP/2.0/UDP a;branch=1 , SIP/2.0/TCP b"),
            field("Allow", "INVITE, ACK"),
        ])
        .unwrap();
        assert_eq!(
            fields,
            vec![
                field("Contact", r#""Doe, John" <sip:a@b;x=1,2>;q=0.5"#),
                field("Contact", "<sip:c@d>"),
                field("Via", "SIP/2.0/UDP a;branch=1"),
                field("Via", "SIP/2.0/TCP b"),
                field("Allow", "INVITE, ACK"),
            ]
        );
    }

    #[test]
    fn empty_list_elements_are_refused() {
        let err = normalize_fields(vec![field("Via", "SIP/2.0/UDP a;;,;,,")]).unwrap_err();
        assert!(matches!(err, WireError::InvalidHeader { ref name, .. } if name == "Via"));
    }

    #[test]
    fn whitespace_around_separators_is_tightened() {
        let fields = normalize_fields(vec![
            field(
                "Via",
                "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8",
            ),
            field("To", r#""J  R" <sip:a@b> ;   tag    = 19"#),
            field("Subject", "keep   this ; as is"),
        ])
        .unwrap();
        assert_eq!(
            fields,
            vec![
                field("Via", "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"),
                field("To", r#""J  R" <sip:a@b>;tag=19"#),
                field("Subject", "keep   this ; as is"),
            ]
        );
    }

    #[test]
    fn unterminated_quotes_are_named() {
        let err = normalize_fields(vec![field(
            "To",
            r#""Mr. J. User <sip:j.user@example.com>"#,
        )])
        .unwrap_err();
        assert_eq!(err, WireError::UnterminatedQuote { name: "To".into() });
        let escaped = normalize_fields(vec![field("From", r#""a \" b" <sip:x@y>"#)]);
        assert!(escaped.is_ok());
    }
}
