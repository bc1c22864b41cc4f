//! `msipprov`: the provisioning CLI for MicroSIP-style softphones.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use provisioner::apply::{self, ApplyError, ApplyOptions, FileStatus, Plan};
use provisioner::exit;
use provisioner::handlers::ChangeStatus;
use provisioner::lint::{lint_files, Summary};
use provisioner::merge::Mode;
use provisioner::remote::RemoteInputs;
use provisioner::vars::VarSources;
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "msipprov",
    version,
    about = "Provision and audit MicroSIP-style softphones",
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render a template set into the user's profile: merged, atomic, idempotent.
    ///
    /// Without --template the embedded `default` set is used, so
    /// `msipprov apply --set server=pbx --set username=alice --set password=...`
    /// works with no files at all.
    ///
    /// --template and --vars also take http(s) URLs: a template is then a bundle made by
    /// `msipprov pack`. Downloads are cached per user; a second run sends If-None-Match /
    /// If-Modified-Since, and when the server cannot be reached the last good cached copy is
    /// used and the report says `offline`. Credentials come only from the environment:
    /// MSIPPROV_HTTP_TOKEN (bearer) or MSIPPROV_HTTP_USER + MSIPPROV_HTTP_PASSWORD (basic).
    /// Also: MSIPPROV_CACHE_DIR, MSIPPROV_HTTP_TIMEOUT (seconds per attempt, default 15),
    /// MSIPPROV_HTTP_RETRIES (default 2), HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
    #[command(after_help = exit::HELP)]
    Apply(ApplyArgs),
    /// Render one profile per row of a CSV user list into OUT/<layout>/ (same path as apply, in parallel).
    ///
    /// Exit 0 only when every row succeeded; 1 when any row failed (each reported with its line and user).
    #[command(after_help = exit::HELP)]
    Bulk {
        /// The user list: UTF-8 CSV (with or without BOM), `;` or `,` delimited; the header names the variables.
        #[arg(long, value_name = "CSV")]
        users: PathBuf,
        /// Template set: a name under the templates folder, a folder path, or an http(s) URL of a bundle (`msipprov pack`).
        #[arg(long, short = 't', default_value = "default")]
        template: String,
        /// Where named template sets live.
        #[arg(long, value_name = "DIR")]
        templates_dir: Option<PathBuf>,
        /// Variables shared by every user, TOML or JSON, a file or an http(s) URL (repeatable); each row's columns win.
        #[arg(long = "vars", value_name = "FILE|URL")]
        vars: Vec<PathBuf>,
        /// Trusted public key for remote files (see `apply --help`; repeatable).
        #[arg(long = "trust", value_name = "KEY")]
        trust: Vec<String>,
        /// Policy file (repeatable; later files win).
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
        /// The output folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Each user's folder under --out, a template over the row's columns.
        #[arg(long, default_value = "{{ username }}")]
        layout: String,
        /// Worker threads (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Print a JSON report with one entry per row.
        #[arg(long)]
        json: bool,
        /// No progress bar and no per-row lines; only failures and the summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Render a template set into a folder, without touching any profile.
    #[command(after_help = exit::HELP)]
    Render {
        #[command(flatten)]
        template: TemplateArgs,
        /// The folder to write microsip.ini (and Contacts.xml) into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Audit profiles against policies without changing them (or fix the enforce rules with --fix).
    ///
    /// Each violation is printed as FILE:LINE: [Section] key: is VALUE, expected ... (rule, severity): reason.
    /// Exit codes: 0 no error violation, 3 an error rule is broken, 1 a profile could not be read, 2 usage.
    Check {
        /// Policy file (repeatable; later files win).
        #[arg(long = "policy", value_name = "FILE", required = true)]
        policies: Vec<PathBuf>,
        /// One profile folder (default: the softphone's config folder).
        #[arg(long, value_name = "DIR", conflicts_with = "profiles")]
        target: Option<PathBuf>,
        /// Every profile folder matching this pattern, e.g. 'C:\Users\*\AppData\Roaming\MicroSIP' or '/home/*/.config/MicroSIP'.
        #[arg(long, value_name = "GLOB")]
        profiles: Option<String>,
        /// Write the enforce rules in place (backup + atomic replace, as apply).
        #[arg(long)]
        fix: bool,
        /// With --fix: write even while a softphone of the user is running.
        #[arg(long)]
        force: bool,
        /// Print one JSON object: {profiles: [...], summary: {...}}.
        #[arg(long)]
        json: bool,
        /// Print only the summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Register, remove or inspect the sip:, sips:, tel: and callto: URL handlers.
    #[command(subcommand, after_help = exit::HELP)]
    Handlers(HandlersAction),
    /// Restore the files of the target's newest backup (undo the last apply).
    #[command(after_help = exit::HELP)]
    Rollback {
        /// The profile folder (default: the softphone's config folder).
        #[arg(long, value_name = "DIR")]
        target: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Print nothing on success.
        #[arg(long)]
        quiet: bool,
    },
    /// Pack a template set folder into a .tar.gz bundle to serve over http(s) (optionally signed).
    ///
    /// The same folder always packs to the same bytes (sorted entries, fixed times and owners);
    /// hidden files are left out, a symbolic link is an error. --sign writes the detached
    /// signature OUT.sig beside the bundle; serve both side by side.
    #[command(after_help = exit::HELP)]
    Pack {
        /// The template set folder (template.toml, microsip.ini.j2, ...); it is checked first.
        dir: PathBuf,
        /// The bundle to write, e.g. corporate.tar.gz.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
        /// Sign with this private key (from `msipprov keygen`): writes OUT.sig beside the bundle.
        #[arg(long, value_name = "KEYFILE")]
        sign: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair for signing: KEYFILE (private, owner-only) and KEYFILE.pub.
    ///
    /// Never overwrites an existing key file. Give KEYFILE.pub (or the base64 line in it) to
    /// `--trust`, or list it under `trust` in msipprov.toml.
    #[command(after_help = exit::HELP)]
    Keygen {
        /// The private key file to write; the public key goes to KEYFILE.pub.
        #[arg(
            long,
            short = 'o',
            value_name = "KEYFILE",
            default_value = "msipprov.key"
        )]
        out: PathBuf,
    },
    /// Sign a file to serve (a vars file, or a bundle again): writes FILE.sig beside it.
    #[command(after_help = exit::HELP)]
    Sign {
        /// The file to sign.
        file: PathBuf,
        /// The private key (from `msipprov keygen`).
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
    },
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

#[derive(Subcommand)]
enum HandlersAction {
    /// Make msipphone open links of the schemes (HKCU registry on Windows, XDG on Linux).
    Register {
        #[command(flatten)]
        common: HandlerArgs,
        /// Take schemes another program owns.
        #[arg(long)]
        force: bool,
        /// Write a .reg file (UTF-16 LE) with exactly what register writes, instead of registering.
        #[arg(long, value_name = "FILE")]
        emit_reg: Option<PathBuf>,
    },
    /// Remove what register created; schemes pointing at another program stay unless --force.
    Unregister {
        #[command(flatten)]
        common: HandlerArgs,
        /// Also remove schemes another program owns.
        #[arg(long)]
        force: bool,
    },
    /// Who opens each scheme's links now.
    Status {
        #[command(flatten)]
        common: HandlerArgs,
    },
}

#[derive(Args)]
struct HandlerArgs {
    /// Schemes, comma separated (default: sip,sips,tel,callto).
    #[arg(long, value_delimiter = ',')]
    schemes: Vec<String>,
    /// The softphone to open links with (default: msipphone beside msipprov).
    #[arg(long, value_name = "PATH")]
    exe: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TemplateArgs {
    /// Template set: a name under the templates folder, a folder path, or an http(s) URL of a bundle (`msipprov pack`).
    #[arg(long, short = 't', default_value = "default")]
    template: String,
    /// Where named template sets live (default: `templates/` beside msipprov, else the embedded `default`).
    #[arg(long, value_name = "DIR")]
    templates_dir: Option<PathBuf>,
    /// Variables file, TOML or JSON, or its http(s) URL (repeatable; later files win).
    #[arg(long = "vars", value_name = "FILE|URL")]
    vars: Vec<PathBuf>,
    /// One variable, KEY=VALUE; dotted keys nest (repeatable; wins over files).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Trusted public key, a KEYFILE.pub or its base64 line (repeatable): every remote file must
    /// then carry a valid detached signature URL.sig by one of them, else nothing is written.
    /// Keys are also read from `trust = [...]` in msipprov.toml beside msipprov (or $MSIPPROV_CONFIG).
    #[arg(long = "trust", value_name = "KEY")]
    trust: Vec<String>,
}

impl TemplateArgs {
    /// The variable sources, with `files` standing for --vars (remote ones fetched).
    fn sources(&self, files: Vec<PathBuf>) -> VarSources {
        VarSources {
            files,
            sets: self.set.clone(),
            env: provisioner::vars::process_env(),
        }
    }
}

/// Fetches the remote --template and --vars (see `provisioner::remote`);
/// returns the inputs and the local template spec and vars files to use.
fn prepare_remote(
    template: &str,
    vars: &[PathBuf],
    trust: &[String],
) -> Result<(RemoteInputs, String, Vec<PathBuf>), provisioner::remote::RemoteError> {
    let any_url = provisioner::fetch::is_url(template)
        || vars
            .iter()
            .any(|v| v.to_str().is_some_and(provisioner::fetch::is_url));
    // A local-only run reads no config file: the logon fast path stays as it was.
    let keys = if any_url || !trust.is_empty() {
        provisioner::remote::trusted_keys(trust)?
    } else {
        Vec::new()
    };
    let mut remote = RemoteInputs::new(keys);
    let template = remote.template(template)?;
    let vars = remote.vars(vars)?;
    Ok((remote, template, vars))
}

#[derive(Args)]
struct ApplyArgs {
    #[command(flatten)]
    template: TemplateArgs,
    /// The profile folder (default: %APPDATA%\MicroSIP on Windows, $XDG_CONFIG_HOME/MicroSIP on Linux).
    #[arg(long, value_name = "DIR")]
    target: Option<PathBuf>,
    /// merge: replace the keys the template renders, keep every other; replace: write only what the template renders.
    #[arg(long, value_enum, default_value_t = Mode::Merge)]
    mode: Mode,
    /// merge: replace the template's contacts, keep the user's own; replace: write exactly the template's.
    #[arg(long, value_enum, default_value_t = Mode::Merge)]
    contacts: Mode,
    /// Compute and report the changes, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print a unified diff of each change (secrets masked).
    #[arg(long)]
    diff: bool,
    /// Write even while a softphone of this user is running.
    #[arg(long)]
    force: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Print nothing unless something fails.
    #[arg(long)]
    quiet: bool,
    /// Append one line about this run to FILE (for logon-script forensics).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Policy file whose enforce and default rules apply (repeatable; later files win).
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// Do not register the URL handlers the template asks for.
    #[arg(long)]
    no_handlers: bool,
}

// Bulk rollouts render hundreds of thousands of small documents across
// threads; glibc's allocator spent a fifth of that time in malloc/free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("msipprov: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Apply(args) => run_apply(&args),
        Command::Render { template, out } => run_render(&template, &out),
        Command::Pack { dir, out, sign } => run_pack(&dir, &out, sign.as_deref()),
        Command::Keygen { out } => run_keygen(&out),
        Command::Sign { file, key } => run_sign(&file, &key),
        Command::Handlers(action) => run_handlers(action),
        Command::Bulk {
            users,
            template,
            templates_dir,
            vars,
            trust,
            policies,
            out,
            layout,
            jobs,
            json,
            quiet,
        } => {
            let (remote, template, vars_files) = match prepare_remote(&template, &vars, &trust) {
                Ok(prepared) => prepared,
                Err(e) => {
                    eprintln!("msipprov: {e}");
                    return Ok(exit::ERROR);
                }
            };
            run_bulk(
                &provisioner::bulk::BulkOptions {
                    users,
                    template,
                    templates_dir,
                    vars_files,
                    policies,
                    out,
                    layout,
                    jobs,
                },
                &remote,
                json,
                quiet,
            )
        }
        Command::Rollback {
            target,
            json,
            quiet,
        } => run_rollback(target, json, quiet),
        Command::Check {
            policies,
            target,
            profiles,
            fix,
            force,
            json,
            quiet,
        } => run_check(
            &policies,
            target,
            profiles.as_deref(),
            fix,
            force,
            json,
            quiet,
        ),
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
                exit::OK
            } else {
                exit::ERROR
            })
        }
    }
}

