//! What can be wrong with bytes from the network, in terms a caller can act on.

use thiserror::Error;

/// Why bytes from the network were not accepted as a SIP message.
///
/// Every variant names the problem precisely enough to become the
/// Reason-Phrase of a rejection (see [`super::reject_response`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// A datagram with no bytes at all.
    #[error("empty message")]
    Empty,
    /// More bytes than the framing limit allows; on a stream the connection
    /// must be closed.
    #[error("message of at least {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// How many bytes were seen (or announced) so far.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// No empty line ends the header section.
    #[error("header section is not terminated by an empty line")]
    UnterminatedHeaders,
    /// An earlier framing error left the stream without message boundaries.
    #[error("stream is unusable after an earlier framing error; close the connection")]
    Poisoned,
    /// A line of the header section breaks the basic line syntax.
    #[error("line {line}: {reason}")]
    MalformedLine {
        /// 1-based line number within the header section (line 1 is the start line).
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request line or status line does not follow RFC 3261 §7.1/§7.2.
    #[error("bad start line: {reason}")]
    BadStartLine {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A SIP version other than SIP/2.0 (answered with 505 when a request).
    #[error("unsupported SIP version {version:?}")]
    UnsupportedVersion {
        /// The version token as received.
        version: String,
    },
    /// A status code that is not three digits from 100 to 699.
    #[error("bad status code {code:?}: must be three digits from 100 to 699")]
    BadStatusCode {
        /// The code as received (truncated to 20 characters).
        code: String,
    },
    /// A Request-URI that cannot address us.
    #[error("bad Request-URI: {reason}")]
    BadRequestUri {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A Request-URI scheme other than sip/sips (answered with 416).
    #[error("unsupported URI scheme {scheme:?}")]
    UnsupportedUriScheme {
        /// The scheme as received.
        scheme: String,
    },
    /// A well-formed request whose method the stack does not know (answered with 501).
    #[error("method {method:?} is not implemented")]
    UnsupportedMethod {
        /// The method token as received.
        method: String,
    },
    /// A header every message (or every request) must carry is absent.
    #[error("missing {name} header")]
    MissingHeader {
        /// Canonical header name.
        name: &'static str,
    },
    /// A single-valued header appears more than once.
    #[error("more than one {name} header")]
    DuplicateHeader {
        /// Canonical header name.
        name: &'static str,
    },
    /// A quoted string in a header value is never closed.
    #[error("{name} header: unterminated quoted string")]
    UnterminatedQuote {
        /// Canonical header name.
        name: String,
    },
    /// A header value breaks its grammar.
    #[error("{name} header: {reason}")]
    InvalidHeader {
        /// Canonical header name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The CSeq method differs from the request method (RFC 4475 mismatch01/02).
    #[error("CSeq method {cseq:?} does not match request method {method:?}")]
    CSeqMismatch {
        /// The request-line method.
        method: String,
        /// The CSeq method.
        cseq: String,
    },
    /// Content-Length is not a decimal number of octets.
    #[error("invalid Content-Length {value:?}")]
    InvalidContentLength {
        /// The value as received (truncated to 20 characters).
        value: String,
    },
    /// Content-Length announces more octets than the datagram carries.
    #[error("Content-Length {declared} exceeds the {available} octets of body received")]
    BodyTooShort {
        /// What Content-Length says.
        declared: usize,
        /// What the datagram holds after the header section.
        available: usize,
    },
    /// A stream message without Content-Length (mandatory on TCP/TLS, RFC 3261 §18.3).
    #[error("Content-Length is mandatory on stream transports")]
    MissingContentLength,
}

impl WireError {
    /// The status code and canonical reason phrase with which an invalid
    /// *request* should be answered, or `None` when nothing can be answered
    /// (no message at all, or a broken stream).
    pub fn response_status(&self) -> Option<(u16, &'static str)> {
        match self {
            WireError::Empty | WireError::Poisoned => None,
            WireError::TooLarge { .. } => Some((513, "Message Too Large")),
            WireError::UnsupportedVersion { .. } => Some((505, "Version Not Supported")),
            WireError::UnsupportedUriScheme { .. } => Some((416, "Unsupported URI Scheme")),
            WireError::UnsupportedMethod { .. } => Some((501, "Not Implemented")),
            _ => Some((400, "Bad Request")),
        }
    }
}

/// Cuts attacker-sized text down before it goes into an error.
pub(crate) fn clip(text: &str) -> String {
    text.chars().take(20).collect()
}
