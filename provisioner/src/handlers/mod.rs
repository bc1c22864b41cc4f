//! URL handlers: `sip:`, `sips:`, `tel:` and `callto:` links open the
//! provisioned softphone.
//!
//! Windows keeps them in the registry under HKCU (no admin rights needed),
//! Linux in XDG desktop files and `mimeapps.list`. Both sit behind
//! [`HandlerStore`]; [`registry_layout`] is the one description of what
//! Windows gets, used by the registry store and by `--emit-reg`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

pub mod regfile;
#[cfg(windows)]
pub mod windows;
pub mod xdg;

/// The schemes we handle by default.
pub const SCHEMES: [&str; 4] = ["sip", "sips", "tel", "callto"];
/// The application name shown by Windows' Default Apps.
pub const APP_NAME: &str = "msipphone";
/// Our ProgID under `HKCU\Software\Classes`.
pub const PROGID: &str = "msipphone.url";

/// A handler operation that failed.
#[derive(Debug, Error)]
pub enum HandlerError {
    /// An unknown scheme was asked for.
    #[error("unknown scheme {0:?}: msipphone handles sip, sips, tel, callto")]
    UnknownScheme(String),
    /// Reading or writing a handler file failed.
    #[error(transparent)]
    Fs(#[from] crate::fsutil::FsError),
    /// The registry refused.
    #[error("registry {key}: {message}")]
    Registry {
        /// The key.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// The platform has no place for handlers (no home folder).
    #[error("{0}")]
    Unavailable(String),
}

/// Who opens a scheme's links now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Owner {
    /// Our softphone.
    Us,
    /// Another program (its ProgID, command or desktop file).
    Other(String),
    /// Nobody.
    Nobody,
}

/// One scheme's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemeStatus {
    /// The scheme.
    pub scheme: String,
    /// Whether our registration for it is in place.
    pub registered: bool,
    /// Who opens its links now.
    pub owner: Owner,
    /// What the admin should know (e.g. Windows' user choice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What an operation did to one scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemeChange {
    /// The scheme.
    pub scheme: String,
    /// `changed`, `unchanged` or `skipped`.
    pub status: ChangeStatus,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Changed, unchanged, or left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    /// Written or removed.
    Changed,
    /// Already so.
    Unchanged,
    /// Left alone: another program owns the scheme (use --force).
    Skipped,
}

impl ChangeStatus {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Changed => "changed",
            ChangeStatus::Unchanged => "unchanged",
            ChangeStatus::Skipped => "skipped",
        }
    }
}

impl SchemeChange {
    /// A change with no reason attached.
    pub fn new(scheme: &str, status: ChangeStatus) -> Self {
        Self {
            scheme: scheme.to_owned(),
            status,
            why: None,
        }
    }

    /// A scheme left alone, and why.
    pub fn skipped(scheme: &str, why: String) -> Self {
        Self {
            scheme: scheme.to_owned(),
            status: ChangeStatus::Skipped,
            why: Some(why),
        }
    }
}

/// Where handlers are registered on this platform.
pub trait HandlerStore {
    /// Makes `exe` open links of `schemes`. A scheme another program owns
    /// is skipped unless `force`.
    fn register(
        &self,
        exe: &Path,
        schemes: &[String],
        force: bool,
    ) -> Result<Vec<SchemeChange>, HandlerError>;
    /// Removes what [`register`](Self::register) created for `schemes`; a
    /// scheme pointing at another program is left alone unless `force`.
    fn unregister(
        &self,
        exe: &Path,
        schemes: &[String],
        force: bool,
    ) -> Result<Vec<SchemeChange>, HandlerError>;
    /// Who owns each scheme now.
    fn status(&self, exe: &Path, schemes: &[String]) -> Result<Vec<SchemeStatus>, HandlerError>;
}

/// The handler store of the running platform.
pub fn platform_store() -> Result<Box<dyn HandlerStore>, HandlerError> {
    #[cfg(windows)]
    {
        Ok(Box::new(windows::RegistryStore))
    }
    #[cfg(not(windows))]
    {
        Ok(Box::new(xdg::XdgStore::from_env()?))
    }
}

