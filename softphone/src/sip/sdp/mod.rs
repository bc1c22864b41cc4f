//! `softphone::sip::sdp`: SDP (RFC 4566) and offer/answer (RFC 3264) for
//! one audio stream with RFC 4733 telephone-events, sans-IO.
//!
//! Flow for the UA core, per call:
//! 1. [`MediaEngine::allocate`] a local RTP port; build [`LocalMedia`]
//!    from it and the settings ([`codecs_from_microsip`] filtered by
//!    [`MediaEngine::supports`], `forceCodec` → [`CodecOrder`],
//!    `publicAddr` → address) and make an [`SdpSession`].
//! 2. Outgoing call: [`SdpSession::create_offer`] into the INVITE, then
//!    [`SdpSession::process_answer`] on the 18x/2xx SDP. Incoming call:
//!    [`SdpSession::answer_offer`]; [`SdpError::sip_status`] gives the
//!    final response code when it fails (488, 491, 400).
//! 3. Hand the [`NegotiatedMedia`] to [`MediaEngine::start`] (first time)
//!    or [`MediaEngine::update`]; [`MediaEngine::stop`] at the end.
//! 4. Hold: [`SdpSession::set_hold`]`(true)` and re-INVITE with a new
//!    offer; resume with `false`.

mod codec;
mod media;
mod model;
mod negotiate;
mod text;

pub use codec::{codecs_from_microsip, static_codec, Codec, SkipReason, SkippedCodec};
pub use media::{FakeMedia, LocalRtp, MediaCall, MediaEngine, MediaError, MediaHandle};
pub use model::{
    Attribute, Connection, Direction, Line, MediaDescription, Origin, RtpMap, SessionDescription,
};
pub use negotiate::{
    CodecOrder, LocalMedia, NegotiatedMedia, PayloadCodec, SdpSession, SrtpKeys, SrtpMode,
    TelephoneEvent,
};

/// Why an SDP could not be parsed or negotiated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body does not start with `v=0`.
    #[error("not an SDP body: {0}")]
    NotSdp(String),
    /// A line we need is unreadable.
    #[error("malformed SDP {kind}= line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// The line type letter.
        kind: char,
        /// What is wrong.
        reason: String,
    },
    /// Nothing acceptable in common: answer 488 Not Acceptable Here.
    #[error("not acceptable: {0}")]
    NotAcceptable(String),
    /// The answer breaks RFC 3264 (m-line count or type changed).
    #[error("invalid SDP answer: {0}")]
    BadAnswer(String),
    /// An answer arrived but no offer of ours was pending.
    #[error("SDP answer without a pending offer")]
    NoOfferPending,
    /// A remote offer crossed our pending one: answer 491 Request Pending.
    #[error("offer received while our own offer is pending")]
    Glare,
    /// The OS random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

impl SdpError {
    /// The SIP final response for a request whose offer failed this way.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::NotSdp(_) | SdpError::Malformed { .. } => 400,
            SdpError::Glare => 491,
            SdpError::Random(_) => 500,
            SdpError::NotAcceptable(_) | SdpError::BadAnswer(_) | SdpError::NoOfferPending => 488,
        }
    }
}
