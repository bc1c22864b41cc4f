//! Template sets: a folder `templates/<name>/` with a manifest
//! (`template.toml`), the `microsip.ini` template (`microsip.ini.j2`) and,
//! optionally, the `Contacts.xml` template (`Contacts.xml.j2`).
//!
//! # The manifest
//!
//! ```toml
//! name = "default"                       # optional; the folder name otherwise
//! description = "One SIP account"        # optional
//! handlers = ["sip", "sips", "tel", "callto"]   # URL schemes the set wants; optional
//!
//! [[variables]]
//! name = "server"          # an identifier; dots name a nested value (`account.server`)
//! type = "string"          # string (the default), integer, boolean, list, table
//! required = true          # must be present and non-empty after merging (default false)
//! default = "sip.example.com"   # optional; must match the type and pattern
//! secret = false           # masked in every message and in apply's output (default false)
//! pattern = '[a-z.]+'      # optional regex, anchored: the whole value must match
//! description = "SIP registrar, host[:port]"
//! ```
//!
//! A `pattern` applies to a string, to the decimal form of an integer, to
//! `true`/`false`, and to each scalar item of a list; it is not allowed on a
//! table. An empty string in a variable that is not `required` counts as
//! "not set" and is not matched against the pattern, so `default = ""` works
//! with any pattern. An optional variable without a default is simply absent
//! unless some source sets it, and a template that prints it fails (templates
//! render with strict undefined checks): give optional variables a default.
//!
//! # Where a set is found
//!
//! See [`TemplateSet::load`]. The `default` set is also compiled into the
//! binary ([`embedded`]), so `msipprov apply --set server=... --set
//! username=... --set password=...` needs no file at all.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use serde_json::Value as Json;
use toml::Spanned;

/// The manifest's file name inside a template set folder.
pub const MANIFEST_FILE: &str = "template.toml";
/// The `microsip.ini` template's file name (required).
pub const INI_TEMPLATE: &str = "microsip.ini.j2";
/// The `Contacts.xml` template's file name (optional).
pub const CONTACTS_TEMPLATE: &str = "Contacts.xml.j2";
/// What a secret value is shown as.
pub const MASK: &str = "********";

/// The `default` set, compiled in: (manifest, ini template, contacts template).
const EMBEDDED_DEFAULT: (&str, &str, Option<&str>) = (
    include_str!("../../templates/default/template.toml"),
    include_str!("../../templates/default/microsip.ini.j2"),
    None,
);

