//! What the user agent is configured with and what it reports: shared by
//! the registration, call and message parts of [`super`] and by the driver.

use std::net::SocketAddr;
use std::time::Duration;

use super::super::Transport;

/// A MicroSIP account number (`[AccountN]`).
pub type AccountId = u32;

/// One call, for the life of the phone process (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct CallId(pub u64);

/// One outgoing MESSAGE, to match its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct MessageId(pub u64);

/// A `host[:port]` as MicroSIP's `server`, `proxy` and `domain` keys hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The port, when written.
    pub port: Option<u16>,
}

impl HostPort {
    /// Reads `host`, `host:port`, `[v6]` or `[v6]:port`; also accepts a
    /// leading `sip:`/`sips:` and ignores `;params`, as users paste URIs.
    pub fn parse(text: &str) -> Option<HostPort> {
        let text = text.trim();
        let text = text
            .strip_prefix("sips:")
            .or_else(|| text.strip_prefix("sip:"))
            .unwrap_or(text);
        let text = text.split(';').next().unwrap_or_default();
        let text = text.rsplit('@').next().unwrap_or_default();
        if text.is_empty() {
            return None;
        }
        if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            return Some(HostPort {
                host: host.to_owned(),
                port,
            });
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => Some(HostPort {
                host: host.to_owned(),
                port: Some(port.parse().ok()?),
            }),
            Some(_) => Some(HostPort {
                host: text.to_owned(),
                port: None,
            }),
            None => Some(HostPort {
                host: text.to_owned(),
                port: None,
            }),
        }
    }

    /// The port, or the default for `transport` (5060, 5061 for TLS).
    pub fn port_or_default(&self, transport: Transport) -> u16 {
        self.port.unwrap_or(match transport {
            Transport::Tls => 5061,
            _ => 5060,
        })
    }

    /// `host[:port]` as written in a SIP URI (IPv6 in brackets).
    pub fn uri_host(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }
}

/// One account as the user agent uses it, from `[AccountN]` (see
/// `softphone::config::Account`; the driver builds this and resolves the
/// host names to `outbound`).
#[derive(Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// The account number.
    pub id: AccountId,
    /// `username`: the user part of the AOR.
    pub username: String,
    /// `domain`: the host part of the AOR, where bare numbers are dialled.
    pub domain: HostPort,
    /// `server`: the registrar (REGISTER's Request-URI); `None`: the
    /// account does not register.
    pub registrar: Option<HostPort>,
    /// `proxy`: the outbound proxy every request goes through (loose
    /// routing, a `Route: <sip:proxy;lr>` header).
    pub proxy: Option<HostPort>,
    /// `authID`, else the username.
    pub auth_user: String,
    /// The plain password.
    pub password: String,
    /// `displayName`.
    pub display_name: String,
    /// `transport`.
    pub transport: Transport,
    /// Where requests go first: the resolved proxy, else the resolved
    /// registrar, else the resolved domain.
    pub outbound: SocketAddr,
    /// `registerRefresh`: the Expires asked for.
    pub register_expires: Duration,
    /// `keepAlive`: CRLF keep-alive interval towards `outbound`.
    pub keep_alive: Option<Duration>,
    /// `publicAddr`: the address to put in Contact, Via and SDP instead of
    /// the socket's own.
    pub public_addr: Option<String>,
    /// Whether RFC 4028 session timers are used (`disableSessionTimer=0`).
    pub session_timers: bool,
    /// `hideCID=1`: outgoing calls send `Privacy: id` and an anonymous
    /// From (`"Anonymous" <sip:anonymous@anonymous.invalid>`), as MicroSIP
    /// does (research/microsip.md §1.6).
    pub hide_cid: bool,
    /// `SRTP`: SDES media encryption off, optional or mandatory.
    pub srtp: crate::sip::sdp::SrtpMode,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("registrar", &self.registrar)
            .field("proxy", &self.proxy)
            .field("auth_user", &self.auth_user)
            .field("password", &"***")
            .field("transport", &self.transport)
            .field("outbound", &self.outbound)
            .finish_non_exhaustive()
    }
}

