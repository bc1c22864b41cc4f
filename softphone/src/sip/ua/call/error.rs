//! Why a call operation failed, and the SIP answer that failure owes.

use super::super::types::CallState;
use crate::sip::headers::HeaderError;
use crate::sip::sdp::{MediaError, SdpError};
use crate::sip::transaction::TxError;
use crate::sip::wire::WireError;

use super::session_timer::MIN_SE;

/// Why a [`super::Call`] could not be created or could not do what was
/// asked. For an incoming INVITE, [`CallError::status`] is the final
/// response the user agent answers with (plus
/// [`CallError::response_headers`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request lacks something a call needs (a Contact, a usable
    /// From), or has it twice.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A header could not be read, or a tag/branch/Call-ID generated.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A request we built does not read back as SIP, e.g. the target URI
    /// is malformed.
    #[error("cannot build {what}: {source}")]
    Build {
        /// What was being built (`INVITE to sip:...`).
        what: String,
        /// Why the wire reader refused it.
        source: WireError,
    },
    /// The offer could not be read or answered.
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// The media engine refused (no free RTP port, ...).
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The transaction layer refused the request or response.
    #[error(transparent)]
    Transaction(#[from] TxError),
    /// The INVITE requires extensions we do not implement (RFC 3261
    /// §8.2.2.3: 420 with `Unsupported`).
    #[error("unsupported extension(s): {0}")]
    BadExtension(String),
    /// The INVITE's Session-Expires is below our Min-SE (RFC 4028 §9:
    /// 422 with `Min-SE`).
    #[error("session interval {0} s is below the minimum {MIN_SE} s")]
    IntervalTooSmall(u32),
    /// The request names a dialog we do not have (481).
    #[error("no such dialog")]
    NoDialog,
    /// The operation does not fit the call's state.
    #[error("cannot {operation} a call that is {state:?}")]
    InvalidState {
        /// What was attempted.
        operation: &'static str,
        /// Where the call was.
        state: CallState,
    },
    /// An INVITE (or REFER) transaction of this call is still running;
    /// RFC 3261 §14.1 allows one at a time.
    #[error("another {0} is in progress")]
    Pending(&'static str),
    /// Not one of `0-9 * # A-D`.
    #[error("{0:?} is not a DTMF digit")]
    InvalidDigit(char),
    /// The status cannot be used for this (reject with 1xx/2xx, ...).
    #[error("status {0} is not allowed here")]
    BadStatus(u16),
}

impl CallError {
    /// The SIP status a request that caused this error should get; `None`
    /// for errors of local commands that no request is waiting on.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            CallError::BadRequest(_) | CallError::Header(_) | CallError::Build { .. } => 400,
            CallError::Sdp(e) => e.sip_status(),
            CallError::Media(_) | CallError::Transaction(_) => 500,
            CallError::BadExtension(_) => 420,
            CallError::IntervalTooSmall(_) => 422,
            CallError::NoDialog => 481,
            CallError::Pending(_) => 491,
            CallError::InvalidState { .. }
            | CallError::InvalidDigit(_)
            | CallError::BadStatus(_) => return None,
        })
    }

    /// Headers the response with [`CallError::status`] must carry:
    /// `Unsupported` for 420, `Min-SE` for 422.
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            CallError::BadExtension(list) => vec![("Unsupported", list.clone())],
            CallError::IntervalTooSmall(_) => vec![("Min-SE", MIN_SE.to_string())],
            _ => Vec::new(),
        }
    }
}
