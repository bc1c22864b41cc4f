//! Template bundles: a template set folder packed as a `.tar.gz`, the form
//! a template takes on a web server (`--template https://.../corp.tar.gz`).
//!
//! # Packing is deterministic
//!
//! The same folder always packs to the same bytes, so a bundle's hash and
//! signature change only when its content does (and an ETag computed from
//! the bytes stays put): entries are sorted by path (bytewise, `/`
//! separators), directories come as their own entries, every header has
//! mtime 0, uid/gid 0, no user or group name, mode 0644 (files) or 0755
//! (folders); the gzip header has mtime 0, no file name and OS byte 255
//! ("unknown"). Hidden files and folders (names starting with `.`, such as
//! `.git`) are left out; a symbolic link is an error (its target would not
//! travel).
//!
//! # Unpacking is defensive
//!
//! A bundle comes from the network, so [`unpack`] accepts only regular files
//! and folders with plain relative paths: no absolute path, no `..`, no
//! drive letter or backslash, no Windows device name, no symbolic or hard
//! link, no device or FIFO. It caps the number of entries, each entry's
//! size and the total size ([`Limits`]), and never writes outside the
//! destination nor over a file it already wrote.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::{Compression, GzBuilder};
use thiserror::Error;

/// Size limits for unpacking (and for packing, so a bundle that packs also unpacks).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries (files and folders).
    pub max_entries: usize,
    /// Largest single file, in bytes.
    pub max_entry_bytes: u64,
    /// Largest sum of file sizes, in bytes.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    /// Template sets are a few small text files; these leave room for
    /// large company directories without letting a hostile bundle fill the disk.
    fn default() -> Self {
        Limits {
            max_entries: 1000,
            max_entry_bytes: 8 << 20,
            max_total_bytes: 32 << 20,
        }
    }
}

/// Why a bundle could not be packed or unpacked.
#[derive(Debug, Error)]
pub enum BundleError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The archive is not a valid `.tar.gz`.
    #[error("not a valid .tar.gz bundle: {0}")]
    Corrupt(String),
    /// An entry is refused (its path or type is unsafe, or it is too big).
    #[error("refused entry {path:?}: {why}")]
    Refused {
        /// The entry's path as stored.
        path: String,
        /// Why it is refused.
        why: String,
    },
    /// The bundle as a whole is too big or has too many entries.
    #[error("bundle too large: {0}")]
    TooLarge(String),
    /// Something in the folder cannot be packed.
    #[error("{}: {why}", path.display())]
    Unpackable {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One thing to pack: its archive path and, for a file, its bytes.
struct Item {
    name: String,
    data: Option<Vec<u8>>,
}

/// Packs `dir` into a `.tar.gz` (see the module documentation).
pub fn pack(dir: &Path, limits: &Limits) -> Result<Vec<u8>, BundleError> {
    let mut items = Vec::new();
    collect(dir, "", &mut items)?;
    items.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    if items.len() > limits.max_entries {
        return Err(BundleError::TooLarge(format!(
            "{} entries, at most {}",
            items.len(),
            limits.max_entries
        )));
    }
    let mut total = 0u64;
    for item in &items {
        let size = item.data.as_ref().map_or(0, |d| d.len() as u64);
        total += size;
        if size > limits.max_entry_bytes {
            return Err(BundleError::Unpackable {
                path: dir.join(&item.name),
                why: format!("{size} bytes, at most {}", limits.max_entry_bytes),
            });
        }
    }
    if total > limits.max_total_bytes {
        return Err(BundleError::TooLarge(format!(
            "{total} bytes of files, at most {}",
            limits.max_total_bytes
        )));
    }
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    let archive_err = |e: io::Error| BundleError::Corrupt(e.to_string());
    for item in &items {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match &item.data {
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, &item.name, data.as_slice())
                    .map_err(archive_err)?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{}/", item.name), io::empty())
                    .map_err(archive_err)?;
            }
        }
    }
    let gz = tar.into_inner().map_err(archive_err)?;
    gz.finish().map_err(archive_err)
}