/// Checks and normalises a scheme list (`sip,tel` or repeated flags).
pub fn parse_schemes(list: &[String]) -> Result<Vec<String>, HandlerError> {
    let mut out: Vec<String> = Vec::new();
    for item in list
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let scheme = item.trim_end_matches(':').to_ascii_lowercase();
        if !SCHEMES.contains(&scheme.as_str()) {
            return Err(HandlerError::UnknownScheme(item.to_owned()));
        }
        if !out.contains(&scheme) {
            out.push(scheme);
        }
    }
    Ok(if out.is_empty() {
        SCHEMES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        out
    })
}

/// The installed `msipphone` beside the running `msipprov`.
pub fn default_exe() -> PathBuf {
    let name = format!("msipphone{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// One registry key and the string values register writes in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegKey {
    /// Path under HKEY_CURRENT_USER.
    pub path: String,
    /// `(name, data)`; the empty name is the key's (Default) value.
    pub values: Vec<(String, String)>,
}

/// `"exe" "%1"`: the command Windows runs with the clicked link.
pub fn open_command(exe: &str) -> String {
    format!("\"{exe}\" \"%1\"")
}

/// Everything register writes on Windows, in order: per scheme a URL class
/// with its own open command (what Windows uses when no user choice is
/// set), our ProgID, the Default Apps capabilities, and the
/// RegisteredApplications entry pointing at them.
pub fn registry_layout(exe: &str, schemes: &[String]) -> Vec<RegKey> {
    let icon = format!("\"{exe}\",0");
    let command = open_command(exe);
    let key = |path: String, values: &[(&str, &str)]| RegKey {
        path,
        values: values
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    };
    let mut keys = Vec::new();
    for scheme in schemes {
        let class = format!("Software\\Classes\\{scheme}");
        keys.push(key(
            class.clone(),
            &[
                ("", &format!("URL:{scheme} Protocol")),
                ("URL Protocol", ""),
            ],
        ));
        keys.push(key(format!("{class}\\DefaultIcon"), &[("", &icon)]));
        keys.push(key(
            format!("{class}\\shell\\open\\command"),
            &[("", &command)],
        ));
    }
    let progid = format!("Software\\Classes\\{PROGID}");
    keys.push(key(
        progid.clone(),
        &[("", "msipphone URL"), ("URL Protocol", "")],
    ));
    keys.push(key(format!("{progid}\\DefaultIcon"), &[("", &icon)]));
    keys.push(key(
        format!("{progid}\\shell\\open\\command"),
        &[("", &command)],
    ));
    let caps = format!("Software\\{APP_NAME}\\Capabilities");
    keys.push(key(
        caps.clone(),
        &[
            ("ApplicationName", APP_NAME),
            ("ApplicationDescription", "MicroSIP-compatible softphone"),
        ],
    ));
    let assoc: Vec<(String, String)> = schemes
        .iter()
        .map(|s| (s.clone(), PROGID.to_owned()))
        .collect();
    keys.push(RegKey {
        path: format!("{caps}\\URLAssociations"),
        values: assoc,
    });
    keys.push(key(
        "Software\\RegisteredApplications".to_owned(),
        &[(APP_NAME, &caps)],
    ));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_checked_and_default_to_all() {
        assert_eq!(parse_schemes(&[]).unwrap(), SCHEMES);
        assert_eq!(
            parse_schemes(&["tel:, SIP".into()]).unwrap(),
            vec!["tel", "sip"]
        );
        assert!(matches!(
            parse_schemes(&["http".into()]),
            Err(HandlerError::UnknownScheme(_))
        ));
    }

    #[test]
    fn the_layout_points_every_scheme_at_the_exe() {
        let keys = registry_layout("C:\\Apps\\msipphone.exe", &["sip".into()]);
        let find = |p: &str| keys.iter().find(|k| k.path == p).unwrap();
        assert_eq!(
            find("Software\\Classes\\sip").values[0].1,
            "URL:sip Protocol"
        );
        assert_eq!(
            find("Software\\Classes\\sip").values[1],
            ("URL Protocol".into(), String::new())
        );
        assert_eq!(
            find("Software\\Classes\\sip\\shell\\open\\command").values[0].1,
            "\"C:\\Apps\\msipphone.exe\" \"%1\""
        );
        assert_eq!(
            find("Software\\msipphone\\Capabilities\\URLAssociations").values,
            vec![("sip".to_owned(), PROGID.to_owned())]
        );
        assert_eq!(
            find("Software\\RegisteredApplications").values,
            vec![(
                "msipphone".to_owned(),
                "Software\\msipphone\\Capabilities".to_owned()
            )]
        );
    }
}
