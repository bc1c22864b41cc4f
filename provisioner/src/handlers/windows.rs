//! URL handlers on Windows: per-user keys under
//! `HKEY_CURRENT_USER\Software\Classes` (no admin rights), written exactly as
//! [`registry_layout`] describes them, the same layout `--emit-reg` writes.
//!
//! Windows 8 and later open a link with the program the user chose
//! (`...\UrlAssociations\<scheme>\UserChoice`), a key only Windows itself can
//! write. Without one, the scheme's own class and its open command decide.
//! Register therefore writes both the class (effective at once when nobody
//! was chosen) and the Default Apps capabilities (so the user can pick
//! msipphone), and status says when only the user can change the choice.

use std::path::Path;

use windows_registry::{Key, Type, CURRENT_USER, LOCAL_MACHINE};

use super::{
    open_command, registry_layout, ChangeStatus, HandlerError, HandlerStore, Owner, SchemeChange,
    SchemeStatus, APP_NAME, PROGID, SCHEMES,
};

/// Registers URL handlers in the current user's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistryStore;

/// Where the user's choice of a scheme's program lives.
const USER_CHOICE: &str = "Software\\Microsoft\\Windows\\Shell\\Associations\\UrlAssociations";
/// Where Default Apps looks for applications.
const REGISTERED_APPLICATIONS: &str = "Software\\RegisteredApplications";

/// A URL class: a scheme's, or our ProgID.
fn class_key(class: &str) -> String {
    format!("Software\\Classes\\{class}")
}

/// The key whose (Default) value is the command a class opens links with.
fn command_key(class: &str) -> String {
    format!("Software\\Classes\\{class}\\shell\\open\\command")
}

/// The key listing the schemes we told Default Apps about.
fn url_associations_key() -> String {
    format!("Software\\{APP_NAME}\\Capabilities\\URLAssociations")
}

/// What status says when only the user can make msipphone the default.
fn user_choice_note(scheme: &str) -> String {
    format!(
        "Windows 10 and later let only the user choose the default program for {scheme}: links: \
         Settings > Default apps > Choose defaults by link type > {}, pick {APP_NAME}",
        scheme.to_ascii_uppercase()
    )
}

/// A root key, with the name error messages show.
#[derive(Clone, Copy)]
struct Hive {
    root: &'static Key,
    name: &'static str,
}

const HKCU: Hive = Hive {
    root: CURRENT_USER,
    name: "HKEY_CURRENT_USER",
};
const HKLM: Hive = Hive {
    root: LOCAL_MACHINE,
    name: "HKEY_LOCAL_MACHINE",
};

/// `ERROR_FILE_NOT_FOUND` and `ERROR_PATH_NOT_FOUND` as HRESULTs.
const NOT_FOUND: [u32; 2] = [0x8007_0002, 0x8007_0003];

impl Hive {
    /// `Ok(None)` for a missing key or value, the registry's error otherwise.
    fn found<T>(
        self,
        path: &str,
        result: windows_registry::Result<T>,
    ) -> Result<Option<T>, HandlerError> {
        match result {
            Ok(value) => Ok(Some(value)),
            // The HRESULT's bits, compared as the unsigned codes Windows documents.
            Err(e) if NOT_FOUND.contains(&(e.code().0 as u32)) => Ok(None),
            Err(e) => Err(self.error(path, e)),
        }
    }

    fn error(self, path: &str, e: impl std::fmt::Display) -> HandlerError {
        HandlerError::Registry {
            key: format!("{}\\{path}", self.name),
            message: e.to_string(),
        }
    }

    /// The string value `name` of `path` (`""` for the key's (Default)).
    fn get(self, path: &str, name: &str) -> Result<Option<String>, HandlerError> {
        let Some(key) = self.found(path, self.root.open(path))? else {
            return Ok(None);
        };
        self.found(path, key.get_string(name))
    }

    /// Sets a string value, creating the key; `true` when it was not so.
    fn set(self, path: &str, name: &str, data: &str) -> Result<bool, HandlerError> {
        let key = self.root.create(path).map_err(|e| self.error(path, e))?;
        let same = key.get_type(name).ok() == Some(Type::String)
            && key.get_string(name).ok().as_deref() == Some(data);
        if !same {
            key.set_string(name, data)
                .map_err(|e| self.error(path, e))?;
        }
        Ok(!same)
    }

    /// Removes a key and everything below it; `true` when it was there.
    fn remove_tree(self, path: &str) -> Result<bool, HandlerError> {
        Ok(self.found(path, self.root.remove_tree(path))?.is_some())
    }

    /// Removes one value; `true` when it was there.
    fn remove_value(self, path: &str, name: &str) -> Result<bool, HandlerError> {
        let Some(key) = self.found(path, self.root.options().read().write().open(path))? else {
            return Ok(false);
        };
        Ok(self.found(path, key.remove_value(name))?.is_some())
    }

    /// The command a class opens links with, if it has a non-empty one.
    fn command(self, class: &str) -> Result<Option<String>, HandlerError> {
        Ok(self
            .get(&command_key(class), "")?
            .filter(|c| !c.trim().is_empty()))
    }
}

/// Whether `command` is ours; Windows paths ignore case.
fn is_ours(command: &str, ours: &str) -> bool {
    command.trim().eq_ignore_ascii_case(ours)
}

