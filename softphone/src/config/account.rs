//! `[Account1]`..`[AccountN]` (and the local `[Account0]`): SIP accounts.

use std::fmt;

use serde::Serialize;

use super::document::IniDocument;
use super::schema::{typed_section, KeySpec, CREDENTIAL_MAX_LEN as C, DEFAULT_MAX_LEN as M};
use super::value::{ini_enum, BoolRule, ValueType};

const B1: ValueType = ValueType::Bool(BoolRule::ExactlyOne);
const TEXT: ValueType = ValueType::Text;
const HOST: ValueType = ValueType::HostPort;
const HOSTS: ValueType = ValueType::HostPortList;
const PASSWORD: ValueType = ValueType::Password;
const SECONDS: ValueType = ValueType::Int {
    min: i32::MIN as i64,
    max: i32::MAX as i64,
};
const TRANSPORT: ValueType = ValueType::Enum(Transport::VALUES);
const SRTP: ValueType = ValueType::Enum(Srtp::VALUES);

ini_enum! {
    /// `transport`: how SIP travels.
    pub enum Transport {
        /// Empty: no forced transport ("UDP+TCP").
        Auto = "",
        /// UDP (the default when the key is absent).
        Udp = "udp",
        /// TCP.
        Tcp = "tcp",
        /// TLS.
        Tls = "tls",
    }
}

ini_enum! {
    /// `SRTP`: media encryption.
    pub enum Srtp {
        /// Empty: off.
        Off = "",
        /// SDES-SRTP when the peer offers it.
        Optional = "optional",
        /// SDES-SRTP or no call.
        Mandatory = "mandatory",
        /// DTLS-SRTP, falling back to SDES.
        DtlsSdes = "dtls-sdes",
        /// DTLS-SRTP only.
        Dtls = "dtls",
    }
}

typed_section! {
    /// One `[AccountN]` section, typed, in MicroSIP's write order.
    pub struct AccountKeys, table ACCOUNT_KEYS {
        label: String = "label", TEXT, "", M, "Menu caption; empty = username@domain";
        server: String = "server", HOST, "", C, "Registrar host[:port]; empty = no registration";
        proxy: String = "proxy", HOSTS, "", C, "Outbound proxies host[:port], space separated";
        domain: String = "domain", TEXT, "", C, "SIP domain; an account without one does not exist for MicroSIP";
        username: String = "username", TEXT, "", C, "User part of the address of record";
        password: Password = "password", PASSWORD, "", C, "Password: plain text, or encrypted by MicroSIP";
        auth_id: String = "authID", TEXT, "", C, "Digest user name; empty = username";
        display_name: String = "displayName", TEXT, "", C, "Display name sent with calls";
        dialing_prefix: String = "dialingPrefix", TEXT, "", M, "Prefix added to external numbers";
        dial_plan: String = "dialPlan", TEXT, "", M, "Dial plan rules separated by |";
        hide_cid: bool = "hideCID", B1, "0", M, "Hide the caller id (Privacy: id)";
        voicemail_number: String = "voicemailNumber", TEXT, "", M, "Voicemail number; non-empty enables MWI";
        transport: Transport = "transport", TRANSPORT, "udp", M, "SIP transport: udp, tcp, tls, or empty for automatic";
        public_addr: String = "publicAddr", TEXT, "", M, "Public IP address for media when STUN is off";
        srtp: Srtp = "SRTP", SRTP, "", M, "Media encryption: empty, optional, mandatory, dtls-sdes, dtls";
        register_refresh: i64 = "registerRefresh", SECONDS, "300", M, "Registration interval in seconds (<= 0: 300, 1 to 10: 10)";
        keep_alive: i64 = "keepAlive", SECONDS, "15", M, "Keep-alive interval in seconds (<= 0: 15, 1: 2)";
        publish: bool = "publish", B1, "0", M, "Publish presence";
        ice: bool = "ICE", B1, "0", M, "Use ICE";
        allow_rewrite: bool = "allowRewrite", B1, "0", M, "Rewrite Via/Contact/SDP addresses behind NAT";
        disable_session_timer: bool = "disableSessionTimer", B1, "0", M, "Disable SIP session timers";
    }
}

