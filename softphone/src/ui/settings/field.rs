//! One key in the settings dialog: its value as read, as edited, the widget
//! its kind calls for, and what is written back.
//!
//! The kind, default, length limit and description of every key come from
//! the typed schema ([`crate::config::schema::KeySpec`]); values are read
//! the way MicroSIP reads them and checked by the same
//! [`ValueType::check`] `msipprov lint` uses.

use eframe::egui::{self, DragValue, RichText, TextEdit};

use crate::config::locks::Lock;
use crate::config::schema::{FromIni, KeySpec};
use crate::config::value::ValueType;
use crate::config::{IniDocument, Severity};

/// A key's value in the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A checkbox.
    Bool(bool),
    /// A number within the key's range.
    Int(i64),
    /// One of the key's words (kept as read when it is none of them).
    Choice(String),
    /// Free text.
    Text(String),
    /// A password: empty means "unchanged"; the stored one is never shown.
    Secret(String),
}

/// One editable key.
#[derive(Debug, Clone)]
pub struct Field {
    /// `Settings` or `AccountN`.
    pub section: String,
    /// The key's schema entry.
    pub spec: &'static KeySpec,
    /// As read when the dialog opened.
    pub original: Value,
    /// As edited.
    pub value: Value,
    /// Whether a password is stored (for the hint; its text is never kept).
    pub has_secret: bool,
    /// The policy lock on the key, if any: the widget is read-only.
    pub lock: Option<Lock>,
}

/// "Locked by policy <name>: <reason>", the text shown beside a locked key.
pub fn lock_text(lock: &Lock) -> String {
    let policy = if lock.policy.is_empty() {
        "(unnamed)"
    } else {
        lock.policy.as_str()
    };
    if lock.reason.is_empty() {
        format!("Locked by policy {policy} ({})", lock.rule)
    } else {
        format!("Locked by policy {policy}: {}", lock.reason)
    }
}

/// Whether Windows' profile reader would change `value` (it trims it and
/// drops one pair of surrounding quotes): such a value is written quoted.
fn needs_quotes(value: &str) -> bool {
    let bytes = value.as_bytes();
    value != value.trim()
        || (bytes.len() >= 2
            && (bytes[0] == b'"' || bytes[0] == b'\'')
            && bytes[0] == bytes[bytes.len() - 1])
}

impl Field {
    /// The key `spec` of `section` as `doc` holds it (MicroSIP's default
    /// when absent).
    pub fn read(
        doc: &IniDocument,
        section: &str,
        spec: &'static KeySpec,
        lock: Option<Lock>,
    ) -> Self {
        let raw = doc.get(section, spec.name);
        let (value, has_secret) = match spec.ty {
            ValueType::Bool(_) => (Value::Bool(bool::from_ini(raw, spec)), false),
            ValueType::Int { min, max } => {
                (Value::Int(i64::from_ini(raw, spec).clamp(min, max)), false)
            }
            ValueType::Enum(_) => (Value::Choice(raw.unwrap_or(spec.default).to_owned()), false),
            ValueType::Password => (
                Value::Secret(String::new()),
                raw.is_some_and(|r| !r.is_empty()),
            ),
            ValueType::Text
            | ValueType::Quoted
            | ValueType::Command
            | ValueType::Codecs
            | ValueType::HostPort
            | ValueType::HostPortList => {
                (Value::Text(raw.unwrap_or(spec.default).to_owned()), false)
            }
        };
        Self {
            section: section.to_owned(),
            spec,
            original: value.clone(),
            value,
            has_secret,
            lock,
        }
    }

    /// Whether the user changed the value.
    pub fn changed(&self) -> bool {
        match &self.value {
            Value::Secret(s) => !s.is_empty(),
            value => *value != self.original,
        }
    }

    /// `[Section] key`, as messages name it.
    pub fn name(&self) -> String {
        format!("[{}] {}", self.section, self.spec.name)
    }

    /// The value as MicroSIP will read it back (unquoted).
    fn text(&self) -> String {
        match &self.value {
            Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
            Value::Int(n) => n.to_string(),
            Value::Choice(s) | Value::Text(s) | Value::Secret(s) => s.clone(),
        }
    }

