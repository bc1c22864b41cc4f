//! Merging what a template renders into the files a user already has.
//!
//! Keys the template renders are managed: their values are replaced. Every
//! other key, section, comment and byte of the file stays as it was (the
//! user's audio devices, window positions, `[Calls]`, `[Dialed]`). Edits go
//! through [`IniDocument::set`], which rewrites one line in place.

use std::borrow::Cow;

use softphone::config::{Contact, ContactList, Encoding, IniDocument, IniError, Password};

use crate::state::{contact_id, key_id, State};

/// How the template's result meets the file already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Replace managed keys (or contacts), keep everything else.
    #[default]
    Merge,
    /// Start from nothing: the file holds exactly what the template renders.
    Replace,
}

/// The merged ini and what the merge noticed.
#[derive(Debug, Clone)]
pub struct IniMerge<'a> {
    /// The document to write: the rendered one itself when the merge
    /// changes nothing in it (a fresh profile; not copied).
    pub doc: Cow<'a, IniDocument>,
    /// `Section/key` of passwords left as MicroSIP encrypted them, because
    /// the template's password is the one written before.
    pub kept_encrypted: Vec<String>,
    /// Set when the file had to change encoding: MicroSIP reads only UTF-16
    /// LE with BOM as Unicode, and the merged text is not plain ASCII.
    pub converted_from: Option<Encoding>,
}

/// Whether a key holds a password MicroSIP encrypts on start.
fn is_password(section: &str, key: &str) -> bool {
    key.eq_ignore_ascii_case("password")
        && softphone::config::account::account_number(section).is_some()
}

/// Merges `rendered` into `existing` (or into nothing, in replace mode or
/// when there is no file yet).
pub fn merge_ini<'a>(
    existing: Option<&IniDocument>,
    rendered: &'a IniDocument,
    mode: Mode,
    state: &State,
) -> Result<IniMerge<'a>, IniError> {
    let mut doc = match (mode, existing) {
        (Mode::Merge, Some(doc)) => doc.clone(),
        // Nothing to merge into, and the rendered text is already what
        // setting its keys one by one would write: take it as it is
        // (every fresh profile of a bulk rollout).
        _ if builds_itself(rendered) => {
            return Ok(IniMerge {
                doc: Cow::Borrowed(rendered),
                kept_encrypted: Vec::new(),
                converted_from: None,
            })
        }
        _ => IniDocument::new(),
    };
    let mut kept_encrypted = Vec::new();
    for section in rendered.all_sections() {
        for entry in &section.entries {
            let raw = rendered
                .get_raw(section.name, entry.key)
                .unwrap_or_default();
            let mut value = raw.to_owned();
            if is_password(section.name, entry.key) {
                let old = existing.and_then(|d| d.get_raw(section.name, entry.key));
                let id = key_id(section.name, entry.key);
                if let Some(old) = old {
                    if Password::looks_encrypted(old) && state.secret_matches(&id, entry.value) {
                        value = old.to_owned();
                        kept_encrypted.push(id);
                    }
                }
            }
            doc.set(section.name, entry.key, &value)?;
        }
    }
    let mut converted_from = None;
    if doc.encoding() != Encoding::Utf16LeBom && !doc.to_text().is_ascii() {
        converted_from = Some(doc.encoding());
        doc.set_encoding(Encoding::Utf16LeBom);
    }
    Ok(IniMerge {
        doc: Cow::Owned(doc),
        kept_encrypted,
        converted_from,
    })
}

/// Whether setting every entry of `doc` into an empty document gives `doc`
/// back line for line: only `[section]` and `key=value` lines as
/// [`IniDocument::set`] writes them, CRLF, no section without keys, no
/// section or key twice, UTF-16 LE (a new document's encoding).
fn builds_itself(doc: &IniDocument) -> bool {
    use softphone::config::document::LineKind;
    use softphone::config::encoding::LineEnding;
    if doc.encoding() != Encoding::Utf16LeBom || doc.has_duplicates() {
        return false;
    }
    let mut section_has_keys = true;
    let mut in_section = false;
    for line in doc.lines() {
        if line.ending() != LineEnding::CrLf {
            return false;
        }
        match line.kind() {
            LineKind::Section { name } => {
                let exact = line.text().len() == name.len() + 2
                    && line.text().starts_with('[')
                    && line.text()[1..].starts_with(name.as_str());
                if !section_has_keys || !exact {
                    return false;
                }
                section_has_keys = false;
                in_section = true;
            }
            LineKind::Entry { key, value } => {
                let exact = line.text().len() == key.len() + 1 + value.len()
                    && line.text().starts_with(key.as_str())
                    && line.text()[key.len()..].starts_with('=')
                    && line.text().ends_with(value.as_str());
                if !in_section || !exact {
                    return false;
                }
                section_has_keys = true;
            }
            _ => return false,
        }
    }
    section_has_keys
}

