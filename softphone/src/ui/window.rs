//! The native window's behaviour, MicroSIP's way: it starts where it was
//! (`mainX`..`mainH`), on top when `alwaysOnTop`, hidden or minimized on
//! `/hide`, `/minimized` or `minimized=1`; closing it hides it to the tray
//! (the tray's Exit stops the phone), or, without a tray, stops the phone;
//! `Show`, `Hide` and `Minimize` from the core apply to it.

use std::path::PathBuf;

use eframe::egui;
use egui::{ViewportCommand, WindowLevel};

use super::tray::{Tray, TrayAction};
use super::window_prefs::{save_geometry, Geometry, WindowPrefs};
use crate::control::notice::WindowRequest;

/// The window's default inner size (MicroSIP's main window is about this).
pub const DEFAULT_SIZE: [f32; 2] = [340.0, 560.0];
/// The smallest the window may get and stay usable.
pub const MIN_SIZE: [f32; 2] = [280.0, 400.0];

/// How the window first appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMode {
    /// On screen.
    #[default]
    Shown,
    /// Minimized (`/minimized`).
    Minimized,
    /// Hidden in the tray (`/hide`, `minimized=1`); minimized when there
    /// is no tray, so it can always be found.
    Hidden,
}

/// Where the window starts and what it remembers.
#[derive(Debug, Clone)]
pub struct WindowStart {
    /// The ini the geometry is saved to.
    pub ini_path: PathBuf,
    /// `[Settings]` as the window reads them.
    pub prefs: WindowPrefs,
    /// How it first appears.
    pub mode: StartMode,
}

impl WindowStart {
    /// The start for `prefs`: `/hide` and `/minimized` win, then
    /// `minimized=1` (start in the tray).
    pub fn new(ini_path: PathBuf, prefs: WindowPrefs, hide: bool, minimize: bool) -> WindowStart {
        let mode = if hide || (prefs.start_in_tray && !minimize) {
            StartMode::Hidden
        } else if minimize {
            StartMode::Minimized
        } else {
            StartMode::Shown
        };
        WindowStart {
            ini_path,
            prefs,
            mode,
        }
    }

    /// The native window to open: title, saved place and size (in
    /// pixels; corrected on the first frame when the screen is scaled),
    /// always on top when asked.
    pub fn viewport(&self) -> egui::ViewportBuilder {
        let (rgba, side) = super::tray::icon_rgba();
        let mut viewport = egui::ViewportBuilder::default()
            .with_title("msipphone")
            .with_app_id("msipphone")
            .with_icon(egui::IconData {
                rgba,
                width: side,
                height: side,
            })
            .with_min_inner_size(MIN_SIZE)
            .with_inner_size(DEFAULT_SIZE);
        if let Some(g) = self.prefs.geometry {
            viewport = viewport
                .with_position(g.position_points(1.0))
                .with_inner_size(g.size_points(1.0));
        }
        if self.prefs.always_on_top {
            viewport = viewport.with_window_level(WindowLevel::AlwaysOnTop);
        }
        viewport
    }
}

/// The window's state between frames.
pub struct WindowControl {
    start: WindowStart,
    tray: Option<Tray>,
    started: bool,
    /// The saved geometry was corrected for the screen's scale.
    placed: bool,
    /// The window is going away for good (tray Exit, the phone stopped).
    quitting: bool,
    /// Where the window was last seen on screen, in pixels.
    geometry: Option<Geometry>,
}

impl WindowControl {
    /// The control for a window started as `start`.
    pub fn new(start: WindowStart) -> WindowControl {
        WindowControl {
            start,
            tray: None,
            started: false,
            placed: false,
            quitting: false,
            geometry: None,
        }
    }

    /// Gives the window its tray icon (`None`: there is no tray).
    pub fn set_tray(&mut self, tray: Option<Tray>) {
        self.tray = tray;
    }

    /// Whether closing the window hides it to a tray.
    pub fn has_tray(&self) -> bool {
        self.tray.is_some()
    }

    /// Whether the window is closing for good.
    pub fn is_quitting(&self) -> bool {
        self.quitting
    }

    /// `bringToFrontOnIncoming`.
    pub fn brings_to_front_on_incoming(&self) -> bool {
        self.start.prefs.bring_to_front_on_incoming
    }

    /// Once per frame (also while hidden): first appearance, the tray's
    /// clicks, the close button, and where the window is.
    pub fn on_frame(&mut self, ctx: &egui::Context) {
        if !self.started {
            self.started = true;
            match self.start.mode {
                StartMode::Shown => {}
                StartMode::Minimized => ctx.send_viewport_cmd(ViewportCommand::Minimized(true)),
                StartMode::Hidden => self.hide(ctx),
            }
        }
        self.place(ctx);
        let actions: Vec<TrayAction> = match &self.tray {
            Some(tray) => std::iter::from_fn(|| tray.next_action()).collect(),
            None => Vec::new(),
        };
        for action in actions {
            match action {
                TrayAction::Show => self.show(ctx),
                TrayAction::Exit => self.quit(ctx),
            }
        }
        if ctx.input(|i| i.viewport().close_requested()) && !self.quitting && self.has_tray() {
            ctx.send_viewport_cmd(ViewportCommand::CancelClose);
            self.hide(ctx);
        }
        self.track(ctx);
    }

