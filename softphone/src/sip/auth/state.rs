//! Per-account credential state: the last challenge per realm, nonce
//! counts, and the wrong-password verdict.

use std::collections::HashMap;

use super::challenge::{parse_challenge, split_challenges, Challenge};
use super::digest::{authorization_value, DigestRequest, ResponseInput};
use super::AuthError;

/// Which header carried the challenge, and so which one answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// `WWW-Authenticate` in a 401 → `Authorization`.
    Www,
    /// `Proxy-Authenticate` in a 407 → `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// The header name that answers this kind of challenge.
    pub fn response_header_name(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// A header to put on an outgoing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// Decides the header name ([`ChallengeKind::response_header_name`]).
    pub kind: ChallengeKind,
    /// The header value, starting with `Digest `.
    pub value: String,
}

/// An account's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication user (MicroSIP's `authID`, else `username`).
    pub username: String,
    /// The password.
    pub password: String,
    /// The realm the credentials are for; `None` answers any realm, which
    /// is what MicroSIP does (it registers credentials with realm `*`).
    pub realm: Option<String>,
}

/// Whether the challenged request already carried an answer to a
/// challenge it had received itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The request went out without credentials, or pre-authorised from
    /// the cache.
    First,
    /// The request was the retry after a 401/407: a new non-stale
    /// challenge now means the password is wrong, even when the server
    /// changed the nonce (Asterisk does).
    Retry,
}

/// Makes client nonces; injectable so tests get fixed values.
pub trait CnonceSource: Send {
    /// A fresh cnonce (token characters only).
    fn cnonce(&mut self) -> Result<String, AuthError>;
}

/// Cnonces from the OS random source: 16 bytes as 32 hex digits.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomCnonce;

impl CnonceSource for RandomCnonce {
    fn cnonce(&mut self) -> Result<String, AuthError> {
        let mut buf = [0u8; 16];
        getrandom::fill(&mut buf).map_err(|e| AuthError::Random(e.to_string()))?;
        Ok(hex::encode(buf))
    }
}

/// Always the same cnonce, for tests and RFC vectors.
#[derive(Debug, Clone)]
pub struct FixedCnonce(pub String);

impl CnonceSource for FixedCnonce {
    fn cnonce(&mut self) -> Result<String, AuthError> {
        Ok(self.0.clone())
    }
}

/// The challenges to answer, one per realm in order of first appearance:
/// for each realm the strongest algorithm we support (RFC 8760 §2.4
/// allows local strength policy over the server's order), the topmost on
/// a tie. A value may hold several comma-joined challenges. Unparseable
/// or unsupported ones are skipped; if none is left
/// the error names why the last one was refused.
pub fn select_challenges<S: AsRef<str>>(values: &[S]) -> Result<Vec<Challenge>, AuthError> {
    let mut chosen: Vec<Challenge> = Vec::new();
    let mut last_error = None;
    for value in values.iter().flat_map(|v| split_challenges(v.as_ref())) {
        match parse_challenge(value) {
            Ok(c) => match chosen.iter_mut().find(|k| k.realm == c.realm) {
                Some(k) if c.algorithm.strength() > k.algorithm.strength() => *k = c,
                Some(_) => {}
                None => chosen.push(c),
            },
            Err(e) => last_error = Some(Box::new(e)),
        }
    }
    if chosen.is_empty() {
        return Err(AuthError::NoUsableChallenge(last_error));
    }
    Ok(chosen)
}

#[derive(Debug, Clone)]
struct RealmState {
    kind: ChallengeKind,
    challenge: Challenge,
    /// The nc of the last response sent with this nonce.
    nc: u32,
    /// The cnonce in use with this nonce (kept for `-sess`, whose HA1
    /// binds the cnonce of the first response, RFC 2617 §3.2.2.2).
    cnonce: String,
}

/// The digest state of one account: credentials plus the latest challenge
/// of every realm that challenged us.
pub struct DigestState {
    credentials: Credentials,
    /// Keyed by kind too: a registrar's 401 and a proxy's 407 for the same
    /// realm are answered in different headers.
    realms: HashMap<(ChallengeKind, String), RealmState>,
    /// Realms in the order they first challenged us, for stable header order.
    order: Vec<(ChallengeKind, String)>,
    cnonces: Box<dyn CnonceSource>,
}

impl std::fmt::Debug for DigestState {
    // Hand-written so the password never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestState")
            .field("username", &self.credentials.username)
            .field("realms", &self.order)
            .finish_non_exhaustive()
    }
}

