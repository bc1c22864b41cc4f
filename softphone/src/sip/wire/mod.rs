//! `sip::wire`: bytes to messages and back, robust against hostile input.
//!
//! rsip 0.4 is the message model, but its parser never sees network bytes
//! (its defects: `shared/research/rust-sip-stack.md` §1.2). Instead:
//!
//! 1. **Framing** (RFC 3261 §18.3): a datagram is one message cut to
//!    Content-Length ([`parse_datagram`]); a stream is cut by
//!    [`StreamDecoder`], where Content-Length is mandatory and a message may
//!    not exceed [`MAX_MESSAGE_SIZE`]. CRLF keep-alives (RFC 5626) come out as
//!    [`KeepAlive`].
//! 2. **Normalising**: folded lines are unfolded, compact names expanded,
//!    names given their canonical case, Via/Contact/Route/Record-Route split
//!    to one value per header, and meaningless LWS around `;`, `=` (and `/`,
//!    `:` in Via) removed, so header text read downstream is canonical.
//! 3. **Validation** of what RFC 4475 §3.1.2 calls invalid; the
//!    [`WireError`] names the problem, and [`reject_response`] turns it into
//!    the 400 (or 416/501/505/513) an invalid request is owed.
//! 4. **Building** the `rsip::SipMessage` from the checked parts: our own
//!    Request-URI reader (dotted users, `;`/`?` in the user part, IPv6), our
//!    own case-sensitive method match. The body is exactly Content-Length
//!    octets, and the message carries exactly one Content-Length header,
//!    matching that body (added when the datagram had none).
//!
//! Datagrams:
//! ```
//! use softphone::sip::wire::{parse_datagram, reject_response, Incoming};
//! let bytes = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\r\n";
//! match parse_datagram(bytes) {
//!     Ok(Incoming::Message(_message)) => { /* to the transaction layer */ }
//!     Ok(Incoming::KeepAlive(_)) => { /* nothing to do over UDP */ }
//!     Err(error) => {
//!         // A response is None for responses, ACKs and unreadable bytes.
//!         let _answer: Option<Vec<u8>> = reject_response(bytes, &error, "tag-from-rng");
//!     }
//! }
//! ```
//! Streams: `push` what was read, then drain `next_frame` until `Ok(None)`;
//! parse each [`Frame::Message`] with [`parse_message`] (an `Err` there is
//! per message; an `Err` from the decoder means close the connection), and
//! answer [`KeepAlive::Ping`] with [`PONG`]. A decoder built with a limit
//! above [`MAX_MESSAGE_SIZE`] gains nothing: [`parse_message`] refuses larger
//! messages. Outgoing messages go through [`serialize`], which always writes
//! a correct Content-Length.
//!
//! Known gaps, kept visible in tests: rsip's closed method set means an
//! extension method (RFC 4475 intmeth, esc02) is reported as
//! [`WireError::UnsupportedMethod`] (answered 501), and a Request-URI with a
//! scheme other than sip/sips as [`WireError::UnsupportedUriScheme`] (416);
//! reason phrases of responses with registered codes are not kept, since
//! rsip stores only the code for those.

mod error;
mod framing;
mod normalize;
mod parse;
mod reject;
mod serialize;
mod start_line;
mod uri;
mod validate;

pub use error::WireError;
pub use framing::{Frame, KeepAlive, StreamDecoder, MAX_MESSAGE_SIZE, PONG};
pub use parse::{parse_datagram, parse_message, Incoming};
pub use reject::reject_response;
pub use serialize::{canonical_reason, reason_phrase, serialize};
