//! Template variables: where their values come from, how the sources are
//! merged, and the checks against the set's manifest.
//!
//! # Precedence
//!
//! From lowest to highest (a later source wins):
//!
//! 1. the manifest's `default`s;
//! 2. the environment, as the table `env` (`env.USERNAME`, `env.COMPUTERNAME`,
//!    `env.USERDOMAIN`, ... every variable of the process);
//! 3. the `--vars FILE`s, in the order given (TOML or JSON, by the extension
//!    `.toml` / `.json`, else by the content: `{` first means JSON);
//! 4. the `--set KEY=VALUE`s, in the order given.
//!
//! Tables merge deeply: a later source changes only the keys it gives, so
//! `--set account.label=x` keeps the other keys of `account`. Any other value
//! (string, number, boolean, list) replaces what was there, whatever its
//! kind. A JSON `null` removes the value.
//!
//! `--set` keys are dotted paths (`account.server=x` sets `server` inside the
//! table `account`); the value is a string, except for a variable the
//! manifest declares `integer` (`42`), `boolean` (`true`/`false`, `1`/`0`,
//! `yes`/`no`, `on`/`off`), `list` or `table` (written as JSON): it is
//! converted, and a value that does not convert is an error. Environment
//! values are converted the same way when the manifest declares `env.NAME`.
//!
//! # Checks
//!
//! After merging, every `required` variable must be present and non-empty
//! (not `""`, `[]` or `{}`), and every declared variable that is present
//! must match its type and pattern (see [`VarSpec::check`]). All problems
//! are reported at once. Variables the manifest does not declare are
//! allowed: templates may use them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value as Json};

use crate::template::{kind_of, line_at, toml_to_json, Manifest, VarSpec, VarType, MASK};

/// Where variable values come from, besides the manifest's defaults.
#[derive(Debug, Clone, Default)]
pub struct VarSources {
    /// `--vars FILE`, in the order given.
    pub files: Vec<PathBuf>,
    /// `--set KEY=VALUE`, in the order given.
    pub sets: Vec<String>,
    /// The environment (see [`process_env`]), exposed as `env.NAME`.
    pub env: Vec<(String, String)>,
}

/// The process environment, skipping variables whose name or value is not
/// valid Unicode (which `std::env::vars` would panic on).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The merged, checked variables of one render.
///
/// A bulk row usually only sets a few top-level values over what every row
/// shares: those are kept as a layer over the shared values (no copy of
/// the environment per row), and [`Vars::value`] builds the merged tree
/// only when asked.
#[derive(Debug, Clone)]
pub struct Vars {
    /// What `own` is laid over; `None`: `own` is the whole tree.
    shared: Option<SharedVars>,
    /// The whole tree, or the top-level values laid over `shared`.
    own: Json,
    /// The merged tree, built on first use when layered.
    merged: OnceLock<Json>,
    secrets: Vec<String>,
}

impl PartialEq for Vars {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value() && self.secrets == other.secrets
    }
}

impl Vars {
    /// All variables, as a JSON object (with the `env` table).
    pub fn value(&self) -> &Json {
        match &self.shared {
            None => &self.own,
            Some(shared) => self.merged.get_or_init(|| {
                let mut merged = shared.0.json.clone();
                if let (Json::Object(map), Json::Object(own)) = (&mut merged, &self.own) {
                    for (key, value) in own {
                        map.insert(key.clone(), value.clone());
                    }
                }
                merged
            }),
        }
    }

    /// The value at a dotted path (`account.server`).
    pub fn get(&self, path: &str) -> Option<&Json> {
        self.lookup(&path.split('.').collect::<Vec<_>>())
    }

    /// The value at `path`, from the layers (nothing is merged).
    fn lookup(&self, path: &[&str]) -> Option<&Json> {
        let Some(shared) = &self.shared else {
            return get_path(&self.own, path);
        };
        let (first, rest) = path.split_first()?;
        match self.own.get(*first) {
            // A top-level value of the row replaces the shared one whole.
            Some(own) => get_path(own, rest),
            None => get_path(&shared.0.json, path),
        }
    }

