//! Typed reading of the header fields the stack routes on.
//!
//! rsip stores every header as its raw text and parses it on demand, but its
//! typed parsers for Via, Contact, From, To and Authorization fail on inputs
//! real peers send (IPv6 sent-by, `+sip.instance`, several values on one
//! line, quoted display names; see `shared/research/rust-sip-stack.md`
//! §1.2). So this module reads those fields from the raw strings itself and
//! never calls rsip's `.typed()`.
//!
//! Readers tolerate what `sip::wire` may not have normalised: compact names
//! carried as `Header::Other`, several comma-separated values in one header
//! (split outside quotes and `<>`), and any case in parameter names.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method};

/// What went wrong reading a header; every variant names the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The message lacks a header the caller needs.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// The header is present but its value cannot be read.
    #[error("malformed {header} header {value:?}: {reason}")]
    Malformed {
        /// Which header.
        header: &'static str,
        /// The offending raw value (for logs).
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The operating system's random source failed while generating a
    /// branch or tag.
    #[error("cannot generate a random {0}: {1}")]
    Random(&'static str, String),
}

fn malformed(header: &'static str, value: &str, reason: &'static str) -> HeaderError {
    HeaderError::Malformed {
        header,
        value: value.to_owned(),
        reason,
    }
}

/// The RFC 3261 §8.1.1.7 magic cookie every branch we generate starts with.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

// ---------------------------------------------------------------------------
// Finding headers by name

/// The name and raw value of any rsip header.
///
/// For `Header::Other` the name is as received, which may be a compact form;
/// compare names with [`same_name`].
pub fn name_and_value(header: &Header) -> (&str, &str) {
    match header {
        Header::Accept(v) => ("Accept", v.value()),
        Header::AcceptEncoding(v) => ("Accept-Encoding", v.value()),
        Header::AcceptLanguage(v) => ("Accept-Language", v.value()),
        Header::AlertInfo(v) => ("Alert-Info", v.value()),
        Header::Allow(v) => ("Allow", v.value()),
        Header::AuthenticationInfo(v) => ("Authentication-Info", v.value()),
        Header::Authorization(v) => ("Authorization", v.value()),
        Header::CSeq(v) => ("CSeq", v.value()),
        Header::CallId(v) => ("Call-ID", v.value()),
        Header::CallInfo(v) => ("Call-Info", v.value()),
        Header::Contact(v) => ("Contact", v.value()),
        Header::ContentDisposition(v) => ("Content-Disposition", v.value()),
        Header::ContentEncoding(v) => ("Content-Encoding", v.value()),
        Header::ContentLanguage(v) => ("Content-Language", v.value()),
        Header::ContentLength(v) => ("Content-Length", v.value()),
        Header::ContentType(v) => ("Content-Type", v.value()),
        Header::Date(v) => ("Date", v.value()),
        Header::ErrorInfo(v) => ("Error-Info", v.value()),
        Header::Event(v) => ("Event", v.value()),
        Header::Expires(v) => ("Expires", v.value()),
        Header::From(v) => ("From", v.value()),
        Header::InReplyTo(v) => ("In-Reply-To", v.value()),
        Header::MaxForwards(v) => ("Max-Forwards", v.value()),
        Header::MimeVersion(v) => ("MIME-Version", v.value()),
        Header::MinExpires(v) => ("Min-Expires", v.value()),
        Header::Organization(v) => ("Organization", v.value()),
        Header::Other(name, value) => (name.as_str(), value.as_str()),
        Header::Priority(v) => ("Priority", v.value()),
        Header::ProxyAuthenticate(v) => ("Proxy-Authenticate", v.value()),
        Header::ProxyAuthorization(v) => ("Proxy-Authorization", v.value()),
        Header::ProxyRequire(v) => ("Proxy-Require", v.value()),
        Header::RecordRoute(v) => ("Record-Route", v.value()),
        Header::ReplyTo(v) => ("Reply-To", v.value()),
        Header::Require(v) => ("Require", v.value()),
        Header::RetryAfter(v) => ("Retry-After", v.value()),
        Header::Route(v) => ("Route", v.value()),
        Header::Server(v) => ("Server", v.value()),
        Header::Subject(v) => ("Subject", v.value()),
        Header::SubscriptionState(v) => ("Subscription-State", v.value()),
        Header::Supported(v) => ("Supported", v.value()),
        Header::Timestamp(v) => ("Timestamp", v.value()),
        Header::To(v) => ("To", v.value()),
        Header::Unsupported(v) => ("Unsupported", v.value()),
        Header::UserAgent(v) => ("User-Agent", v.value()),
        Header::Via(v) => ("Via", v.value()),
        Header::Warning(v) => ("Warning", v.value()),
        Header::WwwAuthenticate(v) => ("WWW-Authenticate", v.value()),
    }
}

/// RFC 3261 §7.3.3 compact forms (plus RFC 3515 `r`, RFC 3892 `b`,
/// RFC 3265 `o`/`u`, RFC 4028 `x`, RFC 3841 `y`).
const COMPACT: &[(&str, &str)] = &[
    ("v", "Via"),
    ("i", "Call-ID"),
    ("f", "From"),
    ("t", "To"),
    ("m", "Contact"),
    ("c", "Content-Type"),
    ("l", "Content-Length"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("e", "Content-Encoding"),
    ("o", "Event"),
    ("u", "Allow-Events"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
    ("r", "Refer-To"),
    ("b", "Referred-By"),
];

fn full_name(name: &str) -> &str {
    COMPACT
        .iter()
        .find(|(short, _)| short.eq_ignore_ascii_case(name))
        .map_or(name, |(_, full)| full)
}

/// Whether two header names denote the same header (case-insensitive, a
/// compact form equals its full form).
pub fn same_name(a: &str, b: &str) -> bool {
    full_name(a.trim()).eq_ignore_ascii_case(full_name(b.trim()))
}

/// Every header called `name`, in message order.
pub fn find<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
    headers
        .iter()
        .filter(move |h| same_name(name_and_value(h).0, name))
}

/// The raw (trimmed) values of every header called `name`, in message
/// order; one entry per header line, not split at commas.
pub fn raw_values<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    find(headers, name).map(|h| name_and_value(h).1.trim())
}

/// The values of every header called `name`, with comma-separated lists
/// split into elements (outside quotes and `<>`).
pub fn list_values<'a>(headers: &'a Headers, name: &'a str) -> Vec<&'a str> {
    raw_values(headers, name).flat_map(split_list).collect()
}

fn single<'a>(headers: &'a Headers, name: &'static str) -> Result<&'a str, HeaderError> {
    raw_values(headers, name)
        .next()
        .ok_or(HeaderError::Missing(name))
}

// ---------------------------------------------------------------------------
// Lexing helpers

/// Splits a header value at top-level commas: not inside a quoted string
/// (with `\` escapes) nor inside `<...>`. Empty elements are dropped.
pub fn split_list(value: &str) -> Vec<&str> {
    split_outside(value, ',')
}

fn split_outside(value: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut angle = 0usize;
    let mut start = 0usize;
    for (i, c) in value.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '<' => angle += 1,
            '>' => angle = angle.saturating_sub(1),
            c if c == sep && angle == 0 => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Byte index of the first `target` outside a quoted string.
fn find_unquoted(value: &str, target: char) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
        } else if c == '"' {
            in_quotes = true;
        } else if c == target {
            return Some(i);
        }
    }
    None
}

