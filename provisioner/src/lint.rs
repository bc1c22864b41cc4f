//! `msipprov lint`: checks ini and contacts files through
//! `softphone::config` and reports every problem as `FILE:LINE: message`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use softphone::config::{validate_file, Diagnostic, FileKind};

/// What lint found in one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file as named on the command line.
    pub file: PathBuf,
    /// Its kind, detected from content; `None` when it could not be read.
    pub kind: Option<FileKind>,
    /// Every problem, in line order.
    pub diagnostics: Vec<Diagnostic>,
}

impl FileReport {
    /// Whether the file has no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Lints one file. A file that cannot be read is reported as an error at
/// line 0, like any other problem, so one bad path does not hide the rest.
pub fn lint_file(path: &Path) -> FileReport {
    match validate_file(path) {
        Ok((kind, diagnostics)) => FileReport {
            file: path.to_owned(),
            kind: Some(kind),
            diagnostics,
        },
        Err(e) => FileReport {
            file: path.to_owned(),
            kind: None,
            diagnostics: vec![
                Diagnostic::error(0, format!("cannot read the file: {e}")).in_file(path)
            ],
        },
    }
}

/// Lints every file, in the order given.
pub fn lint_files(paths: &[PathBuf]) -> Vec<FileReport> {
    paths.iter().map(|p| lint_file(p)).collect()
}

/// Counts for the closing summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Files checked.
    pub files: usize,
    /// Files with at least one error.
    pub invalid: usize,
    /// Errors in all files.
    pub errors: usize,
    /// Warnings in all files.
    pub warnings: usize,
}

impl Summary {
    /// Adds up the reports.
    pub fn of(reports: &[FileReport]) -> Self {
        let mut s = Summary {
            files: reports.len(),
            ..Summary::default()
        };
        for r in reports {
            let errors = r.diagnostics.iter().filter(|d| d.is_error()).count();
            s.errors += errors;
            s.warnings += r.diagnostics.len() - errors;
            s.invalid += usize::from(errors > 0);
        }
        s
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        write!(
            f,
            "{} checked: {} invalid, {}, {}",
            plural(self.files, "file"),
            self.invalid,
            plural(self.errors, "error"),
            plural(self.warnings, "warning")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_files_are_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("microsip.ini");
        std::fs::write(&good, "[Settings]\r\nEC=1\r\n").unwrap();
        let missing = dir.path().join("missing.ini");
        let reports = lint_files(&[missing.clone(), good]);
        assert!(!reports[0].is_valid());
        assert!(reports[0].diagnostics[0]
            .to_string()
            .starts_with(&format!("{}:0: cannot read", missing.display())));
        assert!(reports[1].is_valid());
        let s = Summary::of(&reports);
        assert_eq!(
            s.to_string(),
            "2 files checked: 1 invalid, 1 error, 0 warnings"
        );
    }
}
