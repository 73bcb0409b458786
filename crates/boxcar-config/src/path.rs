//! JSON paths as Ignition prints them: `$.storage.files.0.path`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the config root to one value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Path(Vec<Seg>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }

    pub fn key(&self, k: &str) -> Path {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        Path(v)
    }

    pub fn index(&self, i: usize) -> Path {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Path(v)
    }

    /// Append several segments: `p.join(&["storage", "files"])`.
    pub fn keys(&self, ks: &[&str]) -> Path {
        ks.iter().fold(self.clone(), |p, k| p.key(k))
    }

    pub fn segments(&self) -> &[Seg] {
        &self.0
    }

    pub fn from_segments(segs: Vec<Seg>) -> Path {
        Path(segs)
    }

    pub fn starts_with(&self, other: &Path) -> bool {
        self.0.starts_with(&other.0)
    }

    /// The same path with camelCase keys turned into Butane's snake_case.
    pub fn to_snake(&self) -> Path {
        Path(
            self.0
                .iter()
                .map(|s| match s {
                    Seg::Key(k) => Seg::Key(snake_case(k)),
                    Seg::Index(i) => Seg::Index(*i),
                })
                .collect(),
        )
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for s in &self.0 {
            match s {
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, ".{i}")?,
            }
        }
        Ok(())
    }
}

/// camelCase → snake_case with Butane's rule: `MiB` is one word, every other
/// capital starts a word (`sizeMiB` → `size_mib`, `typeGuid` → `type_guid`).
pub fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("MiB") {
            out.push_str("_mib");
            rest = after;
            continue;
        }
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// snake_case → camelCase, the inverse of [`snake_case`] (`size_mib` → `sizeMiB`).
pub fn camel_case(s: &str) -> String {
    let (base, mib) = match s.strip_suffix("_mib") {
        Some(b) => (b, true),
        None => (s, false),
    };
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in base.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if mib {
        out.push_str("MiB");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_ignition() {
        let p = Path::root().keys(&["storage", "files"]).index(2).key("path");
        assert_eq!(p.to_string(), "$.storage.files.2.path");
        assert_eq!(Path::root().to_string(), "$");
    }

    #[test]
    fn case_conversion_round_trips() {
        for (camel, snake) in [
            ("sizeMiB", "size_mib"),
            ("startMiB", "start_mib"),
            ("typeGuid", "type_guid"),
            ("sshAuthorizedKeys", "ssh_authorized_keys"),
            ("httpResponseHeaders", "http_response_headers"),
            ("path", "path"),
        ] {
            assert_eq!(snake_case(camel), snake);
            assert_eq!(camel_case(snake), camel);
        }
    }
}
