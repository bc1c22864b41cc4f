//! `msipprov apply`: render a template set, check the result through
//! `softphone::config`, merge it into the target's files, and write what
//! changed as one transaction (backup, temp files, flush, rename).
//!
//! The work is split in two: [`plan`] reads and computes everything and
//! touches nothing; [`commit`] writes a plan. `--dry-run` stops between them.

use std::path::{Path, PathBuf};

use serde::Serialize;
use softphone::config::{
    validate_document, validate_ini, ContactList, Diagnostic, FileKind, IniDocument,
    CONTACTS_FILE_NAME, INI_FILE_NAME,
};
use thiserror::Error;

use crate::backup::{self, BackupError};
use crate::busy::{running_phones, RunningPhone};
use crate::fsutil::{FsError, Transaction};
use crate::merge::{self, Mode};
use crate::new_folder::{self, NewFolder, NewFolderError};
use crate::policy::{Policy, PolicyError, RuleSeverity, Violation};
use crate::render::{self, RenderError};
use crate::state::{self, State};
use crate::template::{TemplateError, TemplateSet};
use crate::vars::{self, VarSources, VarsError};

/// What to apply, and how.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Template name (under `templates_dir`) or folder path.
    pub template: String,
    /// Where named templates live; `None`: beside the binary, else embedded.
    pub templates_dir: Option<PathBuf>,
    /// Variable sources.
    pub sources: VarSources,
    /// The profile folder to write into.
    pub target: PathBuf,
    /// How the ini meets the existing file.
    pub mode: Mode,
    /// How the contacts meet the existing file.
    pub contacts_mode: Mode,
    /// Policy files, later ones winning.
    pub policies: Vec<PathBuf>,
}

/// Why apply stopped.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// The template set could not be loaded.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The variables are incomplete or wrong.
    #[error(transparent)]
    Vars(#[from] VarsError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The rendered files are not valid MicroSIP files.
    #[error("the rendered files are not valid; nothing was written")]
    Invalid(Vec<Diagnostic>),
    /// The file already there cannot be read for a merge.
    #[error("cannot merge into {}: {why}; use --mode replace (or --contacts replace) to overwrite it, a backup is kept", path.display())]
    Existing {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A policy file cannot be used.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The template breaks `error` rules of the policies.
    #[error("the template breaks {} policy rule(s); nothing was written", .0.len())]
    Violations(Vec<Violation>),
    /// A softphone of this user is running.
    #[error("{} is running (pid {}): it would overwrite the files when it exits; close it, or use --force", busy[0].name, busy[0].pid)]
    Busy {
        /// The running softphones.
        busy: Vec<RunningPhone>,
    },
    /// Reading or writing a file failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Saving the backup failed.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// Something is where a new profile folder was to go (made by someone
    /// else since the plan, or a file); nothing was written. Plan again to
    /// merge into a folder.
    #[error("{} is in the way of the new profile folder; nothing was written", .0.display())]
    Appeared(PathBuf),
}

impl ApplyError {
    /// The exit code documented for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            ApplyError::Busy { .. } => crate::exit::BUSY,
            ApplyError::Violations(_) => crate::exit::POLICY,
            _ => crate::exit::ERROR,
        }
    }

    /// The located problems behind the error, when it has some.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ApplyError::Invalid(d) => d,
            ApplyError::Policy(e) => e.diagnostics(),
            _ => &[],
        }
    }
}

/// What happens (or happened) to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// New content was (or would be) written.
    Changed,
    /// The file already holds what the template renders; not touched.
    Unchanged,
    /// The file could not be written.
    Failed,
}

impl FileStatus {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Changed => "changed",
            FileStatus::Unchanged => "unchanged",
            FileStatus::Failed => "failed",
        }
    }
}

/// One file of a plan.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    /// Which of MicroSIP's files.
    pub kind: FileKind,
    /// Where it goes.
    pub path: PathBuf,
    /// What it holds now (`None`: it does not exist).
    pub old: Option<Vec<u8>>,
    /// What it will hold.
    pub new: Vec<u8>,
    /// Things worth telling the admin (encoding change, kept password).
    pub notes: Vec<String>,
}

