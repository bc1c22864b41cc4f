//! `msipprov bulk`: one profile per row of a user list, each through the
//! same render -> validate -> policy -> atomic write path as apply, in
//! parallel. A bad row is reported with its line and user and does not stop
//! the others.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use thiserror::Error;

use crate::apply::{self, ApplyOptions};
use crate::merge::Mode;
use crate::policy::Policy;
use crate::template::TemplateSet;
use crate::vars::{SharedVars, VarSources};

/// What to render for whom, and where.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// The CSV user list.
    pub users: PathBuf,
    /// Template name or folder.
    pub template: String,
    /// Where named templates live.
    pub templates_dir: Option<PathBuf>,
    /// Variables shared by every user (lower precedence than the row).
    pub vars_files: Vec<PathBuf>,
    /// Policy files.
    pub policies: Vec<PathBuf>,
    /// The output folder.
    pub out: PathBuf,
    /// Each user's folder under `out`, a minijinja expression over the row.
    pub layout: String,
    /// Worker threads (`None`: one per core).
    pub jobs: Option<usize>,
}

/// A problem with the whole run (not one row).
#[derive(Debug, Error)]
pub enum BulkError {
    /// The user list cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The user list is not usable CSV.
    #[error("{}:{line}: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The template set or a policy cannot be loaded.
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    /// The written profiles could not be flushed to disk.
    #[error(transparent)]
    Sync(#[from] crate::fsutil::FsError),
    /// The layout expression is broken.
    #[error("--layout {layout:?}: {message}")]
    Layout {
        /// The expression.
        layout: String,
        /// What is wrong.
        message: String,
    },
}

/// One user's row.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// The row's line in the CSV file (the header is line 1).
    pub line: u64,
    /// Column name -> value.
    pub values: Vec<(String, String)>,
}

