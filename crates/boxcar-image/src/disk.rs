//! The GPT disk image of design.md, assembled in Rust: the table from
//! `boxcar_slots::layout`, partition GUIDs fixed by the build (the /usr
//! pair by the root hash, the others derived from it), and each partition
//! image copied to its offset. The file stays sparse where nothing is
//! written; no loop device, no mount.

use crate::error::{rd, wr};
use crate::manifest::Disk;
use crate::usrfs::derived_uuid;
use crate::ImageError;
use boxcar_slots::gpt::SECTOR;
use boxcar_slots::layout::{boxcar_layout, Sizes};
use boxcar_slots::{Gpt, Guid, Mbr};
use std::io::{Seek, SeekFrom};
use std::path::Path;

/// Partition images to place, by GPT label; absent partitions stay empty.
pub struct Contents<'a> {
    pub esp: &'a Path,
    pub usr: &'a Path,
    pub verity: &'a Path,
    pub oem: &'a Path,
    pub root: &'a Path,
}

/// The table for `disk`: design.md's layout with the /usr pair named by
/// `usr_guid`/`verity_guid` and the rest derived from `seed`.
pub fn table(disk: &Disk, usr_guid: Guid, verity_guid: Guid, seed: &[u8]) -> Result<Gpt, ImageError> {
    let sizes = Sizes {
        esp_mib: disk.esp_mib,
        usr_mib: disk.usr_mib,
        verity_mib: disk.verity_mib,
        oem_mib: disk.oem_mib,
    };
    let total = disk.size_mib * (1 << 20) / SECTOR;
    let mut n = 0u8;
    let mut gpt = boxcar_layout(total, sizes, Guid(derived_uuid("boxcar disk", seed)), || {
        n += 1;
        Guid(derived_uuid(&format!("boxcar partition {n}"), seed))
    })?;
    for e in gpt.entries.iter_mut() {
        match e.name.as_str() {
            "USR-A" => e.guid = usr_guid,
            "USR-A-VERITY" => e.guid = verity_guid,
            _ => {}
        }
    }
    Ok(gpt)
}

/// Writes the disk image at `out` (created or truncated).
pub fn assemble(gpt: &Gpt, c: &Contents, out: &Path) -> Result<(), ImageError> {
    let f = std::fs::File::create(out).map_err(wr(out))?;
    f.set_len(gpt.total_sectors * SECTOR).map_err(wr(out))?;
    let place = |label: &str, img: &Path| -> Result<(), ImageError> {
        let n = gpt
            .find_by_label(label)
            .ok_or_else(|| ImageError::Disk(format!("layout has no partition {label}")))?;
        let e = gpt.partition(n).expect("found by label");
        let len = std::fs::metadata(img).map_err(rd(img))?.len();
        let room = e.sectors() * SECTOR;
        if len > room {
            return Err(ImageError::Disk(format!(
                "{} ({len} bytes) does not fit in {label} ({room} bytes); raise the size in the manifest's [disk]",
                img.display()
            )));
        }
        let mut src = std::fs::File::open(img).map_err(rd(img))?;
        let mut dst = &f;
        dst.seek(SeekFrom::Start(e.first_lba * SECTOR)).map_err(wr(out))?;
        std::io::copy(&mut src, &mut dst).map_err(wr(out))?;
        Ok(())
    };
    place("EFI-SYSTEM", c.esp)?;
    place("USR-A", c.usr)?;
    place("USR-A-VERITY", c.verity)?;
    place("OEM", c.oem)?;
    place("ROOT", c.root)?;
    f.sync_all().map_err(wr(out))?;
    drop(f);
    boxcar_slots::write(out, gpt, Mbr::Protective)?;
    Ok(())
}