/// Removes the quotes and `\` escapes of a quoted string; other text is
/// returned trimmed.
pub fn unquote(value: &str) -> String {
    let v = value.trim();
    match v.strip_prefix('"') {
        Some(inner) => {
            let inner = inner.strip_suffix('"').unwrap_or(inner);
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Parameters

/// A `;name[=value]` parameter, as written (value keeps any quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name, in the case it was received.
    pub name: String,
    /// The value, or `None` for a flag such as `;lr` or `;rport`.
    pub value: Option<String>,
}

impl Param {
    /// A parameter with a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A parameter without a value.
    pub fn flag(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: None,
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

/// Parses `;a=1;b;c="x;y"` (the leading `;` optional).
fn parse_params(text: &str) -> Vec<Param> {
    split_outside(text, ';')
        .into_iter()
        .map(|seg| match seg.split_once('=') {
            Some((n, v)) => Param::new(n.trim(), v.trim()),
            None => Param::flag(seg),
        })
        .collect()
}

/// Looks a parameter up by case-insensitive name: `None` if absent,
/// `Some(None)` for a flag, `Some(Some(value))` otherwise.
pub fn find_param<'a>(params: &'a [Param], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_deref())
}

fn set_param(params: &mut Vec<Param>, name: &str, value: Option<String>) {
    match params
        .iter_mut()
        .find(|p| p.name.eq_ignore_ascii_case(name))
    {
        Some(p) => p.value = value,
        None => params.push(Param {
            name: name.to_owned(),
            value,
        }),
    }
}

// ---------------------------------------------------------------------------
// Via

/// One Via value (RFC 3261 §20.42, RFC 3581).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name and version, normally `SIP/2.0`.
    pub protocol: String,
    /// The transport token, upper-cased (`UDP`, `TCP`, `TLS`, `WS`, ...).
    pub transport: String,
    /// The sent-by host as written; IPv6 addresses keep their brackets.
    pub host: String,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// All parameters in order (branch, received, rport, ...).
    pub params: Vec<Param>,
}

impl Via {
    /// Parses one Via value (no commas).
    pub fn parse(value: &str) -> Result<Self, HeaderError> {
        let bad = |reason| malformed("Via", value, reason);
        let v = value.trim();
        // sent-protocol is `name / version / transport`, LWS allowed around `/`.
        let (name, rest) = v.split_once('/').ok_or_else(|| bad("no sent-protocol"))?;
        let (version, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad("no sent-protocol"))?;
        let rest = rest.trim_start();
        let transport_end = rest
            .find(|c: char| c.is_whitespace())
            .ok_or_else(|| bad("no sent-by"))?;
        let transport = &rest[..transport_end];
        let rest = rest[transport_end..].trim_start();
        let (sent_by, params) = match find_unquoted(rest, ';') {
            Some(i) => (rest[..i].trim(), &rest[i..]),
            None => (rest.trim(), ""),
        };
        if name.trim().is_empty() || version.trim().is_empty() || transport.is_empty() {
            return Err(bad("empty sent-protocol"));
        }
        let (host, port) = split_host_port(sent_by).ok_or_else(|| bad("bad sent-by"))?;
        Ok(Self {
            protocol: format!("{}/{}", name.trim(), version.trim()),
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            params: parse_params(params),
        })
    }

    /// A new Via for a request we send: `SIP/2.0/<transport> host:port;branch=..;rport`.
    pub fn new(transport: super::Transport, sent_by: SocketAddr, branch: &str) -> Self {
        let host = match sent_by.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        Self {
            protocol: "SIP/2.0".to_owned(),
            transport: transport.via_token().to_owned(),
            host,
            port: Some(sent_by.port()),
            params: vec![Param::new("branch", branch), Param::flag("rport")],
        }
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch").flatten()
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        find_param(&self.params, "received").flatten()
    }

    /// The `rport` parameter: `None` if absent, `Some(None)` when requested
    /// without a value, `Some(Some(port))` once filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        find_param(&self.params, "rport").map(|v| v.and_then(|p| p.trim().parse().ok()))
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&str> {
        find_param(&self.params, "maddr").flatten()
    }

    /// Whether the branch carries the RFC 3261 magic cookie.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(BRANCH_COOKIE))
    }

    /// The sent-by host as an IP address, if it is a literal one.
    pub fn host_ip(&self) -> Option<IpAddr> {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        h.parse().ok()
    }

    /// The sent-by, lower-cased with the transport's default port filled
    /// in: what RFC 3261 §17.2.3 compares.
    pub fn sent_by_key(&self) -> String {
        let port = self.port.unwrap_or(default_port(&self.transport));
        format!("{}:{}", self.host.to_ascii_lowercase(), port)
    }

    /// Records where a request really came from (RFC 3261 §18.2.1,
    /// RFC 3581 §4): `received` when the sent-by is not the source IP or
    /// `rport` was asked for, and `rport=<source port>` when asked for.
    pub fn stamp_received(&mut self, source: SocketAddr) {
        let wants_rport = self.rport().is_some();
        if wants_rport || self.host_ip() != Some(source.ip()) {
            set_param(&mut self.params, "received", Some(source.ip().to_string()));
        }
        if wants_rport {
            set_param(&mut self.params, "rport", Some(source.port().to_string()));
        }
    }

    /// Where a response to the request carrying this Via goes over an
    /// unreliable transport (RFC 3261 §18.2.2, RFC 3581 §4): the
    /// `received` address (else the sent-by IP) and the `rport` (else the
    /// sent-by port, else the default port). `None` if that needs DNS.
    pub fn response_address(&self) -> Option<SocketAddr> {
        let ip = match self.received() {
            Some(r) => r
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()?,
            None => self.host_ip()?,
        };
        let port = match self.rport() {
            Some(Some(p)) => p,
            _ => self.port.unwrap_or(default_port(&self.transport)),
        };
        Some(SocketAddr::new(ip, port))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

fn default_port(transport: &str) -> u16 {
    if transport.eq_ignore_ascii_case("TLS") || transport.eq_ignore_ascii_case("WSS") {
        5061
    } else {
        5060
    }
}

/// Splits `host[:port]` / `[v6][:port]`.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let host = &s[..=end];
        match &s[end + 1..] {
            "" => (host, None),
            rest => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.trim().parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

/// Every Via value, top first.
pub fn vias(headers: &Headers) -> Result<Vec<Via>, HeaderError> {
    list_values(headers, "Via")
        .into_iter()
        .map(Via::parse)
        .collect()
}

/// The topmost Via.
pub fn top_via(headers: &Headers) -> Result<Via, HeaderError> {
    let first = list_values(headers, "Via")
        .into_iter()
        .next()
        .ok_or(HeaderError::Missing("Via"))?;
    Via::parse(first)
}

/// Replaces the topmost Via value, keeping any further values that shared
/// its header line.
pub fn set_top_via(headers: &mut Headers, via: &Via) -> Result<(), HeaderError> {
    let header = headers
        .iter_mut()
        .find(|h| same_name(name_and_value(h).0, "Via"))
        .ok_or(HeaderError::Missing("Via"))?;
    let (_, value) = name_and_value(header);
    let rest: Vec<String> = split_list(value)
        .into_iter()
        .skip(1)
        .map(str::to_owned)
        .collect();
    let mut text = via.to_string();
    for r in rest {
        text.push_str(", ");
        text.push_str(&r);
    }
    *header = Header::Via(rsip::headers::Via::new(text));
    Ok(())
}

// ---------------------------------------------------------------------------
// CSeq, Call-ID, numbers

/// The CSeq number and method.
pub fn cseq(headers: &Headers) -> Result<(u32, Method), HeaderError> {
    let value = single(headers, "CSeq")?;
    let mut parts = value.split_whitespace();
    let (Some(num), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("CSeq", value, "expected `number method`"));
    };
    let num = num
        .parse::<u32>()
        .map_err(|_| malformed("CSeq", value, "bad sequence number"))?;
    let method =
        Method::from_str(method).map_err(|_| malformed("CSeq", value, "unknown method"))?;
    Ok((num, method))
}

/// The Call-ID.
pub fn call_id(headers: &Headers) -> Result<&str, HeaderError> {
    let v = single(headers, "Call-ID")?;
    if v.is_empty() {
        return Err(malformed("Call-ID", v, "empty"));
    }
    Ok(v)
}

fn number(headers: &Headers, name: &'static str) -> Result<Option<u32>, HeaderError> {
    raw_values(headers, name)
        .next()
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| malformed(name, v, "not a number"))
        })
        .transpose()
}

