//! The header checks RFC 4475 §3.1.2 expects a parser to make, on
//! normalised fields (one value each, LWS tightened).

use super::error::WireError;
use super::normalize::{is_token_char, Field, ADDRESS};
use super::start_line::StartLine;

const SINGLE: &[&str] = &[
    "Call-ID",
    "CSeq",
    "From",
    "To",
    "Max-Forwards",
    "Content-Type",
    "Content-Length",
];

const REQUIRED: &[&str] = &["Via", "From", "To", "Call-ID", "CSeq"];

pub(crate) fn check(start: &StartLine, fields: &[Field]) -> Result<(), WireError> {
    let count = |name: &str| fields.iter().filter(|f| f.name == name).count();
    for &name in REQUIRED {
        if count(name) == 0 {
            return Err(WireError::MissingHeader { name });
        }
    }
    // RFC 3261 §8.1.1 makes Max-Forwards mandatory in requests; responses
    // often lack it and nothing depends on it there.
    if matches!(start, StartLine::Request { .. }) && count("Max-Forwards") == 0 {
        return Err(WireError::MissingHeader {
            name: "Max-Forwards",
        });
    }
    for &name in SINGLE {
        if count(name) > 1 {
            return Err(WireError::DuplicateHeader { name });
        }
    }
    for field in fields {
        check_field(start, field)?;
    }
    Ok(())
}

fn invalid(name: &str, reason: &'static str) -> WireError {
    WireError::InvalidHeader {
        name: name.to_owned(),
        reason,
    }
}

fn check_field(start: &StartLine, field: &Field) -> Result<(), WireError> {
    let name = field.name.as_str();
    let value = field.value.as_str();
    match name {
        "CSeq" => check_cseq(start, value),
        "Max-Forwards" => match value.parse::<u8>() {
            Ok(_) if value.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
            _ => Err(invalid(name, "must be a number from 0 to 255")),
        },
        "Call-ID" if value.is_empty() || value.contains([' ', '\t']) => {
            Err(invalid(name, "must be one word without spaces"))
        }
        "Via" => check_via(value),
        "Date" if !value.ends_with(" GMT") => Err(invalid(name, "time zone must be GMT")),
        "Contact" if value == "*" => Ok(()),
        _ if ADDRESS.contains(&name) => check_address(name, value),
        _ => Ok(()),
    }
}

/// `CSeq: 1*DIGIT LWS Method`, the number below 2^31 (RFC 3261 §8.1.1.5),
/// the method equal to the request's (RFC 4475 mismatch01/02).
fn check_cseq(start: &StartLine, value: &str) -> Result<(), WireError> {
    let (number, method) = value
        .split_once([' ', '\t'])
        .ok_or(invalid("CSeq", "must be a sequence number and a method"))?;
    let method = method.trim_start_matches([' ', '\t']);
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("CSeq", "sequence number is not a number"));
    }
    if number.parse::<u32>().map_or(true, |n| n >= 1 << 31) {
        return Err(invalid("CSeq", "sequence number must be below 2^31"));
    }
    if method.is_empty() || !method.chars().all(is_token_char) {
        return Err(invalid("CSeq", "method is not a token"));
    }
    if let StartLine::Request {
        method: request, ..
    } = start
    {
        if request != method {
            return Err(WireError::CSeqMismatch {
                method: request.clone(),
                cseq: method.to_owned(),
            });
        }
    }
    Ok(())
}

/// `SIP/2.0/transport sent-by *(;param)` with no empty parameter.
fn check_via(value: &str) -> Result<(), WireError> {
    let bad = |reason| invalid("Via", reason);
    let (protocol, rest) = value
        .split_once(' ')
        .ok_or(bad("must be a sent-protocol and a sent-by"))?;
    let mut parts = protocol.split('/');
    let (Some(name), Some(version), Some(transport), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("sent-protocol must be SIP/2.0/transport"));
    };
    if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
        return Err(bad("sent-protocol must be SIP/2.0/transport"));
    }
    if transport.is_empty() || !transport.chars().all(is_token_char) {
        return Err(bad("transport is not a token"));
    }
    let mut pieces = rest.split(';');
    if pieces
        .next()
        .is_none_or(|sent_by| sent_by.trim().is_empty())
    {
        return Err(bad("missing sent-by"));
    }
    if pieces.any(|param| param.trim().is_empty()) {
        return Err(bad("empty parameter"));
    }
    Ok(())
}

/// name-addr or addr-spec (RFC 3261 §20.10, RFC 4475 badaspec, baddn, regbadct).
fn check_address(name: &str, value: &str) -> Result<(), WireError> {
    let bad = |reason| invalid(name, reason);
    if value.is_empty() {
        return Err(bad("empty address"));
    }
    let display_end = angle_start(value);
    let params = match display_end {
        Some(open) => {
            let display = value.get(..open).unwrap_or_default().trim_end();
            check_display_name(name, display)?;
            let after = value.get(open + 1..).unwrap_or_default();
            let (uri, params) = after.split_once('>').ok_or(bad("unclosed <"))?;
            if uri.is_empty() || uri.contains(char::is_whitespace) {
                return Err(bad("whitespace or nothing inside <>"));
            }
            params
        }
        None => {
            let (uri, params) = value.split_once(';').unwrap_or((value, ""));
            if uri.contains(char::is_whitespace) {
                return Err(bad("display name without <> around the URI"));
            }
            if uri.contains(['?', ',']) {
                return Err(bad("a URI with ? or , must be enclosed in <>"));
            }
            if params.is_empty() {
                return Ok(());
            }
            value.get(uri.len()..).unwrap_or_default()
        }
    };
    check_params(name, params)
}