fn default_target(target: Option<PathBuf>) -> Result<PathBuf> {
    match target {
        Some(t) => Ok(t),
        None => softphone::config::paths::default_config_dir()
            .ok_or_else(|| anyhow!("this system reports no profile folder; give --target DIR")),
    }
}

fn run_apply(args: &ApplyArgs) -> Result<u8> {
    let target = default_target(args.target.clone())?;
    let t = &args.template;
    let (remote, template, vars_files) = match prepare_remote(&t.template, &t.vars, &t.trust) {
        Ok(prepared) => prepared,
        Err(e) => return remote_failed(args, &target, &e.to_string()),
    };
    let opts = ApplyOptions {
        template,
        templates_dir: args.template.templates_dir.clone(),
        sources: args.template.sources(vars_files),
        target: target.clone(),
        mode: args.mode,
        contacts_mode: args.contacts,
        policies: args.policies.clone(),
    };
    let mut cache_warnings = Vec::new();
    let outcome = apply::plan(&opts).and_then(|mut plan| {
        // The remote files rendered a valid profile: they are the last known good.
        cache_warnings = remote.remember();
        plan.template = remote.describe(&plan.template);
        let committed = if args.dry_run {
            None
        } else {
            Some(apply::commit(&plan, args.force)?)
        };
        Ok((plan, committed))
    });
    // The files are in place; now the URL handlers the template asks for.
    let handlers = match &outcome {
        Ok((plan, Some(_))) if !args.no_handlers && !plan.handlers.is_empty() => {
            Some(provisioner::handlers::platform_store().and_then(|store| {
                store.register(&provisioner::handlers::default_exe(), &plan.handlers, false)
            }))
        }
        _ => None,
    };
    let handlers_changed =
        matches!(&handlers, Some(Ok(c)) if c.iter().any(|c| c.status == ChangeStatus::Changed));
    let handler_error = match &handlers {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let (code, result) = match &outcome {
        Ok(_) if handler_error.is_some() => (exit::ERROR, "failed"),
        Ok((plan, _)) if plan.changes() || handlers_changed => (exit::OK, "changed"),
        Ok(_) => (exit::OK, "unchanged"),
        Err(e @ ApplyError::Busy { .. }) => (e.exit_code(), "busy"),
        Err(e) => (e.exit_code(), "failed"),
    };
    // A log that cannot be written must not turn a done apply into a failure.
    for w in &cache_warnings {
        eprintln!("msipprov: warning: {w}");
    }
    if let Some(log) = &args.log {
        let mut detail = match &outcome {
            Ok((plan, _)) => plan
                .files
                .iter()
                .map(|f| format!("{}:{}", f.file_name(), f.status().as_str()))
                .collect::<Vec<_>>()
                .join(","),
            Err(e) => format!("error={:?}", remote.describe(&e.to_string())),
        };
        push_remote_log(&mut detail, &remote);
        if let Err(e) = append_log(log, &t.template, &target, result, code, &detail) {
            eprintln!("msipprov: warning: {e:#}");
        }
    }
    if !args.json && !args.quiet {
        for item in &remote.items {
            println!("{}", item.line());
        }
    }
    match &outcome {
        Ok((plan, committed)) => {
            let backup = committed.as_ref().and_then(|c| c.backup.clone());
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "result": result,
                        "dry_run": args.dry_run,
                        "target": plan.target,
                        "template": plan.template,
                        "files": plan.files.iter().map(|f| json!({
                            "file": f.path,
                            "kind": f.kind,
                            "status": f.status(),
                            "notes": f.notes,
                        })).collect::<Vec<_>>(),
                        "backup": backup,
                        "handlers": match &handlers { Some(Ok(c)) => json!(c), _ => json!([]) },
                        "handlers_error": handler_error,
                        "remote": remote.items,
                        "offline": remote.offline(),
                        "exit_code": code,
                    }))?
                );
            } else if !args.quiet {
                print_plan(plan, args.dry_run);
                if let Some(Ok(changes)) = &handlers {
                    for c in changes {
                        print_scheme_change(c, "handler ");
                    }
                }
            }
            if let Some(e) = &handler_error {
                eprintln!("msipprov: URL handlers: {e}");
            }
            if args.diff && !args.json {
                for f in plan
                    .files
                    .iter()
                    .filter(|f| f.status() == FileStatus::Changed)
                {
                    print!("{}", f.diff(&plan.secrets));
                }
            }
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "result": result,
                        "dry_run": args.dry_run,
                        "target": target,
                        "template": args.template.template,
                        "error": remote.describe(&e.to_string()),
                        "diagnostics": e.diagnostics(),
                        "remote": remote.items,
                        "offline": remote.offline(),
                        "violations": match e { ApplyError::Violations(v) => json!(v), _ => json!([]) },
                        "busy": match e { ApplyError::Busy { busy } => json!(busy), _ => json!([]) },
                        "exit_code": code,
                    }))?
                );
            } else {
                for d in e.diagnostics() {
                    eprintln!("{}", remote.describe(&d.to_string()));
                }
                if let ApplyError::Violations(violations) = e {
                    for v in violations {
                        eprintln!(
                            "{}: {v}",
                            target.join(softphone::config::INI_FILE_NAME).display()
                        );
                    }
                }
                let e = remote.describe(&e.to_string());
                eprintln!("msipprov: {e}");
                if !args.quiet {
                    println!(
                        "failed     {}: {e}",
                        target.join(softphone::config::INI_FILE_NAME).display()
                    );
                }
            }
        }
    }
    Ok(code)
}