/// The Expires header, if present.
pub fn expires(headers: &Headers) -> Result<Option<u32>, HeaderError> {
    number(headers, "Expires")
}

/// The Min-Expires header (in a 423), if present.
pub fn min_expires(headers: &Headers) -> Result<Option<u32>, HeaderError> {
    number(headers, "Min-Expires")
}

/// The Max-Forwards header, if present.
pub fn max_forwards(headers: &Headers) -> Result<Option<u32>, HeaderError> {
    number(headers, "Max-Forwards")
}

/// The raw Content-Type, if present (e.g. `application/sdp`).
pub fn content_type(headers: &Headers) -> Option<&str> {
    raw_values(headers, "Content-Type").next()
}

/// The Record-Route values, top first, raw (route sets are replayed
/// verbatim, never re-rendered).
pub fn record_routes(headers: &Headers) -> Vec<&str> {
    list_values(headers, "Record-Route")
}

/// The Route values, top first, raw.
pub fn routes(headers: &Headers) -> Vec<&str> {
    list_values(headers, "Route")
}

// ---------------------------------------------------------------------------
// From, To, Contact

/// A name-addr or addr-spec with header parameters: From, To, Contact,
/// Route entries and the like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted and unescaped.
    pub display_name: Option<String>,
    /// The URI text between `<>` (or the bare addr-spec); `*` for a
    /// wildcard Contact.
    pub uri: String,
    /// Header parameters (after `>`; for a bare addr-spec everything after
    /// the first `;`, as RFC 3261 §20 prescribes).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// Parses one value (no top-level commas). `header` names it in errors.
    pub fn parse(value: &str, header: &'static str) -> Result<Self, HeaderError> {
        let v = value.trim();
        if v.is_empty() {
            return Err(malformed(header, value, "empty"));
        }
        match find_unquoted(v, '<') {
            Some(lt) => {
                let after = &v[lt + 1..];
                let gt = after
                    .find('>')
                    .ok_or_else(|| malformed(header, value, "unclosed <"))?;
                let display = v[..lt].trim();
                let uri = after[..gt].trim();
                if uri.is_empty() {
                    return Err(malformed(header, value, "empty URI"));
                }
                Ok(Self {
                    display_name: (!display.is_empty()).then(|| unquote(display)),
                    uri: uri.to_owned(),
                    params: parse_params(&after[gt + 1..]),
                })
            }
            None => {
                let (uri, params) = match v.find(';') {
                    Some(i) => (v[..i].trim(), &v[i..]),
                    None => (v, ""),
                };
                if uri.is_empty() || uri.contains(char::is_whitespace) {
                    return Err(malformed(header, value, "bad addr-spec"));
                }
                Ok(Self {
                    display_name: None,
                    uri: uri.to_owned(),
                    params: parse_params(params),
                })
            }
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").flatten()
    }

    /// A parameter by case-insensitive name (see [`find_param`]).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `expires` parameter of a Contact, if numeric.
    pub fn expires(&self) -> Option<u32> {
        self.param("expires")
            .flatten()
            .and_then(|v| v.trim().parse().ok())
    }

    /// Whether this is the `Contact: *` of an unregister-all.
    pub fn is_wildcard(&self) -> bool {
        self.uri == "*"
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_wildcard() {
            f.write_str("*")?;
        } else {
            if let Some(name) = &self.display_name {
                let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "\"{escaped}\" ")?;
            }
            write!(f, "<{}>", self.uri)?;
        }
        for p in &self.params {
            write!(f, ";{p}")?;
        }
        Ok(())
    }
}

