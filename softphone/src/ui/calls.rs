//! The calls list: every call with its state and duration and the buttons
//! for that call (Hang up, Hold/Resume, Transfer, DTMF), each a command
//! naming the call (`call=N`), as `ctl` would send it; and the global Mute.
//! Ringing incoming calls are answered or rejected in their popup
//! ([`super::incoming`]).

use eframe::egui;

use super::core::{CallPhase, CallStatus, StatusView};
use super::dialpad::clean_number;
use super::incoming::caller_name;
use super::UiAction;
use crate::config::Contact;
use crate::control::command::CallId;
use crate::control::Command;

/// What the calls list keeps between frames.
#[derive(Debug, Default)]
pub struct CallsView {
    /// The call whose transfer target is being asked for, and the target typed.
    transfer: Option<(u64, String)>,
    /// The call the keypad sends DTMF to.
    dtmf: Option<u64>,
    /// Why the last transfer target was refused.
    transfer_error: Option<String>,
}

impl CallsView {
    /// The connected call the keypad sends DTMF to, if one is chosen.
    pub fn dtmf_call(&self, status: Option<&StatusView>) -> Option<u64> {
        let id = self.dtmf?;
        status
            .and_then(|s| s.call(id))
            .filter(|c| c.state == CallPhase::Connected)
            .map(|c| c.id)
    }

    /// Stops sending the keypad to a call.
    pub fn close_dtmf(&mut self) {
        self.dtmf = None;
    }

    /// Draws the list (and the Mute button).
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        status: Option<&StatusView>,
        contacts: &[Contact],
        out: &mut Vec<UiAction>,
    ) {
        let muted = status.is_some_and(|s| s.audio.muted);
        ui.horizontal(|ui| {
            ui.strong("Calls");
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.add(egui::Button::new("Mute").selected(muted)).clicked() {
                    out.push(UiAction::Run(Command::Mute));
                }
                if muted {
                    ui.colored_label(ui.visuals().warn_fg_color, "mic off");
                }
            });
        });
        let calls: Vec<&CallStatus> = status
            .map(|s| {
                s.calls
                    .iter()
                    .filter(|c| c.state != CallPhase::Ended)
                    .collect()
            })
            .unwrap_or_default();
        if calls.is_empty() {
            ui.weak("No calls");
            self.transfer = None;
            self.dtmf = None;
            return;
        }
        if let Some((id, _)) = &self.transfer {
            if !calls
                .iter()
                .any(|c| c.id == *id && c.state == CallPhase::Connected)
            {
                self.transfer = None;
            }
        }
        for call in calls {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_width(ui.available_width());
                self.call_row(ui, call, contacts, out);
            });
        }
    }

    fn call_row(
        &mut self,
        ui: &mut egui::Ui,
        call: &CallStatus,
        contacts: &[Contact],
        out: &mut Vec<UiAction>,
    ) {
        let id = Some(CallId(call.id));
        let name = caller_name(contacts, &call.remote, &call.remote_name);
        ui.horizontal(|ui| {
            ui.strong(&name);
            ui.label(describe(call));
        });
        if name != call.remote {
            ui.weak(&call.remote);
        }
        ui.horizontal_wrapped(|ui| match call.state {
            CallPhase::Incoming => {
                ui.weak("ringing: answer in the popup");
            }
            CallPhase::Connected => {
                if ui.button("Hang up").clicked() {
                    out.push(UiAction::Run(Command::Hangup(id)));
                }
                let hold = if call.held { "Resume" } else { "Hold" };
                if ui.button(hold).clicked() {
                    out.push(UiAction::Run(Command::Hold(id)));
                }
                if ui.button("Transfer").clicked() {
                    self.transfer = Some((call.id, String::new()));
                    self.transfer_error = None;
                }
                let dtmf_on = self.dtmf == Some(call.id);
                if ui
                    .add(egui::Button::new("DTMF").selected(dtmf_on))
                    .clicked()
                {
                    self.dtmf = if dtmf_on { None } else { Some(call.id) };
                }
            }
            _ => {
                if ui.button("Hang up").clicked() {
                    out.push(UiAction::Run(Command::Hangup(id)));
                }
            }
        });
        if self.transfer.as_ref().is_some_and(|(t, _)| *t == call.id) {
            self.transfer_prompt(ui, call.id, out);
        }
    }

    /// Asks where to transfer `call` to.
    fn transfer_prompt(&mut self, ui: &mut egui::Ui, call: u64, out: &mut Vec<UiAction>) {
        let Some((_, target)) = self.transfer.as_mut() else {
            return;
        };
        let mut submit = false;
        let mut cancel = false;
        ui.horizontal(|ui| {
            let label = ui.label("Transfer to");
            let response = ui
                .add(egui::TextEdit::singleline(target).desired_width(120.0))
                .labelled_by(label.id);
            if response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                submit = true;
            }
            if ui.button("Transfer call").clicked() {
                submit = true;
            }
            if ui.button("Cancel").clicked() {
                cancel = true;
            }
        });
        if submit {
            match clean_number(target) {
                Ok(to) => {
                    out.push(UiAction::Run(Command::Transfer {
                        to,
                        call: Some(CallId(call)),
                    }));
                    self.transfer = None;
                    self.transfer_error = None;
                }
                Err(e) => self.transfer_error = Some(e),
            }
        }
        if cancel {
            self.transfer = None;
            self.transfer_error = None;
        }
        if let Some(e) = &self.transfer_error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
    }
}

/// `connected 01:05`, `on hold 00:12`, `ringing`, ...
pub fn describe(call: &CallStatus) -> String {
    let state = match call.state {
        CallPhase::Calling => "calling",
        CallPhase::Ringing => "ringing",
        CallPhase::Incoming => "incoming",
        CallPhase::Connected if call.held => "on hold",
        CallPhase::Connected if call.remote_held => "held by them",
        CallPhase::Connected => "connected",
        CallPhase::Ended => "ended",
        CallPhase::Unknown => "",
    };
    if call.state == CallPhase::Connected {
        format!("{state} {}", duration(call.duration))
    } else {
        state.to_owned()
    }
}

/// `mm:ss`, or `h:mm:ss` from an hour on.
pub fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_phone_shows_them() {
        assert_eq!(duration(0), "00:00");
        assert_eq!(duration(65), "01:05");
        assert_eq!(duration(3600 + 2 * 60 + 3), "1:02:03");
    }

    #[test]
    fn a_held_call_says_so() {
        let mut call = CallStatus {
            id: 1,
            account: 1,
            direction: "outgoing".into(),
            remote: "sip:1@x".into(),
            remote_name: String::new(),
            state: CallPhase::Connected,
            duration: 12,
            held: true,
            remote_held: false,
            codec: None,
        };
        assert_eq!(describe(&call), "on hold 00:12");
        call.held = false;
        assert_eq!(describe(&call), "connected 00:12");
        call.state = CallPhase::Ringing;
        assert_eq!(describe(&call), "ringing");
    }
}
