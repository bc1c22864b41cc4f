//! Backups of a target's files, taken before every change, and rollback.
//!
//! Each run that changes anything keeps what the files held before in its
//! own folder, `<target>/.msipprov/backups/<UTC time>-<nanos>/`, so a
//! rollback restores the files of one run together. A file that did not
//! exist is recorded as `<name>.absent`, and rollback removes it again.
//! The last [`KEEP`] runs are kept.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::fsutil::{write_atomic, FsError, Transaction};
use crate::state::STATE_DIR;

/// How many runs' backups are kept.
pub const KEEP: usize = 10;
const ABSENT_SUFFIX: &str = ".absent";

/// A backup or rollback that failed.
#[derive(Debug, Error)]
pub enum BackupError {
    /// A file step failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The backups folder could not be listed.
    #[error("cannot read the backups in {}: {source}", path.display())]
    List {
        /// The folder.
        path: PathBuf,
        /// The reason.
        #[source]
        source: io::Error,
    },
    /// Rollback found nothing to restore.
    #[error("no backup to roll back to in {}", .0.display())]
    NoBackup(PathBuf),
}

/// `<target>/.msipprov/backups`.
pub fn backups_dir(target: &Path) -> PathBuf {
    target.join(STATE_DIR).join("backups")
}

/// Saves what `files` held before a change: `(file name, previous bytes or
/// None when it did not exist)`. Returns the run's backup folder.
pub fn save(target: &Path, files: &[(&str, Option<&[u8]>)]) -> Result<PathBuf, BackupError> {
    let run = backups_dir(target).join(run_name(SystemTime::now()));
    for (name, bytes) in files {
        let written = match bytes {
            Some(bytes) => write_atomic(&run.join(name), bytes, true),
            None => write_atomic(&run.join(format!("{name}{ABSENT_SUFFIX}")), b"", true),
        };
        if let Err(e) = written {
            // A half backup is no backup: leave nothing for rollback to trip on.
            let _ = fs::remove_dir_all(&run);
            return Err(e.into());
        }
    }
    prune(target, KEEP)?;
    Ok(run)
}

/// The runs' backup folders, oldest first.
pub fn list(target: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let dir = backups_dir(target);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(BackupError::List { path: dir, source }),
    };
    let mut runs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    // Names start with a fixed-width UTC time, so name order is time order.
    runs.sort();
    Ok(runs)
}

fn prune(target: &Path, keep: usize) -> Result<(), BackupError> {
    let runs = list(target)?;
    for old in runs.iter().take(runs.len().saturating_sub(keep)) {
        if let Err(e) = fs::remove_dir_all(old) {
            tracing::warn!("cannot remove old backup {}: {e}", old.display());
        }
    }
    Ok(())
}

/// What a rollback did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The file got its previous bytes back.
    Restored(PathBuf),
    /// The file did not exist before, and was removed.
    Removed(PathBuf),
}

/// Restores the files of the newest run's backup, all together as one
/// transaction, then drops that backup so a second rollback goes one run
/// further back.
pub fn rollback(target: &Path) -> Result<(PathBuf, Vec<Restored>), BackupError> {
    let run = list(target)?
        .pop()
        .ok_or_else(|| BackupError::NoBackup(backups_dir(target)))?;
    let entries = fs::read_dir(&run).map_err(|source| BackupError::List {
        path: run.clone(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !crate::fsutil::is_temp_file(Path::new(n)))
        .collect();
    names.sort();
    let mut tx = Transaction::new();
    let mut done = Vec::new();
    for name in names {
        if let Some(original) = name.strip_suffix(ABSENT_SUFFIX) {
            let path = target.join(original);
            tx.stage_removal(&path)?;
            done.push(Restored::Removed(path));
        } else {
            let saved = run.join(&name);
            let bytes = fs::read(&saved).map_err(|source| FsError {
                action: "cannot read the backup",
                path: saved.clone(),
                source,
            })?;
            let path = target.join(&name);
            tx.stage(&path, &bytes, true)?;
            done.push(Restored::Restored(path));
        }
    }
    // The state describes the files being replaced (the hash of the
    // password they were written with): after a rollback it would make the
    // next apply keep a ciphertext of the old password. Drop it with the
    // same transaction; the next apply starts afresh.
    tx.stage_removal(&crate::state::path(target))?;
    tx.commit()?;
    if let Err(e) = fs::remove_dir_all(&run) {
        tracing::warn!(
            "restored, but cannot remove the used backup {}: {e}",
            run.display()
        );
    }
    Ok((run, done))
}

/// `2026-11-23T111500Z-000000042`: UTC time, then nanoseconds, so names
/// sort by time, are unique per run, and are valid on Windows (no `:`).
fn run_name(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let stamp = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + std::time::Duration::from_secs(since.as_secs()),
    )
    .to_string()
    .replace(':', "");
    format!("{stamp}-{:09}", since.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_sort_by_time() {
        let t = UNIX_EPOCH + std::time::Duration::new(1_763_896_500, 42);
        assert_eq!(run_name(t), "2025-11-23T111500Z-000000042");
        assert!(run_name(t) < run_name(t + std::time::Duration::from_nanos(1)));
    }

    #[test]
    fn rollback_restores_a_whole_run_and_removes_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path();
        let ini = target.join("microsip.ini");
        let xml = target.join("Contacts.xml");
        fs::write(&ini, b"old ini").unwrap();
        save(
            target,
            &[("microsip.ini", Some(b"old ini")), ("Contacts.xml", None)],
        )
        .unwrap();
        fs::write(&ini, b"new ini").unwrap();
        fs::write(&xml, b"new xml").unwrap();
        let (_, done) = rollback(target).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(fs::read(&ini).unwrap(), b"old ini");
        assert!(!xml.exists());
        assert!(matches!(rollback(target), Err(BackupError::NoBackup(_))));
    }

    #[test]
    fn only_the_last_runs_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..(KEEP + 3) {
            save(
                dir.path(),
                &[("microsip.ini", Some(format!("v{i}").as_bytes()))],
            )
            .unwrap();
        }
        let runs = list(dir.path()).unwrap();
        assert_eq!(runs.len(), KEEP);
        let newest = runs.last().unwrap().join("microsip.ini");
        assert_eq!(
            fs::read(newest).unwrap(),
            format!("v{}", KEEP + 2).as_bytes()
        );
    }
}
