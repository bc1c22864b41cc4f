//! The control channel, reachable by the phone's own user only, and by no
//! network: a Unix socket on Linux ([`unix`]), a named pipe on Windows
//! ([`windows`]). Both offer the same small API: [`endpoint`], [`bind`]
//! (which also makes the phone the user's single instance), [`connect`],
//! and a listener whose `accept` reports whether the peer is our user.

use std::io;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{bind, connect, endpoint, ClientStream, Endpoint, Listener, ServerStream};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{bind, connect, endpoint, ClientStream, Endpoint, Listener, ServerStream};

/// Why the control channel cannot be set up or reached.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// Nothing listens: no phone runs for this user.
    #[error("no running phone for this user (nothing answers on {0})")]
    NotRunning(String),
    /// The system refused access (another user's socket or pipe).
    #[error("permission denied on {path}: {error}")]
    PermissionDenied {
        /// The socket or pipe.
        path: String,
        /// The system's error (in the message, so not also a `source`).
        error: io::Error,
    },
    /// The folder meant for the socket is not ours alone.
    #[error("the control folder {path} is unsafe: {why}")]
    UnsafeDir {
        /// The folder.
        path: String,
        /// What is wrong (owner, mode, a symlink).
        why: String,
    },
    /// Another error from the system.
    #[error("{what} {path}: {error}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The socket, pipe or folder.
        path: String,
        /// The system's error (in the message, so not also a `source`).
        error: io::Error,
    },
}

impl IpcError {
    fn io(what: &'static str, path: impl Into<String>, error: io::Error) -> IpcError {
        if error.kind() == io::ErrorKind::PermissionDenied {
            return IpcError::PermissionDenied {
                path: path.into(),
                error,
            };
        }
        IpcError::Io {
            what,
            path: path.into(),
            error,
        }
    }
}

/// What [`bind`] found.
pub enum Bound {
    /// We serve the channel: this process is the user's phone.
    Listening(Listener),
    /// Another phone of this user serves it already.
    AlreadyRunning,
}

/// Whether a connection comes from the phone's user; the reason if not.
pub type PeerCheck = Result<(), String>;
