//! `msipphone`: the softphone end users run with the provisioned config.
//!
//! This build loads and reports the configuration (`--print-config`); the
//! SIP stack, media and MicroSIP's automation surface arrive with their
//! issues ([sip-core], [media], [phone]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use serde_json::json;
use softphone::config::{self, validate_ini, Account, CallRecord, ContactList, Dialed, Settings};

#[derive(Parser)]
#[command(name = "msipphone", version, about = "MicroSIP-compatible softphone")]
struct Cli {
    /// The microsip.ini to use (default: the profile's MicroSIP folder).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print, as JSON, the configuration the phone loads (passwords masked), then exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("msipphone: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> Result<u8> {
    if !cli.print_config {
        eprintln!(
            "msipphone: this build has no call engine yet; use --print-config to see what it loads"
        );
        return Ok(2);
    }
    let ini_path = match &cli.config {
        Some(path) => path.clone(),
        None => config::paths::default_ini_path()
            .ok_or_else(|| anyhow!("no profile folder for MicroSIP's files on this system"))?,
    };
    let bytes =
        std::fs::read(&ini_path).with_context(|| format!("cannot read {}", ini_path.display()))?;
    let (doc, diagnostics) = validate_ini(&bytes);
    for d in &diagnostics {
        eprintln!("{}", d.clone().in_file(&ini_path));
    }
    let doc =
        doc.ok_or_else(|| anyhow!("{} is not a readable microsip.ini", ini_path.display()))?;
    let contacts_path = ini_path.with_file_name(config::CONTACTS_FILE_NAME);
    let contacts = match std::fs::read(&contacts_path) {
        Ok(bytes) => ContactList::parse(&bytes)
            .map(|list| list.contacts)
            .with_context(|| format!("{}", contacts_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", contacts_path.display()))
        }
    };
    let report = json!({
        "file": ini_path,
        "encoding": doc.encoding(),
        "settings": Settings::from_document(&doc),
        "accounts": Account::list(&doc),
        "calls": CallRecord::list(&doc),
        "dialed": Dialed::list(&doc),
        "contacts": contacts,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(0)
}
