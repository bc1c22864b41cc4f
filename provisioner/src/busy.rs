//! Is a softphone of this user running on the target right now?
//!
//! MicroSIP saves every setting when it exits, so a file written under a
//! running MicroSIP (or msipphone) is overwritten at logoff. Apply checks
//! before it writes and stops with exit code 4 unless forced.

use serde::Serialize;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

/// Process names of the softphones whose config we write (compared without
/// case). Linux truncates process names to 15 characters, which all fit.
pub const PHONE_NAMES: &[&str] = &["msipphone", "msipphone.exe", "microsip.exe", "microsip"];

/// A running softphone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningPhone {
    /// Its process id.
    pub pid: u32,
    /// Its process name.
    pub name: String,
}

/// The softphones of the current user that are running now.
pub fn running_phones() -> Vec<RunningPhone> {
    let names = phone_names();
    let Ok(mut system) = System::new() else {
        tracing::warn!("cannot list processes; assuming no softphone runs");
        return Vec::new();
    };
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_user(UpdateKind::OnlyIfNotSet),
    );
    let me = sysinfo::get_current_pid().ok();
    let my_user = me
        .and_then(|pid| system.process(pid))
        .and_then(|p| p.user_id().cloned());
    let mut found: Vec<RunningPhone> = system
        .processes()
        .iter()
        .filter(|(pid, _)| Some(**pid) != me)
        .filter(|(_, p)| my_user.is_none() || p.user_id() == my_user.as_ref())
        .filter_map(|(pid, p)| {
            let name = p.name().to_string_lossy().into_owned();
            names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&name))
                .then(|| RunningPhone {
                    pid: pid.as_u32(),
                    name,
                })
        })
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

/// The names to look for. Debug builds let tests name their own stand-in
/// process (`MSIPPROV_TEST_PHONE_NAMES=a,b`), so parallel tests do not see
/// each other's.
fn phone_names() -> Vec<String> {
    if cfg!(debug_assertions) {
        if let Ok(list) = std::env::var("MSIPPROV_TEST_PHONE_NAMES") {
            return list.split(',').map(str::to_owned).collect();
        }
    }
    PHONE_NAMES.iter().map(|s| (*s).to_owned()).collect()
}
