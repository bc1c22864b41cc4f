//! Messages the layer makes itself (non-2xx ACK, CANCEL, 100 Trying) and
//! the one place messages become bytes.

use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response, SipMessage, StatusCode, Version};

use crate::sip::headers::{self, same_name};

/// Serialises a message for the transport: the layer's only
/// serialisation point. `wire::serialize` writes a Content-Length that
/// matches the body and keeps binary bodies intact, which rsip's `Display`
/// does not.
pub(super) fn encode(msg: &SipMessage) -> Vec<u8> {
    crate::sip::wire::serialize(msg)
}

/// [`encode`] for a request we keep.
pub(super) fn encode_request(request: &Request) -> Vec<u8> {
    encode(&SipMessage::Request(request.clone()))
}

/// [`encode`] for a response we keep.
pub(super) fn encode_response(response: &Response) -> Vec<u8> {
    encode(&SipMessage::Response(response.clone()))
}

fn is(header: &Header, name: &str) -> bool {
    same_name(headers::name_and_value(header).0, name)
}

fn content_length_zero() -> Header {
    Header::ContentLength(rsip::headers::ContentLength::new("0"))
}

/// A request derived from `original` as §9.1 (CANCEL) and §17.1.1.3 (ACK
/// for a non-2xx) prescribe: same Request-URI, a single Via equal to the
/// original's top Via, same Route set, From, Call-ID and CSeq number, the
/// given method, and `to` (or the original To).
fn derived(original: &Request, method: Method, to: Option<&Header>) -> Request {
    let mut out = rsip::Headers::default();
    let mut via_done = false;
    let mut has_max_forwards = false;
    let (cseq_num, _) = headers::cseq(&original.headers).unwrap_or((1, method));
    for h in original.headers.iter() {
        if is(h, "Via") {
            if !via_done {
                if let Some(top) = headers::split_list(headers::name_and_value(h).1).first() {
                    out.push(Header::Via(rsip::headers::Via::new(*top)));
                }
                via_done = true;
            }
        } else if is(h, "To") {
            out.push(to.unwrap_or(h).clone());
        } else if is(h, "CSeq") {
            out.push(Header::CSeq(rsip::headers::CSeq::new(format!(
                "{cseq_num} {method}"
            ))));
        } else if is(h, "Max-Forwards") {
            has_max_forwards = true;
            out.push(h.clone());
        } else if is(h, "Route") || is(h, "From") || is(h, "Call-ID") {
            out.push(h.clone());
        }
    }
    if !has_max_forwards {
        out.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
    }
    out.push(content_length_zero());
    Request {
        method,
        uri: original.uri.clone(),
        version: Version::V2,
        headers: out,
        body: Vec::new(),
    }
}

/// The ACK for a non-2xx final response to `invite` (§17.1.1.3): To,
/// with the tag, comes from the response.
pub(super) fn ack_for(invite: &Request, response: &Response) -> Request {
    let to = response.headers.iter().find(|h| is(h, "To"));
    derived(invite, Method::Ack, to)
}

/// The CANCEL for `request` (§9.1).
pub(super) fn cancel_for(request: &Request) -> Request {
    derived(request, Method::Cancel, None)
}

/// The 100 Trying a server INVITE transaction sends when the TU is slow
/// (§8.2.6): Via, From, To, Call-ID, CSeq and Timestamp copied.
pub(super) fn trying_for(request: &Request) -> Response {
    let mut out = rsip::Headers::default();
    for h in request.headers.iter() {
        if ["Via", "From", "To", "Call-ID", "CSeq", "Timestamp"]
            .iter()
            .any(|name| is(h, name))
        {
            out.push(h.clone());
        }
    }
    out.push(content_length_zero());
    Response {
        status_code: StatusCode::Trying,
        version: Version::V2,
        headers: out,
        body: Vec::new(),
    }
}
