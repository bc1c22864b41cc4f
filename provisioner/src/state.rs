//! What apply remembers about a target between runs, in
//! `<target>/.msipprov/state.json`:
//!
//! - a salted hash of every secret it wrote. MicroSIP replaces a plain
//!   password with its own ciphertext on start, so the file never again
//!   holds what we wrote; the hash tells a later run that the template's
//!   password is still the one MicroSIP encrypted, and the file is left
//!   alone instead of being rewritten at every logon;
//! - the values of the other keys it wrote (what a policy `default` needs:
//!   MicroSIP writes every key on exit, so "absent" never happens);
//! - which contacts came from the template, so a merge can replace them
//!   and keep the user's own (MicroSIP rewrites Contacts.xml with its own
//!   attributes only, so a marker inside the file would not survive).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The folder of our own files inside a target.
pub const STATE_DIR: &str = ".msipprov";
const STATE_FILE: &str = "state.json";
const FORMAT_VERSION: u32 = 1;

/// The remembered facts about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version of this file.
    pub version: u32,
    /// Random salt for the secret hashes, hex.
    pub salt: String,
    /// `Section/key` -> salted SHA-256 of the secret last written.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// `Section/key` -> value last written, for keys that are not secret.
    #[serde(default)]
    pub written: BTreeMap<String, String>,
    /// Identities ([`contact_id`]) of the contacts the template wrote.
    #[serde(default)]
    pub contacts: Vec<String>,
    /// The template set of the last run.
    #[serde(default)]
    pub template: String,
}

/// `<target>/.msipprov/state.json`.
pub fn path(target: &Path) -> PathBuf {
    target.join(STATE_DIR).join(STATE_FILE)
}

/// `Section/key`, the name a key is remembered under.
pub fn key_id(section: &str, key: &str) -> String {
    format!("{section}/{key}")
}

/// How a contact is recognised as ours: its number and name.
pub fn contact_id(number: &str, name: &str) -> String {
    format!("{number}\u{1f}{name}")
}

impl State {
    /// A fresh state with a new random salt.
    pub fn new() -> Self {
        let mut salt = [0u8; 16];
        // Without OS randomness, a fixed salt still hides the secret from
        // anyone without the file; it only loses protection against
        // precomputed tables, so it is not worth failing a logon over.
        if getrandom::fill(&mut salt).is_err() {
            tracing::warn!("no OS randomness; using a fixed salt for secret hashes");
        }
        Self {
            version: FORMAT_VERSION,
            salt: hex::encode(salt),
            secrets: BTreeMap::new(),
            written: BTreeMap::new(),
            contacts: Vec::new(),
            template: String::new(),
        }
    }

    /// Loads the target's state. A missing file gives a fresh state; so
    /// does an unreadable one (with a warning): losing it costs at most one
    /// rewrite of a password MicroSIP encrypted, never the user's data.
    pub fn load(target: &Path) -> Self {
        let file = path(target);
        Self::from_file_bytes(&file, std::fs::read(&file).ok().as_deref())
    }

    /// The state held by `bytes`, the content of `file` (`None`: no file),
    /// for callers that read the file themselves.
    pub fn from_file_bytes(file: &Path, bytes: Option<&[u8]>) -> Self {
        match bytes {
            Some(bytes) => match serde_json::from_slice::<State>(bytes) {
                Ok(state) if state.version == FORMAT_VERSION => state,
                Ok(state) => {
                    tracing::warn!(
                        "{}: unknown format version {}; starting afresh",
                        file.display(),
                        state.version
                    );
                    Self::new()
                }
                Err(e) => {
                    tracing::warn!("{}: {e}; starting afresh", file.display());
                    Self::new()
                }
            },
            None => Self::new(),
        }
    }

    /// The state as the bytes of its file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The salted hash of a secret value.
    pub fn hash_secret(&self, value: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.salt.as_bytes());
        hasher.update([0u8]);
        hasher.update(value.as_bytes());
        hex::encode(hasher.finalize())
    }

    /// Whether `value` is the secret last written to `Section/key`.
    pub fn secret_matches(&self, id: &str, value: &str) -> bool {
        self.secrets
            .get(id)
            .is_some_and(|h| *h == self.hash_secret(value))
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hashed_with_the_salt_and_never_stored() {
        let mut state = State::new();
        let other = State::new();
        assert_ne!(state.salt, other.salt);
        assert_ne!(state.hash_secret("s3cret"), other.hash_secret("s3cret"));
        state
            .secrets
            .insert(key_id("Account1", "password"), state.hash_secret("s3cret"));
        assert!(state.secret_matches("Account1/password", "s3cret"));
        assert!(!state.secret_matches("Account1/password", "other"));
        let text = String::from_utf8(state.to_bytes()).unwrap();
        assert!(!text.contains("s3cret"));
    }

    #[test]
    fn load_round_trips_and_survives_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::new();
        state.contacts.push(contact_id("100", "Reception"));
        std::fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        std::fs::write(path(dir.path()), state.to_bytes()).unwrap();
        assert_eq!(State::load(dir.path()), state);
        std::fs::write(path(dir.path()), b"{not json").unwrap();
        assert!(State::load(dir.path()).contacts.is_empty());
    }
}
