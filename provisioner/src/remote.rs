//! Remote `--template` and `--vars`: what the commands call to turn URLs
//! into local files before the usual loading, and to report how each URL
//! was served.
//!
//! A remote template is a bundle ([`crate::bundle`]) unpacked into a
//! private scratch folder that lives as long as the [`RemoteInputs`]; a
//! remote vars file is copied there under its own name (its extension still
//! picks TOML or JSON). The rest of msipprov sees plain local paths.
//!
//! # Trust
//!
//! Trusted keys come from `--trust KEY` (repeatable) and from the `trust`
//! list of the local config file ([`load_config`]). With at least one key,
//! every remote file (bundle and vars alike) must come with a detached
//! signature `<url>.sig` that one of them verifies; an unsigned or changed
//! file is refused, and the command writes nothing. Local templates and
//! vars files are not affected.
//!
//! The detached signature was chosen over one inside the archive because
//! the signed bytes are then exactly the served bytes: they are checked
//! before any decompression or tar parsing touches them, the same scheme
//! covers vars files (which have no container), the bundle stays a plain
//! `.tar.gz` anyone can list, and re-signing with a new key leaves the
//! bundle's bytes (and ETag) alone.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bundle::{self, BundleError, Limits};
use crate::fetch::{self, FetchError, FetchOptions, Fetched, Fetcher, Outcome};
use crate::keys::{KeyError, PublicKey};

/// The config file's name beside the executable.
pub const CONFIG_FILE: &str = "msipprov.toml";
/// Environment variable naming another config file.
pub const ENV_CONFIG: &str = "MSIPPROV_CONFIG";

/// Why remote inputs could not be prepared.
#[derive(Debug, Error)]
pub enum RemoteError {
    /// Fetching failed (and no cached copy could stand in), or trust refused the file.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The bundle is not a safe, valid `.tar.gz`.
    #[error("{url}: {source}")]
    Bundle {
        /// The URL.
        url: String,
        /// What is wrong.
        #[source]
        source: BundleError,
    },
    /// A trusted key could not be read.
    #[error("trusted key: {0}")]
    Key(#[from] KeyError),
    /// The config file is unreadable or invalid.
    #[error("{}: {why}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The scratch folder could not be made or written.
    #[error("cannot prepare a scratch folder for remote files: {0}")]
    Scratch(std::io::Error),
}

/// The local config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Trusted public keys: inline base64 keys or key file paths (relative
    /// to the config file's folder).
    #[serde(default)]
    pub trust: Vec<String>,
}

/// Reads the config: `$MSIPPROV_CONFIG` when set (it must exist), else
/// `msipprov.toml` beside the executable when it exists, else none. The
/// file beside the executable sits where users cannot write on a managed
/// machine (Program Files), so a signed-only policy there holds for every
/// logon. Returns the config and its folder (for relative key paths).
pub fn load_config() -> Result<(Config, Option<PathBuf>), RemoteError> {
    let path = match std::env::var_os(ENV_CONFIG) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => match std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join(CONFIG_FILE)))
        {
            Some(p) if p.is_file() => p,
            _ => return Ok((Config::default(), None)),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|e| RemoteError::Config {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let config: Config = toml::from_str(&text).map_err(|e| RemoteError::Config {
        path: path.clone(),
        why: e.message().trim_end().to_owned(),
    })?;
    Ok((config, path.parent().map(Path::to_owned)))
}

/// Every trusted key: `--trust` values, then the config's `trust` list.
pub fn trusted_keys(cli: &[String]) -> Result<Vec<PublicKey>, RemoteError> {
    let (config, base) = load_config()?;
    let mut keys = Vec::new();
    for spec in cli {
        keys.push(PublicKey::from_trust_spec(spec, None)?);
    }
    for spec in &config.trust {
        keys.push(PublicKey::from_trust_spec(spec, base.as_deref())?);
    }
    Ok(keys)
}

/// What a remote input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A template bundle.
    Template,
    /// A vars file.
    Vars,
}

/// One URL a command used, and how it was served.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteItem {
    /// Template or vars.
    pub kind: Kind,
    /// The URL.
    pub url: String,
    /// Downloaded, not modified, or the offline cached copy (with the reason).
    #[serde(flatten)]
    pub outcome: Outcome,
    /// When the copy used was downloaded (RFC 3339).
    pub fetched_at: String,
    /// The trusted key that verified it.
    pub signed_by: Option<String>,
    /// Where the local copy is (the scratch folder).
    #[serde(skip)]
    pub local: PathBuf,
    #[serde(skip)]
    fetched: Fetched,
}

impl RemoteItem {
    /// One report line: `fetched`, `cached` or `offline`, the URL, details.
    pub fn line(&self) -> String {
        let signed = self
            .signed_by
            .as_ref()
            .map(|k| format!(", signed by {k}"))
            .unwrap_or_default();
        match &self.outcome {
            Outcome::Downloaded => format!("{:<10} {}{signed}", "fetched", self.url),
            Outcome::NotModified => format!(
                "{:<10} {} (not modified since {}{signed})",
                "cached", self.url, self.fetched_at
            ),
            Outcome::Offline { reason } => format!(
                "{:<10} {}: {reason}; used the cached copy from {}{signed}",
                "offline", self.url, self.fetched_at
            ),
        }
    }
}

