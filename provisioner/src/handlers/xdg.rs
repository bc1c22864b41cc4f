//! URL handlers on Linux (and other XDG desktops), without xdg-utils:
//! `$XDG_DATA_HOME/applications/msipphone.desktop` declares the schemes
//! (`MimeType=x-scheme-handler/sip;...`), and `$XDG_CONFIG_HOME/mimeapps.list`
//! `[Default Applications]` makes it their default. `mimeapps.list` is
//! edited through the lossless ini document, so every other line stays.

use std::path::{Path, PathBuf};

use softphone::config::{Encoding, IniDocument};

use super::{ChangeStatus, HandlerError, HandlerStore, Owner, SchemeChange, SchemeStatus};
use crate::fsutil::{FsError, Transaction};

/// Our desktop file's name.
pub const DESKTOP_FILE: &str = "msipphone.desktop";
const DEFAULTS: &str = "Default Applications";
const ADDED: &str = "Added Associations";

/// The XDG folders handlers live in.
#[derive(Debug, Clone)]
pub struct XdgStore {
    /// `$XDG_DATA_HOME` (default `~/.local/share`).
    pub data_home: PathBuf,
    /// `$XDG_CONFIG_HOME` (default `~/.config`).
    pub config_home: PathBuf,
}

fn mime(scheme: &str) -> String {
    format!("x-scheme-handler/{scheme}")
}

impl XdgStore {
    /// The folders from the environment, as the XDG base directory spec says.
    pub fn from_env() -> Result<Self, HandlerError> {
        match (dirs::data_dir(), dirs::config_dir()) {
            (Some(data_home), Some(config_home)) => Ok(Self {
                data_home,
                config_home,
            }),
            _ => Err(HandlerError::Unavailable(
                "no home folder: set HOME or XDG_DATA_HOME and XDG_CONFIG_HOME".to_owned(),
            )),
        }
    }

    fn desktop_path(&self) -> PathBuf {
        self.data_home.join("applications").join(DESKTOP_FILE)
    }

    fn mimeapps_path(&self) -> PathBuf {
        self.config_home.join("mimeapps.list")
    }

    fn read_mimeapps(&self) -> Result<(Option<Vec<u8>>, IniDocument), HandlerError> {
        let path = self.mimeapps_path();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let doc = IniDocument::parse(&bytes)
                    .map_err(|e| HandlerError::Unavailable(format!("{}: {e}", path.display())))?;
                Ok((Some(bytes), doc))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok((None, IniDocument::from_text(Encoding::Utf8, "")))
            }
            Err(source) => Err(FsError {
                action: "cannot read",
                path,
                source,
            }
            .into()),
        }
    }

    /// A `msipphone.desktop` that msipprov did not write (a package's, say):
    /// never overwritten or removed without --force.
    fn foreign_desktop(&self) -> bool {
        std::fs::read_to_string(self.desktop_path())
            .is_ok_and(|text| !text.contains("X-Msipprov-Managed=true"))
    }

    /// The schemes our desktop file declares, when it runs `exe`.
    fn declared(&self, exe: &Path) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.desktop_path()) else {
            return Vec::new();
        };
        let doc = IniDocument::from_text(Encoding::Utf8, &text);
        if doc.get("Desktop Entry", "Exec") != Some(exec_line(exe).as_str()) {
            return Vec::new();
        }
        doc.get("Desktop Entry", "MimeType")
            .unwrap_or_default()
            .split(';')
            .filter_map(|m| m.strip_prefix("x-scheme-handler/"))
            .map(str::to_owned)
            .collect()
    }
}

fn foreign(schemes: &[String], path: &Path) -> Vec<SchemeChange> {
    schemes
        .iter()
        .map(|s| {
            SchemeChange::skipped(
                s,
                format!(
                    "{} was not written by msipprov (use --force)",
                    path.display()
                ),
            )
        })
        .collect()
}

/// The desktop file that opens `scheme` links now, per `mimeapps.list`.
fn default_app(list: &IniDocument, scheme: &str) -> Option<String> {
    list.get(DEFAULTS, &mime(scheme))
        .and_then(first_app)
        .map(str::to_owned)
}

/// The first desktop file of a `mimeapps.list` value (`a.desktop;b.desktop;`).
fn first_app(value: &str) -> Option<&str> {
    value.split(';').map(str::trim).find(|s| !s.is_empty())
}

