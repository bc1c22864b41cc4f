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
//!   attributes only, so a marker inside the file would not survive);
//! - which keys the policies of the last run lock, and why (`locks`, in the
//!   shape [`softphone::config::locks`] defines), so the phone's settings
//!   dialog can show them read-only with the policy's reason. Every run
//!   records the locks of the policies it was given, so a run without
//!   `--policy` clears them: the profile is no longer under a policy.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use softphone::config::locks::{Lock, LockRule, PolicyLocks};

use crate::policy::{Allow, Policy, Rule, Scope};

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
    /// The keys the policies of the last run lock (see [`policy_locks`]).
    /// Left out of the file when empty, so a profile never put under a
    /// policy keeps the state file it always had.
    #[serde(default, skip_serializing_if = "PolicyLocks::is_empty")]
    pub locks: PolicyLocks,
}

/// `<target>/.msipprov/state.json`.
pub fn path(target: &Path) -> PathBuf {
    target.join(STATE_DIR).join(STATE_FILE)
}

/// `Section/key`, the name a key is remembered under.
pub fn key_id(section: &str, key: &str) -> String {
    // Built by hand: `format!` costs several times more, once per key
    // of every profile a bulk run writes.
    let mut id = String::with_capacity(section.len() + 1 + key.len());
    id.push_str(section);
    id.push('/');
    id.push_str(key);
    id
}

/// How a contact is recognised as ours: its number and name.
pub fn contact_id(number: &str, name: &str) -> String {
    format!("{number}\u{1f}{name}")
}

