//! What the running system tells about itself: its version (os-release),
//! the /usr root hash it booted with (`usrhash=` on the kernel command
//! line) and so which slot it booted. Pure parsers plus thin file reads.
//!
//! Slot identity follows the Discoverable Partitions pairing rule: the USR
//! partition's unique GUID is the first 128 bits of the verity root hash,
//! the USR-VERITY partition's the last 128 bits. So the booted slot is the
//! USR partition whose GUID matches the booted `usrhash=`.

use boxcar_slots::layout::{find_slot, types};
use boxcar_slots::{Gpt, Guid, Slot};

/// `VERSION_ID` from os-release text (quotes removed).
pub fn version_id(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|l| {
        let v = l.trim().strip_prefix("VERSION_ID=")?;
        let v = v.trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// The 32-byte root hash of `usrhash=<64 hex>` on a kernel command line.
pub fn usrhash(cmdline: &str) -> Option<[u8; 32]> {
    let v = cmdline
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("usrhash="))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(v, &mut out).ok()?;
    Some(out)
}

/// The partition GUIDs a slot holding /usr with `root` must carry:
/// (USR, USR-VERITY).
pub fn slot_guids(root: &[u8; 32]) -> (Guid, Guid) {
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    a.copy_from_slice(&root[..16]);
    b.copy_from_slice(&root[16..]);
    (Guid(a), Guid(b))
}

/// The slot whose USR partition carries the GUID derived from `root`.
pub fn booted_slot(gpt: &Gpt, root: &[u8; 32]) -> Option<Slot> {
    let (usr, _) = slot_guids(root);
    [Slot::A, Slot::B].into_iter().find(|&s| {
        find_slot(gpt, s)
            .ok()
            .and_then(|p| gpt.partition(p.usr))
            .is_some_and(|e| e.guid == usr && e.type_guid == types::USR_X86_64)
    })
}

/// The PARTUUID text of the USR partition for `root`, as udev names it in
/// `/dev/disk/by-partuuid/` and as systemd-veritysetup-generator looks it up:
/// the first 128 bits of the root hash in UUID form (8-4-4-4-12 hex digits).
pub fn usr_partuuid(root: &[u8; 32]) -> String {
    let h = hex::encode(&root[..16]);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The whole-disk device holding the booted USR partition: the kernel name of
/// `/dev/disk/by-partuuid/<usr_partuuid>` resolved, then its parent in
/// `/sys/class/block` (`vda2` → `vda`). So the agent needs no disk name in its
/// configuration: the image may be attached as virtio, SCSI or NVMe.
pub fn disk_of_booted_usr(root: &[u8; 32]) -> std::io::Result<std::path::PathBuf> {
    use std::io::{Error, ErrorKind};
    let link = std::path::Path::new("/dev/disk/by-partuuid").join(usr_partuuid(root));
    let part = std::fs::canonicalize(&link).map_err(|e| Error::new(e.kind(), format!("{}: {e}", link.display())))?;
    let name = part
        .file_name()
        .ok_or_else(|| Error::new(ErrorKind::InvalidData, format!("{}: no device name", part.display())))?;
    let sys = std::fs::canonicalize(std::path::Path::new("/sys/class/block").join(name))?;
    if !sys.join("partition").exists() {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("{} is not a partition", part.display()),
        ));
    }
    let parent = sys
        .parent()
        .and_then(|p| p.file_name())
        .ok_or_else(|| Error::new(ErrorKind::InvalidData, format!("{}: no parent disk", sys.display())))?;
    Ok(std::path::Path::new("/dev").join(parent))
}

/// A partition's byte range on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
}

/// The byte extent of partition `n`.
pub fn extent(gpt: &Gpt, n: u32) -> Option<Extent> {
    let e = gpt.partition(n)?;
    Some(Extent {
        offset: e.first_lba.checked_mul(boxcar_slots::gpt::SECTOR)?,
        len: e.sectors().checked_mul(boxcar_slots::gpt::SECTOR)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usr_partuuid_is_the_first_half_of_the_root_hash_in_uuid_form() {
        let mut root = [0u8; 32];
        for (i, b) in root.iter_mut().enumerate() {
            *b = i as u8;
        }
        // 00 01 02 03 | 04 05 | 06 07 | 08 09 | 0a..0f; the second half is not used.
        assert_eq!(usr_partuuid(&root), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }

    #[test]
    fn parses_version_and_usrhash() {
        let osr = "NAME=Boxcar\nVERSION_ID=\"4800.1.0\"\nID=boxcar\n";
        assert_eq!(version_id(osr).as_deref(), Some("4800.1.0"));
        assert_eq!(version_id("VERSION_ID=1.2\n").as_deref(), Some("1.2"));
        assert_eq!(version_id("NAME=x\n"), None);
        let h = "00112233445566778899aabbccddeeff".repeat(2);
        let cmd = format!("BOOT_IMAGE=x mount.usr=/dev/mapper/usr usrhash={h} rw");
        let root = usrhash(&cmd).unwrap();
        assert_eq!(root[0], 0x00);
        assert_eq!(root[31], 0xff);
        let (u, v) = slot_guids(&root);
        // The textual GUID is the hex of the hash halves in order.
        assert_eq!(u.to_string(), "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(v.to_string(), "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(usrhash("usrhash=abc"), None);
        assert_eq!(usrhash("quiet"), None);
        assert_eq!(usrhash(&format!("usrhash={}", "zz".repeat(32))), None);
    }
}
