//! The dialog (RFC 3261 §12): identifiers, route set, remote target and
//! sequence numbers, and the requests made from them.

use std::net::{IpAddr, SocketAddr};

use rsip::{Headers, Method};

use super::build::Draft;
use super::error::CallError;
use crate::sip::headers::{self, NameAddr, Param, Via};
use crate::sip::ua::types::{AccountConfig, HostPort, LocalAddrs};
use crate::sip::Transport;

/// How we name ourselves: Via sent-by and Contact host (the account's
/// `publicAddr` when set, as MicroSIP does, else the socket's address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Identity {
    /// Host for Via and Contact (IPv6 in brackets).
    pub host: String,
    /// Port for Via and Contact.
    pub port: u16,
    /// The user part of our Contact.
    pub user: String,
}

impl Identity {
    pub fn new(account: &AccountConfig, local: &LocalAddrs) -> Self {
        let public = account.public_addr.as_deref().and_then(HostPort::parse);
        let (host, port) = match public {
            Some(p) => {
                let host = if p.host.contains(':') {
                    format!("[{}]", p.host)
                } else {
                    p.host
                };
                (host, p.port.unwrap_or(local.sip.port()))
            }
            None => (
                match local.sip.ip() {
                    IpAddr::V4(ip) => ip.to_string(),
                    IpAddr::V6(ip) => format!("[{ip}]"),
                },
                local.sip.port(),
            ),
        };
        Self {
            host,
            port,
            user: account.username.clone(),
        }
    }

    /// The IP to advertise in SDP when `publicAddr` is an address.
    pub fn public_ip(account: &AccountConfig) -> Option<IpAddr> {
        let p = account.public_addr.as_deref().and_then(HostPort::parse)?;
        p.host.parse().ok()
    }
}

/// One dialog; before the first 2xx/1xx of an outgoing call it is the
/// template of the INVITE (no remote tag, the preloaded route).
#[derive(Debug, Clone)]
pub(super) struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    /// `None` until an outgoing call's dialog is confirmed.
    pub remote_tag: Option<String>,
    /// Our name-addr (From of our requests), without tag.
    pub local_uri: String,
    /// Theirs (To of our requests), without tag.
    pub remote_uri: String,
    /// Where in-dialog requests go (the peer's Contact URI).
    pub remote_target: String,
    /// Route values (`<sip:p1;lr>`), in the order our requests carry them.
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
    pub transport: Transport,
    /// Where requests go when no route or target names an IP address: the
    /// outgoing call's first hop, or where the incoming INVITE came from.
    pub hop: SocketAddr,
    /// The account has an outbound proxy: everything goes to `hop`.
    pub forced_hop: bool,
    pub identity: Identity,
}

impl Dialog {
    /// Our Contact value.
    pub fn contact(&self) -> String {
        format!(
            "<sip:{}@{}:{};transport={}>",
            self.identity.user,
            self.identity.host,
            self.identity.port,
            self.transport.via_token().to_ascii_lowercase()
        )
    }

    /// A Via with a fresh branch for a new client transaction.
    pub fn via(&self) -> Result<Via, CallError> {
        Ok(Via {
            protocol: "SIP/2.0".to_owned(),
            transport: self.transport.via_token().to_owned(),
            host: self.identity.host.clone(),
            port: Some(self.identity.port),
            params: vec![
                Param::new("branch", headers::new_branch()?),
                Param::flag("rport"),
            ],
        })
    }

    /// The next local CSeq number (§12.2.1.1).
    pub fn next_cseq(&mut self) -> u32 {
        // CSeq must stay below 2^31 (§8.1.1.5).
        self.local_cseq = (self.local_cseq + 1) & 0x7fff_ffff;
        self.local_cseq.max(1)
    }

