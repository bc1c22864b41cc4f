//! Whether a window can be opened at all, asked before the phone starts so
//! that a session without a display gets a clear answer rather than a
//! winit error.

/// `Err(why)` when there is certainly no display to open a window on.
#[cfg(all(unix, not(target_os = "macos")))]
pub fn check() -> Result<(), String> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("DISPLAY") || set("WAYLAND_DISPLAY") {
        Ok(())
    } else {
        Err("no display (DISPLAY and WAYLAND_DISPLAY are unset)".to_owned())
    }
}

/// Windows (and macOS) always have a desktop for the user's processes;
/// when not (a service session), eframe's own error says so.
#[cfg(not(all(unix, not(target_os = "macos"))))]
pub fn check() -> Result<(), String> {
    Ok(())
}
