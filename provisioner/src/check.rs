//! `msipprov check`: audits existing profiles against policies without
//! changing them, one profile or a whole fleet (`--profiles GLOB`), and with
//! `--fix` writes the enforce rules in place through the same transaction
//! as apply.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use softphone::config::{FileKind, IniDocument, INI_FILE_NAME};
use thiserror::Error;

use crate::apply::{write_changes, PlannedFile};
use crate::policy::{Policy, RuleSeverity, Violation};
use crate::state::{self, State};

/// What the audit found in one profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileReport {
    /// The profile folder.
    pub profile: PathBuf,
    /// Every rule the profile breaks (after `--fix`: what is left).
    pub violations: Vec<Violation>,
    /// Keys `--fix` wrote.
    #[serde(skip_serializing_if = "is_zero")]
    pub fixed: usize,
    /// Why the profile could not be read or fixed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ProfileReport {
    /// The profile's `microsip.ini`.
    pub fn ini(&self) -> PathBuf {
        self.profile.join(INI_FILE_NAME)
    }
}

/// Counts for the summary line and the JSON report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Profiles audited.
    pub profiles: usize,
    /// Profiles with at least one violation.
    pub with_violations: usize,
    /// `error` violations.
    pub errors: usize,
    /// `warn` violations.
    pub warnings: usize,
    /// Profiles that could not be read (or fixed).
    pub unreadable: usize,
    /// Keys written by `--fix`.
    pub fixed: usize,
}

impl Summary {
    /// Adds up the reports.
    pub fn of(reports: &[ProfileReport]) -> Self {
        let mut s = Summary {
            profiles: reports.len(),
            ..Summary::default()
        };
        for r in reports {
            let errors = r
                .violations
                .iter()
                .filter(|v| v.severity == RuleSeverity::Error)
                .count();
            s.errors += errors;
            s.warnings += r.violations.len() - errors;
            s.with_violations += usize::from(!r.violations.is_empty());
            s.unreadable += usize::from(r.error.is_some());
            s.fixed += r.fixed;
        }
        s
    }

    /// The documented exit code: 3 when an error rule is broken, else 1
    /// when a profile could not be read, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.errors > 0 {
            crate::exit::POLICY
        } else if self.unreadable > 0 {
            crate::exit::ERROR
        } else {
            crate::exit::OK
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} profile(s) checked: {} with violations ({} error(s), {} warning(s)), {} unreadable",
            self.profiles, self.with_violations, self.errors, self.warnings, self.unreadable
        )?;
        if self.fixed > 0 {
            write!(f, ", {} key(s) fixed", self.fixed)?;
        }
        Ok(())
    }
}

/// A `--profiles` pattern that cannot be used.
#[derive(Debug, Error)]
#[error("bad --profiles pattern {pattern:?}: {message}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// Why.
    pub message: String,
}

/// The profile folders a glob matches: folders holding a `microsip.ini`
/// (a pattern may also name the ini files themselves). Sorted.
pub fn find_profiles(pattern: &str) -> Result<Vec<PathBuf>, PatternError> {
    let paths = glob::glob(pattern).map_err(|e| PatternError {
        pattern: pattern.to_owned(),
        message: e.to_string(),
    })?;
    let mut profiles: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter_map(|p| {
            if p.is_dir() {
                p.join(INI_FILE_NAME).is_file().then_some(p)
            } else if p
                .file_name()
                .is_some_and(|n| n.eq_ignore_ascii_case(INI_FILE_NAME))
            {
                p.parent().map(Path::to_owned)
            } else {
                None
            }
        })
        .collect();
    profiles.sort();
    profiles.dedup();
    Ok(profiles)
}

/// Audits profiles in parallel; with `fix`, writes the enforce rules first
/// (each profile as its own transaction, with its own backup).
pub fn check_profiles(
    policy: &Policy,
    profiles: &[PathBuf],
    fix: bool,
    force: bool,
) -> Vec<ProfileReport> {
    profiles
        .par_iter()
        .map(|profile| check_profile(policy, profile, fix, force))
        .collect()
}

fn check_profile(policy: &Policy, profile: &Path, fix: bool, force: bool) -> ProfileReport {
    let mut report = ProfileReport {
        profile: profile.to_owned(),
        violations: Vec::new(),
        fixed: 0,
        error: None,
    };
    let ini = profile.join(INI_FILE_NAME);
    let bytes = match std::fs::read(&ini) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.error = Some(format!("cannot read {}: {e}", ini.display()));
            return report;
        }
    };
    let mut doc = match IniDocument::parse(&bytes) {
        Ok(doc) => doc,
        Err(e) => {
            report.error = Some(format!("{}: {e}", ini.display()));
            return report;
        }
    };
    report.violations = policy.check(&doc);
    if fix {
        let fixed = if report.violations.is_empty() {
            0
        } else {
            policy.enforce(&mut doc)
        };
        // The profile is now under these policies: the phone must know what
        // they lock, even when nothing needed fixing.
        let state = locked_state(policy, profile);
        if fixed > 0 || state.is_some() {
            let file = PlannedFile {
                kind: FileKind::Ini,
                path: ini.clone(),
                old: Some(bytes),
                new: doc.to_bytes(),
                notes: Vec::new(),
            };
            let extra = state.as_ref().map(|(p, b)| (p.as_path(), b.as_slice()));
            match write_changes(profile, &[file], extra, force) {
                Ok(_) => {
                    report.fixed = fixed;
                    report.violations = policy.check(&doc);
                }
                Err(e) => report.error = Some(format!("not fixed: {e}")),
            }
        }
    }
    report
}

/// The profile's state file and its new bytes when the locks it records
/// are not those of `policy`; `None` when they already are.
fn locked_state(policy: &Policy, profile: &Path) -> Option<(PathBuf, Vec<u8>)> {
    let mut state = State::load(profile);
    let locks = state::policy_locks(policy);
    if state.locks == locks {
        return None;
    }
    state.locks = locks;
    Some((state::path(profile), state.to_bytes()))
}
