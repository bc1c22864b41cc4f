//! The Windows control pipe: `\\.\pipe\msipphone-<user SID>`.
//!
//! The pipe carries a protected DACL granting access to the current user's
//! SID only (not the default, which lets Everyone read), refuses remote
//! clients, and is created as the first instance: when the name exists,
//! another phone of this user runs. Both ends also check who the other end
//! runs as (the client's and the server's process token user), so a pipe
//! squatted by another user under our name is not talked to.

use std::ffi::c_void;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::time::{Duration, Instant};

use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, PipeMode, ServerOptions,
};
use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, GetNamedPipeServerProcessId};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::{Bound, IpcError, PeerCheck};

/// The server's side of a connection.
pub type ServerStream = NamedPipeServer;
/// The client's side of a connection.
pub type ClientStream = NamedPipeClient;

const ERROR_FILE_NOT_FOUND: i32 = 2;
const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_PIPE_BUSY: i32 = 231;

/// How long a client waits for a free pipe instance.
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// Where the control pipe of this user lives.
#[derive(Debug, Clone)]
pub struct Endpoint {
    name: String,
    sid: String,
}

impl Endpoint {
    /// For messages.
    pub fn describe(&self) -> String {
        self.name.clone()
    }
}

/// This user's endpoint (nothing is created).
pub fn endpoint() -> Result<Endpoint, IpcError> {
    let sid = own_sid().map_err(|e| IpcError::io("cannot read the user of", "this process", e))?;
    Ok(Endpoint {
        name: format!(r"\\.\pipe\msipphone-{sid}"),
        sid,
    })
}

/// A security descriptor from SDDL, freed on drop.
struct Descriptor(*mut c_void);

// SAFETY: the descriptor is written once by the system, then only read
// (by CreateNamedPipe) and finally freed by Drop; nothing aliases it.
unsafe impl Send for Descriptor {}
// SAFETY: as above: shared access is read-only.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// Full access for `sid` alone; `P` protects the DACL from inherited
    /// entries.
    fn owner_only(sid: &str) -> io::Result<Descriptor> {
        let sddl: Vec<u16> = format!("D:P(A;;GA;;;{sid})")
            .encode_utf16()
            .chain([0])
            .collect();
        let mut sd: *mut c_void = std::ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated and outlives the call; `sd`
        // receives a LocalAlloc'd descriptor that Drop frees.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 || sd.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Descriptor(sd))
    }

    fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: u32::try_from(std::mem::size_of::<SECURITY_ATTRIBUTES>()).unwrap_or(24),
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        }
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptor...; freed once.
        unsafe {
            LocalFree(self.0);
        }
    }
}

fn create(name: &str, descriptor: &Descriptor, first: bool) -> io::Result<NamedPipeServer> {
    let mut attributes = descriptor.attributes();
    let mut options = ServerOptions::new();
    // pipe_mode before the rest: it resets nothing else, but keep the
    // order tokio documents.
    options
        .pipe_mode(PipeMode::Byte)
        .first_pipe_instance(first)
        .reject_remote_clients(true);
    // SAFETY: `attributes` points at a live descriptor for the whole call.
    unsafe {
        options.create_with_security_attributes_raw(
            name,
            std::ptr::addr_of_mut!(attributes).cast::<c_void>(),
        )
    }
}

/// Creates the first pipe instance: this process becomes the user's phone.
pub fn bind(endpoint: &Endpoint) -> Result<Bound, IpcError> {
    // FILE_FLAG_FIRST_PIPE_INSTANCE (below) is the real guard; Wine does
    // not enforce it, so a pipe that already answers counts as a phone too.
    match ClientOptions::new().open(&endpoint.name) {
        Ok(_) => return Ok(Bound::AlreadyRunning),
        Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => return Ok(Bound::AlreadyRunning),
        Err(_) => {}
    }
    let descriptor = Descriptor::owner_only(&endpoint.sid)
        .map_err(|e| IpcError::io("cannot build the DACL for", endpoint.describe(), e))?;
    match create(&endpoint.name, &descriptor, true) {
        Ok(next) => Ok(Bound::Listening(Listener {
            name: endpoint.name.clone(),
            sid: endpoint.sid.clone(),
            descriptor,
            next,
        })),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(ERROR_ACCESS_DENIED) | Some(ERROR_PIPE_BUSY)
            ) =>
        {
            Ok(Bound::AlreadyRunning)
        }
        Err(e) => Err(IpcError::io("cannot create", endpoint.describe(), e)),
    }
}

/// The pipe; a fresh instance waits for the next client.
pub struct Listener {
    name: String,
    sid: String,
    descriptor: Descriptor,
    next: NamedPipeServer,
}