    /// Whether the first route is a strict router (no `;lr`), which makes
    /// it the Request-URI (§12.2.1.1).
    fn strict_route(&self) -> Option<String> {
        let first = self.route_set.first()?;
        let addr = NameAddr::parse(first, "Route").ok()?;
        let lr = addr.uri.split(';').skip(1).any(|p| {
            p.split('=')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("lr"))
        });
        (!lr).then_some(addr.uri)
    }

    /// A request in this dialog (or, before it exists, the initial INVITE):
    /// Request-URI and Route per §12.2.1.1, From/To/Call-ID, Max-Forwards
    /// and, for target-refreshing and subscription methods, Contact.
    pub fn draft(&self, method: Method) -> Draft {
        let mut draft = Draft {
            method,
            uri: self.remote_target.clone(),
            headers: Vec::new(),
            body: None,
        };
        draft.push("Max-Forwards", "70");
        match self.strict_route() {
            Some(uri) => {
                draft.uri = uri;
                for r in self.route_set.iter().skip(1) {
                    draft.push("Route", r.clone());
                }
                draft.push("Route", format!("<{}>", self.remote_target));
            }
            None => {
                for r in &self.route_set {
                    draft.push("Route", r.clone());
                }
            }
        }
        draft.push("From", format!("{};tag={}", self.local_uri, self.local_tag));
        let to = match &self.remote_tag {
            Some(tag) => format!("{};tag={tag}", self.remote_uri),
            None => self.remote_uri.clone(),
        };
        draft.push("To", to);
        draft.push("Call-ID", self.call_id.clone());
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Refer | Method::Notify | Method::Options
        ) {
            draft.push("Contact", self.contact());
        }
        draft
    }

    /// Where this dialog's requests are sent. Sans-IO means no DNS: a
    /// route or target naming an IP address is used directly; a host name
    /// falls back to `hop` (which the UA resolved), as does everything when
    /// the account has an outbound proxy.
    pub fn destination(&self) -> SocketAddr {
        if self.forced_hop {
            return self.hop;
        }
        let first = match self.route_set.first() {
            Some(route) => NameAddr::parse(route, "Route")
                .map(|n| n.uri)
                .unwrap_or_default(),
            None => self.remote_target.clone(),
        };
        uri_address(&first, self.transport).unwrap_or(self.hop)
    }

    /// §12.2.1.2 / §12.2.2: a target refresh replaces the remote target
    /// with the message's Contact, when it has a usable one.
    pub fn refresh_target(&mut self, headers: &Headers) {
        if let Some(uri) = contact_uri(headers) {
            self.remote_target = uri;
        }
    }
}

/// The first Contact URI of a message.
pub(super) fn contact_uri(headers: &Headers) -> Option<String> {
    headers::contacts(headers)
        .ok()?
        .into_iter()
        .find(|c| !c.is_wildcard())
        .map(|c| c.uri)
}

/// A name-addr without its `tag` parameter (other parameters kept).
pub(super) fn without_tag(addr: &NameAddr) -> String {
    let mut addr = addr.clone();
    addr.params.retain(|p| !p.name.eq_ignore_ascii_case("tag"));
    addr.to_string()
}

/// The socket address a SIP URI names, when its host is an IP literal
/// (`maddr` wins, §19.1.1); the port defaults per transport.
pub(super) fn uri_address(uri: &str, transport: Transport) -> Option<SocketAddr> {
    let maddr = uri
        .split(';')
        .skip(1)
        .find_map(|p| p.trim().strip_prefix("maddr="));
    let hp = HostPort::parse(uri)?;
    let host = maddr.unwrap_or(&hp.host);
    let ip: IpAddr = host.trim_matches(|c| c == '[' || c == ']').parse().ok()?;
    Some(SocketAddr::new(ip, hp.port_or_default(transport)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog(route_set: &[&str], target: &str) -> Dialog {
        Dialog {
            call_id: "c1".into(),
            local_tag: "lt".into(),
            remote_tag: Some("rt".into()),
            local_uri: "<sip:alice@example.com>".into(),
            remote_uri: "<sip:bob@example.com>".into(),
            remote_target: target.into(),
            route_set: route_set.iter().map(|s| (*s).to_owned()).collect(),
            local_cseq: 1,
            remote_cseq: None,
            transport: Transport::Udp,
            hop: "192.0.2.99:5060".parse().expect("addr"),
            forced_hop: false,
            identity: Identity {
                host: "192.0.2.1".into(),
                port: 5060,
                user: "alice".into(),
            },
        }
    }

    #[test]
    fn loose_routes_keep_the_target_as_request_uri() {
        let d = dialog(&["<sip:192.0.2.5:5070;lr>"], "sip:bob@192.0.2.7");
        let draft = d.draft(Method::Bye);
        assert_eq!(draft.uri, "sip:bob@192.0.2.7");
        assert!(draft
            .headers
            .contains(&("Route", "<sip:192.0.2.5:5070;lr>".to_owned())));
        assert_eq!(d.destination(), "192.0.2.5:5070".parse().expect("addr"));
    }

    #[test]
    fn a_strict_router_becomes_the_request_uri() {
        let d = dialog(&["<sip:192.0.2.5>", "<sip:p2;lr>"], "sip:bob@192.0.2.7");
        let draft = d.draft(Method::Bye);
        assert_eq!(draft.uri, "sip:192.0.2.5");
        let routes: Vec<_> = draft
            .headers
            .iter()
            .filter(|(n, _)| *n == "Route")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(routes, ["<sip:p2;lr>", "<sip:bob@192.0.2.7>"]);
    }

    #[test]
    fn host_names_fall_back_to_the_hop() {
        let d = dialog(&[], "sip:bob@pbx.example.com");
        assert_eq!(d.destination(), d.hop);
        let d = dialog(&[], "sip:bob@[2001:db8::1]:5080;transport=udp");
        assert_eq!(d.destination(), "[2001:db8::1]:5080".parse().expect("addr"));
        assert_eq!(
            uri_address("sip:x@host;maddr=192.0.2.3", Transport::Tls),
            "192.0.2.3:5061".parse().ok()
        );
    }
}
