//! Parsing of `os-release` / `extension-release` files (systemd env-file syntax).
//!
//! Both files use the same format: `KEY=VALUE` lines, `#` comments, values optionally
//! quoted. The parser is total over its input: anything malformed is an error value,
//! never a panic, because extension images come from untrusted sources.

use std::collections::BTreeMap;

/// Key/value pairs of one release file, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReleaseFields {
    pairs: BTreeMap<String, String>,
}

/// Why a release file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line has no `=`.
    #[error("line {line}: expected KEY=VALUE")]
    MissingEquals {
        /// 1-based line number.
        line: usize,
    },
    /// A key is empty or holds characters other than `[A-Za-z0-9_]`.
    #[error("line {line}: invalid key {key:?}")]
    InvalidKey {
        /// 1-based line number.
        line: usize,
        /// The offending key.
        key: String,
    },
    /// A quoted value is not closed on its line.
    #[error("line {line}: unterminated quote")]
    UnterminatedQuote {
        /// 1-based line number.
        line: usize,
    },
}

impl ReleaseFields {
    /// Parses env-file text. Later assignments of the same key win, as in systemd.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut pairs = BTreeMap::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            let (key, value) = l.split_once('=').ok_or(ParseError::MissingEquals { line })?;
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ParseError::InvalidKey {
                    line,
                    key: key.to_string(),
                });
            }
            pairs.insert(key.to_string(), unquote(value.trim(), line)?);
        }
        Ok(Self { pairs })
    }

    /// The value of `key`, if present and non-empty (systemd treats empty as unset).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// True when the file carried no assignment at all ("carries no extension-release data").
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// All pairs, for display.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn unquote(v: &str, line: usize) -> Result<String, ParseError> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next() {
                    None => return Err(ParseError::UnterminatedQuote { line }),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        None => return Err(ParseError::UnterminatedQuote { line }),
                        Some(e @ ('"' | '\\' | '`' | '$')) => out.push(e),
                        Some(e) => {
                            out.push('\\');
                            out.push(e);
                        }
                    },
                    Some(o) => out.push(o),
                }
            },
            '\'' => loop {
                match chars.next() {
                    None => return Err(ParseError::UnterminatedQuote { line }),
                    Some('\'') => break,
                    Some(o) => out.push(o),
                }
            },
            '\\' => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            o => out.push(o),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_comments_and_overrides() {
        let f = ReleaseFields::parse(
            "# comment\nID=flatcar\nNAME=\"Flatcar Container Linux\"\nX='a b'\nE=\"q\\\"x\"\nID=boxcar\n\nEMPTY=\n",
        )
        .unwrap();
        assert_eq!(f.get("ID"), Some("boxcar"));
        assert_eq!(f.get("NAME"), Some("Flatcar Container Linux"));
        assert_eq!(f.get("X"), Some("a b"));
        assert_eq!(f.get("E"), Some("q\"x"));
        assert_eq!(f.get("EMPTY"), None);
        assert!(!f.is_empty());
    }

    #[test]
    fn rejects_malformed_lines() {
        assert_eq!(
            ReleaseFields::parse("ID").unwrap_err(),
            ParseError::MissingEquals { line: 1 }
        );
        assert!(matches!(
            ReleaseFields::parse("\nA-B=1").unwrap_err(),
            ParseError::InvalidKey { line: 2, .. }
        ));
        assert_eq!(
            ReleaseFields::parse("A=\"x").unwrap_err(),
            ParseError::UnterminatedQuote { line: 1 }
        );
        assert!(ReleaseFields::parse("").unwrap().is_empty());
    }
}
