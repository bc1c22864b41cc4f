//! The response owed to a request that failed parsing (RFC 3261 §8.2.2,
//! §21.4.1): built from the raw header text, since the request itself never
//! became a message.

use super::error::WireError;
use super::framing;
use super::normalize::{self, Field};

/// Builds the response to send for an invalid request, or `None` when none
/// is owed: the bytes are a response (dropped silently), an ACK (never
/// answered), or too broken to read Via and CSeq from. From, To and Call-ID
/// are copied when present (RFC 4475 insuf lacks them and still deserves
/// an answer).
///
/// The status comes from [`WireError::response_status`] (400 for most
/// errors; 505, 416, 501, 513 where RFC 3261 names a better one) and the
/// Reason-Phrase names the problem, e.g.
/// `400 Bad Request (CSeq method 'INVITE' does not match request method 'OPTIONS')`.
/// `to_tag` is added to To when it has no tag yet.
pub fn reject_response(request: &[u8], error: &WireError, to_tag: &str) -> Option<Vec<u8>> {
    let (code, phrase) = error.response_status()?;
    let (section, _) = framing::split_head(request, true).ok()?;
    let read = normalize::read_section(section, true).ok()?;
    let is_response = read
        .start_line
        .get(..4)
        .is_none_or(|p| p.eq_ignore_ascii_case("SIP/"));
    if is_response || read.start_line.starts_with("ACK ") {
        return None;
    }
    let first = |name: &str| {
        read.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    };
    let vias: Vec<&Field> = read.fields.iter().filter(|f| f.name == "Via").collect();
    // Via and CSeq are what the client transaction matches a response on
    // (RFC 3261 §17.1.3); without them an answer reaches no one.
    let cseq = first("CSeq")?;
    if vias.is_empty() {
        return None;
    }
    // Copied values must not carry a bare CR or LF (it would split our
    // answer into garbage): such a request gets none. Other control
    // characters are legal inside quoted strings (RFC 4475 intmeth).
    let clean = |v: &str| !v.contains(['\r', '\n']);
    let copied = vias.iter().map(|f| f.value.as_str()).chain(
        [Some(cseq), first("From"), first("To"), first("Call-ID")]
            .into_iter()
            .flatten(),
    );
    if !copied.clone().all(clean) {
        return None;
    }
    let mut out = format!("SIP/2.0 {code} {phrase} ({})\r\n", reason_detail(error));
    for via in vias {
        out.push_str(&format!("Via: {}\r\n", via.value));
    }
    if let Some(from) = first("From") {
        out.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(to) = first("To") {
        if has_tag(to) || to_tag.is_empty() || normalize::check_quotes("To", to).is_err() {
            out.push_str(&format!("To: {to}\r\n"));
        } else {
            out.push_str(&format!("To: {to};tag={to_tag}\r\n"));
        }
    }
    if let Some(call_id) = first("Call-ID") {
        out.push_str(&format!("Call-ID: {call_id}\r\n"));
    }
    out.push_str(&format!("CSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"));
    Some(out.into_bytes())
}

/// The error as Reason-Phrase text: RFC 3261 §25.1 allows neither `"` nor
/// `<>` or control characters there.
fn reason_detail(error: &WireError) -> String {
    error
        .to_string()
        .chars()
        .map(|c| if c == '"' { '\'' } else { c })
        .filter(|c| !c.is_control() && !"<>[]{}\\|^`#%".contains(*c))
        .take(120)
        .collect()
}

/// Whether a To value already carries a tag parameter (outside quotes and `<>`).
fn has_tag(to: &str) -> bool {
    let after_uri = match to.rfind('>') {
        Some(close) => to.get(close + 1..).unwrap_or_default(),
        None => to,
    };
    after_uri.split(';').skip(1).any(|p| {
        p.trim()
            .get(..4)
            .is_some_and(|n| n.eq_ignore_ascii_case("tag="))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::wire::parse_message;

    const MISMATCH: &[u8] = b"OPTIONS sip:user@example.com SIP/2.0\r\n\
To: sip:j.user@example.com\r\n\
From: sip:caller@example.net;tag=34525\r\n\
Max-Forwards: 6\r\n\
Call-ID: mismatch01.dj0234sxdfl3\r\n\
CSeq: 8 INVITE\r\n\
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n\
v: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2\r\n\
l: 0\r\n\r\n";

    #[test]
    fn a_request_whose_headers_hold_a_bare_cr_gets_no_answer() {
        let mangled = String::from_utf8(MISMATCH.to_vec())
            .unwrap()
            .replace("Call-ID: mismatch01", "Call-ID: mis\rmatch01");
        let error = parse_message(mangled.as_bytes()).unwrap_err();
        assert_eq!(reject_response(mangled.as_bytes(), &error, "t1"), None);
    }

    #[test]
    fn a_400_echoes_the_transaction_headers_and_names_the_problem() {
        let error = parse_message(MISMATCH).unwrap_err();
        let response = String::from_utf8(reject_response(MISMATCH, &error, "t1").unwrap()).unwrap();
        assert_eq!(
            response,
            "SIP/2.0 400 Bad Request (CSeq method 'INVITE' does not match request method 'OPTIONS')\r\n\
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2\r\n\
From: sip:caller@example.net;tag=34525\r\n\
To: sip:j.user@example.com;tag=t1\r\n\
Call-ID: mismatch01.dj0234sxdfl3\r\n\
CSeq: 8 INVITE\r\n\
Content-Length: 0\r\n\r\n"
        );
        let reparsed = parse_message(response.as_bytes());
        assert!(reparsed.is_ok(), "{reparsed:?}");
    }

    #[test]
    fn responses_and_acks_are_never_answered() {
        let error = WireError::MissingHeader { name: "Via" };
        let response =
            b"SIP/2.0 200 OK\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(reject_response(response, &error, "t"), None);
        let ack = b"ACK sip:a@b SIP/2.0\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n";
        assert_eq!(reject_response(ack, &error, "t"), None);
    }

    #[test]
    fn nothing_is_answered_without_via_and_cseq() {
        let error = WireError::MissingHeader { name: "CSeq" };
        let request =
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\n\r\n";
        assert_eq!(reject_response(request, &error, "t"), None);
        let request = b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(reject_response(request, &error, "t"), None);
        let request = b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(
            reject_response(request, &error, "t"),
            Some(b"SIP/2.0 400 Bad Request (missing CSeq header)\r\nVia: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".to_vec())
        );
        assert_eq!(reject_response(b"", &WireError::Empty, "t"), None);
    }

    #[test]
    fn an_existing_to_tag_is_kept_and_versions_get_505() {
        let request = b"OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>;tag=f\r\nTo: <sip:c@d>;tag=x\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let error = parse_message(request).unwrap_err();
        let response = String::from_utf8(reject_response(request, &error, "new").unwrap()).unwrap();
        assert!(
            response.starts_with("SIP/2.0 505 Version Not Supported ("),
            "{response}"
        );
        assert!(response.contains("\r\nTo: <sip:c@d>;tag=x\r\n"));
    }
}