/// Why a template set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No folder of that name, and no embedded set of that name.
    #[error("template set {spec:?} not found; looked in: {}", looked_list(.looked, .spec))]
    NotFound {
        /// The name or path asked for.
        spec: String,
        /// Every folder tried, in order.
        looked: Vec<PathBuf>,
    },
    /// A file of the set could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The manifest is not valid TOML, or has a field of the wrong kind or an unknown field.
    #[error("{file}:{line}: {message}")]
    ManifestSyntax {
        /// The manifest file (path, or `default/template.toml (embedded)`).
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A variable's `type` is not one of the known types.
    #[error("{file}:{line}: variable {variable:?}: unknown type {ty:?}; the types are {}", VarType::NAMES.join(", "))]
    UnknownType {
        /// The manifest file.
        file: String,
        /// 1-based line of the `type`.
        line: usize,
        /// The variable.
        variable: String,
        /// The type as written.
        ty: String,
    },
    /// A variable's `pattern` is not a valid regular expression (or is set on a table).
    #[error("{file}:{line}: variable {variable:?}: bad pattern {pattern:?}: {message}")]
    BadPattern {
        /// The manifest file.
        file: String,
        /// 1-based line of the `pattern`.
        line: usize,
        /// The variable.
        variable: String,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A variable's `default` does not match its own type or pattern.
    #[error("{file}:{line}: variable {variable:?}: the default {message}")]
    BadDefault {
        /// The manifest file.
        file: String,
        /// 1-based line of the `default`.
        line: usize,
        /// The variable.
        variable: String,
        /// What is wrong with it.
        message: String,
    },
    /// Any other mistake in the manifest (a bad or repeated variable name, a bad handler).
    #[error("{file}:{line}: {message}")]
    Manifest {
        /// The manifest file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A template file does not compile.
    #[error("{file}:{}{message}", .line.map(|l| format!("{l}: ")).unwrap_or_else(|| " ".to_owned()))]
    TemplateSyntax {
        /// The template file.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

fn looked_list(looked: &[PathBuf], spec: &str) -> String {
    let mut places: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    if looked.is_empty() {
        places.push("(no folder: the running program's location is unknown)".to_owned());
    }
    if spec.contains(std::path::is_separator) || spec.contains('/') {
        return places.join(", ");
    }
    let embedded = if spec == "default" {
        "the embedded \"default\" set"
    } else {
        "the embedded sets (only \"default\" is embedded)"
    };
    format!("{}; and {embedded}", places.join(", "))
}

/// The type of a template variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    /// Text.
    String,
    /// A whole number (64-bit).
    Integer,
    /// `true` or `false` (rendered as `1`/`0` in both files).
    Boolean,
    /// An array (e.g. the corporate `directory`).
    List,
    /// A table (an object of named values).
    Table,
}

impl VarType {
    /// The type names a manifest may use.
    pub const NAMES: &'static [&'static str] = &["string", "integer", "boolean", "list", "table"];

    /// Parses a manifest type name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "integer" => Self::Integer,
            "boolean" => Self::Boolean,
            "list" => Self::List,
            "table" => Self::Table,
            _ => return None,
        })
    }

    /// The manifest name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::List => "list",
            Self::Table => "table",
        }
    }

    /// Whether `value` is of this type.
    pub fn matches(self, value: &Json) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Boolean => value.is_boolean(),
            Self::List => value.is_array(),
            Self::Table => value.is_object(),
        }
    }
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of a JSON value in words, for messages.
pub(crate) fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "nothing (null)",
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Json::Number(_) => "a decimal number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a table",
    }
}

/// One variable a template set takes, as declared in its manifest.
#[derive(Debug, Clone)]
pub struct VarSpec {
    /// The name; dots name a nested value (`account.server`).
    pub name: String,
    /// The type.
    pub ty: VarType,
    /// Whether it must be present and non-empty.
    pub required: bool,
    /// The value used when no source sets it.
    pub default: Option<Json>,
    /// Whether the value is a secret (masked in messages and output).
    pub secret: bool,
    /// The regular expression as written (matched against the whole value).
    pub pattern: Option<String>,
    /// What the variable is for.
    pub description: String,
    /// `pattern`, anchored and compiled.
    regex: Option<Regex>,
}

impl VarSpec {
    /// The path of the name: `account.server` → `["account", "server"]`.
    pub fn path(&self) -> Vec<&str> {
        self.name.split('.').collect()
    }

    /// How a value of this variable may be shown: [`MASK`] for a secret,
    /// else the value (strings in quotes).
    pub fn show(&self, value: &Json) -> String {
        if self.secret {
            MASK.to_owned()
        } else {
            value.to_string()
        }
    }

