//! Compiler-style rendering of a report against its source text:
//!
//! ```text
//! error: path not absolute
//!   --> web.bu:5:13 at $.storage.files.0.path
//!    |
//!  5 |     - path: etc/hostname
//!    |             ^
//! ```

use crate::report::{Diagnostic, Report};
use std::fmt::Write;

/// Render every diagnostic of `report`; `name` is the input's file name.
pub fn render(report: &Report, name: &str, source: &str) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = String::new();
    for d in &report.entries {
        render_one(&mut out, d, name, &lines);
    }
    out
}

fn render_one(out: &mut String, d: &Diagnostic, name: &str, lines: &[&str]) {
    let _ = writeln!(out, "{}: {}", d.severity, d.message);
    match d.pos {
        Some(p) => {
            let _ = writeln!(out, "  --> {}:{}:{} at {}", name, p.line, p.col, d.display_path());
            if let Some(text) = lines.get((p.line as usize).wrapping_sub(1)) {
                let num = p.line.to_string();
                let pad = " ".repeat(num.len());
                let shown: String = text.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
                // Columns count bytes; place the caret under the same character.
                let prefix = text.get(..(p.col as usize).saturating_sub(1)).unwrap_or(text);
                let caret_at = prefix.chars().count();
                let _ = writeln!(out, " {pad} |");
                let _ = writeln!(out, " {num} | {shown}");
                let _ = writeln!(out, " {pad} | {}^", " ".repeat(caret_at));
            }
        }
        None => {
            let _ = writeln!(out, "  --> {} at {}", name, d.display_path());
        }
    }
    if let Some(h) = &d.help {
        let _ = writeln!(out, "   = help: {h}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::Path;
    use crate::tree::Pos;

    #[test]
    fn caret_under_the_column() {
        let mut r = Report::new();
        let d = r.error(Path::root().key("a"), "bad");
        d.pos = Some(Pos::new(2, 4));
        let s = render(&r, "x.bu", "first\nab: c\n");
        assert!(s.contains("  --> x.bu:2:4 at $.a"), "{s}");
        assert!(s.contains(" 2 | ab: c\n   |    ^"), "{s}");
    }
}