/// The From header.
pub fn from(headers: &Headers) -> Result<NameAddr, HeaderError> {
    NameAddr::parse(single(headers, "From")?, "From")
}

/// The To header.
pub fn to(headers: &Headers) -> Result<NameAddr, HeaderError> {
    NameAddr::parse(single(headers, "To")?, "To")
}

/// Every Contact value, in order (several per line allowed).
pub fn contacts(headers: &Headers) -> Result<Vec<NameAddr>, HeaderError> {
    list_values(headers, "Contact")
        .into_iter()
        .map(|v| NameAddr::parse(v, "Contact"))
        .collect()
}

// ---------------------------------------------------------------------------
// Generation

fn random_hex(what: &'static str, bytes: usize) -> Result<String, HeaderError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| HeaderError::Random(what, e.to_string()))?;
    Ok(hex::encode(buf))
}

/// A fresh RFC 3261 branch: the magic cookie and 96 random bits.
pub fn new_branch() -> Result<String, HeaderError> {
    Ok(format!("{BRANCH_COOKIE}{}", random_hex("branch", 12)?))
}

/// A fresh From/To tag (64 random bits; RFC 3261 §19.3 asks for 32).
pub fn new_tag() -> Result<String, HeaderError> {
    random_hex("tag", 8)
}

