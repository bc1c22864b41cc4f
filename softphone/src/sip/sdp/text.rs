//! Parsing and writing of SDP text.
//!
//! Hand-written rather than taken from sdp-rs / webrtc-sdp / sdp: we need
//! a dozen line types, must keep unknown lines for round trips, and must
//! accept what real PBXes send (LF-only bodies, blank lines, odd
//! attributes) where those crates' typed models reject or drop input
//! (rvoip's parser refused `b=` for a while, eisenzopf/rvoip#14);
//! webrtc-sdp is MPL-2.0 and JSEP-shaped. The subset is ~300 lines and
//! pure std, so Windows cross-builds stay trivial.

use std::fmt;

use super::model::{Attribute, Connection, Line, MediaDescription, Origin, SessionDescription};
use super::SdpError;

impl SessionDescription {
    /// Parses an SDP body. LF-only and CRLF line ends are both accepted,
    /// blank lines and lines without `x=` are skipped, unknown lines kept.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut sdp = SessionDescription {
            origin: None,
            session_name: String::new(),
            connection: None,
            attributes: Vec::new(),
            other: Vec::new(),
            media: Vec::new(),
        };
        let mut seen_version = false;
        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw).trim_end();
            let mut chars = line.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
                continue;
            };
            if !kind.is_ascii_alphabetic() {
                continue;
            }
            let value = chars.as_str();
            if !seen_version {
                if kind != 'v' {
                    return Err(SdpError::NotSdp(format!(
                        "line {line_no}: expected v= first, found {kind}="
                    )));
                }
                if value.trim() != "0" {
                    return Err(SdpError::NotSdp(format!(
                        "unsupported version `{}`",
                        value.chars().take(16).collect::<String>()
                    )));
                }
                seen_version = true;
                continue;
            }
            let bad = |reason: &str| SdpError::Malformed {
                line: line_no,
                kind,
                reason: reason.to_string(),
            };
            if kind == 'm' {
                sdp.media.push(parse_media(value).map_err(bad)?);
                continue;
            }
            match (kind, sdp.media.last_mut()) {
                ('a', Some(m)) => m.attributes.push(parse_attribute(value)),
                ('a', None) => sdp.attributes.push(parse_attribute(value)),
                ('c', Some(m)) => m.connection = Some(parse_connection(value).map_err(bad)?),
                ('c', None) => sdp.connection = Some(parse_connection(value).map_err(bad)?),
                ('o', None) => sdp.origin = Some(parse_origin(value).map_err(bad)?),
                ('s', None) => sdp.session_name = value.to_string(),
                ('v', _) => return Err(bad("repeated v= line")),
                (_, Some(m)) => m.other.push(Line {
                    kind,
                    value: value.to_string(),
                }),
                (_, None) => sdp.other.push(Line {
                    kind,
                    value: value.to_string(),
                }),
            }
        }
        if !seen_version {
            return Err(SdpError::NotSdp("no v= line".to_string()));
        }
        Ok(sdp)
    }
}

fn parse_attribute(v: &str) -> Attribute {
    match v.split_once(':') {
        Some((n, val)) => Attribute::value(n.trim(), val),
        None => Attribute::flag(v.trim()),
    }
}

fn parse_connection(v: &str) -> Result<Connection, &'static str> {
    let mut it = v.split_whitespace();
    let (Some(net), Some(at), Some(addr)) = (it.next(), it.next(), it.next()) else {
        return Err("expected `IN <addrtype> <address>`");
    };
    if !net.eq_ignore_ascii_case("IN") {
        return Err("network type is not IN");
    }
    Ok(Connection {
        address_type: at.to_ascii_uppercase(),
        address: addr.to_string(),
    })
}

fn parse_origin(v: &str) -> Result<Origin, &'static str> {
    let f: Vec<&str> = v.split_whitespace().collect();
    let [user, id, version, _net, at, addr] = f.as_slice() else {
        return Err("expected 6 fields");
    };
    Ok(Origin {
        username: user.to_string(),
        session_id: id.to_string(),
        session_version: version.to_string(),
        address_type: at.to_string(),
        address: addr.to_string(),
    })
}

fn parse_media(v: &str) -> Result<MediaDescription, &'static str> {
    let mut it = v.split_whitespace();
    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err("expected `<media> <port> <proto> <fmt>...`");
    };
    let (port, port_count) = match port.split_once('/') {
        Some((p, n)) => (p, Some(n.parse().map_err(|_| "bad port count")?)),
        None => (port, None),
    };
    Ok(MediaDescription {
        media: media.to_string(),
        port: port.parse().map_err(|_| "bad port")?,
        port_count,
        proto: proto.to_string(),
        formats: it.map(str::to_string).collect(),
        connection: None,
        attributes: Vec::new(),
        other: Vec::new(),
    })
}

/// Orders lines as RFC 4566 §5 requires; unknown letters go just before
/// the attributes.
fn rank(kind: char) -> usize {
    "vosiuepcbtrzk".find(kind).unwrap_or(13)
}

fn write_lines(f: &mut fmt::Formatter<'_>, mut lines: Vec<(char, String)>) -> fmt::Result {
    lines.sort_by_key(|(k, _)| rank(*k));
    for (k, v) in lines {
        write!(f, "{k}={v}\r\n")?;
    }
    Ok(())
}

