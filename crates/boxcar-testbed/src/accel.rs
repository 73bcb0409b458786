//! Choosing the accelerator: KVM where it really works, TCG otherwise.
//!
//! An openable `/dev/kvm` is not enough: on nested hosts KVM can run a boot
//! sector yet fail on a Linux kernel ("KVM internal error … emulation
//! failure") and hang. So the first VM of a host boot probes by starting the
//! host kernel under KVM and looking for its banner on the console; the
//! answer is cached per host boot (`/proc/sys/kernel/random/boot_id`).
//! `BOXCAR_TESTBED_ACCEL=kvm|tcg` overrides.

use crate::kernel::HostKernel;
use crate::paths;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Accelerator for QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// The override, the cached probe result, or a new probe.
    pub fn detect() -> Self {
        static CHOICE: OnceLock<Accel> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            match std::env::var("BOXCAR_TESTBED_ACCEL").as_deref() {
                Ok("kvm") => return Accel::Kvm,
                Ok("tcg") => return Accel::Tcg,
                _ => {}
            }
            let kvm = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm");
            if kvm.is_err() {
                return Accel::Tcg;
            }
            let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
            let cache = paths::cache_dir().join(format!("kvm-works-{}", boot_id.trim()));
            if let Ok(v) = std::fs::read_to_string(&cache) {
                return if v.trim() == "yes" { Accel::Kvm } else { Accel::Tcg };
            }
            let works = probe_kvm();
            let _ = std::fs::create_dir_all(paths::cache_dir());
            let _ = std::fs::write(&cache, if works { "yes\n" } else { "no\n" });
            tracing::info!(works, "KVM probe");
            if works {
                Accel::Kvm
            } else {
                Accel::Tcg
            }
        })
    }
}

/// Boots the host kernel under KVM without an initramfs for up to 20 s:
/// KVM works if the kernel banner reaches the serial console.
fn probe_kvm() -> bool {
    let Ok(vmlinux) = HostKernel::find().and_then(|k| k.pvh_vmlinux()) else {
        return false;
    };
    let Ok(dir) = tempfile::tempdir() else { return false };
    let log = dir.path().join("serial.log");
    let child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-machine",
            "pc",
            "-m",
            "256",
            "-nodefaults",
        ])
        .args(["-display", "none", "-no-reboot", "-serial"])
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(&vmlinux)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let start = Instant::now();
    let mut works = false;
    while start.elapsed() < Duration::from_secs(20) {
        if std::fs::read(&log).is_ok_and(|b| b.windows(13).any(|w| w == b"Linux version")) {
            works = true;
            break;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    works
}
