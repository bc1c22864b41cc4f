//! Which `microsip.ini` keys a provisioning policy locks, and why.
//!
//! `msipprov apply --policy ...` records the rules of its policies in
//! `<profile>/.msipprov/state.json`, in a `locks` field whose shape this
//! module defines (the rest of that file belongs to the provisioner). The
//! phone reads it so its settings dialog can show a locked key read-only,
//! with the policy's reason, instead of letting the user set a value the
//! next logon would overwrite or `msipprov check` would flag.
//!
//! Locks are keyed by `Section/key`: `Settings/enableLog`,
//! `Account/transport` (a policy's `[Account]` rule, every `[AccountN]`
//! with N >= 1, as the provisioner applies it: the local `[Account0]` is
//! not covered), or `Account2/transport` (a rule for one account, which
//! beats the `[Account]` one). A policy's `default` rules are not locks:
//! the value stays the user's choice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::account::account_number;

/// The section name of a lock that covers every `[AccountN]`, N >= 1.
pub const EVERY_ACCOUNT: &str = "Account";

/// The folder and file, inside a profile folder, where the provisioner
/// keeps its state (and the locks in it).
const STATE_FILE: [&str; 2] = [".msipprov", "state.json"];

/// How a policy constrains a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockRule {
    /// The key always holds one value; the provisioner writes it.
    Enforce,
    /// The value must be one of a list, in a range, or match a pattern.
    Allow,
    /// The key must be present and not empty.
    Require,
    /// The key must be absent or empty.
    Forbid,
}

impl LockRule {
    /// The rule's name as policies spell it (`enforce`, `allow`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            LockRule::Enforce => "enforce",
            LockRule::Allow => "allow",
            LockRule::Require => "require",
            LockRule::Forbid => "forbid",
        }
    }
}

impl std::fmt::Display for LockRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key a policy locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// How the key is constrained.
    pub rule: LockRule,
    /// For [`LockRule::Enforce`], the value the key always holds; for the
    /// other rules, the constraint in words (`one of "", "button"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why, in the policy's words (one line).
    #[serde(default)]
    pub reason: String,
    /// The name of the policy the rule comes from.
    #[serde(default)]
    pub policy: String,
}

/// Why the locks of a profile could not be read.
#[derive(Debug, Error)]
pub enum LocksError {
    /// The state file exists but could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Read {
        /// The state file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not valid JSON, or its `locks` field does not
    /// have the shape this module defines.
    #[error("{}: the policy locks cannot be read: {source}", file.display())]
    Malformed {
        /// The state file.
        file: PathBuf,
        /// What is wrong, with its line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A lock is not named `Section/key`.
    #[error("{}: the policy lock {id:?} is not named Section/key", file.display())]
    BadKey {
        /// The state file.
        file: PathBuf,
        /// The name found.
        id: String,
    },
}

/// All locks of a profile, keyed by `Section/key` (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PolicyLocks {
    locks: BTreeMap<String, Lock>,
}

/// The part of `state.json` this module reads; serde skips the rest.
#[derive(Deserialize)]
struct StateLocks {
    #[serde(default)]
    locks: PolicyLocks,
}

impl PolicyLocks {
    /// No locks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `lock` on `key` of `section` (`Settings`, `Account` for
    /// every account, or `AccountN` for one). It replaces a lock on the same
    /// section and key, whatever their case.
    pub fn insert(&mut self, section: &str, key: &str, lock: Lock) {
        let same = self
            .locks
            .keys()
            .find(|id| split(id).is_some_and(|(s, k)| same_name(s, section) && same_name(k, key)))
            .cloned();
        if let Some(same) = same {
            self.locks.remove(&same);
        }
        self.locks.insert(format!("{section}/{key}"), lock);
    }

    /// The lock on `key` of `section` (`Settings`, `Account3`, ...): a lock
    /// for that very account first, else the `Account` lock for every
    /// account N >= 1. Section and key names compare without regard to
    /// case, as Windows reads profile files.
    pub fn lock_for(&self, section: &str, key: &str) -> Option<&Lock> {
        let every_account = account_number(section).is_some_and(|n| n >= 1);
        self.find(section, key).or_else(|| {
            every_account
                .then(|| self.find(EVERY_ACCOUNT, key))
                .flatten()
        })
    }

