//! Floor for scripts/bench/bulk-rollout: the least any bulk rollout has to
//! do on this file system, single-threaded and without dependencies. For each
//! user of the list (the first column of every line after the header) it
//! creates OUT/<username>/ and writes a SIZE-byte microsip.ini through a
//! temporary file in the same folder, fsync, a rename and an fsync of the
//! folder, like msipprov's atomic write. No parsing beyond that, no
//! rendering, no encoding, no state.json.
//!
//! Build: rustc -O scripts/bench/floor.rs -o floor
//! Usage: floor USERS.csv OUT SIZE

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

fn write_one(folder: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(folder)?;
    let temp = folder.join(".microsip.ini.floor.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, folder.join("microsip.ini"))?;
    File::open(folder)?.sync_all()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, users, out, size] = &args[..] else {
        eprintln!("usage: floor USERS.csv OUT SIZE");
        return ExitCode::from(2);
    };
    let size: usize = match size.parse() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("floor: SIZE {size:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let list = match fs::read_to_string(users) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("floor: cannot read {users}: {e}");
            return ExitCode::from(1);
        }
    };
    let bytes: Vec<u8> = (0..size).map(|i| b"floor-"[i % 6]).collect();
    let out = Path::new(out);
    let mut failed = 0u32;
    for line in list.lines().skip(1) {
        let name = line.split(';').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        if let Err(e) = write_one(&out.join(name), &bytes) {
            eprintln!("floor: {name}: {e}");
            failed += 1;
        }
    }
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