/// A password as stored: MicroSIP 3.21+ replaces a plain password with its
/// CryptoAPI ciphertext in hex, which nobody outside MicroSIP can decrypt.
#[derive(Clone, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Password {
    /// No password.
    #[default]
    Empty,
    /// Plain text, as provisioning writes it (MicroSIP encrypts it on start).
    #[serde(serialize_with = "serialize_masked")]
    Plain(String),
    /// MicroSIP's encrypted form, kept byte for byte.
    Encrypted(String),
}

fn serialize_masked<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("********")
}

impl Password {
    /// Classifies a stored value. MicroSIP's ciphertext is lower-case hex of
    /// whole 8-byte RC2 blocks (16 hex digits each, 32 at the least). A
    /// plain password of that exact shape is taken as encrypted, as MicroSIP
    /// itself would try to decrypt it first.
    pub fn from_stored(value: &str) -> Self {
        if value.is_empty() {
            Password::Empty
        } else if Self::looks_encrypted(value) {
            Password::Encrypted(value.to_owned())
        } else {
            Password::Plain(value.to_owned())
        }
    }

    /// Whether `value` has the shape of MicroSIP's encrypted password.
    pub fn looks_encrypted(value: &str) -> bool {
        value.len() >= 32
            && value.len() % 16 == 0
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// The text stored in the file.
    pub fn stored(&self) -> &str {
        match self {
            Password::Empty => "",
            Password::Plain(s) | Password::Encrypted(s) => s,
        }
    }
}

/// Never shows a plain password.
impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Password::Empty => f.write_str("Empty"),
            Password::Plain(_) => f.write_str("Plain(********)"),
            Password::Encrypted(hex) => write!(f, "Encrypted({} hex digits)", hex.len()),
        }
    }
}

impl super::schema::FromIni for Password {
    fn from_ini(raw: Option<&str>, _: &KeySpec) -> Self {
        Password::from_stored(raw.unwrap_or(""))
    }
}

/// The section name of account `number`.
pub fn section_name(number: u32) -> String {
    format!("Account{number}")
}

/// An account: its number and its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// N of `[AccountN]`; 0 is the local (call by IP) account.
    pub number: u32,
    /// The keys.
    #[serde(flatten)]
    pub keys: AccountKeys,
}

impl Account {
    /// Reads `[AccountN]`; `None` when the section does not exist.
    pub fn from_document(doc: &IniDocument, number: u32) -> Option<Self> {
        let section = section_name(number);
        if !doc.has_section(&section) {
            return None;
        }
        Some(Self {
            number,
            keys: AccountKeys::read_with(|key| doc.get(&section, key)),
        })
    }

    /// The accounts MicroSIP loads: it probes 1, 2, 3… and stops at the
    /// first that is missing or has no domain, so a gap hides the rest.
    pub fn list(doc: &IniDocument) -> Vec<Self> {
        (1..)
            .map_while(|n| Self::from_document(doc, n).filter(Self::is_valid))
            .collect()
    }

    /// MicroSIP ignores an account section whose `domain` is empty.
    pub fn is_valid(&self) -> bool {
        self.number == 0 || !self.keys.domain.is_empty()
    }

    /// The key's spec, if accounts have such a key.
    pub fn spec(key: &str) -> Option<&'static KeySpec> {
        super::schema::find(ACCOUNT_KEYS, key)
    }

    /// `registerRefresh` as MicroSIP uses it: <= 0 means 300, 1 to 10 mean 10.
    pub fn register_refresh_secs(&self) -> u32 {
        match self.keys.register_refresh {
            n if n <= 0 => 300,
            n if n <= 10 => 10,
            n => u32::try_from(n).unwrap_or(u32::MAX),
        }
    }

    /// `keepAlive` as MicroSIP uses it: <= 0 means 15, 1 means 2.
    pub fn keep_alive_secs(&self) -> u32 {
        match self.keys.keep_alive {
            n if n <= 0 => 15,
            1 => 2,
            n => u32::try_from(n).unwrap_or(u32::MAX),
        }
    }

    /// The digest user name: `authID`, else `username`.
    pub fn auth_user(&self) -> &str {
        if self.keys.auth_id.is_empty() {
            &self.keys.username
        } else {
            &self.keys.auth_id
        }
    }

    /// The address of record `user@domain`.
    pub fn aor(&self) -> String {
        format!("{}@{}", self.keys.username, self.keys.domain)
    }
}

