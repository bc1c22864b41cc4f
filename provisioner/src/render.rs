//! Rendering a template set with its variables, and checking the result
//! with [`softphone::config`] before anything is written.
//!
//! Templates are [minijinja](https://docs.rs/minijinja) (Jinja2) with:
//!
//! - strict undefined checks: printing, testing or iterating a variable that
//!   no source set is an error naming the variable, the template file and
//!   its line (use `{{ x | default('') }}` or `{% if x is defined %}` for
//!   optional values);
//! - `trim_blocks` and `lstrip_blocks`, so a line holding only a
//!   `{% ... %}` tag leaves no blank line, and the trailing newline kept;
//! - escaping by destination:
//!   - `microsip.ini.j2`: a value printed with `{{ }}` that holds CR, LF or
//!     NUL is an error (it would split or cut the ini line). Lengths are
//!     left to the validator ([`check`]);
//!   - `Contacts.xml.j2`: a printed value is escaped as XML attribute text
//!     (`&` `<` `>` `"` `'` become `&amp;` `&lt;` `&gt;` `&quot;` `&apos;`;
//!     tab, LF and CR become `&#9;` `&#10;` `&#13;`, which survive in an
//!     attribute), and any other control character is an error. `{{ x | safe }}`
//!     prints `x` as it is (XML only; the ini template has no opt-out);
//!   - in both, `true`/`false` print as `1`/`0` (MicroSIP's booleans),
//!     `none` prints nothing, and printing a list or table is an error.
//!
//! The rendered text gets CRLF line ends, as MicroSIP writes its files.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};
use softphone::config::encoding::Encoding;
use softphone::config::{
    account, settings, validate_document, Account, ContactList, Diagnostic, IniDocument, Settings,
};
use softphone::config::{CONTACTS_FILE_NAME, INI_FILE_NAME};

use crate::template::{TemplateError, TemplateFile, TemplateSet, CONTACTS_TEMPLATE};
use crate::vars::Vars;

/// The auto-escape mode of `microsip.ini.j2`.
const INI_MODE: &str = "ini";
/// The auto-escape mode of `Contacts.xml.j2`.
const XML_MODE: &str = "xml";

/// The files a template set renders to, as text (CRLF line ends). Nothing is
/// written: the caller encodes and writes them through `softphone::config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The `microsip.ini` text (to be written as UTF-16 LE with BOM).
    pub ini: String,
    /// The `Contacts.xml` text (UTF-8), when the set has a contacts template.
    pub contacts: Option<String>,
}

/// Why a template did not render. Displayed as `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A variable (or a key of one) that no source set.
    #[error("{}: undefined variable {name:?}", Location(.file, *.line))]
    Undefined {
        /// The template file (path, or `default/microsip.ini.j2 (embedded)`).
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// The undefined expression: `server`, `env.USERNAME`, `entry.number`.
        name: String,
    },
    /// A value that cannot be printed into its file (a line break in the ini,
    /// a control character in XML, a list or table).
    #[error("{}: {{{{ {expression} }}}}: {message}", Location(.file, *.line))]
    BadValue {
        /// The template file.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// The expression printed, as written in the template.
        expression: String,
        /// What is wrong (the value itself is never shown).
        message: String,
    },
    /// Any other template error (syntax, a failing filter, ...).
    #[error("{}: {message}", Location(.file, *.line))]
    Template {
        /// The template file.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

impl RenderError {
    /// The template file the error is in.
    pub fn file(&self) -> &str {
        match self {
            Self::Undefined { file, .. }
            | Self::BadValue { file, .. }
            | Self::Template { file, .. } => file,
        }
    }

    /// The 1-based line of the error, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Undefined { line, .. }
            | Self::BadValue { line, .. }
            | Self::Template { line, .. } => *line,
        }
    }
}

/// `file:line`, or `file` alone.
struct Location<'a>(&'a str, Option<usize>);

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(line) => write!(f, "{}:{line}", self.0),
            None => f.write_str(self.0),
        }
    }
}

/// The marker our formatter attaches to the errors it raises, so they are
/// told apart from the engine's own.
#[derive(Debug)]
struct BadValueMarker(String);

impl fmt::Display for BadValueMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadValueMarker {}

