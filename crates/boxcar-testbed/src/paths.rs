//! Where the test bed keeps its cache (extracted kernels) and the artefacts
//! of failed runs.
//!
//! Both live under Cargo's target directory so `cargo clean` removes them
//! and CI can upload `target/test-artefacts/` as a whole.

use std::path::{Path, PathBuf};

/// The Cargo target directory: `$CARGO_TARGET_DIR`, else derived from the
/// running test binary (`<target>/debug/deps/<test>-<hash>`), else `./target`.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| target_from_exe(&exe))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// `<target>/debug/deps/x` → `<target>`; `None` when the layout differs.
fn target_from_exe(exe: &Path) -> Option<PathBuf> {
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.parent()?.to_path_buf())
}

/// Cache for derived inputs (the PVH vmlinux): `$BOXCAR_TESTBED_CACHE` or
/// `<target>/testbed-cache`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BOXCAR_TESTBED_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("testbed-cache"))
}

/// Where one test's failed-run logs are kept:
/// `<target>/test-artefacts/testbed/<test>/`.
pub fn artefact_dir(test: &str) -> PathBuf {
    target_dir().join("test-artefacts").join("testbed").join(sanitize(test))
}

/// Test names become directory names: anything but `[A-Za-z0-9._-]` → `_`.
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_from_test_binary_path() {
        let t = target_from_exe(Path::new("/x/target/debug/deps/pvh-0123abcd")).unwrap();
        assert_eq!(t, Path::new("/x/target"));
        assert_eq!(target_from_exe(Path::new("/usr/bin/qemu")), None);
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize("pvh::boots/a b"), "pvh__boots_a_b");
        assert_eq!(sanitize(".."), "_..");
        assert_eq!(sanitize(""), "_");
    }
}