impl UserRow {
    /// The `username` column, for reports.
    pub fn username(&self) -> &str {
        self.values
            .iter()
            .find(|(k, _)| k == "username")
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What happened to one row.
#[derive(Debug, Clone, Serialize)]
pub struct RowReport {
    /// The row's line in the CSV file.
    pub line: u64,
    /// The user.
    pub username: String,
    /// The profile folder written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// `changed`, `unchanged` or `failed`.
    pub status: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads a user list as Excel exports it: UTF-8 with or without BOM, `;`
/// or `,` delimited (whichever the header line has more of).
pub fn read_users(path: &Path) -> Result<Vec<UserRow>, BulkError> {
    let bytes = std::fs::read(path).map_err(|source| BulkError::Read {
        path: path.to_owned(),
        source,
    })?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let header_line = body.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |c: u8| header_line.iter().filter(|&&b| b == c).count();
    let delimiter = if count(b';') > count(b',') {
        b';'
    } else {
        b','
    };
    let csv_err = |line: u64, message: String| BulkError::Csv {
        path: path.to_owned(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(body);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| csv_err(1, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(csv_err(1, "the header line names no columns".to_owned()));
    }
    if let Some(dup) = headers
        .iter()
        .enumerate()
        .find(|(i, h)| !h.is_empty() && headers[..*i].contains(h))
    {
        return Err(csv_err(1, format!("column {:?} appears twice", dup.1)));
    }
    let mut rows = Vec::new();
    let mut lines = LineCounter::default();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e
                .position()
                .map_or(0, |p| LineCounter::default().line_of_record(body, p.byte()));
            csv_err(line, e.to_string())
        })?;
        let line = record
            .position()
            .map_or(0, |p| lines.line_of_record(body, p.byte()));
        if record.iter().all(|f| f.trim().is_empty()) {
            continue; // Excel leaves empty lines at the end
        }
        let values = headers
            .iter()
            .zip(record.iter().chain(std::iter::repeat("")))
            .filter(|(h, _)| !h.is_empty())
            .map(|(h, v)| (h.clone(), v.to_owned()))
            .collect::<Vec<_>>();
        let extra = record.len().saturating_sub(headers.len());
        if extra > 0 && record.iter().skip(headers.len()).any(|f| !f.is_empty()) {
            return Err(csv_err(
                line,
                format!("{} field(s) more than the header has", extra),
            ));
        }
        rows.push(UserRow { line, values });
    }
    Ok(rows)
}

/// Finds the 1-based line each record starts on. csv's own line counter and
/// byte offset point at the end of the previous record (before blank
/// lines), so skip those line ends and count, going on from the previous
/// record (records come in file order, so the whole file is counted once).
#[derive(Default)]
struct LineCounter {
    at: usize,
    newlines: u64,
}

impl LineCounter {
    fn line_of_record(&mut self, body: &[u8], byte: u64) -> u64 {
        let mut at = usize::try_from(byte).unwrap_or(usize::MAX).min(body.len());
        while at < body.len() && matches!(body[at], b'\r' | b'\n') {
            at += 1;
        }
        if at < self.at {
            *self = Self::default();
        }
        self.newlines += body[self.at..at].iter().filter(|&&b| b == b'\n').count() as u64;
        self.at = at;
        1 + self.newlines
    }
}

/// Renders the layout expression for a row into a relative folder.
fn user_dir(env: &minijinja::Environment<'_>, row: &UserRow) -> Result<PathBuf, String> {
    let ctx: HashMap<String, String> = row.values.iter().cloned().collect();
    let rendered = env
        .get_template("layout")
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("layout: {e}"))?;
    let dir = PathBuf::from(rendered.trim());
    let safe =
        !dir.as_os_str().is_empty() && dir.components().all(|c| matches!(c, Component::Normal(_)));
    if safe {
        Ok(dir)
    } else {
        Err(format!(
            "layout gives {rendered:?}, which is not a folder name inside --out"
        ))
    }
}

/// Renders every row; `tick` is called once per finished row (progress).
pub fn run(opts: &BulkOptions, tick: &(dyn Fn() + Sync)) -> Result<Vec<RowReport>, BulkError> {
    let rows = read_users(&opts.users)?;
    let set = TemplateSet::load(&opts.template, opts.templates_dir.as_deref())
        .map_err(apply::ApplyError::from)?;
    let policy = Policy::load(&opts.policies).map_err(apply::ApplyError::from)?;
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template_owned("layout", opts.layout.clone())
        .map_err(|e| BulkError::Layout {
            layout: opts.layout.clone(),
            message: e.to_string(),
        })?;
    // What every row shares is resolved once; a row adds its columns.
    let shared = crate::vars::resolve_shared(
        &set.manifest,
        &VarSources {
            files: opts.vars_files.clone(),
            sets: Vec::new(),
            env: crate::vars::process_env(),
        },
    )
    .map_err(apply::ApplyError::from)?;

    // Folders first, so two rows writing the same profile both get caught
    // before either is written: the later row fails.
    let mut first: HashMap<PathBuf, u64> = HashMap::new();
    let planned: Vec<(UserRow, Result<PathBuf, String>)> = rows
        .into_iter()
        .map(|row| {
            let dir = user_dir(&env, &row).and_then(|dir| match first.get(&dir) {
                Some(line) => Err(format!(
                    "duplicate user: line {line} writes the same folder {}",
                    dir.display()
                )),
                None => {
                    first.insert(dir.clone(), row.line);
                    Ok(dir)
                }
            });
            (row, dir)
        })
        .collect();

    // Each folder the profiles go in is listed once: which profiles exist
    // already (to merge into), and staging folders a killed run left.
    let mut scans: HashMap<&Path, Option<crate::new_folder::Scan>> = HashMap::new();
    for (_, dir) in &planned {
        if let Some(parent) = dir.as_ref().ok().and_then(|d| d.parent()) {
            scans.entry(parent).or_insert_with(|| {
                let folder = opts.out.join(parent);
                crate::new_folder::scan(&folder)
                    .map_err(|e| tracing::warn!("cannot list {}: {e}", folder.display()))
                    .ok()
            });
        }
    }
    let exists = |dir: &Path| -> Option<bool> {
        let scan = scans.get(dir.parent()?)?.as_ref()?;
        Some(scan.folders.contains(dir.file_name()?))
    };

    let work = |(row, dir): &(UserRow, Result<PathBuf, String>)| {
        let report = match dir {
            Err(e) => failed(row, None, e.clone()),
            Ok(dir) => render_row(
                &set,
                &policy,
                opts,
                &shared,
                row,
                &opts.out.join(dir),
                exists(dir),
            ),
        };
        tick();
        report
    };
    let reports: Vec<RowReport> = match opts.jobs {
        Some(jobs) => rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build()
            .map(|pool| pool.install(|| planned.par_iter().map(work).collect()))
            .unwrap_or_else(|_| planned.iter().map(work).collect()),
        None => planned.par_iter().map(work).collect(),
    };
    // The rows' writes deferred their flushes (see commit_staging): one
    // flush for the whole tree before anything is reported as written.
    if reports.iter().any(|r| r.status == "changed") {
        crate::fsutil::sync_file_system(&opts.out)?;
    }
    Ok(reports)
}

fn failed(row: &UserRow, dir: Option<PathBuf>, error: String) -> RowReport {
    RowReport {
        line: row.line,
        username: row.username().to_owned(),
        dir,
        status: "failed",
        error: Some(error),
    }
}

fn render_row(
    set: &TemplateSet,
    policy: &Policy,
    opts: &BulkOptions,
    shared: &SharedVars,
    row: &UserRow,
    dir: &Path,
    exists: Option<bool>,
) -> RowReport {
    let sets: Vec<String> = row.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let apply_opts = ApplyOptions {
        template: opts.template.clone(),
        templates_dir: opts.templates_dir.clone(),
        sources: VarSources::default(),
        target: dir.to_owned(),
        mode: Mode::Merge,
        contacts_mode: Mode::Merge,
        policies: opts.policies.clone(),
    };
    let result = crate::vars::resolve_row(&set.manifest, shared, &sets)
        .map_err(apply::ApplyError::from)
        .and_then(|vars| {
            // Bulk output is a staging tree, not a live profile: no busy
            // check, no backups (a first render has nothing to back up).
            let plan = match exists {
                Some(exists) => {
                    apply::plan_with_vars_known(set, policy, &apply_opts, &vars, exists)?
                }
                None => apply::plan_with_vars(set, policy, &apply_opts, &vars)?,
            };
            match apply::commit_staging(&plan) {
                // Made by someone else meanwhile: merge into what is there.
                Err(apply::ApplyError::Appeared(_)) => {
                    let plan = apply::plan_with_vars(set, policy, &apply_opts, &vars)?;
                    apply::commit_staging(&plan)?;
                    Ok(plan.changes())
                }
                Err(e) => Err(e),
                Ok(_) => Ok(plan.changes()),
            }
        });
    match result {
        Ok(changed) => RowReport {
            line: row.line,
            username: row.username().to_owned(),
            dir: Some(dir.to_owned()),
            status: if changed { "changed" } else { "unchanged" },
            error: None,
        },
        Err(e) => {
            let mut why = e.to_string();
            let details: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
            if let apply::ApplyError::Violations(v) = &e {
                why.push_str(&format!(
                    ": {}",
                    v.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            if !details.is_empty() {
                why.push_str(&format!(": {}", details.join("; ")));
            }
            failed(row, Some(dir.to_owned()), why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_style_lists_are_read_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        std::fs::write(&path, "\u{feff}username;password;display_name\r\nalice;pw1;Алиса\r\n\r\n\"bob;b\";pw2;\"Bob \"\"B\"\"\"\r\n;;\r\n").unwrap();
        let rows = read_users(&path).unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].line, 2);
        assert_eq!(
            rows[0].values[2],
            ("display_name".to_owned(), "Алиса".to_owned())
        );
        assert_eq!(rows[1].line, 4);
        assert_eq!(rows[1].username(), "bob;b");
        assert_eq!(rows[1].values[2].1, "Bob \"B\"");
        std::fs::write(&path, "username,password\nalice,pw,extra\n").unwrap();
        assert!(read_users(&path)
            .unwrap_err()
            .to_string()
            .ends_with("users.csv:2: 1 field(s) more than the header has"));
    }

    #[test]
    fn layouts_stay_inside_the_output_folder() {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template_owned("layout", "{{ username }}".to_owned())
            .unwrap();
        let row = |u: &str| UserRow {
            line: 2,
            values: vec![("username".into(), u.into())],
        };
        assert_eq!(
            user_dir(&env, &row("alice")).unwrap(),
            PathBuf::from("alice")
        );
        assert!(user_dir(&env, &row("../etc")).is_err());
        assert!(user_dir(&env, &row("/abs")).is_err());
        assert!(user_dir(&env, &row("")).is_err());
    }
}