    /// Checks the edited value as `lint` would; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let text = self.text();
        if text.contains(['\r', '\n', '\0']) {
            return Err(format!(
                "{}: a line break or NUL cannot be stored in the ini",
                self.name()
            ));
        }
        if let Some(problem) = self.spec.ty.check(&text) {
            if problem.severity == Severity::Error {
                return Err(format!("{}: {}", self.name(), problem.message));
            }
        }
        let len = text.encode_utf16().count();
        if len > self.spec.max_len {
            return Err(format!(
                "{}: the value is {len} characters; MicroSIP reads at most {}",
                self.name(),
                self.spec.max_len
            ));
        }
        Ok(())
    }

    /// The text written after `key=`: quoted where MicroSIP quotes it, or
    /// where the reader would otherwise change it.
    pub fn raw(&self) -> String {
        let text = self.text();
        if self.spec.ty == ValueType::Quoted || needs_quotes(&text) {
            format!("\"{text}\"")
        } else {
            text
        }
    }

    /// Draws the widget for the key's kind, named by `label` for screen
    /// readers and tests; read-only when locked.
    pub fn widget(&mut self, ui: &mut egui::Ui, label: egui::Id) -> egui::Response {
        let enabled = self.lock.is_none();
        let id = ("setting", self.section.clone(), self.spec.name);
        let response = match (&mut self.value, self.spec.ty) {
            (Value::Bool(b), _) => ui.add_enabled(enabled, egui::Checkbox::without_text(b)),
            (Value::Int(n), ValueType::Int { min, max }) => {
                ui.add_enabled(enabled, DragValue::new(n).range(min..=max).speed(1.0))
            }
            (Value::Choice(current), ValueType::Enum(words)) => {
                let shown = |w: &str| {
                    if w.is_empty() {
                        "(empty)".to_owned()
                    } else {
                        w.to_owned()
                    }
                };
                let mut selected = shown(current);
                if !words.contains(&current.as_str()) {
                    selected.push_str(" (not valid)");
                }
                ui.add_enabled_ui(enabled, |ui| {
                    egui::ComboBox::from_id_salt(id.clone())
                        .selected_text(selected)
                        .show_ui(ui, |ui| {
                            for word in words {
                                ui.selectable_value(current, (*word).to_owned(), shown(word));
                            }
                        })
                        .response
                })
                .inner
            }
            (Value::Secret(s), _) => {
                let hint = if self.has_secret {
                    "(unchanged)"
                } else {
                    "(none)"
                };
                ui.add_enabled(
                    enabled,
                    TextEdit::singleline(s)
                        .id_salt(id)
                        .password(true)
                        .hint_text(hint)
                        .desired_width(240.0),
                )
            }
            (Value::Text(s) | Value::Choice(s), _) => ui.add_enabled(
                enabled,
                TextEdit::singleline(s).id_salt(id).desired_width(240.0),
            ),
            (Value::Int(n), _) => ui.add_enabled(enabled, DragValue::new(n)),
        };
        let response = response.labelled_by(label);
        match &self.lock {
            Some(lock) => response.on_disabled_hover_text(lock_text(lock)),
            None => response.on_hover_text(self.spec.doc),
        }
    }

    /// Draws the row's third column: the lock, or the key's description.
    pub fn note(&self, ui: &mut egui::Ui) {
        match &self.lock {
            Some(lock) => {
                let text = lock_text(lock);
                ui.label(RichText::new(&text).color(ui.visuals().warn_fg_color))
                    .on_hover_text(text);
            }
            None => {
                ui.label(RichText::new(self.spec.doc).small().weak());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::locks::LockRule;
    use crate::config::settings::Settings;
    use crate::config::{Account, Encoding};

    fn doc(text: &str) -> IniDocument {
        IniDocument::from_text(Encoding::Utf8, text)
    }

    fn spec(key: &str) -> &'static KeySpec {
        Settings::spec(key).expect("a [Settings] key")
    }

    #[test]
    fn values_are_read_as_microsip_reads_them() {
        let d = doc("[Settings]\r\nenableSTUN=2\r\nvolumeRing=250\r\nautoAnswer=sometimes\r\naudioInputDevice=\"Mic (USB)\"\r\n");
        let f = Field::read(&d, "Settings", spec("enableSTUN"), None);
        assert_eq!(f.value, Value::Bool(false), "enableSTUN: only 1 is on");
        let f = Field::read(&d, "Settings", spec("volumeRing"), None);
        assert_eq!(f.value, Value::Int(100), "clamped to the range");
        assert!(!f.changed(), "reading alone changes nothing");
        let f = Field::read(&d, "Settings", spec("autoAnswer"), None);
        assert_eq!(f.value, Value::Choice("sometimes".into()));
        let f = Field::read(&d, "Settings", spec("callWaiting"), None);
        assert_eq!(f.value, Value::Bool(true), "absent: MicroSIP's default");
        let mut f = Field::read(&d, "Settings", spec("audioInputDevice"), None);
        assert_eq!(f.value, Value::Text("Mic (USB)".into()));
        f.value = Value::Text("Headset".into());
        assert_eq!(f.raw(), "\"Headset\"", "device names are written quoted");
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let d = doc("[Settings]\r\n");
        let mut f = Field::read(&d, "Settings", spec("autoAnswer"), None);
        f.value = Value::Choice("Button".into());
        let err = f.validate().expect_err("case matters");
        assert!(err.starts_with("[Settings] autoAnswer: "), "{err}");
        let mut f = Field::read(&d, "Settings", spec("userAgent"), None);
        f.value = Value::Text("x".repeat(300));
        let err = f.validate().expect_err("too long");
        assert!(err.contains("userAgent") && err.contains("300"), "{err}");
        f.value = Value::Text("a\nb".into());
        assert!(f.validate().is_err());
        f.value = Value::Text(" padded ".into());
        assert!(f.validate().is_ok());
        assert_eq!(f.raw(), "\" padded \"", "kept as typed when read back");
    }

    #[test]
    fn passwords_are_never_read_into_the_form() {
        let d = doc("[Account1]\r\ndomain=pbx\r\npassword=s3cret\r\n");
        let spec = Account::spec("password").expect("account key");
        let mut f = Field::read(&d, "Account1", spec, None);
        assert_eq!(f.value, Value::Secret(String::new()));
        assert!(f.has_secret && !f.changed());
        f.value = Value::Secret("n3w".into());
        assert!(f.changed());
        assert_eq!(f.raw(), "n3w");
    }

    #[test]
    fn lock_texts_name_policy_and_reason() {
        let lock = Lock {
            rule: LockRule::Enforce,
            value: Some("0".into()),
            reason: "Logs hold numbers".into(),
            policy: "secure".into(),
        };
        assert_eq!(
            lock_text(&lock),
            "Locked by policy secure: Logs hold numbers"
        );
        let bare = Lock {
            reason: String::new(),
            ..lock
        };
        assert_eq!(lock_text(&bare), "Locked by policy secure (enforce)");
    }
}