    /// The variables as the template engine's context. The shared values
    /// are converted once for all rows; a row converts its own.
    pub fn template_context(&self) -> minijinja::Value {
        match &self.shared {
            None => to_template_value(&self.own),
            Some(shared) => {
                let base = shared
                    .0
                    .context
                    .get_or_init(|| to_template_value(&shared.0.json));
                // The later map wins, as a top-level `set_path` would.
                minijinja::value::merge_maps([base.clone(), to_template_value(&self.own)])
            }
        }
    }

    /// The non-empty values of the variables declared `secret = true` (each
    /// text leaf, numbers in decimal), longest first, for masking output.
    pub fn secrets(&self) -> Vec<String> {
        self.secrets.clone()
    }

    /// `text` with every secret value replaced by `********`.
    pub fn mask(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |acc, secret| {
            acc.replace(secret.as_str(), MASK)
        })
    }
}

/// Converts variables to template values.
pub(crate) fn to_template_value(json: &Json) -> minijinja::Value {
    use minijinja::Value;
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(to_template_value).collect::<Vec<_>>()),
        Json::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_template_value(v)))
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}

/// A required variable that no source set (or set empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVar {
    /// The variable.
    pub name: String,
    /// Its description from the manifest.
    pub description: String,
}

/// A declared variable whose value does not fit its type or pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidVar {
    /// The variable.
    pub name: String,
    /// What is wrong (the value masked when the variable is secret).
    pub message: String,
}

/// Why the variables could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum VarsError {
    /// A `--set` argument that is not `KEY=VALUE` with a proper key.
    #[error("--set {arg:?}: {reason}")]
    BadSet {
        /// The argument as given.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// A `--set` value that does not convert to the variable's declared type.
    #[error("--set {arg}: {message}")]
    SetValue {
        /// The argument (its value masked when the variable is secret).
        arg: String,
        /// The variable.
        variable: String,
        /// What is wrong.
        message: String,
    },
    /// An environment variable that does not convert to the declared type of `env.NAME`.
    #[error("environment variable {name}: {message}")]
    EnvValue {
        /// The environment variable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A `--vars` file that cannot be read.
    #[error("{}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A `--vars` file that does not parse.
    #[error("{}:{line}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A `--vars` file whose top level is not a table (a JSON array, say).
    #[error("{}: the file must hold a table of variables, not {kind}", .path.display())]
    NotATable {
        /// The file.
        path: PathBuf,
        /// What it holds.
        kind: &'static str,
    },
    /// Required variables missing, or declared variables of the wrong type or pattern.
    #[error("{}", unsatisfied(.missing, .invalid))]
    Unsatisfied {
        /// Every missing required variable, in manifest order.
        missing: Vec<MissingVar>,
        /// Every invalid variable, in manifest order.
        invalid: Vec<InvalidVar>,
    },
}

fn unsatisfied<'a>(missing: &'a [MissingVar], invalid: &'a [InvalidVar]) -> Unsatisfied<'a> {
    Unsatisfied { missing, invalid }
}

struct Unsatisfied<'a> {
    missing: &'a [MissingVar],
    invalid: &'a [InvalidVar],
}

impl fmt::Display for Unsatisfied<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.missing.len() + self.invalid.len();
        write!(
            f,
            "{count} problem{} with the template variables:",
            if count == 1 { "" } else { "s" }
        )?;
        for m in self.missing {
            write!(f, "\n  missing required variable {:?}", m.name)?;
            if !m.description.is_empty() {
                write!(f, " ({})", m.description)?;
            }
            write!(
                f,
                ": set it with --set {}=VALUE or in a --vars file",
                m.name
            )?;
        }
        for i in self.invalid {
            write!(f, "\n  variable {:?}: {}", i.name, i.message)?;
        }
        Ok(())
    }
}