fn bad_value(message: impl Into<String>) -> Error {
    let message = message.into();
    Error::new(ErrorKind::InvalidOperation, message.clone()).with_source(BadValueMarker(message))
}

/// The environment every template is compiled and rendered in.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_debug(true);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.set_auto_escape_callback(|name| {
        AutoEscape::Custom(
            if name == CONTACTS_TEMPLATE {
                XML_MODE
            } else {
                INI_MODE
            }
            .into(),
        )
    });
    env.set_formatter(format_value);
    env
}

/// Prints a value into the ini or the XML (see the module documentation).
fn format_value(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    let xml = matches!(state.auto_escape(), AutoEscape::Custom(mode) if mode == XML_MODE);
    if xml && value.is_safe() {
        return write!(out, "{value}").map_err(Error::from);
    }
    let text = match value.kind() {
        ValueKind::Undefined | ValueKind::None => return Ok(()),
        ValueKind::Bool => if value.is_true() { "1" } else { "0" }.to_owned(),
        ValueKind::Number | ValueKind::String => value.to_string(),
        ValueKind::Seq | ValueKind::Iterable => {
            return Err(bad_value(
                "the value is a list; print one item, or join them (| join(\" \"))",
            ))
        }
        ValueKind::Map => return Err(bad_value("the value is a table; print one of its keys")),
        other => {
            return Err(bad_value(format!(
                "a value of kind {other} cannot be printed"
            )))
        }
    };
    let written = if xml {
        escape_xml(&text)?
    } else {
        check_ini(&text)?
    };
    out.write_str(&written).map_err(Error::from)
}

fn check_ini(text: &str) -> Result<String, Error> {
    let found = text.chars().find_map(|c| match c {
        '\n' => Some("a line feed (LF)"),
        '\r' => Some("a carriage return (CR)"),
        '\0' => Some("a NUL character"),
        _ => None,
    });
    match found {
        Some(what) => Err(bad_value(format!(
            "the value contains {what}; an ini value must fit on its line, or microsip.ini would be corrupt"
        ))),
        None => Ok(text.to_owned()),
    }
}

fn escape_xml(text: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                return Err(bad_value(format!(
                    "the value contains the control character U+{:04X}, which XML cannot hold",
                    u32::from(c)
                )))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The text between the first pair of backticks of a minijinja detail
/// (`` `server` is undefined ``).
fn backticked(detail: &str) -> Option<&str> {
    let start = detail.find('`')? + 1;
    let len = detail[start..].find('`')?;
    Some(&detail[start..start + len])
}

/// Turns a minijinja error into a [`RenderError`] naming `file`.
fn map_error(err: &Error, file: &TemplateFile) -> RenderError {
    let line = err.line();
    let expression = err
        .range()
        .and_then(|r| err.template_source().and_then(|s| s.get(r)))
        .map(|s| s.trim().to_owned());
    let file_name = file.display.clone();
    let marker = std::error::Error::source(err).and_then(|s| s.downcast_ref::<BadValueMarker>());
    if let Some(BadValueMarker(message)) = marker {
        return RenderError::BadValue {
            file: file_name,
            line,
            expression: expression.unwrap_or_else(|| "?".to_owned()),
            message: message.clone(),
        };
    }
    if err.kind() == ErrorKind::UndefinedError {
        let name = err
            .detail()
            .and_then(backticked)
            .map(str::to_owned)
            .or(expression)
            .unwrap_or_else(|| "?".to_owned());
        return RenderError::Undefined {
            file: file_name,
            line,
            name,
        };
    }
    let message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    RenderError::Template {
        file: file_name,
        line,
        message,
    }
}

/// Compiles a set's templates, once, when the set is loaded: a syntax
/// error is found before anything renders.
pub(crate) fn compile(
    ini: &TemplateFile,
    contacts: Option<&TemplateFile>,
) -> Result<Environment<'static>, TemplateError> {
    let mut env = environment();
    for file in std::iter::once(ini).chain(contacts) {
        env.add_template_owned(file.name, file.source.clone())
            .map_err(|err| TemplateError::TemplateSyntax {
                file: file.display.clone(),
                line: err.line(),
                message: err.detail().map_or_else(
                    || err.kind().to_string(),
                    |d| format!("{}: {d}", err.kind()),
                ),
            })?;
    }
    Ok(env)
}

