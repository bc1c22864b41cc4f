//! Linux: is there a tray to put an icon in? Desktop panels show
//! StatusNotifierItems through the `org.kde.StatusNotifierWatcher` on the
//! session bus, once a panel (a "host") registered with it; without both
//! (a bare X server, a desktop without a tray) an icon would be invisible
//! and a window hidden to it lost.
//!
//! The question is two D-Bus calls (`NameHasOwner`, then the watcher's
//! `IsStatusNotifierHostRegistered`); rather than a D-Bus library for
//! them, this speaks the few bytes of the wire protocol they need (SASL
//! EXTERNAL, `Hello`, a method call, its reply), each read bounded by a
//! timeout, so a watcher that hangs cannot hang the window either.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// The watcher's bus name, which is also its interface.
pub const WATCHER: &str = "org.kde.StatusNotifierWatcher";
/// The watcher's object.
const WATCHER_PATH: &str = "/StatusNotifierWatcher";
/// The bus daemon itself.
const BUS: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

/// How long the session bus (or the watcher) may take to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a tray shows StatusNotifierItems: a watcher runs on the
/// session bus and a host registered with it. `Ok(false)` when there is
/// no session bus at all.
pub fn tray_present() -> io::Result<bool> {
    let Some(mut bus) = Bus::connect_session()? else {
        return Ok(false);
    };
    Ok(bus.name_has_owner(WATCHER)? && bus.host_registered()?)
}

/// Where the session bus listens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BusAddress {
    /// `unix:path=...`
    Path(PathBuf),
    /// `unix:abstract=...` (Linux's abstract socket namespace).
    Abstract(Vec<u8>),
}

