//! One problem found in a config file, located precisely enough for an admin
//! to open the file and fix it: file, line, column, key and what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How bad a problem is: errors make `lint` fail, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// MicroSIP would misread the file, or the file is not what it claims.
    Error,
    /// The file works, but probably not as its author meant.
    Warning,
}

/// A located problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file, when known (loaders work on bytes; callers attach the path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based column, where it helps (XML errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// `[Section]` the key belongs to, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// The key (or XML attribute) concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in words an admin can act on.
    pub message: String,
}

impl Diagnostic {
    /// An error at `line` (1-based; 0 for the whole file).
    pub fn error(line: usize, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, line, message)
    }

    /// A warning at `line` (1-based; 0 for the whole file).
    pub fn warning(line: usize, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, line, message)
    }

    fn new(severity: Severity, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: None,
            line,
            column: None,
            section: None,
            key: None,
            severity,
            message: message.into(),
        }
    }

    /// Names the key (and its section) the problem is about.
    pub fn with_key(mut self, section: Option<&str>, key: &str) -> Self {
        self.section = section.map(str::to_owned);
        self.key = Some(key.to_owned());
        self
    }

    /// Names the section the problem is about.
    pub fn with_section(mut self, section: &str) -> Self {
        self.section = Some(section.to_owned());
        self
    }

    /// Adds the 1-based column.
    pub fn with_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }

    /// Attaches the file the problem was found in.
    pub fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_owned());
        self
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `FILE:LINE[:COL]: [warning: ]KEY: message`, the form compilers use, so
/// editors and CI logs can jump to the place.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}", file.display(), self.line)?,
            None => write!(f, "line {}", self.line)?,
        }
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        f.write_str(": ")?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_the_compiler_form() {
        let d = Diagnostic::error(14, "\"udpp\" is not one of udp, tcp, tls")
            .with_key(Some("Account1"), "transport")
            .in_file(Path::new("microsip.ini"));
        assert_eq!(
            d.to_string(),
            "microsip.ini:14: transport: \"udpp\" is not one of udp, tcp, tls"
        );
        let w = Diagnostic::warning(3, "odd")
            .with_column(7)
            .in_file(Path::new("c.xml"));
        assert_eq!(w.to_string(), "c.xml:3:7: warning: odd");
    }
}