impl State {
    /// A fresh state with a new random salt.
    pub fn new() -> Self {
        Self {
            version: FORMAT_VERSION,
            salt: hex::encode(new_salt()),
            secrets: BTreeMap::new(),
            written: BTreeMap::new(),
            contacts: Vec::new(),
            template: String::new(),
            locks: PolicyLocks::new(),
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

/// The keys `policy` locks: every rule but a plain `default` one (a
/// default is written only while the user has not changed the key, so the
/// value stays the user's choice). `[Settings]` rules are recorded under
/// `Settings`, `[Account]` rules under `Account` and `[AccountN]` rules
/// under `AccountN`, as [`PolicyLocks::lock_for`] looks them up.
pub fn policy_locks(policy: &Policy) -> PolicyLocks {
    let mut locks = PolicyLocks::new();
    for rule in policy.rules() {
        let Some((rule_kind, value)) = lock_rule(rule) else {
            continue;
        };
        let section = match rule.scope {
            Scope::Settings => "Settings".to_owned(),
            Scope::EveryAccount => softphone::config::locks::EVERY_ACCOUNT.to_owned(),
            Scope::Account(n) => format!("Account{n}"),
        };
        let lock = Lock {
            rule: rule_kind,
            value,
            reason: rule.reason.clone(),
            policy: policy_name(&rule.origin),
        };
        locks.insert(&section, rule.key, lock);
    }
    locks
}

/// The lock a rule amounts to, with its value or its constraint in words
/// (worded as `check` words what it expected). A rule that constrains the
/// value in several ways is recorded under the strongest: an enforced
/// value says it all, a forbidden key has no value to allow.
fn lock_rule(rule: &Rule) -> Option<(LockRule, Option<String>)> {
    if let Some(value) = &rule.enforce {
        Some((LockRule::Enforce, Some(value.clone())))
    } else if rule.forbid {
        Some((LockRule::Forbid, Some("absent or empty".to_owned())))
    } else if let Some(allow) = &rule.allow {
        let mut text = describe(allow);
        if rule.require {
            text.push_str(", and not empty");
        }
        Some((LockRule::Allow, Some(text)))
    } else if rule.require {
        Some((LockRule::Require, Some("a non-empty value".to_owned())))
    } else {
        None
    }
}

fn describe(allow: &Allow) -> String {
    match allow {
        Allow::OneOf(values) => {
            let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            format!("one of {}", quoted.join(", "))
        }
        Allow::Range { min, max } => format!("a number from {min} to {max}"),
        Allow::Regex(_, source) => format!("a value matching the whole of /{source}/"),
    }
}

/// The name of the policy a rule comes from (its origin is `file:line`):
/// the file's `name` field, else its file name without the extension.
/// Each file is read once per process: bulk asks for every row.
fn policy_name(origin: &str) -> String {
    static NAMES: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let file = origin.rsplit_once(':').map_or(origin, |(file, _)| file);
    let names = NAMES.get_or_init(Mutex::default);
    // A panic elsewhere cannot leave a half-written name: use the map as is.
    let mut names = names.lock().unwrap_or_else(PoisonError::into_inner);
    names
        .entry(file.to_owned())
        .or_insert_with(|| read_policy_name(Path::new(file)))
        .clone()
}

fn read_policy_name(file: &Path) -> String {
    let declared = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| match table.get("name") {
            Some(toml::Value::String(name)) if !name.trim().is_empty() => Some(name.clone()),
            _ => None,
        });
    declared.unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// A new random salt. The OS is asked for randomness once per process;
/// each salt is SHA-256 of that seed and a counter (bulk makes tens of
/// thousands of states: one system call each would be a tenth of its
/// work). SHA-256 keyed by a secret seed gives salts as unpredictable as
/// the seed and distinct for every call.
fn new_salt() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static SEED: OnceLock<[u8; 32]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(|| {
        let mut seed = [0u8; 32];
        // Without OS randomness, a fixed seed still hides the secret from
        // anyone without the file; it only loses protection against
        // precomputed tables, so it is not worth failing a logon over.
        if getrandom::fill(&mut seed).is_err() {
            tracing::warn!("no OS randomness; using a fixed salt for secret hashes");
        }
        seed
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let digest = Sha256::new()
        .chain_update(b"msipprov salt\0")
        .chain_update(seed)
        .chain_update(n.to_le_bytes())
        .finalize();
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&digest[..16]);
    salt
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

    fn lock(rule: LockRule, value: &str, reason: &str, policy: &str) -> Lock {
        Lock {
            rule,
            value: Some(value.to_owned()),
            reason: reason.to_owned(),
            policy: policy.to_owned(),
        }
    }

    fn secure() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/secure.toml")
    }

    #[test]
    fn locks_round_trip_and_the_phone_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::new();
        // No locks: no field at all (state files of unmanaged profiles stay as they were).
        assert!(!String::from_utf8(state.to_bytes())
            .unwrap()
            .contains("locks"));
        state.locks.insert(
            "Settings",
            "enableLog",
            lock(LockRule::Enforce, "0", "logs hold numbers", "secure"),
        );
        state.locks.insert(
            "Account",
            "transport",
            lock(LockRule::Enforce, "tls", "encrypt", "secure"),
        );
        std::fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        std::fs::write(path(dir.path()), state.to_bytes()).unwrap();
        assert_eq!(State::load(dir.path()), state);
        // The phone's reader sees the same locks in the provisioner's file.
        let seen = PolicyLocks::load_for_ini(&dir.path().join("microsip.ini")).unwrap();
        assert_eq!(seen, state.locks);
        assert_eq!(
            seen.lock_for("Account2", "Transport")
                .map(|l| l.reason.as_str()),
            Some("encrypt")
        );
    }

    #[test]
    fn every_rule_but_default_is_a_lock() {
        let policy = Policy::load(&[secure()]).unwrap();
        let locks = policy_locks(&policy);
        assert_eq!(
            locks.lock_for("Settings", "enableLog"),
            Some(&lock(
                LockRule::Enforce,
                "0",
                "SIP logs hold phone numbers and digest challenges",
                "secure"
            ))
        );
        let transport = locks.lock_for("Account1", "transport").unwrap();
        assert_eq!(
            (transport.rule, transport.value.as_deref()),
            (LockRule::Enforce, Some("tls"))
        );
        assert!(locks
            .iter()
            .any(|(s, k, _)| (s, k) == ("Account", "transport")));
        // enforce = "" is a lock on an empty value, not "no value".
        assert_eq!(
            locks
                .lock_for("Settings", "autoAnswer")
                .unwrap()
                .value
                .as_deref(),
            Some("")
        );
        let hook = locks.lock_for("Settings", "cmdCallEnd").unwrap();
        assert_eq!(hook.rule, LockRule::Allow);
        assert!(
            hook.value.as_deref().unwrap().contains("Acme CRM"),
            "{hook:?}"
        );
        // A default is the user's choice.
        assert_eq!(locks.lock_for("Settings", "denyIncoming"), None);
        let rules = policy.rules().len();
        assert_eq!(locks.len(), rules - 1, "{locks:?}");
    }

    #[test]
    fn require_forbid_and_named_policies() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fleet-2024.toml");
        std::fs::write(
            &file,
            "name = \"fleet\"\n[Account2]\nusername = { require = true, reason = \"who\" }\n\
             [Account]\nauthID = { forbid = true, reason = \"no\" }\n\
             [Settings]\nvolumeRing = { allow = { min = 10, max = 100 }, require = true, reason = \"hear it\" }\n",
        )
        .unwrap();
        let unnamed = dir.path().join("extra.toml");
        std::fs::write(
            &unnamed,
            "[Settings]\nEC = { allow = [\"0\", \"1\"], reason = \"r\" }\n",
        )
        .unwrap();
        let locks = policy_locks(&Policy::load(&[file, unnamed]).unwrap());
        assert_eq!(
            locks.lock_for("Account2", "username"),
            Some(&lock(
                LockRule::Require,
                "a non-empty value",
                "who",
                "fleet"
            ))
        );
        // Only that account.
        assert_eq!(locks.lock_for("Account1", "username"), None);
        assert_eq!(
            locks.lock_for("Account3", "authID"),
            Some(&lock(LockRule::Forbid, "absent or empty", "no", "fleet"))
        );
        assert_eq!(
            locks.lock_for("Settings", "volumeRing"),
            Some(&lock(
                LockRule::Allow,
                "a number from 10 to 100, and not empty",
                "hear it",
                "fleet"
            ))
        );
        // No `name` field: the file name.
        assert_eq!(
            locks.lock_for("Settings", "EC"),
            Some(&lock(LockRule::Allow, "one of \"0\", \"1\"", "r", "extra"))
        );
    }

