//! The SDP data model; parsing and writing live in `text.rs`.

use std::net::IpAddr;

/// A media direction attribute (RFC 3264 §5.1), from the point of view of
/// the SDP's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default when absent).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the author sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the author receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other side (sendonly ↔ recvonly).
    pub fn reverse(self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }

    /// Both constraints at once.
    pub fn intersect(self, other: Self) -> Self {
        Self::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The attribute name.
    pub fn token(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_token(s: &str) -> Option<Self> {
        Some(match s {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }
}

/// A line we do not interpret, kept for round trips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// An `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The name before `:`.
    pub name: String,
    /// The value after `:`, if any.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute such as `sendonly`.
    pub fn flag(name: &str) -> Self {
        Self {
            name: name.to_string(),
            value: None,
        }
    }

    /// A value attribute such as `rtpmap:0 PCMU/8000`.
    pub fn value(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            value: Some(value.into()),
        }
    }
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `-` when there is no user concept.
    pub username: String,
    /// Kept as text: some peers exceed 64 bits.
    pub session_id: String,
    /// Kept as text for the same reason.
    pub session_version: String,
    /// `IP4` or `IP6`.
    pub address_type: String,
    /// The originator's address.
    pub address: String,
}

/// A `c=` line (network type `IN` implied and written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6`.
    pub address_type: String,
    /// The address, possibly with `/ttl` for multicast.
    pub address: String,
}

impl Connection {
    /// A connection line for an IP address.
    pub fn from_ip(ip: IpAddr) -> Self {
        Self {
            address_type: addr_type(ip).to_string(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, if it is one (RFC 4566 also allows names).
    pub fn ip(&self) -> Option<IpAddr> {
        let a = self.address.split('/').next().unwrap_or("");
        a.parse().ok()
    }

    /// RFC 2543 hold: `c=IN IP4 0.0.0.0` (RFC 3264 §8.4 tells us to
    /// recognise it).
    pub fn is_legacy_hold(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `IP4` / `IP6` for an address.
pub fn addr_type(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    }
}

/// One `a=rtpmap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type.
    pub pt: u8,
    /// The encoding name as written.
    pub encoding: String,
    /// The RTP clock rate.
    pub clock_rate: u32,
    /// The channel count (1 when absent).
    pub channels: u8,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub media: String,
    /// The port; 0 = stream rejected/disabled.
    pub port: u16,
    /// The `/n` port count, rarely used.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub proto: String,
    /// The format list (payload types for RTP), as written.
    pub formats: Vec<String>,
    /// A media-level `c=`.
    pub connection: Option<Connection>,
    /// The `a=` lines in order.
    pub attributes: Vec<Attribute>,
    /// Other lines (`i=`, `b=`, `k=`, unknown), in order.
    pub other: Vec<Line>,
}

impl MediaDescription {
    /// The first value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .and_then(|a| a.value.as_deref())
    }

    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// Every well-formed `a=rtpmap`; malformed ones are ignored.
    pub fn rtpmaps(&self) -> Vec<RtpMap> {
        self.attributes
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case("rtpmap"))
            .filter_map(|a| parse_rtpmap(a.value.as_deref()?))
            .collect()
    }

    /// The `a=fmtp` parameters of payload type `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attributes
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case("fmtp"))
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let (p, rest) = v.split_once(' ')?;
                (p.parse::<u8>().ok()? == pt).then(|| rest.trim())
            })
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime")?.trim().parse().ok()
    }

    /// The formats that are payload type numbers.
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats.iter().filter_map(|f| f.parse().ok()).collect()
    }
}

fn parse_rtpmap(v: &str) -> Option<RtpMap> {
    let (pt, rest) = v.trim().split_once(char::is_whitespace)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.to_string();
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => c.trim().parse().ok()?,
        None => 1,
    };
    Some(RtpMap {
        pt: pt.parse().ok()?,
        encoding,
        clock_rate,
        channels,
    })
}

fn direction_in(attrs: &[Attribute]) -> Option<Direction> {
    attrs
        .iter()
        .rev()
        .filter(|a| a.value.is_none())
        .find_map(|a| Direction::from_token(&a.name.to_ascii_lowercase()))
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`; absent only in broken input we still accept.
    pub origin: Option<Origin>,
    /// `s=`.
    pub session_name: String,
    /// The session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`t=`, `b=`, `i=`, unknown), in order.
    pub other: Vec<Line>,
    /// The `m=` sections in order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The direction in force for media section `m` (media level, then
    /// session level, then sendrecv).
    pub fn effective_direction(&self, m: &MediaDescription) -> Direction {
        m.direction()
            .or_else(|| self.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// The connection in force for media section `m`.
    pub fn effective_connection<'a>(&'a self, m: &'a MediaDescription) -> Option<&'a Connection> {
        m.connection.as_ref().or(self.connection.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_algebra() {
        use Direction::*;
        assert_eq!(SendOnly.reverse(), RecvOnly);
        assert_eq!(Inactive.reverse(), Inactive);
        assert_eq!(SendRecv.intersect(RecvOnly), RecvOnly);
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
    }
}
