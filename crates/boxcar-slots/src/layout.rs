//! The Boxcar disk layout (design.md) and the A/B slot operations over it:
//! which slot boots next, staging a slot for a trial boot, marking it good,
//! rolling back — all as pure functions over a [`Gpt`].

use crate::gpt::{Entry, Gpt, SECTOR};
use crate::guid::{guid, Guid};
use crate::prio::{apply_add, next_boot, prioritize, AddFields, Friends, Prio, Successful};
use crate::SlotsError;

/// Partition type GUIDs (Discoverable Partitions Specification, x86-64).
pub mod types {
    use super::{guid, Guid};
    pub const ESP: Guid = guid("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
    pub const USR_X86_64: Guid = guid("8484680c-9521-48c6-9c11-b0720656f69e");
    pub const USR_VERITY_X86_64: Guid = guid("77ff5f63-e7b6-4633-acf4-1565b864c0e6");
    pub const LINUX_DATA: Guid = guid("0fc63daf-8483-4772-8e79-3d69d8477de4");
    /// Only for differential tests: Debian's cgpt prioritizes nothing else.
    pub const CHROMEOS_KERNEL: Guid = guid("fe3a2a5d-4f32-41a7-b725-accc3285a309");
}

/// One of the two /usr slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    /// The other slot: the passive one when this one is active.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
    /// GPT name of the slot's /usr partition.
    pub fn usr_label(self) -> &'static str {
        match self {
            Slot::A => "USR-A",
            Slot::B => "USR-B",
        }
    }
    /// GPT name of the slot's verity partition.
    pub fn verity_label(self) -> &'static str {
        match self {
            Slot::A => "USR-A-VERITY",
            Slot::B => "USR-B-VERITY",
        }
    }
}

/// Partition sizes in MiB for [`boxcar_layout`]; ROOT takes the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub esp_mib: u64,
    pub usr_mib: u64,
    pub verity_mib: u64,
    pub oem_mib: u64,
}

impl Default for Sizes {
    /// Production sizes: 1 GiB ESP (several UKIs), 2 GiB /usr slots.
    fn default() -> Self {
        Sizes {
            esp_mib: 1024,
            usr_mib: 2048,
            verity_mib: 64,
            oem_mib: 128,
        }
    }
}

const MIB_SECTORS: u64 = (1 << 20) / SECTOR;

/// Builds the seven-partition table of design.md on a disk of
/// `total_sectors`, 1 MiB aligned. Slot A starts as the good, bootable slot
/// (P1 T0 S1); slot B is empty and never booted (P0 T0 S0).
/// `new_guid` supplies partition GUIDs (random in production, fixed in tests).
pub fn boxcar_layout(
    total_sectors: u64,
    sizes: Sizes,
    disk_guid: Guid,
    mut new_guid: impl FnMut() -> Guid,
) -> Result<Gpt, SlotsError> {
    let mut gpt = Gpt::new(total_sectors, disk_guid)?;
    let a_good = Prio {
        priority: 1,
        tries: 0,
        successful: Successful::Yes,
    }
    .encode(0);
    let plan: [(&str, Guid, Option<u64>, u64); 7] = [
        ("EFI-SYSTEM", types::ESP, Some(sizes.esp_mib), 0),
        ("USR-A", types::USR_X86_64, Some(sizes.usr_mib), a_good),
        ("USR-A-VERITY", types::USR_VERITY_X86_64, Some(sizes.verity_mib), 0),
        ("USR-B", types::USR_X86_64, Some(sizes.usr_mib), 0),
        ("USR-B-VERITY", types::USR_VERITY_X86_64, Some(sizes.verity_mib), 0),
        ("OEM", types::LINUX_DATA, Some(sizes.oem_mib), 0),
        ("ROOT", types::LINUX_DATA, None, 0),
    ];
    let mut next = MIB_SECTORS;
    for (i, (name, ty, mib, attributes)) in plan.into_iter().enumerate() {
        let last = match mib {
            Some(m) => m
                .checked_mul(MIB_SECTORS)
                .and_then(|s| next.checked_add(s))
                .and_then(|end| end.checked_sub(1))
                .unwrap_or(u64::MAX),
            None => (gpt.last_usable / MIB_SECTORS * MIB_SECTORS).saturating_sub(1),
        };
        if last > gpt.last_usable || last < next {
            return Err(SlotsError::Layout(format!(
                "{name} does not fit on a disk of {total_sectors} sectors"
            )));
        }
        gpt.entries[i] = Entry {
            type_guid: ty,
            guid: new_guid(),
            first_lba: next,
            last_lba: last,
            attributes,
            name: name.to_string(),
        };
        next = last + 1;
    }
    Ok(gpt)
}

/// The partition numbers of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotPartitions {
    pub usr: u32,
    pub verity: u32,
}

/// Finds a slot's partitions by name and checks their types.
pub fn find_slot(gpt: &Gpt, slot: Slot) -> Result<SlotPartitions, SlotsError> {
    let find = |label: &str, ty: Guid| -> Result<u32, SlotsError> {
        let n = gpt
            .find_by_label(label)
            .ok_or_else(|| SlotsError::Layout(format!("no partition named {label}")))?;
        match gpt.partition(n) {
            Some(e) if e.type_guid == ty => Ok(n),
            _ => Err(SlotsError::NotASlot(n)),
        }
    };
    Ok(SlotPartitions {
        usr: find(slot.usr_label(), types::USR_X86_64)?,
        verity: find(slot.verity_label(), types::USR_VERITY_X86_64)?,
    })
}

