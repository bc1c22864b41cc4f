//! The Linux (Unix) control socket.
//!
//! `$XDG_RUNTIME_DIR/msipphone/ctl.sock`; without `XDG_RUNTIME_DIR`,
//! `<tmp>/msipphone-<uid>/ctl.sock`. The folder is created 0700 and must be
//! a real folder owned by us with no group/other access; the socket is
//! 0600; every accepted connection's peer uid (`SO_PEERCRED`) must be ours.
//! A lock file beside it (`ctl.lock`, `flock`) makes one phone per user:
//! whoever holds the lock owns the socket, and a socket file left by a
//! crashed phone (its lock died with it) is removed.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Bound, IpcError, PeerCheck};

/// The server's side of a connection.
pub type ServerStream = tokio::net::UnixStream;
/// The client's side of a connection.
pub type ClientStream = tokio::net::UnixStream;

/// Where the control socket of this user lives.
#[derive(Debug, Clone)]
pub struct Endpoint {
    dir: PathBuf,
    /// The folder is the temp-dir fallback, shared with other users: its
    /// ownership is checked by clients too.
    shared_parent: bool,
}

impl Endpoint {
    /// The socket's path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }

    fn lock(&self) -> PathBuf {
        self.dir.join("ctl.lock")
    }

    /// For messages.
    pub fn describe(&self) -> String {
        self.socket().display().to_string()
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// This user's endpoint (nothing is created).
pub fn endpoint() -> Result<Endpoint, IpcError> {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => Ok(Endpoint {
            dir: PathBuf::from(runtime).join("msipphone"),
            shared_parent: false,
        }),
        None => Ok(Endpoint {
            dir: std::env::temp_dir().join(format!("msipphone-{}", euid())),
            shared_parent: true,
        }),
    }
}

/// Checks that `dir` is a folder (not a symlink) owned by us, with no
/// access for group or others.
fn check_dir(dir: &Path) -> Result<(), IpcError> {
    let unsafe_dir = |why: String| IpcError::UnsafeDir {
        path: dir.display().to_string(),
        why,
    };
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| IpcError::io("cannot inspect", dir.display().to_string(), e))?;
    if !meta.file_type().is_dir() {
        return Err(unsafe_dir("not a folder (a symlink or a file)".into()));
    }
    if meta.uid() != euid() {
        return Err(unsafe_dir(format!(
            "owned by uid {}, not by us (uid {})",
            meta.uid(),
            euid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(unsafe_dir(format!(
            "mode {:o} lets other users in (0700 expected)",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

/// Takes the single-instance lock and the socket. Must run inside a tokio
/// runtime (the listener registers with it).
pub fn bind(endpoint: &Endpoint) -> Result<Bound, IpcError> {
    let dir = &endpoint.dir;
    let shown = || dir.display().to_string();
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(IpcError::io("cannot create", shown(), e)),
    }
    check_dir(dir)?;
    let lock_path = endpoint.lock();
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(|e| IpcError::io("cannot open", lock_path.display().to_string(), e))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(Bound::AlreadyRunning);
        }
        return Err(IpcError::io(
            "cannot lock",
            lock_path.display().to_string(),
            e,
        ));
    }
    let socket = endpoint.socket();
    // We hold the lock, so a socket file here is a crashed phone's; one
    // that still answers means a phone that lost its lock file: leave it.
    if fs::symlink_metadata(&socket).is_ok() {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(Bound::AlreadyRunning);
        }
        tracing::info!("removing the stale control socket {}", socket.display());
        fs::remove_file(&socket).map_err(|e| {
            IpcError::io("cannot remove the stale", socket.display().to_string(), e)
        })?;
    }
    let std_listener = std::os::unix::net::UnixListener::bind(&socket)
        .map_err(|e| IpcError::io("cannot listen on", socket.display().to_string(), e))?;
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o600))
        .map_err(|e| IpcError::io("cannot restrict", socket.display().to_string(), e))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| IpcError::io("cannot listen on", socket.display().to_string(), e))?;
    let listener = tokio::net::UnixListener::from_std(std_listener)
        .map_err(|e| IpcError::io("cannot listen on", socket.display().to_string(), e))?;
    Ok(Bound::Listening(Listener {
        listener,
        socket,
        _lock: lock,
    }))
}

/// The listening socket; dropping it removes the socket file (the lock is
/// released with the process's descriptor).
pub struct Listener {
    listener: tokio::net::UnixListener,
    socket: PathBuf,
    _lock: File,
}

impl Listener {
    /// The next connection and whether its peer is our user.
    pub async fn accept(&mut self) -> io::Result<(ServerStream, PeerCheck)> {
        let (stream, _) = self.listener.accept().await?;
        let check = match peer_uid(&stream) {
            Ok(uid) if uid == euid() => Ok(()),
            Ok(uid) => Err(format!(
                "the control socket serves uid {} only; the peer is uid {uid}",
                euid()
            )),
            Err(e) => Err(format!("cannot read the peer's credentials: {e}")),
        };
        Ok((stream, check))
    }

    /// For messages.
    pub fn describe(&self) -> String {
        self.socket.display().to_string()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.socket);
    }
}

/// The peer's effective uid, from the kernel (not from anything it sent).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(stream: &tokio::net::UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>())
        .map_err(|_| io::Error::other("ucred size"))?;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given;
    // the descriptor belongs to `stream` for the whole call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::addr_of_mut!(cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// The peer's effective uid, from the kernel (not from anything it sent).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid(stream: &tokio::net::UnixStream) -> io::Result<u32> {
    let mut uid: libc::uid_t = 0;
    let mut gid: libc::gid_t = 0;
    // SAFETY: both out-pointers are valid; the descriptor is `stream`'s.
    if unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}

/// Connects to the running phone of this user.
pub async fn connect(endpoint: &Endpoint) -> Result<ClientStream, IpcError> {
    let socket = endpoint.socket();
    let shown = socket.display().to_string();
    if endpoint.shared_parent {
        // In the shared temp folder anyone could have made our folder
        // first: talk only to a socket inside a folder of our own.
        match fs::symlink_metadata(&endpoint.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(IpcError::NotRunning(shown))
            }
            _ => check_dir(&endpoint.dir)?,
        }
    }
    match tokio::net::UnixStream::connect(&socket).await {
        Ok(stream) => Ok(stream),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Err(IpcError::NotRunning(shown))
        }
        Err(e) => Err(IpcError::io("cannot connect to", shown, e)),
    }
}
