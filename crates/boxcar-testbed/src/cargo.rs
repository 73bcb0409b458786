//! Building a workspace binary for a guest (e.g. boxcar-provision for a
//! test initramfs) from inside a running test.
//!
//! Cargo holds the target directory's lock while `cargo test` runs, so the
//! build goes to a separate target directory, `<target>/testbed-guest`;
//! later runs only relink what changed.

use crate::error::{Result, TestbedError};
use crate::{paths, tool};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `bin` of `package` in the workspace of `manifest` (release
/// profile) and returns the executable's path.
///
/// Release, because these binaries run inside emulated guests and build the
/// images: a debug `boxcar-updated` took 6.6 minutes to download and write a
/// 260 MB payload under TCG, and debug zstd/erofs work made image builds slow.
pub fn build_bin(manifest: &Path, package: &str, bin: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = paths::target_dir().join("testbed-guest");
    tool::run(
        Command::new(cargo)
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                package,
                "--bin",
                bin,
                "--manifest-path",
            ])
            .arg(manifest)
            .env("CARGO_TARGET_DIR", &target),
    )?;
    let exe = target.join("release").join(bin);
    if !exe.is_file() {
        return Err(TestbedError::Missing {
            path: exe,
            hint: "cargo build reported success but left no binary",
        });
    }
    Ok(exe)
}
