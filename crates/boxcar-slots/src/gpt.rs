//! GPT as bytes: parsing and encoding of the protective MBR, both headers
//! and the partition entry array with their CRC32s. Pure: no I/O, never
//! panics on any input (there is a fuzz target for [`parse_header`] and
//! [`Gpt::from_header_and_entries`]).

use crate::guid::Guid;
use crate::SlotsError;

/// Logical sector size. Boxcar images and the virtual disks it targets use
/// 512-byte sectors; 4Kn disks are refused rather than misread.
pub const SECTOR: u64 = 512;
const SIGNATURE: &[u8; 8] = b"EFI PART";
const REVISION: u32 = 0x0001_0000;
const HEADER_SIZE: u32 = 92;
/// Entry size every tool writes.
pub const ENTRY_SIZE: u32 = 128;
/// Entries in a table we create (16 KiB array, the common default).
pub const DEFAULT_ENTRIES: u32 = 128;
/// Largest entry array we accept from disk, against hostile sizes.
const MAX_ARRAY_BYTES: u64 = 1 << 20;

/// One GPT header, as read or about to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable: u64,
    pub last_usable: u64,
    pub disk_guid: Guid,
    pub entries_lba: u64,
    pub num_entries: u32,
    pub entry_size: u32,
    pub entries_crc: u32,
}

/// One partition entry. `first_lba..=last_lba` are inclusive like on disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub type_guid: Guid,
    pub guid: Guid,
    pub first_lba: u64,
    pub last_lba: u64,
    /// The 64 attribute bits; see [`crate::prio`] for bits 48–56.
    pub attributes: u64,
    /// Partition name (GPT "label"), at most 36 UTF-16 code units.
    pub name: String,
}

impl Entry {
    /// Unused entries have a nil type GUID.
    pub fn is_used(&self) -> bool {
        !self.type_guid.is_nil()
    }

    /// Size in sectors.
    pub fn sectors(&self) -> u64 {
        self.last_lba.saturating_sub(self.first_lba) + 1
    }
}

/// A whole partition table: the facts both copies share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    pub disk_guid: Guid,
    /// Disk size in sectors (the backup header sits in the last one).
    pub total_sectors: u64,
    pub first_usable: u64,
    pub last_usable: u64,
    /// All entry slots, used or not; partition number = index + 1.
    pub entries: Vec<Entry>,
}

/// Reads a little-endian integer at an offset of a slice known to be long enough.
fn le_u32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn le_u64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}
fn guid_at(b: &[u8], o: usize) -> Guid {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[o..o + 16]);
    Guid::from_disk(&a)
}

/// Parses and checks one header sector (signature, size, CRC, own LBA).
pub fn parse_header(sector: &[u8], expected_lba: u64) -> Result<Header, SlotsError> {
    let bad = |why: &str| SlotsError::BadHeader {
        lba: expected_lba,
        why: why.to_string(),
    };
    if sector.len() < SECTOR as usize {
        return Err(bad("short read"));
    }
    if &sector[0..8] != SIGNATURE {
        return Err(bad("no \"EFI PART\" signature"));
    }
    let size = le_u32(sector, 12);
    if !(HEADER_SIZE..=SECTOR as u32).contains(&size) {
        return Err(bad("header size out of range"));
    }
    let mut copy = sector[..size as usize].to_vec();
    copy[16..20].fill(0);
    if crc32fast::hash(&copy) != le_u32(sector, 16) {
        return Err(bad("header CRC32 mismatch"));
    }
    let h = Header {
        my_lba: le_u64(sector, 24),
        alternate_lba: le_u64(sector, 32),
        first_usable: le_u64(sector, 40),
        last_usable: le_u64(sector, 48),
        disk_guid: guid_at(sector, 56),
        entries_lba: le_u64(sector, 72),
        num_entries: le_u32(sector, 80),
        entry_size: le_u32(sector, 84),
        entries_crc: le_u32(sector, 88),
    };
    if h.my_lba != expected_lba {
        return Err(bad("header names another LBA as its own"));
    }
    if h.entry_size < ENTRY_SIZE || h.entry_size % 8 != 0 {
        return Err(bad("entry size unsupported"));
    }
    if h.array_bytes() > MAX_ARRAY_BYTES || h.num_entries == 0 {
        return Err(bad("entry array size out of range"));
    }
    if h.first_usable > h.last_usable {
        return Err(bad("first usable LBA after last usable LBA"));
    }
    Ok(h)
}

impl Header {
    /// Bytes of the entry array this header describes.
    pub fn array_bytes(&self) -> u64 {
        self.num_entries as u64 * self.entry_size as u64
    }

    /// Sectors of the entry array.
    pub fn array_sectors(&self) -> u64 {
        self.array_bytes().div_ceil(SECTOR)
    }

