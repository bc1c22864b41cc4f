//! msipprov's exit codes, the same for every command, documented in the
//! README and `--help` so logon scripts and fleet reports can act on them.

/// Done: the files are as the template says (changed or unchanged), or
/// every linted file is valid.
pub const OK: u8 = 0;
/// An error: bad template or variables, invalid files, I/O failure.
pub const ERROR: u8 = 1;
/// Usage error: unknown option, missing argument.
pub const USAGE: u8 = 2;
/// A policy violation ([policy]).
pub const POLICY: u8 = 3;
/// The target is busy: a softphone of this user is running.
pub const BUSY: u8 = 4;

/// The text `--help` shows.
pub const HELP: &str = "Exit codes: 0 done (changed or unchanged), 1 error, 2 usage, 3 policy violation, 4 target busy (a softphone is running)";