fn run_bulk(
    opts: &provisioner::bulk::BulkOptions,
    remote: &RemoteInputs,
    json: bool,
    quiet: bool,
) -> Result<u8> {
    use std::io::IsTerminal;
    let users = opts.users.display().to_string();
    let bar = (!quiet && !json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} users {elapsed_precise} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    if let Some(bar) = &bar {
        if let Ok(rows) = provisioner::bulk::read_users(&opts.users) {
            bar.set_length(rows.len() as u64);
        }
    }
    let tick = || {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    };
    let reports = match provisioner::bulk::run(opts, &tick) {
        Ok(r) => r,
        Err(e) => {
            if let provisioner::bulk::BulkError::Apply(inner) = &e {
                for d in inner.diagnostics() {
                    eprintln!("{}", remote.describe(&d.to_string()));
                }
            }
            eprintln!("msipprov: {}", remote.describe(&e.to_string()));
            return Ok(exit::ERROR);
        }
    };
    // Remote inputs that rendered at least one profile are the last known good.
    if reports.is_empty() || reports.iter().any(|r| r.status != "failed") {
        for w in remote.remember() {
            eprintln!("msipprov: warning: {w}");
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let failed = reports.iter().filter(|r| r.status == "failed").count();
    let unchanged = reports.iter().filter(|r| r.status == "unchanged").count();
    let written = reports.len() - failed;
    let summary = format!("{written} written ({unchanged} unchanged), {failed} failed");
    if json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "users": users,
                "rows": reports,
                "summary": {"rows": reports.len(), "written": written, "unchanged": unchanged, "failed": failed},
                "remote": remote.items,
                "offline": remote.offline(),
            }))?
        );
    } else {
        if !quiet {
            for item in &remote.items {
                println!("{}", item.line());
            }
        }
        for r in &reports {
            match &r.error {
                Some(e) => println!(
                    "failed     {users}:{} ({}): {}",
                    r.line,
                    r.username,
                    remote.describe(e)
                ),
                None if !quiet => {
                    let dir = r
                        .dir
                        .as_ref()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default();
                    println!("{:<10} {dir}", r.status);
                }
                None => {}
            }
        }
        eprintln!("{summary}");
    }
    Ok(if failed == 0 { exit::OK } else { exit::ERROR })
}

