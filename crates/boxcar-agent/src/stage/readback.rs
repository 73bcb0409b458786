//! The read-back before the commit: what is on the device, not what was
//! sent to it, must match the signed manifest.

use super::engine::Target;
use super::errors::{self, code, fail};
use super::sink::drop_cache;
use super::system::Extent;
use super::SlotStager;
use crate::StageFailure;
use boxcar_payload::{Manifest, Sha256State};
use boxcar_slots::bootent;
use std::os::unix::fs::FileExt;

const READ_BUF: usize = 1 << 20;

impl SlotStager {
    /// Reads the written slot back from the device (page cache dropped)
    /// and checks it against the verity tree and the signed root hash, the
    /// verity area's and the UKI staging file's bytes against their digests.
    pub(super) fn read_back(
        &self,
        t: &Target,
        m: &Manifest,
        root: &boxcar_verity::RootHash,
        version: &str,
    ) -> Result<(), StageFailure> {
        let disk_path = &self.config.disk;
        let disk = std::fs::File::open(disk_path)
            .map_err(|e| errors::io(code::NEW_ROOTFS_VERIFICATION, "opening", disk_path, e))?;
        drop_cache(&disk, t.usr.offset, m.usr.size);
        drop_cache(&disk, t.verity.offset, m.verity.size);
        let region = |e: Extent, len| boxcar_verity::Region {
            path: disk_path,
            offset: e.offset,
            len: Some(len),
        };
        boxcar_verity::verify_regions(
            region(t.usr, m.usr.size),
            region(t.verity, m.verity.size),
            root,
            boxcar_verity::Parallelism::Auto,
        )
        .map_err(|e| {
            fail(
                code::NEW_ROOTFS_VERIFICATION,
                format!(
                    "read-back of {} / {} on {}: {e}",
                    t.passive.usr_label(),
                    t.passive.verity_label(),
                    disk_path.display()
                ),
            )
        })?;
        let verity_sha = sha256_range(&disk, t.verity.offset, m.verity.size)
            .map_err(|e| errors::io(code::NEW_ROOTFS_VERIFICATION, "reading back", disk_path, e))?;
        if verity_sha != m.verity.sha256 {
            return Err(fail(
                code::NEW_ROOTFS_VERIFICATION,
                format!(
                    "read-back of {}: sha256 {verity_sha}, manifest {}",
                    t.passive.verity_label(),
                    m.verity.sha256
                ),
            ));
        }
        let staging = bootent::staging_path(&self.config.esp, version);
        let uki = match std::fs::File::open(&staging) {
            Ok(f) => Some(f),
            // Already renamed into place by an earlier run: check the entry.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(errors::io(code::NEW_KERNEL_VERIFICATION, "opening", &staging, e)),
        };
        let (uki, uki_path) = match uki {
            Some(f) => (f, staging),
            None => {
                let found = bootent::list(&self.config.esp)
                    .map_err(|e| errors::slots("listing boot entries", e))?
                    .into_iter()
                    .find(|f| f.name.version == version)
                    .ok_or_else(|| {
                        fail(
                            code::NEW_KERNEL_VERIFICATION,
                            format!("neither {} nor an entry for {version} exists", staging.display()),
                        )
                    })?;
                let f = std::fs::File::open(&found.path)
                    .map_err(|e| errors::io(code::NEW_KERNEL_VERIFICATION, "opening", &found.path, e))?;
                (f, found.path)
            }
        };
        let len = uki
            .metadata()
            .map_err(|e| errors::io(code::NEW_KERNEL_VERIFICATION, "reading", &uki_path, e))?
            .len();
        drop_cache(&uki, 0, len);
        let uki_sha = sha256_range(&uki, 0, len)
            .map_err(|e| errors::io(code::NEW_KERNEL_VERIFICATION, "reading back", &uki_path, e))?;
        if len != m.uki.size || uki_sha != m.uki.sha256 {
            return Err(fail(
                code::NEW_KERNEL_VERIFICATION,
                format!(
                    "read-back of {}: {len} bytes sha256 {uki_sha}, manifest {} bytes {}",
                    uki_path.display(),
                    m.uki.size,
                    m.uki.sha256
                ),
            ));
        }
        tracing::info!(slot = t.passive.usr_label(), "read-back verified");
        Ok(())
    }
}

/// sha256 (hex) of `len` bytes of `f` from `offset`.
fn sha256_range(f: &std::fs::File, offset: u64, len: u64) -> std::io::Result<String> {
    let mut h = Sha256State::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(READ_BUF as u64) as usize;
        f.read_exact_at(&mut buf[..n], offset + done)?;
        h.update(&buf[..n]);
        done += n as u64;
    }
    Ok(h.finalize_hex())
}