impl Listener {
    /// The next connection and whether its peer is our user.
    pub async fn accept(&mut self) -> io::Result<(ServerStream, PeerCheck)> {
        self.next.connect().await?;
        let fresh = create(&self.name, &self.descriptor, false)?;
        let connected = std::mem::replace(&mut self.next, fresh);
        let check = peer_sid(&connected, true).and_then(|sid| {
            if sid == self.sid {
                Ok(())
            } else {
                Err(format!(
                    "the control pipe serves {} only; the peer is {sid}",
                    self.sid
                ))
            }
        });
        Ok((connected, check))
    }

    /// For messages.
    pub fn describe(&self) -> String {
        self.name.clone()
    }
}

/// The user SID of the process at the other end of `pipe`.
fn peer_sid(pipe: &impl AsRawHandle, server_side: bool) -> Result<String, String> {
    let handle = pipe.as_raw_handle() as HANDLE;
    let mut pid = 0u32;
    // SAFETY: `handle` is a live pipe handle; `pid` is valid for writing.
    let ok = unsafe {
        if server_side {
            GetNamedPipeClientProcessId(handle, &mut pid)
        } else {
            GetNamedPipeServerProcessId(handle, &mut pid)
        }
    };
    if ok == 0 {
        return Err(format!(
            "cannot identify the peer: {}",
            io::Error::last_os_error()
        ));
    }
    process_sid(pid).map_err(|e| format!("cannot read the user of process {pid}: {e}"))
}

/// Connects to the running phone of this user.
pub async fn connect(endpoint: &Endpoint) -> Result<ClientStream, IpcError> {
    let deadline = Instant::now() + BUSY_WAIT;
    let client = loop {
        match ClientOptions::new().open(&endpoint.name) {
            Ok(client) => break client,
            Err(e) if e.raw_os_error() == Some(ERROR_FILE_NOT_FOUND) => {
                return Err(IpcError::NotRunning(endpoint.describe()))
            }
            // Every instance is taken for a moment: the server makes a
            // new one right after each accept.
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(IpcError::io("cannot connect to", endpoint.describe(), e)),
        }
    };
    match peer_sid(&client, false) {
        Ok(sid) if sid == endpoint.sid => Ok(client),
        Ok(sid) => Err(IpcError::PermissionDenied {
            path: endpoint.describe(),
            error: io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("the pipe is served by {sid}, not by this user"),
            ),
        }),
        Err(why) => Err(IpcError::io(
            "cannot check the server of",
            endpoint.describe(),
            io::Error::other(why),
        )),
    }
}

/// This process's user SID (`S-1-5-21-...`).
fn own_sid() -> io::Result<String> {
    // SAFETY: the pseudo-handle of the current process needs no closing.
    token_sid(unsafe { GetCurrentProcess() })
}

/// The user SID of process `pid`.
fn process_sid(pid: u32) -> io::Result<String> {
    // SAFETY: plain call; the handle is checked and closed below.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(io::Error::last_os_error());
    }
    let sid = token_sid(process);
    // SAFETY: `process` came from OpenProcess and is closed once.
    unsafe {
        CloseHandle(process);
    }
    sid
}

fn token_sid(process: HANDLE) -> io::Result<String> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: `process` is a process handle; `token` is valid for writing.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let result = token_user_sid(token);
    // SAFETY: `token` came from OpenProcessToken and is closed once.
    unsafe {
        CloseHandle(token);
    }
    result
}

fn token_user_sid(token: HANDLE) -> io::Result<String> {
    let mut len = 0u32;
    // SAFETY: a size query: no buffer, `len` receives the size needed.
    unsafe {
        GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut len);
    }
    if len == 0 {
        return Err(io::Error::last_os_error());
    }
    // u64 elements keep the buffer aligned for TOKEN_USER's pointer.
    let mut buffer = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: `buffer` holds at least `len` bytes.
    let ok =
        unsafe { GetTokenInformation(token, TokenUser, buffer.as_mut_ptr().cast(), len, &mut len) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call filled the buffer with a TOKEN_USER whose SID
    // pointer points inside the buffer, alive until the end of this scope.
    let sid = unsafe { (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` is valid (above); `text` receives a LocalAlloc'd string.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 || text.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `text` is a NUL-terminated UTF-16 string from the system.
    let sid = unsafe {
        let mut n = 0;
        while *text.add(n) != 0 {
            n += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(text, n))
    };
    // SAFETY: allocated by ConvertSidToStringSidW; freed once.
    unsafe {
        LocalFree(text.cast());
    }
    Ok(sid)
}