/// Records in `state` what the template wrote: secret hashes for
/// passwords and for keys holding a secret variable, values for the rest.
pub fn record_ini(state: &mut State, rendered: &IniDocument, secrets: &[String]) {
    for section in rendered.all_sections() {
        for entry in &section.entries {
            let id = key_id(section.name, entry.key);
            let secret = is_password(section.name, entry.key)
                || secrets
                    .iter()
                    // As for masking: one or two characters match by chance.
                    .any(|s| s.chars().count() >= 3 && entry.value.contains(s.as_str()));
            if secret {
                state.written.remove(&id);
                state.secrets.insert(id, state.hash_secret(entry.value));
            } else {
                state.secrets.remove(&id);
                state.written.insert(id, entry.value.to_owned());
            }
        }
    }
}

/// Merges the template's contacts into the user's. In merge mode the
/// contacts the previous run wrote (known from `state`) are replaced by the
/// template's, the user's own stay, in their order, before them; a user
/// contact identical in number and name to a template contact is taken as
/// the template's, so a first run does not duplicate an imported directory.
pub fn merge_contacts(
    existing: Option<&ContactList>,
    rendered: &ContactList,
    mode: Mode,
    state: &State,
) -> ContactList {
    let managed_before: std::collections::HashSet<&str> =
        state.contacts.iter().map(String::as_str).collect();
    let new_ids: std::collections::HashSet<String> = rendered
        .contacts
        .iter()
        .map(|c| contact_id(&c.number, &c.name))
        .collect();
    let mut contacts: Vec<Contact> = match (mode, existing) {
        (Mode::Merge, Some(list)) => list
            .contacts
            .iter()
            .filter(|c| {
                let id = contact_id(&c.number, &c.name);
                !managed_before.contains(id.as_str()) && !new_ids.contains(&id)
            })
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    contacts.extend(rendered.contacts.iter().cloned());
    ContactList { contacts }
}

/// Records in `state` which contacts the template wrote.
pub fn record_contacts(state: &mut State, rendered: &ContactList) {
    state.contacts = rendered
        .contacts
        .iter()
        .map(|c| contact_id(&c.number, &c.name))
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ini(text: &str) -> IniDocument {
        IniDocument::from_text(Encoding::Utf16LeBom, text)
    }

    #[test]
    fn a_rendered_file_taken_as_it_is_equals_one_built_key_by_key() {
        for text in [
            "[Settings]\r\naccountId=1\r\n[Account1]\r\nserver=pbx\r\nlabel=\r\n",
            "[A]\r\nk = v\r\n",
            "[A]\r\nk=1\r\nK=2\r\n",
            "[A]\r\n; note\r\nk=1\r\n",
            "[A]\r\n\r\nk=1\r\n",
            "[A]\r\n[B]\r\nk=1\r\n",
            "[A]\r\nk=1\r\n[a]\r\nj=2\r\n",
            "[A]\nk=1\n",
            "k=0\r\n[A]\r\nk=1\r\n",
            "[ A ]\r\nk=\"quoted\"\r\n",
        ] {
            let rendered = ini(text);
            let built = (|| {
                let mut built = IniDocument::new();
                for section in rendered.all_sections() {
                    for entry in &section.entries {
                        let raw = rendered
                            .get_raw(section.name, entry.key)
                            .unwrap_or_default();
                        built.set(section.name, entry.key, raw)?;
                    }
                }
                Ok::<_, IniError>(built)
            })();
            let merged = merge_ini(None, &rendered, Mode::Merge, &State::new());
            match (merged, built) {
                (Ok(merged), Ok(built)) => {
                    assert_eq!(merged.doc.to_bytes(), built.to_bytes(), "{text:?}");
                    assert_eq!(
                        builds_itself(&rendered),
                        *merged.doc == rendered,
                        "{text:?}"
                    );
                }
                (Err(_), Err(_)) => assert!(!builds_itself(&rendered), "{text:?}"),
                (merged, built) => panic!("{text:?}: {merged:?} vs {built:?}"),
            }
        }
        assert!(builds_itself(&ini("[A]\r\nk=1\r\n")));
    }

    const ENCRYPTED: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn managed_keys_change_and_everything_else_stays() {
        let user = ini("[Settings]\r\naudioInputDevice=\"Mic\"\r\nEC=0\r\n; mine\r\n[Account1]\r\nserver=old\r\nlabel=Mine\r\n[Calls]\r\n0=1;a;0;1;1;\r\n");
        let rendered = ini("[Settings]\r\nEC=1\r\n[Account1]\r\nserver=new\r\n");
        let merged = merge_ini(Some(&user), &rendered, Mode::Merge, &State::new()).unwrap();
        assert_eq!(
            merged.doc.to_text(),
            "[Settings]\r\naudioInputDevice=\"Mic\"\r\nEC=1\r\n; mine\r\n[Account1]\r\nserver=new\r\nlabel=Mine\r\n[Calls]\r\n0=1;a;0;1;1;\r\n"
        );
        let replaced = merge_ini(Some(&user), &rendered, Mode::Replace, &State::new()).unwrap();
        assert_eq!(
            replaced.doc.to_text(),
            "[Settings]\r\nEC=1\r\n[Account1]\r\nserver=new\r\n"
        );
    }

    #[test]
    fn a_password_microsip_encrypted_is_kept_while_the_template_keeps_it() {
        let rendered = ini("[Account1]\r\ndomain=d\r\npassword=s3cret\r\n");
        let mut state = State::new();
        record_ini(&mut state, &rendered, &[]);
        assert!(
            !state.written.contains_key("Account1/password"),
            "never stored in clear"
        );
        let after_microsip = ini(&format!(
            "[Account1]\r\ndomain=d\r\npassword={ENCRYPTED}\r\n"
        ));
        let merged = merge_ini(Some(&after_microsip), &rendered, Mode::Merge, &state).unwrap();
        assert_eq!(*merged.doc, after_microsip, "nothing to write");
        assert_eq!(merged.kept_encrypted, vec!["Account1/password"]);
        let changed = ini("[Account1]\r\ndomain=d\r\npassword=n3w\r\n");
        let merged = merge_ini(Some(&after_microsip), &changed, Mode::Merge, &state).unwrap();
        assert_eq!(merged.doc.get("Account1", "password"), Some("n3w"));
    }

    #[test]
    fn non_ascii_moves_a_utf8_file_to_utf16() {
        let user = IniDocument::from_text(Encoding::Utf8, "[Settings]\nEC=1\n");
        let rendered = ini("[Account1]\r\nlabel=Офис\r\n");
        let merged = merge_ini(Some(&user), &rendered, Mode::Merge, &State::new()).unwrap();
        assert_eq!(merged.converted_from, Some(Encoding::Utf8));
        assert_eq!(merged.doc.encoding(), Encoding::Utf16LeBom);
        let ascii = ini("[Account1]\r\nlabel=Office\r\n");
        let merged = merge_ini(Some(&user), &ascii, Mode::Merge, &State::new()).unwrap();
        assert_eq!(merged.doc.encoding(), Encoding::Utf8);
    }

    fn contact(name: &str, number: &str) -> Contact {
        Contact {
            name: name.into(),
            number: number.into(),
            ..Contact::default()
        }
    }

    #[test]
    fn contacts_merge_replaces_ours_and_keeps_theirs() {
        let mut state = State::new();
        let v1 = ContactList {
            contacts: vec![contact("Reception", "100"), contact("Old", "199")],
        };
        record_contacts(&mut state, &v1);
        let user = ContactList {
            contacts: vec![
                contact("Mum", "555"),
                contact("Reception", "100"),
                contact("Old", "199"),
            ],
        };
        let v2 = ContactList {
            contacts: vec![contact("Reception", "100"), contact("Sales", "200")],
        };
        let merged = merge_contacts(Some(&user), &v2, Mode::Merge, &state);
        let names: Vec<&str> = merged.contacts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["Mum", "Reception", "Sales"]);
        let replaced = merge_contacts(Some(&user), &v2, Mode::Replace, &state);
        assert_eq!(replaced, v2);
    }
}
