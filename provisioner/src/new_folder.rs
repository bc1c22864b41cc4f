//! Writing a folder that does not exist yet as a whole: its files are
//! written into a hidden staging folder beside it, which is then renamed
//! into place in one step. A reader (or a crash) sees the whole folder or
//! none of it, for a fraction of the system calls of one transaction per
//! file: nothing inside a folder nobody else can see needs a temporary file
//! of its own. This is how `bulk` writes fresh profiles; a folder that
//! exists goes through [`crate::fsutil::Transaction`] and its merge instead.
//!
//! The files are not flushed one by one: the caller flushes the file system
//! once after the last folder ([`crate::fsutil::sync_file_system`]), as
//! bulk does with its transactions.
//!
//! Staging folders are named like the transaction's temporary files,
//! `.<name>.msipprov-<pid>-<n>.tmp` ([`crate::fsutil::is_temp_file`]); a
//! process killed mid-way leaves one behind, which [`scan`] removes once
//! that process is gone.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::fsutil::{self, FsError};

/// Why a new folder was not put in place.
#[derive(Debug, Error)]
pub enum NewFolderError {
    /// The target appeared since the caller found it missing: nothing was
    /// replaced; what is there now needs the caller's merge.
    #[error("{} exists already", .0.display())]
    Exists(PathBuf),
    /// Writing failed; nothing is left behind.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Whether this platform can put a whole folder in place without ever
/// replacing one (Linux's `renameat2(RENAME_NOREPLACE)`, or POSIX `rename`,
/// which refuses a folder that is not empty). Elsewhere callers write file
/// by file.
pub const SUPPORTED: bool = cfg!(unix);

/// A folder being written; it appears at its target on [`NewFolder::commit`].
/// Dropped uncommitted, it removes everything it wrote.
#[derive(Debug)]
pub struct NewFolder {
    target: PathBuf,
    staging: PathBuf,
    /// Who new files and folders are given to: the owner of the parent
    /// folder when that is not us (root writing into a user's folder).
    owner: Option<Owner>,
    /// Subfolders made so far, relative to the staging folder.
    made: Vec<PathBuf>,
    /// Files written so far (the test-only fault switch counts them).
    files: usize,
    committed: bool,
}

#[derive(Debug, Clone, Copy)]
struct Owner {
    #[cfg_attr(not(unix), allow(dead_code))]
    uid: u32,
    #[cfg_attr(not(unix), allow(dead_code))]
    gid: u32,
}

impl NewFolder {
    /// Starts the folder `target` (its parents are created as needed, owned
    /// like the folder they are created in). Nothing appears at `target`
    /// before [`NewFolder::commit`].
    pub fn create(target: &Path) -> Result<Self, FsError> {
        let parent = fsutil::parent_dir(target);
        let mut attempts = 0;
        loop {
            let staging = fsutil::temp_path(target);
            match fs::create_dir(&staging) {
                Ok(()) => {
                    let owner =
                        parent_owner(parent).map_err(fs_err("cannot read the owner of", parent))?;
                    let folder = Self {
                        target: target.to_owned(),
                        staging,
                        owner,
                        made: Vec::new(),
                        files: 0,
                        committed: false,
                    };
                    if let Some(owner) = owner {
                        chown_path(&folder.staging, owner)
                            .map_err(fs_err("cannot give away", &folder.staging))?;
                    }
                    return Ok(folder);
                }
                // The first folder of a tree: make its parents, once.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts == 0 => {
                    fsutil::ensure_dir(parent)
                        .map_err(fs_err("cannot create the folder", parent))?;
                }
                // A leftover of an earlier process that had our pid: take
                // the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {}
                Err(e) => return Err(fs_err("cannot create the folder", &staging)(e)),
            }
            attempts += 1;
        }
    }

    /// Writes `bytes` to `relative` (a path inside the folder, whose
    /// subfolders are made as needed). `private` files (they may hold
    /// passwords) are readable by the owner only.
    pub fn write(&mut self, relative: &Path, bytes: &[u8], private: bool) -> Result<(), FsError> {
        let path = self.staging.join(relative);
        fsutil::fault::check("new-folder", self.files, Some(&self.target))
            .map_err(fs_err("cannot write", &path))?;
        if let Some(sub) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !self.made.iter().any(|m| m == sub) {
                let dir = self.staging.join(sub);
                fs::create_dir_all(&dir).map_err(fs_err("cannot create the folder", &dir))?;
                if let Some(owner) = self.owner {
                    chown_path(&dir, owner).map_err(fs_err("cannot give away", &dir))?;
                }
                self.made.push(sub.to_owned());
            }
        }
        let write = || -> io::Result<()> {
            let mut file = fsutil::create_new(&path, private)?;
            file.write_all(bytes)?;
            match self.owner {
                Some(owner) => chown_file(&file, owner),
                None => Ok(()),
            }
        };
        write().map_err(fs_err("cannot write", &path))?;
        self.files += 1;
        Ok(())
    }

    /// Puts the folder in place. If the target exists by now, nothing is
    /// replaced ([`NewFolderError::Exists`]) and the staging folder is
    /// removed.
    pub fn commit(mut self) -> Result<(), NewFolderError> {
        fsutil::fault::check("new-folder", self.files, Some(&self.target))
            .map_err(fs_err("cannot rename", &self.staging))?;
        match rename_no_replace(&self.staging, &self.target) {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(e) if is_exists(&e) => Err(NewFolderError::Exists(self.target.clone())),
            Err(e) => Err(fs_err("cannot rename", &self.staging)(e).into()),
        }
    }
}