impl AccountConfig {
    /// `sip:username@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.username, self.domain.uri_host())
    }

    /// The Request-URI for what the user typed: a bare number (or name)
    /// goes to the account's domain; a URI with a host keeps its host.
    pub fn target_uri(&self, typed: &str) -> String {
        let typed = typed.trim();
        let lower = typed.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            if typed.contains('@') {
                return typed.to_owned();
            }
            let user = &typed[typed.find(':').map_or(0, |i| i + 1)..];
            return format!("sip:{user}@{}", self.domain.uri_host());
        }
        for scheme in ["tel:", "callto:"] {
            if lower.starts_with(scheme) {
                return self.target_uri(typed[scheme.len()..].trim_start_matches('/'));
            }
        }
        if typed.contains('@') {
            return format!("sip:{typed}");
        }
        format!("sip:{typed}@{}", self.domain.uri_host())
    }

    /// Where every request of the account goes unless its target names
    /// another host: the proxy, else the registrar, else the domain (what
    /// `outbound` is resolved from).
    pub fn first_hop(&self) -> HostPort {
        self.proxy
            .clone()
            .or_else(|| self.registrar.clone())
            .unwrap_or_else(|| self.domain.clone())
    }

    /// The host to send a request for `target_uri` to, before resolution:
    /// the proxy when the account has one; else, for a URI on the account's
    /// own domain, the registrar (or the domain); else the URI's host.
    pub fn next_hop(&self, target_uri: &str) -> HostPort {
        if let Some(proxy) = &self.proxy {
            return proxy.clone();
        }
        let own = self
            .registrar
            .clone()
            .unwrap_or_else(|| self.domain.clone());
        match HostPort::parse(target_uri) {
            Some(host)
                if host.host.eq_ignore_ascii_case(&self.domain.host)
                    && (host.port.is_none() || host.port == self.domain.port) =>
            {
                own
            }
            Some(host) => host,
            None => own,
        }
    }
}

/// Where the user agent is reachable: the driver's listening sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddrs {
    /// The UDP socket (and the TCP listener on the same port).
    pub sip: SocketAddr,
}

/// A registration's state, as events report it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RegistrationState {
    /// Not registered (never, or un-registered at shutdown).
    Unregistered,
    /// A REGISTER is on its way.
    Registering,
    /// The registrar accepted us for `expires` seconds.
    Registered {
        /// Seconds the registrar granted.
        expires: u32,
    },
    /// The registrar refused or did not answer; a retry is scheduled.
    Failed {
        /// The SIP status, when there was a response (408 for a timeout).
        code: u16,
        /// Why, for people.
        reason: String,
    },
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Outgoing: INVITE sent, nothing but 100 back yet.
    Calling,
    /// Outgoing: the far end rings (180/183).
    Ringing,
    /// Incoming: we ring, waiting for answer or reject.
    Incoming,
    /// Answered, media flowing (or held).
    Connected,
    /// Over.
    Ended,
}

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We called.
    Outgoing,
    /// They called.
    Incoming,
}

/// Why a call ended, for events, the `[Calls]` log and hooks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EndReason {
    /// The SIP status that ended it (200 for a normal BYE, 486 busy, 487
    /// cancelled, 408 timeout, ...).
    pub code: u16,
    /// The reason phrase, or what happened (`Call Ended`, `Canceled`).
    pub text: String,
    /// Whether the far end ended it (BYE/CANCEL/final error from them).
    pub by_remote: bool,
}

