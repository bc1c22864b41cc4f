//! The incoming-call popup: one small window per ringing call, naming the
//! caller (from Contacts.xml when the number is there), with Answer and
//! Reject for that call.

use eframe::egui;

use super::core::{CallPhase, CallStatus};
use super::UiAction;
use crate::config::Contact;
use crate::control::command::CallId;
use crate::control::Command;

/// The user part of a SIP URI (`sip:1001@pbx;transport=tcp` -> `1001`),
/// or the text itself when it is not one.
pub fn user_part(uri: &str) -> &str {
    let rest = uri
        .split_once(':')
        .filter(|(scheme, _)| {
            ["sip", "sips", "tel"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme))
        })
        .map_or(uri, |(_, rest)| rest);
    let rest = rest.split(['@', ';', '?']).next().unwrap_or(rest);
    if rest.is_empty() {
        uri
    } else {
        rest
    }
}

/// Who is calling, for people: the contact's name when the number is in
/// the contacts, else the name the caller sent, else the number.
pub fn caller_name(contacts: &[Contact], remote_uri: &str, remote_name: &str) -> String {
    let user = user_part(remote_uri);
    let found = contacts.iter().find(|c| {
        let number = c.number.trim();
        !number.is_empty()
            && (number.eq_ignore_ascii_case(remote_uri)
                || number == user
                || user_part(number) == user)
    });
    match found {
        Some(contact) if !contact.name.trim().is_empty() => contact.name.trim().to_owned(),
        _ if !remote_name.trim().is_empty() => remote_name.trim().to_owned(),
        _ => user.to_owned(),
    }
}

/// Shows a popup for every ringing incoming call in `calls`.
pub fn popups(
    ctx: &egui::Context,
    calls: &[CallStatus],
    contacts: &[Contact],
    out: &mut Vec<UiAction>,
) {
    for (n, call) in calls
        .iter()
        .filter(|c| c.state == CallPhase::Incoming)
        .enumerate()
    {
        let name = caller_name(contacts, &call.remote, &call.remote_name);
        egui::Window::new("Incoming call")
            .id(egui::Id::unique(("incoming", call.id)))
            .collapsible(false)
            .resizable(false)
            .anchor(
                egui::Align2::CENTER_TOP,
                egui::vec2(0.0, 60.0 + 110.0 * n as f32),
            )
            .show(ctx, |ui| {
                ui.heading(&name);
                if name != call.remote {
                    ui.label(&call.remote);
                }
                ui.horizontal(|ui| {
                    let id = Some(CallId(call.id));
                    if ui.button("Answer").clicked() {
                        out.push(UiAction::Run(Command::Answer(id)));
                    }
                    if ui.button("Reject").clicked() {
                        out.push(UiAction::Run(Command::Reject(id)));
                    }
                });
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str, number: &str) -> Contact {
        Contact {
            name: name.into(),
            number: number.into(),
            ..Contact::default()
        }
    }

    #[test]
    fn callers_are_named_from_the_contacts_first() {
        let contacts = [
            contact("Anna Müller", "1001"),
            contact("Front desk", "sip:desk@pbx.example.com"),
        ];
        assert_eq!(
            caller_name(&contacts, "sip:1001@pbx;transport=tcp", "1001"),
            "Anna Müller"
        );
        assert_eq!(
            caller_name(&contacts, "sip:desk@pbx.example.com", ""),
            "Front desk"
        );
        assert_eq!(caller_name(&contacts, "sip:2002@pbx", "Bob"), "Bob");
        assert_eq!(caller_name(&contacts, "sip:2002@pbx", " "), "2002");
        assert_eq!(user_part("tel:+4930123"), "+4930123");
        assert_eq!(user_part("alice"), "alice");
    }
}
