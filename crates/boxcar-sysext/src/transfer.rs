//! systemd-sysupdate transfer files (`*.conf` / `*.transfer`) for extension updates.
//!
//! Supported subset, refused loudly otherwise: `[Source] Type=url-file` (or `regular-file`
//! for local mirrors), `[Target] Type=regular-file`, `MatchPattern=` with `@v` and the
//! specifiers `%a` and `%%`, `InstancesMax=`, `CurrentSymlink=`, `MinVersion=`,
//! `ProtectVersion=`, `Mode=`, `Verify=`. Parsing is pure and total.

use std::cmp::Ordering;

/// Source types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceType {
    /// Files listed in `Path/SHA256SUMS` on an HTTP(S) server.
    UrlFile,
    /// Files in a local directory (its `SHA256SUMS` must list them).
    RegularFile,
}

/// GPG verification of `SHA256SUMS` (sysupdate's `Verify=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// `Verify=yes` (sysupdate's default): needs `SHA256SUMS.gpg`; not implemented by Boxcar yet.
    Signature,
    /// `Verify=no`: payloads are still checked against `SHA256SUMS`.
    ChecksumsOnly,
}

/// A parsed `@v` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Literal text before `@v`.
    pub prefix: String,
    /// Literal text after `@v`.
    pub suffix: String,
}

impl Pattern {
    /// Parses a pattern, expanding `%a` to `arch`. Exactly one `@v`, no other wildcard.
    pub fn parse(raw: &str, arch: &str) -> Result<Self, TransferError> {
        let mut out = String::new();
        let mut it = raw.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '%' => match it.next() {
                    Some('a') => out.push_str(arch),
                    Some('%') => out.push('%'),
                    other => {
                        return Err(TransferError::Pattern {
                            pattern: raw.into(),
                            what: format!("unsupported specifier %{}", other.map(String::from).unwrap_or_default()),
                        })
                    }
                },
                '@' => match it.next() {
                    Some('v') => out.push('\u{0}'),
                    Some('@') => out.push('@'),
                    other => {
                        return Err(TransferError::Pattern {
                            pattern: raw.into(),
                            what: format!("unsupported wildcard @{}", other.map(String::from).unwrap_or_default()),
                        })
                    }
                },
                '/' => {
                    return Err(TransferError::Pattern {
                        pattern: raw.into(),
                        what: "contains '/'".into(),
                    })
                }
                c => out.push(c),
            }
        }
        let mut parts = out.split('\u{0}');
        let (Some(prefix), Some(suffix), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TransferError::Pattern {
                pattern: raw.into(),
                what: "needs exactly one @v".into(),
            });
        };
        Ok(Self {
            prefix: prefix.into(),
            suffix: suffix.into(),
        })
    }

    /// The version if `name` matches.
    pub fn matches(&self, name: &str) -> Option<String> {
        let v = name.strip_prefix(&self.prefix)?.strip_suffix(&self.suffix)?;
        version_is_valid(v).then(|| v.to_string())
    }

    /// The file name for `version`.
    pub fn render(&self, version: &str) -> String {
        format!("{}{}{}", self.prefix, version, self.suffix)
    }
}

/// sysupdate's version rule: non-empty, `[A-Za-z0-9.~^+_-]`, no leading `.` .
pub fn version_is_valid(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with('.')
        && v.len() <= 255
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '~' | '^' | '+' | '_' | '-'))
}