    fn apply_opts(target: &Path, policies: Vec<PathBuf>) -> crate::apply::ApplyOptions {
        crate::apply::ApplyOptions {
            template: "default".to_owned(),
            templates_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates")),
            sources: crate::vars::VarSources {
                sets: [
                    "server=sip.example.com",
                    "username=alice",
                    "password=pw-1234",
                ]
                .map(str::to_owned)
                .to_vec(),
                ..Default::default()
            },
            target: target.to_owned(),
            policies,
            ..Default::default()
        }
    }

    /// Plans and commits; returns whether the run changed anything.
    fn apply(target: &Path, policies: Vec<PathBuf>) -> bool {
        let plan = crate::apply::plan(&apply_opts(target, policies)).unwrap();
        crate::apply::commit(&plan, true).unwrap();
        plan.changes()
    }

    #[test]
    fn apply_records_the_locks_of_its_policies_and_clears_them_without() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("profile");
        assert!(apply(&target, vec![secure()]));
        let locks = State::load(&target).locks;
        assert_eq!(
            locks.lock_for("Account1", "transport").map(|l| l.rule),
            Some(LockRule::Enforce)
        );
        assert!(locks
            .iter()
            .any(|(s, k, _)| (s, k) == ("Account", "transport")));
        assert_eq!(locks.lock_for("Settings", "denyIncoming"), None);