impl PlannedFile {
    /// The file's name, without its folder.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Changed or unchanged.
    pub fn status(&self) -> FileStatus {
        if self.old.as_deref() == Some(self.new.as_slice()) {
            FileStatus::Unchanged
        } else {
            FileStatus::Changed
        }
    }

    /// A unified diff of the change, with secrets masked.
    pub fn diff(&self, secrets: &[String]) -> String {
        let decode = |bytes: &[u8]| match self.kind {
            FileKind::Ini => IniDocument::parse(bytes)
                .map(|d| d.to_text())
                .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned()),
            FileKind::Contacts => String::from_utf8_lossy(bytes).into_owned(),
        };
        let old = mask(
            &self.old.as_deref().map(decode).unwrap_or_default(),
            secrets,
        );
        let new = mask(&decode(&self.new), secrets);
        let name = self.path.display().to_string();
        similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .header(&format!("a/{name}"), &format!("b/{name}"))
            .to_string()
    }
}

/// Replaces every secret, and every plain `password=` value, by asterisks.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let masked = match body.split_once('=') {
            Some((key, value))
                if key.trim().eq_ignore_ascii_case("password")
                    && !value.trim().is_empty()
                    && !softphone::config::Password::looks_encrypted(value.trim()) =>
            {
                format!("{key}=********")
            }
            _ => body.to_owned(),
        };
        out.push_str(&masked);
        out.push_str(ending);
    }
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(secret.as_str(), "********");
    }
    out
}

/// Everything apply would do, computed without touching the target.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The target folder.
    pub target: PathBuf,
    /// The template set's name and where it came from.
    pub template: String,
    /// The files, ini first.
    pub files: Vec<PlannedFile>,
    /// Secret values, for masking output.
    pub secrets: Vec<String>,
    /// URL handlers the template asks for.
    pub handlers: Vec<String>,
    state_path: PathBuf,
    state_old: Option<Vec<u8>>,
    state_new: Vec<u8>,
    locks_changed: bool,
    /// The target folder did not exist when the plan was made.
    fresh: bool,
}

impl Plan {
    /// Whether any file changes, or the policy locks recorded for the
    /// phone do.
    pub fn changes(&self) -> bool {
        self.locks_changed || self.files.iter().any(|f| f.status() == FileStatus::Changed)
    }
}

/// Renders, validates and merges; reads the target but writes nothing.
pub fn plan(opts: &ApplyOptions) -> Result<Plan, ApplyError> {
    let set = TemplateSet::load(&opts.template, opts.templates_dir.as_deref())?;
    let policy = Policy::load(&opts.policies)?;
    plan_with(&set, &policy, opts)
}

/// [`plan`] with the template set and policy already loaded (bulk loads
/// them once for every user).
pub fn plan_with(
    set: &TemplateSet,
    policy: &Policy,
    opts: &ApplyOptions,
) -> Result<Plan, ApplyError> {
    let vars = vars::resolve(&set.manifest, &opts.sources)?;
    plan_with_vars(set, policy, opts, &vars)
}

/// [`plan_with`] with the variables already resolved (bulk resolves the
/// values all rows share once; `opts.sources` is not read again).
pub fn plan_with_vars(
    set: &TemplateSet,
    policy: &Policy,
    opts: &ApplyOptions,
    vars: &vars::Vars,
) -> Result<Plan, ApplyError> {
    plan_with_vars_known(set, policy, opts, vars, opts.target.is_dir())
}

