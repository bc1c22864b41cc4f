//! Changing the user's files in place: `microsip.ini` and `Contacts.xml` as
//! the window (settings, contacts, window geometry) and the call log edit
//! them while the user or the provisioner may edit them too.
//!
//! Every change is a transaction: the file is read again just before the
//! change (so edits made meanwhile are kept), the change is applied to the
//! parsed document, the old bytes are kept as `<name>.bak`, and the new bytes
//! replace the file atomically (a temporary file in the same folder, flushed
//! to disk, renamed over it). A failure at any step leaves the file as it
//! was. Writers in this process are serialised by one mutex ([`lock`]), so
//! two edits never read the same old file and lose one another's change.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use thiserror::Error;

use super::{ContactList, ContactsError, IniDocument, IniError};

/// Why a file could not be changed. The file is unchanged in every case.
#[derive(Debug, Error)]
pub enum EditError {
    /// Reading, backing up or replacing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The ini is not text, or the edit cannot be written into it.
    #[error("{path}: {source}")]
    Ini {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: IniError,
    },
    /// The contacts file is not one MicroSIP can read (with line and column):
    /// it is never overwritten, the user's file may hold contacts we could
    /// not see.
    #[error("{path}: {source}")]
    Contacts {
        /// The file.
        path: PathBuf,
        /// Why (with line and column).
        #[source]
        source: ContactsError,
    },
    /// The change itself was refused (a validation message naming the field).
    #[error("{0}")]
    Rejected(String),
}

/// The one lock every writer of the user's files in this process holds
/// while it reads, changes and replaces a file.
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// Takes the process-wide write lock. Hold it across read, change and
/// replace of a user file (the call log does). Not re-entrant: do not call
/// [`update_ini`] or [`update_contacts`] while holding it.
pub fn lock() -> MutexGuard<'static, ()> {
    // A writer that panicked left no half-written file (the rename is the
    // last step), so the lock is still good to use.
    WRITE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads the ini at `path`; a missing file is a new, empty document (written
/// as MicroSIP writes new files: UTF-16 LE with BOM, CRLF).
pub fn load_ini(path: &Path) -> Result<IniDocument, EditError> {
    match read_existing(path)? {
        Some(bytes) => IniDocument::parse(&bytes).map_err(|source| EditError::Ini {
            path: path.to_owned(),
            source,
        }),
        None => Ok(IniDocument::new()),
    }
}

/// Reads the contacts at `path`; a missing file is an empty list.
pub fn load_contacts(path: &Path) -> Result<ContactList, EditError> {
    match read_existing(path)? {
        Some(bytes) => ContactList::parse(&bytes).map_err(|source| EditError::Contacts {
            path: path.to_owned(),
            source,
        }),
        None => Ok(ContactList::default()),
    }
}

/// Reads the ini at `path` as it is now (missing = new document), applies
/// `f`, and when the bytes changed keeps the old file as `<name>.bak` and
/// replaces the file atomically. Only the lines `f` changes through
/// [`IniDocument::set`]/[`IniDocument::remove`] differ; the encoding, line
/// ends and every other byte stay.
pub fn update_ini(
    path: &Path,
    f: impl FnOnce(&mut IniDocument) -> Result<(), IniError>,
) -> Result<(), EditError> {
    let _guard = lock();
    let old = read_existing(path)?;
    let mut doc = match &old {
        Some(bytes) => IniDocument::parse(bytes).map_err(|source| EditError::Ini {
            path: path.to_owned(),
            source,
        })?,
        None => IniDocument::new(),
    };
    f(&mut doc).map_err(|source| EditError::Ini {
        path: path.to_owned(),
        source,
    })?;
    commit(path, old.as_deref(), &doc.to_bytes())
}

/// Reads the contacts at `path` as they are now (missing = empty list),
/// applies `f`, and when the bytes changed keeps the old file as
/// `<name>.bak` and replaces the file atomically, written the way MicroSIP
/// writes it (unknown attributes kept). A file that cannot be read is an
/// error and is never overwritten.
pub fn update_contacts(
    path: &Path,
    f: impl FnOnce(&mut ContactList) -> Result<(), EditError>,
) -> Result<(), EditError> {
    let _guard = lock();
    let old = read_existing(path)?;
    let mut list = match &old {
        Some(bytes) => ContactList::parse(bytes).map_err(|source| EditError::Contacts {
            path: path.to_owned(),
            source,
        })?,
        None => ContactList::default(),
    };
    f(&mut list)?;
    commit(path, old.as_deref(), &list.to_bytes())
}

/// The backup of `path`: the same name with `.bak` added
/// (`microsip.ini.bak`, `Contacts.xml.bak`), in the same folder.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    path.with_file_name(name)
}