/// The unix addresses in a D-Bus address list (`a;b`, `unix:path=/x,guid=..`).
fn parse_addresses(text: &str) -> Vec<BusAddress> {
    let mut out = Vec::new();
    for address in text.split(';') {
        let Some(params) = address.trim().strip_prefix("unix:") else {
            continue;
        };
        for param in params.split(',') {
            match param.split_once('=') {
                Some(("path", value)) => {
                    if let Some(v) = unescape(value) {
                        out.push(BusAddress::Path(PathBuf::from(
                            String::from_utf8_lossy(&v).into_owned(),
                        )));
                    }
                }
                Some(("abstract", value)) => {
                    if let Some(v) = unescape(value) {
                        out.push(BusAddress::Abstract(v));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// D-Bus address values escape bytes as `%XX`.
fn unescape(value: &str) -> Option<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A connection to a message bus, past authentication and `Hello`.
pub(crate) struct Bus {
    stream: BufReader<UnixStream>,
    serial: u32,
}

impl Bus {
    /// The session bus (`DBUS_SESSION_BUS_ADDRESS`, else
    /// `$XDG_RUNTIME_DIR/bus`); `None` when there is none.
    fn connect_session() -> io::Result<Option<Bus>> {
        let addresses = match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            Ok(text) if !text.trim().is_empty() => parse_addresses(&text),
            _ => std::env::var_os("XDG_RUNTIME_DIR")
                .map(|dir| vec![BusAddress::Path(PathBuf::from(dir).join("bus"))])
                .unwrap_or_default(),
        };
        let mut last = None;
        for address in &addresses {
            match connect(address) {
                Ok(stream) => return Bus::start(stream).map(Some),
                Err(e) => last = Some(e),
            }
        }
        match last {
            // No bus where it should be: no tray either.
            Some(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Authenticates on `stream` (SASL EXTERNAL: the kernel vouches for
    /// our uid) and says `Hello`, as every bus client must first.
    pub(crate) fn start(stream: UnixStream) -> io::Result<Bus> {
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut stream = BufReader::new(stream);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        stream
            .get_mut()
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        stream.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("the session bus refused us: {}", line.trim()),
            ));
        }
        stream.get_mut().write_all(b"BEGIN\r\n")?;
        let mut bus = Bus { stream, serial: 0 };
        bus.call(&Call::bus("Hello", "", Vec::new()))?;
        Ok(bus)
    }

    /// `org.freedesktop.DBus.NameHasOwner(name)`.
    pub(crate) fn name_has_owner(&mut self, name: &str) -> io::Result<bool> {
        let mut body = Vec::new();
        put_string(&mut body, name);
        let reply = self.call(&Call::bus("NameHasOwner", "s", body))?;
        Ok(reply.u32_at(0)? != 0)
    }

    /// The watcher's `IsStatusNotifierHostRegistered` property.
    fn host_registered(&mut self) -> io::Result<bool> {
        let mut body = Vec::new();
        put_string(&mut body, WATCHER);
        put_string(&mut body, "IsStatusNotifierHostRegistered");
        let reply = self.call(&Call {
            destination: WATCHER,
            path: WATCHER_PATH,
            interface: "org.freedesktop.DBus.Properties",
            member: "Get",
            signature: "ss",
            body,
        })?;
        // A VARIANT: its signature (1, 'b', NUL), then the BOOLEAN at 4.
        if reply.body.get(..3) != Some(b"\x01b\0".as_slice()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the tray watcher's IsStatusNotifierHostRegistered is not a boolean",
            ));
        }
        Ok(reply.u32_at(4)? != 0)
    }

    /// `org.freedesktop.DBus.RequestName(name, 0)`: whether we own it now.
    #[cfg(test)]
    pub(crate) fn request_name(&mut self, name: &str) -> io::Result<bool> {
        let mut body = Vec::new();
        put_string(&mut body, name);
        align(&mut body, 4);
        body.extend_from_slice(&0u32.to_le_bytes());
        let reply = self.call(&Call::bus("RequestName", "su", body))?;
        // 1: DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER.
        Ok(reply.u32_at(0)? == 1)
    }

    /// Answers the next method call with the BOOLEAN `value` in a VARIANT
    /// (what a watcher answers to `Get`); returns the member called.
    #[cfg(test)]
    pub(crate) fn answer_with_bool(&mut self, value: bool) -> io::Result<String> {
        loop {
            let call = Message::read(&mut self.stream)?;
            if call.kind != METHOD_CALL {
                continue;
            }
            self.serial += 1;
            let mut body = Vec::new();
            put_signature(&mut body, "b");
            align(&mut body, 4);
            body.extend_from_slice(&u32::from(value).to_le_bytes());
            let mut reply = header(METHOD_RETURN, self.serial, body.len());
            let start = reply.len();
            put_field_u32(&mut reply, FIELD_REPLY_SERIAL, call.serial);
            let sender = call.sender.as_deref().unwrap_or_default();
            put_field(&mut reply, FIELD_DESTINATION, 's', sender);
            put_field(&mut reply, FIELD_SIGNATURE, 'g', "v");
            finish(&mut reply, start, &body);
            self.stream.get_mut().write_all(&reply)?;
            return Ok(call.member.unwrap_or_default());
        }
    }

    /// Sends a method call and waits for its reply (signals such as
    /// `NameAcquired` on the way are skipped).
    fn call(&mut self, call: &Call<'_>) -> io::Result<Message> {
        self.serial += 1;
        let serial = self.serial;
        let member = call.member;
        self.stream.get_mut().write_all(&call.encode(serial))?;
        // A bound on what we read past the reply (signals).
        for _ in 0..32 {
            let message = Message::read(&mut self.stream)?;
            if message.reply_serial != Some(serial) {
                continue;
            }
            return match message.kind {
                METHOD_RETURN => Ok(message),
                _ => Err(io::Error::other(format!(
                    "the session bus answered {member} with an error"
                ))),
            };
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no reply to {member} from the session bus"),
        ))
    }
}

fn connect(address: &BusAddress) -> io::Result<UnixStream> {
    match address {
        BusAddress::Path(path) => UnixStream::connect(path),
        BusAddress::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            UnixStream::connect_addr(&addr)
        }
    }
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
/// Header field codes (D-Bus specification, "Header Fields").
const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SENDER: u8 = 7;
const FIELD_SIGNATURE: u8 = 8;
/// The largest message read back (the bus's replies here are tiny).
const MAX_MESSAGE: usize = 64 * 1024;

fn align(buf: &mut Vec<u8>, to: usize) {
    while buf.len() % to != 0 {
        buf.push(0);
    }
}

/// A STRING or OBJECT_PATH: length, bytes, NUL (aligned to 4).
fn put_string(buf: &mut Vec<u8>, text: &str) {
    align(buf, 4);
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(text.as_bytes());
    buf.push(0);
}

/// A SIGNATURE: one length byte, bytes, NUL.
fn put_signature(buf: &mut Vec<u8>, signature: &str) {
    buf.push(u8::try_from(signature.len()).unwrap_or(u8::MAX));
    buf.extend_from_slice(signature.as_bytes());
    buf.push(0);
}

/// One header field: a STRUCT(BYTE code, VARIANT value) aligned to 8.
fn put_field(buf: &mut Vec<u8>, code: u8, kind: char, value: &str) {
    align(buf, 8);
    buf.push(code);
    put_signature(buf, &kind.to_string());
    if kind == 'g' {
        put_signature(buf, value);
    } else {
        put_string(buf, value);
    }
}

/// A UINT32 header field (`REPLY_SERIAL`).
#[cfg(test)]
fn put_field_u32(buf: &mut Vec<u8>, code: u8, value: u32) {
    align(buf, 8);
    buf.push(code);
    put_signature(buf, "u");
    align(buf, 4);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// The fixed start of a little-endian message; the fields follow.
fn header(kind: u8, serial: u32, body_len: usize) -> Vec<u8> {
    let mut msg = vec![b'l', kind, 0, 1];
    let body_len = u32::try_from(body_len).unwrap_or(u32::MAX);
    msg.extend_from_slice(&body_len.to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    msg.extend_from_slice(&[0; 4]); // the fields' length, see `finish`
    msg
}

/// Writes the fields' length (they began at `start`), pads the header
/// and appends the body.
fn finish(msg: &mut Vec<u8>, start: usize, body: &[u8]) {
    let fields_len = u32::try_from(msg.len() - start).unwrap_or(u32::MAX);
    msg[12..16].copy_from_slice(&fields_len.to_le_bytes());
    align(msg, 8);
    msg.extend_from_slice(body);
}

/// A method call to send.
struct Call<'a> {
    destination: &'a str,
    path: &'a str,
    interface: &'a str,
    member: &'a str,
    /// The body's signature (empty: no body).
    signature: &'a str,
    body: Vec<u8>,
}

impl<'a> Call<'a> {
    /// A call of the bus daemon's own methods.
    fn bus(member: &'a str, signature: &'a str, body: Vec<u8>) -> Call<'a> {
        Call {
            destination: BUS,
            path: BUS_PATH,
            interface: BUS,
            member,
            signature,
            body,
        }
    }

    /// The little-endian METHOD_CALL.
    fn encode(&self, serial: u32) -> Vec<u8> {
        let mut msg = header(METHOD_CALL, serial, self.body.len());
        let start = msg.len();
        put_field(&mut msg, FIELD_PATH, 'o', self.path);
        put_field(&mut msg, FIELD_INTERFACE, 's', self.interface);
        put_field(&mut msg, FIELD_MEMBER, 's', self.member);
        put_field(&mut msg, FIELD_DESTINATION, 's', self.destination);
        if !self.signature.is_empty() {
            put_field(&mut msg, FIELD_SIGNATURE, 'g', self.signature);
        }
        finish(&mut msg, start, &self.body);
        msg
    }
}

/// A message read from the bus: what this module needs of it.
#[derive(Debug)]
struct Message {
    kind: u8,
    /// Its serial, sender and member: what answering a call needs (the
    /// tests play the watcher).
    #[cfg_attr(not(test), allow(dead_code))]
    serial: u32,
    reply_serial: Option<u32>,
    #[cfg_attr(not(test), allow(dead_code))]
    sender: Option<String>,
    #[cfg_attr(not(test), allow(dead_code))]
    member: Option<String>,
    big_endian: bool,
    body: Vec<u8>,
}

impl Message {
    fn read(reader: &mut impl Read) -> io::Result<Message> {
        let mut fixed = [0u8; 16];
        reader.read_exact(&mut fixed)?;
        let big_endian = match fixed[0] {
            b'l' => false,
            b'B' => true,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad D-Bus endianness byte {other:#x}"),
                ))
            }
        };
        let word = |b: &[u8]| -> u32 {
            let b = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let body_len = word(&fixed[4..8]) as usize;
        let fields_len = word(&fixed[12..16]) as usize;
        let padded = fields_len.div_ceil(8) * 8;
        if padded + body_len > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "oversized D-Bus message",
            ));
        }
        let mut rest = vec![0u8; padded + body_len];
        reader.read_exact(&mut rest)?;
        let fields = &rest[..fields_len];
        let mut reply_serial = None;
        let mut sender = None;
        let mut member = None;
        // The fields begin at offset 16, 8-aligned: aligning offsets into
        // them is aligning offsets into the message.
        let mut i = 0usize;
        while i < fields.len() {
            i = i.div_ceil(8) * 8;
            let Some(&code) = fields.get(i) else { break };
            let sig_len = *fields.get(i + 1).ok_or_else(truncated)? as usize;
            let sig = fields.get(i + 2..i + 2 + sig_len).ok_or_else(truncated)?;
            i += 2 + sig_len + 1;
            match sig {
                b"u" => {
                    i = i.div_ceil(4) * 4;
                    let v = fields.get(i..i + 4).ok_or_else(truncated)?;
                    if code == FIELD_REPLY_SERIAL {
                        reply_serial = Some(word(v));
                    }
                    i += 4;
                }
                b"s" | b"o" => {
                    i = i.div_ceil(4) * 4;
                    let len = word(fields.get(i..i + 4).ok_or_else(truncated)?) as usize;
                    let text = fields.get(i + 4..i + 4 + len).ok_or_else(truncated)?;
                    let text = String::from_utf8_lossy(text).into_owned();
                    match code {
                        FIELD_SENDER => sender = Some(text),
                        FIELD_MEMBER => member = Some(text),
                        _ => {}
                    }
                    i += 4 + len + 1;
                }
                b"g" => {
                    let len = *fields.get(i).ok_or_else(truncated)? as usize;
                    i += 1 + len + 1;
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected D-Bus header field type",
                    ))
                }
            }
        }
        Ok(Message {
            kind: fixed[1],
            serial: word(&fixed[8..12]),
            reply_serial,
            sender,
            member,
            big_endian,
            body: rest[padded..].to_vec(),
        })
    }

    /// The UINT32 (or BOOLEAN) at `offset` of the body.
    fn u32_at(&self, offset: usize) -> io::Result<u32> {
        let b = self.body.get(offset..offset + 4).ok_or_else(truncated)?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "truncated D-Bus message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_addresses_are_read_as_dbus_writes_them() {
        assert_eq!(
            parse_addresses("unix:path=/run/user/1000/bus"),
            [BusAddress::Path("/run/user/1000/bus".into())]
        );
        assert_eq!(
            parse_addresses("tcp:host=x,port=1;unix:abstract=/tmp/dbus-Ab%2c,guid=0123"),
            [BusAddress::Abstract(b"/tmp/dbus-Ab,".to_vec())]
        );
        assert!(parse_addresses("launchd:env=X").is_empty());
        assert!(parse_addresses("unix:path=%zz").is_empty());
    }

    #[test]
    fn a_method_call_reads_back_as_a_message() {
        let mut body = Vec::new();
        put_string(&mut body, WATCHER);
        let bytes = Call::bus("NameHasOwner", "s", body.clone()).encode(7);
        assert_eq!(
            (bytes.len() - body.len()) % 8,
            0,
            "the body starts 8-aligned"
        );
        let message = Message::read(&mut &bytes[..]).expect("reads");
        assert_eq!(message.kind, METHOD_CALL);
        assert_eq!(message.serial, 7);
        assert_eq!(message.member.as_deref(), Some("NameHasOwner"));
        assert_eq!(message.reply_serial, None);
        assert_eq!(message.body, body);
        assert_eq!(message.u32_at(0).expect("length"), WATCHER.len() as u32);
        assert!(Message::read(&mut &bytes[..20]).is_err(), "truncated");
    }

    /// Against a private `dbus-daemon`: no watcher; a watcher without a
    /// host (no panel); a watcher with one.
    #[test]
    fn a_watcher_on_the_bus_is_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<busconfig><type>session</type><listen>unix:path={}</listen>\
                 <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
                 <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>",
                socket.display()
            ),
        )
        .expect("config");
        let mut daemon = match std::process::Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("dbus-daemon is not installed (apt-get install dbus-daemon): not run");
                return;
            }
            Err(e) => panic!("dbus-daemon: {e}"),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("dbus-daemon did not listen: {e}"),
            }
        };
        let result = std::panic::catch_unwind(|| {
            let mut probe = Bus::start(stream).expect("probe connects");
            assert!(!probe.name_has_owner(WATCHER).expect("asks"));
            let mut watcher =
                Bus::start(UnixStream::connect(&socket).expect("connect")).expect("watcher");
            assert!(watcher.request_name(WATCHER).expect("owns"));
            assert!(probe.name_has_owner(WATCHER).expect("asks again"));
            let answer = std::thread::spawn(move || {
                let first = watcher.answer_with_bool(false).expect("answers");
                let second = watcher.answer_with_bool(true).expect("answers");
                (first, second)
            });
            assert!(!probe.host_registered().expect("no host"));
            assert!(probe.host_registered().expect("a host"));
            let (first, second) = answer.join().expect("watcher thread");
            assert_eq!((first.as_str(), second.as_str()), ("Get", "Get"));
        });
        let _ = daemon.kill();
        let _ = daemon.wait();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