        // The same run again: unchanged, and not a byte written.
        let state_file = path(&target);
        let before = std::fs::read(&state_file).unwrap();
        let mtime = std::fs::metadata(&state_file).unwrap().modified().unwrap();
        let plan = crate::apply::plan(&apply_opts(&target, vec![secure()])).unwrap();
        assert!(!plan.changes());
        crate::apply::commit(&plan, true).unwrap();
        assert_eq!(std::fs::read(&state_file).unwrap(), before);
        assert_eq!(
            std::fs::metadata(&state_file).unwrap().modified().unwrap(),
            mtime
        );

        // Without a policy the profile is no longer under one.
        assert!(apply(&target, Vec::new()));
        assert!(State::load(&target).locks.is_empty());
        assert!(!String::from_utf8(std::fs::read(&state_file).unwrap())
            .unwrap()
            .contains("\"locks\""));
        assert!(!apply(&target, Vec::new()));
    }

    #[test]
    fn a_new_policy_the_files_already_meet_still_changes_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("profile");
        let policy = dir.path().join("hooks.toml");
        std::fs::write(
            &policy,
            "[Settings]\ncmdCallEnd = { forbid = true, reason = \"no hooks\" }\n",
        )
        .unwrap();
        assert!(apply(&target, Vec::new()));
        let ini = std::fs::read(target.join(softphone::config::INI_FILE_NAME)).unwrap();
        let plan = crate::apply::plan(&apply_opts(&target, vec![policy.clone()])).unwrap();
        // The ini stays as it is; only the locks the phone reads change.
        assert!(plan
            .files
            .iter()
            .all(|f| f.status() == crate::apply::FileStatus::Unchanged));
        assert!(plan.changes());
        assert!(plan.files[0]
            .notes
            .iter()
            .any(|n| n == "policy locks recorded: 1 key(s) locked"));
        crate::apply::commit(&plan, true).unwrap();
        assert_eq!(
            std::fs::read(target.join(softphone::config::INI_FILE_NAME)).unwrap(),
            ini
        );
        assert_eq!(
            State::load(&target)
                .locks
                .lock_for("Settings", "cmdCallEnd")
                .map(|l| (l.rule, l.reason.as_str(), l.policy.as_str())),
            Some((LockRule::Forbid, "no hooks", "hooks"))
        );
        assert!(!apply(&target, vec![policy]));
    }

    #[test]
    fn check_fix_records_the_locks_even_when_nothing_needs_fixing() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let ini = profile.join(softphone::config::INI_FILE_NAME);
        std::fs::write(&ini, "[Settings]\r\nenableLog=0\r\n").unwrap();
        let policy = dir.path().join("logs.toml");
        std::fs::write(
            &policy,
            "[Settings]\nenableLog = { enforce = \"0\", reason = \"privacy\" }\n",
        )
        .unwrap();
        let policy = Policy::load(&[policy]).unwrap();
        // A plain check writes nothing.
        let reports =
            crate::check::check_profiles(&policy, std::slice::from_ref(&profile), false, true);
        assert!(reports[0].violations.is_empty() && reports[0].error.is_none());
        assert!(!path(&profile).exists());
        let reports =
            crate::check::check_profiles(&policy, std::slice::from_ref(&profile), true, true);
        assert_eq!((reports[0].fixed, &reports[0].error), (0, &None));
        assert_eq!(
            std::fs::read(&ini).unwrap(),
            b"[Settings]\r\nenableLog=0\r\n"
        );
        let locks = PolicyLocks::load_for_ini(&ini).unwrap();
        assert_eq!(
            locks.lock_for("settings", "ENABLELOG"),
            Some(&lock(LockRule::Enforce, "0", "privacy", "logs"))
        );
        // Again: the state is already right and is not rewritten.
        let before = std::fs::metadata(path(&profile))
            .unwrap()
            .modified()
            .unwrap();
        crate::check::check_profiles(&policy, std::slice::from_ref(&profile), true, true);
        assert_eq!(
            std::fs::metadata(path(&profile))
                .unwrap()
                .modified()
                .unwrap(),
            before
        );
    }
}