/// systemd's `strverscmp_improved()` (the UAPI version format comparison).
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let valid = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'~' | b'-' | b'^' | b'.');
    let at = |s: &[u8]| s.first().copied().unwrap_or(0);
    loop {
        while !a.is_empty() && !valid(a[0]) {
            a = &a[1..];
        }
        while !b.is_empty() && !valid(b[0]) {
            b = &b[1..];
        }
        // '~' (pre-release) sorts before everything, even the end of the string.
        if at(a) == b'~' || at(b) == b'~' {
            let o = (at(a) != b'~').cmp(&(at(b) != b'~'));
            if o != Ordering::Equal {
                return o;
            }
            a = &a[1..];
            b = &b[1..];
        }
        if a.is_empty() || b.is_empty() {
            return a.cmp(b);
        }
        for m in [b'-', b'^', b'.'] {
            if at(a) == m || at(b) == m {
                let o = (at(a) != m).cmp(&(at(b) != m));
                if o != Ordering::Equal {
                    return o;
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
        if at(a).is_ascii_digit() || at(b).is_ascii_digit() {
            let za = a.iter().take_while(|c| **c == b'0').count();
            let zb = b.iter().take_while(|c| **c == b'0').count();
            a = &a[za..];
            b = &b[zb..];
            let la = a.iter().take_while(|c| c.is_ascii_digit()).count();
            let lb = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let o = la.cmp(&lb).then_with(|| a[..la].cmp(&b[..lb]));
            if o != Ordering::Equal {
                return o;
            }
            a = &a[la..];
            b = &b[lb..];
        } else {
            let la = a.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let lb = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let o = a[..la].cmp(&b[..lb]);
            if o != Ordering::Equal {
                return o;
            }
            a = &a[la..];
            b = &b[lb..];
            if la == 0 && lb == 0 && !a.is_empty() && !b.is_empty() && a[0] == b[0] {
                // Same separator-like byte not handled above: step over it to guarantee progress.
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// A parsed transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Source type.
    pub source_type: SourceType,
    /// Base URL or directory.
    pub source_path: String,
    /// Source patterns (at least one).
    pub source_patterns: Vec<Pattern>,
    /// Target directory (absolute, relative to the root).
    pub target_path: String,
    /// Target patterns (at least one; the first names new files).
    pub target_patterns: Vec<Pattern>,
    /// Instances kept, ≥ 2 (default 2).
    pub instances_max: u32,
    /// Symlink switched to the newest instance.
    pub current_symlink: Option<String>,
    /// Versions below are not installed.
    pub min_version: Option<String>,
    /// Version never removed.
    pub protect_version: Option<String>,
    /// File mode of installed files (default 0644).
    pub mode: u32,
    /// Signature policy.
    pub verify: Verify,
    /// Ignored keys, to be shown as warnings.
    pub ignored: Vec<String>,
}

/// Errors of transfer files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// Syntax error.
    #[error("line {line}: {what}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// What.
        what: String,
    },
    /// A key has an invalid or unsupported value.
    #[error("[{section}] {key}={value}: {what}")]
    Value {
        /// Section.
        section: String,
        /// Key.
        key: String,
        /// Value.
        value: String,
        /// What.
        what: String,
    },
    /// A required key is missing.
    #[error("[{section}] {key}= is required")]
    Missing {
        /// Section.
        section: &'static str,
        /// Key.
        key: &'static str,
    },
    /// A match pattern is unusable.
    #[error("pattern {pattern:?}: {what}")]
    Pattern {
        /// Pattern.
        pattern: String,
        /// What.
        what: String,
    },
}

impl Transfer {
    /// Parses a transfer file; `arch` expands `%a`.
    pub fn parse(text: &str, arch: &str) -> Result<Self, TransferError> {
        let mut section = String::new();
        let mut st = None;
        let mut sp = None;
        let mut spat = Vec::new();
        let mut tt = None;
        let mut tp = None;
        let mut tpat = Vec::new();
        let mut imax = 2u32;
        let mut link = None;
        let mut minv = None;
        let mut protect = None;
        let mut mode = 0o644;
        let mut verify = Verify::Signature;
        let mut ignored = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            if let Some(s) = l.strip_prefix('[') {
                section = s
                    .strip_suffix(']')
                    .ok_or(TransferError::Syntax {
                        line,
                        what: "unterminated section".into(),
                    })?
                    .to_string();
                continue;
            }
            let (k, v) = l.split_once('=').ok_or(TransferError::Syntax {
                line,
                what: "expected KEY=VALUE".into(),
            })?;
            let (k, v) = (k.trim(), v.trim());
            let bad = |what: &str| TransferError::Value {
                section: section.clone(),
                key: k.into(),
                value: v.into(),
                what: what.into(),
            };
            match (section.as_str(), k) {
                ("Source", "Type") => {
                    st = Some(match v {
                        "url-file" => SourceType::UrlFile,
                        "regular-file" => SourceType::RegularFile,
                        _ => return Err(bad("unsupported source type (url-file, regular-file)")),
                    })
                }
                ("Source", "Path") => sp = Some(v.to_string()),
                ("Source", "MatchPattern") => {
                    for p in v.split_ascii_whitespace() {
                        spat.push(Pattern::parse(p, arch)?);
                    }
                }
                ("Target", "Type") => {
                    if v != "regular-file" {
                        return Err(bad("unsupported target type (regular-file)"));
                    }
                    tt = Some(());
                }
                ("Target", "Path") => {
                    if !v.starts_with('/') {
                        return Err(bad("must be absolute"));
                    }
                    tp = Some(v.to_string())
                }
                ("Target", "PathRelativeTo") => {
                    if v != "root" {
                        return Err(bad("only 'root' is supported"));
                    }
                }
                ("Target", "MatchPattern") => {
                    for p in v.split_ascii_whitespace() {
                        tpat.push(Pattern::parse(p, arch)?);
                    }
                }
                ("Target", "InstancesMax") => {
                    imax = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= 2)
                        .ok_or_else(|| bad("must be an integer ≥ 2"))?
                }
                ("Target", "CurrentSymlink") => {
                    if !v.starts_with('/') {
                        return Err(bad("must be absolute"));
                    }
                    link = Some(v.to_string())
                }
                ("Target", "Mode") => {
                    mode = u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| bad("octal mode"))?
                }
                ("Transfer", "MinVersion") => minv = Some(v.to_string()),
                ("Transfer", "ProtectVersion") => protect = Some(v.to_string()),
                ("Transfer", "Verify") => {
                    verify = match crate::metadata::parse_bool(v.as_bytes()) {
                        Some(true) => Verify::Signature,
                        Some(false) => Verify::ChecksumsOnly,
                        None => return Err(bad("boolean")),
                    }
                }
                _ => ignored.push(format!("[{section}] {k}")),
            }
        }
        let source_type = st.ok_or(TransferError::Missing {
            section: "Source",
            key: "Type",
        })?;
        let source_path = sp.ok_or(TransferError::Missing {
            section: "Source",
            key: "Path",
        })?;
        tt.ok_or(TransferError::Missing {
            section: "Target",
            key: "Type",
        })?;
        let target_path = tp.ok_or(TransferError::Missing {
            section: "Target",
            key: "Path",
        })?;
        if spat.is_empty() {
            return Err(TransferError::Missing {
                section: "Source",
                key: "MatchPattern",
            });
        }
        if tpat.is_empty() {
            return Err(TransferError::Missing {
                section: "Target",
                key: "MatchPattern",
            });
        }
        Ok(Self {
            source_type,
            source_path,
            source_patterns: spat,
            target_path,
            target_patterns: tpat,
            instances_max: imax,
            current_symlink: link,
            min_version: minv,
            protect_version: protect,
            mode,
            verify,
            ignored,
        })
    }

    /// Version of a source file name, if any source pattern matches.
    pub fn source_version(&self, name: &str) -> Option<String> {
        self.source_patterns.iter().find_map(|p| p.matches(name))
    }

    /// Version of a target file name, if any target pattern matches.
    pub fn target_version(&self, name: &str) -> Option<String> {
        if name.starts_with('.') {
            return None;
        }
        self.target_patterns.iter().find_map(|p| p.matches(name))
    }
}

