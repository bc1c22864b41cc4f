//! Policies: settings IT enforces at apply time and audits across a fleet.
//!
//! A policy file is TOML. Each table is a section scope, `[Settings]`,
//! `[Account]` (every `[AccountN]`) or one account (`[Account2]`), and each
//! key in it holds one rule table:
//!
//! ```toml
//! [Account]
//! transport = { enforce = "tls", reason = "SIP signalling must be encrypted" }
//! [Settings]
//! autoAnswer = { allow = ["", "button"], reason = "no silent auto answer", severity = "warn" }
//! volumeRing = { allow = { min = 20, max = 100 }, reason = "missed calls" }
//! cmdCallEnd = { allow = { regex = '^$|^"C:\\Tools\\log\.exe"$' }, reason = "approved hooks only" }
//! enableLog = { default = "0", reason = "logs hold numbers" }
//! ```
//!
//! Kinds: `enforce` (always written; wins over template and user),
//! `default` (written when the key is absent, or still holds what apply last
//! wrote: MicroSIP saves every key on exit, so "absent" alone would mean
//! "never"), `allow` (a list of values, an integer range, or a regex that
//! must match the whole value), `require` (present and non-empty), `forbid`
//! (absent or empty). Each rule has a `reason` and a `severity`, `error`
//! (the default) or `warn`. With several files, a later file's rule for the
//! same scope and key replaces the earlier one; a rule for one account
//! overrides the `[Account]` rule for that account.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Serialize;
use softphone::config::account::account_number;
use softphone::config::schema::{self, KeySpec};
use softphone::config::value::ValueType;
use softphone::config::{Account, Diagnostic, IniDocument, Settings};
use thiserror::Error;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::state::{key_id, State};

/// Which sections a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `[Settings]`.
    Settings,
    /// Every `[AccountN]`, N >= 1.
    EveryAccount,
    /// One `[AccountN]`.
    Account(u32),
}

impl Scope {
    fn covers(&self, section: &str) -> bool {
        match self {
            Scope::Settings => section.eq_ignore_ascii_case("Settings"),
            Scope::EveryAccount => account_number(section).is_some_and(|n| n >= 1),
            Scope::Account(n) => account_number(section) == Some(*n),
        }
    }

    fn specs(&self) -> &'static [KeySpec] {
        match self {
            Scope::Settings => softphone::config::settings::SETTINGS_KEYS,
            _ => softphone::config::account::ACCOUNT_KEYS,
        }
    }
}

/// What a rule allows.
#[derive(Debug, Clone)]
pub enum Allow {
    /// One of these values.
    OneOf(Vec<String>),
    /// A whole number in `min..=max`.
    Range {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// Matches this regex (as written), anchored at both ends.
    Regex(Regex, String),
}

impl Allow {
    fn permits(&self, value: &str) -> bool {
        match self {
            Allow::OneOf(values) => values.iter().any(|v| v == value),
            Allow::Range { min, max } => softphone::config::value::parse_strict_int(value)
                .is_some_and(|n| (*min..=*max).contains(&n)),
            Allow::Regex(re, _) => re.is_match(value),
        }
    }

    fn describe(&self) -> String {
        match self {
            Allow::OneOf(values) => {
                let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
                format!("one of {}", quoted.join(", "))
            }
            Allow::Range { min, max } => format!("a number from {min} to {max}"),
            Allow::Regex(_, source) => format!("a value matching the whole of /{source}/"),
        }
    }
}

/// How bad breaking a rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSeverity {
    /// Apply refuses, check exits 3.
    Error,
    /// Reported only.
    Warn,
}

/// One rule for one key in one scope.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Where it applies.
    pub scope: Scope,
    /// The key, as MicroSIP spells it.
    pub key: &'static str,
    /// The key's type and default.
    pub spec: &'static KeySpec,
    /// Value always written.
    pub enforce: Option<String>,
    /// Value written when absent (or still ours).
    pub default: Option<String>,
    /// What values are acceptable.
    pub allow: Option<Allow>,
    /// Must be present and non-empty.
    pub require: bool,
    /// Must be absent or empty.
    pub forbid: bool,
    /// Why, in one line.
    pub reason: String,
    /// Error or warning.
    pub severity: RuleSeverity,
    /// `file:line` of the rule.
    pub origin: String,
}

