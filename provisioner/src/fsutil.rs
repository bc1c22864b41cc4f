//! Writing files as one transaction: every new file is first written in
//! full to a temporary file in its own folder and flushed to disk; only then
//! are they renamed over their targets. A failure before the renames leaves
//! every target untouched; a failure between renames puts back the files
//! already replaced. Nothing is ever half-written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A step of a transaction that failed, with the file it concerned.
#[derive(Debug, Error)]
#[error("{action} {}: {source}", path.display())]
pub struct FsError {
    /// What was being done ("cannot write", "cannot rename", ...).
    pub action: &'static str,
    /// The file concerned.
    pub path: PathBuf,
    /// The operating system's reason.
    #[source]
    pub source: io::Error,
}

fn fs_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> FsError + 'p {
    move |source| FsError {
        action,
        path: path.to_owned(),
        source,
    }
}

/// One file waiting to be renamed into place (or removed, when `temp` is
/// `None`).
#[derive(Debug)]
struct Staged {
    target: PathBuf,
    temp: Option<PathBuf>,
    /// What the target held before, to put back if a later rename fails;
    /// `None` when it did not exist.
    previous: Option<Vec<u8>>,
    /// The target's permissions before, restored with its bytes.
    permissions: Option<fs::Permissions>,
}

/// Files written to temporaries and renamed into place together.
/// Dropping an uncommitted transaction removes its temporary files.
#[derive(Debug, Default)]
pub struct Transaction {
    staged: Vec<Staged>,
    /// Whether the test-only fault switch applies (the profile writes of
    /// apply and check, not backups or handler files).
    faults: bool,
    /// Whether files and folders are flushed to disk one by one; off when
    /// the caller flushes the whole file system once at the end
    /// ([`sync_file_system`]).
    deferred_sync: bool,
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// A transaction the test-only fault switch (`MSIPPROV_TEST_FAULT`,
    /// debug builds) can break: the one that writes a profile.
    pub fn with_fault_injection() -> Self {
        Self {
            staged: Vec::new(),
            faults: true,
            deferred_sync: false,
        }
    }

    /// Leaves flushing to the caller, who calls [`sync_file_system`] once
    /// after many transactions (a bulk rollout writing a fresh tree: one
    /// flush instead of four per profile). The renames stay atomic: a
    /// reader sees the old file or the new one, never a part. Only where
    /// that one flush exists; elsewhere files are flushed as usual.
    pub fn deferring_sync(mut self) -> Self {
        self.deferred_sync = cfg!(target_os = "linux");
        self
    }

