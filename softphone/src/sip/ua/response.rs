//! Responses the user agent itself gives to requests (RFC 3261 §8.2.6).

use rsip::headers::UntypedHeader;
use rsip::{Header, Request, Response, StatusCode, Version};

use crate::sip::headers::{self, same_name};

/// The methods we accept (the `Allow` of 200 to OPTIONS and of 405).
/// The same list as a call's own (`call::build::ALLOW`).
pub(super) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, MESSAGE";
/// The body types we accept (`Accept`).
pub(super) const ACCEPT: &str = "application/sdp";
/// The extension we support when the account uses session timers
/// (RFC 4028); calls implement no other.
pub(super) const SUPPORTED: &str = "timer";

/// A response to `request` with `code`: Vias, From, Call-ID, CSeq copied,
/// To copied with `to_tag` added unless it has one (§8.2.6.2), then
/// `extra` headers. The body is empty.
pub(super) fn response_to(
    request: &Request,
    code: u16,
    to_tag: &str,
    extra: Vec<Header>,
) -> Response {
    let mut out = rsip::Headers::default();
    for header in request.headers.iter() {
        let (name, value) = headers::name_and_value(header);
        if same_name(name, "To") {
            let tagged = headers::NameAddr::parse(value, "To").is_ok_and(|to| to.tag().is_some());
            if tagged || code == 100 {
                out.push(header.clone());
            } else {
                out.push(Header::To(rsip::headers::To::new(format!(
                    "{value};tag={to_tag}"
                ))));
            }
        } else if ["Via", "From", "Call-ID", "CSeq"]
            .iter()
            .any(|n| same_name(name, n))
        {
            out.push(header.clone());
        }
    }
    for header in extra {
        out.push(header);
    }
    out.push(Header::ContentLength(rsip::headers::ContentLength::new(
        "0",
    )));
    Response {
        status_code: StatusCode::from(code),
        version: Version::V2,
        headers: out,
        body: Vec::new(),
    }
}

/// The capability headers of a 200 to OPTIONS (RFC 3261 §11.2), and the
/// `Allow` that a 405 must carry (§21.4.6).
pub(super) fn capabilities(user_agent: &str, session_timers: bool) -> Vec<Header> {
    let mut out = vec![
        Header::Allow(rsip::headers::Allow::new(ALLOW)),
        Header::Accept(rsip::headers::Accept::new(ACCEPT)),
    ];
    if session_timers {
        out.push(Header::Supported(rsip::headers::Supported::new(SUPPORTED)));
    }
    if !user_agent.is_empty() {
        out.push(Header::Server(rsip::headers::Server::new(user_agent)));
    }
    out
}

/// Only `Allow`, for a 405.
pub(super) fn allow() -> Vec<Header> {
    vec![Header::Allow(rsip::headers::Allow::new(ALLOW))]
}
