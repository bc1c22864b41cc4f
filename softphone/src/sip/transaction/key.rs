//! Transaction matching keys (§17.1.3 for responses, §17.2.3 for requests).

use rsip::{Method, Request};

use crate::sip::headers::{self, Via};

use super::TxError;

/// A client transaction is found by the top Via branch of the response and
/// its CSeq method (so a CANCEL's 200 does not hit the INVITE sharing its
/// branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ClientKey {
    branch: String,
    method: String,
}

impl ClientKey {
    pub fn new(branch: &str, method: Method) -> Self {
        Self {
            branch: branch.to_owned(),
            method: method.to_string(),
        }
    }
}

/// A server transaction is found by branch, sent-by and method, an ACK
/// counting as the INVITE it acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ServerKey {
    branch: String,
    sent_by: String,
    method: String,
}

impl ServerKey {
    /// The key of `request`, whose top Via is `via`.
    ///
    /// Requests from pre-RFC 3261 peers (no `z9hG4bK` cookie) get a
    /// synthetic branch from the §17.2.3 fallback fields that an INVITE,
    /// its non-2xx ACK and its CANCEL share: Call-ID, From tag, CSeq
    /// number, Request-URI and the Via branch (if any). The To tag, which
    /// the ACK adds, is left out on purpose.
    pub fn for_request(request: &Request, via: &Via) -> Result<Self, TxError> {
        let branch = match via.branch() {
            Some(b) if via.has_rfc3261_branch() => b.to_owned(),
            other => {
                let call_id = headers::call_id(&request.headers)?;
                let from_tag = headers::from(&request.headers)?.tag().map(str::to_owned);
                let (cseq, _) = headers::cseq(&request.headers)?;
                format!(
                    "rfc2543|{call_id}|{}|{cseq}|{}|{}",
                    from_tag.unwrap_or_default(),
                    request.uri,
                    other.unwrap_or_default()
                )
            }
        };
        let method = match request.method {
            Method::Ack => Method::Invite,
            m => m,
        };
        Ok(Self {
            branch,
            sent_by: via.sent_by_key(),
            method: method.to_string(),
        })
    }

    /// Whether the key is for requests of `method`.
    pub fn is_method(&self, method: Method) -> bool {
        self.method == method.to_string()
    }

    /// The same branch and sent-by with another method: how a CANCEL finds
    /// the INVITE it cancels.
    pub fn with_method(&self, method: Method) -> Self {
        Self {
            branch: self.branch.clone(),
            sent_by: self.sent_by.clone(),
            method: method.to_string(),
        }
    }
}