    /// Carries out a request from the core.
    pub fn apply(&mut self, ctx: &egui::Context, request: WindowRequest) {
        match request {
            WindowRequest::Show => self.show(ctx),
            WindowRequest::Hide => self.hide(ctx),
            WindowRequest::Minimize => ctx.send_viewport_cmd(ViewportCommand::Minimized(true)),
        }
    }

    /// Un-hides, restores and raises the window.
    pub fn show(&mut self, ctx: &egui::Context) {
        ctx.send_viewport_cmd(ViewportCommand::Visible(true));
        ctx.send_viewport_cmd(ViewportCommand::Minimized(false));
        ctx.send_viewport_cmd(ViewportCommand::Focus);
    }

    /// Shows the window for a ringing call and asks for the user's
    /// attention (a blinking task bar button where focus is refused).
    pub fn bring_to_front(&mut self, ctx: &egui::Context) {
        self.show(ctx);
        ctx.send_viewport_cmd(ViewportCommand::RequestUserAttention(
            egui::UserAttentionType::Informational,
        ));
    }

    /// Hides the window to the tray; without a tray it is minimized, so
    /// it can still be found.
    pub fn hide(&mut self, ctx: &egui::Context) {
        if self.has_tray() {
            ctx.send_viewport_cmd(ViewportCommand::Visible(false));
        } else {
            ctx.send_viewport_cmd(ViewportCommand::Minimized(true));
        }
    }

    /// Closes the window for good (the phone then stops).
    pub fn quit(&mut self, ctx: &egui::Context) {
        self.quitting = true;
        ctx.send_viewport_cmd(ViewportCommand::Close);
    }

    /// The window was opened at the saved pixels as if the screen were
    /// not scaled; once the scale is known, move it where it belongs.
    fn place(&mut self, ctx: &egui::Context) {
        if self.placed {
            return;
        }
        let Some(g) = self.start.prefs.geometry else {
            self.placed = true;
            return;
        };
        let Some(ppp) = ctx.input(|i| i.viewport().native_pixels_per_point) else {
            return;
        };
        self.placed = true;
        if (ppp - 1.0).abs() > f32::EPSILON {
            ctx.send_viewport_cmd(ViewportCommand::OuterPosition(g.position_points(ppp)));
            ctx.send_viewport_cmd(ViewportCommand::InnerSize(g.size_points(ppp)));
        }
    }

    /// Remembers where the window is while it is shown normally (not
    /// minimized, maximized or full screen: MicroSIP keeps the normal
    /// place).
    fn track(&mut self, ctx: &egui::Context) {
        let seen = ctx.input(|i| {
            let v = i.viewport();
            let normal = v.visible().unwrap_or(true)
                && !v.minimized.unwrap_or(false)
                && !v.maximized.unwrap_or(false)
                && !v.fullscreen.unwrap_or(false);
            match (
                normal,
                v.outer_rect,
                v.inner_rect,
                v.native_pixels_per_point,
            ) {
                (true, Some(outer), Some(inner), Some(ppp)) => {
                    Some(Geometry::from_points(outer.min, inner.size(), ppp))
                }
                _ => None,
            }
        });
        if let Some(g) = seen.filter(Geometry::is_usable) {
            self.geometry = Some(g);
        }
    }

    /// Writes where the window was to the ini when it moved or changed
    /// size (the window is closing). A failure is logged: the phone's
    /// shutdown goes on.
    pub fn save(&self) {
        let Some(geometry) = self.geometry else {
            return;
        };
        match save_geometry(&self.start.ini_path, self.start.prefs.geometry, geometry) {
            Ok(true) => tracing::debug!("window geometry saved: {geometry:?}"),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot save the window's place: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(start_in_tray: bool) -> WindowPrefs {
        WindowPrefs {
            geometry: None,
            always_on_top: false,
            bring_to_front_on_incoming: true,
            start_in_tray,
        }
    }

    #[test]
    fn the_command_line_wins_over_the_setting() {
        let mode = |tray, hide, minimize| {
            WindowStart::new(PathBuf::from("x.ini"), prefs(tray), hide, minimize).mode
        };
        assert_eq!(mode(false, false, false), StartMode::Shown);
        assert_eq!(mode(false, true, false), StartMode::Hidden);
        assert_eq!(mode(false, false, true), StartMode::Minimized);
        assert_eq!(mode(true, false, false), StartMode::Hidden);
        assert_eq!(mode(true, false, true), StartMode::Minimized);
    }
}
