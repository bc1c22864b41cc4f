//! `rsip::SipMessage` → bytes, with a Content-Length that matches the body.
//!
//! rsip's `Display` is not used for the whole message: it writes whatever
//! Content-Length header the model holds (or none), turns the body into
//! text lossily (corrupting binary bodies), and prints reason phrases as
//! Rust identifiers (`183 SessionProgress`).

use rsip::{Header, SipMessage, StatusCode};

/// Serialises a message for the wire. Content-Length is computed from the
/// body and written where the model's first Content-Length header is (at the
/// end when there is none; further ones are dropped); CR and LF
/// inside header values become spaces so a value can never start a new
/// header or end the section.
pub fn serialize(message: &SipMessage) -> Vec<u8> {
    let (start_line, headers, body) = match message {
        SipMessage::Request(r) => (
            format!("{} {} SIP/2.0", r.method, r.uri),
            &r.headers,
            &r.body,
        ),
        SipMessage::Response(r) => (
            format!(
                "SIP/2.0 {} {}",
                r.status_code.code(),
                reason_phrase(&r.status_code)
            ),
            &r.headers,
            &r.body,
        ),
    };
    let mut out = Vec::with_capacity(512 + body.len());
    push_line(&mut out, &start_line);
    let content_length = format!("Content-Length: {}", body.len());
    let mut length_written = false;
    for header in headers.iter() {
        if is_content_length(header) {
            // The first one keeps its place so a parsed message writes back
            // in its own order; any others are dropped.
            if !length_written {
                push_line(&mut out, &content_length);
                length_written = true;
            }
            continue;
        }
        push_line(&mut out, &header.to_string());
    }
    if !length_written {
        push_line(&mut out, &content_length);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn is_content_length(header: &Header) -> bool {
    match header {
        Header::ContentLength(_) => true,
        Header::Other(name, _) => {
            name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l")
        }
        _ => false,
    }
}

fn push_line(out: &mut Vec<u8>, line: &str) {
    out.extend(
        line.bytes()
            .map(|b| if matches!(b, b'\r' | b'\n') { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// The phrase to send with a status code: RFC 3261 §21's (and later RFCs')
/// wording for known codes, the model's own text for others.
pub fn reason_phrase(status: &StatusCode) -> String {
    if let StatusCode::Other(_, reason) = status {
        return reason.clone();
    }
    canonical_reason(status.code())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let shown = status.to_string();
            shown
                .split_once(' ')
                .map(|(_, r)| r.to_owned())
                .unwrap_or_default()
        })
}

/// Reason phrases of the registered status codes a user agent meets.
pub fn canonical_reason(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        428 => "Use Identity Header",
        429 => "Provide Referrer Identity",
        433 => "Anonymity Disallowed",
        436 => "Bad Identity-Info",
        437 => "Unsupported Certificate",
        438 => "Invalid Identity Header",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::wire::parse_message;
    use rsip::headers::{CallId, ContentLength, Subject};
    use rsip::{Headers, Method, Request, Response, Uri, Version};
    use std::convert::TryFrom;

    fn request(headers: Vec<Header>, body: &[u8]) -> SipMessage {
        SipMessage::Request(Request {
            method: Method::Message,
            uri: Uri::try_from("sip:bob@example.com").unwrap(),
            version: Version::V2,
            headers: Headers::from(headers),
            body: body.to_vec(),
        })
    }

    #[test]
    fn content_length_follows_the_body_whatever_the_model_says() {
        let body = [0u8, 0xff, b'\r', b'\n', 0x80];
        let bytes = serialize(&request(
            vec![
                Header::CallId(CallId::from("c1".to_owned())),
                Header::ContentLength(ContentLength::from("999".to_owned())),
                Header::Other("l".into(), "3".into()),
            ],
            &body,
        ));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with(
            "MESSAGE sip:bob@example.com SIP/2.0\r\nCall-ID: c1\r\nContent-Length: 5\r\n\r\n"
        ));
        let without = serialize(&request(vec![], b"ab"));
        assert!(without.ends_with(b"SIP/2.0\r\nContent-Length: 2\r\n\r\nab"));
        assert!(bytes.ends_with(&body), "binary body written as is");
        assert_eq!(text.matches("Content-Length").count(), 1);
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let bytes = serialize(&request(
            vec![Header::Subject(Subject::from("hi\r\nVia: evil".to_owned()))],
            b"",
        ));
        assert_eq!(
            bytes,
            b"MESSAGE sip:bob@example.com SIP/2.0\r\nSubject: hi  Via: evil\r\nContent-Length: 0\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn responses_use_rfc_reason_phrases() {
        let response = SipMessage::Response(Response {
            status_code: StatusCode::SessionProgress,
            version: Version::V2,
            headers: Headers::default(),
            body: Vec::new(),
        });
        assert!(serialize(&response).starts_with(b"SIP/2.0 183 Session Progress\r\n"));
        assert_eq!(
            reason_phrase(&StatusCode::Other(299, "Custom".into())),
            "Custom"
        );
    }

    #[test]
    fn what_we_write_we_read_back() {
        let original = b"INVITE sip:a.b@example.com;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a.b@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi";
        let parsed = parse_message(original).unwrap();
        let written = serialize(&parsed);
        assert_eq!(parse_message(&written), Ok(parsed));
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(original).replace("transport=tcp", "transport=TCP")
        );
    }
}
