//! GPT on image files and block devices through one file API: positional
//! reads and writes, disk size by seeking to the end (block devices report
//! a zero length in their metadata).

use crate::gpt::{parse_header, protective_mbr, Gpt, Header, SECTOR};
use crate::SlotsError;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Which copy of the table a read used, and what was wrong with the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Both copies valid.
    Both,
    /// Only the primary is valid; the reason the backup is not.
    PrimaryOnly(String),
    /// Only the backup is valid (the table needs repair before booting
    /// firmware that trusts the primary); the reason the primary is not.
    BackupOnly(String),
}

/// A table read from disk, with the health of its two copies.
#[derive(Debug, Clone)]
pub struct ReadTable {
    pub gpt: Gpt,
    pub health: Health,
}

fn disk_sectors(f: &mut File, path: &Path) -> Result<u64, SlotsError> {
    let size = f.seek(SeekFrom::End(0)).map_err(|source| SlotsError::Read {
        path: path.into(),
        source,
    })?;
    Ok(size / SECTOR)
}

fn read_copy(f: &File, path: &Path, lba: u64, total: u64) -> Result<Gpt, SlotsError> {
    let rerr = |source| SlotsError::Read {
        path: path.into(),
        source,
    };
    let mut sector = vec![0u8; SECTOR as usize];
    f.read_exact_at(&mut sector, lba * SECTOR).map_err(rerr)?;
    let h: Header = parse_header(&sector, lba)?;
    if h.entries_lba.saturating_add(h.array_sectors()) > total {
        return Err(SlotsError::BadHeader {
            lba,
            why: "entry array beyond the end of the disk".into(),
        });
    }
    let mut array = vec![0u8; h.array_bytes() as usize];
    f.read_exact_at(&mut array, h.entries_lba * SECTOR).map_err(rerr)?;
    Gpt::from_header_and_entries(&h, &array, total)
}

/// Reads the table from an image file or block device, preferring the
/// primary copy and falling back to the backup like cgpt and GRUB do.
pub fn read(path: &Path) -> Result<ReadTable, SlotsError> {
    let mut f = File::open(path).map_err(|source| SlotsError::Read {
        path: path.into(),
        source,
    })?;
    let total = disk_sectors(&mut f, path)?;
    if total < 3 {
        return Err(SlotsError::DiskTooSmall(total));
    }
    let primary = read_copy(&f, path, 1, total);
    let backup = read_copy(&f, path, total - 1, total);
    match (primary, backup) {
        (Ok(p), Ok(_)) => Ok(ReadTable {
            gpt: p,
            health: Health::Both,
        }),
        (Ok(p), Err(e)) => Ok(ReadTable {
            gpt: p,
            health: Health::PrimaryOnly(e.to_string()),
        }),
        (Err(e), Ok(b)) => Ok(ReadTable {
            gpt: b,
            health: Health::BackupOnly(e.to_string()),
        }),
        (Err(p), Err(b)) => Err(SlotsError::NoValidTable {
            path: path.into(),
            primary: p.to_string(),
            backup: b.to_string(),
        }),
    }
}

/// Whether [`write`] also writes the protective MBR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mbr {
    /// Leave sector 0 alone (updating an existing table).
    Keep,
    /// Write a protective MBR (creating a new disk).
    Protective,
}

/// Writes both copies of the table (arrays before headers, backup before
/// primary, with a sync in between) so that a crash leaves at least one
/// valid copy for [`read`] to fall back to.
pub fn write(path: &Path, gpt: &Gpt, mbr: Mbr) -> Result<(), SlotsError> {
    let werr = |source| SlotsError::Write {
        path: path.into(),
        source,
    };
    let mut f = OpenOptions::new().write(true).read(true).open(path).map_err(werr)?;
    let total = disk_sectors(&mut f, path)?;
    if total != gpt.total_sectors {
        return Err(SlotsError::SizeChanged {
            path: path.into(),
            table: gpt.total_sectors,
            disk: total,
        });
    }
    let array = gpt.encode_entries()?;
    let (primary, backup) = gpt.headers(&array);
    f.write_all_at(&array, backup.entries_lba * SECTOR).map_err(werr)?;
    f.write_all_at(&backup.encode(), backup.my_lba * SECTOR).map_err(werr)?;
    f.sync_data().map_err(werr)?;
    if mbr == Mbr::Protective {
        f.write_all_at(&protective_mbr(total), 0).map_err(werr)?;
    }
    f.write_all_at(&array, primary.entries_lba * SECTOR).map_err(werr)?;
    f.write_all_at(&primary.encode(), SECTOR).map_err(werr)?;
    f.sync_data().map_err(werr)?;
    tracing::debug!(path = %path.display(), "wrote both GPT copies");
    Ok(())
}
