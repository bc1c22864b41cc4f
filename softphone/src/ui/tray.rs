//! The tray icon (`tray-icon`: StatusNotifierItem over D-Bus on Linux,
//! `Shell_NotifyIcon` on Windows) with its menu, Show and Exit; a click on
//! the icon shows the window too.
//!
//! Create it on the window's thread once the event loop runs (Windows
//! needs the thread's message loop). When there is no tray to put it in,
//! [`Tray::create`] says why in the log and returns `None`: the window
//! then exits the phone when closed instead of hiding.

#[cfg(target_os = "linux")]
mod sni;

use std::sync::mpsc;

use eframe::egui;
use tray_icon::menu::{Menu, MenuEvent, MenuItem};
use tray_icon::{MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};

/// What the user asked of the tray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the window (menu "Show", a click on the icon).
    Show,
    /// Stop the phone (menu "Exit").
    Exit,
}

/// The tray icon while it exists.
pub struct Tray {
    _icon: TrayIcon,
    actions: mpsc::Receiver<TrayAction>,
}

impl Tray {
    /// Puts the icon in the tray; `ctx` is woken on every click (the window
    /// may be hidden). `None` (logged) when there is no tray.
    pub fn create(ctx: &egui::Context) -> Option<Tray> {
        match host_available() {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    "no system tray (no StatusNotifierWatcher with a host on the session bus): closing the window stops the phone"
                );
                return None;
            }
            Err(e) => {
                tracing::warn!("cannot tell whether there is a system tray ({e}): closing the window stops the phone");
                return None;
            }
        }
        match Tray::build(ctx) {
            Ok(tray) => Some(tray),
            Err(e) => {
                tracing::warn!(
                    "cannot create the tray icon ({e}): closing the window stops the phone"
                );
                None
            }
        }
    }

    fn build(ctx: &egui::Context) -> Result<Tray, Box<dyn std::error::Error>> {
        let show = MenuItem::new("Show", true, None);
        let exit = MenuItem::new("Exit", true, None);
        let menu = Menu::new();
        menu.append(&show)?;
        menu.append(&exit)?;
        let (tx, actions) = mpsc::channel();
        {
            let (tx, ctx) = (tx.clone(), ctx.clone());
            let (show, exit) = (show.id().clone(), exit.id().clone());
            MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
                let action = if event.id == show {
                    TrayAction::Show
                } else if event.id == exit {
                    TrayAction::Exit
                } else {
                    return;
                };
                let _ = tx.send(action);
                ctx.request_repaint();
            }));
        }
        {
            let ctx = ctx.clone();
            TrayIconEvent::set_event_handler(Some(move |event: TrayIconEvent| {
                let clicked = match event {
                    TrayIconEvent::Click { button_state, .. } => {
                        button_state == MouseButtonState::Up
                    }
                    TrayIconEvent::DoubleClick { .. } => true,
                    _ => false,
                };
                if clicked {
                    let _ = tx.send(TrayAction::Show);
                    ctx.request_repaint();
                }
            }));
        }
        let (rgba, size) = icon_rgba();
        let icon = TrayIconBuilder::new()
            .with_tooltip("msipphone")
            .with_title("msipphone")
            .with_menu(Box::new(menu))
            .with_icon(tray_icon::Icon::from_rgba(rgba, size, size)?)
            .build()?;
        Ok(Tray {
            _icon: icon,
            actions,
        })
    }

    /// The next thing the user asked of the tray, if any.
    pub fn next_action(&self) -> Option<TrayAction> {
        self.actions.try_recv().ok()
    }
}

/// Whether the desktop has a tray.
#[cfg(target_os = "linux")]
fn host_available() -> Result<bool, String> {
    sni::tray_present().map_err(|e| e.to_string())
}

/// Windows always has its notification area.
#[cfg(not(target_os = "linux"))]
fn host_available() -> Result<bool, String> {
    Ok(true)
}

/// The phone's icon (a green disc with a white ring), RGBA, square; the
/// side in pixels.
pub fn icon_rgba() -> (Vec<u8>, u32) {
    const SIDE: u32 = 32;
    let mut rgba = Vec::with_capacity((SIDE * SIDE * 4) as usize);
    let centre = (SIDE as f32 - 1.0) / 2.0;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let d = ((x as f32 - centre).powi(2) + (y as f32 - centre).powi(2)).sqrt();
            let pixel = if d > 15.5 {
                [0, 0, 0, 0]
            } else if (8.0..11.0).contains(&d) {
                [255, 255, 255, 255]
            } else {
                [40, 160, 70, 255]
            };
            rgba.extend_from_slice(&pixel);
        }
    }
    (rgba, SIDE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_is_a_square_of_rgba_pixels() {
        let (rgba, side) = icon_rgba();
        assert_eq!(rgba.len(), (side * side * 4) as usize);
        assert_eq!(&rgba[..4], &[0, 0, 0, 0], "the corner is transparent");
        let centre = ((side / 2 * side + side / 2) * 4) as usize;
        assert_eq!(rgba[centre + 3], 255, "the middle is opaque");
    }
}