    /// Checks a value against the type and the pattern. The message does not
    /// name the variable (the caller does) and shows the value only when the
    /// variable is not secret.
    pub fn check(&self, value: &Json) -> Result<(), String> {
        if !self.ty.matches(value) {
            return Err(format!(
                "must be {} {}, but is {} ({})",
                if self.ty == VarType::Integer {
                    "an"
                } else {
                    "a"
                },
                self.ty,
                kind_of(value),
                self.show(value)
            ));
        }
        let (Some(regex), Some(pattern)) = (&self.regex, &self.pattern) else {
            return Ok(());
        };
        if !self.required && value.as_str() == Some("") {
            return Ok(());
        }
        let items: Vec<&Json> = match value {
            Json::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in items {
            let text = match item {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
                _ => continue,
            };
            if !regex.is_match(&text) {
                let shown = if self.secret {
                    MASK.to_owned()
                } else {
                    format!("{text:?}")
                };
                let what = if value.is_array() { "item" } else { "value" };
                return Err(format!(
                    "{what} {shown} does not match the pattern {pattern:?} (the whole value must match)"
                ));
            }
        }
        Ok(())
    }
}

/// A parsed and checked `template.toml`.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The set's name (the folder name when the manifest gives none).
    pub name: String,
    /// What the set is for.
    pub description: String,
    /// The variables, in manifest order.
    pub variables: Vec<VarSpec>,
    /// The URL schemes the set wants registered (`sip`, `tel`, ...), lower case.
    pub handlers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    handlers: Vec<Spanned<String>>,
    #[serde(default)]
    variables: Vec<Spanned<RawVar>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVar {
    name: Spanned<String>,
    #[serde(rename = "type")]
    ty: Option<Spanned<String>>,
    #[serde(default)]
    required: bool,
    default: Option<Spanned<toml::Value>>,
    #[serde(default)]
    secret: bool,
    pattern: Option<Spanned<String>>,
    #[serde(default)]
    description: String,
}

/// The 1-based line holding byte `offset` of `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Converts a TOML value to JSON (dates become their TOML text).
pub(crate) fn toml_to_json(value: toml::Value) -> Json {
    match value {
        toml::Value::String(s) => Json::String(s),
        toml::Value::Integer(i) => Json::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => Json::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Json::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect(),
        ),
    }
}

fn is_identifier(segment: &str) -> bool {
    let mut chars = segment.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

impl Manifest {
    /// Parses and checks a manifest. `file` names it in errors;
    /// `fallback_name` is the set's name when the manifest gives none.
    pub fn parse(text: &str, file: &str, fallback_name: &str) -> Result<Self, TemplateError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| TemplateError::ManifestSyntax {
            file: file.to_owned(),
            line: e.span().map_or(1, |s| line_at(text, s.start)),
            message: e.message().trim_end().to_owned(),
        })?;
        let line = |offset: usize| line_at(text, offset);
        let manifest_error = |offset: usize, message: String| TemplateError::Manifest {
            file: file.to_owned(),
            line: line(offset),
            message,
        };

        let mut handlers = Vec::new();
        for handler in raw.handlers {
            let span = handler.span();
            let scheme = handler.into_inner();
            if !is_scheme(&scheme) {
                return Err(manifest_error(
                    span.start,
                    format!("handler {scheme:?} is not a URL scheme in lower case (such as \"sip\", \"tel\", \"callto\")"),
                ));
            }
            if handlers.contains(&scheme) {
                return Err(manifest_error(
                    span.start,
                    format!("handler {scheme:?} is listed twice"),
                ));
            }
            handlers.push(scheme);
        }

        let mut variables: Vec<VarSpec> = Vec::new();
        let mut seen = HashSet::new();
        for raw_var in raw.variables {
            let var_span = raw_var.span();
            let raw_var = raw_var.into_inner();
            let name_span = raw_var.name.span();
            let name = raw_var.name.into_inner();
            if name.is_empty() || !name.split('.').all(is_identifier) {
                return Err(manifest_error(
                    name_span.start,
                    format!("variable name {name:?} is not an identifier (letters, digits and _, not starting with a digit; dots for nested values)"),
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(manifest_error(
                    name_span.start,
                    format!("variable {name:?} is declared twice"),
                ));
            }
            let ty = match &raw_var.ty {
                None => VarType::String,
                Some(ty) => {
                    VarType::parse(ty.get_ref()).ok_or_else(|| TemplateError::UnknownType {
                        file: file.to_owned(),
                        line: line(ty.span().start),
                        variable: name.clone(),
                        ty: ty.get_ref().clone(),
                    })?
                }
            };
            let (pattern, regex) = match raw_var.pattern {
                None => (None, None),
                Some(pattern) => {
                    let bad = |message: String| TemplateError::BadPattern {
                        file: file.to_owned(),
                        line: line(pattern.span().start),
                        variable: name.clone(),
                        pattern: pattern.get_ref().clone(),
                        message,
                    };
                    if ty == VarType::Table {
                        return Err(bad("a table cannot have a pattern".to_owned()));
                    }
                    let regex = Regex::new(&format!("^(?:{})$", pattern.get_ref()))
                        .map_err(|e| bad(regex_message(&e)))?;
                    (Some(pattern.get_ref().clone()), Some(regex))
                }
            };
            let mut spec = VarSpec {
                name: name.clone(),
                ty,
                required: raw_var.required,
                default: None,
                secret: raw_var.secret,
                pattern,
                description: raw_var.description,
                regex,
            };
            if let Some(default) = raw_var.default {
                let default_line = line(default.span().start);
                let value = toml_to_json(default.into_inner());
                spec.check(&value)
                    .map_err(|message| TemplateError::BadDefault {
                        file: file.to_owned(),
                        line: default_line,
                        variable: name.clone(),
                        message,
                    })?;
                spec.default = Some(value);
            }
            // A name that is a prefix of another (`a` and `a.b`) must be a table.
            for other in &variables {
                let (short, long) = if other.name.len() < name.len() {
                    (other, name.as_str())
                } else {
                    (&spec, other.name.as_str())
                };
                if long.starts_with(&format!("{}.", short.name)) && short.ty != VarType::Table {
                    return Err(manifest_error(
                        var_span.start,
                        format!(
                            "variable {:?} holds {long:?}, so it must be of type table, not {}",
                            short.name, short.ty
                        ),
                    ));
                }
            }
            variables.push(spec);
        }

        Ok(Self {
            name: raw.name.unwrap_or_else(|| fallback_name.to_owned()),
            description: raw.description,
            variables,
            handlers,
        })
    }

    /// The declared variable of that (dotted) name.
    pub fn variable(&self, name: &str) -> Option<&VarSpec> {
        self.variables.iter().find(|v| v.name == name)
    }
}

/// The regex crate's message, on one line.
fn regex_message(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .map_or_else(
                || text.replace('\n', " "),
                |l| l.trim_start_matches("error:").trim().to_owned(),
            ),
        other => other.to_string(),
    }
}

