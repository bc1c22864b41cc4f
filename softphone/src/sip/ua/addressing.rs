//! How we name ourselves in Via and Contact: the socket's address, or the
//! account's `publicAddr` when the user set one (MicroSIP puts it in
//! Contact, Via and SDP alike).

use std::net::{IpAddr, SocketAddr};

use super::error::UaError;
use super::types::{AccountConfig, HostPort, LocalAddrs};
use crate::sip::headers::{self, Param, Via};

/// The host (IPv6 in brackets) and port we claim for `account`.
pub(super) fn sent_by(account: &AccountConfig, local: &LocalAddrs) -> (String, u16) {
    let public = account.public_addr.as_deref().and_then(HostPort::parse);
    match public {
        Some(public) => {
            let host = if public.host.contains(':') {
                format!("[{}]", public.host)
            } else {
                public.host
            };
            (host, public.port.unwrap_or(local.sip.port()))
        }
        None => (ip_host(local.sip), local.sip.port()),
    }
}

fn ip_host(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    }
}

/// A Via for a new client transaction of `account`, with a fresh branch,
/// and `;rport` (RFC 3581) when asked for.
pub(super) fn new_via(
    account: &AccountConfig,
    local: &LocalAddrs,
    rport: bool,
) -> Result<Via, UaError> {
    let (host, port) = sent_by(account, local);
    let mut params = vec![Param::new("branch", headers::new_branch()?)];
    if rport {
        params.push(Param::flag("rport"));
    }
    Ok(Via {
        protocol: "SIP/2.0".to_owned(),
        transport: account.transport.via_token().to_owned(),
        host,
        port: Some(port),
        params,
    })
}

/// Our Contact URI for `account`:
/// `sip:user@host:port;transport=udp`.
pub(super) fn contact_uri(account: &AccountConfig, local: &LocalAddrs) -> String {
    let (host, port) = sent_by(account, local);
    format!(
        "sip:{}@{host}:{port};transport={}",
        account.username,
        account.transport.via_token().to_ascii_lowercase()
    )
}

/// Whether two Contact URIs name the same binding: same user, host and
/// port (registrars reorder or drop URI parameters, and change case).
pub(super) fn same_binding(a: &str, b: &str) -> bool {
    fn key(uri: &str) -> String {
        let uri = uri.trim();
        let without_scheme = uri
            .split_once(':')
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")
            })
            .map_or(uri, |(_, rest)| rest);
        without_scheme
            .split([';', '?'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
    key(a) == key(b)
}