/// Merges the sources over the manifest's defaults (see the module
/// documentation for the order) and checks the result against the manifest.
pub fn resolve(manifest: &Manifest, sources: &VarSources) -> Result<Vars, VarsError> {
    resolve_row(manifest, &resolve_shared(manifest, sources)?, &sources.sets)
}

/// The values every row of a bulk run shares (manifest defaults, the
/// environment, `--vars` files), resolved once for the run; see
/// [`resolve_row`].
#[derive(Debug, Clone)]
pub struct SharedVars(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    json: Json,
    /// `json` as template values, converted on first use.
    context: OnceLock<minijinja::Value>,
}

/// Resolves the sources but `sets`: defaults < env < files.
pub fn resolve_shared(manifest: &Manifest, sources: &VarSources) -> Result<SharedVars, VarsError> {
    let mut merged = Json::Object(Map::new());

    for spec in &manifest.variables {
        if let Some(default) = &spec.default {
            set_path(&mut merged, &spec.path(), default.clone());
        }
    }

    let mut env = Map::new();
    for (name, value) in &sources.env {
        if name.is_empty() {
            continue;
        }
        let value = match manifest.variable(&format!("env.{name}")) {
            Some(spec) => convert(spec, value).map_err(|message| VarsError::EnvValue {
                name: name.clone(),
                message,
            })?,
            None => Json::String(value.clone()),
        };
        env.insert(name.clone(), value);
    }
    set_path(&mut merged, &["env"], Json::Object(env));

    for path in &sources.files {
        let table = read_vars_file(path)?;
        merge(&mut merged, Json::Object(table));
    }
    Ok(SharedVars(Arc::new(Shared {
        json: merged,
        context: OnceLock::new(),
    })))
}

/// The variables of one run (or one bulk row): `shared`, then `sets`
/// (`--set`, or the row's columns), checked against the manifest.
pub fn resolve_row(
    manifest: &Manifest,
    shared: &SharedVars,
    sets: &[String],
) -> Result<Vars, VarsError> {
    let mut parsed = Vec::with_capacity(sets.len());
    for arg in sets {
        parsed.push(parse_set(manifest, arg)?);
    }
    // Top-level values that replace what is there (not tables, which merge
    // deeply, nor nulls, which remove) are laid over the shared values;
    // anything else is merged into a copy.
    let layered = parsed
        .iter()
        .all(|(path, value)| path.len() == 1 && !value.is_object() && !value.is_null());
    let vars = if layered {
        let own: Map<String, Json> = parsed
            .into_iter()
            .filter_map(|(mut path, value)| Some((path.pop()?, value)))
            .collect();
        Vars {
            shared: Some(shared.clone()),
            own: Json::Object(own),
            merged: OnceLock::new(),
            secrets: Vec::new(),
        }
    } else {
        let mut merged = shared.0.json.clone();
        for (path, value) in parsed {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            set_path(&mut merged, &path, value);
        }
        Vars {
            shared: None,
            own: merged,
            merged: OnceLock::new(),
            secrets: Vec::new(),
        }
    };

    let mut missing = Vec::new();
    let mut invalid = Vec::new();
    let mut secrets = Vec::new();
    for spec in &manifest.variables {
        let value = vars.lookup(&spec.path()).filter(|v| !v.is_null());
        let Some(value) = value else {
            if spec.required {
                missing.push(MissingVar {
                    name: spec.name.clone(),
                    description: spec.description.clone(),
                });
            }
            continue;
        };
        if spec.required && is_empty(value) {
            missing.push(MissingVar {
                name: spec.name.clone(),
                description: spec.description.clone(),
            });
            continue;
        }
        if let Err(message) = spec.check(value) {
            invalid.push(InvalidVar {
                name: spec.name.clone(),
                message,
            });
        }
        if spec.secret {
            collect_leaves(value, &mut secrets);
        }
    }
    if !missing.is_empty() || !invalid.is_empty() {
        return Err(VarsError::Unsatisfied { missing, invalid });
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    Ok(Vars { secrets, ..vars })
}

fn is_empty(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
        Json::Bool(_) | Json::Number(_) => false,
    }
}