impl HandlerStore for RegistryStore {
    fn register(
        &self,
        exe: &Path,
        schemes: &[String],
        force: bool,
    ) -> Result<Vec<SchemeChange>, HandlerError> {
        let exe = exe.to_string_lossy();
        let ours = open_command(&exe);
        let mut changes = Vec::new();
        let mut taking = Vec::new();
        for scheme in schemes {
            // Another program may own the scheme for this user (HKCU), for
            // every user (HKLM), or by the user's own choice (UserChoice):
            // each is theirs unless --force.
            let machine = match HKCU.command(scheme)? {
                None => HKLM.command(scheme)?.filter(|c| !is_ours(c, &ours)),
                Some(_) => None,
            };
            let chosen = HKCU
                .get(&format!("{USER_CHOICE}\\{scheme}\\UserChoice"), "ProgId")?
                .filter(|p| !p.eq_ignore_ascii_case(PROGID) && !p.eq_ignore_ascii_case(scheme));
            if !force {
                if let Some(other) = machine {
                    changes.push(SchemeChange::skipped(
                        scheme,
                        format!("owned by {other} (for every user)"),
                    ));
                    continue;
                }
                if let Some(progid) = chosen {
                    changes.push(SchemeChange::skipped(
                        scheme,
                        format!("the user chose {progid}"),
                    ));
                    continue;
                }
            }
            match HKCU.command(scheme)? {
                Some(other) if !is_ours(&other, &ours) && !force => {
                    changes.push(SchemeChange::skipped(scheme, format!("owned by {other}")));
                }
                current => {
                    // Taking a scheme over: drop the other program's keys
                    // (a stale `ddeexec` would still reach it).
                    let replaced = current.is_some_and(|c| !is_ours(&c, &ours))
                        && HKCU.remove_tree(&class_key(scheme))?;
                    changes.push(SchemeChange::new(
                        scheme,
                        if replaced {
                            ChangeStatus::Changed
                        } else {
                            ChangeStatus::Unchanged
                        },
                    ));
                    taking.push(scheme.clone());
                }
            }
        }
        if taking.is_empty() {
            return Ok(changes);
        }
        // Keys of one scheme mark that scheme changed, so do its value in
        // URLAssociations; the other shared keys mark them all.
        let associations = url_associations_key();
        let mut shared_changed = false;
        for key in registry_layout(&exe, &taking) {
            let owner = taking.iter().find(|s| {
                let class = class_key(s);
                key.path == class || key.path.starts_with(&format!("{class}\\"))
            });
            for (name, data) in &key.values {
                if !HKCU.set(&key.path, name, data)? {
                    continue;
                }
                let scheme = owner.or_else(|| (key.path == associations).then_some(name));
                match scheme {
                    Some(scheme) => changes
                        .iter_mut()
                        .filter(|c| &c.scheme == scheme)
                        .for_each(|c| c.status = ChangeStatus::Changed),
                    None => shared_changed = true,
                }
            }
        }
        if shared_changed {
            for change in changes
                .iter_mut()
                .filter(|c| c.status != ChangeStatus::Skipped)
            {
                change.status = ChangeStatus::Changed;
            }
        }
        Ok(changes)
    }

    fn unregister(
        &self,
        exe: &Path,
        schemes: &[String],
        force: bool,
    ) -> Result<Vec<SchemeChange>, HandlerError> {
        let ours = open_command(&exe.to_string_lossy());
        let associations = url_associations_key();
        let mut changes = Vec::new();
        for scheme in schemes {
            let change = match HKCU.command(scheme)? {
                Some(other) if !is_ours(&other, &ours) && !force => {
                    SchemeChange::skipped(scheme, format!("owned by {other}"))
                }
                command => {
                    let removed = command.is_some() && HKCU.remove_tree(&class_key(scheme))?;
                    // Without the class, our Default Apps entry for it is a leftover.
                    let unlisted = HKCU.remove_value(&associations, scheme)?;
                    SchemeChange::new(
                        scheme,
                        if removed || unlisted {
                            ChangeStatus::Changed
                        } else {
                            ChangeStatus::Unchanged
                        },
                    )
                }
            };
            changes.push(change);
        }
        let mut any_left = false;
        for scheme in SCHEMES {
            any_left |= HKCU.command(scheme)?.is_some_and(|c| is_ours(&c, &ours));
        }
        if !any_left {
            HKCU.remove_tree(&class_key(PROGID))?;
            HKCU.remove_tree(&format!("Software\\{APP_NAME}"))?;
            HKCU.remove_value(REGISTERED_APPLICATIONS, APP_NAME)?;
        }
        Ok(changes)
    }

    fn status(&self, exe: &Path, schemes: &[String]) -> Result<Vec<SchemeStatus>, HandlerError> {
        let ours = open_command(&exe.to_string_lossy());
        let mut out = Vec::new();
        for scheme in schemes {
            let command = HKCU.command(scheme)?;
            let registered = command.as_deref().is_some_and(|c| is_ours(c, &ours));
            let choice = HKCU.get(&format!("{USER_CHOICE}\\{scheme}\\UserChoice"), "ProgId")?;
            let (owner, note) = match choice.filter(|p| !p.trim().is_empty()) {
                Some(progid)
                    if progid.eq_ignore_ascii_case(PROGID)
                        || (progid.eq_ignore_ascii_case(scheme) && registered) =>
                {
                    let note = (!registered).then(|| {
                        format!(
                            "the user chose {PROGID} for {scheme}: links, but it is not \
                             registered: run `msipprov handlers register`"
                        )
                    });
                    (Owner::Us, note)
                }
                Some(progid) => (Owner::Other(progid), Some(user_choice_note(scheme))),
                // No user choice: the class decides, the user's over the machine's.
                None => match command {
                    Some(_) if registered => (Owner::Us, None),
                    Some(other) => (Owner::Other(other), None),
                    None => (
                        HKLM.command(scheme)?.map_or(Owner::Nobody, Owner::Other),
                        None,
                    ),
                },
            };
            out.push(SchemeStatus {
                scheme: scheme.clone(),
                registered,
                owner,
                note,
            });
        }
        Ok(out)
    }
}