/// One template file of a set.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    /// The file name (`microsip.ini.j2` or `Contacts.xml.j2`).
    pub name: &'static str,
    /// How errors name it: its path, or `default/microsip.ini.j2 (embedded)`.
    pub display: String,
    /// The template text.
    pub source: String,
}

/// Where a set was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Dir(PathBuf),
    Embedded,
}

/// A loaded, checked template set: manifest and templates.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    /// The set's name (from the manifest, else the folder name).
    pub name: String,
    /// The manifest.
    pub manifest: Manifest,
    origin: Origin,
    ini: TemplateFile,
    contacts: Option<TemplateFile>,
    /// Both templates compiled once, at load: a bulk run renders them for
    /// every user, and compiling is most of a render's cost.
    compiled: minijinja::Environment<'static>,
}

/// The built-in template set of that name (only `default` exists), as shipped
/// in `templates/default/` and compiled into the binary.
pub fn embedded(name: &str) -> Option<TemplateSet> {
    if name != "default" {
        return None;
    }
    let (manifest, ini, contacts) = EMBEDDED_DEFAULT;
    TemplateSet::from_text(name, " (embedded)", manifest, ini, contacts).ok()
}

/// `templates/` beside the running executable.
fn exe_templates_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("templates"))
}

impl TemplateSet {
    /// Finds and loads a template set.
    ///
    /// - `spec` holding a path separator, or naming an existing folder: that folder.
    /// - otherwise `<templates_dir>/<spec>/` when `templates_dir` is given,
    ///   else `templates/<spec>/` beside the running executable;
    /// - when that folder does not exist and `spec` is `default`: the
    ///   embedded default set ([`embedded`]).
    ///
    /// A set that is not found is an error naming every place looked.
    pub fn load(spec: &str, templates_dir: Option<&Path>) -> Result<TemplateSet, TemplateError> {
        let as_path = Path::new(spec);
        let not_found = |looked: Vec<PathBuf>| TemplateError::NotFound {
            spec: spec.to_owned(),
            looked,
        };
        if spec.contains(std::path::is_separator) || spec.contains('/') || as_path.is_dir() {
            return if as_path.is_dir() {
                Self::from_dir(as_path)
            } else {
                Err(not_found(vec![as_path.to_path_buf()]))
            };
        }
        let mut looked = Vec::new();
        if !spec.is_empty() {
            let base = match templates_dir {
                Some(dir) => Some(dir.to_path_buf()),
                None => exe_templates_dir(),
            };
            if let Some(base) = base {
                let candidate = base.join(spec);
                if candidate.is_dir() {
                    return Self::from_dir(&candidate);
                }
                looked.push(candidate);
            }
        }
        embedded(spec).ok_or_else(|| not_found(looked))
    }

