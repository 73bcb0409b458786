//! Shared pieces of the test-bed tests: the host kernel, a PVH boot and a
//! nonce so every run checks values it could not have hard-coded.

#![allow(dead_code)]

use boxcar_testbed::{Boot, HostKernel};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

/// Generous per-boot timeouts: TCG, two cores shared with other jobs.
pub const PVH_TIMEOUT: Duration = Duration::from_secs(120);
pub const UEFI_TIMEOUT: Duration = Duration::from_secs(240);

pub fn kernel() -> HostKernel {
    HostKernel::find().expect("host kernel (linux-image-amd64 from scripts/setup.sh)")
}

/// Direct PVH boot of the extracted vmlinux with `initrd`.
pub fn pvh(kernel: &HostKernel, initrd: &Path, extra_append: &str) -> Boot {
    Boot::Direct {
        kernel: kernel.pvh_vmlinux().expect("extract vmlinux"),
        initrd: Some(initrd.to_path_buf()),
        append: format!("console=ttyS0 quiet panic=-1 mitigations=off {extra_append}"),
    }
}

/// 16 random hex digits from /dev/urandom.
pub fn nonce() -> String {
    let mut b = [0u8; 8];
    use std::io::Read;
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut b).unwrap();
    hex::encode(b)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Value after `key=` in a marker line, e.g. `field(line, "sha")`.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}