/// Parses `AccountN` into N (case-insensitive, as Windows matches names).
pub fn account_number(section: &str) -> Option<u32> {
    let digits = section
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("Account"))
        .map(|_| &section[7..])?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::encoding::Encoding;

    const HEX160: &str = "3f2a9c0d4e5b6a7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";

    fn doc(text: &str) -> IniDocument {
        IniDocument::from_text(Encoding::Utf8, text)
    }

    #[test]
    fn accounts_stop_at_the_first_gap_or_empty_domain() {
        let d =
            doc("[Account1]\r\ndomain=a\r\n[Account2]\r\ndomain=b\r\n[Account4]\r\ndomain=d\r\n");
        let numbers: Vec<u32> = Account::list(&d).iter().map(|a| a.number).collect();
        assert_eq!(numbers, vec![1, 2]);
        let d = doc("[Account1]\r\nserver=pbx\r\n[Account2]\r\ndomain=b\r\n");
        assert!(Account::list(&d).is_empty());
    }

    #[test]
    fn typed_values_defaults_and_clamps() {
        let d = doc("[Account1]\r\ndomain=example.com\r\nusername=alice\r\ntransport=tls\r\nSRTP=mandatory\r\nregisterRefresh=5\r\nkeepAlive=1\r\n[Account2]\r\ndomain=x\r\ntransport=\r\nregisterRefresh=-1\r\n");
        let a = Account::from_document(&d, 1).unwrap();
        assert_eq!(a.keys.transport, Transport::Tls);
        assert_eq!(a.keys.srtp, Srtp::Mandatory);
        assert_eq!(a.register_refresh_secs(), 10);
        assert_eq!(a.keep_alive_secs(), 2);
        assert_eq!(a.auth_user(), "alice");
        assert_eq!(a.aor(), "alice@example.com");
        let b = Account::from_document(&d, 2).unwrap();
        assert_eq!(
            b.keys.transport,
            Transport::Auto,
            "empty transport = automatic"
        );
        assert_eq!(b.register_refresh_secs(), 300);
        assert_eq!(b.keep_alive_secs(), 15);
        assert!(Account::from_document(&d, 3).is_none());
        let absent = doc("[Account1]\r\ndomain=x\r\n");
        assert_eq!(
            Account::from_document(&absent, 1).unwrap().keys.transport,
            Transport::Udp
        );
    }

    #[test]
    fn passwords_are_classified_and_never_printed() {
        assert_eq!(Password::from_stored(""), Password::Empty);
        assert!(matches!(
            Password::from_stored(HEX160),
            Password::Encrypted(_)
        ));
        assert!(matches!(
            Password::from_stored("s3cret"),
            Password::Plain(_)
        ));
        assert!(matches!(
            Password::from_stored(&HEX160.to_uppercase()),
            Password::Plain(_)
        ));
        let plain = Password::from_stored("s3cret");
        assert!(!format!("{plain:?}").contains("s3cret"));
        assert!(!serde_json::to_string(&plain).unwrap().contains("s3cret"));
        assert_eq!(plain.stored(), "s3cret");
    }

    #[test]
    fn account_numbers() {
        assert_eq!(account_number("Account12"), Some(12));
        assert_eq!(account_number("account0"), Some(0));
        assert_eq!(account_number("Account"), None);
        assert_eq!(account_number("Account01"), None);
        assert_eq!(account_number("Accounts"), None);
        assert_eq!(account_number("Acc"), None);
    }
}