impl Drop for NewFolder {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = fs::remove_dir_all(&self.staging) {
                tracing::warn!("cannot remove {}: {e}", self.staging.display());
            }
        }
    }
}

fn fs_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> FsError + 'p {
    move |source| FsError {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The owner new entries in `parent` must get, when not us. Bulk writes
/// thousands of folders into one parent: it is looked up once per thread.
#[cfg(unix)]
fn parent_owner(parent: &Path) -> io::Result<Option<Owner>> {
    use std::cell::RefCell;
    use std::os::unix::fs::MetadataExt;
    thread_local! {
        static LAST: RefCell<Option<(PathBuf, Option<Owner>)>> = const { RefCell::new(None) };
    }
    if let Some(owner) = LAST.with_borrow(|last| {
        last.as_ref()
            .filter(|(p, _)| p == parent)
            .map(|(_, owner)| *owner)
    }) {
        return Ok(owner);
    }
    let meta = fs::metadata(parent)?;
    let owner = (!fsutil::owned_by_us(&meta)).then(|| Owner {
        uid: meta.uid(),
        gid: meta.gid(),
    });
    LAST.with_borrow_mut(|last| *last = Some((parent.to_owned(), owner)));
    Ok(owner)
}

#[cfg(not(unix))]
fn parent_owner(_: &Path) -> io::Result<Option<Owner>> {
    Ok(None)
}

/// Only root can give a file away; for anyone else it is theirs already.
#[cfg(unix)]
fn chown_path(path: &Path, owner: Owner) -> io::Result<()> {
    match std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid)) {
        Err(e) if e.kind() != io::ErrorKind::PermissionDenied => Err(e),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn chown_file(file: &File, owner: Owner) -> io::Result<()> {
    match std::os::unix::fs::fchown(file, Some(owner.uid), Some(owner.gid)) {
        Err(e) if e.kind() != io::ErrorKind::PermissionDenied => Err(e),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn chown_path(_: &Path, _: Owner) -> io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn chown_file(_: &File, _: Owner) -> io::Result<()> {
    Ok(())
}

/// Whether a rename failed because something is at the target already
/// (`rename` says so with ENOTEMPTY, or EEXIST, for a folder that is not
/// empty).
fn is_exists(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ENOTEMPTY) {
        return true;
    }
    e.kind() == io::ErrorKind::AlreadyExists
}

/// Renames `from` to `to` unless `to` exists. Linux says so atomically
/// (`RENAME_NOREPLACE`); where the file system cannot, POSIX `rename`
/// still refuses a folder that is not empty or a file, so at worst an
/// empty folder created in between is replaced, which loses nothing.
#[cfg(target_os = "linux")]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => fs::rename(from, to),
        _ => Err(e),
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)
}

/// Windows' rename may replace a folder; [`SUPPORTED`] is false there and
/// callers never get here.
#[cfg(not(unix))]
fn rename_no_replace(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// What [`scan`] found in a folder.
#[derive(Debug, Default)]
pub struct Scan {
    /// The names of the folders in it (symbolic links to folders included),
    /// staging folders excluded.
    pub folders: HashSet<OsString>,
    /// How many staging folders of processes no longer running it removed.
    pub removed: usize,
}

/// Lists the folders in `parent` (one pass instead of asking for each
/// profile whether it exists) and removes the staging folders that
/// processes no longer running left behind (killed mid-way). A staging
/// folder of a running process is left alone: it is about to be renamed or
/// removed. A `parent` that does not exist holds nothing.
pub fn scan(parent: &Path) -> io::Result<Scan> {
    let mut scan = Scan::default();
    let entries = match fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(scan),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let kind = entry.file_type()?;
        match name.to_str().and_then(staging_pid) {
            Some(pid) if kind.is_dir() => {
                if process_runs(pid) {
                    continue;
                }
                match fs::remove_dir_all(entry.path()) {
                    Ok(()) => {
                        tracing::info!(
                            "removed {}, left by an interrupted run",
                            entry.path().display()
                        );
                        scan.removed += 1;
                    }
                    Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
                }
            }
            _ if kind.is_dir() || (kind.is_symlink() && entry.path().is_dir()) => {
                scan.folders.insert(name);
            }
            _ => {}
        }
    }
    Ok(scan)
}