    /// The lock recorded under exactly this section name (no `AccountN`
    /// to `Account` fallback), names compared without regard to case.
    fn find(&self, section: &str, key: &str) -> Option<&Lock> {
        self.locks.get(&format!("{section}/{key}")).or_else(|| {
            self.locks.iter().find_map(|(id, lock)| {
                split(id)
                    .filter(|(s, k)| same_name(s, section) && same_name(k, key))
                    .map(|_| lock)
            })
        })
    }

    /// Whether no key is locked.
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }

    /// How many locks there are.
    pub fn len(&self) -> usize {
        self.locks.len()
    }

    /// Every lock as `(section, key, lock)`, sorted by `Section/key`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Lock)> + '_ {
        self.locks
            .iter()
            .filter_map(|(id, lock)| split(id).map(|(s, k)| (s, k, lock)))
    }

    /// The locks recorded for the profile whose `microsip.ini` is
    /// `ini_path`, from `<its folder>/.msipprov/state.json`. No file, or a
    /// file without locks: no locks (the profile is not under a policy). A
    /// file that cannot be read or parsed is an error naming it; the
    /// caller decides what to show.
    pub fn load_for_ini(ini_path: &Path) -> Result<PolicyLocks, LocksError> {
        let dir = match ini_path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let file = dir.join(STATE_FILE[0]).join(STATE_FILE[1]);
        match std::fs::read(&file) {
            Ok(bytes) => Self::from_state_json(&file, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(source) => Err(LocksError::Read { file, source }),
        }
    }

    /// The locks in `bytes`, the content of the state file `file` (named
    /// in errors). Only the `locks` field is read; the others are the
    /// provisioner's business and are ignored.
    pub fn from_state_json(file: &Path, bytes: &[u8]) -> Result<PolicyLocks, LocksError> {
        let state: StateLocks =
            serde_json::from_slice(bytes).map_err(|source| LocksError::Malformed {
                file: file.to_owned(),
                source,
            })?;
        if let Some(id) = state.locks.locks.keys().find(|id| split(id).is_none()) {
            return Err(LocksError::BadKey {
                file: file.to_owned(),
                id: id.clone(),
            });
        }
        Ok(state.locks)
    }
}

/// `Section/key` into its two halves, both non-empty.
fn split(id: &str) -> Option<(&str, &str)> {
    id.split_once('/')
        .filter(|(s, k)| !s.is_empty() && !k.is_empty())
}