fn collect_leaves(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::String(s) => out.push(s.clone()),
        Json::Number(n) => out.push(n.to_string()),
        Json::Array(items) => items.iter().for_each(|v| collect_leaves(v, out)),
        Json::Object(map) => map.values().for_each(|v| collect_leaves(v, out)),
        Json::Null | Json::Bool(_) => {}
    }
}

fn get_path<'a>(root: &'a Json, path: &[&str]) -> Option<&'a Json> {
    path.iter()
        .try_fold(root, |node, key| node.as_object()?.get(*key))
}

/// Puts `value` at `path`, making tables on the way (a non-table in the way
/// is replaced), and merges it deeply into what is there.
fn set_path(root: &mut Json, path: &[&str], value: Json) {
    let mut node = root;
    for key in path {
        if !node.is_object() {
            *node = Json::Object(Map::new());
        }
        let Json::Object(map) = node else { return };
        node = map
            .entry((*key).to_owned())
            .or_insert_with(|| Json::Object(Map::new()));
    }
    if node.is_object() && value.is_object() {
        merge(node, value);
    } else {
        *node = value;
    }
}

/// Deep merge: tables merge key by key, anything else replaces; `null` removes.
fn merge(base: &mut Json, over: Json) {
    match (base, over) {
        (Json::Object(base), Json::Object(over)) => {
            for (key, value) in over {
                if value.is_null() {
                    base.remove(&key);
                    continue;
                }
                match base.get_mut(&key) {
                    Some(slot) if slot.is_object() && value.is_object() => merge(slot, value),
                    Some(slot) => *slot = without_nulls(value),
                    None => {
                        base.insert(key, without_nulls(value));
                    }
                }
            }
        }
        (base, over) => *base = without_nulls(over),
    }
}

fn without_nulls(value: Json) -> Json {
    match value {
        Json::Object(map) => Json::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Converts a string from `--set` or the environment to the declared type.
fn convert(spec: &VarSpec, text: &str) -> Result<Json, String> {
    let shown = || {
        if spec.secret {
            MASK.to_owned()
        } else {
            format!("{text:?}")
        }
    };
    match spec.ty {
        VarType::String => Ok(Json::String(text.to_owned())),
        VarType::Integer => text.trim().parse::<i64>().map(Json::from).map_err(|_| {
            format!(
                "{} is declared integer, but {} is not a whole number",
                spec.name,
                shown()
            )
        }),
        VarType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Json::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Json::Bool(false)),
            _ => Err(format!(
                "{} is declared boolean, but {} is not true/false, 1/0, yes/no or on/off",
                spec.name,
                shown()
            )),
        },
        VarType::List | VarType::Table => {
            let parsed: Option<Json> = serde_json::from_str(text).ok();
            match parsed {
                Some(value) if spec.ty.matches(&value) => Ok(value),
                _ => {
                    Err(format!(
                    "{} is declared {}: write it as JSON (such as {}) or set it in a --vars file",
                    spec.name,
                    spec.ty,
                    if spec.ty == VarType::List { "[\"a\", \"b\"]" } else { "{\"key\": \"value\"}" }
                ))
                }
            }
        }
    }
}

