//! Helpers for the end-to-end tests: the real `msipprov` and `msipphone`
//! binaries, built from this workspace, and the files shipped with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Real SIP peers (kamailio, sipp, baresip) for the SIP end-to-end tests.
#[cfg(unix)]
pub mod peers;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_owned()
}

/// A file shipped under `examples/`.
pub fn example(name: &str) -> PathBuf {
    workspace().join("examples").join(name)
}

/// The path of a workspace binary, built (once per test process) with the
/// same profile as the running test, so a test never runs a stale binary.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // target/<profile>/deps/<test-binary> -> target/<profile>
        let exe = std::env::current_exe().expect("the test knows its own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binaries live in target/<profile>/deps")
            .to_owned();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(workspace()).args([
            "build",
            "--quiet",
            "--bins",
            "-p",
            "provisioner",
            "-p",
            "softphone",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
        profile_dir
    });
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `msipprov` with `args` and returns its output.
pub fn msipprov(args: &[&str]) -> Output {
    run(&bin("msipprov"), args)
}

/// Runs `msipphone` with `args` and returns its output.
pub fn msipphone(args: &[&str]) -> Output {
    run(&bin("msipphone"), args)
}

fn run(exe: &Path, args: &[&str]) -> Output {
    run_with_env(exe, args, &[])
}

/// Runs `msipprov` with extra environment variables. Unless the test sets
/// it, the busy check looks for a process name no test uses, so tests that
/// start phones cannot make other tests' applies fail.
pub fn msipprov_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut env = env.to_vec();
    if !env.iter().any(|(k, _)| *k == "MSIPPROV_TEST_PHONE_NAMES") {
        env.push(("MSIPPROV_TEST_PHONE_NAMES", "no-such-phone"));
    }
    // apply registers URL handlers: never in the real user's desktop files.
    let xdg = scratch_xdg();
    let data = xdg.join("data");
    let config = xdg.join("config");
    let (data, config) = (
        data.to_str().unwrap_or_default(),
        config.to_str().unwrap_or_default(),
    );
    for (key, value) in [("XDG_DATA_HOME", data), ("XDG_CONFIG_HOME", config)] {
        if !env.iter().any(|(k, _)| *k == key) {
            env.push((key, value));
        }
    }
    run_with_env(&bin("msipprov"), args, &env)
}

fn run_with_env(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(exe)
        .args(args)
        .env_remove("MSIPPROV_LOG")
        .env_remove("MSIPPROV_TEST_FAULT")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

/// A per-test-process folder standing in for the user's XDG folders.
fn scratch_xdg() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("msipprov-e2e-xdg-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
    .clone()
}

/// The shipped template sets.
pub fn templates() -> PathBuf {
    workspace().join("templates")
}

/// Every file below `dir` whose name marks it as one of our temporaries.
pub fn stray_temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".tmp"))
            {
                found.push(p);
            }
        }
    }
    found
}

/// Encodes text the way MicroSIP writes its ini: UTF-16 LE with BOM.
pub fn utf16le_bom(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
