//! The Contacts tab: MicroSIP's `Contacts.xml` (beside the ini) listed,
//! searched, called and messaged, and edited in place.
//!
//! The file is read and written only through [`crate::config`]: every write
//! goes through [`edit::update_contacts`], which reads the file again, so a
//! contact the user or the provisioner added meanwhile stays; the previous
//! file is kept as `Contacts.xml.bak`. A contact is edited or deleted only if
//! it is still in the file exactly as it was shown: otherwise the list is
//! reloaded and the user told, rather than overwriting a change we never saw.
//! A file that cannot be read is shown with its line and column and is never
//! written.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use eframe::egui::{self, RichText, TextEdit};

use crate::config::edit::{self, EditError};
use crate::config::Contact;
use crate::control::Command;

use super::UiAction;

/// How often the panel looks whether the file changed on disk.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What the form is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FormMode {
    /// A new contact.
    Add,
    /// This contact, as it was in the file when the form opened.
    Edit(Box<Contact>),
}

/// The add/edit form.
#[derive(Debug, Clone)]
struct Form {
    mode: FormMode,
    /// The contact as edited (unknown attributes carried along).
    draft: Contact,
    /// Why the last save failed.
    error: Option<String>,
}

/// What the panel shows instead of the list.
#[derive(Debug, Clone)]
enum Mode {
    List,
    Form(Box<Form>),
    /// Waiting for the user to confirm deleting this contact.
    ConfirmDelete(Box<Contact>),
}

/// The contacts panel.
#[derive(Debug)]
pub struct ContactsPanel {
    path: PathBuf,
    contacts: Vec<Contact>,
    /// The file cannot be read (with line and column): nothing is editable.
    load_error: Option<String>,
    /// What the last write did, or why it failed.
    status: Option<Status>,
    search: String,
    /// The selected contact (by value: a reload keeps it when unchanged).
    selected: Option<Contact>,
    mode: Mode,
    /// Modification time and size of the file last read.
    seen: Option<(SystemTime, u64)>,
    last_poll: Instant,
}

/// A message under the toolbar.
#[derive(Debug, Clone)]
struct Status {
    text: String,
    error: bool,
}