/// Splits and checks one `--set KEY=VALUE`.
fn parse_set(manifest: &Manifest, arg: &str) -> Result<(Vec<String>, Json), VarsError> {
    let bad = |reason: &str| VarsError::BadSet {
        arg: arg.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((key, text)) = arg.split_once('=') else {
        return Err(bad("expected KEY=VALUE"));
    };
    if key.is_empty() {
        return Err(bad("the key (before =) is empty"));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(bad("the key contains spaces"));
    }
    let path: Vec<String> = key.split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        return Err(bad(
            "the key has an empty part (KEY is NAME or NAME.NAME...)",
        ));
    }
    let value = match manifest.variable(key) {
        Some(spec) => convert(spec, text).map_err(|message| VarsError::SetValue {
            arg: if spec.secret {
                format!("{key}={MASK}")
            } else {
                arg.to_owned()
            },
            variable: spec.name.clone(),
            message,
        })?,
        None => Json::String(text.to_owned()),
    };
    Ok((path, value))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileFormat {
    Toml,
    Json,
}

/// Reads one `--vars` file into a table.
fn read_vars_file(path: &Path) -> Result<Map<String, Json>, VarsError> {
    let bytes = std::fs::read(path).map_err(|source| VarsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        VarsError::Parse {
            path: path.to_owned(),
            line,
            message: "the file is not UTF-8".to_owned(),
        }
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let format = match extension.as_deref() {
        Some("toml") => FileFormat::Toml,
        Some("json") => FileFormat::Json,
        _ if text.trim_start().starts_with('{') => FileFormat::Json,
        _ => FileFormat::Toml,
    };
    let value = match format {
        FileFormat::Toml => {
            let table: toml::Table = toml::from_str(text).map_err(|e| VarsError::Parse {
                path: path.to_owned(),
                line: e.span().map_or(1, |s| line_at(text, s.start)),
                message: e.message().trim_end().to_owned(),
            })?;
            toml_to_json(toml::Value::Table(table))
        }
        FileFormat::Json => serde_json::from_str::<Json>(text).map_err(|e| {
            let full = e.to_string();
            let message = full
                .rfind(" at line ")
                .map_or(full.as_str(), |i| &full[..i])
                .to_owned();
            VarsError::Parse {
                path: path.to_owned(),
                line: e.line().max(1),
                message,
            }
        })?,
    };
    match value {
        Json::Object(map) => Ok(map),
        other => Err(VarsError::NotATable {
            path: path.to_owned(),
            kind: kind_of(&other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(text, "t/template.toml", "t")
            .map_err(|e| e.to_string())
            .unwrap()
    }

    const MANIFEST: &str = r#"
[[variables]]
name = "label"
default = "from-default"

[[variables]]
name = "env.LABEL"
default = "env-default"

[[variables]]
name = "server"
required = true
description = "SIP registrar"

[[variables]]
name = "username"
required = true
description = "SIP user"

[[variables]]
name = "password"
required = true
secret = true
pattern = '[A-Za-z0-9]{8,}'

[[variables]]
name = "port"
type = "integer"
default = 5060

[[variables]]
name = "tls"
type = "boolean"
default = false
"#;

    fn sources(files: &[&Path], sets: &[&str], env: &[(&str, &str)]) -> VarSources {
        VarSources {
            files: files.iter().map(|p| p.to_path_buf()).collect(),
            sets: sets.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const BASE_SETS: [&str; 3] = ["server=s", "username=u", "password=Secret123"];

    fn resolved(files: &[&Path], sets: &[&str], env: &[(&str, &str)]) -> Vars {
        let mut all: Vec<&str> = BASE_SETS.to_vec();
        all.extend_from_slice(sets);
        resolve(&manifest(MANIFEST), &sources(files, &all, env))
            .map_err(|e| e.to_string())
            .unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn precedence_at_every_level() {
        let tmp = tempfile::tempdir().unwrap();
        let f1 = write(
            tmp.path(),
            "one.toml",
            "label = \"file1\"\n[env]\nLABEL = \"file1\"\n",
        );
        let f2 = write(
            tmp.path(),
            "two.json",
            r#"{"label": "file2", "env": {"LABEL": "file2"}}"#,
        );
        let env = [("LABEL", "from-env"), ("USERNAME", "jdoe")];
        let get = |v: &Vars, p: &str| v.get(p).and_then(Json::as_str).map(str::to_owned);

        // Defaults only.
        let v = resolved(&[], &[], &[]);
        assert_eq!(get(&v, "label").as_deref(), Some("from-default"));
        assert_eq!(get(&v, "env.LABEL").as_deref(), Some("env-default"));
        // The environment beats the default.
        let v = resolved(&[], &[], &env);
        assert_eq!(get(&v, "env.LABEL").as_deref(), Some("from-env"));
        assert_eq!(get(&v, "env.USERNAME").as_deref(), Some("jdoe"));
        // A vars file beats the environment; the later file beats the earlier.
        let v = resolved(&[&f1], &[], &env);
        assert_eq!(get(&v, "env.LABEL").as_deref(), Some("file1"));
        assert_eq!(get(&v, "label").as_deref(), Some("file1"));
        assert_eq!(
            get(&v, "env.USERNAME").as_deref(),
            Some("jdoe"),
            "tables merge"
        );
        let v = resolved(&[&f1, &f2], &[], &env);
        assert_eq!(get(&v, "env.LABEL").as_deref(), Some("file2"));
        assert_eq!(get(&v, "label").as_deref(), Some("file2"));
        let v = resolved(&[&f2, &f1], &[], &env);
        assert_eq!(get(&v, "label").as_deref(), Some("file1"), "order given");
        // --set beats the files; the later --set beats the earlier.
        let v = resolved(&[&f1, &f2], &["label=set1", "env.LABEL=set1"], &env);
        assert_eq!(get(&v, "label").as_deref(), Some("set1"));
        assert_eq!(get(&v, "env.LABEL").as_deref(), Some("set1"));
        let v = resolved(
            &[&f1, &f2],
            &[
                "label=set1",
                "label=set2",
                "env.LABEL=set1",
                "env.LABEL=set2",
            ],
            &env,
        );
        assert_eq!(get(&v, "label").as_deref(), Some("set2"));
        assert_eq!(get(&v, "env.LABEL").as_deref(), Some("set2"));
        assert_eq!(get(&v, "env.USERNAME").as_deref(), Some("jdoe"));
    }

    #[test]
    fn dotted_sets_nest_and_tables_merge_deeply() {
        let tmp = tempfile::tempdir().unwrap();
        let f1 = write(
            tmp.path(),
            "a.toml",
            "[account]\nserver = \"a\"\nlabel = \"A\"\n[account.nat]\nstun = \"s1\"\nice = true\n",
        );
        let f2 = write(tmp.path(), "b.toml", "[account.nat]\nstun = \"s2\"\n");
        let v = resolved(&[&f1, &f2], &["account.proxy=p", "account.nat.turn=t"], &[]);
        let account = v.get("account").unwrap();
        assert_eq!(
            account,
            &serde_json::json!({
                "server": "a", "label": "A", "proxy": "p",
                "nat": {"stun": "s2", "ice": true, "turn": "t"}
            })
        );
        // A scalar replaces a table and the other way round.
        let v = resolved(&[&f1], &["account=flat"], &[]);
        assert_eq!(v.get("account"), Some(&Json::from("flat")));
        let v = resolved(&[], &["x=1", "x.y=2"], &[]);
        assert_eq!(v.get("x"), Some(&serde_json::json!({"y": "2"})));
        // JSON null removes.
        let f3 = write(tmp.path(), "c.json", r#"{"account": {"label": null}}"#);
        let v = resolved(&[&f1, &f3], &[], &[]);
        assert!(v.get("account.label").is_none());
        assert_eq!(v.get("account.server"), Some(&Json::from("a")));
    }

    #[test]
    fn set_values_convert_to_the_declared_type() {
        let v = resolved(&[], &["port=5080", "tls=yes", "other=42"], &[]);
        assert_eq!(v.get("port"), Some(&Json::from(5080)));
        assert_eq!(v.get("tls"), Some(&Json::Bool(true)));
        assert_eq!(
            v.get("other"),
            Some(&Json::from("42")),
            "undeclared: a string"
        );
        let m = manifest(MANIFEST);
        let e = resolve(&m, &sources(&[], &["port=fifty"], &[])).unwrap_err();
        assert!(
            matches!(&e, VarsError::SetValue { variable, .. } if variable == "port"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "--set port=fifty: port is declared integer, but \"fifty\" is not a whole number"
        );
        let e = resolve(&m, &sources(&[], &["tls=maybe"], &[])).unwrap_err();
        assert!(e.to_string().contains("tls is declared boolean"), "{e}");
        let m2 = manifest("[[variables]]\nname = \"pin\"\ntype = \"integer\"\nsecret = true\n[[variables]]\nname = \"env.N\"\ntype = \"integer\"\n[[variables]]\nname = \"l\"\ntype = \"list\"\n");
        let e = resolve(&m2, &sources(&[], &["pin=12x4"], &[])).unwrap_err();
        assert!(!e.to_string().contains("12x4"), "{e}");
        let e = resolve(&m2, &sources(&[], &[], &[("N", "many")])).unwrap_err();
        assert!(
            matches!(&e, VarsError::EnvValue { name, .. } if name == "N"),
            "{e:?}"
        );
        let v = resolve(&m2, &sources(&[], &["l=[\"a\",\"b\"]"], &[("N", "7")])).unwrap();
        assert_eq!(v.get("env.N"), Some(&Json::from(7)));
        assert_eq!(v.get("l"), Some(&serde_json::json!(["a", "b"])));
        assert!(resolve(&m2, &sources(&[], &["l=a,b"], &[])).is_err());
    }

    #[test]
    fn bad_set_arguments_are_named() {
        let m = manifest("");
        for (arg, reason) in [
            ("server", "expected KEY=VALUE"),
            ("=x", "empty"),
            ("a..b=x", "empty part"),
            (".a=x", "empty part"),
            ("a b=x", "spaces"),
        ] {
            let e = resolve(&m, &sources(&[], &[arg], &[])).unwrap_err();
            assert!(
                matches!(&e, VarsError::BadSet { arg: a, .. } if a == arg),
                "{arg}: {e:?}"
            );
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("--set {arg:?}: ")) && text.contains(reason),
                "{text}"
            );
        }
        // Values may hold '=' and be empty.
        let v = resolve(&m, &sources(&[], &["a=b=c", "e="], &[])).unwrap();
        assert_eq!(v.get("a"), Some(&Json::from("b=c")));
        assert_eq!(v.get("e"), Some(&Json::from("")));
    }

    #[test]
    fn every_missing_required_variable_is_listed() {
        let m = manifest(MANIFEST);
        let e = resolve(&m, &sources(&[], &["username="], &[])).unwrap_err();
        let VarsError::Unsatisfied { missing, invalid } = &e else {
            panic!("{e:?}")
        };
        let names: Vec<&str> = missing.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["server", "username", "password"]);
        assert!(invalid.is_empty());
        let text = e.to_string();
        assert!(
            text.starts_with("3 problems with the template variables:"),
            "{text}"
        );
        assert!(text.contains("missing required variable \"server\" (SIP registrar): set it with --set server=VALUE"), "{text}");
        assert!(
            text.contains("missing required variable \"username\" (SIP user)"),
            "{text}"
        );
    }

    #[test]
    fn wrong_types_and_patterns_are_reported_with_secrets_masked() {
        let tmp = tempfile::tempdir().unwrap();
        let f = write(tmp.path(), "v.toml", "port = \"5060\"\ntls = 1\n");
        let m = manifest(MANIFEST);
        let e = resolve(
            &m,
            &sources(&[&f], &["server=s", "username=u", "password=short"], &[]),
        )
        .unwrap_err();
        let VarsError::Unsatisfied { missing, invalid } = &e else {
            panic!("{e:?}")
        };
        assert!(missing.is_empty());
        let names: Vec<&str> = invalid.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["password", "port", "tls"]);
        let text = e.to_string();
        assert!(!text.contains("short"), "the secret leaks: {text}");
        assert!(
            text.contains("variable \"password\": value ******** does not match the pattern \"[A-Za-z0-9]{8,}\""),
            "{text}"
        );
        assert!(
            text.contains("variable \"port\": must be an integer, but is a string (\"5060\")"),
            "{text}"
        );
        assert!(
            text.contains("variable \"tls\": must be a boolean, but is an integer (1)"),
            "{text}"
        );
        // A non-secret pattern mismatch shows the value.
        let m = manifest("[[variables]]\nname = \"t\"\npattern = \"udp|tcp\"\n");
        let e = resolve(&m, &sources(&[], &["t=UDP"], &[])).unwrap_err();
        assert!(
            e.to_string()
                .contains("value \"UDP\" does not match the pattern \"udp|tcp\""),
            "{e}"
        );
    }

    #[test]
    fn secrets_are_known_and_masked() {
        let v = resolved(&[], &[], &[]);
        assert_eq!(v.secrets(), ["Secret123"]);
        assert_eq!(v.mask("password=Secret123;"), "password=********;");
        let m = manifest("[[variables]]\nname = \"pw\"\nsecret = true\ndefault = \"\"\n");
        assert!(resolve(&m, &VarSources::default())
            .unwrap()
            .secrets()
            .is_empty());
    }

    #[test]
    fn vars_files_errors_name_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let m = manifest("");
        let toml = write(tmp.path(), "bad.toml", "a = 1\nb = \"x\nc = 2\n");
        let e = resolve(&m, &sources(&[&toml], &[], &[])).unwrap_err();
        assert!(matches!(&e, VarsError::Parse { line: 2, .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2: ", toml.display())),
            "{e}"
        );
        let json = write(tmp.path(), "bad.json", "{\n  \"a\": 1,\n  \"b\": \n}\n");
        let e = resolve(&m, &sources(&[&json], &[], &[])).unwrap_err();
        assert!(matches!(&e, VarsError::Parse { line: 4, .. }), "{e:?}");
        assert!(!e.to_string().contains(" at line "), "{e}");
        // Sniffed: JSON without the extension, TOML otherwise.
        let sniff_json = write(tmp.path(), "vars", "  {\"a\": \"j\"}");
        let sniff_toml = write(tmp.path(), "vars.txt", "a = \"t\"\n");
        let v = resolve(&m, &sources(&[&sniff_json], &[], &[])).unwrap();
        assert_eq!(v.get("a"), Some(&Json::from("j")));
        let v = resolve(&m, &sources(&[&sniff_toml], &[], &[])).unwrap();
        assert_eq!(v.get("a"), Some(&Json::from("t")));
        let array = write(tmp.path(), "arr.json", "[1]");
        assert!(matches!(
            resolve(&m, &sources(&[&array], &[], &[])),
            Err(VarsError::NotATable { .. })
        ));
        let missing = tmp.path().join("nope.toml");
        let e = resolve(&m, &sources(&[&missing], &[], &[])).unwrap_err();
        assert!(matches!(e, VarsError::Read { .. }));
        assert!(e.to_string().contains("nope.toml"));
        let latin1 = tmp.path().join("l.toml");
        std::fs::write(&latin1, b"a = 1\nb = \"\xe9\"\n").unwrap();
        let e = resolve(&m, &sources(&[&latin1], &[], &[])).unwrap_err();
        assert!(matches!(&e, VarsError::Parse { line: 2, .. }), "{e:?}");
    }

    #[test]
    fn the_process_environment_is_read() {
        let env = process_env();
        assert!(env.iter().any(|(k, _)| k == "PATH" || k == "Path"));
    }
}