/// A fresh Call-ID local part (128 random bits); append `@host` if wanted.
pub fn new_call_id() -> Result<String, HeaderError> {
    random_hex("Call-ID", 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(list: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (n, v) in list {
            let header = match *n {
                "Via" => Header::Via(rsip::headers::Via::new(*v)),
                "From" => Header::From(rsip::headers::From::new(*v)),
                "To" => Header::To(rsip::headers::To::new(*v)),
                "Contact" => Header::Contact(rsip::headers::Contact::new(*v)),
                "CSeq" => Header::CSeq(rsip::headers::CSeq::new(*v)),
                "Call-ID" => Header::CallId(rsip::headers::CallId::new(*v)),
                "Expires" => Header::Expires(rsip::headers::Expires::new(*v)),
                "Record-Route" => Header::RecordRoute(rsip::headers::RecordRoute::new(*v)),
                other => Header::Other(other.to_owned(), (*v).to_owned()),
            };
            h.push(header);
        }
        h
    }

    #[test]
    fn via_basic_and_params() {
        let v = Via::parse("SIP/2.0/udp 10.0.0.1:5070;Branch=z9hG4bKabc;rport;foo=\"a;b\"")
            .expect("parse");
        assert_eq!(v.protocol, "SIP/2.0");
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "10.0.0.1");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bKabc"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(find_param(&v.params, "FOO"), Some(Some("\"a;b\"")));
        assert!(v.has_rfc3261_branch());
    }

    #[test]
    fn via_lws_ipv6_and_no_port() {
        let v = Via::parse("SIP / 2.0 / TCP [2001:db8::9]:5060 ;branch=z9hG4bK1").expect("v6");
        assert_eq!(v.host, "[2001:db8::9]");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.host_ip(), "2001:db8::9".parse().ok());
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        let v = Via::parse("SIP/2.0/TLS pbx.example.com;branch=x").expect("noport");
        assert_eq!(v.port, None);
        assert_eq!(v.sent_by_key(), "pbx.example.com:5061");
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("garbage").is_err());
        assert!(Via::parse("SIP/2.0/UDP host:99999").is_err());
        assert!(Via::parse("SIP/2.0/UDP [::1").is_err());
    }

    #[test]
    fn vias_split_commas_and_compact() {
        let h = hdrs(&[
            (
                "v",
                "SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP b.example;branch=z9hG4bK2",
            ),
            ("Via", "SIP/2.0/TCP c.example;branch=z9hG4bK3"),
        ]);
        let all = vias(&h).expect("vias");
        let hosts: Vec<_> = all.iter().map(|v| v.host.as_str()).collect();
        assert_eq!(hosts, ["a.example", "b.example", "c.example"]);
        assert_eq!(top_via(&h).expect("top").branch(), Some("z9hG4bK1"));
        assert_eq!(
            top_via(&Headers::default()),
            Err(HeaderError::Missing("Via"))
        );
    }

    #[test]
    fn stamp_received_rport() {
        let src: SocketAddr = "192.0.2.7:40000".parse().expect("addr");
        let mut v = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport").expect("v");
        v.stamp_received(src);
        assert_eq!(v.received(), Some("192.0.2.7"));
        assert_eq!(v.rport(), Some(Some(40000)));
        assert_eq!(v.response_address(), Some(src));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=40000;received=192.0.2.7"
        );

        // Sent-by equal to the source and no rport: nothing added.
        let mut v = Via::parse("SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK1").expect("v");
        v.stamp_received(src);
        assert_eq!(v.received(), None);
        assert_eq!(v.response_address(), "192.0.2.7:5062".parse().ok());

        // A host name gets `received`; the port comes from sent-by.
        let mut v = Via::parse("SIP/2.0/UDP phone.lan;branch=z9hG4bK1").expect("v");
        v.stamp_received(src);
        assert_eq!(v.response_address(), "192.0.2.7:5060".parse().ok());
    }

    #[test]
    fn set_top_via_keeps_the_rest() {
        let mut h = hdrs(&[(
            "Via",
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
        )]);
        let mut top = top_via(&h).expect("top");
        top.stamp_received("192.0.2.1:5060".parse().expect("addr"));
        set_top_via(&mut h, &top).expect("set");
        let all = vias(&h).expect("vias");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].received(), Some("192.0.2.1"));
        assert_eq!(all[1].host, "b");
    }

    #[test]
    fn cseq_and_call_id() {
        let h = hdrs(&[("CSeq", " 42   invite "), ("i", "abc@host")]);
        assert_eq!(cseq(&h), Ok((42, Method::Invite)));
        assert_eq!(call_id(&h), Ok("abc@host"));
        for bad in ["x INVITE", "1", "1 INVITE extra", "1 FROB"] {
            let h = hdrs(&[("CSeq", bad)]);
            assert!(matches!(
                cseq(&h),
                Err(HeaderError::Malformed { header: "CSeq", .. })
            ));
        }
        assert_eq!(cseq(&Headers::default()), Err(HeaderError::Missing("CSeq")));
    }

    #[test]
    fn from_to_name_addr() {
        let h = hdrs(&[
            (
                "From",
                r#""Bob \"B\" <x>" <sip:bob@example.com;transport=tcp>;TAG=abc"#,
            ),
            ("t", "sip:alice@example.com;tag=xyz"),
        ]);
        let f = from(&h).expect("from");
        assert_eq!(f.display_name.as_deref(), Some(r#"Bob "B" <x>"#));
        assert_eq!(f.uri, "sip:bob@example.com;transport=tcp");
        assert_eq!(f.tag(), Some("abc"));
        let t = to(&h).expect("to");
        assert_eq!(t.display_name, None);
        assert_eq!(t.uri, "sip:alice@example.com");
        assert_eq!(t.tag(), Some("xyz"));
        let unquoted = NameAddr::parse("Alice Smith <sip:a@b>", "To").expect("tokens");
        assert_eq!(unquoted.display_name.as_deref(), Some("Alice Smith"));
        assert_eq!(unquoted.tag(), None);
        assert!(NameAddr::parse("<sip:a@b", "To").is_err());
        assert!(NameAddr::parse("", "To").is_err());
    }

    #[test]
    fn contacts_lists_instance_and_wildcard() {
        let h = hdrs(&[
            (
                "Contact",
                r#"<sip:a@10.0.0.1;ob>;expires=60;+sip.instance="<urn:uuid:1,2>", "X, Y" <sip:b@h>;Expires=30"#,
            ),
            ("m", "sip:c@h;expires=0"),
        ]);
        let c = contacts(&h).expect("contacts");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].uri, "sip:a@10.0.0.1;ob");
        assert_eq!(c[0].expires(), Some(60));
        assert_eq!(
            c[0].param("+sip.instance"),
            Some(Some("\"<urn:uuid:1,2>\""))
        );
        assert_eq!(c[1].display_name.as_deref(), Some("X, Y"));
        assert_eq!(c[1].expires(), Some(30));
        assert_eq!(c[2].uri, "sip:c@h");
        assert_eq!(c[2].expires(), Some(0));
        let star = contacts(&hdrs(&[("Contact", "*")])).expect("star");
        assert!(star[0].is_wildcard());
        assert_eq!(star[0].to_string(), "*");
    }

    #[test]
    fn numbers_and_routes() {
        let h = hdrs(&[
            ("Expires", "3600"),
            ("Max-Forwards", "70"),
            ("c", "application/sdp"),
            ("Record-Route", "<sip:p1;lr>, <sip:p2;lr;x=\"a,b\">"),
            ("Record-Route", "<sip:p3;lr>"),
        ]);
        assert_eq!(expires(&h), Ok(Some(3600)));
        assert_eq!(max_forwards(&h), Ok(Some(70)));
        assert_eq!(min_expires(&h), Ok(None));
        assert_eq!(content_type(&h), Some("application/sdp"));
        assert_eq!(
            record_routes(&h),
            ["<sip:p1;lr>", "<sip:p2;lr;x=\"a,b\">", "<sip:p3;lr>"]
        );
        assert!(routes(&h).is_empty());
        let bad = hdrs(&[("Expires", "soon")]);
        assert!(matches!(
            expires(&bad),
            Err(HeaderError::Malformed {
                header: "Expires",
                ..
            })
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_values_never_panic(s in "\\PC{0,80}", t in "[ \"<>;,=:\\[\\]/a-z0-9]{0,40}") {
            for v in [s.as_str(), t.as_str()] {
                let _ = Via::parse(v);
                let _ = NameAddr::parse(v, "To");
                let _ = split_list(v);
                let _ = unquote(v);
                let h = hdrs(&[("Via", v), ("Contact", v), ("CSeq", v), ("Expires", v)]);
                let _ = (vias(&h), contacts(&h), cseq(&h), expires(&h));
            }
        }
    }

    #[test]
    fn generated_identifiers() {
        let b1 = new_branch().expect("branch");
        let b2 = new_branch().expect("branch");
        assert!(b1.starts_with(BRANCH_COOKIE));
        assert_eq!(b1.len(), BRANCH_COOKIE.len() + 24);
        assert_ne!(b1, b2);
        assert_eq!(new_tag().expect("tag").len(), 16);
        let via = Via::new(
            super::super::Transport::Udp,
            "[::1]:5060".parse().expect("addr"),
            &b1,
        );
        let back = Via::parse(&via.to_string()).expect("round trip");
        assert_eq!(back, via);
    }
}
