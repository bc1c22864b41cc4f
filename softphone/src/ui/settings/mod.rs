//! The settings dialog: `microsip.ini` edited through [`crate::config`].
//!
//! The main `[Settings]` keys ([`groups`]) and every key of each
//! `[AccountN]` are shown with the widget their kind calls for. A key a
//! provisioning policy locks (`.msipprov/state.json`, read through
//! [`PolicyLocks`]) is read-only, with "Locked by policy <name>: <reason>"
//! beside it. When the locks cannot be read the error is shown and saving
//! is disabled: what a policy locks is then unknown, and saving could undo
//! an admin's rule.
//!
//! Saving checks every changed value as `msipprov lint` would (the message
//! names the key), reads the locks again and refuses to write a key that is
//! now locked, then writes only the changed keys with [`IniDocument::set`]
//! through [`edit::update_ini`]: the file is read again, every other byte
//! (encoding, line ends, comments, keys changed meanwhile) stays, the old
//! file is kept as `microsip.ini.bak`, and the phone is told to reload.

mod field;
mod groups;

use std::path::PathBuf;

use eframe::egui::{self, RichText};

use crate::config::account::{account_number, section_name, ACCOUNT_KEYS};
use crate::config::schema::KeySpec;
use crate::config::settings::SECTION as SETTINGS_SECTION;
use crate::config::{edit, IniDocument, PolicyLocks, Settings};
use crate::control::Command;

use super::UiAction;
pub use field::lock_text;
use field::Field;
use groups::SETTINGS_TABS;

/// One tab of the dialog.
#[derive(Debug, Clone)]
struct Tab {
    title: String,
    fields: Vec<Field>,
}

/// A line under the tabs.
#[derive(Debug, Clone)]
struct Status {
    text: String,
    error: bool,
}

/// The settings dialog (an egui window over the main one).
#[derive(Debug)]
pub struct SettingsDialog {
    ini_path: PathBuf,
    open: bool,
    tabs: Vec<Tab>,
    current: usize,
    /// The ini cannot be read: nothing to edit.
    load_error: Option<String>,
    /// The policy locks cannot be read: saving is disabled.
    locks_error: Option<String>,
    status: Option<Status>,
}

/// The tabs for `doc`, with the locks applied.
fn build_tabs(doc: &IniDocument, locks: &PolicyLocks) -> Vec<Tab> {
    let field = |section: &str, spec: &'static KeySpec| {
        let lock = locks.lock_for(section, spec.name).cloned();
        Field::read(doc, section, spec, lock)
    };
    let mut tabs: Vec<Tab> = SETTINGS_TABS
        .iter()
        .map(|(title, keys)| Tab {
            title: (*title).to_owned(),
            fields: keys
                .iter()
                .filter_map(|key| Settings::spec(key))
                .map(|spec| field(SETTINGS_SECTION, spec))
                .collect(),
        })
        .collect();
    let mut accounts: Vec<(u32, &str)> = doc
        .section_names()
        .filter_map(|name| account_number(name).map(|n| (n, name)))
        .filter(|(n, _)| *n >= 1)
        .collect();
    accounts.sort_unstable();
    accounts.dedup_by_key(|(n, _)| *n);
    for (n, _) in accounts {
        let section = section_name(n);
        tabs.push(Tab {
            title: format!("Account {n}"),
            fields: ACCOUNT_KEYS
                .iter()
                .map(|spec| field(&section, spec))
                .collect(),
        });
    }
    tabs
}

impl SettingsDialog {
    /// A closed dialog for the ini at `ini_path`.
    pub fn new(ini_path: PathBuf) -> Self {
        Self {
            ini_path,
            open: false,
            tabs: Vec::new(),
            current: 0,
            load_error: None,
            locks_error: None,
            status: None,
        }
    }

    /// Opens the dialog with the file and the locks as they are now.
    pub fn open(&mut self) {
        self.open = true;
        self.status = None;
        self.load();
    }

    /// Whether the dialog is showing.
    pub fn is_open(&self) -> bool {
        self.open
    }

    fn load(&mut self) {
        let locks = match PolicyLocks::load_for_ini(&self.ini_path) {
            Ok(locks) => {
                self.locks_error = None;
                locks
            }
            Err(e) => {
                tracing::warn!(error = %e, "policy locks not readable");
                self.locks_error = Some(e.to_string());
                PolicyLocks::new()
            }
        };
        match edit::load_ini(&self.ini_path) {
            Ok(doc) => {
                self.tabs = build_tabs(&doc, &locks);
                self.load_error = None;
            }
            Err(e) => {
                self.tabs.clear();
                self.load_error = Some(e.to_string());
            }
        }
        self.current = self.current.min(self.tabs.len().saturating_sub(1));
    }

    /// Draws the dialog when open; a successful save pushes `Reload`.
    pub fn show(&mut self, ctx: &egui::Context, out: &mut Vec<UiAction>) {
        if !self.open {
            return;
        }
        let mut open = true;
        egui::Window::new("Settings")
            .open(&mut open)
            .default_size([560.0, 480.0])
            .collapsible(false)
            .show(ctx, |ui| self.contents(ui, out));
        // The title bar's close button.
        if !open {
            self.open = false;
        }
    }

