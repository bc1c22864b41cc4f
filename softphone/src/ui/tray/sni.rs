//! Linux: is there a tray to put an icon in? Desktop panels show
//! StatusNotifierItems through the `org.kde.StatusNotifierWatcher` on the
//! session bus, once a panel (a "host") registered with it; without both
//! (a bare X server, a desktop without a tray) an icon would be invisible
//! and a window hidden to it lost.
//!
//! Two D-Bus calls through zbus (already in the build for the tray and
//! accessibility): `NameHasOwner`, then the watcher's
//! `IsStatusNotifierHostRegistered`, each bounded by a timeout so a
//! watcher that hangs cannot hang the window.

use std::time::Duration;

/// The watcher's bus name, which is also its interface.
pub const WATCHER: &str = "org.kde.StatusNotifierWatcher";
/// The watcher's object.
const WATCHER_PATH: &str = "/StatusNotifierWatcher";
/// How long the session bus (or the watcher) may take to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a tray shows StatusNotifierItems: a watcher runs on the
/// session bus and a host registered with it. `Ok(false)` when there is
/// no session bus at all.
pub fn tray_present() -> zbus::Result<bool> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
        && std::env::var_os("XDG_RUNTIME_DIR")
            .is_none_or(|dir| !std::path::Path::new(&dir).join("bus").exists())
    {
        return Ok(false);
    }
    let bus = match zbus::blocking::connection::Builder::session()?
        .method_timeout(TIMEOUT)
        .build()
    {
        Ok(bus) => bus,
        // No daemon behind the address: no tray either.
        Err(zbus::Error::InputOutput(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    tray_on(&bus)
}

/// The question asked on `bus`.
fn tray_on(bus: &zbus::blocking::Connection) -> zbus::Result<bool> {
    let daemon = zbus::blocking::fdo::DBusProxy::new(bus)?;
    let name = zbus::names::BusName::try_from(WATCHER)?;
    if !daemon.name_has_owner(name)? {
        return Ok(false);
    }
    let watcher = zbus::blocking::Proxy::new(bus, WATCHER, WATCHER_PATH, WATCHER)?;
    watcher.get_property::<bool>("IsStatusNotifierHostRegistered")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in watcher: only the property the probe reads.
    struct Watcher {
        host: bool,
    }

    #[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
    impl Watcher {
        #[zbus(property)]
        fn is_status_notifier_host_registered(&self) -> bool {
            self.host
        }
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
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("dbus-daemon is not installed (apt-get install dbus-daemon; ./scripts/test does)")
            }
            Err(e) => panic!("dbus-daemon: {e}"),
        };
        let address = format!("unix:path={}", socket.display());
        let connect = || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let built = zbus::blocking::connection::Builder::address(address.as_str())
                    .and_then(|b| b.method_timeout(TIMEOUT).build());
                match built {
                    Ok(bus) => return bus,
                    Err(_) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => panic!("dbus-daemon did not listen: {e}"),
                }
            }
        };
        let result = std::panic::catch_unwind(|| {
            let probe = connect();
            assert!(!tray_on(&probe).expect("asks"), "no watcher");
            for host in [false, true] {
                let watcher = zbus::blocking::connection::Builder::address(address.as_str())
                    .expect("address")
                    .name(WATCHER)
                    .expect("name")
                    .serve_at(WATCHER_PATH, Watcher { host })
                    .expect("object")
                    .build()
                    .expect("watcher connects");
                assert_eq!(tray_on(&probe).expect("asks"), host, "host {host}");
                drop(watcher);
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while tray_on(&probe).unwrap_or(true) && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        let _ = daemon.kill();
        let _ = daemon.wait();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