/// A key that breaks a rule.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// The section, as written in the file.
    pub section: String,
    /// The key.
    pub key: String,
    /// Its line in the file, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The value as MicroSIP reads it (`None`: absent).
    pub current: Option<String>,
    /// What the rule wants: the value itself for `enforce`, else a
    /// description ("one of ...", "a non-empty value").
    pub expected: String,
    /// `enforce`, `allow`, `require` or `forbid`.
    pub rule: &'static str,
    /// Error or warning.
    pub severity: RuleSeverity,
    /// The rule's reason.
    pub reason: String,
    /// Where the rule is written.
    pub policy: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = match &self.current {
            Some(v) => format!("\"{v}\""),
            None => "absent".to_owned(),
        };
        let expected = if self.rule == "enforce" {
            format!("\"{}\"", self.expected)
        } else {
            self.expected.clone()
        };
        write!(
            f,
            "[{}] {}: is {current}, expected {expected} ({} rule, {}): {} [{}]",
            self.section,
            self.key,
            self.rule,
            match self.severity {
                RuleSeverity::Error => "error",
                RuleSeverity::Warn => "warn",
            },
            self.reason,
            self.policy
        )
    }
}

/// A policy file that cannot be used.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read the policy {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file has problems, each located.
    #[error("the policy files have errors")]
    Invalid(Vec<Diagnostic>),
}

impl PolicyError {
    /// The located problems.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid(d) => d,
            PolicyError::Read { .. } => &[],
        }
    }
}

/// The rules of one or more policy files, later files winning.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// Loads and validates policy files, in order. Every problem of every
    /// file is reported at once.
    pub fn load(paths: &[PathBuf]) -> Result<Self, PolicyError> {
        let mut by_key: BTreeMap<(Scope, &'static str), Rule> = BTreeMap::new();
        let mut problems = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
                path: path.clone(),
                source,
            })?;
            match parse(&text, path) {
                Ok(rules) => {
                    for rule in rules {
                        by_key.insert((rule.scope.clone(), rule.key), rule);
                    }
                }
                Err(mut d) => problems.append(&mut d),
            }
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        Ok(Self {
            rules: by_key.into_values().collect(),
        })
    }

    /// The rules in force.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule for `key` in `section`: one for that account beats the
    /// `[Account]` rule.
    fn rules_for<'a>(&'a self, section: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |rule| {
            rule.scope.covers(section)
                && !(rule.scope == Scope::EveryAccount
                    && self.rules.iter().any(|other| {
                        matches!(other.scope, Scope::Account(_))
                            && other.scope.covers(section)
                            && other.key == rule.key
                    }))
        })
    }

    /// The sections of `doc` that rules could apply to.
    fn sections(doc: &IniDocument) -> Vec<String> {
        let mut sections: Vec<String> = doc
            .section_names()
            .filter(|name| {
                name.eq_ignore_ascii_case("Settings")
                    || account_number(name).is_some_and(|n| n >= 1)
            })
            .map(str::to_owned)
            .collect();
        if !sections.iter().any(|s| s.eq_ignore_ascii_case("Settings")) {
            sections.insert(0, "Settings".to_owned());
        }
        sections
    }

    /// Every rule the document breaks.
    pub fn check(&self, doc: &IniDocument) -> Vec<Violation> {
        let mut out = Vec::new();
        for section in Self::sections(doc) {
            for rule in self.rules_for(&section) {
                if let Some(v) = rule.check(doc, &section) {
                    out.push(v);
                }
            }
        }
        out.sort_by_key(|v| (v.line.unwrap_or(usize::MAX), v.key.clone()));
        out
    }

    /// Writes the `enforce` rules into `doc` (what `check --fix` does).
    /// Returns how many keys changed.
    pub fn enforce(&self, doc: &mut IniDocument) -> usize {
        let mut changed = 0;
        for section in Self::sections(doc) {
            let rules: Vec<&Rule> = self.rules_for(&section).collect();
            for rule in rules {
                if let Some(value) = &rule.enforce {
                    changed += usize::from(write(doc, &section, rule, value));
                }
            }
        }
        changed
    }

    /// What apply does after the merge: enforce rules always; default
    /// rules when the key is absent or still holds what apply wrote last
    /// (the user has not changed it), and the template does not set it
    /// itself (`rendered`). Records the defaults it wrote.
    pub fn apply(&self, doc: &mut IniDocument, state: &mut State, rendered: &IniDocument) -> usize {
        let mut changed = self.enforce(doc);
        for section in Self::sections(doc) {
            let rules: Vec<&Rule> = self.rules_for(&section).collect();
            for rule in rules {
                let Some(value) = &rule.default else { continue };
                if rendered.get(&section, rule.key).is_some() {
                    continue; // the template's own value wins over a default
                }
                let id = key_id(&section, rule.key);
                let untouched = match doc.get(&section, rule.key) {
                    None => true,
                    Some(current) => state.written.get(&id).is_some_and(|ours| ours == current),
                };
                if untouched {
                    changed += usize::from(write(doc, &section, rule, value));
                    state.written.insert(id, value.clone());
                }
            }
        }
        changed
    }
}

