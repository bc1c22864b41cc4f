//! `msipphone`: the softphone end users run with the provisioned config.
//!
//! `--print-config` reports the configuration the phone loads;
//! `--headless` runs the phone without a window: it registers its accounts
//! and prints every event as a JSON line until it is stopped (Ctrl+C or
//! SIGTERM), then hangs up and un-registers. Media and MicroSIP's
//! automation surface arrive with their issues ([media], [phone]).

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
    /// Run without a window: register, print events as JSON lines, stop on Ctrl+C/SIGTERM.
    #[arg(long)]
    headless: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr (stdout carries JSON); MSIPPHONE_LOG=debug for more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MSIPPHONE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("msipphone: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> Result<u8> {
    if !cli.print_config && !cli.headless {
        eprintln!(
            "msipphone: this build has no window yet; use --headless to run the phone, or --print-config to see what it loads"
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
    if cli.headless {
        return headless(&doc);
    }
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

/// Runs the phone without a window until Ctrl+C or SIGTERM.
fn headless(doc: &config::IniDocument) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let phone_config = softphone::app::PhoneConfig {
            settings: Settings::from_document(doc),
            accounts: Account::list(doc),
            bind: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            // MicroSIP has no key for it; private PBX CAs come from the
            // environment until the settings dialog grows one.
            tls_ca: std::env::var_os("MSIPPHONE_TLS_CA").map(std::path::PathBuf::from),
        };
        let (phone, task) = softphone::app::start(phone_config).await?;
        let mut events = phone.subscribe();
        eprintln!("msipphone: listening on {}", phone.local_addr());
        phone.register_all().await?;
        let printer = tokio::spawn(async move {
            use std::io::Write;
            while let Ok(event) = events.recv().await {
                if let Ok(line) = serde_json::to_string(&event) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
        });
        stop_signal().await;
        phone.shutdown(task).await;
        // The driver is gone; with the last handle dropped the stream ends
        // after the final events (un-registrations) are printed.
        drop(phone);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), printer).await;
        Ok::<u8, anyhow::Error>(0)
    })
}

/// Ctrl+C everywhere; SIGTERM too on Unix (how services and tests stop us).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
