//! Bytes of one message → `rsip::SipMessage`, built from checked parts so
//! rsip's own parser never runs on network input.

use super::error::WireError;
use super::framing::{self, KeepAlive, MAX_MESSAGE_SIZE};
use super::normalize::{self, Field};
use super::start_line::{self, StartLine};
use super::{uri, validate};
use rsip::headers as h;
use rsip::{Header, Headers, Method, Request, Response, SipMessage, StatusCode, Version};

/// What arrived in one datagram.
// Not boxed: nearly every datagram is a message, moved out at once, so a
// box would cost an allocation per message to shrink a rare keep-alive.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A valid SIP message, normalised (see [`super`]).
    Message(SipMessage),
    /// An RFC 5626 CRLF keep-alive.
    KeepAlive(KeepAlive),
}

/// Parses one UDP datagram: a keep-alive, or one message whose body is cut
/// to Content-Length (the rest of the datagram when there is none).
///
/// On `Err`, pass the same bytes to [`super::reject_response`] to get the
/// answer owed to an invalid request; invalid responses are dropped.
pub fn parse_datagram(bytes: &[u8]) -> Result<Incoming, WireError> {
    if let Some(keepalive) = framing::datagram_keepalive(bytes) {
        return Ok(Incoming::KeepAlive(keepalive));
    }
    parse_message(bytes).map(Incoming::Message)
}

/// Parses the bytes of one message: a datagram, or a
/// [`super::Frame::Message`] cut from a stream.
pub fn parse_message(bytes: &[u8]) -> Result<SipMessage, WireError> {
    if bytes.is_empty() {
        return Err(WireError::Empty);
    }
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(WireError::TooLarge {
            size: bytes.len(),
            limit: MAX_MESSAGE_SIZE,
        });
    }
    let (section, rest) = framing::split_head(bytes, true)?;
    let declared = framing::content_length(section)?;
    let body = framing::datagram_body(rest, declared)?;
    let read = normalize::read_section(section, false)?;
    let start = start_line::parse(&read.start_line)?;
    let fields = normalize::normalize_fields(read.fields)?;
    validate::check(&start, &fields)?;
    build(start, fields, body)
}

fn build(start: StartLine, mut fields: Vec<Field>, body: &[u8]) -> Result<SipMessage, WireError> {
    if !fields.iter().any(|f| f.name == "Content-Length") {
        fields.push(Field {
            name: "Content-Length".to_owned(),
            value: String::new(),
        });
    }
    let headers: Headers = fields
        .into_iter()
        .map(|f| {
            // Content-Length is present exactly once and matches the body we
            // keep, so the model never disagrees with itself (dblreq's
            // trailing bytes are gone; a datagram without one gets one).
            let value = if f.name == "Content-Length" {
                body.len().to_string()
            } else {
                f.value
            };
            to_rsip_header(&f.name, value)
        })
        .collect::<Vec<_>>()
        .into();
    Ok(match start {
        StartLine::Request { method, uri } => {
            let uri = uri::parse_request_uri(&uri)?;
            let method = parse_method(&method)?;
            SipMessage::Request(Request {
                method,
                uri,
                version: Version::V2,
                headers,
                body: body.to_vec(),
            })
        }
        StartLine::Response { code, reason } => {
            let status_code = match StatusCode::from(code) {
                StatusCode::Other(code, _) => StatusCode::Other(code, reason),
                known => known,
            };
            SipMessage::Response(Response {
                status_code,
                version: Version::V2,
                headers,
                body: body.to_vec(),
            })
        }
    })
}

/// Methods are case-sensitive (RFC 3261 §7.1); rsip compares them
/// case-insensitively and knows a closed set, so unknown ones are reported.
fn parse_method(token: &str) -> Result<Method, WireError> {
    Method::all()
        .into_iter()
        .find(|m| m.to_string() == token)
        .ok_or_else(|| WireError::UnsupportedMethod {
            method: token.chars().take(100).collect(),
        })
}