/// Writes `value` for the rule's key, quoted where MicroSIP quotes it.
fn write(doc: &mut IniDocument, section: &str, rule: &Rule, value: &str) -> bool {
    if doc.get(section, rule.key) == Some(value) && doc.get_raw(section, rule.key).is_some() {
        return false;
    }
    let raw = if rule.spec.ty == ValueType::Quoted {
        format!("\"{value}\"")
    } else {
        value.to_owned()
    };
    // Policy values were validated at load: no line breaks, so set succeeds.
    matches!(doc.set(section, rule.key, &raw), Ok(e) if e != softphone::config::Edit::Unchanged)
}

impl Rule {
    fn check(&self, doc: &IniDocument, section: &str) -> Option<Violation> {
        let present = doc.get(section, self.key);
        // An absent key is MicroSIP's default, which may well comply.
        let effective = present.unwrap_or(self.spec.default);
        let (rule, expected) = if let Some(want) = &self.enforce {
            (effective != want).then(|| ("enforce", want.clone()))?
        } else if self.require && present.is_none_or(str::is_empty) {
            ("require", "a non-empty value".to_owned())
        } else if self.forbid && present.is_some_and(|v| !v.is_empty()) {
            ("forbid", "absent or empty".to_owned())
        } else if let Some(allow) = self.allow.as_ref().filter(|a| !a.permits(effective)) {
            ("allow", allow.describe())
        } else {
            return None;
        };
        Some(Violation {
            section: section.to_owned(),
            key: self.key.to_owned(),
            line: doc.line_of(section, self.key),
            // A password is never printed, whatever a rule says about it.
            current: present.map(|v| {
                if self.key == "password" && !v.is_empty() {
                    "********".to_owned()
                } else {
                    v.to_owned()
                }
            }),
            expected,
            rule,
            severity: self.severity,
            reason: self.reason.clone(),
            policy: self.origin.clone(),
        })
    }
}

/// Byte offset -> 1-based line.
fn line_at(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Parses one policy file; every problem is reported, not just the first.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Rule>, Vec<Diagnostic>> {
    let file = path.display().to_string();
    let table = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_at(text, s.start));
        vec![Diagnostic::error(line, format!("not valid TOML: {}", e.message())).in_file(path)]
    })?;
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in table.get_ref() {
        let line = line_at(text, name.span().start);
        let name = name.get_ref().as_ref();
        let err = |message: String| Diagnostic::error(line, message).in_file(path);
        if name == "name" || name == "description" {
            if !matches!(value.get_ref(), DeValue::String(_)) {
                problems.push(err(format!("{name} must be a string")));
            }
            continue;
        }
        let scope = match name {
            "Settings" => Scope::Settings,
            "Account" => Scope::EveryAccount,
            other => match account_number(other) {
                Some(n) if other.starts_with("Account") => Scope::Account(n),
                _ => {
                    let hint = schema::suggest(other, ["Settings", "Account"])
                        .map(|s| format!("; did you mean [{s}]?"))
                        .unwrap_or_default();
                    problems.push(err(format!(
                        "unknown section [{other}]: policies have [Settings], [Account] (every account) and [AccountN]{hint}"
                    )));
                    continue;
                }
            },
        };
        let DeValue::Table(keys) = value.get_ref() else {
            problems.push(err(format!("[{name}] must be a table of key = {{ rule }}")));
            continue;
        };
        for (key, rule) in keys {
            let line = line_at(text, key.span().start);
            match parse_rule(scope.clone(), name, key.get_ref(), rule, line, &file) {
                Ok(rule) => rules.push(rule),
                Err(messages) => problems.extend(messages.into_iter().map(|m| {
                    Diagnostic::error(line, m)
                        .with_key(Some(name), key.get_ref())
                        .in_file(path)
                })),
            }
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        // The TOML map is not in file order; the report is.
        problems.sort_by_key(|d| d.line);
        Err(problems)
    }
}