/// The process id in a staging folder's name `.<name>.msipprov-<pid>-<n>.tmp`.
fn staging_pid(name: &str) -> Option<u32> {
    if !fsutil::is_temp_file(Path::new(name)) {
        return None;
    }
    let rest = &name[name.rfind(".msipprov-")? + ".msipprov-".len()..];
    let (pid, n) = rest.strip_suffix(".tmp")?.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether a process with this id runs (on this machine).
#[cfg(unix)]
fn process_runs(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without a cheap check, every staging folder is assumed alive (left).
#[cfg(not(unix))]
fn process_runs(_: u32) -> bool {
    true
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
    fn a_new_folder_appears_whole_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out/alice");
        let mut folder = NewFolder::create(&target).unwrap();
        folder
            .write(Path::new("microsip.ini"), b"ini", true)
            .unwrap();
        folder
            .write(Path::new(".msipprov/state.json"), b"{}", true)
            .unwrap();
        folder
            .write(Path::new("Contacts.xml"), b"xml", false)
            .unwrap();
        // Nothing is visible under the target's name before the commit.
        assert!(!target.exists());
        assert_eq!(listing(&dir.path().join("out")).len(), 1);
        folder.commit().unwrap();
        assert_eq!(listing(&dir.path().join("out")), vec!["alice"]);
        assert_eq!(
            listing(&target),
            vec![".msipprov", "Contacts.xml", "microsip.ini"]
        );
        assert_eq!(
            fs::read(target.join(".msipprov/state.json")).unwrap(),
            b"{}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| fs::metadata(target.join(p)).unwrap().permissions().mode();
            assert_eq!(mode("microsip.ini") & 0o077, 0, "private");
            assert_eq!(mode(".msipprov/state.json") & 0o077, 0, "private");
        }
    }

    #[test]
    fn an_uncommitted_folder_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("alice");
        {
            let mut folder = NewFolder::create(&target).unwrap();
            folder.write(Path::new("a/b"), b"x", false).unwrap();
        }
        assert!(listing(dir.path()).is_empty());
    }

    #[test]
    fn an_existing_target_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("alice");
        let mut folder = NewFolder::create(&target).unwrap();
        folder
            .write(Path::new("microsip.ini"), b"new", true)
            .unwrap();
        // Appears meanwhile, with a user's file in it.
        fs::create_dir(&target).unwrap();
        fs::write(target.join("microsip.ini"), b"user's").unwrap();
        let err = folder.commit().unwrap_err();
        assert!(matches!(err, NewFolderError::Exists(_)), "{err}");
        assert_eq!(fs::read(target.join("microsip.ini")).unwrap(), b"user's");
        assert_eq!(listing(dir.path()), vec!["alice"]);
        // A file in the way is not replaced either.
        let file_target = dir.path().join("bob");
        fs::write(&file_target, b"a file").unwrap();
        let folder = NewFolder::create(&file_target).unwrap();
        assert!(folder.commit().is_err());
        assert_eq!(fs::read(&file_target).unwrap(), b"a file");
        assert_eq!(listing(dir.path()), vec!["alice", "bob"]);
    }

    #[test]
    fn stale_staging_folders_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A process that ran and is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".alice.msipprov-{dead}-0.tmp"));
        fs::create_dir_all(stale.join(".msipprov")).unwrap();
        fs::write(stale.join("microsip.ini"), b"half").unwrap();
        let live = dir
            .path()
            .join(format!(".bob.msipprov-{}-7.tmp", std::process::id()));
        fs::create_dir(&live).unwrap();
        fs::create_dir(dir.path().join("carol")).unwrap();
        let file = format!(".x.msipprov-{dead}-0.tmp");
        fs::write(dir.path().join(&file), b"a file").unwrap();
        let found = scan(dir.path()).unwrap();
        assert_eq!(found.removed, 1);
        assert_eq!(
            found.folders.into_iter().collect::<Vec<_>>(),
            vec![OsString::from("carol")]
        );
        assert_eq!(
            listing(dir.path()),
            vec![
                format!(".bob.msipprov-{}-7.tmp", std::process::id()),
                file,
                "carol".to_owned()
            ]
        );
        let none = scan(&dir.path().join("none")).unwrap();
        assert!(none.folders.is_empty() && none.removed == 0);
        assert_eq!(staging_pid(".a.b.msipprov-12-3.tmp"), Some(12));
        assert_eq!(staging_pid("a.msipprov-12-3.tmp"), None);
        assert_eq!(staging_pid(".a.msipprov-x-3.tmp"), None);
    }
}