    /// Encodes into one sector with the header CRC filled in.
    pub fn encode(&self) -> [u8; SECTOR as usize] {
        let mut s = [0u8; SECTOR as usize];
        s[0..8].copy_from_slice(SIGNATURE);
        s[8..12].copy_from_slice(&REVISION.to_le_bytes());
        s[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        s[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        s[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        s[40..48].copy_from_slice(&self.first_usable.to_le_bytes());
        s[48..56].copy_from_slice(&self.last_usable.to_le_bytes());
        s[56..72].copy_from_slice(&self.disk_guid.to_disk());
        s[72..80].copy_from_slice(&self.entries_lba.to_le_bytes());
        s[80..84].copy_from_slice(&self.num_entries.to_le_bytes());
        s[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        s[88..92].copy_from_slice(&self.entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&s[..HEADER_SIZE as usize]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        s
    }
}

fn parse_entry(b: &[u8]) -> Entry {
    let units: Vec<u16> = b[56..128]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    Entry {
        type_guid: guid_at(b, 0),
        guid: guid_at(b, 16),
        first_lba: le_u64(b, 32),
        last_lba: le_u64(b, 40),
        attributes: le_u64(b, 48),
        name: String::from_utf16_lossy(&units),
    }
}

fn encode_entry(e: &Entry, out: &mut [u8]) -> Result<(), SlotsError> {
    out[0..16].copy_from_slice(&e.type_guid.to_disk());
    out[16..32].copy_from_slice(&e.guid.to_disk());
    out[32..40].copy_from_slice(&e.first_lba.to_le_bytes());
    out[40..48].copy_from_slice(&e.last_lba.to_le_bytes());
    out[48..56].copy_from_slice(&e.attributes.to_le_bytes());
    let units: Vec<u16> = e.name.encode_utf16().collect();
    if units.len() > 36 {
        return Err(SlotsError::NameTooLong(e.name.clone()));
    }
    for (i, u) in units.iter().enumerate() {
        out[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
    }
    Ok(())
}

impl Gpt {
    /// Builds the table from a checked header and its entry array bytes,
    /// checking the array's CRC32 and that the partitions fit the disk.
    pub fn from_header_and_entries(h: &Header, array: &[u8], total_sectors: u64) -> Result<Gpt, SlotsError> {
        let bad = |why: &str| SlotsError::BadHeader {
            lba: h.my_lba,
            why: why.to_string(),
        };
        if (array.len() as u64) < h.array_bytes() {
            return Err(bad("entry array truncated"));
        }
        let array = &array[..h.array_bytes() as usize];
        if crc32fast::hash(array) != h.entries_crc {
            return Err(bad("entry array CRC32 mismatch"));
        }
        let entries: Vec<Entry> = array.chunks_exact(h.entry_size as usize).map(parse_entry).collect();
        for (i, e) in entries.iter().enumerate().filter(|(_, e)| e.is_used()) {
            if e.first_lba > e.last_lba || e.first_lba < h.first_usable || e.last_lba > h.last_usable {
                return Err(bad(&format!("partition {} outside the usable area", i + 1)));
            }
        }
        Ok(Gpt {
            disk_guid: h.disk_guid,
            total_sectors,
            first_usable: h.first_usable,
            last_usable: h.last_usable,
            entries,
        })
    }

    /// A new empty table for a disk of `total_sectors`, laid out like
    /// sgdisk/cgpt: 128 entries at LBA 2 and before the backup header.
    pub fn new(total_sectors: u64, disk_guid: Guid) -> Result<Gpt, SlotsError> {
        let array = (DEFAULT_ENTRIES as u64 * ENTRY_SIZE as u64).div_ceil(SECTOR);
        if total_sectors < 2 * (array + 2) + 1 {
            return Err(SlotsError::DiskTooSmall(total_sectors));
        }
        Ok(Gpt {
            disk_guid,
            total_sectors,
            first_usable: 2 + array,
            last_usable: total_sectors - 2 - array,
            entries: vec![Entry::default(); DEFAULT_ENTRIES as usize],
        })
    }

    /// Encodes the entry array.
    pub fn encode_entries(&self) -> Result<Vec<u8>, SlotsError> {
        let mut out = vec![0u8; self.entries.len() * ENTRY_SIZE as usize];
        for (e, chunk) in self.entries.iter().zip(out.chunks_exact_mut(ENTRY_SIZE as usize)) {
            encode_entry(e, chunk)?;
        }
        Ok(out)
    }

    /// Both headers for an encoded entry array: (primary, backup).
    pub fn headers(&self, array: &[u8]) -> (Header, Header) {
        let sectors = (array.len() as u64).div_ceil(SECTOR);
        let last = self.total_sectors - 1;
        let primary = Header {
            my_lba: 1,
            alternate_lba: last,
            first_usable: self.first_usable,
            last_usable: self.last_usable,
            disk_guid: self.disk_guid,
            entries_lba: 2,
            num_entries: self.entries.len() as u32,
            entry_size: ENTRY_SIZE,
            entries_crc: crc32fast::hash(array),
        };
        let backup = Header {
            my_lba: last,
            alternate_lba: 1,
            entries_lba: last.saturating_sub(sectors),
            ..primary.clone()
        };
        (primary, backup)
    }

    /// The partition with number `n` (1-based), if used.
    pub fn partition(&self, n: u32) -> Option<&Entry> {
        let e = self.entries.get((n as usize).checked_sub(1)?)?;
        e.is_used().then_some(e)
    }

    /// Mutable access to a used partition `n` (1-based).
    pub fn partition_mut(&mut self, n: u32) -> Result<&mut Entry, SlotsError> {
        let e = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.entries.get_mut(i))
            .ok_or(SlotsError::NoSuchPartition(n))?;
        if !e.is_used() {
            return Err(SlotsError::NoSuchPartition(n));
        }
        Ok(e)
    }

    /// Numbers of used partitions whose name is `label`.
    pub fn find_by_label(&self, label: &str) -> Option<u32> {
        self.entries
            .iter()
            .position(|e| e.is_used() && e.name == label)
            .map(|i| i as u32 + 1)
    }
}

/// The protective MBR for a disk of `total_sectors`.
pub fn protective_mbr(total_sectors: u64) -> [u8; SECTOR as usize] {
    let mut s = [0u8; SECTOR as usize];
    let p = &mut s[446..462];
    p[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    p[4] = 0xee;
    p[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    p[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = total_sectors.saturating_sub(1).min(u32::MAX as u64) as u32;
    p[12..16].copy_from_slice(&size.to_le_bytes());
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}
