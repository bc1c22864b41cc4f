//! From `[AccountN]` (as `softphone::config` reads it) to what the user
//! agent needs, host names resolved.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

use crate::config::account::{Password, Srtp, Transport as IniTransport};
use crate::config::Account;
use crate::sip::sdp::SrtpMode;
use crate::sip::ua::{AccountConfig, HostPort};
use crate::sip::Transport;

/// Why an account cannot be used.
#[derive(Debug, Error)]
pub enum AccountError {
    /// A `server`, `proxy` or `domain` value is not `host[:port]`.
    #[error("[Account{account}] {key}={value:?} is not host[:port]")]
    BadHost {
        /// The account.
        account: u32,
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// The host does not resolve.
    #[error("[Account{account}] cannot resolve {host}: {why}")]
    Resolve {
        /// The account.
        account: u32,
        /// The host.
        host: String,
        /// Why.
        why: String,
    },
    /// MicroSIP encrypted the password with Windows' CryptoAPI; only
    /// MicroSIP on that machine can read it.
    #[error("[Account{account}] password is encrypted by MicroSIP; provision it again in plain text (msipprov apply)")]
    EncryptedPassword {
        /// The account.
        account: u32,
    },
}

/// The account before resolution (pure, tested without DNS).
pub fn account_config(account: &Account) -> Result<(AccountConfig, HostPort), AccountError> {
    let keys = &account.keys;
    let host = |key: &'static str, value: &str| -> Result<Option<HostPort>, AccountError> {
        // `proxy` may list several, space separated; the first is used.
        let first = value.split_whitespace().next().unwrap_or_default();
        if first.is_empty() {
            return Ok(None);
        }
        HostPort::parse(first)
            .map(Some)
            .ok_or_else(|| AccountError::BadHost {
                account: account.number,
                key,
                value: value.to_owned(),
            })
    };
    let registrar = host("server", &keys.server)?;
    let proxy = host("proxy", &keys.proxy)?;
    let domain = host("domain", &keys.domain)?.ok_or_else(|| AccountError::BadHost {
        account: account.number,
        key: "domain",
        value: keys.domain.clone(),
    })?;
    let password = match &keys.password {
        Password::Empty => String::new(),
        Password::Plain(p) => p.clone(),
        Password::Encrypted(_) => {
            return Err(AccountError::EncryptedPassword {
                account: account.number,
            })
        }
    };
    let transport = match keys.transport {
        IniTransport::Tcp => Transport::Tcp,
        IniTransport::Tls => Transport::Tls,
        IniTransport::Udp | IniTransport::Auto => Transport::Udp,
    };
    let public_addr = Some(keys.public_addr.trim().to_owned()).filter(|s| !s.is_empty());
    let config = AccountConfig {
        id: account.number,
        username: keys.username.clone(),
        domain,
        registrar,
        proxy,
        auth_user: account.auth_user().to_owned(),
        password,
        display_name: keys.display_name.clone(),
        transport,
        outbound: SocketAddr::from(([0, 0, 0, 0], 0)),
        register_expires: Duration::from_secs(u64::from(account.register_refresh_secs())),
        keep_alive: Some(Duration::from_secs(u64::from(account.keep_alive_secs()))),
        public_addr,
        session_timers: !keys.disable_session_timer,
        hide_cid: keys.hide_cid,
        srtp: match keys.srtp {
            Srtp::Off => SrtpMode::Off,
            Srtp::Optional => SrtpMode::Optional,
            // DTLS-SRTP is not implemented: SDES is the encryption we can
            // do, and these settings ask for encryption, so insist on it.
            Srtp::Mandatory | Srtp::DtlsSdes | Srtp::Dtls => SrtpMode::Mandatory,
        },
    };
    let first_hop = config.first_hop();
    Ok((config, first_hop))
}

/// Resolves `host` (a name or an address) for `transport`, preferring IPv4
/// as the phone's sockets are IPv4.
pub async fn resolve(host: &HostPort, transport: Transport) -> Result<SocketAddr, String> {
    let port = host.port_or_default(transport);
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host.host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| "no address".to_owned())
}

/// The account ready for the user agent: its first hop resolved. Also
/// returns the first hop's host name (for TLS certificate checks).
pub async fn resolved(account: &Account) -> Result<(AccountConfig, String), AccountError> {
    let (mut config, hop) = account_config(account)?;
    config.outbound =
        resolve(&hop, config.transport)
            .await
            .map_err(|why| AccountError::Resolve {
                account: account.number,
                host: hop.uri_host(),
                why,
            })?;
    Ok((config, hop.host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IniDocument;

    fn account(ini: &str) -> Account {
        let doc = IniDocument::parse(ini.as_bytes()).unwrap();
        Account::list(&doc).remove(0)
    }

    #[test]
    fn keys_map_as_microsip_uses_them() {
        let a = account(
            "[Account1]\nserver=pbx.example.com:5070\nproxy=\ndomain=example.com\nusername=1001\npassword=pw\nauthID=auth1001\ntransport=tcp\nregisterRefresh=5\nkeepAlive=1\ndisableSessionTimer=1\n",
        );
        let (config, hop) = account_config(&a).unwrap();
        assert_eq!(config.aor(), "sip:1001@example.com");
        assert_eq!(config.auth_user, "auth1001");
        assert_eq!(config.transport, Transport::Tcp);
        assert_eq!(config.register_expires, Duration::from_secs(10));
        assert_eq!(config.keep_alive, Some(Duration::from_secs(2)));
        assert!(!config.session_timers);
        assert_eq!(hop.uri_host(), "pbx.example.com:5070");
        let with_proxy = account("[Account1]\nserver=pbx\nproxy=edge:5080 other\ndomain=d\n");
        assert_eq!(
            account_config(&with_proxy).unwrap().1.uri_host(),
            "edge:5080"
        );
        let no_server = account("[Account1]\ndomain=d.example:5062\n");
        let (config, hop) = account_config(&no_server).unwrap();
        assert!(config.registrar.is_none());
        assert_eq!(hop.uri_host(), "d.example:5062");
    }

    #[test]
    fn unusable_accounts_say_why() {
        let a = account("[Account1]\nserver=pbx:port\ndomain=d\n");
        assert!(account_config(&a)
            .unwrap_err()
            .to_string()
            .contains("server=\"pbx:port\""));
        let enc = account(&format!(
            "[Account1]\ndomain=d\npassword={}\n",
            "ab".repeat(16)
        ));
        assert!(matches!(
            account_config(&enc),
            Err(AccountError::EncryptedPassword { account: 1 })
        ));
    }
}
