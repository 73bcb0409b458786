//! `SHA256SUMS` files (`sha256sum` output): the integrity anchor of downloads and builds.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// One line: lowercase hex digest and file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumEntry {
    /// 64 lowercase hex characters.
    pub sha256: String,
    /// File name (no directories).
    pub name: String,
}

/// A malformed `SHA256SUMS` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SHA256SUMS line {line}: {what}")]
pub struct SumsError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: &'static str,
}

/// Parses `SHA256SUMS`. Accepts text (`  `) and binary (` *`) markers; rejects anything
/// else, since a sloppy parser here would let a tampered list through.
pub fn parse(text: &str) -> Result<Vec<SumEntry>, SumsError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let (hash, rest) = l.split_at_checked(64).ok_or(SumsError {
            line,
            what: "line too short",
        })?;
        if !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(SumsError {
                line,
                what: "digest is not 64 lowercase hex digits",
            });
        }
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or(SumsError {
                line,
                what: "expected two spaces after the digest",
            })?;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(SumsError {
                line,
                what: "invalid file name",
            });
        }
        out.push(SumEntry {
            sha256: hash.to_string(),
            name: name.to_string(),
        });
    }
    Ok(out)
}

/// Formats one line as `sha256sum` does.
pub fn line(sha256: &str, name: &str) -> String {
    format!("{sha256}  {name}\n")
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Replaces or appends the line for `name` in the text of a `SHA256SUMS` file, keeping
/// lines sorted by name so the file itself is reproducible.
pub fn upsert(existing: &str, sha256: &str, name: &str) -> Result<String, SumsError> {
    let mut entries: Vec<SumEntry> = parse(existing)?.into_iter().filter(|e| e.name != name).collect();
    entries.push(SumEntry {
        sha256: sha256.into(),
        name: name.into(),
    });
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries.iter().map(|e| line(&e.sha256, &e.name)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_and_upsert() {
        let t = format!("{H}  a.raw\n{H} *b.raw\n");
        let e = parse(&t).unwrap();
        assert_eq!(e[1].name, "b.raw");
        assert_eq!(parse(&format!("{H} a.raw")).unwrap_err().line, 1);
        assert!(parse(&format!("{}  a", H.to_uppercase())).is_err());
        assert!(parse(&format!("{H}  ../a")).is_err());
        assert!(parse("short").is_err());
        let u = upsert(&t, &"0".repeat(64), "a.raw").unwrap();
        assert_eq!(u, format!("{}  a.raw\n{H}  b.raw\n", "0".repeat(64)));
    }

    #[test]
    fn hashes_files() {
        let t = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(sha256_file(t.path()).unwrap(), H);
    }
}