/// The gptprio fields of a slot's /usr partition.
pub fn slot_prio(gpt: &Gpt, slot: Slot) -> Result<Prio, SlotsError> {
    let n = find_slot(gpt, slot)?.usr;
    let e = gpt.partition(n).ok_or(SlotsError::NoSuchPartition(n))?;
    Ok(Prio::decode(e.attributes))
}

/// `cgpt add -i n -P -T -S` on the table.
pub fn set_fields(gpt: &mut Gpt, n: u32, fields: AddFields) -> Result<(), SlotsError> {
    let e = gpt.partition_mut(n)?;
    e.attributes = apply_add(e.attributes, fields)?;
    Ok(())
}

/// `cgpt prioritize -i n [-f] [-P max]` over the partitions of `ty` (cgpt
/// itself only does this for the Chrome OS kernel type).
pub fn prioritize_type(gpt: &mut Gpt, ty: Guid, n: u32, friends: Friends, max: Option<u8>) -> Result<(), SlotsError> {
    match gpt.partition(n) {
        Some(e) if e.type_guid == ty => {}
        _ => return Err(SlotsError::NotASlot(n)),
    }
    let parts: Vec<(u32, u8)> = gpt
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.type_guid == ty)
        .map(|(i, e)| (i as u32 + 1, Prio::decode(e.attributes).priority))
        .collect();
    for (num, p) in prioritize(&parts, n, friends, max) {
        set_fields(
            gpt,
            num,
            AddFields {
                priority: Some(p),
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

/// Which slot GRUB-style gptprio selection boots next, if any.
pub fn next_boot_slot(gpt: &Gpt) -> Result<Option<Slot>, SlotsError> {
    let a = find_slot(gpt, Slot::A)?.usr;
    let b = find_slot(gpt, Slot::B)?.usr;
    let parts = [(a, slot_prio(gpt, Slot::A)?), (b, slot_prio(gpt, Slot::B)?)];
    let mut sorted = parts;
    sorted.sort_by_key(|(n, _)| *n);
    Ok(next_boot(&sorted).map(|n| if n == a { Slot::A } else { Slot::B }))
}

/// After staging `slot`: one trial boot (`tries`, usually 1), not yet
/// successful, highest priority — Flatcar's `cgpt add -S0 -T1; cgpt prioritize`.
pub fn stage_trial(gpt: &mut Gpt, slot: Slot, tries: u8) -> Result<(), SlotsError> {
    let n = find_slot(gpt, slot)?.usr;
    set_fields(
        gpt,
        n,
        AddFields {
            tries: Some(tries),
            successful: Some(Successful::No),
            ..Default::default()
        },
    )?;
    prioritize_type(gpt, types::USR_X86_64, n, Friends::Alone, None)
}

/// After a healthy boot of `slot`: tries 0, successful, highest priority
/// (Flatcar's `flatcar-setgoodroot`). Also the manual rollback: marking the
/// other, previously good slot good again makes it boot next.
pub fn mark_good(gpt: &mut Gpt, slot: Slot) -> Result<(), SlotsError> {
    let n = find_slot(gpt, slot)?.usr;
    set_fields(
        gpt,
        n,
        AddFields {
            tries: Some(0),
            successful: Some(Successful::Yes),
            ..Default::default()
        },
    )?;
    prioritize_type(gpt, types::USR_X86_64, n, Friends::Alone, None)
}

/// Makes `slot` unbootable (before overwriting it, so a half-written slot is
/// never chosen): priority 0, tries 0, not successful.
pub fn invalidate(gpt: &mut Gpt, slot: Slot) -> Result<(), SlotsError> {
    let n = find_slot(gpt, slot)?.usr;
    set_fields(
        gpt,
        n,
        AddFields {
            priority: Some(0),
            tries: Some(0),
            successful: Some(Successful::No),
        },
    )
}

/// What the boot loader does on a boot attempt: pick the slot and spend a try.
/// Returns the slot booted. Used to model reboots in tests.
pub fn simulate_boot(gpt: &mut Gpt) -> Result<Option<Slot>, SlotsError> {
    let Some(slot) = next_boot_slot(gpt)? else {
        return Ok(None);
    };
    let n = find_slot(gpt, slot)?.usr;
    let p = Prio::decode(gpt.partition_mut(n)?.attributes);
    if p.tries > 0 {
        set_fields(
            gpt,
            n,
            AddFields {
                tries: Some(p.tries - 1),
                ..Default::default()
            },
        )?;
    }
    Ok(Some(slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_fits_or_fails_cleanly() {
        let g = boxcar_layout(
            64 << 11,
            Sizes {
                esp_mib: 4,
                usr_mib: 8,
                verity_mib: 1,
                oem_mib: 2,
            },
            Guid::NIL,
            || Guid([1; 16]),
        )
        .unwrap();
        assert_eq!(g.partition(1).unwrap().first_lba, 2048);
        assert_eq!(g.partition(2).unwrap().first_lba, 5 * 2048);
        // ROOT ends on a MiB boundary inside the usable area.
        let root = g.partition(7).unwrap();
        assert_eq!((root.last_lba + 1) % 2048, 0);
        assert!(root.last_lba <= g.last_usable);
        assert_eq!(find_slot(&g, Slot::A).unwrap(), SlotPartitions { usr: 2, verity: 3 });
        assert_eq!(next_boot_slot(&g).unwrap(), Some(Slot::A));
        let huge = Sizes {
            usr_mib: u64::MAX / 2,
            ..Sizes::default()
        };
        assert!(matches!(
            boxcar_layout(64 << 11, huge, Guid::NIL, || Guid([1; 16])),
            Err(SlotsError::Layout(_))
        ));
        assert!(boxcar_layout(16 << 11, Sizes::default(), Guid::NIL, || Guid([1; 16])).is_err());
    }
}
