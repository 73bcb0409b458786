//! Diagnostics: what is wrong, where (JSON path and line:column), how bad.
//!
//! Checks record diagnostics against the *internal* JSON path; a final
//! [`Report::correlate`] pass looks the path up in the positioned input tree
//! to attach `line:col` and the path the user should see (snake_case for
//! Butane, the source construct for generated values).

use crate::path::Path;
use crate::tree::{Node, Pos};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// What a diagnostic points at within its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The value at the path (or its nearest existing ancestor).
    Value,
    /// The mapping key of the last path segment (unknown or misplaced keys).
    Key,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Path in the internal (Ignition camelCase) model.
    pub path: Path,
    /// Path as the user should see it; set by [`Report::correlate`].
    pub shown_path: Option<Path>,
    pub pos: Option<Pos>,
    pub anchor: Anchor,
    /// One sentence. Where Ignition or Butane have a message for the same
    /// problem, this is their text, so tools and people can match them.
    pub message: String,
    /// An optional hint on how to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn display_path(&self) -> &Path {
        self.shown_path.as_ref().unwrap_or(&self.path)
    }
}

impl fmt::Display for Diagnostic {
    /// The raw one-line form Ignition and Butane print:
    /// `error at $.storage.files.0.path, line 5 col 9: path not absolute`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.severity, self.display_path())?;
        if let Some(p) = self.pos {
            write!(f, ", line {} col {}", p.line, p.col)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All diagnostics of one operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub entries: Vec<Diagnostic>,
}

impl Report {
    pub fn new() -> Self {
        Report::default()
    }

    pub fn push(
        &mut self,
        severity: Severity,
        path: Path,
        anchor: Anchor,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.entries.push(Diagnostic {
            severity,
            path,
            shown_path: None,
            pos: None,
            anchor,
            message: message.into(),
            help: None,
        });
        self.entries.last_mut().expect("just pushed")
    }

    pub fn error(&mut self, path: Path, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Severity::Error, path, Anchor::Value, message)
    }

    pub fn warning(&mut self, path: Path, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Severity::Warning, path, Anchor::Value, message)
    }

    pub fn merge(&mut self, other: Report) {
        self.entries.extend(other.entries);
    }

    pub fn has_errors(&self) -> bool {
        self.entries.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn has_warnings(&self) -> bool {
        self.entries.iter().any(|d| d.severity == Severity::Warning)
    }

    /// True when the report makes the operation fail: any error, or any
    /// warning in strict mode.
    pub fn is_fatal(&self, strictness: Strictness) -> bool {
        self.has_errors() || (strictness == Strictness::Strict && self.has_warnings())
    }

    /// Attach positions and user-facing paths by looking each diagnostic's
    /// path up in `tree`. `naming` says how paths are shown.
    pub fn correlate(&mut self, tree: &Node, naming: PathNaming) {
        for d in &mut self.entries {
            if d.pos.is_some() {
                continue;
            }
            let loc = tree.locate(&d.path);
            d.pos = Some(match (d.anchor, loc.complete, loc.key_pos) {
                (Anchor::Key, true, Some(kp)) => kp,
                _ => loc.node.pos,
            });
            d.shown_path = Some(match (loc.origin, naming) {
                (Some(o), _) => o.path.clone(),
                (None, PathNaming::Json) => d.path.clone(),
                (None, PathNaming::Yaml) => d.path.to_snake(),
            });
        }
    }

    /// Sort by position, then path, so output is stable and reads top-down.
    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| {
            (a.pos.unwrap_or_default(), a.display_path().to_string())
                .cmp(&(b.pos.unwrap_or_default(), b.display_path().to_string()))
        });
        self.entries.dedup();
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.entries {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Whether warnings fail the operation (`--strict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    #[default]
    Lenient,
    Strict,
}

/// How paths in reports are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathNaming {
    /// Ignition JSON: camelCase keys.
    Json,
    /// Butane YAML: snake_case keys.
    Yaml,
}
