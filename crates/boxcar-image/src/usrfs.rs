//! The /usr image and its dm-verity tree. Reproducible: fixed timestamps,
//! a filesystem UUID and a verity salt/UUID derived from the content, so the
//! same tree gives the same bytes and the same root hash. The root hash
//! names the partitions (Discoverable Partitions pairing: the /usr
//! partition's UUID is its first 128 bits, the verity partition's its last
//! 128 bits), so `usrhash=` alone is enough for systemd to find both.

use crate::cmd::run;
use crate::error::rd;
use crate::manifest::UsrFs;
use crate::ImageError;
use boxcar_slots::Guid;
use boxcar_verity::{DataBlocks, Parallelism, Params, RootHash, Salt};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A UUID (version 4 layout) derived from `tag` and `input`: stable for the
/// same input, different for different tags.
pub fn derived_uuid(tag: &str, input: &[u8]) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(tag.as_bytes())
        .chain_update([0])
        .chain_update(input)
        .finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&d[..16]);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// The verity salt for a /usr image with digest `usr_sha256`.
pub fn derived_salt(usr_sha256: &[u8]) -> Salt {
    let d = Sha256::new()
        .chain_update(b"boxcar verity salt v1\0")
        .chain_update(usr_sha256)
        .finalize();
    Salt::new(d.to_vec()).expect("32 bytes is a valid salt")
}

/// DPS pairing rule: (data PARTUUID, verity PARTUUID) from the root hash.
pub fn partuuids_for(root: &RootHash) -> (Guid, Guid) {
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    a.copy_from_slice(&root.0[..16]);
    b.copy_from_slice(&root.0[16..]);
    (Guid(a), Guid(b))
}

/// Builds the /usr filesystem image from `usr_dir`.
pub fn make_usr_image(fs: UsrFs, usr_dir: &Path, out: &Path, mtime: i64, seed: &str) -> Result<(), ImageError> {
    let uuid = boxcar_verity::format_uuid(&derived_uuid("boxcar usr fs", seed.as_bytes()));
    let t = mtime.to_string();
    match fs {
        UsrFs::Erofs => run(
            "mkfs.erofs",
            [
                "--quiet".as_ref(),
                "-zlz4hc".as_ref(),
                format!("-T{t}").as_ref(),
                format!("-U{uuid}").as_ref(),
                out.as_os_str(),
                usr_dir.as_os_str(),
            ],
            &[("SOURCE_DATE_EPOCH", &t)],
        )?,
        UsrFs::Squashfs => run(
            "mksquashfs",
            [
                usr_dir.as_os_str(),
                out.as_os_str(),
                "-noappend".as_ref(),
                "-reproducible".as_ref(),
                "-mkfs-time".as_ref(),
                t.as_ref(),
                "-all-time".as_ref(),
                t.as_ref(),
                "-comp".as_ref(),
                "zstd".as_ref(),
                "-quiet".as_ref(),
            ],
            &[],
        )?,
    };
    pad_to_block(out)
}

/// verity covers whole 4 KiB blocks: pad the image with zeros.
fn pad_to_block(p: &Path) -> Result<(), ImageError> {
    let f = std::fs::OpenOptions::new().write(true).open(p).map_err(rd(p))?;
    let len = f.metadata().map_err(rd(p))?.len();
    let padded = len.div_ceil(4096) * 4096;
    f.set_len(padded).map_err(rd(p))
}

/// What the verity step produced.
#[derive(Debug, Clone)]
pub struct UsrVerity {
    pub usr_sha256: [u8; 32],
    pub salt: Salt,
    pub uuid: [u8; 16],
    pub root: RootHash,
    pub data_blocks: u64,
}

/// Hashes the image and writes its verity tree with derived parameters.
pub fn make_verity(usr: &Path, hash_out: &Path) -> Result<UsrVerity, ImageError> {
    let mut f = std::fs::File::open(usr).map_err(rd(usr))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(rd(usr))?;
    let usr_sha256: [u8; 32] = h.finalize().into();
    let salt = derived_salt(&usr_sha256);
    let uuid = derived_uuid("boxcar verity uuid", &usr_sha256);
    let params = Params {
        salt: salt.clone(),
        uuid,
        data_blocks: DataBlocks::WholeFile,
    };
    let out = boxcar_verity::format_file(usr, hash_out, &params, Parallelism::Auto)?;
    Ok(UsrVerity {
        usr_sha256,
        salt,
        uuid,
        root: out.root,
        data_blocks: out.geometry.data_blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_rule_splits_the_root_hash() {
        let mut r = [0u8; 32];
        for (i, b) in r.iter_mut().enumerate() {
            *b = i as u8;
        }
        let (a, b) = partuuids_for(&RootHash(r));
        assert_eq!(a.to_string(), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(b.to_string(), "10111213-1415-1617-1819-1a1b1c1d1e1f");
    }

    #[test]
    fn derived_values_are_stable_and_distinct() {
        assert_eq!(derived_uuid("a", b"x"), derived_uuid("a", b"x"));
        assert_ne!(derived_uuid("a", b"x"), derived_uuid("b", b"x"));
        assert_eq!(derived_uuid("a", b"x")[6] >> 4, 4);
        assert_ne!(derived_salt(b"1"), derived_salt(b"2"));
    }
}
