//! Fetching remote templates and variables over HTTP(S), with a local
//! cache that makes a logon without network still work.
//!
//! # Requests
//!
//! One blocking reqwest client (rustls with the `ring` provider; the
//! platform's certificate roots through rustls-platform-verifier; proxies
//! from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` and, on Windows, the system
//! settings). Each attempt has a total timeout (`MSIPPROV_HTTP_TIMEOUT`,
//! seconds, default 15) and a connect timeout (at most 5 s). A failed
//! attempt (no connection, timeout, dropped connection, HTTP 5xx, 408 or
//! 429) is retried `MSIPPROV_HTTP_RETRIES` times (default 2) after 0.5 s,
//! 1 s, 2 s, ... Other statuses are not retried. A server found
//! unreachable gets a single attempt for the run's other URLs.
//!
//! # Credentials
//!
//! Only from the environment, never from the command line (a URL with
//! `user:password@` is refused): `MSIPPROV_HTTP_TOKEN` sends
//! `Authorization: Bearer <token>`; else `MSIPPROV_HTTP_USER` and
//! `MSIPPROV_HTTP_PASSWORD` send Basic auth. They are sent only over
//! `https`, or over plain `http` to a loopback address (a local test server
//! or relay), never logged, and replaced by `********` in every error text.
//! reqwest drops them when a redirect leaves the host.
//!
//! # The cache
//!
//! One file per URL under `<cache dir>/remote/`, named by the first 32 hex
//! digits of the SHA-256 of the URL; the cache dir is `MSIPPROV_CACHE_DIR`,
//! else the per-user cache folder (`%LOCALAPPDATA%\msipprov` on Windows,
//! `$XDG_CACHE_HOME/msipprov` on Linux). The file is one line of JSON
//! (`url`, `etag`, `last_modified`, `fetched_at` in Unix seconds, `sha256`
//! and `size` of the body, `signature`: the detached signature's text or
//! null), a newline, then the body exactly as served. It is written
//! atomically (temp file + rename) and readable by its owner only (a vars
//! file may hold passwords). An entry whose hash does not match is ignored.
//!
//! A request carries `If-None-Match` / `If-Modified-Since` from the entry;
//! on `304 Not Modified` the cached body is used. When the file cannot be
//! had at all (any failure above, after retries), the cached body is used
//! and the outcome says so ([`Outcome::Offline`]); with no cache entry the
//! fetch fails. The caller stores a new body only once it proved good
//! ([`Fetcher::remember`]): verified against the trusted keys, and usable.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::keys::{self, PublicKey, SIGNATURE_SUFFIX};

/// Environment variable: the bearer token.
pub const ENV_TOKEN: &str = "MSIPPROV_HTTP_TOKEN";
/// Environment variable: the Basic auth user.
pub const ENV_USER: &str = "MSIPPROV_HTTP_USER";
/// Environment variable: the Basic auth password.
pub const ENV_PASSWORD: &str = "MSIPPROV_HTTP_PASSWORD";
/// Environment variable: the cache folder.
pub const ENV_CACHE_DIR: &str = "MSIPPROV_CACHE_DIR";
/// Environment variable: seconds per attempt.
pub const ENV_TIMEOUT: &str = "MSIPPROV_HTTP_TIMEOUT";
/// Environment variable: retries after a failed attempt.
pub const ENV_RETRIES: &str = "MSIPPROV_HTTP_RETRIES";

/// Largest body accepted (a bundle or a vars file).
const MAX_BODY: u64 = 32 << 20;
/// Largest signature file accepted.
const MAX_SIGNATURE: u64 = 4096;
/// What a secret is shown as.
const MASK: &str = "********";