    /// Writes `bytes` to a temporary file beside `target` and flushes it to
    /// disk. `private` files (they may hold passwords) are readable by the
    /// owner only.
    pub fn stage(&mut self, target: &Path, bytes: &[u8], private: bool) -> Result<(), FsError> {
        let dir = parent_dir(target);
        let folder = ensure_dir(dir).map_err(fs_err("cannot create the folder", dir))?;
        let existing = read_existing(target).map_err(fs_err("cannot read", target))?;
        let temp = temp_path(target);
        let write = || -> io::Result<()> {
            let mut file = create_new(&temp, private)?;
            file.write_all(bytes)?;
            match &existing {
                Some((_, meta)) => keep_owner_and_mode(&file, meta)?,
                // A new file in someone's profile is theirs, like the folder.
                None => give_to_owner_of(&file, &folder)?,
            }
            if self.deferred_sync {
                Ok(())
            } else {
                file.sync_all()
            }
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&temp);
            return Err(fs_err("cannot write", &temp)(e));
        }
        let (previous, permissions) = match existing {
            Some((bytes, meta)) => (Some(bytes), Some(meta.permissions())),
            None => (None, None),
        };
        self.staged.push(Staged {
            target: target.to_owned(),
            temp: Some(temp),
            previous,
            permissions,
        });
        Ok(())
    }

    /// Removes `target` at commit time (nothing happens if it is absent).
    pub fn stage_removal(&mut self, target: &Path) -> Result<(), FsError> {
        let previous = match fs::read(target) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(fs_err("cannot read", target)(e)),
        };
        self.staged.push(Staged {
            target: target.to_owned(),
            temp: None,
            previous,
            permissions: fs::metadata(target).ok().map(|m| m.permissions()),
        });
        Ok(())
    }

    /// Renames every staged file over its target. If a rename fails, the
    /// targets already replaced get their previous bytes back and the
    /// remaining temporaries are removed.
    pub fn commit(mut self) -> Result<(), FsError> {
        let staged = std::mem::take(&mut self.staged);
        for (i, file) in staged.iter().enumerate() {
            let injected = if self.faults {
                fault::check("rename", i, None)
            } else {
                Ok(())
            };
            let renamed = injected.and_then(|()| match &file.temp {
                Some(temp) => fs::rename(temp, &file.target),
                None => fs::remove_file(&file.target),
            });
            if let Err(e) = renamed {
                restore(&staged[..i]);
                for temp in staged[i..].iter().filter_map(|s| s.temp.as_ref()) {
                    let _ = fs::remove_file(temp);
                }
                return Err(fs_err("cannot replace", &file.target)(e));
            }
        }
        let mut synced: Vec<&Path> = Vec::new();
        if self.deferred_sync {
            return Ok(());
        }
        for dir in staged.iter().map(|s| parent_dir(&s.target)) {
            if !synced.contains(&dir) {
                sync_dir(dir);
                synced.push(dir);
            }
        }
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        for temp in self.staged.iter().filter_map(|s| s.temp.as_ref()) {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Puts back what replaced files held; best effort, as it runs on the
/// error path already.
fn restore(done: &[Staged]) {
    for file in done.iter().rev() {
        let result = match &file.previous {
            // Written private first, then given back its own permissions.
            Some(bytes) => {
                write_atomic(&file.target, bytes, true).and_then(|()| match &file.permissions {
                    Some(p) => fs::set_permissions(&file.target, p.clone())
                        .map_err(fs_err("cannot restore the permissions of", &file.target)),
                    None => Ok(()),
                })
            }
            None => fs::remove_file(&file.target).map_err(fs_err("cannot remove", &file.target)),
        };
        if let Err(e) = result {
            tracing::error!("could not restore {}: {e}", file.target.display());
        }
    }
}

/// Flushes everything written to the file system holding `dir` (the end of
/// a run whose transactions deferred their flushes). Linux only: elsewhere
/// nothing was deferred.
pub fn sync_file_system(dir: &Path) -> Result<(), FsError> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let folder = File::open(dir).map_err(fs_err("cannot open", dir))?;
        // SAFETY: syncfs takes a file descriptor we own for the call.
        if unsafe { libc::syncfs(folder.as_raw_fd()) } != 0 {
            return Err(fs_err("cannot flush to disk", dir)(
                io::Error::last_os_error(),
            ));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    Ok(())
}

/// Writes one file through a temporary file and a rename.
pub fn write_atomic(target: &Path, bytes: &[u8], private: bool) -> Result<(), FsError> {
    let mut tx = Transaction::new();
    tx.stage(target, bytes, private)?;
    tx.commit()
}

pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `.<name>.msipprov-<pid>-<n>.tmp` beside the target: same folder, so the
/// rename never crosses file systems; hidden and clearly ours.
pub(crate) fn temp_path(target: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = PID.get_or_init(std::process::id);
    parent_dir(target).join(format!(".{name}.msipprov-{pid}-{n}.tmp"))
}

/// Whether `path` is one of our temporary files.
pub fn is_temp_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.contains(".msipprov-") && n.ends_with(".tmp"))
}

/// A replaced file keeps its owner and mode: an admin fixing a fleet of
/// profiles (as root) must not leave users unable to read their own files.
/// Only root can give a file away; for anyone else the file is theirs
/// already, so a refused chown is not an error.
#[cfg(unix)]
fn keep_owner_and_mode(file: &File, old: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::{fchown, MetadataExt, PermissionsExt};
    if let Err(e) = fchown(file, Some(old.uid()), Some(old.gid())) {
        if e.kind() != io::ErrorKind::PermissionDenied {
            return Err(e);
        }
    }
    file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))
}

/// Gives a new file to the owner of `folder` (only root can; others own it
/// already).
#[cfg(unix)]
fn give_to_owner_of(file: &File, folder: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::{fchown, MetadataExt};
    if owned_by_us(folder) {
        return Ok(()); // what we create is ours already
    }
    match fchown(file, Some(folder.uid()), Some(folder.gid())) {
        Err(e) if e.kind() != io::ErrorKind::PermissionDenied => Err(e),
        _ => Ok(()),
    }
}

/// Whether what this process creates would get `meta`'s owner and group
/// anyway (then a chown is a wasted system call per file: bulk writes
/// hundreds of thousands).
#[cfg(unix)]
pub(crate) fn owned_by_us(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    static US: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    let (uid, gid) = *US.get_or_init(|| unsafe { (libc::geteuid(), libc::getegid()) });
    meta.uid() == uid && meta.gid() == gid
}

/// The target's bytes and metadata, from one open (`None`: no file).
fn read_existing(target: &Path) -> io::Result<Option<(Vec<u8>, fs::Metadata)>> {
    use std::io::Read;
    let mut file = match File::open(target) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(Some((bytes, meta)))
}

