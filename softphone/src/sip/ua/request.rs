//! Out-of-dialog requests we originate (REGISTER, MESSAGE): their fixed
//! parts, and the text they become for each transmission.
//!
//! Requests are written as text and read back through
//! [`wire::parse_message`]: that is the only reader of Request-URIs that
//! copes with dotted users and IPv6 (rsip's own drops them), and it
//! guarantees we never send what we would refuse to receive.

use rsip::{Method, SipMessage};

use super::error::UaError;
use super::types::AccountConfig;
use crate::sip::auth::{AuthHeader, DigestRequest, DigestState};
use crate::sip::headers::{self, Via};
use crate::sip::wire;

/// Everything but the Via and the credentials of a request that may be
/// sent several times (a digest retry, a registration refresh): each
/// sending gets a new branch and the next CSeq.
#[derive(Debug, Clone)]
pub(super) struct RequestTemplate {
    pub method: Method,
    /// The Request-URI.
    pub uri: String,
    /// The From value, tag included.
    pub from: String,
    /// The To value.
    pub to: String,
    pub call_id: String,
    /// The CSeq number of the last sending; [`Self::next`] increments it.
    pub cseq: u32,
    /// `Route: <sip:proxy;lr>`, when the account has a proxy.
    pub route: Option<String>,
    /// Further headers (Contact, Expires, Content-Type, ...), in order.
    pub extra: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl RequestTemplate {
    /// A template for `method` to `uri` from `account`, with a fresh From
    /// tag and Call-ID, whose first sending will carry CSeq 1.
    pub fn new(
        method: Method,
        uri: String,
        to: String,
        account: &AccountConfig,
    ) -> Result<Self, UaError> {
        Ok(Self {
            method,
            uri,
            from: format!("{};tag={}", from_value(account), headers::new_tag()?),
            to,
            call_id: headers::new_call_id()?,
            cseq: 0,
            route: account
                .proxy
                .as_ref()
                .map(|p| format!("<sip:{};lr>", p.uri_host())),
            extra: Vec::new(),
            body: Vec::new(),
        })
    }

    /// The next sending: a new branch, CSeq + 1, the credentials `auth`
    /// holds for it.
    pub fn next(
        &mut self,
        via: &Via,
        auth: &mut DigestState,
        user_agent: &str,
    ) -> Result<rsip::Request, UaError> {
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let method = self.method.to_string();
        let credentials = auth.authorize(&DigestRequest {
            method: &method,
            uri: &self.uri,
            body: &self.body,
        });
        self.render(via, &credentials, user_agent)
    }

    fn render(
        &self,
        via: &Via,
        credentials: &[AuthHeader],
        user_agent: &str,
    ) -> Result<rsip::Request, UaError> {
        let method = self.method.to_string();
        let mut text = format!("{method} {} SIP/2.0\r\n", self.uri);
        let mut line = |name: &str, value: &str| {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text.push_str("\r\n");
        };
        line("Via", &via.to_string());
        line("Max-Forwards", "70");
        if let Some(route) = &self.route {
            line("Route", route);
        }
        line("From", &self.from);
        line("To", &self.to);
        line("Call-ID", &self.call_id);
        line("CSeq", &format!("{} {method}", self.cseq));
        for (name, value) in &self.extra {
            line(name, value);
        }
        for c in credentials {
            line(c.kind.response_header_name(), &c.value);
        }
        if !user_agent.is_empty() {
            line("User-Agent", user_agent);
        }
        line("Content-Length", &self.body.len().to_string());
        text.push_str("\r\n");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&self.body);
        match wire::parse_message(&bytes) {
            Ok(SipMessage::Request(request)) => Ok(request),
            Ok(SipMessage::Response(_)) => Err(UaError::Build {
                what: format!("{method} to {}", self.uri),
                source: wire::WireError::BadStartLine {
                    reason: "a request was built but a response read back",
                },
            }),
            Err(source) => Err(UaError::Build {
                what: format!("{method} to {}", self.uri),
                source,
            }),
        }
    }
}

/// The From of requests from `account`: the display name, if any, and the
/// AOR.
pub(super) fn from_value(account: &AccountConfig) -> String {
    let aor = account.aor();
    if account.display_name.is_empty() {
        format!("<{aor}>")
    } else {
        let escaped = account
            .display_name
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        format!("\"{escaped}\" <{aor}>")
    }
}