    fn contents(&mut self, ui: &mut egui::Ui, out: &mut Vec<UiAction>) {
        let error = ui.visuals().error_fg_color;
        if let Some(e) = &self.load_error {
            ui.colored_label(error, e);
            ui.horizontal(|ui| {
                if ui.button("Reload").clicked() {
                    self.load();
                }
                if ui.button("Cancel").clicked() {
                    self.open = false;
                }
            });
            return;
        }
        if let Some(e) = &self.locks_error {
            ui.label(
                RichText::new(format!(
                    "{e}\nSaving is disabled: which settings a policy locks is unknown."
                ))
                .color(error)
                .strong(),
            );
        }
        ui.horizontal_wrapped(|ui| {
            for (i, tab) in self.tabs.iter().enumerate() {
                if ui.selectable_label(self.current == i, &tab.title).clicked() {
                    self.current = i;
                }
            }
        });
        ui.separator();
        // Room below the list for the status lines and the buttons, so a
        // long error never pushes Save out of the window.
        let line = ui.text_style_height(&egui::TextStyle::Body) + ui.spacing().item_spacing.y;
        let status_lines = self.status.as_ref().map_or(0, |s| s.text.lines().count());
        let reserve = line * (status_lines as f32 + 2.0) + 16.0;
        if let Some(tab) = self.tabs.get_mut(self.current) {
            let id = tab.title.clone();
            egui::ScrollArea::vertical()
                .id_salt(("settings-tab", &id))
                .max_height((ui.available_height() - reserve).max(120.0))
                .auto_shrink([false, true])
                .show(ui, |ui| {
                    egui::Grid::new(("settings-grid", &id))
                        .num_columns(3)
                        .striped(true)
                        .show(ui, |ui| {
                            for field in &mut tab.fields {
                                let label = ui.label(field.spec.name).on_hover_text(field.spec.doc);
                                field.widget(ui, label.id);
                                field.note(ui);
                                ui.end_row();
                            }
                        });
                });
        }
        if let Some(status) = &self.status {
            let color = if status.error {
                error
            } else {
                ui.visuals().weak_text_color()
            };
            ui.colored_label(color, &status.text);
        }
        ui.separator();
        ui.horizontal(|ui| {
            let can_save = self.locks_error.is_none();
            let save = ui
                .add_enabled(can_save, egui::Button::new("Save"))
                .on_disabled_hover_text("The policy locks cannot be read");
            if save.clicked() {
                self.save(out);
            }
            if ui.button("Cancel").clicked() {
                self.open = false;
            }
        });
    }

    /// Checks and writes the changed keys; closes the dialog on success.
    fn save(&mut self, out: &mut Vec<UiAction>) {
        let changed: Vec<&Field> = self
            .tabs
            .iter()
            .flat_map(|t| &t.fields)
            .filter(|f| f.changed())
            .collect();
        if changed.is_empty() {
            self.open = false;
            return;
        }
        let problems: Vec<String> = changed.iter().filter_map(|f| f.validate().err()).collect();
        if !problems.is_empty() {
            self.fail(format!("Nothing saved:\n{}", problems.join("\n")));
            return;
        }
        // A policy applied while the dialog was open may lock what the user
        // just changed: its rule wins, and nothing is written.
        let locks = match PolicyLocks::load_for_ini(&self.ini_path) {
            Ok(locks) => locks,
            Err(e) => {
                self.locks_error = Some(e.to_string());
                self.fail(format!("Nothing saved: {e}"));
                return;
            }
        };
        let now_locked: Vec<String> = changed
            .iter()
            .filter_map(|f| {
                locks
                    .lock_for(&f.section, f.spec.name)
                    .map(|lock| format!("{}: {}", f.name(), lock_text(lock)))
            })
            .collect();
        if !now_locked.is_empty() {
            self.relock(&locks);
            self.fail(format!("Nothing saved:\n{}", now_locked.join("\n")));
            return;
        }
        let writes: Vec<(String, &'static str, String)> = changed
            .iter()
            .map(|f| (f.section.clone(), f.spec.name, f.raw()))
            .collect();
        let count = writes.len();
        let result = edit::update_ini(&self.ini_path, |doc| {
            for (section, key, raw) in &writes {
                doc.set(section, key, raw)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                tracing::info!(count, "settings saved");
                out.push(UiAction::Run(Command::Reload));
                self.open = false;
            }
            Err(e) => self.fail(format!("Nothing saved: {e}")),
        }
    }

    /// Applies freshly read locks to the fields shown.
    fn relock(&mut self, locks: &PolicyLocks) {
        for field in self.tabs.iter_mut().flat_map(|t| &mut t.fields) {
            field.lock = locks.lock_for(&field.section, field.spec.name).cloned();
            if field.lock.is_some() {
                field.value = field.original.clone();
            }
        }
    }

    fn fail(&mut self, text: String) {
        tracing::warn!(%text, "settings not saved");
        self.status = Some(Status { text, error: true });
    }
}