/// What the user agent reports. Nothing is polled: the driver forwards
/// these to subscribers as they come.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum UaEvent {
    /// An account's registration changed.
    Registration {
        /// The account.
        account: AccountId,
        /// Its new state.
        #[serde(flatten)]
        state: RegistrationState,
    },
    /// A new incoming call rings (we sent 180).
    IncomingCall {
        /// The call.
        call: CallId,
        /// The account it came in on.
        account: AccountId,
        /// The caller's URI (`sip:1001@pbx`).
        remote_uri: String,
        /// The caller's display name, unquoted (may be empty).
        remote_name: String,
    },
    /// A call changed state.
    CallState {
        /// The call.
        call: CallId,
        /// The new state.
        state: CallState,
    },
    /// Hold changed: `local` we hold them, `remote` they hold us.
    CallHold {
        /// The call.
        call: CallId,
        /// We put them on hold.
        local: bool,
        /// They put us on hold.
        remote: bool,
    },
    /// The call ended.
    CallEnded {
        /// The call.
        call: CallId,
        /// Why.
        reason: EndReason,
    },
    /// A REFER from the far end asked us to call `target` (we accepted it
    /// and place that call ourselves as `new_call`).
    Transferred {
        /// The call that was transferred.
        call: CallId,
        /// Where to.
        target: String,
        /// The new call to the target, when it could be started.
        new_call: Option<CallId>,
    },
    /// Our REFER's progress (NOTIFY sipfrag status from the far end).
    TransferProgress {
        /// The call we transferred.
        call: CallId,
        /// The status line of the transferee's call (`SIP/2.0 200 OK`).
        status: u16,
    },
    /// A SIP MESSAGE arrived.
    MessageReceived {
        /// The account.
        account: AccountId,
        /// The sender's URI.
        from: String,
        /// Its content type.
        content_type: String,
        /// The text.
        body: String,
    },
    /// The result of a MESSAGE we sent.
    MessageResult {
        /// The message.
        message: MessageId,
        /// The final status (2xx: delivered).
        code: u16,
    },
    /// A DTMF digit came in by SIP INFO.
    Dtmf {
        /// The call.
        call: CallId,
        /// The digit (`0`-`9`, `*`, `#`, `A`-`D`).
        digit: char,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(proxy: Option<&str>) -> AccountConfig {
        AccountConfig {
            id: 1,
            username: "alice".into(),
            domain: HostPort::parse("example.com").unwrap(),
            registrar: HostPort::parse("pbx.example.com:5070"),
            proxy: proxy.and_then(HostPort::parse),
            auth_user: "alice".into(),
            password: "pw".into(),
            display_name: String::new(),
            transport: Transport::Udp,
            outbound: "127.0.0.1:5070".parse().unwrap(),
            register_expires: Duration::from_secs(300),
            keep_alive: None,
            public_addr: None,
            session_timers: true,
            hide_cid: false,
            srtp: crate::sip::sdp::SrtpMode::Off,
        }
    }

    #[test]
    fn host_ports_read_as_microsip_writes_them() {
        let hp = HostPort::parse("pbx:5080").unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("pbx", Some(5080)));
        let hp = HostPort::parse("[2001:db8::1]:5061").unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("2001:db8::1", Some(5061)));
        assert_eq!(hp.uri_host(), "[2001:db8::1]:5061");
        let hp = HostPort::parse("sip:bob@host;transport=tcp").unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("host", None));
        assert!(HostPort::parse("pbx:notaport").is_none());
        assert!(HostPort::parse("").is_none());
    }

    #[test]
    fn numbers_go_to_the_domain_uris_to_their_host_unless_a_proxy() {
        let a = account(None);
        assert_eq!(a.target_uri("5551234"), "sip:5551234@example.com");
        assert_eq!(a.target_uri("tel:5551234"), "sip:5551234@example.com");
        assert_eq!(a.target_uri("callto://bob"), "sip:bob@example.com");
        assert_eq!(a.target_uri("bob@other.org"), "sip:bob@other.org");
        assert_eq!(a.target_uri("sip:bob@other.org"), "sip:bob@other.org");
        assert_eq!(
            a.next_hop("sip:5551234@example.com").uri_host(),
            "pbx.example.com:5070"
        );
        assert_eq!(a.next_hop("sip:bob@other.org").uri_host(), "other.org");
        assert_eq!(
            a.next_hop("sip:bob@example.com:5099").uri_host(),
            "example.com:5099",
            "another port on the domain's host is another peer"
        );
        let p = account(Some("proxy.example.com"));
        assert_eq!(
            p.next_hop("sip:bob@other.org").uri_host(),
            "proxy.example.com"
        );
    }
}