fn print_scheme_change(c: &provisioner::handlers::SchemeChange, prefix: &str) {
    match &c.why {
        Some(why) => println!("{:<10} {prefix}{}: {why}", c.status.as_str(), c.scheme),
        None => println!("{:<10} {prefix}{}", c.status.as_str(), c.scheme),
    }
}

fn run_handlers(action: HandlersAction) -> Result<u8> {
    use provisioner::handlers::{default_exe, parse_schemes, platform_store, regfile};
    let (common, force, emit) = match &action {
        HandlersAction::Register {
            common,
            force,
            emit_reg,
        } => (common, *force, emit_reg.clone()),
        HandlersAction::Unregister { common, force } => (common, *force, None),
        HandlersAction::Status { common } => (common, false, None),
    };
    let schemes = parse_schemes(&common.schemes)?;
    let exe = common.exe.clone().unwrap_or_else(default_exe);
    if let Some(file) = emit {
        let exe_text = exe.to_string_lossy().into_owned();
        provisioner::fsutil::write_atomic(&file, &regfile::reg_bytes(&exe_text, &schemes), false)?;
        if common.json {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"exe": exe, "emitted": file, "schemes": schemes})
                )?
            );
        } else {
            println!("written    {}", file.display());
        }
        return Ok(exit::OK);
    }
    let store = platform_store()?;
    match action {
        HandlersAction::Register { .. } | HandlersAction::Unregister { .. } => {
            let changes = if matches!(action, HandlersAction::Register { .. }) {
                store.register(&exe, &schemes, force)?
            } else {
                store.unregister(&exe, &schemes, force)?
            };
            if common.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"exe": exe, "schemes": changes}))?
                );
            } else {
                for c in &changes {
                    print_scheme_change(c, "");
                }
            }
        }
        HandlersAction::Status { .. } => {
            let status = store.status(&exe, &schemes)?;
            if common.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"exe": exe, "schemes": status}))?
                );
            } else {
                for s in &status {
                    let owner = match &s.owner {
                        provisioner::handlers::Owner::Us => "msipphone".to_owned(),
                        provisioner::handlers::Owner::Other(name) => name.clone(),
                        provisioner::handlers::Owner::Nobody => "nobody".to_owned(),
                    };
                    let registered = if s.registered {
                        "registered"
                    } else {
                        "not registered"
                    };
                    println!("{:<7} {registered:<15} opens with: {owner}", s.scheme);
                    if let Some(note) = &s.note {
                        println!("        note: {note}");
                    }
                }
            }
        }
    }
    Ok(exit::OK)
}