/// `Exec=` per the desktop entry spec: the program quoted, with `"`, `` ` ``,
/// `$` and `\` escaped inside the quotes, and `%` doubled.
fn exec_line(exe: &Path) -> String {
    let mut quoted = String::from("\"");
    for c in exe.to_string_lossy().chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '%' => quoted.push_str("%%"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    format!("{quoted} %u")
}

fn desktop_entry(exe: &Path, schemes: &[String]) -> String {
    let mimes: String = schemes.iter().map(|s| format!("{};", mime(s))).collect();
    format!(
        "[Desktop Entry]\nType=Application\nName=msipphone\nComment=MicroSIP-compatible softphone\n\
         Exec={}\nTerminal=false\nNoDisplay=true\nMimeType={mimes}\nX-Msipprov-Managed=true\n",
        exec_line(exe)
    )
}

impl HandlerStore for XdgStore {
    fn register(
        &self,
        exe: &Path,
        schemes: &[String],
        force: bool,
    ) -> Result<Vec<SchemeChange>, HandlerError> {
        if self.foreign_desktop() && !force {
            return Ok(foreign(schemes, &self.desktop_path()));
        }
        let (old_list, mut list) = self.read_mimeapps()?;
        let mut ours = self.declared(exe);
        let mut changes = Vec::new();
        for scheme in schemes {
            let key = mime(scheme);
            let current = default_app(&list, scheme);
            match current.as_deref() {
                Some(other) if other != DESKTOP_FILE && !force => {
                    changes.push(SchemeChange::skipped(scheme, format!("owned by {other}")));
                    continue;
                }
                _ => {}
            }
            let edited = list
                .set(DEFAULTS, &key, DESKTOP_FILE)
                .map_err(|e| HandlerError::Unavailable(e.to_string()))?;
            let declared = ours.contains(scheme);
            if !declared {
                ours.push(scheme.clone());
            }
            let status = if edited == softphone::config::Edit::Unchanged && declared {
                ChangeStatus::Unchanged
            } else {
                ChangeStatus::Changed
            };
            changes.push(SchemeChange::new(scheme, status));
        }
        let desktop = desktop_entry(exe, &ours);
        let desktop_path = self.desktop_path();
        let mut tx = Transaction::new();
        if std::fs::read_to_string(&desktop_path).ok().as_deref() != Some(desktop.as_str())
            && !ours.is_empty()
        {
            tx.stage(&desktop_path, desktop.as_bytes(), false)?;
        }
        let new_list = list.to_bytes();
        if old_list.as_deref() != Some(new_list.as_slice()) {
            tx.stage(&self.mimeapps_path(), &new_list, false)?;
        }
        tx.commit()?;
        Ok(changes)
    }

    fn unregister(
        &self,
        exe: &Path,
        schemes: &[String],
        force: bool,
    ) -> Result<Vec<SchemeChange>, HandlerError> {
        if self.foreign_desktop() && !force {
            return Ok(foreign(schemes, &self.desktop_path()));
        }
        let (old_list, mut list) = self.read_mimeapps()?;
        let mut ours = self.declared(exe);
        let mut changes = Vec::new();
        for scheme in schemes {
            let key = mime(scheme);
            let current = default_app(&list, scheme);
            let declared = ours.contains(scheme);
            match current.as_deref() {
                Some(other) if other != DESKTOP_FILE && !force => {
                    ours.retain(|s| s != scheme);
                    let status = if declared {
                        ChangeStatus::Changed
                    } else {
                        ChangeStatus::Skipped
                    };
                    changes.push(SchemeChange {
                        scheme: scheme.clone(),
                        status,
                        why: Some(format!("the default stays {other}, which is not ours")),
                    });
                    continue;
                }
                Some(_) => {
                    list.remove(DEFAULTS, &key);
                }
                None => {}
            }
            // An "Added Associations" entry naming us only would dangle.
            if list.get(ADDED, &key) == Some(DESKTOP_FILE)
                || list.get(ADDED, &key) == Some("msipphone.desktop;")
            {
                list.remove(ADDED, &key);
            }
            ours.retain(|s| s != scheme);
            let status = if current.is_some() || declared {
                ChangeStatus::Changed
            } else {
                ChangeStatus::Unchanged
            };
            changes.push(SchemeChange::new(scheme, status));
        }
        let mut tx = Transaction::new();
        let desktop_path = self.desktop_path();
        if ours.is_empty() {
            tx.stage_removal(&desktop_path)?;
        } else {
            tx.stage(&desktop_path, desktop_entry(exe, &ours).as_bytes(), false)?;
        }
        let new_list = list.to_bytes();
        if old_list.is_some() && old_list.as_deref() != Some(new_list.as_slice()) {
            tx.stage(&self.mimeapps_path(), &new_list, false)?;
        }
        tx.commit()?;
        Ok(changes)
    }

    fn status(&self, exe: &Path, schemes: &[String]) -> Result<Vec<SchemeStatus>, HandlerError> {
        let (_, list) = self.read_mimeapps()?;
        let ours = self.declared(exe);
        Ok(schemes
            .iter()
            .map(|scheme| {
                let registered = ours.contains(scheme);
                let owner = match default_app(&list, scheme).as_deref() {
                    Some(DESKTOP_FILE) if registered => Owner::Us,
                    Some(other) => Owner::Other(other.to_owned()),
                    None => Owner::Nobody,
                };
                let note = match (&owner, registered) {
                    (Owner::Other(other), _) => Some(format!(
                        "links open {other}; `handlers register --force` makes msipphone the default"
                    )),
                    (Owner::Nobody, true) => Some("declared but not the default: desktops may ask the user".to_owned()),
                    _ => None,
                };
                SchemeStatus {
                    scheme: scheme.clone(),
                    registered,
                    owner,
                    note,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> XdgStore {
        XdgStore {
            data_home: dir.join("data"),
            config_home: dir.join("config"),
        }
    }

    fn all() -> Vec<String> {
        super::super::SCHEMES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn register_status_unregister_keep_the_rest_of_mimeapps() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let exe = Path::new("/opt/msip phone/msipphone");
        let list = "# mine\n[Default Applications]\ntext/html=firefox.desktop\nx-scheme-handler/tel=other.desktop;\n\n[Added Associations]\nimage/png=eog.desktop;\n";
        crate::fsutil::write_atomic(&s.mimeapps_path(), list.as_bytes(), false).unwrap();
        let changes = s.register(exe, &all(), false).unwrap();
        let status: Vec<&str> = changes.iter().map(|c| c.status.as_str()).collect();
        assert_eq!(status, vec!["changed", "changed", "skipped", "changed"]);
        assert_eq!(changes[2].why.as_deref(), Some("owned by other.desktop"));
        let desktop = std::fs::read_to_string(s.desktop_path()).unwrap();
        assert!(
            desktop.contains("Exec=\"/opt/msip phone/msipphone\" %u\n"),
            "{desktop}"
        );
        assert!(
            desktop.contains(
                "MimeType=x-scheme-handler/sip;x-scheme-handler/sips;x-scheme-handler/callto;\n"
            ),
            "{desktop}"
        );
        let after = std::fs::read_to_string(s.mimeapps_path()).unwrap();
        assert_eq!(
            after,
            "# mine\n[Default Applications]\ntext/html=firefox.desktop\nx-scheme-handler/tel=other.desktop;\nx-scheme-handler/sip=msipphone.desktop\nx-scheme-handler/sips=msipphone.desktop\nx-scheme-handler/callto=msipphone.desktop\n\n[Added Associations]\nimage/png=eog.desktop;\n"
        );
        let again = s.register(exe, &all(), false).unwrap();
        assert!(
            again.iter().all(|c| c.status != ChangeStatus::Changed),
            "{again:?}"
        );

        let st = s.status(exe, &all()).unwrap();
        assert_eq!(st[0].owner, Owner::Us);
        assert_eq!(st[2].owner, Owner::Other("other.desktop".into()));
        assert!(!st[2].registered);

        s.register(exe, &["tel".into()], true).unwrap();
        assert_eq!(
            s.status(exe, &["tel".into()]).unwrap()[0].owner,
            Owner::Us,
            "--force takes it"
        );

        s.unregister(exe, &all(), false).unwrap();
        assert!(!s.desktop_path().exists());
        assert_eq!(
            std::fs::read_to_string(s.mimeapps_path()).unwrap(),
            "# mine\n[Default Applications]\ntext/html=firefox.desktop\n\n[Added Associations]\nimage/png=eog.desktop;\n"
        );
        assert!(s
            .status(exe, &all())
            .unwrap()
            .iter()
            .all(|x| x.owner == Owner::Nobody && !x.registered));
    }

    #[test]
    fn a_desktop_file_msipprov_did_not_write_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let packaged = "[Desktop Entry]\nExec=/usr/bin/msipphone %u\n";
        crate::fsutil::write_atomic(&s.desktop_path(), packaged.as_bytes(), false).unwrap();
        let exe = Path::new("/opt/other/msipphone");
        assert!(s
            .unregister(exe, &all(), false)
            .unwrap()
            .iter()
            .all(|c| c.status == ChangeStatus::Skipped));
        assert!(s
            .register(exe, &all(), false)
            .unwrap()
            .iter()
            .all(|c| c.status == ChangeStatus::Skipped));
        assert_eq!(std::fs::read_to_string(s.desktop_path()).unwrap(), packaged);
    }

    #[test]
    fn exec_lines_are_escaped() {
        assert_eq!(exec_line(Path::new("/a/b")), "\"/a/b\" %u");
        assert_eq!(
            exec_line(Path::new("/a/$x\"100%")),
            "\"/a/\\$x\\\"100%%\" %u"
        );
    }
}