impl DigestState {
    /// State for an account, with OS-random cnonces.
    pub fn new(credentials: Credentials) -> Self {
        Self::with_cnonce_source(credentials, Box::new(RandomCnonce))
    }

    /// State for an account with an injected cnonce source.
    pub fn with_cnonce_source(credentials: Credentials, cnonces: Box<dyn CnonceSource>) -> Self {
        Self {
            credentials,
            realms: HashMap::new(),
            order: Vec::new(),
            cnonces,
        }
    }

    /// Digests a 401/407: `values` are all its WWW-Authenticate (for
    /// [`ChallengeKind::Www`]) or Proxy-Authenticate values. On success
    /// the retry should be built with [`DigestState::authorize`].
    ///
    /// Errors: [`AuthError::Rejected`] when the server challenges again
    /// without `stale=true` either the nonce it had just been answered
    /// with, or a retry ([`Attempt::Retry`]); the UA reports it and must
    /// not retry. [`AuthError::NoCredentials`] for a foreign realm.
    pub fn on_challenge<S: AsRef<str>>(
        &mut self,
        kind: ChallengeKind,
        values: &[S],
        attempt: Attempt,
    ) -> Result<(), AuthError> {
        let challenges = select_challenges(values)?;
        for c in &challenges {
            if let Some(realm) = &self.credentials.realm {
                if realm != &c.realm {
                    return Err(AuthError::NoCredentials(c.realm.clone()));
                }
            }
            if !c.stale {
                let same_nonce = self
                    .realms
                    .get(&(kind, c.realm.clone()))
                    .is_some_and(|r| r.challenge.nonce == c.nonce && r.nc > 0);
                if same_nonce || attempt == Attempt::Retry {
                    return Err(AuthError::Rejected(c.realm.clone()));
                }
            }
        }
        for c in challenges {
            let cnonce = self.cnonces.cnonce()?;
            let key = (kind, c.realm.clone());
            if !self.realms.contains_key(&key) {
                self.order.push(key.clone());
            }
            self.realms.insert(
                key,
                RealmState {
                    kind,
                    challenge: c,
                    nc: 0,
                    cnonce,
                },
            );
        }
        Ok(())
    }

    /// The headers that authorise `request` with every cached challenge,
    /// each with its nonce count incremented. Empty before any challenge.
    pub fn authorize(&mut self, request: &DigestRequest<'_>) -> Vec<AuthHeader> {
        let mut out = Vec::with_capacity(self.order.len());
        for realm in &self.order {
            let Some(state) = self.realms.get_mut(realm) else {
                continue;
            };
            state.nc = state.nc.wrapping_add(1);
            let input = ResponseInput {
                username: &self.credentials.username,
                password: &self.credentials.password,
                request: *request,
                nc: state.nc,
                cnonce: &state.cnonce,
            };
            out.push(AuthHeader {
                kind: state.kind,
                value: authorization_value(&state.challenge, &input),
            });
        }
        out
    }

    /// Drops every cached challenge, e.g. when the account's server or
    /// credentials change.
    pub fn forget(&mut self) {
        self.realms.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(realm: Option<&str>) -> DigestState {
        DigestState::with_cnonce_source(
            Credentials {
                username: "1001".into(),
                password: "pw".into(),
                realm: realm.map(str::to_string),
            },
            Box::new(FixedCnonce("c0ffee".into())),
        )
    }

    const REG: DigestRequest<'static> = DigestRequest {
        method: "REGISTER",
        uri: "sip:127.0.0.1",
        body: b"",
    };

