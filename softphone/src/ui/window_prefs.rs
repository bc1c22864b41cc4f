//! The window's own settings in `[Settings]`: where it was (`mainX`,
//! `mainY`, `mainW`, `mainH`, as MicroSIP keeps them), `alwaysOnTop`,
//! `bringToFrontOnIncoming` and `minimized` (start hidden in the tray).
//!
//! The geometry is written back when the window closes, only when it
//! changed, through [`crate::config::edit::update_ini`]: the file is read
//! again just before the write, so what the phone wrote meanwhile
//! (`[Calls]`) and every other byte stay.

use std::path::Path;

use eframe::egui;

use crate::config::edit::{update_ini, EditError};
use crate::config::Settings;

/// The `[Settings]` section the window keys live in.
const SECTION: &str = "Settings";

/// Where and how big the window is, in screen pixels as MicroSIP stores it:
/// the top-left corner of the window (frame included) and the size of its
/// content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// `mainX`: the left edge.
    pub x: i64,
    /// `mainY`: the top edge.
    pub y: i64,
    /// `mainW`: the width.
    pub w: i64,
    /// `mainH`: the height.
    pub h: i64,
}

impl Geometry {
    /// The geometry the settings hold; `None` while MicroSIP's defaults
    /// (zero width or height: never saved) are there.
    pub fn from_settings(settings: &Settings) -> Option<Geometry> {
        let geometry = Geometry {
            x: settings.main_x,
            y: settings.main_y,
            w: settings.main_w,
            h: settings.main_h,
        };
        geometry.is_usable().then_some(geometry)
    }

    /// Whether a window can be made this size (a hand-edited ini may hold
    /// anything; a window of 0 or 100000 pixels is not restored).
    pub fn is_usable(&self) -> bool {
        (MIN_SIDE..=MAX_SIDE).contains(&self.w)
            && (MIN_SIDE..=MAX_SIDE).contains(&self.h)
            && (-MAX_SIDE..=MAX_SIDE).contains(&self.x)
            && (-MAX_SIDE..=MAX_SIDE).contains(&self.y)
    }

    /// Geometry in screen pixels from egui's points at `pixels_per_point`.
    pub fn from_points(position: egui::Pos2, size: egui::Vec2, pixels_per_point: f32) -> Geometry {
        let px = |v: f32| (v * pixels_per_point).round() as i64;
        Geometry {
            x: px(position.x),
            y: px(position.y),
            w: px(size.x),
            h: px(size.y),
        }
    }

    /// The position in egui points at `pixels_per_point`.
    pub fn position_points(&self, pixels_per_point: f32) -> egui::Pos2 {
        egui::pos2(
            self.x as f32 / pixels_per_point,
            self.y as f32 / pixels_per_point,
        )
    }

    /// The size in egui points at `pixels_per_point`.
    pub fn size_points(&self, pixels_per_point: f32) -> egui::Vec2 {
        egui::vec2(
            self.w as f32 / pixels_per_point,
            self.h as f32 / pixels_per_point,
        )
    }
}

/// The smallest side restored (smaller: the default size is used).
const MIN_SIDE: i64 = 100;
/// The largest coordinate or side believed (bigger: a broken value).
const MAX_SIDE: i64 = 32_000;

/// What the window reads from `[Settings]` when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPrefs {
    /// The saved geometry, when there is one.
    pub geometry: Option<Geometry>,
    /// `alwaysOnTop`.
    pub always_on_top: bool,
    /// `bringToFrontOnIncoming`: raise and focus the window on a call.
    pub bring_to_front_on_incoming: bool,
    /// `minimized`: always start hidden in the tray.
    pub start_in_tray: bool,
}

impl WindowPrefs {
    /// The window's settings from the typed settings.
    pub fn from_settings(settings: &Settings) -> WindowPrefs {
        WindowPrefs {
            geometry: Geometry::from_settings(settings),
            always_on_top: settings.always_on_top,
            bring_to_front_on_incoming: settings.bring_to_front_on_incoming,
            start_in_tray: settings.minimized,
        }
    }
}