fn render_one(
    env: &Environment<'static>,
    file: &TemplateFile,
    ctx: &Value,
) -> Result<String, RenderError> {
    let template = env
        .get_template(file.name)
        .map_err(|e| map_error(&e, file))?;
    let text = template.render(ctx).map_err(|e| map_error(&e, file))?;
    Ok(crlf(&text))
}

/// CRLF line ends, and a final one.
fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16 + 2);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    if !out.is_empty() && !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

/// Renders a set's templates with the variables. Writes nothing; see
/// [`check`] for what must hold before anything is written.
///
/// Errors never show a printed value, but a failing filter's message comes
/// from the template engine and may: pass messages through [`Vars::mask`]
/// before showing them.
pub fn render(set: &TemplateSet, vars: &Vars) -> Result<Rendered, RenderError> {
    let env = set.compiled();
    let ctx = vars.template_context();
    let ini = render_one(env, set.ini_template(), &ctx)?;
    let contacts = match set.contacts_template() {
        Some(file) => Some(render_one(env, file, &ctx)?),
        None => None,
    };
    Ok(Rendered { ini, contacts })
}

/// How diagnostics name a rendered file: `microsip.ini (rendered from templates/x/microsip.ini.j2)`.
fn rendered_name(file: &str, template: &TemplateFile) -> PathBuf {
    PathBuf::from(format!("{file} (rendered from {})", template.display))
}

/// Checks the rendered files as `msipprov lint` checks files on disk: the ini
/// as MicroSIP's UTF-16 LE file ([`validate_document`]), the contacts with
/// [`ContactList::validate`]; plus a warning for each `[Settings]` or
/// `[AccountN]` key MicroSIP does not read. Every diagnostic names the
/// rendered file and its template. Any error means nothing may be written.
pub fn check(rendered: &Rendered, set: &TemplateSet) -> Vec<Diagnostic> {
    // The text as the UTF-16 LE file it is written as: the document read
    // from those bytes is the one built from the text.
    let doc = IniDocument::from_text(Encoding::Utf16LeBom, &rendered.ini);
    check_parsed(rendered, &doc, set)
}