/// The remote inputs of one command run.
#[derive(Debug)]
pub struct RemoteInputs {
    trusted: Vec<PublicKey>,
    fetcher: Option<Fetcher>,
    scratch: Option<tempfile::TempDir>,
    /// The URLs used, in order.
    pub items: Vec<RemoteItem>,
}

impl RemoteInputs {
    /// Remote inputs checked against `trusted` keys (none: no signature needed).
    pub fn new(trusted: Vec<PublicKey>) -> Self {
        RemoteInputs {
            trusted,
            fetcher: None,
            scratch: None,
            items: Vec::new(),
        }
    }

    fn fetcher(&mut self) -> Result<&Fetcher, RemoteError> {
        if self.fetcher.is_none() {
            self.fetcher = Some(Fetcher::new(FetchOptions::from_env()?)?);
        }
        self.fetcher
            .as_ref()
            .ok_or_else(|| RemoteError::Fetch(FetchError::Client("no HTTP client".to_owned())))
    }

    fn scratch(&mut self) -> Result<PathBuf, RemoteError> {
        if self.scratch.is_none() {
            self.scratch = Some(
                tempfile::Builder::new()
                    .prefix("msipprov-remote-")
                    .tempdir()
                    .map_err(RemoteError::Scratch)?,
            );
        }
        self.scratch
            .as_ref()
            .map(|d| d.path().to_owned())
            .ok_or_else(|| RemoteError::Scratch(std::io::ErrorKind::NotFound.into()))
    }

    fn get(&mut self, url: &str) -> Result<Fetched, RemoteError> {
        let trusted = self.trusted.clone();
        let fetched = self.fetcher()?.fetch(url, &trusted)?;
        Ok(fetched)
    }

    fn push(&mut self, kind: Kind, local: PathBuf, fetched: Fetched) {
        self.items.push(RemoteItem {
            kind,
            url: fetched.url.clone(),
            outcome: fetched.outcome.clone(),
            fetched_at: humantime::format_rfc3339_seconds(fetched.fetched_at).to_string(),
            signed_by: fetched.signed_by.clone(),
            local,
            fetched,
        });
    }

    /// `--template`: a URL becomes the folder of its unpacked bundle;
    /// anything else is returned as given.
    pub fn template(&mut self, spec: &str) -> Result<String, RemoteError> {
        if !fetch::is_url(spec) {
            return Ok(spec.to_owned());
        }
        let fetched = self.get(spec)?;
        let name = last_segment(&fetched.url)
            .map(|n| {
                n.trim_end_matches(".tar.gz")
                    .trim_end_matches(".tgz")
                    .to_owned()
            })
            .filter(|n| safe_name(n))
            .unwrap_or_else(|| "template".to_owned());
        let dir = self
            .scratch()?
            .join(format!("t{}", self.items.len()))
            .join(name);
        std::fs::create_dir_all(&dir).map_err(RemoteError::Scratch)?;
        bundle::unpack(&fetched.bytes, &dir, &Limits::default()).map_err(|source| {
            RemoteError::Bundle {
                url: fetched.url.clone(),
                source,
            }
        })?;
        let local = dir.display().to_string();
        self.push(Kind::Template, dir, fetched);
        Ok(local)
    }

    /// `--vars`: each URL becomes a local copy; local paths stay as given.
    pub fn vars(&mut self, files: &[PathBuf]) -> Result<Vec<PathBuf>, RemoteError> {
        let mut out = Vec::with_capacity(files.len());
        for file in files {
            let Some(spec) = file.to_str().filter(|s| fetch::is_url(s)) else {
                out.push(file.clone());
                continue;
            };
            let fetched = self.get(spec)?;
            let name = last_segment(&fetched.url)
                .filter(|n| safe_name(n))
                .unwrap_or_else(|| "vars".to_owned());
            let dir = self.scratch()?.join(format!("v{}", self.items.len()));
            std::fs::create_dir_all(&dir).map_err(RemoteError::Scratch)?;
            let path = dir.join(name);
            std::fs::write(&path, &fetched.bytes).map_err(RemoteError::Scratch)?;
            self.push(Kind::Vars, path.clone(), fetched);
            out.push(path);
        }
        Ok(out)
    }

    /// Stores every downloaded file as its URL's last known good copy. Call
    /// it once the command used them successfully; returns warnings (a cache
    /// that cannot be written does not fail the run).
    pub fn remember(&self) -> Vec<String> {
        let Some(fetcher) = &self.fetcher else {
            return Vec::new();
        };
        self.items
            .iter()
            .filter_map(|item| fetcher.remember(&item.fetched).err())
            .collect()
    }

    /// Whether any input came from the cache because the server was out of reach.
    pub fn offline(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.outcome, Outcome::Offline { .. }))
    }

    /// `text` with every local copy's path replaced by its URL, so messages
    /// name what the admin gave, not the scratch folder.
    pub fn describe(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for item in &self.items {
            text = text.replace(&item.local.display().to_string(), &item.url);
        }
        match &self.fetcher {
            Some(f) => f.redact(&text),
            None => text,
        }
    }

    /// When the oldest cached copy used offline was downloaded.
    pub fn oldest_offline(&self) -> Option<SystemTime> {
        self.items
            .iter()
            .filter(|i| matches!(i.outcome, Outcome::Offline { .. }))
            .map(|i| i.fetched.fetched_at)
            .min()
    }
}

/// The last path segment of a URL, percent-decoding left alone.
fn last_segment(url: &str) -> Option<String> {
    let url = fetch::parse_url(url).ok()?;
    url.path_segments()?
        .next_back()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}