/// [`plan_with_vars`] when the caller knows already whether the target
/// folder exists (bulk lists the output folder once instead of asking for
/// every profile). If it turns out to exist after all, writing the plan
/// fails without touching it ([`ApplyError::Appeared`]).
pub fn plan_with_vars_known(
    set: &TemplateSet,
    policy: &Policy,
    opts: &ApplyOptions,
    vars: &vars::Vars,
    target_exists: bool,
) -> Result<Plan, ApplyError> {
    let rendered = render::render(set, vars)?;
    // Built once: checked, then merged.
    let rendered_doc =
        IniDocument::from_text(softphone::config::Encoding::Utf16LeBom, &rendered.ini);
    let problems = render::check_parsed(&rendered, &rendered_doc, set);
    if problems.iter().any(Diagnostic::is_error) {
        return Err(ApplyError::Invalid(problems));
    }
    for warning in &problems {
        tracing::warn!("{warning}");
    }
    let target = opts.target.clone();
    let state_path = state::path(&target);
    // A profile folder that does not exist yet holds nothing to read (the
    // common case of a bulk rollout: one check instead of three misses).
    let fresh = !target_exists;
    let read_optional = |path: &Path| {
        if fresh {
            Ok(None)
        } else {
            read_optional(path)
        }
    };
    let state_old = read_optional(&state_path)?;
    let mut state = State::from_file_bytes(&state_path, state_old.as_deref());

    // The ini.
    let ini_path = target.join(INI_FILE_NAME);
    let ini_old = read_optional(&ini_path)?;
    // Replace mode still reads the old file: a password MicroSIP encrypted
    // is kept while the template's is unchanged (no rewrite at every logon).
    let existing = match (&ini_old, opts.mode) {
        (Some(bytes), Mode::Merge) => {
            Some(IniDocument::parse(bytes).map_err(|e| ApplyError::Existing {
                path: ini_path.clone(),
                why: e.to_string(),
            })?)
        }
        (Some(bytes), Mode::Replace) => IniDocument::parse(bytes).ok(),
        (None, _) => None,
    };
    let merged =
        merge::merge_ini(existing.as_ref(), &rendered_doc, opts.mode, &state).map_err(|e| {
            ApplyError::Existing {
                path: ini_path.clone(),
                why: e.to_string(),
            }
        })?;
    merge::record_ini(&mut state, &rendered_doc, &vars.secrets());
    let mut merged = merged;
    // An empty policy changes nothing: the document is not copied for it.
    let enforced = if policy.is_empty() {
        0
    } else {
        policy.apply(merged.doc.to_mut(), &mut state, &rendered_doc)
    };
    let mut notes = Vec::new();
    if enforced > 0 {
        notes.push(format!("{enforced} key(s) set by policy"));
    }
    // Every run records the locks of the policies it is given (none: the
    // profile is no longer under a policy). A change is a change of the
    // run even when the files stay the same: the phone reads the locks.
    let locks = state::policy_locks(policy);
    let locks_changed = locks != state.locks;
    if locks_changed {
        notes.push(match locks.len() {
            0 => "policy locks cleared".to_owned(),
            n => format!("policy locks recorded: {n} key(s) locked"),
        });
    }
    state.locks = locks;
    // A broken error rule is the template's fault when the template wrote
    // the key, or when a required key is missing: refuse to write. Keys
    // only the user set are reported, for `check` to track.
    let (template_faults, user_drift): (Vec<Violation>, Vec<Violation>) = policy
        .check(&merged.doc)
        .into_iter()
        .partition(|v| v.rule == "require" || rendered_doc.get(&v.section, &v.key).is_some());
    let errors: Vec<Violation> = template_faults
        .iter()
        .filter(|v| v.severity == RuleSeverity::Error)
        .cloned()
        .collect();
    if !errors.is_empty() {
        return Err(ApplyError::Violations(errors));
    }
    for v in template_faults.iter().chain(&user_drift) {
        notes.push(format!("policy: {v}"));
    }
    if let Some(from) = merged.converted_from {
        notes.push(format!(
            "converted from {} to UTF-16 LE with BOM, the only encoding in which MicroSIP keeps non-ASCII text",
            from.name()
        ));
    }
    for id in &merged.kept_encrypted {
        notes.push(format!(
            "{id}: kept as encrypted by MicroSIP (the template's password is unchanged)"
        ));
    }
    let ini_new = merged.doc.to_bytes();
    // What we write must be what the phone reads: check the merged file too,
    // unless it is, line for line and in the same encoding, the rendered
    // file checked above (which had no errors, or we would have stopped).
    let same_as_rendered = matches!(merged.doc, std::borrow::Cow::Borrowed(_))
        || (merged.doc.encoding() == softphone::config::Encoding::Utf16LeBom
            && merged.doc.to_text() == rendered.ini);
    let merged_problems = if same_as_rendered {
        Vec::new()
    } else {
        validate_document(&merged.doc)
    };
    let new_errors: Vec<Diagnostic> = merged_problems
        .into_iter()
        .filter(|d| {
            d.is_error()
                && !ini_old
                    .as_deref()
                    .is_some_and(|old| had_same_problem(old, d))
        })
        .map(|d| d.in_file(&ini_path))
        .collect();
    if !new_errors.is_empty() {
        return Err(ApplyError::Invalid(new_errors));
    }
    let mut files = vec![PlannedFile {
        kind: FileKind::Ini,
        path: ini_path,
        old: ini_old,
        new: ini_new,
        notes,
    }];

    // The contacts, when the template has them.
    if let Some(contacts_text) = &rendered.contacts {
        let path = target.join(CONTACTS_FILE_NAME);
        let old = read_optional(&path)?;
        let rendered_list = ContactList::parse(contacts_text.as_bytes()).map_err(|e| {
            ApplyError::Invalid(vec![e
                .to_diagnostic()
                .in_file(Path::new(CONTACTS_FILE_NAME))])
        })?;
        let existing = match (&old, opts.contacts_mode) {
            (Some(bytes), Mode::Merge) => {
                Some(ContactList::parse(bytes).map_err(|e| ApplyError::Existing {
                    path: path.clone(),
                    why: e.to_diagnostic().to_string(),
                })?)
            }
            _ => None,
        };
        let merged = merge::merge_contacts(
            existing.as_ref(),
            &rendered_list,
            opts.contacts_mode,
            &state,
        );
        merge::record_contacts(&mut state, &rendered_list);
        files.push(PlannedFile {
            kind: FileKind::Contacts,
            path,
            old,
            new: merged.to_bytes(),
            notes: Vec::new(),
        });
    }
    state.template = set.name.clone();
    Ok(Plan {
        target,
        template: format!("{} ({})", set.name, set.origin()),
        files,
        secrets: vars.secrets(),
        handlers: set.manifest.handlers.clone(),
        state_path,
        state_old,
        state_new: state.to_bytes(),
        locks_changed,
        fresh,
    })
}