fn collect(dir: &Path, prefix: &str, items: &mut Vec<Item>) -> Result<(), BundleError> {
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(BundleError::Unpackable {
                path,
                why: "the name is not valid Unicode".to_owned(),
            });
        };
        if name.starts_with('.') {
            continue;
        }
        check_component(&name).map_err(|why| BundleError::Unpackable {
            path: path.clone(),
            why,
        })?;
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let archive_name = format!("{prefix}{name}");
        if meta.file_type().is_symlink() {
            return Err(BundleError::Unpackable {
                path,
                why: "a symbolic link cannot be packed (copy the file instead)".to_owned(),
            });
        } else if meta.is_dir() {
            items.push(Item {
                name: archive_name.clone(),
                data: None,
            });
            collect(&path, &format!("{archive_name}/"), items)?;
        } else if meta.is_file() {
            let data = std::fs::read(&path).map_err(io_err(&path))?;
            items.push(Item {
                name: archive_name,
                data: Some(data),
            });
        } else {
            return Err(BundleError::Unpackable {
                path,
                why: "only regular files and folders can be packed".to_owned(),
            });
        }
    }
    Ok(())
}

/// Windows device names, which open a device instead of a file.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Whether one path component is safe on every platform we write on.
fn check_component(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("empty, `.` or `..` path component".to_owned());
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '\\' | ':' | '<' | '>' | '"' | '|' | '?' | '*') || c.is_control())
    {
        return Err(format!("the character {c:?} is not allowed in a name"));
    }
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if RESERVED.contains(&stem.as_str()) {
        return Err(format!("{name:?} is a Windows device name"));
    }
    Ok(())
}

/// The relative path an entry may be written to, or why not.
fn safe_relative(raw: &str) -> Result<PathBuf, String> {
    if raw.starts_with('/') || raw.starts_with('\\') {
        return Err("absolute path".to_owned());
    }
    let mut out = PathBuf::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_str().ok_or("the name is not valid Unicode")?;
                check_component(part)?;
                out.push(part);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err("`..` leads outside the bundle".to_owned()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".to_owned()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("empty path".to_owned());
    }
    Ok(out)
}