/// Why a remote file could not be had.
#[derive(Debug, Error)]
pub enum FetchError {
    /// The URL is not an http(s) URL, or carries credentials.
    #[error("{url}: {why}")]
    BadUrl {
        /// The URL (credentials removed).
        url: String,
        /// What is wrong.
        why: String,
    },
    /// A setting from the environment is wrong.
    #[error("{name}: {why}")]
    Config {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The file could not be fetched and no cached copy exists.
    #[error("cannot fetch {url}: {reason}; no cached copy to fall back on")]
    Unavailable {
        /// The URL.
        url: String,
        /// The last failure.
        reason: String,
    },
    /// Trust is configured and the file has no signature.
    #[error("{url} is not signed ({reason}); refusing it because trusted keys are configured (--trust / msipprov.toml)")]
    Unsigned {
        /// The URL.
        url: String,
        /// Why there is no signature.
        reason: String,
    },
    /// The signature does not verify.
    #[error("{url}: {source}; refusing it")]
    BadSignature {
        /// The URL.
        url: String,
        /// What failed.
        #[source]
        source: keys::VerifyError,
    },
}

/// Credentials for the server, from the environment.
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic ...`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The values never reach a log, even through {:?}.
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(********)"),
            Auth::Basic { .. } => f.write_str("Basic(********)"),
        }
    }
}

impl Auth {
    /// Reads [`ENV_TOKEN`], else [`ENV_USER`] + [`ENV_PASSWORD`].
    pub fn from_env() -> Result<Option<Auth>, FetchError> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(token) = var(ENV_TOKEN) {
            return Ok(Some(Auth::Bearer(token)));
        }
        match (var(ENV_USER), var(ENV_PASSWORD)) {
            (Some(user), Some(password)) => Ok(Some(Auth::Basic { user, password })),
            (Some(_), None) => Err(FetchError::Config {
                name: ENV_PASSWORD,
                why: format!("{ENV_USER} is set but {ENV_PASSWORD} is not"),
            }),
            (None, Some(_)) => Err(FetchError::Config {
                name: ENV_USER,
                why: format!("{ENV_PASSWORD} is set but {ENV_USER} is not"),
            }),
            (None, None) => Ok(None),
        }
    }

    fn secrets(&self) -> Vec<&str> {
        match self {
            Auth::Bearer(token) => vec![token.as_str()],
            Auth::Basic { user, password } => vec![password.as_str(), user.as_str()],
        }
    }
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Where cache entries live (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Total time per attempt.
    pub timeout: Duration,
    /// Retries after a failed attempt.
    pub retries: u32,
    /// The first pause between attempts; doubled each time.
    pub backoff: Duration,
    /// Credentials.
    pub auth: Option<Auth>,
}

impl FetchOptions {
    /// The options the environment gives (see the module documentation).
    pub fn from_env() -> Result<Self, FetchError> {
        let number = |name: &'static str, default: f64| -> Result<f64, FetchError> {
            match std::env::var(name) {
                Ok(text) => text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| FetchError::Config {
                        name,
                        why: format!("{text:?} is not a non-negative number"),
                    }),
                Err(_) => Ok(default),
            }
        };
        let timeout = number(ENV_TIMEOUT, 15.0)?;
        if timeout == 0.0 {
            return Err(FetchError::Config {
                name: ENV_TIMEOUT,
                why: "must be more than 0 seconds".to_owned(),
            });
        }
        let retries = number(ENV_RETRIES, 2.0)?.min(10.0) as u32;
        let cache_dir = match std::env::var_os(ENV_CACHE_DIR) {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => dirs::cache_dir().map(|d| d.join("msipprov")),
        };
        Ok(FetchOptions {
            cache_dir,
            timeout: Duration::from_secs_f64(timeout),
            retries,
            backoff: Duration::from_millis(500),
            auth: Auth::from_env()?,
        })
    }
}

/// How the body of a [`Fetched`] was obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The server sent it (200).
    Downloaded,
    /// The server said the cached copy is current (304).
    NotModified,
    /// The server could not be reached; the cached copy was used.
    Offline {
        /// Why the server could not be used.
        reason: String,
    },
}

/// A remote file, ready to use.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL.
    pub url: String,
    /// The body.
    pub bytes: Vec<u8>,
    /// How it was obtained.
    pub outcome: Outcome,
    /// When it was downloaded (now, or when the cached copy was).
    pub fetched_at: SystemTime,
    /// The fingerprint of the trusted key that verified it (None without trust).
    pub signed_by: Option<String>,
    /// The cache entry to store once the caller found the body good.
    pending: Option<Entry>,
}

/// A cache entry's header line.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    fetched_at: u64,
    sha256: String,
    size: u64,
    signature: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    meta: Meta,
    body: Vec<u8>,
}

/// One response of the server.
enum Response {
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    NotModified,
}

/// Why one request failed (after retries).
struct Failure {
    /// The reason, redacted.
    reason: String,
    /// The server answered with this status (not a transport failure).
    status: Option<StatusCode>,
}

/// Fetches URLs through the cache.
#[derive(Debug)]
pub struct Fetcher {
    client: Client,
    opts: FetchOptions,
    /// Origins that could not be reached in this run: later requests to
    /// them get one attempt only, so an offline logon with a template and
    /// a vars file on one server waits for the retries once, not twice.
    down: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Whether `spec` is an `http://` or `https://` URL (what `--template` and
/// `--vars` treat as remote).
pub fn is_url(spec: &str) -> bool {
    let lower = spec.get(..8).unwrap_or(spec).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Parses a URL we may fetch: http(s), no credentials in it.
pub fn parse_url(spec: &str) -> Result<Url, FetchError> {
    let url = Url::parse(spec).map_err(|e| FetchError::BadUrl {
        url: strip_userinfo(spec),
        why: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::BadUrl {
            url: strip_userinfo(spec),
            why: "only http:// and https:// URLs can be fetched".to_owned(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::BadUrl {
            url: strip_userinfo(spec),
            why: format!(
                "credentials in a URL would show in process lists and logs; remove them and set {ENV_TOKEN}, or {ENV_USER} and {ENV_PASSWORD}"
            ),
        });
    }
    Ok(url)
}

/// The URL text without any `user:password@` part, for messages.
fn strip_userinfo(spec: &str) -> String {
    if let Some(scheme_end) = spec.find("://") {
        let rest = &spec[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{}{}", &spec[..scheme_end + 3], &rest[at + 1..]);
        }
    }
    spec.to_owned()
}

/// The URL of the detached signature of `url`: its path plus `.sig`.
pub fn signature_url(url: &Url) -> Url {
    let mut sig = url.clone();
    sig.set_path(&format!("{}{SIGNATURE_SUFFIX}", url.path()));
    sig
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Fetcher {
    /// A fetcher with these options.
    pub fn new(opts: FetchOptions) -> Result<Self, FetchError> {
        // reqwest is built without a default crypto provider (aws-lc-rs
        // needs cmake and does not cross-build with mingw); ring is ours.
        // An Err only means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("msipprov/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Client(error_chain(&e)))?;
        Ok(Fetcher {
            client,
            opts,
            down: Default::default(),
        })
    }

    /// Replaces every credential in `text` by `********`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        if let Some(auth) = &self.opts.auth {
            for secret in auth.secrets().into_iter().filter(|s| s.len() >= 3) {
                text = text.replace(secret, MASK);
            }
        }
        text
    }

    fn entry_path(&self, url: &str) -> Option<PathBuf> {
        let dir = self.opts.cache_dir.as_ref()?;
        Some(dir.join("remote").join(&hex_sha256(url.as_bytes())[..32]))
    }

    fn load_entry(&self, url: &str) -> Option<Entry> {
        let path = self.entry_path(url)?;
        let bytes = std::fs::read(&path).ok()?;
        let newline = bytes.iter().position(|&b| b == b'\n')?;
        let meta: Meta = match serde_json::from_slice(&bytes[..newline]) {
            Ok(meta) => meta,
            Err(e) => {
                tracing::warn!("ignoring the cache entry {}: {e}", path.display());
                return None;
            }
        };
        let body = bytes[newline + 1..].to_vec();
        if meta.url != url || meta.size != body.len() as u64 || meta.sha256 != hex_sha256(&body) {
            tracing::warn!(
                "ignoring the cache entry {}: it does not match its header",
                path.display()
            );
            return None;
        }
        Some(Entry { meta, body })
    }

    /// Stores a fetched body as the last known good copy of its URL (when it
    /// is new or its signature changed). A cache that cannot be written is
    /// not an error for the run: the result is the warning to show.
    pub fn remember(&self, fetched: &Fetched) -> Result<(), String> {
        let (Some(entry), Some(path)) = (&fetched.pending, self.entry_path(&fetched.url)) else {
            return Ok(());
        };
        let mut bytes = serde_json::to_vec(&entry.meta).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        bytes.extend_from_slice(&entry.body);
        crate::fsutil::write_atomic(&path, &bytes, true).map_err(|e| {
            format!(
                "cannot update the cache for {}: {e}",
                self.redact(&fetched.url)
            )
        })
    }

    /// Fetches `spec` through the cache. With `trusted` keys, the detached
    /// signature `<url>.sig` must verify with one of them: a file that is
    /// unsigned or does not verify is refused (never used, never cached).
    pub fn fetch(&self, spec: &str, trusted: &[PublicKey]) -> Result<Fetched, FetchError> {
        let url = parse_url(spec)?;
        let key = url.to_string();
        let cached = self.load_entry(&key);
        let response = self.get(&url, cached.as_ref().map(|c| &c.meta), MAX_BODY);
        let (outcome, body, mut signature, mut meta) =
            match (response, cached) {
                (
                    Ok(Response::Body {
                        bytes,
                        etag,
                        last_modified,
                    }),
                    _,
                ) => {
                    let meta = Meta {
                        url: key.clone(),
                        etag,
                        last_modified,
                        fetched_at: now_secs(),
                        sha256: hex_sha256(&bytes),
                        size: bytes.len() as u64,
                        signature: None,
                    };
                    (Outcome::Downloaded, bytes, None, Some(meta))
                }
                (Ok(Response::NotModified), Some(entry)) => (
                    Outcome::NotModified,
                    entry.body,
                    entry.meta.signature.clone(),
                    Some(entry.meta),
                ),
                (Ok(Response::NotModified), None) => return Err(FetchError::Unavailable {
                    url: key,
                    reason:
                        "the server answered 304 Not Modified to a request without a cached copy"
                            .to_owned(),
                }),
                (Err(failure), Some(entry)) => {
                    tracing::warn!("{key}: {}; using the cached copy", failure.reason);
                    (
                        Outcome::Offline {
                            reason: failure.reason,
                        },
                        entry.body,
                        entry.meta.signature.clone(),
                        Some(entry.meta),
                    )
                }
                (Err(failure), None) => {
                    return Err(FetchError::Unavailable {
                        url: key,
                        reason: failure.reason,
                    })
                }
            };
        let mut changed = outcome == Outcome::Downloaded;
        let mut signed_by = None;
        if !trusted.is_empty() {
            let offline = matches!(outcome, Outcome::Offline { .. });
            // A cached signature is tried first; when it is missing or no
            // longer verifies (the keys rotated), a fresh one is fetched
            // unless the server is out of reach.
            let mut verified = signature
                .as_deref()
                .map(|sig| keys::verify(trusted, &body, sig).map(PublicKey::fingerprint));
            if !matches!(verified, Some(Ok(_))) && !offline {
                match self.get(&signature_url(&url), None, MAX_SIGNATURE) {
                    Ok(Response::Body { bytes, .. }) => {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        verified =
                            Some(keys::verify(trusted, &body, &text).map(PublicKey::fingerprint));
                        signature = Some(text);
                        changed = true;
                    }
                    Ok(Response::NotModified) => {}
                    Err(failure) if failure.status.is_some() => {
                        if verified.is_none() {
                            return Err(FetchError::Unsigned {
                                url: key,
                                reason: format!("{}: {}", signature_url(&url), failure.reason),
                            });
                        }
                    }
                    Err(failure) => {
                        return Err(FetchError::Unavailable {
                            url: signature_url(&url).to_string(),
                            reason: failure.reason,
                        })
                    }
                }
            }
            match verified {
                Some(Ok(fingerprint)) => signed_by = Some(fingerprint),
                Some(Err(source)) => return Err(FetchError::BadSignature { url: key, source }),
                None => {
                    return Err(FetchError::Unsigned {
                        url: key,
                        reason: "the cached copy has no signature".to_owned(),
                    })
                }
            }
        }
        if let Some(meta) = meta.as_mut() {
            meta.signature = signature;
        }
        let fetched_at = meta.as_ref().map_or(SystemTime::now(), |m| {
            UNIX_EPOCH + Duration::from_secs(m.fetched_at)
        });
        Ok(Fetched {
            url: key,
            pending: meta.filter(|_| changed).map(|meta| Entry {
                meta,
                body: body.clone(),
            }),
            bytes: body,
            outcome,
            fetched_at,
            signed_by,
        })
    }

    /// One GET with retries; conditional when `cached` is given.
    fn get(&self, url: &Url, cached: Option<&Meta>, limit: u64) -> Result<Response, Failure> {
        let origin = url.origin().ascii_serialization();
        let known_down = self.down.lock().is_ok_and(|d| d.contains(&origin));
        let retries = if known_down { 0 } else { self.opts.retries };
        let mut attempt = 0;
        loop {
            let result = self.attempt(url, cached, limit);
            let retry = match &result {
                Ok(_) => false,
                Err(f) => match f.status {
                    None => true,
                    Some(s) => {
                        s.is_server_error()
                            || s == StatusCode::REQUEST_TIMEOUT
                            || s == StatusCode::TOO_MANY_REQUESTS
                    }
                },
            };
            if !retry || attempt >= retries {
                if matches!(&result, Err(f) if f.status.is_none()) {
                    if let Ok(mut down) = self.down.lock() {
                        down.insert(origin);
                    }
                }
                return result;
            }
            let pause = self.opts.backoff * 2u32.saturating_pow(attempt);
            if let Err(f) = &result {
                tracing::info!("{url}: {}; retrying in {pause:?}", f.reason);
            }
            std::thread::sleep(pause);
            attempt += 1;
        }
    }

    fn attempt(&self, url: &Url, cached: Option<&Meta>, limit: u64) -> Result<Response, Failure> {
        let mut request = self.client.get(url.clone());
        if let Some(meta) = cached {
            if let Some(etag) = &meta.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &meta.last_modified {
                request = request.header(IF_MODIFIED_SINCE, lm);
            }
        }
        request = self.authorize(request, url);
        let failure = |reason: String, status| Failure {
            reason: self.redact(&reason),
            status,
        };
        let response = request
            .send()
            .map_err(|e| failure(error_chain(&e.without_url()), None))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && cached.is_some() {
            return Ok(Response::NotModified);
        }
        if !status.is_success() {
            let mut reason = format!("HTTP {status}");
            if status == StatusCode::UNAUTHORIZED && self.opts.auth.is_none() {
                reason.push_str(&format!(
                    " (set {ENV_TOKEN}, or {ENV_USER} and {ENV_PASSWORD})"
                ));
            } else if status == StatusCode::UNAUTHORIZED && !may_send_credentials(url) {
                reason.push_str(" (credentials are sent only over https)");
            }
            return Err(failure(reason, Some(status)));
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(failure(
                format!("the file is larger than {limit} bytes"),
                Some(status),
            ));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header(ETAG);
        let last_modified = header(LAST_MODIFIED);
        let mut bytes = Vec::new();
        response
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| failure(format!("the download broke off: {}", error_chain(&e)), None))?;
        if bytes.len() as u64 > limit {
            return Err(failure(
                format!("the file is larger than {limit} bytes"),
                Some(status),
            ));
        }
        Ok(Response::Body {
            bytes,
            etag,
            last_modified,
        })
    }

    fn authorize(&self, request: RequestBuilder, url: &Url) -> RequestBuilder {
        let Some(auth) = &self.opts.auth else {
            return request;
        };
        if !may_send_credentials(url) {
            tracing::warn!("not sending credentials to {url}: plain http to a remote host");
            return request;
        }
        match auth {
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
        }
    }
}

/// Credentials travel over https, or plain http to this machine only.
fn may_send_credentials(url: &Url) -> bool {
    if url.scheme() == "https" {
        return true;
    }
    match url.host_str() {
        Some(host) => match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => host.eq_ignore_ascii_case("localhost"),
        },
        None => false,
    }
}

/// An error and its causes, `: ` separated (reqwest's own message is terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_credentials_are_refused_without_echoing_them() {
        let err = parse_url("https://bob:hunter2@prov.example.com/t.tar.gz").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2") && !text.contains("bob"), "{text}");
        assert!(text.contains("https://prov.example.com/t.tar.gz"), "{text}");
        assert!(parse_url("ftp://prov.example.com/t.tar.gz").is_err());
        assert!(parse_url("https://prov.example.com/t.tar.gz").is_ok());
    }