fn parse_rule(
    scope: Scope,
    section: &str,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    line: usize,
    file: &str,
) -> Result<Rule, Vec<String>> {
    let specs = scope.specs();
    let Some(spec) = schema::find(specs, key) else {
        let hint = schema::suggest(key, specs.iter().map(|s| s.name))
            .map(|s| format!("; did you mean {s}?"))
            .unwrap_or_default();
        return Err(vec![format!(
            "[{section}] has no key {key:?} in MicroSIP{hint}"
        )]);
    };
    let DeValue::Table(fields) = value.get_ref() else {
        return Err(vec![format!(
            "a rule is a table, e.g. {key} = {{ enforce = \"...\", reason = \"...\" }}"
        )]);
    };
    let mut problems = Vec::new();
    let mut rule = Rule {
        scope,
        key: spec.name,
        spec,
        enforce: None,
        default: None,
        allow: None,
        require: false,
        forbid: false,
        reason: String::new(),
        severity: RuleSeverity::Error,
        origin: format!("{file}:{line}"),
    };
    for (field, v) in fields {
        let v = v.get_ref();
        match field.get_ref().as_ref() {
            "enforce" => {
                rule.enforce = scalar(v)
                    .map_err(|e| problems.push(format!("enforce: {e}")))
                    .ok()
            }
            "default" => {
                rule.default = scalar(v)
                    .map_err(|e| problems.push(format!("default: {e}")))
                    .ok()
            }
            "require" => {
                rule.require = flag(v)
                    .map_err(|e| problems.push(format!("require: {e}")))
                    .unwrap_or(false)
            }
            "forbid" => {
                rule.forbid = flag(v)
                    .map_err(|e| problems.push(format!("forbid: {e}")))
                    .unwrap_or(false)
            }
            "reason" | "description" => match v {
                DeValue::String(s) => rule.reason = s.to_string(),
                _ => problems.push("reason must be a string".to_owned()),
            },
            "severity" => match v {
                DeValue::String(s) if s == "error" => rule.severity = RuleSeverity::Error,
                DeValue::String(s) if s == "warn" || s == "warning" => {
                    rule.severity = RuleSeverity::Warn
                }
                _ => problems.push("severity must be \"error\" or \"warn\"".to_owned()),
            },
            "allow" => match parse_allow(v) {
                Ok(a) => rule.allow = Some(a),
                Err(e) => problems.push(format!("allow: {e}")),
            },
            other => {
                let hint = schema::suggest(
                    other,
                    [
                        "enforce", "default", "allow", "require", "forbid", "reason", "severity",
                    ],
                )
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
                problems.push(format!("unknown field {other:?}{hint}"));
            }
        }
    }
    let mut more = contradictions(&rule);
    if !problems.is_empty() {
        // A field already failed; "no rule kind" would only repeat it.
        more.retain(|m| !m.starts_with("the rule has none"));
    }
    problems.extend(more);
    if problems.is_empty() {
        Ok(rule)
    } else {
        Err(problems)
    }
}

/// Rules that cannot all hold, and values MicroSIP would not accept.
fn contradictions(rule: &Rule) -> Vec<String> {
    let mut out = Vec::new();
    let kinds = [
        rule.enforce.is_some(),
        rule.default.is_some(),
        rule.allow.is_some(),
        rule.require,
        rule.forbid,
    ];
    if !kinds.iter().any(|&k| k) {
        out.push("the rule has none of enforce, default, allow, require, forbid".to_owned());
    }
    if rule.enforce.is_some() && rule.default.is_some() {
        out.push("enforce and default contradict each other: keep one".to_owned());
    }
    if rule.require && rule.forbid {
        out.push("require and forbid contradict each other".to_owned());
    }
    for (name, value) in [("enforce", &rule.enforce), ("default", &rule.default)] {
        let Some(value) = value else { continue };
        if value.contains(['\r', '\n', '\0']) {
            out.push(format!("{name}: a value cannot hold a line break"));
        }
        if let Some(problem) = rule
            .spec
            .ty
            .check(value)
            .filter(|p| p.severity == softphone::config::Severity::Error)
        {
            out.push(format!("{name}: {}", problem.message));
        }
        if let Some(allow) = rule.allow.as_ref().filter(|a| !a.permits(value)) {
            out.push(format!(
                "{name} {value:?} is not allowed by the same rule's allow ({})",
                allow.describe()
            ));
        }
        if rule.forbid && !value.is_empty() {
            out.push(format!("{name} {value:?} contradicts forbid"));
        }
        if rule.require && value.is_empty() {
            out.push(format!("{name} is empty but the rule requires a value"));
        }
    }
    out
}