/// Whether two profile names are the same to Windows, which ignores case.
fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || (!(a.is_ascii() && b.is_ascii()) && a.to_lowercase() == b.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(rule: LockRule, value: &str, reason: &str) -> Lock {
        Lock {
            rule,
            value: Some(value.to_owned()),
            reason: reason.to_owned(),
            policy: "secure".to_owned(),
        }
    }

    fn sample() -> PolicyLocks {
        let mut locks = PolicyLocks::new();
        locks.insert(
            "Settings",
            "enableLog",
            lock(LockRule::Enforce, "0", "logs"),
        );
        locks.insert(
            "Account",
            "transport",
            lock(LockRule::Enforce, "tls", "tls"),
        );
        locks.insert(
            "Account2",
            "transport",
            lock(LockRule::Allow, "one of \"tls\", \"tcp\"", "two"),
        );
        locks
    }

    #[test]
    fn account_sections_fall_back_to_the_every_account_lock() {
        let locks = sample();
        assert_eq!(
            locks.lock_for("Account1", "transport").unwrap().reason,
            "tls"
        );
        assert_eq!(
            locks.lock_for("Account17", "transport").unwrap().reason,
            "tls"
        );
        // A rule for one account beats the [Account] rule, as in policies.
        assert_eq!(
            locks.lock_for("Account2", "transport").unwrap().rule,
            LockRule::Allow
        );
        // [Account0] is the local account: [Account] rules do not cover it.
        assert_eq!(locks.lock_for("Account0", "transport"), None);
        // Not an account section (leading zero, no number, other section).
        assert_eq!(locks.lock_for("Account01", "transport"), None);
        assert_eq!(locks.lock_for("Settings", "transport"), None);
        assert_eq!(locks.lock_for("Account1", "enableLog"), None);
        assert_eq!(locks.lock_for("Account1", "SRTP"), None);
    }

    #[test]
    fn names_compare_without_case() {
        let locks = sample();
        assert_eq!(
            locks.lock_for("settings", "ENABLELOG").unwrap().reason,
            "logs"
        );
        assert_eq!(
            locks.lock_for("ACCOUNT3", "Transport").unwrap().reason,
            "tls"
        );
        assert!(locks.lock_for("Settings", "enableLogs").is_none());
        // Inserting the same key in another case replaces the lock.
        let mut locks = locks;
        locks.insert("SETTINGS", "EnableLog", lock(LockRule::Enforce, "1", "new"));
        assert_eq!(locks.len(), 3);
        assert_eq!(
            locks.lock_for("Settings", "enableLog").unwrap().reason,
            "new"
        );
    }

    #[test]
    fn iter_gives_section_and_key() {
        let locks = sample();
        let got: Vec<(&str, &str)> = locks.iter().map(|(s, k, _)| (s, k)).collect();
        assert_eq!(
            got,
            [
                ("Account", "transport"),
                ("Account2", "transport"),
                ("Settings", "enableLog")
            ]
        );
    }

    #[test]
    fn a_missing_state_file_means_no_locks() {
        let dir = tempfile::tempdir().unwrap();
        let ini = dir.path().join("microsip.ini");
        assert!(PolicyLocks::load_for_ini(&ini).unwrap().is_empty());
        // A state file written before locks existed: no locks either.
        std::fs::create_dir(dir.path().join(".msipprov")).unwrap();
        std::fs::write(
            dir.path().join(".msipprov/state.json"),
            br#"{"version":1,"salt":"00","secrets":{},"written":{},"contacts":[],"template":"default"}"#,
        )
        .unwrap();
        assert!(PolicyLocks::load_for_ini(&ini).unwrap().is_empty());
    }

    #[test]
    fn loads_the_locks_beside_the_ini_and_ignores_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".msipprov")).unwrap();
        let json = r#"{
  "version": 1,
  "salt": "ab",
  "future_field": {"anything": [1, 2]},
  "locks": {
    "Settings/enableLog": {"rule": "enforce", "value": "0", "reason": "logs", "policy": "secure", "severity": "error"},
    "Account/SRTP": {"rule": "require", "reason": "srtp", "policy": "p"}
  }
}"#;
        std::fs::write(dir.path().join(".msipprov/state.json"), json).unwrap();
        let locks = PolicyLocks::load_for_ini(&dir.path().join("microsip.ini")).unwrap();
        assert_eq!(locks.len(), 2);
        assert_eq!(
            locks.lock_for("Settings", "enableLog"),
            Some(&lock(LockRule::Enforce, "0", "logs"))
        );
        let srtp = locks.lock_for("Account1", "srtp").unwrap();
        assert_eq!(
            (srtp.rule, srtp.value.as_deref()),
            (LockRule::Require, None)
        );
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        let file = Path::new("/profiles/alice/.msipprov/state.json");
        for bad in [
            &b"{not json"[..],
            br#"{"locks": {"Settings/enableLog": {"rule": "lock", "reason": "x", "policy": "p"}}}"#,
            br#"{"locks": ["Settings/enableLog"]}"#,
        ] {
            let err = PolicyLocks::from_state_json(file, bad).unwrap_err();
            assert!(matches!(err, LocksError::Malformed { .. }), "{err}");
            let text = err.to_string();
            assert!(
                text.starts_with("/profiles/alice/.msipprov/state.json: "),
                "{text}"
            );
            assert!(text.contains("line 1"), "{text}");
        }
        let err = PolicyLocks::from_state_json(
            file,
            br#"{"locks": {"enableLog": {"rule": "forbid", "reason": "x", "policy": "p"}}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, LocksError::BadKey { id, .. } if id == "enableLog"),
            "{err}"
        );
        assert!(err.to_string().contains("state.json"));
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_state_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading it fails, not NotFound.
        std::fs::create_dir_all(dir.path().join(".msipprov/state.json")).unwrap();
        let err = PolicyLocks::load_for_ini(&dir.path().join("microsip.ini")).unwrap_err();
        assert!(matches!(err, LocksError::Read { .. }), "{err}");
        assert!(err.to_string().contains("state.json"), "{err}");
    }

    #[test]
    fn round_trips_through_json_as_a_plain_map() {
        let locks = sample();
        let json = serde_json::to_value(&locks).unwrap();
        assert_eq!(json["Settings/enableLog"]["rule"], "enforce");
        assert_eq!(json["Settings/enableLog"]["value"], "0");
        assert_eq!(json["Settings/enableLog"]["policy"], "secure");
        let wrapped = serde_json::json!({ "locks": json });
        let back =
            PolicyLocks::from_state_json(Path::new("s.json"), wrapped.to_string().as_bytes())
                .unwrap();
        assert_eq!(back, locks);
    }
}