/// The file's bytes, `None` when it does not exist.
fn read_existing(path: &Path) -> Result<Option<Vec<u8>>, EditError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EditError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `new` over `path` unless it equals `old`, keeping `old` as the
/// backup first (so a failed replace still leaves both the file and a
/// backup of it).
fn commit(path: &Path, old: Option<&[u8]>, new: &[u8]) -> Result<(), EditError> {
    if old == Some(new) {
        return Ok(());
    }
    if let Some(old) = old {
        let backup = backup_path(path);
        // The backup holds the same secrets: it gets the file's permissions.
        write_atomically(&backup, old, path).map_err(|source| EditError::Io {
            path: backup,
            source,
        })?;
    }
    replace_atomically(path, new).map_err(|source| EditError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Distinguishes temporary files of one process (two threads may replace
/// different files of the same name, a file and its backup).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk
/// and renames it over `path` (atomic on one file system, on Windows too).
/// The old file's permissions carry over (the ini may hold passwords). On
/// failure the temporary file is removed and `path` is as it was.
pub fn replace_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(path, bytes, path)
}

/// [`replace_atomically`], with the permissions of `permissions_of` (when
/// it exists).
fn write_atomically(path: &Path, bytes: &[u8], permissions_of: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        if let Ok(meta) = std::fs::metadata(permissions_of) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Contact, Encoding};

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_ini_edit_changes_one_line_and_keeps_a_backup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("microsip.ini");
        let text = "[Settings]\r\n; mine\r\nautoAnswer=0\r\nlabel=Офис\r\n";
        let old = IniDocument::from_text(Encoding::Utf16LeBom, text).to_bytes();
        std::fs::write(&path, &old).expect("write");
        update_ini(&path, |doc| {
            doc.set("Settings", "autoAnswer", "1").map(drop)
        })
        .expect("edit");
        let new = std::fs::read(&path).expect("read");
        let expected = IniDocument::from_text(
            Encoding::Utf16LeBom,
            "[Settings]\r\n; mine\r\nautoAnswer=1\r\nlabel=Офис\r\n",
        )
        .to_bytes();
        assert_eq!(new, expected);
        assert_eq!(std::fs::read(backup_path(&path)).expect("bak"), old);
        assert_eq!(files_in(dir.path()), ["microsip.ini", "microsip.ini.bak"]);
    }

    #[test]
    fn an_edit_that_changes_nothing_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("microsip.ini");
        std::fs::write(&path, b"[Settings]\r\nautoAnswer=1\r\n").expect("write");
        update_ini(&path, |doc| {
            doc.set("Settings", "autoAnswer", "1").map(drop)
        })
        .expect("edit");
        assert_eq!(files_in(dir.path()), ["microsip.ini"]);
    }

    #[test]
    fn a_missing_ini_becomes_a_new_utf16_file_without_backup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("microsip.ini");
        update_ini(&path, |doc| doc.set("Settings", "mainX", "10").map(drop)).expect("edit");
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
        let doc = IniDocument::parse(&bytes).expect("parse");
        assert_eq!(doc.to_text(), "[Settings]\r\nmainX=10\r\n");
        assert_eq!(files_in(dir.path()), ["microsip.ini"]);
    }

    #[test]
    fn a_failed_edit_leaves_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("microsip.ini");
        std::fs::write(&path, b"[Settings]\r\n").expect("write");
        let err = update_ini(&path, |doc| doc.set("Settings", "x", "a\nb").map(drop))
            .expect_err("a line break cannot be stored");
        assert!(matches!(err, EditError::Ini { .. }), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), b"[Settings]\r\n");
        assert_eq!(files_in(dir.path()), ["microsip.ini"]);
    }

    #[test]
    fn malformed_contacts_are_never_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("Contacts.xml");
        let bad = b"<?xml version=\"1.0\"?>\r\n<contacts>\r\n<contact name=\"a\r\n";
        std::fs::write(&path, bad).expect("write");
        let err = update_contacts(&path, |list| {
            list.contacts.push(Contact::default());
            Ok(())
        })
        .expect_err("malformed");
        let EditError::Contacts { source, .. } = &err else {
            panic!("wrong error {err}");
        };
        assert!(source.line() >= 3, "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), bad);
        assert_eq!(files_in(dir.path()), ["Contacts.xml"]);
    }

    #[test]
    fn contacts_edits_keep_unknown_attributes_and_back_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("Contacts.xml");
        let old = "<?xml version=\"1.0\"?>\n<contacts>\n  <contact name=\"A\" number=\"1\" x-dept=\"ops\"/>\n</contacts>\n";
        std::fs::write(&path, old).expect("write");
        update_contacts(&path, |list| {
            list.contacts.push(Contact {
                name: "B".into(),
                number: "2".into(),
                ..Contact::default()
            });
            Ok(())
        })
        .expect("edit");
        let list = load_contacts(&path).expect("parse");
        assert_eq!(list.contacts.len(), 2);
        assert_eq!(list.contacts[0].extra, [("x-dept".into(), "ops".into())]);
        assert_eq!(
            std::fs::read(backup_path(&path)).expect("bak"),
            old.as_bytes()
        );
        let refused = update_contacts(&path, |_| Err(EditError::Rejected("no".into())));
        assert!(matches!(refused, Err(EditError::Rejected(_))));
    }

    #[cfg(unix)]
    #[test]
    fn permissions_carry_over() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("microsip.ini");
        std::fs::write(&path, b"[Settings]\r\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        update_ini(&path, |doc| doc.set("Settings", "a", "1").map(drop)).expect("edit");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&backup_path(&path)), 0o600);
    }
}
