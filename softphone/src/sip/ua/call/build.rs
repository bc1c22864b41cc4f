//! Message building blocks: requests are written as text and read back
//! through [`wire::parse_message`] (as the rest of the user agent does), so
//! Request-URIs get the hardened reader and we never send what we would
//! refuse to receive; responses are assembled from the request's headers.

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response, SipMessage, StatusCode, Version};

use super::error::CallError;
use crate::sip::auth::AuthHeader;
use crate::sip::headers::{self, same_name, Via};
use crate::sip::sdp::SessionDescription;
use crate::sip::wire;

/// What we accept in INVITE/UPDATE/ACK bodies.
pub(super) const SDP: &str = "application/sdp";
/// The methods a call answers (Allow of our INVITEs, 200s and 405s).
pub(super) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, MESSAGE";
/// Body types we accept in dialogs.
pub(super) const ACCEPT: &str = "application/sdp, application/dtmf-relay, message/sipfrag";

/// A request without its per-sending parts (Via branch, CSeq,
/// credentials), so a digest retry or a 422 retry can re-render it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Draft {
    pub method: Method,
    /// The Request-URI.
    pub uri: String,
    /// Headers in order (Max-Forwards, Route, From, To, Call-ID, ...).
    pub headers: Vec<(&'static str, String)>,
    /// Content-Type and body, when there is a body.
    pub body: Option<(String, Vec<u8>)>,
}

impl Draft {
    /// Appends a header.
    pub fn push(&mut self, name: &'static str, value: impl Into<String>) {
        self.headers.push((name, value.into()));
    }

    /// Replaces every header called `name` by one with `value`.
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| !same_name(n, name));
        self.push(name, value);
    }

    /// Sets the body.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.body = Some((content_type.to_owned(), body));
    }

    /// The body bytes (empty without one), as digest `auth-int` hashes them.
    pub fn body_bytes(&self) -> &[u8] {
        self.body.as_ref().map_or(&[], |(_, b)| b.as_slice())
    }

    /// The request for one sending.
    pub fn render(
        &self,
        via: &Via,
        cseq: u32,
        credentials: &[AuthHeader],
    ) -> Result<Request, CallError> {
        let method = self.method.to_string();
        let mut text = format!("{method} {} SIP/2.0\r\n", self.uri);
        let mut line = |name: &str, value: &str| {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text.push_str("\r\n");
        };
        line("Via", &via.to_string());
        for (name, value) in &self.headers {
            line(name, value);
        }
        line("CSeq", &format!("{cseq} {method}"));
        for c in credentials {
            line(c.kind.response_header_name(), &c.value);
        }
        if let Some((content_type, _)) = &self.body {
            line("Content-Type", content_type);
        }
        line("Content-Length", &self.body_bytes().len().to_string());
        text.push_str("\r\n");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(self.body_bytes());
        let what = || format!("{method} to {}", self.uri);
        match wire::parse_message(&bytes) {
            Ok(SipMessage::Request(request)) => Ok(request),
            Ok(SipMessage::Response(_)) => Err(CallError::BadRequest(what())),
            Err(source) => Err(CallError::Build {
                what: what(),
                source,
            }),
        }
    }
}

/// A header for a response we build.
pub(super) fn header(name: &str, value: impl Into<String>) -> Header {
    use rsip::headers as h;
    let v = value.into();
    match name {
        "Contact" => Header::Contact(h::Contact::new(v)),
        "Content-Type" => Header::ContentType(h::ContentType::new(v)),
        "Allow" => Header::Allow(h::Allow::new(v)),
        "Accept" => Header::Accept(h::Accept::new(v)),
        "Supported" => Header::Supported(h::Supported::new(v)),
        "Require" => Header::Require(h::Require::new(v)),
        "Unsupported" => Header::Unsupported(h::Unsupported::new(v)),
        "Record-Route" => Header::RecordRoute(h::RecordRoute::new(v)),
        "Retry-After" => Header::RetryAfter(h::RetryAfter::new(v)),
        "To" => Header::To(h::To::new(v)),
        _ => Header::Other(name.to_owned(), v),
    }
}