    #[test]
    fn prefers_sha256_then_topmost() {
        let v = [
            r#"Digest realm="r", nonce="a", algorithm=MD5, qop="auth""#,
            r#"Digest realm="r", nonce="b", algorithm=SHA-256, qop="auth""#,
            r#"Digest realm="r", nonce="c", algorithm=SHA-256-sess, qop="auth""#,
            r#"Digest realm="r", nonce="d", algorithm=SHA-1"#,
            r#"Digest realm="p", nonce="e""#,
        ];
        let c = select_challenges(&v).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].nonce, "b");
        assert_eq!(c[1].realm, "p");
    }

    #[test]
    fn no_usable_challenge_says_why() {
        let e = select_challenges(&["Digest realm=r, nonce=n, algorithm=SHA-1"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no usable digest challenge: unsupported digest algorithm `SHA-1`"
        );
        let none: [&str; 0] = [];
        assert!(matches!(
            select_challenges(&none),
            Err(AuthError::NoUsableChallenge(None))
        ));
    }

    #[test]
    fn preauthorises_with_incrementing_nc() {
        let mut s = state(None);
        assert!(s.authorize(&REG).is_empty());
        s.on_challenge(
            ChallengeKind::Www,
            &[r#"Digest realm="127.0.0.1", nonce="n1", qop="auth", algorithm=MD5"#],
            Attempt::First,
        )
        .unwrap();
        let h1 = s.authorize(&REG);
        assert_eq!(h1.len(), 1);
        assert_eq!(h1[0].kind.response_header_name(), "Authorization");
        assert!(h1[0].value.ends_with("nc=00000001"));
        assert!(h1[0].value.contains("cnonce=\"c0ffee\""));
        let h2 = s.authorize(&REG);
        assert!(h2[0].value.ends_with("nc=00000002"));
    }

    #[test]
    fn stale_is_not_a_wrong_password() {
        let mut s = state(None);
        let first = [r#"Digest realm="r", nonce="n1", qop="auth""#];
        s.on_challenge(ChallengeKind::Proxy, &first, Attempt::First)
            .unwrap();
        s.authorize(&REG);
        let stale = [r#"Digest realm="r", nonce="n2", qop="auth", stale=true"#];
        s.on_challenge(ChallengeKind::Proxy, &stale, Attempt::Retry)
            .unwrap();
        let h = s.authorize(&REG);
        assert_eq!(h[0].kind.response_header_name(), "Proxy-Authorization");
        assert!(h[0].value.contains("nonce=\"n2\"") && h[0].value.ends_with("nc=00000001"));
    }

    #[test]
    fn same_nonce_again_is_a_wrong_password() {
        let mut s = state(None);
        let c = [r#"Digest realm="pbx", nonce="n1""#];
        s.on_challenge(ChallengeKind::Www, &c, Attempt::First)
            .unwrap();
        s.authorize(&REG);
        let e = s
            .on_challenge(ChallengeKind::Www, &c, Attempt::First)
            .unwrap_err();
        assert_eq!(e.to_string(), "wrong password for realm pbx");
    }

    #[test]
    fn a_proxy_challenge_after_a_registrar_one_is_not_a_wrong_password() {
        // Kamailio's nonces are per second: its 407 to an INVITE can carry
        // the nonce its 401 to the REGISTER did, but wants the other header.
        let mut s = state(None);
        let c = [r#"Digest realm="pbx", nonce="n1""#];
        s.on_challenge(ChallengeKind::Www, &c, Attempt::First)
            .unwrap();
        s.authorize(&REG);
        s.on_challenge(ChallengeKind::Proxy, &c, Attempt::First)
            .unwrap();
        let kinds: Vec<ChallengeKind> = s.authorize(&REG).iter().map(|h| h.kind).collect();
        assert_eq!(kinds, [ChallengeKind::Www, ChallengeKind::Proxy]);
        let e = s
            .on_challenge(ChallengeKind::Proxy, &c, Attempt::First)
            .unwrap_err();
        assert_eq!(e.to_string(), "wrong password for realm pbx");
    }

    #[test]
    fn new_nonce_on_a_retry_is_a_wrong_password() {
        let mut s = state(None);
        s.on_challenge(
            ChallengeKind::Www,
            &["Digest realm=pbx, nonce=a"],
            Attempt::First,
        )
        .unwrap();
        s.authorize(&REG);
        assert!(matches!(
            s.on_challenge(ChallengeKind::Www, &["Digest realm=pbx, nonce=b"], Attempt::Retry),
            Err(AuthError::Rejected(r)) if r == "pbx"
        ));
        // A pre-authorised request with an expired nonce is re-challenged
        // with a new one: that is fine.
        s.on_challenge(
            ChallengeKind::Www,
            &["Digest realm=pbx, nonce=b"],
            Attempt::First,
        )
        .unwrap();
    }

    #[test]
    fn foreign_realm_is_refused() {
        let mut s = state(Some("home"));
        assert!(matches!(
            s.on_challenge(ChallengeKind::Www, &["Digest realm=evil, nonce=a"], Attempt::First),
            Err(AuthError::NoCredentials(r)) if r == "evil"
        ));
    }

    #[test]
    fn debug_hides_the_password() {
        assert!(!format!("{:?}", state(None)).contains("pw"));
    }

    #[test]
    fn random_cnonce_is_hex() {
        let c = RandomCnonce.cnonce().unwrap();
        assert_eq!(c.len(), 32);
        assert!(c.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
