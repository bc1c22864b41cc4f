//! The Calls tab: the `[Calls]` log MicroSIP keeps in the ini, newest
//! first, read through [`crate::config`], with a call-back button per call.

use std::path::PathBuf;

use eframe::egui::{self, RichText};

use crate::config::{edit, CallKind, CallRecord};
use crate::control::Command;
use crate::media::device::CivilTime;

use super::UiAction;

/// The call history panel.
#[derive(Debug)]
pub struct HistoryPanel {
    ini_path: PathBuf,
    /// Newest first.
    records: Vec<CallRecord>,
    /// The ini cannot be read.
    error: Option<String>,
}

/// How a call's kind is shown: a mark and a word.
fn kind_text(kind: CallKind) -> (&'static str, &'static str) {
    match kind {
        CallKind::Incoming => ("<-", "incoming"),
        CallKind::Outgoing => ("->", "outgoing"),
        CallKind::Missed => ("!", "missed"),
        CallKind::AnsweredElsewhere => ("<-", "answered elsewhere"),
    }
}

/// `YYYY-MM-DD HH:MM` in the local time zone (the log holds Unix seconds).
pub fn format_time(unix_seconds: i64) -> String {
    format_civil(&CivilTime::local(unix_seconds))
}

fn format_civil(t: &CivilTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

/// `m:ss`, or `h:mm:ss` from an hour on.
pub fn format_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

impl HistoryPanel {
    /// A panel for the log in the ini at `ini_path` (read at once).
    pub fn new(ini_path: PathBuf) -> Self {
        let mut panel = Self {
            ini_path,
            records: Vec::new(),
            error: None,
        };
        panel.reload();
        panel
    }

    /// Reads the log again (after every call end: the phone has just
    /// written it).
    pub fn reload(&mut self) {
        match edit::load_ini(&self.ini_path) {
            Ok(doc) => {
                let mut records = CallRecord::list(&doc);
                records.reverse();
                self.records = records;
                self.error = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "call log not readable");
                self.records.clear();
                self.error = Some(e.to_string());
            }
        }
    }

    /// The calls shown, newest first.
    pub fn records(&self) -> &[CallRecord] {
        &self.records
    }

    /// Draws the list; "Call back" pushes a `Dial` to `out`.
    pub fn ui(&mut self, ui: &mut egui::Ui, out: &mut Vec<UiAction>) {
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
            if ui.button("Reload").clicked() {
                self.reload();
            }
            return;
        }
        if self.records.is_empty() {
            ui.weak("No calls yet.");
            return;
        }
        let missed = ui.visuals().error_fg_color;
        egui::ScrollArea::vertical()
            .id_salt("history")
            .auto_shrink([false, true])
            .show(ui, |ui| {
                egui::Grid::new("history-grid")
                    .num_columns(6)
                    .striped(true)
                    .show(ui, |ui| {
                        for record in &self.records {
                            let (mark, word) = kind_text(record.kind);
                            let mut mark = RichText::new(mark).monospace();
                            if record.kind == CallKind::Missed {
                                mark = mark.color(missed);
                            }
                            ui.label(mark).on_hover_text(word);
                            ui.label(word);
                            let name = if record.name.is_empty() {
                                &record.number
                            } else {
                                &record.name
                            };
                            ui.label(RichText::new(name).strong());
                            ui.label(&record.number);
                            ui.label(format_time(record.time))
                                .on_hover_text(&record.info);
                            ui.horizontal(|ui| {
                                ui.label(format_duration(record.duration));
                                let back = ui
                                    .small_button("Call back")
                                    .on_hover_text(format!("Call {}", record.number));
                                if back.clicked() {
                                    out.push(UiAction::Run(Command::Dial(record.number.clone())));
                                }
                            });
                            ui.end_row();
                        }
                    });
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_as_people_write_them() {
        let utc = |t| format_civil(&CivilTime::from_unix(t, 0));
        assert_eq!(utc(1_756_109_189), "2025-08-25 08:06");
        assert_eq!(utc(0), "1970-01-01 00:00");
        let cest = format_civil(&CivilTime::from_unix(1_756_109_189, 2 * 3_600));
        assert_eq!(cest, "2025-08-25 10:06");
        assert_eq!(format_duration(0), "0:00");
        assert_eq!(format_duration(75), "1:15");
        assert_eq!(format_duration(3_725), "1:02:05");
    }
}