/// Whether the file already had this problem before we touched it (a
/// user's own broken line is theirs to fix; we only refuse to add one).
fn had_same_problem(old: &[u8], d: &Diagnostic) -> bool {
    validate_ini(old)
        .1
        .iter()
        .any(|o| o.message == d.message && o.key == d.key && o.section == d.section)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FsError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FsError {
            action: "cannot read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// What a commit did.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// The backup of the previous files, when anything changed.
    pub backup: Option<PathBuf>,
}

/// Writes a plan: checks that no softphone runs (unless `force`), backs up
/// the files that change, then writes them and the state as one
/// transaction. An unchanged plan writes nothing at all.
pub fn commit(plan: &Plan, force: bool) -> Result<Committed, ApplyError> {
    let state = (plan.state_old.as_deref() != Some(plan.state_new.as_slice()))
        .then_some((plan.state_path.as_path(), plan.state_new.as_slice()));
    write_changes(&plan.target, &plan.files, state, force)
}

/// [`commit`] for a staging tree (`bulk --out`): no busy check and no
/// backups; still one transaction with the state. The files are not
/// flushed one by one: the caller calls
/// [`crate::fsutil::sync_file_system`] once after the last commit.
///
/// A plan for a profile folder that did not exist is written as a whole
/// new folder ([`NewFolder`]): it appears complete or not at all. If the
/// folder appeared since the plan was made, nothing is written and the
/// error is [`ApplyError::Appeared`]: plan again, to merge.
pub fn commit_staging(plan: &Plan) -> Result<Committed, ApplyError> {
    if plan.fresh && new_folder::SUPPORTED {
        return commit_new_folder(plan);
    }
    let state = (plan.state_old.as_deref() != Some(plan.state_new.as_slice()))
        .then_some((plan.state_path.as_path(), plan.state_new.as_slice()));
    write_files(&plan.target, &plan.files, state, false)
}

/// Writes a fresh plan's files and state into a [`NewFolder`].
fn commit_new_folder(plan: &Plan) -> Result<Committed, ApplyError> {
    let mut folder = NewFolder::create(&plan.target)?;
    for file in &plan.files {
        // The ini may hold a plain password until MicroSIP encrypts it.
        folder.write(
            Path::new(&file.file_name()),
            &file.new,
            file.kind == FileKind::Ini,
        )?;
    }
    // The plan's state path, relative to the target.
    folder.write(&state::path(Path::new("")), &plan.state_new, true)?;
    folder.commit().map_err(|e| match e {
        NewFolderError::Exists(path) => ApplyError::Appeared(path),
        NewFolderError::Fs(e) => ApplyError::Fs(e),
    })?;
    Ok(Committed::default())
}

/// The one way files reach a target (apply and `check --fix`): busy check,
/// backup of what changes, then one transaction with `extra` (the state)
/// riding along. Unchanged files are not touched.
pub fn write_changes(
    target: &Path,
    files: &[PlannedFile],
    extra: Option<(&Path, &[u8])>,
    force: bool,
) -> Result<Committed, ApplyError> {
    // Only a write to the profile's files races a running phone; the
    // state alone does not.
    if !force && files.iter().any(|f| f.status() == FileStatus::Changed) {
        let busy = running_phones();
        if !busy.is_empty() {
            return Err(ApplyError::Busy { busy });
        }
    }
    write_files(target, files, extra, true)
}

/// Stages, backs up what changes (when `with_backup`), and commits.
fn write_files(
    target: &Path,
    files: &[PlannedFile],
    extra: Option<(&Path, &[u8])>,
    with_backup: bool,
) -> Result<Committed, ApplyError> {
    let changed: Vec<&PlannedFile> = files
        .iter()
        .filter(|f| f.status() == FileStatus::Changed)
        .collect();
    if changed.is_empty() && extra.is_none() {
        return Ok(Committed::default());
    }
    let mut tx = Transaction::with_fault_injection();
    if !with_backup {
        // A staging tree (bulk): the caller flushes the file system once.
        tx = tx.deferring_sync();
    }
    for file in &changed {
        // The ini may hold a plain password until MicroSIP encrypts it.
        tx.stage(&file.path, &file.new, file.kind == FileKind::Ini)?;
    }
    if let Some((path, bytes)) = extra {
        tx.stage(path, bytes, true)?;
    }
    // Everything is staged; back up what will be replaced, then replace.
    let backup = if changed.is_empty() || !with_backup {
        None
    } else {
        let names: Vec<(String, Option<&[u8]>)> = changed
            .iter()
            .map(|f| (f.file_name(), f.old.as_deref()))
            .collect();
        let borrowed: Vec<(&str, Option<&[u8]>)> =
            names.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        Some(backup::save(target, &borrowed)?)
    };
    if let Err(e) = tx.commit() {
        // Nothing changed, so this run's backup would only shadow the real
        // previous one for rollback.
        if let Some(run) = &backup {
            let _ = std::fs::remove_dir_all(run);
        }
        return Err(e.into());
    }
    Ok(Committed { backup })
}

/// `msipprov render`: renders and checks a template set, then writes the
/// files into `out` exactly as apply would write them into an empty
/// profile (MicroSIP's layout and encoding). Touches no profile.
pub fn render_to_dir(
    template: &str,
    templates_dir: Option<&Path>,
    sources: &VarSources,
    out: &Path,
) -> Result<Vec<PathBuf>, ApplyError> {
    let scratch = std::env::temp_dir().join(format!("msipprov-render-{}", std::process::id()));
    let opts = ApplyOptions {
        template: template.to_owned(),
        templates_dir: templates_dir.map(Path::to_owned),
        sources: sources.clone(),
        // A folder that does not exist: the plan starts from empty files.
        target: scratch.join("none"),
        mode: Mode::Replace,
        contacts_mode: Mode::Replace,
        policies: Vec::new(),
    };
    let plan = plan(&opts)?;
    let mut tx = Transaction::new();
    let mut written = Vec::new();
    for file in &plan.files {
        let name = file.path.file_name().unwrap_or_default();
        let path = out.join(name);
        tx.stage(&path, &file.new, file.kind == FileKind::Ini)?;
        written.push(path);
    }
    tx.commit()?;
    Ok(written)
}