/// [`check`] with the rendered ini already built as a document, `doc`
/// (`IniDocument::from_text(Encoding::Utf16LeBom, &rendered.ini)`: apply
/// goes on with it, so it is built once).
pub fn check_parsed(rendered: &Rendered, doc: &IniDocument, set: &TemplateSet) -> Vec<Diagnostic> {
    let ini_name = rendered_name(INI_FILE_NAME, set.ini_template());
    let mut found = validate_document(doc);
    {
        for section in doc.all_sections() {
            let known: fn(&str) -> bool = if section.name.eq_ignore_ascii_case(settings::SECTION) {
                |key| {
                    Settings::spec(key).is_some()
                        || settings::LEGACY_KEYS
                            .iter()
                            .any(|k| k.eq_ignore_ascii_case(key))
                }
            } else if account::account_number(section.name).is_some() {
                |key| Account::spec(key).is_some()
            } else {
                continue;
            };
            for entry in &section.entries {
                let reported = found
                    .iter()
                    .any(|d| d.line == entry.line && d.key.as_deref() == Some(entry.key));
                if !known(entry.key) && !reported {
                    found.push(
                        Diagnostic::warning(
                            entry.line,
                            format!(
                                "MicroSIP does not read this key in [{}]; it has no effect",
                                section.name
                            ),
                        )
                        .with_key(Some(section.name), entry.key),
                    );
                }
            }
        }
        found.sort_by_key(|d| (d.line, d.severity));
    }
    let mut out: Vec<Diagnostic> = found.into_iter().map(|d| d.in_file(&ini_name)).collect();
    if let (Some(text), Some(template)) = (&rendered.contacts, set.contacts_template()) {
        let name = rendered_name(CONTACTS_FILE_NAME, template);
        out.extend(
            ContactList::validate(text.as_bytes())
                .into_iter()
                .map(|d| d.in_file(&name)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{embedded, Manifest};
    use crate::vars::{resolve, VarSources};
    use softphone::config::encoding::encode;
    use softphone::config::IniDocument;
    use std::path::Path;

    fn set(ini: &str, contacts: Option<&str>) -> TemplateSet {
        TemplateSet::from_text("t", "", "", ini, contacts)
            .map_err(|e| e.to_string())
            .unwrap()
    }

    fn vars_of(manifest: &Manifest, sets: &[&str]) -> Vars {
        let sources = VarSources {
            sets: sets.iter().map(|s| s.to_string()).collect(),
            ..VarSources::default()
        };
        resolve(manifest, &sources)
            .map_err(|e| e.to_string())
            .unwrap()
    }

    fn json_vars(json: serde_json::Value) -> Vars {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("v.json");
        std::fs::write(&path, json.to_string()).unwrap();
        let sources = VarSources {
            files: vec![path],
            ..VarSources::default()
        };
        let manifest = Manifest::parse("", "m", "m").unwrap();
        resolve(&manifest, &sources)
            .map_err(|e| e.to_string())
            .unwrap()
    }

    fn no_vars() -> Vars {
        json_vars(serde_json::json!({}))
    }

    #[test]
    fn a_rows_values_are_laid_over_the_shared_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("v.json");
        std::fs::write(
            &file,
            r#"{"user": "file", "server": "pbx", "account": {"label": "x", "id": 7}}"#,
        )
        .unwrap();
        let manifest = Manifest::parse("", "m", "m").unwrap();
        let shared = crate::vars::resolve_shared(
            &manifest,
            &VarSources {
                files: vec![file],
                env: vec![("HOME".into(), "/home/u".into())],
                ..VarSources::default()
            },
        )
        .unwrap();
        let s = set(
            "[Settings]\nx={{ user }} {{ server }} {{ env.HOME }} {{ account.label | default('-') }}\n",
            None,
        );
        let row = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let vars = crate::vars::resolve_row(&manifest, &shared, &sets).unwrap();
            let text = render(&s, &vars).unwrap().ini;
            // The merged tree says the same as the layers.
            assert_eq!(vars.get("user"), vars.value().get("user"));
            text
        };
        assert_eq!(row(&["user=row"]), "[Settings]\r\nx=row pbx /home/u x\r\n");
        // A top-level value replaces a table whole; a dotted one merges.
        assert_eq!(
            row(&["account=plain"]),
            "[Settings]\r\nx=file pbx /home/u -\r\n"
        );
        assert_eq!(
            row(&["account.label=y", "env.HOME=/h"]),
            "[Settings]\r\nx=file pbx /h y\r\n"
        );
        assert_eq!(
            row(&["user=a", "user=b"]),
            "[Settings]\r\nx=b pbx /home/u x\r\n"
        );
    }

    #[test]
    fn undefined_variables_name_file_and_line() {
        let s = set(
            "[Settings]\naccountId=1\n\n[Account1]\nserver={{ nosuch }}\n",
            None,
        );
        let e = render(&s, &no_vars()).unwrap_err();
        assert_eq!(
            e,
            RenderError::Undefined {
                file: "t/microsip.ini.j2".to_owned(),
                line: Some(5),
                name: "nosuch".to_owned()
            }
        );
        assert_eq!(
            e.to_string(),
            "t/microsip.ini.j2:5: undefined variable \"nosuch\""
        );
        // Nested, inside a filter, inside a block, and in the contacts template.
        let s = set(
            "[Settings]\n{% if true %}\nx={{ env.NOPE | upper }}\n{% endif %}\n",
            None,
        );
        let e = render(&s, &json_vars(serde_json::json!({"env": {}}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t/microsip.ini.j2:3: undefined variable \"env.NOPE\""
        );
        let s = set(
            "[Settings]\n",
            Some("<contacts>\n{% for c in list %}\n<contact number=\"{{ c.number }}\"/>\n{% endfor %}\n</contacts>\n"),
        );
        let e = render(&s, &json_vars(serde_json::json!({"list": [{"name": "x"}]}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t/Contacts.xml.j2:3: undefined variable \"c.number\""
        );
        // Strict: an undefined variable is not false either.
        let s = set("[Settings]\n{% if nosuch %}x=1{% endif %}\n", None);
        assert!(matches!(
            render(&s, &no_vars()),
            Err(RenderError::Undefined { line: Some(2), .. })
        ));
    }

    #[test]
    fn line_breaks_in_ini_values_are_refused() {
        let s = set(
            "[Settings]\naccountId=1\n[Account1]\nlabel={{ label | trim }}\n",
            None,
        );
        for (value, what) in [
            ("a\nb", "line feed"),
            ("a\rb", "carriage return"),
            ("a\0b", "NUL"),
        ] {
            let e = render(&s, &json_vars(serde_json::json!({"label": value}))).unwrap_err();
            match &e {
                RenderError::BadValue {
                    file,
                    line,
                    expression,
                    message,
                } => {
                    assert_eq!(file, "t/microsip.ini.j2");
                    assert_eq!(*line, Some(4));
                    assert_eq!(expression, "label | trim");
                    assert!(message.contains(what), "{message}");
                }
                other => panic!("{other:?}"),
            }
            assert!(
                e.to_string()
                    .starts_with("t/microsip.ini.j2:4: {{ label | trim }}: the value contains"),
                "{e}"
            );
        }
        // `safe` is no way around it in the ini.
        let s = set("[Settings]\nx={{ v | safe }}\n", None);
        assert!(render(&s, &json_vars(serde_json::json!({"v": "a\nb"}))).is_err());
        // Lists and tables cannot be printed.
        let s = set("[Settings]\nx={{ v }}\n", None);
        let e = render(&s, &json_vars(serde_json::json!({"v": ["a"]}))).unwrap_err();
        assert!(e.to_string().contains("is a list"), "{e}");
        // Long values are the validator's business, not the renderer's.
        let long = "x".repeat(300);
        let s = set("[Settings]\ncmdCallEnd={{ v }}\n", None);
        let r = render(&s, &json_vars(serde_json::json!({"v": long}))).unwrap();
        let d = check(&r, &s);
        assert!(d.iter().any(|d| d.is_error() && d.line == 2), "{d:?}");
    }

    #[test]
    fn values_are_escaped_for_xml_and_parse_back() {
        let tricky = "O'Brien & Sons <Sales> \"HQ\"";
        let cyrillic = "Отдел продаж";
        let s = set(
            "[Settings]\n",
            Some("<?xml version=\"1.0\"?>\n<contacts>\n{% for c in list %}\n<contact name=\"{{ c.name }}\" number=\"{{ c.number }}\" comment=\"{{ c.comment | default('') }}\" presence=\"{{ c.presence | default(false) }}\"/>\n{% endfor %}\n</contacts>\n"),
        );
        let vars = json_vars(serde_json::json!({"list": [
            {"name": tricky, "number": "100", "comment": "two\nlines\tand a tab", "presence": true},
            {"name": cyrillic, "number": "+7 495 000-00-00"},
        ]}));
        let r = render(&s, &vars).unwrap();
        let xml = r.contacts.as_deref().unwrap();
        assert!(
            xml.contains("name=\"O&apos;Brien &amp; Sons &lt;Sales&gt; &quot;HQ&quot;\""),
            "{xml}"
        );
        assert!(
            xml.contains("comment=\"two&#10;lines&#9;and a tab\""),
            "{xml}"
        );
        assert!(xml.contains("\r\n<contact "), "CRLF line ends: {xml:?}");
        let list = ContactList::parse(xml.as_bytes()).unwrap();
        assert_eq!(list.contacts.len(), 2);
        assert_eq!(list.contacts[0].name, tricky);
        assert_eq!(list.contacts[0].comment, "two\nlines\tand a tab");
        assert!(list.contacts[0].presence);
        assert_eq!(list.contacts[1].name, cyrillic);
        assert!(!list.contacts[1].presence);
        assert!(
            check(&r, &s).iter().all(|d| !d.is_error()),
            "{:?}",
            check(&r, &s)
        );
        // Control characters are refused; `safe` prints as is.
        let e = render(
            &s,
            &json_vars(serde_json::json!({"list": [{"name": "a\u{1}", "number": "1"}]})),
        )
        .unwrap_err();
        assert!(e.to_string().contains("U+0001"), "{e}");
        assert!(
            e.to_string()
                .starts_with("t/Contacts.xml.j2:4: {{ c.name }}: "),
            "{e}"
        );
        let s = set(
            "[Settings]\n",
            Some("<contacts><contact name=\"{{ v | safe }}\" number=\"1\"/></contacts>\n"),
        );
        let r = render(&s, &json_vars(serde_json::json!({"v": "a &amp; b"}))).unwrap();
        assert!(r.contacts.unwrap().contains("name=\"a &amp; b\""));
    }

    #[test]
    fn cyrillic_survives_into_the_ini() {
        let s = set(
            "[Settings]\naccountId=1\n[Account1]\nlabel={{ label }}\ndomain=d\n",
            None,
        );
        let r = render(&s, &json_vars(serde_json::json!({"label": "Офис"}))).unwrap();
        assert_eq!(
            r.ini,
            "[Settings]\r\naccountId=1\r\n[Account1]\r\nlabel=Офис\r\ndomain=d\r\n"
        );
        let bytes = encode(&r.ini, Encoding::Utf16LeBom);
        let doc = IniDocument::parse(&bytes).unwrap();
        assert_eq!(doc.get("Account1", "label"), Some("Офис"));
        assert!(check(&r, &s).is_empty(), "{:?}", check(&r, &s));
    }

    #[test]
    fn booleans_print_as_microsip_flags() {
        let s = set(
            "[Settings]\nVAD={{ on }}\nEC={{ not on }}\nx={{ none }}\n",
            None,
        );
        let r = render(&s, &json_vars(serde_json::json!({"on": true}))).unwrap();
        assert_eq!(r.ini, "[Settings]\r\nVAD=1\r\nEC=0\r\nx=\r\n");
    }

    #[test]
    fn check_reports_validator_problems_and_unknown_keys() {
        let s = set(
            "[Settings]\naccountId=1\nenableLogs=1\nfancyKey=1\n[Account1]\ndomain=d\ntransport=udpp\n",
            None,
        );
        let r = render(&s, &no_vars()).unwrap();
        let d = check(&r, &s);
        let text: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        let name = "microsip.ini (rendered from t/microsip.ini.j2)";
        assert_eq!(
            text,
            [
                format!("{name}:3: warning: enableLogs: unknown key; did you mean enableLog?"),
                format!("{name}:4: warning: fancyKey: MicroSIP does not read this key in [Settings]; it has no effect"),
                format!("{name}:7: transport: \"udpp\" is not one of udp, tcp, tls (or empty)"),
            ]
        );
        // Broken XML is an error naming the rendered contacts file.
        let s = set("[Settings]\n", Some("<contacts>\n<contact name=\"x\"\n"));
        let r = render(&s, &no_vars()).unwrap();
        let d = check(&r, &s);
        assert!(d.iter().any(|d| d.is_error()
            && d.file.as_deref()
                == Some(Path::new("Contacts.xml (rendered from t/Contacts.xml.j2)"))));
    }

    fn shipped(name: &str) -> TemplateSet {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        TemplateSet::load(name, Some(&root))
            .map_err(|e| e.to_string())
            .unwrap()
    }

    fn example_vars(set: &TemplateSet) -> Vars {
        let sources = VarSources {
            files: vec![set.dir().unwrap().join("example.vars.toml")],
            env: vec![("USERNAME".to_owned(), "jdoe".to_owned())],
            ..VarSources::default()
        };
        resolve(&set.manifest, &sources)
            .map_err(|e| e.to_string())
            .unwrap()
    }

    fn assert_clean(rendered: &Rendered, set: &TemplateSet) {
        let d = check(rendered, set);
        assert!(
            d.is_empty(),
            "{}",
            d.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    fn account_of(ini: &str) -> Vec<Account> {
        Account::list(&IniDocument::parse(&encode(ini, Encoding::Utf16LeBom)).unwrap())
    }

    #[test]
    fn the_default_set_renders_its_example() {
        let set = shipped("default");
        let rendered = render(&set, &example_vars(&set)).unwrap();
        assert_clean(&rendered, &set);
        assert!(rendered.contacts.is_none());
        let doc = IniDocument::parse(&encode(&rendered.ini, Encoding::Utf16LeBom)).unwrap();
        assert_eq!(doc.get("Settings", "accountId"), Some("1"));
        let accounts = Account::list(&doc);
        assert_eq!(accounts.len(), 1);
        let account = &accounts[0].keys;
        assert_eq!(account.server, "sip.example.com");
        assert_eq!(
            account.domain, "sip.example.com",
            "domain defaults to the server"
        );
        assert_eq!(account.username, "1001");
        assert_eq!(account.display_name, "Jane Doe");
        assert_eq!(account.transport, account::Transport::Udp);
    }

    #[test]
    fn the_embedded_default_renders_from_set_arguments_alone() {
        let set = embedded("default").unwrap();
        let vars = vars_of(
            &set.manifest,
            &[
                "server=pbx.example.com:5062",
                "username=200",
                "password=pw",
                "domain=example.com",
                "label=Офис",
            ],
        );
        let rendered = render(&set, &vars).unwrap();
        assert_clean(&rendered, &set);
        let accounts = account_of(&rendered.ini);
        assert_eq!(accounts.len(), 1);
        let account = &accounts[0].keys;
        assert_eq!(account.server, "pbx.example.com:5062");
        assert_eq!(account.domain, "example.com");
        assert_eq!(account.username, "200");
        assert_eq!(account.label, "Офис");
        assert_eq!(account.password, account::Password::Plain("pw".to_owned()));
        assert!(
            !rendered.ini.contains("Device"),
            "device keys are MicroSIP's to write"
        );
        // Missing credentials are all named.
        let e = resolve(&set.manifest, &VarSources::default()).unwrap_err();
        let text = e.to_string();
        for name in ["server", "username", "password"] {
            assert!(text.contains(&format!("\"{name}\"")), "{text}");
        }
        // A bad transport is caught before rendering.
        let sources = VarSources {
            sets: ["server=s", "username=u", "password=p", "transport=sctp"]
                .map(String::from)
                .to_vec(),
            ..VarSources::default()
        };
        assert!(resolve(&set.manifest, &sources).is_err());
    }

    #[test]
    fn the_corporate_set_renders_its_example() {
        let set = shipped("corporate");
        let vars = example_vars(&set);
        let rendered = render(&set, &vars).unwrap();
        assert_clean(&rendered, &set);
        let doc = IniDocument::parse(&encode(&rendered.ini, Encoding::Utf16LeBom)).unwrap();
        assert_eq!(doc.get("Settings", "accountId"), Some("1"));
        assert_eq!(doc.get("Settings", "updatesInterval"), Some("never"));
        assert_eq!(doc.get("Settings", "enableLog"), Some("0"));
        assert!(
            !rendered.ini.contains("Device"),
            "device keys are MicroSIP's to write"
        );
        assert_eq!(
            doc.get("Settings", "cmdIncomingCall"),
            Some("\"C:\\Program Files\\Acme CRM\\popup.exe\""),
            "the program path survives MicroSIP's unquoting"
        );
        let accounts = Account::list(&doc);
        assert_eq!(accounts.len(), 1);
        let account = &accounts[0].keys;
        assert_eq!(account.transport, account::Transport::Tls);
        assert_eq!(account.srtp, account::Srtp::Mandatory);
        assert_eq!(account.server, "pbx.corp.example.com:5061");
        assert_eq!(account.display_name, "Анна Петрова");
        let settings = Settings::from_document(&doc);
        assert!(!settings.enable_log);
        assert_eq!(settings.updates_interval, settings::UpdatesInterval::Never);

        let contacts =
            ContactList::parse(rendered.contacts.as_deref().unwrap().as_bytes()).unwrap();
        let expected = vars
            .get("directory")
            .and_then(serde_json::Value::as_array)
            .map(Vec::len)
            .unwrap();
        assert_eq!(contacts.contacts.len(), expected);
        assert_eq!(contacts.contacts.len(), 5);
        assert!(contacts
            .contacts
            .iter()
            .any(|c| c.name == "O'Brien & Sons <Sales>"));
        assert!(contacts.contacts.iter().any(|c| c.name == "Бухгалтерия"));
        assert_eq!(
            String::from_utf8(contacts.to_bytes()).unwrap(),
            rendered.contacts.clone().unwrap(),
            "byte for byte what MicroSIP (and softphone::config) writes"
        );
        // An empty directory still gives a valid file.
        let mut empty = vars.value().clone();
        empty["directory"] = serde_json::json!([]);
        let rendered = render(&set, &json_vars(empty)).unwrap();
        assert_eq!(
            rendered.contacts.as_deref(),
            Some("<?xml version=\"1.0\"?>\r\n<contacts/>\r\n")
        );
        assert_clean(&rendered, &set);
    }

    #[test]
    fn crlf_normalises_every_line_end() {
        assert_eq!(crlf("a\nb\r\nc"), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf(""), "");
    }
}
