//! Where MicroSIP's files live for the current user.
//!
//! An installed MicroSIP keeps them in `%APPDATA%\MicroSIP` (the roaming
//! profile); our Linux twin uses `$XDG_CONFIG_HOME/MicroSIP`. `dirs`
//! resolves both (`config_dir` is FOLDERID_RoamingAppData on Windows), so
//! no platform module is needed here.

use std::path::PathBuf;

use super::{CONTACTS_FILE_NAME, INI_FILE_NAME};

/// The folder of the provisioned config: `%APPDATA%\MicroSIP` on Windows,
/// `$XDG_CONFIG_HOME/MicroSIP` (default `~/.config/MicroSIP`) elsewhere.
/// `None` when the platform reports no such folder (no home directory).
pub fn default_config_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("MicroSIP"))
}

/// `microsip.ini` in [`default_config_dir`].
pub fn default_ini_path() -> Option<PathBuf> {
    default_config_dir().map(|dir| dir.join(INI_FILE_NAME))
}

/// `Contacts.xml` in [`default_config_dir`].
pub fn default_contacts_path() -> Option<PathBuf> {
    default_config_dir().map(|dir| dir.join(CONTACTS_FILE_NAME))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn follows_xdg_config_home() {
        // dirs reads XDG_CONFIG_HOME when it is an absolute path.
        if let Ok(home) = std::env::var("XDG_CONFIG_HOME") {
            if home.starts_with('/') {
                assert_eq!(
                    default_config_dir(),
                    Some(PathBuf::from(home).join("MicroSIP"))
                );
            }
        }
        let dir = default_config_dir().expect("a test machine has a home");
        assert!(dir.ends_with("MicroSIP"));
        assert_eq!(default_ini_path(), Some(dir.join("microsip.ini")));
    }
}