fn print_plan(plan: &Plan, dry_run: bool) {
    for f in &plan.files {
        let status = match (f.status(), dry_run) {
            (FileStatus::Changed, true) => "would change",
            (FileStatus::Changed, false) => "changed",
            (FileStatus::Unchanged, _) => "unchanged",
            (FileStatus::Failed, _) => "failed",
        };
        println!("{status:<10} {}", f.path.display());
        for note in &f.notes {
            println!("           note: {note}");
        }
    }
}

/// One line per run, appended: when, who, where, what, how it ended
/// (`detail`: the per-file status, or the error).
fn append_log(
    log: &Path,
    template: &str,
    target: &Path,
    result: &str,
    code: u8,
    detail: &str,
) -> Result<()> {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let user = [env("USERNAME"), env("USER")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let host = [env("COMPUTERNAME"), env("HOSTNAME")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let line = format!(
        "{} result={result} exit={code} user={user} host={host} template={template} target={} {detail}\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        target.display(),
    );
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open the log {}", log.display()))?;
    file.write_all(line.as_bytes())
        .with_context(|| format!("cannot write the log {}", log.display()))?;
    Ok(())
}

/// Appends ` remote=<status>,...` (one per URL used) to a log line's detail.
fn push_remote_log(detail: &mut String, remote: &RemoteInputs) {
    if remote.items.is_empty() {
        return;
    }
    let statuses: Vec<&str> = remote
        .items
        .iter()
        .map(|i| match i.outcome {
            provisioner::fetch::Outcome::Downloaded => "fetched",
            provisioner::fetch::Outcome::NotModified => "cached",
            provisioner::fetch::Outcome::Offline { .. } => "offline",
        })
        .collect();
    detail.push_str(&format!(" remote={}", statuses.join(",")));
}

/// apply's report when a remote template or vars file cannot be used (not
/// fetched and not cached, or refused by trust): nothing was written.
fn remote_failed(args: &ApplyArgs, target: &Path, error: &str) -> Result<u8> {
    let code = exit::ERROR;
    if let Some(log) = &args.log {
        let detail = format!("error={error:?}");
        if let Err(e) = append_log(
            log,
            &args.template.template,
            target,
            "failed",
            code,
            &detail,
        ) {
            eprintln!("msipprov: warning: {e:#}");
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "result": "failed",
                "dry_run": args.dry_run,
                "target": target,
                "template": args.template.template,
                "error": error,
                "diagnostics": [],
                "remote": [],
                "offline": false,
                "exit_code": code,
            }))?
        );
    } else {
        eprintln!("msipprov: {error}");
        if !args.quiet {
            println!(
                "failed     {}: {error}",
                target.join(softphone::config::INI_FILE_NAME).display()
            );
        }
    }
    Ok(code)
}