/// Creates `dir` and its missing parents, each owned like the folder it is
/// created in (so `.msipprov` in a user's profile is the user's, even when
/// root made it). Returns the folder's metadata.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<fs::Metadata> {
    if let Ok(meta) = fs::metadata(dir) {
        if meta.is_dir() {
            return Ok(meta);
        }
    }
    let parent = match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => Some(ensure_dir(parent)?),
        None => None,
    };
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    #[cfg(unix)]
    if let Some(folder) = parent.filter(|p| !owned_by_us(p)) {
        use std::os::unix::fs::{chown, MetadataExt};
        match chown(dir, Some(folder.uid()), Some(folder.gid())) {
            Err(e) if e.kind() != io::ErrorKind::PermissionDenied => return Err(e),
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = parent;
    fs::metadata(dir)
}

/// On Windows a new file inherits the folder's ACL, which in a profile
/// folder is the user's; nothing to copy.
#[cfg(not(unix))]
fn keep_owner_and_mode(_: &File, _: &fs::Metadata) -> io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn give_to_owner_of(_: &File, _: &fs::Metadata) -> io::Result<()> {
    Ok(())
}

pub(crate) fn create_new(path: &Path, private: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    // On Windows the profile folder's ACL (the user and SYSTEM) protects
    // the file; `private` needs nothing more there.
    #[cfg(not(unix))]
    let _ = private;
    options.open(path)
}

/// Flushes a folder's entries, so a rename survives a power cut (POSIX);
/// Windows has no such call and needs none.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Test-only switches that make step N of a write fail, so tests can show
/// that a failure half-way loses nothing. Only debug builds read them:
/// `MSIPPROV_TEST_FAULT=rename:N` (the N-th rename of a transaction),
/// `new-folder:N[@NAME]` (step N of staging a new profile folder: 0 the
/// first file, the number of files the rename; only for the folder named
/// NAME).
pub(crate) mod fault {
    use std::io;
    use std::path::Path;

    /// Fails when the switch names `kind`, `step` and (if it names one)
    /// the file name of `target`.
    pub fn check(kind: &str, step: usize, target: Option<&Path>) -> io::Result<()> {
        if !cfg!(debug_assertions) {
            return Ok(());
        }
        let Ok(spec) = std::env::var("MSIPPROV_TEST_FAULT") else {
            return Ok(());
        };
        let Some(rest) = spec
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            return Ok(());
        };
        let (n, name) = match rest.split_once('@') {
            Some((n, name)) => (n, Some(name)),
            None => (rest, None),
        };
        let name_matches =
            name.is_none_or(|name| target.and_then(Path::file_name).is_some_and(|f| f == name));
        if n.parse::<usize>().ok() == Some(step) && name_matches {
            return Err(io::Error::other("injected fault (MSIPPROV_TEST_FAULT)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn commit_replaces_all_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "old").unwrap();
        let mut tx = Transaction::new();
        tx.stage(&a, b"new a", false).unwrap();
        tx.stage(&dir.path().join("sub/b"), b"new b", true).unwrap();
        tx.commit().unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"new a");
        assert_eq!(fs::read(dir.path().join("sub/b")).unwrap(), b"new b");
        assert_eq!(listing(dir.path()), vec!["a", "sub"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("sub/b"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private files are the owner's only");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_owner_and_mode() {
        use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "old").unwrap();
        fs::set_permissions(&a, fs::Permissions::from_mode(0o640)).unwrap();
        // As root (CI), give it to `nobody` first, as a user's profile file.
        let root = fs::metadata(&a).unwrap().uid() == 0;
        if root {
            chown(&a, Some(65534), Some(65534)).unwrap();
        }
        write_atomic(&a, b"new", true).unwrap();
        let meta = fs::metadata(&a).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        if root {
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
        }
        assert_eq!(fs::read(&a).unwrap(), b"new");
        // New files and folders in someone's folder become theirs.
        let profile = dir.path().join("profile");
        fs::create_dir(&profile).unwrap();
        if root {
            chown(&profile, Some(65534), Some(65534)).unwrap();
        }
        write_atomic(&profile.join(".msipprov/state.json"), b"{}", true).unwrap();
        if root {
            for p in [
                profile.join(".msipprov"),
                profile.join(".msipprov/state.json"),
            ] {
                let m = fs::metadata(&p).unwrap();
                assert_eq!((m.uid(), m.gid()), (65534, 65534), "{}", p.display());
            }
        }
    }

    #[test]
    fn a_dropped_transaction_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "old").unwrap();
        {
            let mut tx = Transaction::new();
            tx.stage(&a, b"new", false).unwrap();
            assert_eq!(listing(dir.path()).len(), 2);
        }
        assert_eq!(listing(dir.path()), vec!["a"]);
        assert_eq!(fs::read(&a).unwrap(), b"old");
    }

    #[test]
    fn a_failed_rename_puts_back_what_was_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, "old a").unwrap();
        let mut tx = Transaction::new();
        tx.stage(&a, b"new a", false).unwrap();
        tx.stage(&b, b"new b", false).unwrap();
        // Make the second rename fail: its target is a non-empty folder.
        fs::create_dir(&b).unwrap();
        fs::write(b.join("x"), "x").unwrap();
        let err = tx.commit().unwrap_err();
        assert!(err.to_string().starts_with("cannot replace"), "{err}");
        assert_eq!(fs::read(&a).unwrap(), b"old a");
        assert!(listing(dir.path()).iter().all(|n| !n.ends_with(".tmp")));
        assert!(is_temp_file(Path::new(".a.msipprov-1-0.tmp")));
        assert!(!is_temp_file(Path::new("a")));
    }
}