/// Picks the newest available version ≥ MinVersion (pure). `available`: (version, file name).
pub fn pick_newest<'a>(available: &'a [(String, String)], min: Option<&str>) -> Option<&'a (String, String)> {
    available
        .iter()
        .filter(|(v, _)| min.is_none_or(|m| version_cmp(v, m) != Ordering::Less))
        .max_by(|a, b| version_cmp(&a.0, &b.0))
}

/// Which installed versions to delete so that at most `max` remain (pure). Never removes
/// `keep` entries (the current and protected versions); removes the oldest first.
pub fn prune(installed: &[String], max: u32, keep: &[&str]) -> Vec<String> {
    let mut sorted: Vec<&String> = installed.iter().collect();
    sorted.sort_by(|a, b| version_cmp(a, b));
    let mut excess = sorted.len().saturating_sub(max as usize);
    let mut out = Vec::new();
    for v in sorted {
        if excess == 0 {
            break;
        }
        if keep.contains(&v.as_str()) {
            continue;
        }
        out.push(v.clone());
        excess -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAKERY: &str = "[Transfer]\nVerify=false\n[Source]\nType=url-file\nPath=https://extensions.flatcar.org/extensions/docker/\nMatchPattern=docker-@v-%a.raw\n[Target]\nInstancesMax=3\nType=regular-file\nPath=/opt/extensions/docker\nMatchPattern=docker-@v-%a.raw\nCurrentSymlink=/etc/extensions/docker.raw\n";

    #[test]
    fn bakery_template() {
        let t = Transfer::parse(BAKERY, "x86-64").unwrap();
        assert_eq!(t.source_type, SourceType::UrlFile);
        assert_eq!(t.instances_max, 3);
        assert_eq!(t.verify, Verify::ChecksumsOnly);
        assert_eq!(t.target_patterns[0].render("1.0"), "docker-1.0-x86-64.raw");
        let no_target = BAKERY.replace(
            "Path=/opt/extensions/docker\nMatchPattern=docker-@v-%a.raw\n",
            "Path=/opt/extensions/docker\n",
        );
        assert_eq!(
            Transfer::parse(&no_target, "x86-64"),
            Err(TransferError::Missing {
                section: "Target",
                key: "MatchPattern"
            })
        );
        assert_eq!(t.source_version("docker-24.0.9-x86-64.raw"), Some("24.0.9".into()));
        assert_eq!(t.source_version("docker-24.0.9-arm64.raw"), None);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Transfer::parse("[Source]\nType=tar\n", "x"),
            Err(TransferError::Value { .. })
        ));
        assert!(matches!(
            Pattern::parse("a-@v-@v", "x"),
            Err(TransferError::Pattern { .. })
        ));
        assert!(matches!(
            Pattern::parse("a-@u", "x"),
            Err(TransferError::Pattern { .. })
        ));
        assert!(matches!(
            Pattern::parse("a-%w", "x"),
            Err(TransferError::Pattern { .. })
        ));
        assert!(matches!(
            Transfer::parse("garbage", "x"),
            Err(TransferError::Syntax { line: 1, .. })
        ));
        let t = BAKERY.replace("InstancesMax=3", "InstancesMax=1");
        assert!(Transfer::parse(&t, "x").is_err());
    }

    #[test]
    fn versions() {
        use Ordering::*;
        assert_eq!(version_cmp("1.10", "1.9"), Greater);
        assert_eq!(version_cmp("1.0~rc1", "1.0"), Less);
        assert_eq!(version_cmp("1.0^p1", "1.0"), Greater);
        assert_eq!(version_cmp("1.0-1", "1.0"), Greater);
        assert_eq!(version_cmp("001", "1"), Equal);
        assert_eq!(version_cmp("1.a", "1.1"), Less);
        assert_eq!(version_cmp("123-9", "123.1-1"), Less);
        assert_eq!(version_cmp("1.0~rc1", "1.0~rc2"), Less);
        let av = vec![
            ("1.2".to_string(), "a".to_string()),
            ("1.10".into(), "b".into()),
            ("0.9".into(), "c".into()),
        ];
        assert_eq!(pick_newest(&av, None).unwrap().0, "1.10");
        assert_eq!(pick_newest(&av, Some("2")), None);
        let inst = vec!["1".to_string(), "2".into(), "3".into(), "4".into()];
        assert_eq!(prune(&inst, 2, &["1"]), vec!["2".to_string(), "3".into()]);
        assert_eq!(prune(&inst, 4, &[]), Vec::<String>::new());
    }
}