/// The text fields of the form, in MicroSIP's order (`id`, `info` and
/// `directory` belong to directory sources and are not edited by hand).
fn text_fields(c: &mut Contact) -> [(&'static str, &mut String); 12] {
    [
        ("Name", &mut c.name),
        ("Number", &mut c.number),
        ("First name", &mut c.firstname),
        ("Last name", &mut c.lastname),
        ("Phone", &mut c.phone),
        ("Mobile", &mut c.mobile),
        ("E-mail", &mut c.email),
        ("Address", &mut c.address),
        ("City", &mut c.city),
        ("State", &mut c.state),
        ("Zip", &mut c.zip),
        ("Comment", &mut c.comment),
    ]
}

/// Whether `contact` matches the search text (case-insensitive, on names
/// and numbers).
fn matches(contact: &Contact, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    [
        &contact.name,
        &contact.number,
        &contact.firstname,
        &contact.lastname,
        &contact.phone,
        &contact.mobile,
    ]
    .iter()
    .any(|field| field.to_lowercase().contains(needle))
}

impl ContactsPanel {
    /// A panel for the contacts file at `contacts_path` (read at once; a
    /// missing file is an empty list).
    pub fn new(contacts_path: PathBuf) -> Self {
        let mut panel = Self {
            path: contacts_path,
            contacts: Vec::new(),
            load_error: None,
            status: None,
            search: String::new(),
            selected: None,
            mode: Mode::List,
            seen: None,
            last_poll: Instant::now(),
        };
        panel.reload();
        panel
    }

    /// The contacts as last read, in file order (for naming callers).
    pub fn contacts(&self) -> &[Contact] {
        &self.contacts
    }

    /// Reads the file again (also done by itself when the file changes).
    pub fn reload(&mut self) {
        self.seen = self.file_stamp();
        match edit::load_contacts(&self.path) {
            Ok(list) => {
                self.contacts = list.contacts;
                self.load_error = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "contacts file not readable");
                self.contacts.clear();
                self.load_error = Some(e.to_string());
            }
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| !self.contacts.contains(s))
        {
            self.selected = None;
        }
    }

    fn file_stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(&self.path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    /// Reloads when the file changed on disk (looked at once a second).
    fn poll(&mut self) {
        if self.last_poll.elapsed() < POLL_INTERVAL {
            return;
        }
        self.last_poll = Instant::now();
        if self.file_stamp() != self.seen {
            self.reload();
        }
    }

    /// Draws the panel; calls and chats the user asks for go to `out`.
    pub fn ui(&mut self, ui: &mut egui::Ui, out: &mut Vec<UiAction>) {
        self.poll();
        if let Some(error) = &self.load_error {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("{error}\nThe contacts cannot be edited until the file is fixed."),
            );
            if ui.button("Reload").clicked() {
                self.reload();
            }
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::List) {
            Mode::List => self.list_ui(ui, out),
            Mode::Form(form) => self.form_ui(ui, form),
            Mode::ConfirmDelete(contact) => self.confirm_ui(ui, contact),
        }
    }

    fn status_ui(&self, ui: &mut egui::Ui) {
        if let Some(status) = &self.status {
            let color = if status.error {
                ui.visuals().error_fg_color
            } else {
                ui.visuals().weak_text_color()
            };
            ui.colored_label(color, &status.text);
        }
    }

    fn list_ui(&mut self, ui: &mut egui::Ui, out: &mut Vec<UiAction>) {
        ui.horizontal(|ui| {
            let label = ui.label("Search");
            ui.add(TextEdit::singleline(&mut self.search).hint_text("name or number"))
                .labelled_by(label.id);
        });
        let selected = self.selected.clone();
        ui.horizontal(|ui| {
            if ui.button("Add").clicked() {
                self.mode = Mode::Form(Box::new(Form {
                    mode: FormMode::Add,
                    draft: Contact::default(),
                    error: None,
                }));
            }
            let edit = ui
                .add_enabled(selected.is_some(), egui::Button::new("Edit"))
                .on_disabled_hover_text("Select a contact first");
            if edit.clicked() {
                if let Some(contact) = &selected {
                    self.mode = Mode::Form(Box::new(Form {
                        mode: FormMode::Edit(Box::new(contact.clone())),
                        draft: contact.clone(),
                        error: None,
                    }));
                }
            }
            let delete = ui
                .add_enabled(selected.is_some(), egui::Button::new("Delete"))
                .on_disabled_hover_text("Select a contact first");
            if delete.clicked() {
                if let Some(contact) = &selected {
                    self.mode = Mode::ConfirmDelete(Box::new(contact.clone()));
                }
            }
        });
        self.status_ui(ui);
        ui.separator();

        let needle = self.search.trim().to_lowercase();
        let mut shown: Vec<&Contact> = self
            .contacts
            .iter()
            .filter(|c| !c.number.is_empty() && matches(c, &needle))
            .collect();
        // MicroSIP lists contacts by name; the file keeps its own order.
        shown.sort_by_key(|c| c.display_name().to_lowercase());
        if shown.is_empty() {
            ui.weak(if self.contacts.is_empty() {
                "No contacts yet."
            } else {
                "No contact matches."
            });
        }
        let mut select = None;
        egui::ScrollArea::vertical()
            .id_salt("contacts")
            .auto_shrink([false, true])
            .show(ui, |ui| {
                for (i, contact) in shown.iter().enumerate() {
                    ui.push_id(i, |ui| {
                        ui.horizontal(|ui| {
                            let is_selected = self.selected.as_ref() == Some(*contact);
                            let mut text = RichText::new(contact.display_name());
                            if contact.starred {
                                text = text.strong();
                            }
                            let row = ui
                                .selectable_label(is_selected, text)
                                .on_hover_text(&contact.number);
                            if row.clicked() {
                                select = Some((*contact).clone());
                            }
                            if row.double_clicked() {
                                out.push(UiAction::Run(Command::Dial(contact.number.clone())));
                            }
                            if contact.name != contact.number && !contact.name.is_empty() {
                                ui.weak(&contact.number);
                            }
                            let call = ui
                                .small_button("Call")
                                .on_hover_text(format!("Call {}", contact.number));
                            if call.clicked() {
                                out.push(UiAction::Run(Command::Dial(contact.number.clone())));
                            }
                            let message = ui
                                .small_button("Message")
                                .on_hover_text(format!("Message {}", contact.number));
                            if message.clicked() {
                                out.push(UiAction::OpenChat(contact.number.clone()));
                            }
                        });
                    });
                }
            });
        if let Some(contact) = select {
            self.selected = Some(contact);
        }
    }

    fn form_ui(&mut self, ui: &mut egui::Ui, mut form: Box<Form>) {
        ui.heading(match form.mode {
            FormMode::Add => "Add contact",
            FormMode::Edit(_) => "Edit contact",
        });
        egui::Grid::new("contact-form")
            .num_columns(2)
            .show(ui, |ui| {
                for (name, value) in text_fields(&mut form.draft) {
                    let label = ui.label(name);
                    ui.add(TextEdit::singleline(value).id_salt(("contact-field", name)))
                        .labelled_by(label.id);
                    ui.end_row();
                }
                let label = ui.label("Presence");
                ui.checkbox(&mut form.draft.presence, "Subscribe to presence")
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Starred");
                ui.checkbox(&mut form.draft.starred, "Favourite")
                    .labelled_by(label.id);
                ui.end_row();
            });
        if let Some(error) = &form.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        let mut keep_open = true;
        ui.horizontal(|ui| {
            if ui.button("Save").clicked() {
                match self.save(&form) {
                    Ok(()) => keep_open = false,
                    Err(e) => form.error = Some(e),
                }
            }
            if ui.button("Cancel").clicked() {
                keep_open = false;
            }
        });
        if keep_open {
            self.mode = Mode::Form(form);
        }
    }

    fn confirm_ui(&mut self, ui: &mut egui::Ui, contact: Box<Contact>) {
        ui.label(
            RichText::new(format!(
                "Delete {} ({}) from the contacts?",
                contact.display_name(),
                contact.number
            ))
            .color(ui.visuals().warn_fg_color),
        );
        let mut keep_open = true;
        ui.horizontal(|ui| {
            if ui.button("Yes, delete").clicked() {
                keep_open = false;
                let result = self.write(|contacts| {
                    let at = position(contacts, &contact)?;
                    contacts.remove(at);
                    Ok(())
                });
                self.status = Some(match result {
                    Ok(()) => Status {
                        text: format!("Deleted {}.", contact.display_name()),
                        error: false,
                    },
                    Err(text) => Status { text, error: true },
                });
            }
            if ui.button("Cancel").clicked() {
                keep_open = false;
            }
        });
        if keep_open {
            self.mode = Mode::ConfirmDelete(contact);
        }
    }

    /// Checks and writes the form; the error is for the user.
    fn save(&mut self, form: &Form) -> Result<(), String> {
        let mut draft = form.draft.clone();
        draft.number = draft.number.trim().to_owned();
        draft.name = draft.name.trim().to_owned();
        if draft.number.is_empty() {
            return Err("Number: required (MicroSIP skips a contact without a number).".into());
        }
        if let Some((name, _)) = text_fields(&mut draft)
            .into_iter()
            .find(|(_, v)| v.contains('\0'))
        {
            return Err(format!("{name}: a NUL character cannot be stored."));
        }
        let shown = draft.display_name().to_owned();
        let result = match &form.mode {
            FormMode::Add => self.write(|contacts| {
                contacts.push(draft);
                Ok(())
            }),
            FormMode::Edit(original) => self.write(|contacts| {
                let at = position(contacts, original)?;
                contacts[at] = draft;
                Ok(())
            }),
        };
        result?;
        self.status = Some(Status {
            text: format!("Saved {shown}."),
            error: false,
        });
        Ok(())
    }

    /// Applies `change` to the file as it is now and shows the result.
    fn write(
        &mut self,
        change: impl FnOnce(&mut Vec<Contact>) -> Result<(), EditError>,
    ) -> Result<(), String> {
        let mut after = None;
        let result = edit::update_contacts(&self.path, |list| {
            change(&mut list.contacts)?;
            after = Some(list.contacts.clone());
            Ok(())
        });
        match result {
            Ok(()) => {
                if let Some(contacts) = after {
                    self.contacts = contacts;
                }
                self.seen = self.file_stamp();
                self.selected = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "contacts not written");
                // The file may have changed under us: show it as it is.
                self.reload();
                Err(e.to_string())
            }
        }
    }
}

/// Where `contact` is in `contacts`, exactly as it was shown.
fn position(contacts: &[Contact], contact: &Contact) -> Result<usize, EditError> {
    contacts.iter().position(|c| c == contact).ok_or_else(|| {
        EditError::Rejected(format!(
            "{} ({}) was changed or removed in Contacts.xml meanwhile; the list is reloaded, try again.",
            contact.display_name(),
            contact.number
        ))
    })
}