/// Where the `<` of a name-addr is, outside any quoted display name.
fn angle_start(value: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (index, c) in value.char_indices() {
        match (in_quotes, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_quotes = !in_quotes,
            (false, _, '<') => return Some(index),
            _ => {}
        }
    }
    None
}

/// A display name is a quoted string or tokens separated by LWS.
fn check_display_name(name: &str, display: &str) -> Result<(), WireError> {
    if display.is_empty()
        || (display.starts_with('"') && display.ends_with('"') && display.len() > 1)
    {
        return Ok(());
    }
    if display
        .chars()
        .all(|c| is_token_char(c) || c == ' ' || c == '\t')
    {
        return Ok(());
    }
    Err(invalid(
        name,
        "display name must be quoted when it is not all tokens",
    ))
}

/// Header parameters after the address: `;name[=value]`, none empty.
fn check_params(name: &str, params: &str) -> Result<(), WireError> {
    if params.is_empty() {
        return Ok(());
    }
    let Some(list) = params.strip_prefix(';') else {
        return Err(invalid(name, "junk after the address"));
    };
    let mut in_quotes = false;
    let mut current_empty = true;
    let mut escaped = false;
    for c in list.chars() {
        if in_quotes {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = true;
                current_empty = false;
            }
            ';' if current_empty => return Err(invalid(name, "empty parameter")),
            ';' => current_empty = true,
            _ => current_empty = false,
        }
    }
    if current_empty {
        return Err(invalid(name, "empty parameter"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, value: &str) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }

    fn request(method: &str) -> StartLine {
        StartLine::Request {
            method: method.into(),
            uri: "sip:a@b".into(),
        }
    }

    fn minimal(method: &str) -> Vec<Field> {
        vec![
            f("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),
            f("From", "<sip:a@b>;tag=1"),
            f("To", "sip:c@d"),
            f("Call-ID", "x@y"),
            f("CSeq", &format!("1 {method}")),
            f("Max-Forwards", "70"),
        ]
    }

    fn with(mut fields: Vec<Field>, extra: Field) -> Vec<Field> {
        fields.push(extra);
        fields
    }

    #[test]
    fn a_minimal_request_and_response_pass() {
        assert_eq!(check(&request("INVITE"), &minimal("INVITE")), Ok(()));
        let response = StartLine::Response {
            code: 200,
            reason: "OK".into(),
        };
        let mut fields = minimal("INVITE");
        fields.retain(|f| f.name != "Max-Forwards");
        assert_eq!(check(&response, &fields), Ok(()));
    }

    #[test]
    fn mandatory_and_single_headers() {
        for name in ["Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards"] {
            let mut fields = minimal("INVITE");
            fields.retain(|f| f.name != name);
            assert!(
                matches!(check(&request("INVITE"), &fields), Err(WireError::MissingHeader { name: n }) if n == name)
            );
        }
        let fields = with(minimal("INVITE"), f("Call-ID", "other"));
        assert_eq!(
            check(&request("INVITE"), &fields),
            Err(WireError::DuplicateHeader { name: "Call-ID" })
        );
    }

    #[test]
    fn cseq_rules() {
        assert!(matches!(
            check(&request("OPTIONS"), &minimal("INVITE")),
            Err(WireError::CSeqMismatch { .. })
        ));
        let start = request("INVITE");
        for bad in [
            "36893488147419103232 INVITE",
            "2147483648 INVITE",
            "x INVITE",
            "1",
            "-1 INVITE",
        ] {
            let err = check_cseq(&start, bad).unwrap_err();
            assert!(matches!(err, WireError::InvalidHeader { .. }), "{bad}");
        }
        assert_eq!(check_cseq(&start, "2147483647 INVITE"), Ok(()));
    }

    #[test]
    fn max_forwards_and_date() {
        let start = request("INVITE");
        assert!(check_field(&start, &f("Max-Forwards", "300")).is_err());
        assert!(check_field(&start, &f("Max-Forwards", "+1")).is_err());
        assert!(check_field(&start, &f("Date", "Fri, 01 Jan 2010 16:00:00 EST")).is_err());
        assert!(check_field(&start, &f("Date", "Sat, 13 Nov 2010 23:29:00 GMT")).is_ok());
    }

    #[test]
    fn via_rules() {
        assert_eq!(
            check_via("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en"),
            Ok(())
        );
        assert_eq!(check_via("SIP/2.0/UDP [2001:db8::9]:5060;rport"), Ok(()));
        for bad in [
            "SIP/7.0/UDP h",
            "SIP/2.0 h",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP h;;branch=1",
            "SIP/2.0/UDP h;",
        ] {
            assert!(check_via(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn address_rules() {
        for good in [
            "sip:a@b",
            "sip:a@b;tag=1",
            "<sip:a@b>",
            r#""Bell, Alexander" <sip:a@b>;tag=4"#,
            "A. Bell <sip:a@b>;tag=qweoiqpe",
            r#""J Rosenberg \\\"" <sip:a@b>;tag=98asjd8"#,
            "caller<sip:caller@example.com>;tag=323",
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
            "isbn:2983792873",
            r#"<sip:a@b>;+sip.instance="<urn:uuid:1>";reg-id=1"#,
        ] {
            assert_eq!(check_address("To", good), Ok(()), "{good}");
        }
        for bad in [
            "Bell, Alexander <sip:a@b>;tag=43",
            r#""Watson, Thomas" < sip:t.watson@example.org >"#,
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            r#""Joe" <sip:joe@example.org>;;;;"#,
            "<sip:a@b",
            "",
        ] {
            assert!(check_address("To", bad).is_err(), "{bad}");
        }
    }
}