/// Writes `geometry` to `mainX`/`mainY`/`mainW`/`mainH` of the ini at
/// `path` unless it equals `saved` (what the window started with); keys
/// that already hold the value are not touched. Returns whether the file
/// was asked to change.
pub fn save_geometry(
    path: &Path,
    saved: Option<Geometry>,
    geometry: Geometry,
) -> Result<bool, EditError> {
    if saved == Some(geometry) || !geometry.is_usable() {
        return Ok(false);
    }
    update_ini(path, |doc| {
        for (key, value) in [
            ("mainX", geometry.x),
            ("mainY", geometry.y),
            ("mainW", geometry.w),
            ("mainH", geometry.h),
        ] {
            let value = value.to_string();
            if doc.get(SECTION, key) != Some(value.as_str()) {
                doc.set(SECTION, key, &value)?;
            }
        }
        Ok(())
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IniDocument;

    fn utf16(text: &str) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        bytes
    }

    fn settings(text: &str) -> Settings {
        let doc = IniDocument::parse(text.as_bytes()).expect("parses");
        Settings::from_document(&doc)
    }

    #[test]
    fn geometry_comes_from_the_settings_only_when_it_was_saved() {
        assert_eq!(Geometry::from_settings(&settings("[Settings]\r\n")), None);
        let s = settings("[Settings]\r\nmainX=-8\r\nmainY=40\r\nmainW=320\r\nmainH=540\r\nalwaysOnTop=1\r\nminimized=1\r\n");
        assert_eq!(
            Geometry::from_settings(&s),
            Some(Geometry {
                x: -8,
                y: 40,
                w: 320,
                h: 540
            })
        );
        let prefs = WindowPrefs::from_settings(&s);
        assert!(prefs.always_on_top && prefs.start_in_tray);
        assert!(prefs.bring_to_front_on_incoming, "MicroSIP's default is 1");
        let broken = settings("[Settings]\r\nmainX=10\r\nmainY=10\r\nmainW=5\r\nmainH=999999\r\n");
        assert_eq!(Geometry::from_settings(&broken), None);
    }

    #[test]
    fn points_and_pixels_convert_both_ways() {
        let g = Geometry::from_points(egui::pos2(10.0, 20.5), egui::vec2(300.0, 500.0), 1.5);
        assert_eq!(
            g,
            Geometry {
                x: 15,
                y: 31,
                w: 450,
                h: 750
            }
        );
        assert_eq!(g.size_points(1.5), egui::vec2(300.0, 500.0));
        assert_eq!(g.position_points(1.5), egui::pos2(10.0, 31.0 / 1.5));
    }

    #[test]
    fn saving_changes_only_the_geometry_keys_and_keeps_utf16() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("microsip.ini");
        let before = "; my comment\r\n[Settings]\r\nmainX=0\r\nringingSound=Klingelton \u{e9}\u{4e2d}.wav\r\nmainW=200\r\n\r\n[Calls]\r\n0=1001;Anna \u{e4};1;1700000000;12;\r\n";
        std::fs::write(&path, utf16(before)).expect("write");
        let saved = Geometry {
            x: 0,
            y: 0,
            w: 200,
            h: 0,
        };
        let now = Geometry {
            x: 120,
            y: 0,
            w: 330,
            h: 560,
        };
        assert!(save_geometry(&path, Some(saved), now).expect("saves"));
        let bytes = std::fs::read(&path).expect("read");
        let expected = "; my comment\r\n[Settings]\r\nmainX=120\r\nringingSound=Klingelton \u{e9}\u{4e2d}.wav\r\nmainW=330\r\nmainY=0\r\nmainH=560\r\n\r\n[Calls]\r\n0=1001;Anna \u{e4};1;1700000000;12;\r\n";
        assert_eq!(
            String::from_utf16_lossy(
                &bytes[2..]
                    .chunks(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect::<Vec<_>>()
            ),
            expected
        );
        assert_eq!(bytes, utf16(expected), "UTF-16 LE with BOM, CRLF kept");
        // The same geometry again: nothing to write, the file is not touched.
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        assert!(!save_geometry(&path, Some(now), now).expect("no-op"));
        assert_eq!(
            std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
            mtime
        );
    }

    #[test]
    fn a_file_changed_meanwhile_keeps_its_new_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("microsip.ini");
        std::fs::write(&path, b"[Settings]\r\nmainX=1\r\n").expect("write");
        // The phone logs a call after the window started.
        std::fs::write(
            &path,
            b"[Settings]\r\nmainX=1\r\n[Calls]\r\n0=1002;;1;1;1;\r\n",
        )
        .expect("write");
        let g = Geometry {
            x: 5,
            y: 6,
            w: 300,
            h: 400,
        };
        save_geometry(&path, None, g).expect("saves");
        let text = String::from_utf8(std::fs::read(&path).expect("read")).expect("utf-8");
        assert!(text.contains("[Calls]\r\n0=1002;;1;1;1;\r\n"), "{text}");
        assert!(
            text.contains("mainX=5\r\n") && text.contains("mainH=400"),
            "{text}"
        );
    }
}
