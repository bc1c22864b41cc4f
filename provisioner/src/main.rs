//! `msipprov`: the provisioning CLI for MicroSIP-style softphones.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use provisioner::lint::{lint_files, Summary};

/// Exit code: every file is valid / the job succeeded.
const EXIT_OK: u8 = 0;
/// Exit code: at least one file has an error.
const EXIT_INVALID: u8 = 1;
/// Exit code: the command could not run (bad arguments, I/O on output).
const EXIT_FAILURE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "msipprov",
    version,
    about = "Provision and audit MicroSIP-style softphones"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check microsip.ini and Contacts.xml files and print every problem as FILE:LINE: message.
    ///
    /// The kind of each file is detected from its content. Exit codes:
    /// 0 all files valid (warnings allowed), 1 some file has an error, 2 usage error.
    Lint {
        /// Files to check (ini or contacts XML, in any mix).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the problems as a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    init_tracing();
    match run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("msipprov: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Lint { files, json } => {
            let reports = lint_files(&files);
            let diagnostics: Vec<_> = reports.iter().flat_map(|r| &r.diagnostics).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&diagnostics)?);
            } else {
                for d in &diagnostics {
                    println!("{d}");
                }
                eprintln!("{}", Summary::of(&reports));
            }
            Ok(if reports.iter().all(|r| r.is_valid()) {
                EXIT_OK
            } else {
                EXIT_INVALID
            })
        }
    }
}

/// Logs go to stderr, off unless `MSIPPROV_LOG` asks (e.g. `MSIPPROV_LOG=debug`),
/// so logon scripts see only the report.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MSIPPROV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
