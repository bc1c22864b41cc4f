//! `softphone::sip::auth`: SIP digest authentication (RFC 3261 §22,
//! RFC 2617, RFC 7616, RFC 8760), sans-IO.
//!
//! Flow for the UA core: before sending any request ask
//! [`DigestState::authorize`] for pre-authorisation headers (empty until a
//! realm has challenged us); on 401/407 feed every WWW-/Proxy-Authenticate
//! value to [`DigestState::on_challenge`], which updates the cache or says
//! why not to retry, then rebuild the request (new CSeq) with
//! [`DigestState::authorize`] again.

mod challenge;
mod digest;
mod state;

pub use challenge::{parse_challenge, split_challenges, Algorithm, Challenge, Qop};
pub use digest::{authorization_value, chosen_qop, compute_response, DigestRequest, ResponseInput};
pub use state::{
    select_challenges, Attempt, AuthHeader, ChallengeKind, CnonceSource, Credentials, DigestState,
    FixedCnonce, RandomCnonce,
};

/// Why a challenge could not be parsed or answered.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The header value is empty.
    #[error("empty authentication challenge")]
    Empty,
    /// Not a Digest challenge (e.g. `Basic`, forbidden in SIP by RFC 3261 §22.1).
    #[error("unsupported authentication scheme `{0}`")]
    UnsupportedScheme(String),
    /// The algorithm token is not one we implement.
    #[error("unsupported digest algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// A `qop` list without `auth` or `auth-int`.
    #[error("unsupported qop `{0}`")]
    UnsupportedQop(String),
    /// A mandatory parameter is absent.
    #[error("challenge lacks the `{0}` parameter")]
    MissingParameter(&'static str),
    /// A parameter occurs twice (RFC 7616 §3.3: at most once).
    #[error("challenge repeats the `{0}` parameter")]
    DuplicateParameter(String),
    /// Syntax error in the parameter list.
    #[error("malformed challenge: {0}")]
    Malformed(String),
    /// A 401/407 without any challenge we can answer; carries the reason
    /// the last candidate was refused, if there was one.
    #[error("no usable digest challenge{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NoUsableChallenge(Option<Box<AuthError>>),
    /// Our credentials are bound to another realm.
    #[error("no credentials for realm {0}")]
    NoCredentials(String),
    /// The server challenged the credentials it had just been given.
    #[error("wrong password for realm {0}")]
    Rejected(String),
    /// The OS random source failed while making a cnonce.
    #[error("random source failed: {0}")]
    Random(String),
}