/// The StatusCode for `code`, with the standard phrase even for codes
/// rsip does not name (it would print `Other`).
pub(super) fn status(code: u16) -> StatusCode {
    match StatusCode::from(code) {
        StatusCode::Other(code, _) => StatusCode::Other(
            code,
            wire::canonical_reason(code).unwrap_or("Unknown").to_owned(),
        ),
        known => known,
    }
}

/// The reason phrase of `code` as we write it.
pub(super) fn reason(code: u16) -> String {
    wire::reason_phrase(&status(code))
}

/// A response to `request` (§8.2.6): Vias, From, Call-ID, CSeq copied; To
/// copied with `to_tag` added when it has none; Record-Route copied when
/// `record_route` (§12.1.1, dialog-creating responses).
pub(super) fn response(
    request: &Request,
    code: u16,
    to_tag: Option<&str>,
    record_route: bool,
) -> Response {
    let mut out = Headers::default();
    for h in request.headers.iter() {
        let (name, value) = headers::name_and_value(h);
        if same_name(name, "To") {
            let tagged = headers::NameAddr::parse(value, "To").is_ok_and(|to| to.tag().is_some());
            match to_tag {
                Some(tag) if !tagged && code != 100 => {
                    out.push(header("To", format!("{value};tag={tag}")));
                }
                _ => out.push(h.clone()),
            }
        } else if ["Via", "From", "Call-ID", "CSeq"]
            .iter()
            .any(|n| same_name(name, n))
            || (record_route && same_name(name, "Record-Route"))
        {
            out.push(h.clone());
        }
    }
    Response {
        status_code: status(code),
        version: Version::V2,
        headers: out,
        body: Vec::new(),
    }
}

/// Adds a body to a response.
pub(super) fn set_response_body(response: &mut Response, content_type: &str, body: Vec<u8>) {
    response.headers.push(header("Content-Type", content_type));
    response.body = body;
}

/// The media type of a message (`application/sdp`), lower-cased,
/// without parameters.
pub(super) fn media_type(headers: &Headers) -> Option<String> {
    headers::content_type(headers).map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

/// The SDP of a message: `None` without a body; an error for a body that
/// is not readable SDP. A body without Content-Type counts as SDP when it
/// starts like one (old PBXes omit the header).
pub(super) fn sdp_of(
    headers: &Headers,
    body: &[u8],
) -> Result<Option<SessionDescription>, CallError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match media_type(headers).as_deref() {
        Some(SDP) => {}
        None if body.starts_with(b"v=") => {}
        Some(other) => {
            return Err(CallError::Sdp(crate::sip::sdp::SdpError::NotSdp(format!(
                "body of type {other}"
            ))))
        }
        None => {
            return Err(CallError::Sdp(crate::sip::sdp::SdpError::NotSdp(
                "body without Content-Type".to_owned(),
            )))
        }
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| crate::sip::sdp::SdpError::NotSdp("not UTF-8".to_owned()))?;
    Ok(Some(SessionDescription::parse(text)?))
}

/// Whether `token` is listed in header `name` (Supported, Require).
pub(super) fn lists(headers: &Headers, name: &'static str, token: &str) -> bool {
    headers::list_values(headers, name)
        .iter()
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The status code of a `message/sipfrag` body (`SIP/2.0 180 Ringing`).
pub(super) fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut parts = first.split_whitespace();
    let version = parts.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code: u16 = parts.next()?.parse().ok()?;
    (100..=699).contains(&code).then_some(code)
}

/// The URI inside a `<...>` name-addr value, or the value itself.
pub(super) fn bare_uri(value: &str) -> String {
    headers::NameAddr::parse(value, "Refer-To")
        .map(|n| n.uri)
        .unwrap_or_else(|_| value.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag_status_lines_are_read_strictly() {
        assert_eq!(sipfrag_status(b"SIP/2.0 180 Ringing\r\n"), Some(180));
        assert_eq!(sipfrag_status(b"\r\nSIP/2.0 200 OK"), Some(200));
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 abc"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 999 Nope"), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
    }

    #[test]
    fn unknown_codes_keep_a_real_phrase() {
        assert_eq!(reason(422), "Session Interval Too Small");
        assert_eq!(reason(491), "Request Pending");
    }
}