/// Maps a canonical header name onto rsip's variant, `Other` for the rest.
pub(crate) fn to_rsip_header(name: &str, value: String) -> Header {
    match name {
        "Accept" => Header::Accept(h::Accept::from(value)),
        "Accept-Encoding" => Header::AcceptEncoding(h::AcceptEncoding::from(value)),
        "Accept-Language" => Header::AcceptLanguage(h::AcceptLanguage::from(value)),
        "Alert-Info" => Header::AlertInfo(h::AlertInfo::from(value)),
        "Allow" => Header::Allow(h::Allow::from(value)),
        "Authentication-Info" => Header::AuthenticationInfo(h::AuthenticationInfo::from(value)),
        "Authorization" => Header::Authorization(h::Authorization::from(value)),
        "CSeq" => Header::CSeq(h::CSeq::from(value)),
        "Call-ID" => Header::CallId(h::CallId::from(value)),
        "Call-Info" => Header::CallInfo(h::CallInfo::from(value)),
        "Contact" => Header::Contact(h::Contact::from(value)),
        "Content-Disposition" => Header::ContentDisposition(h::ContentDisposition::from(value)),
        "Content-Encoding" => Header::ContentEncoding(h::ContentEncoding::from(value)),
        "Content-Language" => Header::ContentLanguage(h::ContentLanguage::from(value)),
        "Content-Length" => Header::ContentLength(h::ContentLength::from(value)),
        "Content-Type" => Header::ContentType(h::ContentType::from(value)),
        "Date" => Header::Date(h::Date::from(value)),
        "Error-Info" => Header::ErrorInfo(h::ErrorInfo::from(value)),
        "Event" => Header::Event(h::Event::from(value)),
        "Expires" => Header::Expires(h::Expires::from(value)),
        "From" => Header::From(h::From::from(value)),
        "In-Reply-To" => Header::InReplyTo(h::InReplyTo::from(value)),
        "Max-Forwards" => Header::MaxForwards(h::MaxForwards::from(value)),
        "MIME-Version" => Header::MimeVersion(h::MimeVersion::from(value)),
        "Min-Expires" => Header::MinExpires(h::MinExpires::from(value)),
        "Organization" => Header::Organization(h::Organization::from(value)),
        "Priority" => Header::Priority(h::Priority::from(value)),
        "Proxy-Authenticate" => Header::ProxyAuthenticate(h::ProxyAuthenticate::from(value)),
        "Proxy-Authorization" => Header::ProxyAuthorization(h::ProxyAuthorization::from(value)),
        "Proxy-Require" => Header::ProxyRequire(h::ProxyRequire::from(value)),
        "Record-Route" => Header::RecordRoute(h::RecordRoute::from(value)),
        "Reply-To" => Header::ReplyTo(h::ReplyTo::from(value)),
        "Require" => Header::Require(h::Require::from(value)),
        "Retry-After" => Header::RetryAfter(h::RetryAfter::from(value)),
        "Route" => Header::Route(h::Route::from(value)),
        "Server" => Header::Server(h::Server::from(value)),
        "Subject" => Header::Subject(h::Subject::from(value)),
        "Subscription-State" => Header::SubscriptionState(h::SubscriptionState::from(value)),
        "Supported" => Header::Supported(h::Supported::from(value)),
        "Timestamp" => Header::Timestamp(h::Timestamp::from(value)),
        "To" => Header::To(h::To::from(value)),
        "Unsupported" => Header::Unsupported(h::Unsupported::from(value)),
        "User-Agent" => Header::UserAgent(h::UserAgent::from(value)),
        "Via" => Header::Via(h::Via::from(value)),
        "Warning" => Header::Warning(h::Warning::from(value)),
        "WWW-Authenticate" => Header::WwwAuthenticate(h::WwwAuthenticate::from(value)),
        _ => Header::Other(name.to_owned(), value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsip::prelude::*;

    const INVITE: &[u8] = b"INVITE sip:john.doe@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1, SIP/2.0/TCP proxy.example.com;branch=z9hG4bK2\r\n\
f: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
t: <sip:john.doe@example.com>\r\n\
i: call-1@example.com\r\n\
CSeq: 7 INVITE\r\n\
Max-Forwards: 70\r\n\
m: <sip:alice@192.0.2.1>;expires=60, <sip:alice@192.0.2.2>;expires=30\r\n\
Subject: folded\r\n  subject\r\n\
c: application/sdp\r\n\
l: 4\r\n\r\nv=0\r\nEXTRA";

    fn request(message: SipMessage) -> Request {
        match message {
            SipMessage::Request(request) => request,
            SipMessage::Response(_) => panic!("expected a request"),
        }
    }

    #[test]
    fn compact_folded_listed_headers_come_out_one_per_value() {
        let req = request(parse_message(INVITE).unwrap());
        assert_eq!(req.method, Method::Invite);
        assert_eq!(req.uri.user(), Some("john.doe"));
        assert_eq!(req.body, b"v=0\r".to_vec());
        let vias: Vec<String> = req
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::Via(v) => Some(v.value().to_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(
            vias,
            vec![
                "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
                "SIP/2.0/TCP proxy.example.com;branch=z9hG4bK2"
            ]
        );
        assert_eq!(req.call_id_header().unwrap().value(), "call-1@example.com");
        assert_eq!(
            req.headers
                .iter()
                .filter(|h| matches!(h, Header::Contact(_)))
                .count(),
            2
        );
        let length = req.headers.iter().find_map(|h| match h {
            Header::ContentLength(l) => Some(l.value().to_owned()),
            _ => None,
        });
        assert_eq!(length.as_deref(), Some("4"));
        let subject = req.headers.iter().find_map(|h| match h {
            Header::Subject(s) => Some(s.value().to_owned()),
            _ => None,
        });
        assert_eq!(subject.as_deref(), Some("folded subject"));
        assert_eq!(
            req.via_header()
                .unwrap()
                .typed()
                .unwrap()
                .branch()
                .map(|b| b.to_string()),
            Some("z9hG4bK1".into())
        );
    }

    #[test]
    fn responses_keep_unknown_reason_phrases() {
        let msg = b"SIP/2.0 299 Custom Thing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        match parse_message(msg).unwrap() {
            SipMessage::Response(r) => {
                assert_eq!(r.status_code, StatusCode::Other(299, "Custom Thing".into()));
                assert!(r.body.is_empty());
            }
            SipMessage::Request(_) => panic!("expected a response"),
        }
    }

    #[test]
    fn methods_are_case_sensitive_and_unknown_ones_are_reported() {
        let lower = String::from_utf8_lossy(INVITE).replace("INVITE", "invite");
        assert_eq!(
            parse_message(lower.as_bytes()),
            Err(WireError::UnsupportedMethod {
                method: "invite".into()
            })
        );
    }

    #[test]
    fn keepalive_datagrams() {
        assert_eq!(
            parse_datagram(b"\r\n\r\n"),
            Ok(Incoming::KeepAlive(KeepAlive::Ping))
        );
        assert_eq!(
            parse_datagram(b"\r\n"),
            Ok(Incoming::KeepAlive(KeepAlive::Pong))
        );
        assert_eq!(parse_datagram(b""), Err(WireError::Empty));
    }

    #[test]
    fn oversized_datagrams_are_refused() {
        let big = vec![b'a'; MAX_MESSAGE_SIZE + 1];
        assert!(matches!(
            parse_datagram(&big),
            Err(WireError::TooLarge { .. })
        ));
    }
}