fn attr_text(a: &Attribute) -> String {
    match &a.value {
        Some(v) => format!("{}:{v}", a.name),
        None => a.name.clone(),
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.address_type, self.address)
    }
}

impl fmt::Display for SessionDescription {
    /// Writes CRLF-terminated lines in RFC 4566 order; adds `t=0 0` when
    /// the description has no `t=` (it is mandatory).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = vec![('v', "0".to_string())];
        if let Some(o) = &self.origin {
            lines.push((
                'o',
                format!(
                    "{} {} {} IN {} {}",
                    o.username, o.session_id, o.session_version, o.address_type, o.address
                ),
            ));
        }
        let name = if self.session_name.is_empty() {
            "-"
        } else {
            &self.session_name
        };
        lines.push(('s', name.to_string()));
        if let Some(c) = &self.connection {
            lines.push(('c', c.to_string()));
        }
        lines.extend(self.other.iter().map(|l| (l.kind, l.value.clone())));
        if !self.other.iter().any(|l| l.kind == 't') {
            lines.push(('t', "0 0".to_string()));
        }
        write_lines(f, lines)?;
        for a in &self.attributes {
            write!(f, "a={}\r\n", attr_text(a))?;
        }
        for m in &self.media {
            let port = match m.port_count {
                Some(n) => format!("{}/{n}", m.port),
                None => m.port.to_string(),
            };
            write!(f, "m={} {port} {}", m.media, m.proto)?;
            for fmt in &m.formats {
                write!(f, " {fmt}")?;
            }
            f.write_str("\r\n")?;
            let mut lines: Vec<(char, String)> =
                m.other.iter().map(|l| (l.kind, l.value.clone())).collect();
            if let Some(c) = &m.connection {
                lines.push(('c', c.to_string()));
            }
            write_lines(f, lines)?;
            for a in &m.attributes {
                write!(f, "a={}\r\n", attr_text(a))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::Direction;
    use super::*;
    use proptest::prelude::*;

    const PJSIP_LF: &str = "v=0\no=- 3912 3913 IN IP4 10.0.0.5\ns=pjmedia\nb=AS:84\nt=0 0\n\
        a=X-nat:0\nm=audio 4000 RTP/AVP 8 0 101\nc=IN IP4 10.0.0.5\nb=TIAS:64000\n\
        a=rtcp:4001 IN IP4 10.0.0.5\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\n\
        a=fmtp:101 0-16\na=ptime:20\na=sendrecv\n";

    #[test]
    fn parses_lf_only_and_keeps_unknown_lines() {
        let s = SessionDescription::parse(PJSIP_LF).unwrap();
        assert_eq!(s.origin.as_ref().unwrap().session_version, "3913");
        assert_eq!(s.media.len(), 1);
        let m = &s.media[0];
        assert_eq!(m.payload_types(), vec![8, 0, 101]);
        assert_eq!(m.fmtp(101), Some("0-16"));
        assert_eq!(m.ptime(), Some(20));
        assert_eq!(m.direction(), Some(Direction::SendRecv));
        assert_eq!(m.rtpmaps().len(), 2);
        assert_eq!(m.connection.as_ref().unwrap().ip(), "10.0.0.5".parse().ok());
        let text = s.to_string();
        assert!(text.contains("b=AS:84\r\nt=0 0\r\na=X-nat:0\r\n"));
        assert!(
            text.contains("m=audio 4000 RTP/AVP 8 0 101\r\nc=IN IP4 10.0.0.5\r\nb=TIAS:64000\r\n")
        );
        assert!(!text.replace("\r\n", "").contains('\n'));
        assert_eq!(SessionDescription::parse(&text).unwrap(), s);
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(matches!(
            SessionDescription::parse(""),
            Err(SdpError::NotSdp(_))
        ));
        assert!(matches!(
            SessionDescription::parse("hello"),
            Err(SdpError::NotSdp(_))
        ));
        assert!(matches!(
            SessionDescription::parse("o=x\nv=0"),
            Err(SdpError::NotSdp(_))
        ));
        let e = SessionDescription::parse("v=0\r\nm=audio 99999 RTP/AVP 0\r\n").unwrap_err();
        assert_eq!(e.to_string(), "malformed SDP m= line 2: bad port");
        let e = SessionDescription::parse("v=0\nc=IN IP4\n").unwrap_err();
        assert!(matches!(
            e,
            SdpError::Malformed {
                line: 2,
                kind: 'c',
                ..
            }
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "(?s).{0,300}") {
            let _ = SessionDescription::parse(&s);
            if let Ok(sdp) = SessionDescription::parse(&format!("v=0\n{s}")) {
                let _ = sdp.to_string();
                for m in &sdp.media {
                    let _ = (m.rtpmaps(), m.fmtp(0), m.ptime(), m.payload_types());
                }
            }
        }

        #[test]
        fn sdp_like_lines_never_panic(
            lines in proptest::collection::vec("[vosctma]=[ -~]{0,30}", 0..20)
        ) {
            if let Ok(sdp) = SessionDescription::parse(&format!("v=0\n{}", lines.join("\n"))) {
                let again = SessionDescription::parse(&sdp.to_string());
                prop_assert!(again.is_ok());
            }
        }
    }
}