    #[test]
    fn url_detection_and_signature_url() {
        assert!(is_url("HTTPS://x/y") && is_url("http://x") && !is_url("corporate"));
        assert!(!is_url("C:\\templates\\corp") && !is_url("./https"));
        let url = parse_url("https://h/a/b.tar.gz?v=2").unwrap();
        assert_eq!(signature_url(&url).as_str(), "https://h/a/b.tar.gz.sig?v=2");
    }

    #[test]
    fn credentials_only_over_https_or_loopback() {
        for (url, ok) in [
            ("https://prov.example.com/x", true),
            ("http://prov.example.com/x", false),
            ("http://127.0.0.1:8080/x", true),
            ("http://[::1]/x", true),
            ("http://localhost/x", true),
        ] {
            assert_eq!(may_send_credentials(&parse_url(url).unwrap()), ok, "{url}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let fetcher = Fetcher::new(FetchOptions {
            cache_dir: None,
            timeout: Duration::from_secs(1),
            retries: 0,
            backoff: Duration::ZERO,
            auth: Some(Auth::Basic {
                user: "svc-prov".into(),
                password: "pa55word".into(),
            }),
        })
        .unwrap();
        assert_eq!(
            fetcher.redact("denied for svc-prov with pa55word"),
            "denied for ******** with ********"
        );
        assert_eq!(
            format!("{:?}", Auth::Bearer("tok123".into())),
            "Bearer(********)"
        );
    }
}
