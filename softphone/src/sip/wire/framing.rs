//! Message boundaries (RFC 3261 §18.3) and CRLF keep-alives (RFC 5626 §3.5.1).
//!
//! Hand-written: the rules are SIP-specific (Content-Length framing, optional
//! on datagrams, mandatory on streams; compact `l`; folded values) and no
//! maintained crate implements them without also parsing the message.

use super::error::{clip, WireError};

/// Upper bound on one message (header section plus body), in octets. Large
/// enough for any datagram; on a stream it stops a peer from growing our
/// buffer without end.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

const CRLF: &[u8] = b"\r\n";
const CRLFCRLF: &[u8] = b"\r\n\r\n";

/// An RFC 5626 keep-alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// CRLFCRLF: the peer checks the flow; answer with [`PONG`] on streams.
    Ping,
    /// A single CRLF: the answer to our ping.
    Pong,
}

/// What a reliable transport answers a [`KeepAlive::Ping`] with.
pub const PONG: &[u8] = CRLF;

/// One unit cut from a byte stream by [`StreamDecoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A keep-alive between messages.
    KeepAlive(KeepAlive),
    /// The exact bytes of one message (header section, empty line, body);
    /// parse it with [`super::parse_message`].
    Message(Vec<u8>),
}

/// A datagram made only of CR and LF is a keep-alive rather than a message.
pub(crate) fn datagram_keepalive(bytes: &[u8]) -> Option<KeepAlive> {
    if bytes.is_empty() || !bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
        return None;
    }
    if find(bytes, CRLFCRLF).is_some() {
        Some(KeepAlive::Ping)
    } else {
        Some(KeepAlive::Pong)
    }
}

/// Splits bytes into the header section (without its final CRLF CRLF) and
/// everything after the empty line. Leading CRLFs are skipped (RFC 3261 §7.5).
///
/// With `lenient_end`, a datagram whose last header line ends the datagram
/// (no empty line) is taken as having an empty body: some stacks send that,
/// and the boundary is not in doubt on a datagram.
pub(crate) fn split_head(bytes: &[u8], lenient_end: bool) -> Result<(&[u8], &[u8]), WireError> {
    let mut start = 0;
    while bytes.get(start..start + 2) == Some(CRLF) {
        start += 2;
    }
    let rest = bytes.get(start..).unwrap_or_default();
    if rest.is_empty() {
        return Err(WireError::Empty);
    }
    match find(rest, CRLFCRLF) {
        Some(end) => Ok((
            rest.get(..end).unwrap_or_default(),
            rest.get(end + 4..).unwrap_or_default(),
        )),
        None if lenient_end && rest.ends_with(CRLF) => {
            Ok((rest.get(..rest.len() - 2).unwrap_or_default(), &[]))
        }
        None => Err(WireError::UnterminatedHeaders),
    }
}

/// Reads Content-Length (or compact `l`) from a raw header section, folding
/// and case included, without parsing anything else. `Ok(None)` when absent.
pub(crate) fn content_length(section: &[u8]) -> Result<Option<usize>, WireError> {
    let mut found: Option<usize> = None;
    let mut lines = section.split(|&b| b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(line.get(..colon).unwrap_or_default());
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value = trim(line.get(colon + 1..).unwrap_or_default()).to_vec();
        while let Some(next) =
            lines.next_if(|l| l.first().is_some_and(|b| matches!(b, b' ' | b'\t')))
        {
            let next = next.strip_suffix(b"\r").unwrap_or(next);
            if !value.is_empty() {
                value.push(b' ');
            }
            value.extend_from_slice(trim(next));
        }
        let parsed = parse_length(&value)?;
        match found {
            Some(previous) if previous != parsed => {
                return Err(WireError::DuplicateHeader {
                    name: "Content-Length",
                })
            }
            _ => found = Some(parsed),
        }
    }
    Ok(found)
}

