//! Layer order of the read-only overlays: pure, testable without mounting.
//!
//! For each hierarchy (`/usr`, `/opt`) systemd 252 stacks, top to bottom: the meta layer
//! (`.systemd-sysext/{extensions,dev}`), the extensions in reverse name order (so the
//! alphabetically last one wins a conflicting path), then the host's own hierarchy unless it
//! is missing or empty. Extensions whose copy of the hierarchy is missing or empty are left
//! out, and a hierarchy no extension contributes to is not mounted at all.

use std::path::{Path, PathBuf};

/// Hierarchies merged by systemd 252, relative to the root.
pub const HIERARCHIES: &[&str] = &["usr", "opt"];

/// What a tree has at one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HierarchyState {
    /// The directory does not exist.
    Missing,
    /// The directory exists and is empty.
    Empty,
    /// The directory exists and has entries.
    Populated(PathBuf),
}

impl HierarchyState {
    /// Probes `path` (I/O).
    pub fn probe(path: &Path) -> Self {
        match std::fs::read_dir(path) {
            Ok(mut rd) => {
                if rd.next().is_some() {
                    HierarchyState::Populated(path.to_path_buf())
                } else {
                    HierarchyState::Empty
                }
            }
            Err(_) => HierarchyState::Missing,
        }
    }
}

/// Computes the overlay layers, top first; `None` when nothing is to be mounted.
/// `extensions` must be sorted by name.
pub fn plan_layers(
    meta: &Path,
    extensions: &[(String, HierarchyState)],
    host: &HierarchyState,
) -> Option<Vec<PathBuf>> {
    let mut layers = vec![meta.to_path_buf()];
    for (_, st) in extensions.iter().rev() {
        if let HierarchyState::Populated(p) = st {
            layers.push(p.clone());
        }
    }
    if layers.len() == 1 {
        return None;
    }
    if let HierarchyState::Populated(p) = host {
        layers.push(p.clone());
    }
    Some(layers)
}

/// Builds the overlayfs `lowerdir=` value, escaping `\`, `,` and `:` as systemd does.
pub fn lowerdir_option(layers: &[PathBuf]) -> String {
    let mut s = String::from("lowerdir=");
    for (i, l) in layers.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        for c in l.to_string_lossy().chars() {
            if matches!(c, '\\' | ',' | ':') {
                s.push('\\');
            }
            s.push(c);
        }
    }
    s
}

/// Content of `.systemd-sysext/extensions`: merged names, sorted, one per line.
pub fn extensions_file(names: &[String]) -> String {
    let mut sorted = names.to_vec();
    sorted.sort();
    let mut s = sorted.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HierarchyState {
        HierarchyState::Populated(s.into())
    }

    #[test]
    fn worked_example() {
        let exts = vec![
            ("a".to_string(), p("/w/a/usr")),
            ("b".to_string(), HierarchyState::Empty),
            ("c".to_string(), p("/w/c/usr")),
        ];
        let l = plan_layers(Path::new("/w/meta/usr"), &exts, &p("/root/usr")).unwrap();
        assert_eq!(
            l,
            vec![
                PathBuf::from("/w/meta/usr"),
                "/w/c/usr".into(),
                "/w/a/usr".into(),
                "/root/usr".into()
            ]
        );
        assert_eq!(lowerdir_option(&l), "lowerdir=/w/meta/usr:/w/c/usr:/w/a/usr:/root/usr");
        // Empty host /opt is not a layer; no contribution, no mount.
        let l = plan_layers(Path::new("/m"), &[("a".into(), p("/w/a/opt"))], &HierarchyState::Empty).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            plan_layers(Path::new("/m"), &[("a".into(), HierarchyState::Missing)], &p("/o")),
            None
        );
    }

    #[test]
    fn escaping_and_meta_file() {
        assert_eq!(lowerdir_option(&["/a:b,c\\d".into()]), "lowerdir=/a\\:b\\,c\\\\d");
        assert_eq!(extensions_file(&["b".into(), "a".into()]), "a\nb\n");
    }
}
