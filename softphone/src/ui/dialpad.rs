//! The number entry and the dial pad: what the user types or pastes
//! becomes the target of a `Dial` command, cleaned as `ctl Dial` cleans it.

use eframe::egui;

use crate::control::command::target;

/// The keys of a phone's keypad, row by row.
pub const KEYS: [[char; 3]; 4] = [
    ['1', '2', '3'],
    ['4', '5', '6'],
    ['7', '8', '9'],
    ['*', '0', '#'],
];

/// The number or URI to dial for what is in the entry: a phone number
/// loses its separators (`+1 (555) 123-4567` -> `+15551234567`, also with
/// the no-break spaces and dashes that come with numbers copied from web
/// pages), a `sip:` URI or user name keeps its text. `Err` says why it
/// cannot be dialled.
pub fn clean_number(typed: &str) -> Result<String, String> {
    target("Dial", plain_text(typed)).map_err(|e| e.to_string())
}

/// What a paste into the number entry inserts: a phone number cleaned
/// (so the field never shows what cannot be dialled, nor characters the
/// window's font lacks), anything else as plain text.
pub fn clean_paste(pasted: &str) -> String {
    let plain = plain_text(pasted);
    match target("Dial", plain.clone()) {
        Ok(clean) => clean,
        Err(_) => plain.trim().to_owned(),
    }
}

/// The no-break and thin spaces and the dashes word processors and web
/// pages put into numbers, and line breaks, as plain ASCII.
fn plain_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{a0}' | '\u{2007}' | '\u{2009}' | '\u{202f}' => ' ',
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            '\r' | '\n' | '\t' => ' ',
            c => c,
        })
        .collect()
}

/// The number entry: a text field labelled "Number" (Enter dials) and the
/// Call button. Returns the target to dial when the user asked to.
pub fn number_entry(ui: &mut egui::Ui, number: &mut String) -> Option<Result<String, String>> {
    let mut dial = false;
    ui.horizontal(|ui| {
        let label = ui.label("Number");
        let id = egui::Id::unique("msipphone number entry");
        // A pasted number goes in cleaned, so what is dialled is what shows.
        if ui.memory(|m| m.has_focus(id)) {
            ui.input_mut(|i| {
                for event in &mut i.events {
                    if let egui::Event::Paste(text) = event {
                        *text = clean_paste(text);
                    }
                }
            });
        }
        let field = egui::TextEdit::singleline(number)
            .id(id)
            .hint_text("number or SIP address")
            .desired_width(ui.available_width() - 60.0);
        let response = ui.add(field).labelled_by(label.id);
        if response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            dial = true;
            response.request_focus();
        }
        if ui
            .add_enabled(!number.trim().is_empty(), egui::Button::new("Call"))
            .clicked()
        {
            dial = true;
        }
    });
    (dial && !number.trim().is_empty()).then(|| clean_number(number))
}

/// A keypad; returns the key pressed this frame.
pub fn keypad(ui: &mut egui::Ui) -> Option<char> {
    let mut pressed = None;
    let size = egui::vec2(48.0, 28.0);
    egui::Grid::new("keypad")
        .spacing([6.0, 6.0])
        .show(ui, |ui| {
            for row in KEYS {
                for key in row {
                    if ui
                        .add_sized(size, egui::Button::new(key.to_string()))
                        .clicked()
                    {
                        pressed = Some(key);
                    }
                }
                ui.end_row();
            }
        });
    pressed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_numbers_lose_their_separators() {
        for (typed, want) in [
            ("555-1234", "5551234"),
            ("+1 (555) 123-4567", "+15551234567"),
            ("+49\u{a0}30\u{2011}1234\u{2013}5", "+493012345"),
            ("555.123.4567\r\n", "5551234567"),
            ("*21#", "*21#"),
        ] {
            assert_eq!(clean_number(typed).as_deref(), Ok(want), "{typed:?}");
        }
        // Blanks in what is not a phone number: no guessing.
        assert!(clean_number("030 / 1234").is_err());
    }

    #[test]
    fn a_paste_is_cleaned_when_it_is_a_number() {
        assert_eq!(clean_paste("+1 (555) 123\u{2011}4567\n"), "+15551234567");
        assert_eq!(clean_paste(" sip:bob@pbx "), "sip:bob@pbx");
        assert_eq!(clean_paste("call me\u{a0}maybe"), "call me maybe");
    }

    #[test]
    fn uris_and_names_keep_their_text() {
        assert_eq!(
            clean_number("sip:alice@pbx.example.com").as_deref(),
            Ok("sip:alice@pbx.example.com")
        );
        assert_eq!(
            clean_number("sip:1001-2@pbx").as_deref(),
            Ok("sip:1001-2@pbx")
        );
        assert_eq!(clean_number("bob").as_deref(), Ok("bob"));
        assert!(clean_number("   ").is_err());
        assert!(clean_number("not a number").is_err());
        assert!(clean_number("sip:\"x\"@y").is_err());
    }
}
