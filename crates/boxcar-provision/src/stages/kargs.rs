//! `kernelArguments`: handed to a pluggable helper, because changing the
//! kernel command line is the bootloader's business (UKI, GRUB, BLS).

use crate::error::ApplyError;
use boxcar_config::model::KernelArguments;
use std::path::PathBuf;
use std::process::Command;

/// Applies kernel argument changes. Implementations must arrange a reboot
/// when the command line changed, as Ignition's distro helpers do.
pub trait KargsHelper {
    /// A short name for logs and the dry-run plan.
    fn name(&self) -> String;
    /// Make `should_exist` present and `should_not_exist` absent.
    fn apply(&self, kargs: &KernelArguments) -> Result<(), ApplyError>;
}

/// The default on a build without bootloader integration: a config that
/// asks for kernel arguments fails with a clear message.
#[derive(Debug, Default)]
pub struct KargsNotAvailable;

impl KargsHelper for KargsNotAvailable {
    fn name(&self) -> String {
        "none".into()
    }
    fn apply(&self, _: &KernelArguments) -> Result<(), ApplyError> {
        Err(ApplyError::Kargs(
            "changing kernel arguments is not available on this platform (no kargs helper configured; \
             pass --kargs-helper PROGRAM)"
                .into(),
        ))
    }
}

/// Runs an external program with Ignition's helper interface:
/// `PROGRAM --should-exist a=b … --should-not-exist quiet …`.
#[derive(Debug)]
pub struct KargsCommand {
    pub program: PathBuf,
}

/// The argument vector Ignition passes to `ignition-kargs-helper`.
pub fn helper_args(k: &KernelArguments) -> Vec<String> {
    let mut args = Vec::new();
    for a in &k.should_exist {
        args.extend(["--should-exist".to_string(), a.clone()]);
    }
    for a in &k.should_not_exist {
        args.extend(["--should-not-exist".to_string(), a.clone()]);
    }
    args
}

impl KargsHelper for KargsCommand {
    fn name(&self) -> String {
        self.program.display().to_string()
    }
    fn apply(&self, k: &KernelArguments) -> Result<(), ApplyError> {
        let out = Command::new(&self.program)
            .args(helper_args(k))
            .output()
            .map_err(|source| ApplyError::Spawn {
                tool: self.name(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ApplyError::Kargs(format!(
                "{} failed ({}): {}",
                self.name(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_like_ignition() {
        let k = KernelArguments {
            should_exist: vec!["foo=bar".into()],
            should_not_exist: vec!["quiet".into()],
        };
        assert_eq!(
            helper_args(&k),
            ["--should-exist", "foo=bar", "--should-not-exist", "quiet"]
        );
    }
}