fn parse_length(value: &[u8]) -> Result<usize, WireError> {
    let invalid = || WireError::InvalidContentLength {
        value: clip(&String::from_utf8_lossy(value)),
    };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    // Leading zeros are legal (1*DIGIT); anything past the limit is refused
    // before it can overflow.
    let digits = std::str::from_utf8(value).map_err(|_| invalid())?;
    let significant = digits.trim_start_matches('0');
    if significant.len() > 9 {
        return Err(WireError::TooLarge {
            size: usize::MAX,
            limit: MAX_MESSAGE_SIZE,
        });
    }
    if significant.is_empty() {
        return Ok(0);
    }
    significant.parse::<usize>().map_err(|_| invalid())
}

/// The body of a datagram: truncated to Content-Length, or everything left
/// when there is none (RFC 3261 §18.3).
pub(crate) fn datagram_body(rest: &[u8], declared: Option<usize>) -> Result<&[u8], WireError> {
    match declared {
        None => Ok(rest),
        Some(len) => rest.get(..len).ok_or(WireError::BodyTooShort {
            declared: len,
            available: rest.len(),
        }),
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => bytes.get(s..=e).unwrap_or_default(),
        _ => &[],
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Cuts a TCP/TLS byte stream into messages and keep-alives.
///
/// Feed it with [`push`](Self::push) and drain it with
/// [`next_frame`](Self::next_frame) until `Ok(None)`. Any `Err` means the
/// stream has lost its message boundaries: close the connection.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    limit: usize,
    /// How far the search for CRLFCRLF got, so byte-by-byte input stays linear.
    searched: usize,
    /// Size of the message at the front once its header section is read.
    pending_total: Option<usize>,
    poisoned: bool,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder {
    /// A decoder with the [`MAX_MESSAGE_SIZE`] limit.
    pub fn new() -> Self {
        Self::with_limit(MAX_MESSAGE_SIZE)
    }

    /// A decoder refusing any message (header section plus body) over `limit` octets.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            searched: 0,
            pending_total: None,
            poisoned: false,
        }
    }

    /// Appends bytes read from the connection. Fails when the stream is
    /// already poisoned, or when undrained bytes already exceed the limit
    /// (the caller must call [`next_frame`](Self::next_frame) between pushes).
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        if self.poisoned {
            return Err(WireError::Poisoned);
        }
        if self.buf.len() > self.limit {
            return Err(self.poison(WireError::TooLarge {
                size: self.buf.len(),
                limit: self.limit,
            }));
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Whether a framing error has made the stream unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Octets received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        if self.poisoned {
            return Err(WireError::Poisoned);
        }
        if let Some(total) = self.pending_total {
            return Ok(self.take_message(total));
        }
        if let Some(keepalive) = self.take_keepalive() {
            return Ok(keepalive.map(Frame::KeepAlive));
        }
        let from = self.searched.saturating_sub(3);
        let found = self.buf.get(from..).and_then(|b| find(b, CRLFCRLF));
        let Some(end) = found.map(|p| p + from) else {
            self.searched = self.buf.len();
            if self.buf.len() > self.limit {
                return Err(self.poison(WireError::TooLarge {
                    size: self.buf.len(),
                    limit: self.limit,
                }));
            }
            return Ok(None);
        };
        let section = self.buf.get(..end).unwrap_or_default();
        let body_len = match content_length(section) {
            Ok(Some(len)) => len,
            Ok(None) => return Err(self.poison(WireError::MissingContentLength)),
            Err(e) => return Err(self.poison(e)),
        };
        let total = (end + 4).saturating_add(body_len);
        if total > self.limit {
            return Err(self.poison(WireError::TooLarge {
                size: total,
                limit: self.limit,
            }));
        }
        self.pending_total = Some(total);
        Ok(self.take_message(total))
    }

    fn take_message(&mut self, total: usize) -> Option<Frame> {
        if self.buf.len() < total {
            return None;
        }
        let frame: Vec<u8> = self.buf.drain(..total).collect();
        self.searched = 0;
        self.pending_total = None;
        Some(Frame::Message(frame))
    }

    /// Handles CRLFs before a start line. `None`: not at a keep-alive;
    /// `Some(None)`: cannot tell a ping from a pong yet.
    fn take_keepalive(&mut self) -> Option<Option<KeepAlive>> {
        match self.buf.as_slice() {
            [b'\r', b'\n', b'\r', b'\n', ..] => {
                self.consume(4);
                Some(Some(KeepAlive::Ping))
            }
            [b'\r', b'\n', b'\r'] | [b'\r'] => Some(None),
            [b'\r', b'\n', ..] => {
                self.consume(2);
                Some(Some(KeepAlive::Pong))
            }
            _ => None,
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        self.searched = 0;
        self.pending_total = None;
    }

    fn poison(&mut self, error: WireError) -> WireError {
        self.poisoned = true;
        self.buf = Vec::new();
        self.pending_total = None;
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";

    fn drain(decoder: &mut StreamDecoder) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = decoder.next_frame() {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn a_message_pushed_byte_by_byte_comes_out_once_whole() {
        let mut decoder = StreamDecoder::new();
        let mut frames = Vec::new();
        for byte in MSG {
            decoder.push(&[*byte]).unwrap();
            frames.extend(drain(&mut decoder));
        }
        assert_eq!(frames, vec![Frame::Message(MSG.to_vec())]);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn two_messages_in_one_push_come_out_in_order() {
        let second = b"SIP/2.0 200 OK\r\nl:0\r\n\r\n";
        let mut decoder = StreamDecoder::new();
        decoder.push(&[MSG, second.as_slice()].concat()).unwrap();
        assert_eq!(
            drain(&mut decoder),
            vec![
                Frame::Message(MSG.to_vec()),
                Frame::Message(second.to_vec())
            ]
        );
    }

    #[test]
    fn pings_and_pongs_between_messages_are_keepalives() {
        let mut decoder = StreamDecoder::new();
        decoder
            .push(&[b"\r\n\r\n", MSG, b"\r\n", MSG].concat())
            .unwrap();
        assert_eq!(
            drain(&mut decoder),
            vec![
                Frame::KeepAlive(KeepAlive::Ping),
                Frame::Message(MSG.to_vec()),
                Frame::KeepAlive(KeepAlive::Pong),
                Frame::Message(MSG.to_vec()),
            ]
        );
    }

    #[test]
    fn a_ping_split_after_three_bytes_waits_for_the_fourth() {
        let mut decoder = StreamDecoder::new();
        decoder.push(b"\r\n\r").unwrap();
        assert_eq!(decoder.next_frame(), Ok(None));
        decoder.push(b"\n").unwrap();
        assert_eq!(
            decoder.next_frame(),
            Ok(Some(Frame::KeepAlive(KeepAlive::Ping)))
        );
    }

    #[test]
    fn a_lone_crlf_is_a_pong() {
        let mut decoder = StreamDecoder::new();
        decoder.push(b"\r\n").unwrap();
        assert_eq!(
            decoder.next_frame(),
            Ok(Some(Frame::KeepAlive(KeepAlive::Pong)))
        );
        assert_eq!(decoder.next_frame(), Ok(None));
    }

    #[test]
    fn folded_and_compact_content_length_frames_the_body() {
        let msg = b"MESSAGE sip:a@b SIP/2.0\r\nL :\r\n  2\r\n\r\nhiEXTRA";
        let mut decoder = StreamDecoder::new();
        decoder.push(msg).unwrap();
        let expected = msg.get(..msg.len() - 5).unwrap().to_vec();
        assert_eq!(decoder.next_frame(), Ok(Some(Frame::Message(expected))));
    }

    #[test]
    fn missing_content_length_poisons_the_stream() {
        let mut decoder = StreamDecoder::new();
        decoder
            .push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n")
            .unwrap();
        assert_eq!(decoder.next_frame(), Err(WireError::MissingContentLength));
        assert!(decoder.is_poisoned());
        assert_eq!(decoder.push(MSG), Err(WireError::Poisoned));
        assert_eq!(decoder.next_frame(), Err(WireError::Poisoned));
    }

    #[test]
    fn negative_content_length_poisons_the_stream() {
        let mut decoder = StreamDecoder::new();
        decoder
            .push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n")
            .unwrap();
        assert!(matches!(
            decoder.next_frame(),
            Err(WireError::InvalidContentLength { .. })
        ));
        assert!(decoder.is_poisoned());
    }

    #[test]
    fn conflicting_content_lengths_poison_the_stream() {
        let mut decoder = StreamDecoder::new();
        decoder
            .push(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab")
            .unwrap();
        assert_eq!(
            decoder.next_frame(),
            Err(WireError::DuplicateHeader {
                name: "Content-Length"
            })
        );
    }

    #[test]
    fn an_announced_body_over_the_cap_is_refused_before_it_arrives() {
        let mut decoder = StreamDecoder::with_limit(100);
        decoder
            .push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n")
            .unwrap();
        assert!(matches!(
            decoder.next_frame(),
            Err(WireError::TooLarge { .. })
        ));
        assert!(decoder.is_poisoned());
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn endless_headers_are_refused_at_the_cap() {
        let mut decoder = StreamDecoder::with_limit(64);
        let mut result = Ok(None);
        for _ in 0..20 {
            if decoder.push(b"X-Junk: 0123456789\r\n").is_err() {
                break;
            }
            result = decoder.next_frame();
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(WireError::TooLarge { .. })));
        assert!(decoder.is_poisoned());
    }

    #[test]
    fn a_huge_content_length_does_not_overflow() {
        let mut decoder = StreamDecoder::new();
        decoder
            .push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999999999\r\n\r\n")
            .unwrap();
        assert!(matches!(
            decoder.next_frame(),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn leading_zeros_in_content_length_are_fine() {
        assert_eq!(content_length(b"X\r\nContent-Length: 0003"), Ok(Some(3)));
        assert_eq!(content_length(b"X\r\nContent-Length: 0"), Ok(Some(0)));
        assert_eq!(content_length(b"X\r\nSubject: l"), Ok(None));
    }

    #[test]
    fn datagram_keepalives() {
        assert_eq!(datagram_keepalive(b"\r\n\r\n"), Some(KeepAlive::Ping));
        assert_eq!(datagram_keepalive(b"\r\n"), Some(KeepAlive::Pong));
        assert_eq!(datagram_keepalive(b""), None);
        assert_eq!(datagram_keepalive(b"\r\nX"), None);
    }

    #[test]
    fn datagram_bodies_follow_content_length() {
        assert_eq!(datagram_body(b"abcdef", Some(3)), Ok(b"abc".as_slice()));
        assert_eq!(datagram_body(b"abc", None), Ok(b"abc".as_slice()));
        assert_eq!(
            datagram_body(b"ab", Some(3)),
            Err(WireError::BodyTooShort {
                declared: 3,
                available: 2
            })
        );
    }

    #[test]
    fn split_head_skips_leading_crlf_and_tolerates_a_missing_empty_line() {
        let (head, rest) = split_head(b"\r\nA\r\nB: c\r\n\r\nbody", false).unwrap();
        assert_eq!((head, rest), (b"A\r\nB: c".as_slice(), b"body".as_slice()));
        assert_eq!(
            split_head(b"A\r\nB: c\r\n", false),
            Err(WireError::UnterminatedHeaders)
        );
        assert_eq!(
            split_head(b"A\r\nB: c\r\n", true),
            Ok((b"A\r\nB: c".as_slice(), b"".as_slice()))
        );
        assert_eq!(split_head(b"\r\n", true), Err(WireError::Empty));
    }
}
