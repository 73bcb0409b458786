//! SHA256SUMS in coreutils' format (`<hex>  <name>`, sorted by name), so
//! `sha256sum -c SHA256SUMS` checks a build's outputs.

use crate::error::rd;
use crate::ImageError;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Hex sha256 of a file's content.
pub fn file_sha256(p: &Path) -> Result<String, ImageError> {
    let mut f = std::fs::File::open(p).map_err(rd(p))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(rd(p))?;
    Ok(hex::encode(h.finalize()))
}

/// Renders the file from (name, digest) pairs.
pub fn render(entries: &[(String, String)]) -> String {
    let mut v: Vec<_> = entries.iter().collect();
    v.sort();
    v.iter().map(|(n, d)| format!("{d}  {n}\n")).collect()
}

/// Parses it back: (name, digest) pairs; `None` on a malformed line.
pub fn parse(text: &str) -> Option<Vec<(String, String)>> {
    text.lines()
        .map(|l| {
            let (d, n) = l.split_once("  ")?;
            (d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit())).then(|| (n.to_string(), d.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sorted() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let t = render(&[("z.raw".into(), a.clone()), ("a.efi".into(), b.clone())]);
        assert_eq!(t, format!("{b}  a.efi\n{a}  z.raw\n"));
        assert_eq!(parse(&t).unwrap()[1], ("z.raw".to_string(), a));
        assert!(parse("xyz  f\n").is_none());
    }
}