fn run_render(args: &TemplateArgs, out: &Path) -> Result<u8> {
    let (remote, template, vars_files) =
        match prepare_remote(&args.template, &args.vars, &args.trust) {
            Ok(prepared) => prepared,
            Err(e) => {
                eprintln!("msipprov: {e}");
                return Ok(exit::ERROR);
            }
        };
    for item in &remote.items {
        println!("{}", item.line());
    }
    match apply::render_to_dir(
        &template,
        args.templates_dir.as_deref(),
        &args.sources(vars_files),
        out,
    ) {
        Ok(written) => {
            for w in remote.remember() {
                eprintln!("msipprov: warning: {w}");
            }
            for path in written {
                println!("written    {}", path.display());
            }
            Ok(exit::OK)
        }
        Err(e) => {
            for d in e.diagnostics() {
                eprintln!("{}", remote.describe(&d.to_string()));
            }
            eprintln!("msipprov: {}", remote.describe(&e.to_string()));
            Ok(exit::ERROR)
        }
    }
}

fn run_pack(dir: &Path, out: &Path, sign: Option<&Path>) -> Result<u8> {
    use provisioner::bundle::{pack, Limits};
    // A bundle written into the folder it packs would end up in the next bundle.
    if let (Ok(d), Some(Ok(o))) = (
        dir.canonicalize(),
        out.parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .map(Path::canonicalize),
    ) {
        if o.starts_with(&d) {
            eprintln!(
                "msipprov: write the bundle outside the folder it packs ({})",
                dir.display()
            );
            return Ok(exit::USAGE);
        }
    }
    // A set that does not load would fail on every machine: check it here.
    if let Err(e) = provisioner::template::TemplateSet::from_dir(dir) {
        eprintln!("msipprov: {e}");
        return Ok(exit::ERROR);
    }
    let key = sign.map(provisioner::keys::PrivateKey::read).transpose()?;
    let bytes = pack(dir, &Limits::default())?;
    provisioner::fsutil::write_atomic(out, &bytes, false)?;
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    println!(
        "packed     {} ({} bytes, sha256 {sha})",
        out.display(),
        bytes.len()
    );
    let mut sig_path = out.as_os_str().to_owned();
    sig_path.push(provisioner::keys::SIGNATURE_SUFFIX);
    let sig_path = PathBuf::from(sig_path);
    match key {
        Some(key) => {
            provisioner::fsutil::write_atomic(&sig_path, key.sign(&bytes).as_bytes(), false)?;
            println!(
                "signed     {} (key {})",
                sig_path.display(),
                key.public().fingerprint()
            );
        }
        None if sig_path.exists() => {
            // A signature of an older bundle would be served beside this one.
            std::fs::remove_file(&sig_path)
                .with_context(|| format!("cannot remove the stale {}", sig_path.display()))?;
            println!(
                "removed    {} (it signed an older bundle)",
                sig_path.display()
            );
        }
        None => {}
    }
    Ok(exit::OK)
}

