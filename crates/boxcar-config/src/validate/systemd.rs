//! systemd unit rules: names, contents that systemd can parse, install
//! sections for enabled units, and files that would clobber units.

use crate::model::{Config, Systemd};
use crate::path::Path;
use crate::report::Report;

const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
];

/// One `Name=Value` assignment with its section.
#[derive(Debug, PartialEq, Eq)]
pub struct UnitOption {
    pub section: String,
    pub name: String,
    pub value: String,
}

/// The longest line systemd reads.
const LINE_MAX: usize = 2048;

/// Parse unit contents the way Ignition's parser does (go-systemd's
/// `DeserializeOptions`): text before the first section is skipped, `#`
/// and `;` start comments, a trailing `\` continues a value.
pub fn parse_unit(contents: &str) -> Result<Vec<UnitOption>, String> {
    if contents.lines().any(|l| l.len() >= LINE_MAX) {
        return Err(format!("line too long (max {LINE_MAX} bytes)"));
    }
    let mut opts = Vec::new();
    let mut section: Option<String> = None;
    let mut lines = contents.split_inclusive('\n').peekable();
    while let Some(raw) = lines.next() {
        let line = raw.trim_start();
        let Some(first) = line.chars().next() else { continue };
        if first == '#' || first == ';' {
            let mut l = raw;
            while l.trim_end_matches(['\n', '\r']).trim_end_matches(' ').ends_with('\\') {
                match lines.next() {
                    Some(n) => l = n,
                    None => break,
                }
            }
            continue;
        }
        if first == '[' {
            let body = &line[1..];
            let end = body.find(']').ok_or("unable to find end of section")?;
            let garbage = body[end + 1..].trim();
            if !garbage.is_empty() {
                return Err(format!(
                    "found garbage after section name {}: {:?}",
                    section.as_deref().unwrap_or(""),
                    garbage
                ));
            }
            section = Some(body[..end].to_string());
            continue;
        }
        let Some(sec) = &section else {
            // Before any section header go-systemd skips text silently.
            continue;
        };
        let Some(eq) = line.find('=') else {
            return Err(if raw.ends_with('\n') {
                "unexpected newline encountered while parsing option name".into()
            } else {
                "EOF".into()
            });
        };
        if line[..eq].contains(['\n', '\r']) {
            return Err("unexpected newline encountered while parsing option name".into());
        }
        let name = line[..eq].trim().to_string();
        let mut value = line[eq + 1..].trim_end_matches('\n').to_string();
        while value.ends_with('\\') {
            match lines.next() {
                Some(n) if !n.trim().is_empty() => {
                    value.push('\n');
                    value.push_str(n.trim_end_matches('\n'));
                }
                _ => break,
            }
        }
        opts.push(UnitOption {
            section: sec.clone(),
            name,
            value: value.trim().to_string(),
        });
    }
    Ok(opts)
}

fn has_install(opts: &[UnitOption]) -> bool {
    opts.iter().any(|o| o.section == "Install")
}

pub fn check(r: &mut Report, s: &Systemd, sp: &Path) {
    for (i, u) in s.units.iter().enumerate() {
        let p = sp.key("units").index(i);
        if !UNIT_SUFFIXES
            .iter()
            .any(|suf| u.name.ends_with(suf) && u.name.len() >= suf.len())
        {
            r.error(p.key("name"), "invalid systemd unit extension");
        }
        let parsed = u.contents.as_deref().map(parse_unit);
        match &parsed {
            Some(Err(e)) => {
                r.error(p.key("contents"), format!("invalid unit content: {e}"));
            }
            Some(Ok(opts)) => {
                let empty = u.contents.as_deref().is_none_or(str::is_empty);
                if u.enabled == Some(true) && !empty && !has_install(opts) {
                    r.warning(
                        p.key("contents"),
                        format!(
                            "unit {:?} is enabled, but has no install section so enable does nothing",
                            u.name
                        ),
                    );
                }
            }
            None => {}
        }
        for (j, d) in u.dropins.iter().enumerate() {
            let dp = p.key("dropins").index(j);
            if let Some(Err(e)) = d.contents.as_deref().map(parse_unit) {
                r.error(dp.key("contents"), format!("invalid unit content: {e}"));
            }
            if !d.name.ends_with(".conf") {
                r.error(dp.key("name"), "invalid systemd drop-in extension");
            }
        }
        // An enabled instance of a template defined here needs the
        // template to have an [Install] section.
        if u.enabled == Some(true) {
            if let Some((prefix, _instance)) = instance_of(&u.name) {
                let template = format!("{prefix}@.service");
                if let Some(t) = s.units.iter().rev().find(|t| t.name == template) {
                    if let Some(Ok(opts)) = t.contents.as_deref().filter(|c| !c.is_empty()).map(parse_unit) {
                        if !has_install(&opts) {
                            r.warning(
                                p.key("contents"),
                                format!(
                                    "template unit {template:?} for {:?} doesn't have Install section",
                                    u.name
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// `getty@tty1.service` → (`getty`, `tty1`).
fn instance_of(name: &str) -> Option<(&str, &str)> {
    let stem = name.strip_suffix(".service")?;
    let (prefix, inst) = stem.split_once('@')?;
    (!prefix.is_empty() && !inst.is_empty()).then_some((prefix, inst))
}

/// Files, directories and links must not overwrite a unit or drop-in the
/// config also writes.
pub fn check_path_conflicts(r: &mut Report, cfg: &Config) {
    let mut unit_paths = std::collections::HashSet::new();
    for u in &cfg.systemd.units {
        if u.contents.as_deref().is_some_and(|c| !c.is_empty()) {
            unit_paths.insert(format!("/etc/systemd/system/{}", u.name));
        }
        for d in &u.dropins {
            if d.contents.as_deref().is_some_and(|c| !c.is_empty()) {
                unit_paths.insert(format!("/etc/systemd/system/{}.d/{}", u.name, d.name));
            }
        }
    }
    let s = &cfg.storage;
    let sp = Path::root().key("storage");
    let lists: [(&str, Vec<&String>); 3] = [
        ("files", s.files.iter().map(|f| &f.path).collect()),
        ("directories", s.directories.iter().map(|d| &d.path).collect()),
        ("links", s.links.iter().map(|l| &l.path).collect()),
    ];
    for (field, paths) in lists {
        for (i, p) in paths.into_iter().enumerate() {
            if unit_paths.contains(p) {
                r.error(
                    sp.key(field).index(i).key("path"),
                    "path conflicts with systemd unit or dropin",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_parsing() {
        let u = "# comment\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/a \\\n  --flag\n[Install]\nWantedBy=multi-user.target\n";
        let o = parse_unit(u).unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[1].value, "/bin/a \\\n  --flag");
        assert!(has_install(&o));
        assert_eq!(parse_unit("[Unit\nA=b").unwrap_err(), "unable to find end of section");
        assert!(parse_unit("[Unit] junk\n").unwrap_err().starts_with("found garbage"));
        assert_eq!(
            parse_unit("[Unit]\nnot an option\nA=b\n").unwrap_err(),
            "unexpected newline encountered while parsing option name"
        );
        // Text before the first section is ignored, as go-systemd does.
        assert!(parse_unit("garbage\n[Unit]\nA=b\n").is_ok());
    }

    #[test]
    fn instance_names() {
        assert_eq!(instance_of("getty@tty1.service"), Some(("getty", "tty1")));
        assert_eq!(instance_of("getty@.service"), None);
        assert_eq!(instance_of("foo.service"), None);
    }
}