    /// Loads the set in `dir`: `template.toml` and `microsip.ini.j2` must
    /// exist, `Contacts.xml.j2` may.
    pub fn from_dir(dir: &Path) -> Result<TemplateSet, TemplateError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| TemplateError::Io { path, source })
        };
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = read(manifest_path.clone())?;
        let ini_path = dir.join(INI_TEMPLATE);
        let ini = TemplateFile {
            name: INI_TEMPLATE,
            display: ini_path.display().to_string(),
            source: read(ini_path)?,
        };
        let contacts_path = dir.join(CONTACTS_TEMPLATE);
        let contacts = if contacts_path.exists() {
            Some(TemplateFile {
                name: CONTACTS_TEMPLATE,
                display: contacts_path.display().to_string(),
                source: read(contacts_path)?,
            })
        } else {
            None
        };
        let folder_name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        Self::assemble(
            Origin::Dir(dir.to_path_buf()),
            &folder_name,
            &manifest_path.display().to_string(),
            &manifest,
            ini,
            contacts,
        )
    }

    fn assemble(
        origin: Origin,
        fallback_name: &str,
        manifest_file: &str,
        manifest_text: &str,
        ini: TemplateFile,
        contacts: Option<TemplateFile>,
    ) -> Result<TemplateSet, TemplateError> {
        let manifest = Manifest::parse(manifest_text, manifest_file, fallback_name)?;
        let compiled = crate::render::compile(&ini, contacts.as_ref())?;
        Ok(TemplateSet {
            name: manifest.name.clone(),
            manifest,
            origin,
            ini,
            contacts,
            compiled,
        })
    }

    /// Where the set comes from: its folder, or `embedded`.
    pub fn origin(&self) -> String {
        match &self.origin {
            Origin::Dir(dir) => dir.display().to_string(),
            Origin::Embedded => "embedded".to_owned(),
        }
    }

    /// The folder the set was loaded from (`None` when embedded).
    pub fn dir(&self) -> Option<&Path> {
        match &self.origin {
            Origin::Dir(dir) => Some(dir),
            Origin::Embedded => None,
        }
    }

    /// Whether the set renders a `Contacts.xml`.
    pub fn has_contacts(&self) -> bool {
        self.contacts.is_some()
    }

    /// The `microsip.ini` template.
    pub fn ini_template(&self) -> &TemplateFile {
        &self.ini
    }

    /// The `Contacts.xml` template, when the set has one.
    pub fn contacts_template(&self) -> Option<&TemplateFile> {
        self.contacts.as_ref()
    }

    /// The compiled templates, ready to render.
    pub(crate) fn compiled(&self) -> &minijinja::Environment<'static> {
        &self.compiled
    }

    /// A set built from text (the embedded default, and tests); `suffix`
    /// follows each file name in messages.
    pub(crate) fn from_text(
        name: &str,
        suffix: &str,
        manifest: &str,
        ini: &str,
        contacts: Option<&str>,
    ) -> Result<TemplateSet, TemplateError> {
        let file = |file: &str| format!("{name}/{file}{suffix}");
        Self::assemble(
            Origin::Embedded,
            name,
            &file(MANIFEST_FILE),
            manifest,
            TemplateFile {
                name: INI_TEMPLATE,
                display: file(INI_TEMPLATE),
                source: ini.to_owned(),
            },
            contacts.map(|source| TemplateFile {
                name: CONTACTS_TEMPLATE,
                display: file(CONTACTS_TEMPLATE),
                source: source.to_owned(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, TemplateError> {
        Manifest::parse(text, "t/template.toml", "t")
    }

    #[test]
    fn a_full_manifest_parses() {
        let m = parse(
            r#"
name = "x"
description = "d"
handlers = ["sip", "tel"]

[[variables]]
name = "server"
required = true
pattern = '[a-z.]+(:[0-9]+)?'
description = "the server"

[[variables]]
name = "port"
type = "integer"
default = 5060

[[variables]]
name = "account.label"
default = ""
pattern = "[A-Z].*"

[[variables]]
name = "account"
type = "table"
"#,
        )
        .map_err(|e| e.to_string())
        .unwrap();
        assert_eq!(m.name, "x");
        assert_eq!(m.handlers, ["sip", "tel"]);
        assert_eq!(m.variables.len(), 4);
        let server = m.variable("server").unwrap();
        assert!(server.required);
        assert_eq!(server.ty, VarType::String);
        assert!(server.check(&Json::from("pbx.example.com:5061")).is_ok());
        assert!(server.check(&Json::from("x pbx")).is_err(), "anchored");
        assert_eq!(m.variable("port").unwrap().default, Some(Json::from(5060)));
        assert_eq!(
            m.variable("account.label").unwrap().path(),
            ["account", "label"]
        );
    }

    #[test]
    fn bad_toml_gives_the_line() {
        let e = parse("name = \"x\"\n\n[[variables]]\nname = \"a\nrequired = true\n").unwrap_err();
        match &e {
            TemplateError::ManifestSyntax { file, line, .. } => {
                assert_eq!(file, "t/template.toml");
                assert_eq!(*line, 4);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().starts_with("t/template.toml:4: "), "{e}");
        let e = parse("name = \"x\"\n[[variables]]\nname = \"a\"\nrequird = true\n").unwrap_err();
        assert!(
            matches!(e, TemplateError::ManifestSyntax { line: 4, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("requird"), "{e}");
    }

    #[test]
    fn unknown_type_names_the_variable_and_line() {
        let e = parse("[[variables]]\nname = \"port\"\ntype = \"int\"\n").unwrap_err();
        assert!(
            matches!(&e, TemplateError::UnknownType { variable, ty, line: 3, .. } if variable == "port" && ty == "int"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "t/template.toml:3: variable \"port\": unknown type \"int\"; the types are string, integer, boolean, list, table"
        );
    }

    #[test]
    fn bad_regex_names_the_variable() {
        let e = parse("[[variables]]\nname = \"user\"\n\npattern = '[a-z'\n").unwrap_err();
        assert!(
            matches!(&e, TemplateError::BadPattern { variable, line: 4, .. } if variable == "user"),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with("t/template.toml:4: variable \"user\": bad pattern \"[a-z\": "),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        let e =
            parse("[[variables]]\nname = \"t\"\ntype = \"table\"\npattern = 'x'\n").unwrap_err();
        assert!(matches!(e, TemplateError::BadPattern { .. }), "{e:?}");
    }

    #[test]
    fn defaults_must_fit_their_own_type_and_pattern() {
        let e = parse("[[variables]]\nname = \"port\"\ntype = \"integer\"\ndefault = \"5060\"\n")
            .unwrap_err();
        assert!(
            matches!(&e, TemplateError::BadDefault { variable, line: 4, .. } if variable == "port"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("must be an integer, but is a string (\"5060\")"),
            "{e}"
        );
        let e = parse("[[variables]]\nname = \"t\"\ndefault = \"UDP\"\npattern = \"udp|tcp\"\n")
            .unwrap_err();
        assert!(
            matches!(&e, TemplateError::BadDefault { variable, .. } if variable == "t"),
            "{e:?}"
        );
        let e = parse("[[variables]]\nname = \"pw\"\nsecret = true\ndefault = \"hunter2\"\npattern = \"[0-9]+\"\n").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains(MASK), "{e}");
        // An empty default of an optional variable is "not set".
        assert!(
            parse("[[variables]]\nname = \"t\"\ndefault = \"\"\npattern = \"udp|tcp\"\n").is_ok()
        );
        let e = parse("[[variables]]\nname = \"codecs\"\ntype = \"list\"\ndefault = [\"PCMA\", \"x y\"]\npattern = \"[A-Za-z]+\"\n").unwrap_err();
        assert!(e.to_string().contains("item \"x y\""), "{e}");
    }

    #[test]
    fn other_manifest_mistakes() {
        for (text, needle) in [
            ("[[variables]]\nname = \"a-b\"\n", "not an identifier"),
            (
                "[[variables]]\nname = \"a\"\n[[variables]]\nname = \"a\"\n",
                "declared twice",
            ),
            ("handlers = [\"SIP\"]\n", "lower case"),
            ("handlers = [\"sip\", \"sip\"]\n", "twice"),
            (
                "[[variables]]\nname = \"a\"\n[[variables]]\nname = \"a.b\"\n",
                "must be of type table",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(matches!(e, TemplateError::Manifest { .. }), "{text}: {e:?}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn the_embedded_default_set_loads() {
        let set = embedded("default").expect("the embedded default set must parse");
        assert_eq!(set.name, "default");
        assert_eq!(set.origin(), "embedded");
        assert!(set.dir().is_none());
        assert!(!set.has_contacts());
        assert_eq!(
            set.ini_template().display,
            "default/microsip.ini.j2 (embedded)"
        );
        assert_eq!(set.manifest.handlers, ["sip", "sips", "tel", "callto"]);
        for name in ["server", "username", "password"] {
            assert!(set.manifest.variable(name).unwrap().required, "{name}");
        }
        assert!(set.manifest.variable("password").unwrap().secret);
        assert!(embedded("corporate").is_none());
        // The embedded copy is the shipped folder.
        let shipped = TemplateSet::from_dir(&shipped_dir("default")).unwrap();
        assert_eq!(shipped.ini_template().source, set.ini_template().source);
    }

    fn templates_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates")
    }

    fn shipped_dir(name: &str) -> PathBuf {
        templates_root().join(name)
    }

    #[test]
    fn lookup_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        // Not found: every place is named.
        let e = TemplateSet::load("corporate", Some(root)).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, TemplateError::NotFound { .. }));
        assert!(
            text.contains(&root.join("corporate").display().to_string()),
            "{text}"
        );
        assert!(text.contains("embedded"), "{text}");
        // "default" falls back to the embedded set.
        let set = TemplateSet::load("default", Some(root)).unwrap();
        assert_eq!(set.origin(), "embedded");
        // A folder in templates_dir wins over the embedded set.
        let dir = root.join("default");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(MANIFEST_FILE), "name = \"mine\"\n").unwrap();
        std::fs::write(dir.join(INI_TEMPLATE), "[Settings]\naccountId=1\n").unwrap();
        let set = TemplateSet::load("default", Some(root)).unwrap();
        assert_eq!(set.name, "mine");
        assert_eq!(set.origin(), dir.display().to_string());
        // A path is loaded as is; a missing path is named.
        let set = TemplateSet::load(&dir.display().to_string(), None).unwrap();
        assert_eq!(set.name, "mine");
        let missing = root.join("nope");
        let e = TemplateSet::load(&missing.display().to_string(), None).unwrap_err();
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
        // A folder without the ini template: the missing file is named.
        let bare = root.join("bare");
        std::fs::create_dir(&bare).unwrap();
        std::fs::write(bare.join(MANIFEST_FILE), "").unwrap();
        let e = TemplateSet::load("bare", Some(root)).unwrap_err();
        assert!(e.to_string().contains(INI_TEMPLATE), "{e}");
        // The set's name falls back to the folder's.
        std::fs::write(bare.join(INI_TEMPLATE), "[Settings]\n").unwrap();
        assert_eq!(TemplateSet::load("bare", Some(root)).unwrap().name, "bare");
    }

    #[test]
    fn template_syntax_errors_are_found_at_load() {
        let e =
            TemplateSet::from_text("t", "", "", "[Settings]\naccountId={{ x\n", None).unwrap_err();
        assert!(
            matches!(&e, TemplateError::TemplateSyntax { line: Some(2), .. }),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("t/microsip.ini.j2:2: "), "{e}");
    }

    #[test]
    fn both_shipped_sets_load() {
        let corporate = TemplateSet::load("corporate", Some(&templates_root())).unwrap();
        assert_eq!(corporate.name, "corporate");
        assert!(corporate.has_contacts());
        assert_eq!(
            corporate.manifest.variable("directory").unwrap().ty,
            VarType::List
        );
    }
}