/// Unpacks a bundle into `dest` (which must exist and should be empty);
/// returns the files written, relative to `dest`.
pub fn unpack(bytes: &[u8], dest: &Path, limits: &Limits) -> Result<Vec<PathBuf>, BundleError> {
    let corrupt = |e: io::Error| BundleError::Corrupt(e.to_string());
    let mut archive = tar::Archive::new(GzDecoder::new(bytes));
    let mut written = Vec::new();
    let mut total = 0u64;
    for (count, entry) in archive.entries().map_err(corrupt)?.enumerate() {
        if count >= limits.max_entries {
            return Err(BundleError::TooLarge(format!(
                "more than {} entries",
                limits.max_entries
            )));
        }
        let mut entry = entry.map_err(corrupt)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refused = |why: String| BundleError::Refused {
            path: raw.clone(),
            why,
        };
        let relative = safe_relative(&raw).map_err(refused)?;
        let target = dest.join(&relative);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(io_err(&target))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(corrupt)?;
                if size > limits.max_entry_bytes {
                    return Err(refused(format!(
                        "{size} bytes, at most {}",
                        limits.max_entry_bytes
                    )));
                }
                total += size;
                if total > limits.max_total_bytes {
                    return Err(BundleError::TooLarge(format!(
                        "more than {} bytes of files",
                        limits.max_total_bytes
                    )));
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                let mut data = Vec::with_capacity(size as usize);
                // The header's size bounds the reader; `take` guards anyway.
                (&mut entry)
                    .take(limits.max_entry_bytes + 1)
                    .read_to_end(&mut data)
                    .map_err(corrupt)?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| {
                        if e.kind() == io::ErrorKind::AlreadyExists {
                            refused("the bundle holds this path twice".to_owned())
                        } else {
                            io_err(&target)(e)
                        }
                    })?;
                file.write_all(&data).map_err(io_err(&target))?;
                written.push(relative);
            }
            other => {
                return Err(refused(format!(
                    "entry type {other:?} is not allowed (only files and folders)"
                )));
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn sample(dir: &Path) {
        write(dir, "template.toml", "name = \"corp\"\n");
        write(dir, "microsip.ini.j2", "[Settings]\n");
        write(dir, "extra/notes.txt", "hello");
        write(dir, ".git/config", "ignored");
    }

    /// A raw tar.gz with one entry whose name and type the test chooses,
    /// written byte by byte so the tar crate's own path checks cannot stop it.
    fn hand_made(name: &str, kind: u8, data: &[u8]) -> Vec<u8> {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..108].copy_from_slice(b"0000644\0");
        header[108..116].copy_from_slice(b"0000000\0");
        header[116..124].copy_from_slice(b"0000000\0");
        header[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        header[136..148].copy_from_slice(b"00000000000\0");
        header[156] = kind;
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut tar = header.to_vec();
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn the_same_folder_packs_to_the_same_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        // Same content, created in another order and at another time.
        sample(a.path());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        write(b.path(), "extra/notes.txt", "hello");
        write(b.path(), "microsip.ini.j2", "[Settings]\n");
        write(b.path(), "template.toml", "name = \"corp\"\n");
        let limits = Limits::default();
        let one = pack(a.path(), &limits).unwrap();
        assert_eq!(one, pack(a.path(), &limits).unwrap());
        assert_eq!(one, pack(b.path(), &limits).unwrap());
        write(b.path(), "template.toml", "name = \"corp2\"\n");
        assert_ne!(one, pack(b.path(), &limits).unwrap());
    }

    #[test]
    fn pack_then_unpack_gives_the_files_back_without_hidden_ones() {
        let src = tempfile::tempdir().unwrap();
        sample(src.path());
        let bytes = pack(src.path(), &Limits::default()).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let mut files = unpack(&bytes, dest.path(), &Limits::default()).unwrap();
        files.sort();
        assert_eq!(
            files,
            [
                PathBuf::from("extra").join("notes.txt"),
                PathBuf::from("microsip.ini.j2"),
                PathBuf::from("template.toml")
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dest.path().join("template.toml")).unwrap(),
            "name = \"corp\"\n"
        );
        assert!(!dest.path().join(".git").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_in_the_folder_is_not_packed() {
        let src = tempfile::tempdir().unwrap();
        sample(src.path());
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("link")).unwrap();
        let err = pack(src.path(), &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    #[test]
    fn unsafe_entries_are_refused_and_nothing_escapes() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("dest");
        for (name, kind, why) in [
            ("../evil.txt", b'0', "`..`"),
            ("a/../../evil.txt", b'0', "`..`"),
            ("/tmp/evil.txt", b'0', "absolute"),
            ("C:\\evil.txt", b'0', "not allowed"),
            ("link", b'2', "not allowed"),
            ("hard", b'1', "not allowed"),
            ("fifo", b'6', "not allowed"),
            ("NUL.txt", b'0', "device name"),
        ] {
            std::fs::create_dir_all(&dest).unwrap();
            let bytes = hand_made(name, kind, b"pwned");
            let err = unpack(&bytes, &dest, &Limits::default()).unwrap_err();
            assert!(
                matches!(&err, BundleError::Refused { why: w, .. } if w.contains(why)),
                "{name}: {err}"
            );
            assert!(!outer.path().join("evil.txt").exists());
            assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0, "{name}");
            std::fs::remove_dir_all(&dest).unwrap();
        }
    }

    #[test]
    fn size_and_count_limits_hold() {
        let src = tempfile::tempdir().unwrap();
        sample(src.path());
        write(src.path(), "big.txt", &"x".repeat(5000));
        let bytes = pack(src.path(), &Limits::default()).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let small = Limits {
            max_entry_bytes: 4096,
            ..Limits::default()
        };
        let err = unpack(&bytes, dest.path(), &small).unwrap_err();
        assert!(err.to_string().contains("big.txt"), "{err}");
        let few = Limits {
            max_entries: 2,
            ..Limits::default()
        };
        let dest = tempfile::tempdir().unwrap();
        assert!(matches!(
            unpack(&bytes, dest.path(), &few),
            Err(BundleError::TooLarge(_))
        ));
        let tight = Limits {
            max_total_bytes: 4000,
            ..Limits::default()
        };
        let dest = tempfile::tempdir().unwrap();
        assert!(matches!(
            unpack(&bytes, dest.path(), &tight),
            Err(BundleError::TooLarge(_))
        ));
        assert!(matches!(
            pack(src.path(), &tight),
            Err(BundleError::TooLarge(_))
        ));
    }

    #[test]
    fn garbage_is_not_a_bundle() {
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(
            b"<html>captive portal</html>",
            dest.path(),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, BundleError::Corrupt(_)), "{err}");
    }
}