fn run_keygen(out: &Path) -> Result<u8> {
    let key = provisioner::keys::PrivateKey::generate()?;
    let public_path = key.write_pair(out)?;
    let public = key.public();
    println!("private    {} (keep it secret; owner-only)", out.display());
    println!(
        "public     {} ({})",
        public_path.display(),
        public.fingerprint()
    );
    println!("trust      {}", public.to_base64());
    Ok(exit::OK)
}

fn run_sign(file: &Path, key: &Path) -> Result<u8> {
    let key = provisioner::keys::PrivateKey::read(key)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut sig_path = file.as_os_str().to_owned();
    sig_path.push(provisioner::keys::SIGNATURE_SUFFIX);
    let sig_path = PathBuf::from(sig_path);
    provisioner::fsutil::write_atomic(&sig_path, key.sign(&bytes).as_bytes(), false)?;
    println!(
        "signed     {} (key {})",
        sig_path.display(),
        key.public().fingerprint()
    );
    Ok(exit::OK)
}

#[allow(clippy::too_many_arguments)]
fn run_check(
    policies: &[PathBuf],
    target: Option<PathBuf>,
    pattern: Option<&str>,
    fix: bool,
    force: bool,
    json: bool,
    quiet: bool,
) -> Result<u8> {
    use provisioner::check::{check_profiles, find_profiles, Summary};
    use provisioner::policy::Policy;
    let policy = match Policy::load(policies) {
        Ok(p) => p,
        Err(e) => {
            for d in e.diagnostics() {
                eprintln!("{d}");
            }
            eprintln!("msipprov: {e}");
            return Ok(exit::ERROR);
        }
    };
    let profiles = match pattern {
        Some(pattern) => find_profiles(pattern)?,
        None => vec![default_target(target)?],
    };
    let reports = check_profiles(&policy, &profiles, fix, force);
    let summary = Summary::of(&reports);
    if json {
        println!(
            "{}",
            serde_json::to_string(&json!({"profiles": reports, "summary": summary}))?
        );
    } else {
        if !quiet {
            let mut out = std::io::stdout().lock();
            for r in &reports {
                if r.fixed > 0 {
                    writeln!(out, "fixed      {} ({} key(s))", r.ini().display(), r.fixed)?;
                }
                if let Some(e) = &r.error {
                    writeln!(out, "failed     {}: {e}", r.ini().display())?;
                }
                for v in &r.violations {
                    match v.line {
                        Some(line) => writeln!(out, "{}:{line}: {v}", r.ini().display())?,
                        None => writeln!(out, "{}: {v}", r.ini().display())?,
                    }
                }
            }
        }
        eprintln!("{summary}");
    }
    Ok(summary.exit_code())
}

fn run_rollback(target: Option<PathBuf>, json: bool, quiet: bool) -> Result<u8> {
    let target = default_target(target)?;
    match provisioner::backup::rollback(&target) {
        Ok((run, restored)) => {
            let files: Vec<serde_json::Value> = restored
                .iter()
                .map(|r| match r {
                    provisioner::backup::Restored::Restored(p) => {
                        json!({"file": p, "status": "restored"})
                    }
                    provisioner::backup::Restored::Removed(p) => {
                        json!({"file": p, "status": "removed"})
                    }
                })
                .collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"result": "restored", "backup": run, "files": files, "exit_code": 0})
                    )?
                );
            } else if !quiet {
                for r in &restored {
                    match r {
                        provisioner::backup::Restored::Restored(p) => {
                            println!("restored   {}", p.display())
                        }
                        provisioner::backup::Restored::Removed(p) => {
                            println!("removed    {}", p.display())
                        }
                    }
                }
            }
            Ok(exit::OK)
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"result": "failed", "error": e.to_string(), "exit_code": 1})
                    )?
                );
            }
            eprintln!("msipprov: {e}");
            Ok(exit::ERROR)
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