fn scalar(v: &DeValue<'_>) -> Result<String, String> {
    match v {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Boolean(b) => Ok(if *b { "1" } else { "0" }.to_owned()),
        DeValue::Integer(i) => integer(i).map(|n| n.to_string()),
        _ => Err("must be a string, a whole number or a boolean".to_owned()),
    }
}

fn integer(i: &toml::de::DeInteger<'_>) -> Result<i64, String> {
    let digits = i.as_str().replace('_', "");
    i64::from_str_radix(&digits, i.radix())
        .map_err(|_| format!("{:?} is not a whole number", i.as_str()))
}

fn flag(v: &DeValue<'_>) -> Result<bool, String> {
    match v {
        DeValue::Boolean(b) => Ok(*b),
        _ => Err("must be true or false".to_owned()),
    }
}

fn parse_allow(v: &DeValue<'_>) -> Result<Allow, String> {
    match v {
        DeValue::Array(items) => items
            .iter()
            .map(|item| scalar(item.get_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Allow::OneOf),
        DeValue::Table(t) => {
            let get = |name: &str| {
                t.iter()
                    .find(|(k, _)| k.get_ref() == name)
                    .map(|(_, v)| v.get_ref())
            };
            if let Some(re) = get("regex") {
                let DeValue::String(re) = re else {
                    return Err("regex must be a string".to_owned());
                };
                return Regex::new(&format!("^(?:{re})$"))
                    .map(|compiled| Allow::Regex(compiled, re.to_string()))
                    .map_err(|e| {
                        // regex's message spans lines; its last line says what is wrong.
                        let text = e.to_string();
                        let why = text
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim_start_matches("error: ")
                            .to_owned();
                        format!("bad regex {re:?}: {why}")
                    });
            }
            let bound = |name: &str, fallback: i64| match get(name) {
                None => Ok(fallback),
                Some(DeValue::Integer(i)) => integer(i),
                Some(_) => Err(format!("{name} must be a whole number")),
            };
            if get("min").is_none() && get("max").is_none() {
                return Err("a table needs min and/or max, or regex".to_owned());
            }
            let (min, max) = (bound("min", i64::MIN)?, bound("max", i64::MAX)?);
            if min > max {
                return Err(format!("min {min} is above max {max}"));
            }
            Ok(Allow::Range { min, max })
        }
        _ => Err("must be a list of values, { min, max } or { regex }".to_owned()),
    }
}

/// The spec of a key in `[Settings]` or `[AccountN]`, for callers outside.
pub fn key_spec(section: &str, key: &str) -> Option<&'static KeySpec> {
    if section.eq_ignore_ascii_case("Settings") {
        Settings::spec(key)
    } else {
        Account::spec(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use softphone::config::Encoding;

    fn policy(text: &str) -> Policy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).unwrap();
        Policy::load(&[path]).unwrap()
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text, Path::new("p.toml"))
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn doc(text: &str) -> IniDocument {
        IniDocument::from_text(Encoding::Utf16LeBom, text)
    }

    #[test]
    fn rules_are_validated_with_lines_and_suggestions() {
        let got = errors(
            "[Account]\ntransprot = { enforce = \"tls\" }\nSRTP = { enforce = \"mandatory\", default = \"\" }\n\
             [Settings]\nenableLog = { allow = { regex = \"(\" } }\nautoAnswer = { enforce = \"all\", allow = [\"\", \"button\"] }\n\
             EC = { forbid = true, require = true }\ntransport = { enforce = \"x\" }\n[Setings]\n",
        );
        let expected = [
            "p.toml:2: transprot: [Account] has no key \"transprot\" in MicroSIP; did you mean transport?",
            "p.toml:3: SRTP: enforce and default contradict each other: keep one",
            "p.toml:5: enableLog: allow: bad regex \"(\": ",
            "p.toml:6: autoAnswer: enforce \"all\" is not allowed by the same rule's allow (one of \"\", \"button\")",
            "p.toml:7: EC: require and forbid contradict each other",
            "p.toml:8: transport: [Settings] has no key \"transport\" in MicroSIP",
            "p.toml:9: unknown section [Setings]: policies have [Settings], [Account] (every account) and [AccountN]; did you mean [Settings]?",
        ];
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for (g, e) in got.iter().zip(expected) {
            assert!(g.starts_with(e), "{g}\n  should start with\n{e}");
        }
        assert!(errors("[Account]\ntransport = { enforce = \"udpp\" }\n")[0]
            .contains("\"udpp\" is not one of"));
        assert!(errors("x = [").len() == 1);
    }

    #[test]
    fn check_reports_each_kind_of_violation() {
        let p = policy(
            "[Account]\ntransport = { enforce = \"tls\", reason = \"encrypt\" }\nlabel = { require = true }\n\
             [Account2]\ntransport = { enforce = \"tcp\" }\n\
             [Settings]\nautoAnswer = { allow = [\"\", \"button\"], severity = \"warn\" }\nvolumeRing = { allow = { min = 20, max = 100 } }\n\
             cmdCallEnd = { forbid = true }\nEC = { enforce = \"1\" }\n",
        );
        let d = doc("[Settings]\r\nautoAnswer=all\r\nvolumeRing=5\r\ncmdCallEnd=\"x.exe\"\r\n[Account1]\r\ndomain=d\r\ntransport=udp\r\nlabel=\r\n[Account2]\r\ndomain=d\r\ntransport=tcp\r\nlabel=B\r\n");
        let v: Vec<String> = p
            .check(&d)
            .iter()
            .map(|v| format!("{} {} {}", v.section, v.key, v.rule))
            .collect();
        assert_eq!(
            v,
            vec![
                "Settings autoAnswer allow",
                "Settings volumeRing allow",
                "Settings cmdCallEnd forbid",
                "Account1 transport enforce",
                "Account1 label require",
            ],
            "in line order; EC absent = MicroSIP's default 1, compliant; Account2's own rule wins"
        );
        let first = &p.check(&d)[3];
        assert_eq!(first.line, Some(7));
        assert_eq!(first.current.as_deref(), Some("udp"));
        assert_eq!(first.expected, "tls");
        assert_eq!(first.reason, "encrypt");
    }

    #[test]
    fn enforce_beats_everything_and_default_respects_the_user() {
        let p = policy("[Account]\ntransport = { enforce = \"tls\" }\n[Settings]\nenableLog = { default = \"0\" }\naudioInputDevice = { enforce = \"Headset\" }\n");
        let mut state = State::new();
        let none = IniDocument::new();
        let mut d = doc("[Settings]\r\n[Account1]\r\ndomain=d\r\ntransport=udp\r\n");
        p.apply(&mut d, &mut state, &none);
        assert_eq!(d.get("Account1", "transport"), Some("tls"));
        assert_eq!(
            d.get("Settings", "enableLog"),
            Some("0"),
            "absent: the default is written"
        );
        assert_eq!(
            d.get_raw("Settings", "audioInputDevice"),
            Some("\"Headset\""),
            "device names are quoted"
        );
        // The user turns logging on; a later apply leaves it.
        d.set("Settings", "enableLog", "1").unwrap();
        assert_eq!(p.apply(&mut d, &mut state, &none), 0);
        assert_eq!(d.get("Settings", "enableLog"), Some("1"));
        assert!(p.check(&d).is_empty());
        // A value still ours may be updated by a new default.
        let p2 = policy("[Settings]\nenableLog = { default = \"0\" }\nVAD = { default = \"1\" }\n");
        let mut d2 = doc("[Settings]\r\nVAD=0\r\n");
        state.written.insert("Settings/VAD".into(), "0".into());
        p2.apply(&mut d2, &mut state, &none);
        assert_eq!(d2.get("Settings", "VAD"), Some("1"));
        // A value the template renders itself is not overridden by a default.
        let mut d3 = doc("[Settings]\r\nVAD=0\r\n");
        p2.apply(&mut d3, &mut state, &doc("[Settings]\r\nVAD=0\r\n"));
        assert_eq!(d3.get("Settings", "VAD"), Some("0"));
    }

    #[test]
    fn passwords_are_never_shown_in_violations() {
        let p = policy("[Account]\npassword = { allow = [\"a\"] }\n");
        let v = p.check(&doc("[Account1]\r\ndomain=d\r\npassword=TopSecret99\r\n"));
        assert_eq!(v[0].current.as_deref(), Some("********"));
        assert!(!v[0].to_string().contains("TopSecret99"));
    }

    #[test]
    fn later_files_win() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        std::fs::write(&a, "[Account]\ntransport = { enforce = \"tls\" }\n").unwrap();
        std::fs::write(&b, "[Account]\ntransport = { enforce = \"tcp\" }\n").unwrap();
        let p = Policy::load(&[a, b]).unwrap();
        assert_eq!(p.rules().len(), 1);
        assert_eq!(p.rules()[0].enforce.as_deref(), Some("tcp"));
    }
}
