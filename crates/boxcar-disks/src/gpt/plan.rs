//! Pure partition planning: desired partitions versus the existing table →
//! the sgdisk operations to run, or the reason the config cannot be met.
//!
//! This follows Ignition 2.14 step by step:
//! 1. partitions with number 0 ("next free slot") go last, others keep order;
//! 2. `sizeMiB`/`startMiB` become sectors; a 0 means "sgdisk's default"
//!    (first free sector / fill the largest free block), and to compare such a
//!    partition with the disk the real value is asked from
//!    `sgdisk --pretend` as if every listed partition were recreated
//!    ([`pretend_args`], [`parse_pretend`], [`resolve`]);
//! 3. each partition is matched against the existing one with its number
//!    (start, size, GUID, type GUID, label; unset fields match anything) and
//!    the outcome follows Ignition's matrix ([`plan`]).

use super::table::{DiskInfo, ExistingPartition};
use boxcar_config::model::Partition;
use std::collections::HashMap;

/// A partition as the config asks for it, in sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Index in the config's `partitions` array (for the JSON path).
    pub index: usize,
    pub number: u32,
    pub label: Option<String>,
    pub start: Option<u64>,
    pub size: Option<u64>,
    pub type_guid: Option<String>,
    pub guid: Option<String>,
    pub existence: Existence,
    pub wipe_entry: WipeEntry,
    pub resize: Resize,
}

/// `shouldExist` (unset means yes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    Present,
    Absent,
}

/// `wipePartitionEntry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WipeEntry {
    Keep,
    Wipe,
}

/// `resize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    No,
    Allowed,
}

/// A `--new` with its name/type/GUID settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartition {
    pub number: u32,
    pub start: Option<u64>,
    pub size: Option<u64>,
    pub label: Option<String>,
    pub type_guid: Option<String>,
    pub guid: Option<String>,
}

/// What happens to one configured partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Exists and matches: nothing to do.
    Keep {
        number: u32,
    },
    /// Absent and should be absent: nothing to do.
    AlreadyAbsent {
        number: u32,
    },
    Create(NewPartition),
    Delete {
        number: u32,
    },
    /// Same partition, new size (delete and create at the same start).
    Resize(NewPartition),
    /// Did not match and `wipePartitionEntry` allows replacing it.
    Recreate(NewPartition),
}

/// Why a configured partition cannot be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    Exists { index: usize, number: u32 },
    Mismatch { index: usize, number: u32, reason: String },
    Invalid { index: usize, reason: String },
}

/// Converts the config's partitions to [`Spec`]s: number-0 partitions moved
/// last (stable), MiB converted to sectors of `sector_size` bytes.
pub fn specs(parts: &[Partition], sector_size: u64) -> Result<Vec<Spec>, PlanError> {
    let per_mib = (1024 * 1024) / sector_size.max(1);
    let mut out = Vec::with_capacity(parts.len());
    for (index, p) in parts.iter().enumerate() {
        let number = u32::try_from(p.number).map_err(|_| PlanError::Invalid {
            index,
            reason: format!("number {} out of range", p.number),
        })?;
        let sectors = |v: Option<i64>, what: &str| -> Result<Option<u64>, PlanError> {
            match v {
                None => Ok(None),
                Some(m) if m < 0 => Err(PlanError::Invalid {
                    index,
                    reason: format!("{what} {m} is negative"),
                }),
                Some(m) => (m as u64)
                    .checked_mul(per_mib)
                    .map(Some)
                    .ok_or_else(|| PlanError::Invalid {
                        index,
                        reason: format!("{what} {m} is too large"),
                    }),
            }
        };
        out.push(Spec {
            index,
            number,
            label: p.label.clone(),
            start: sectors(p.start_mib, "startMiB")?,
            size: sectors(p.size_mib, "sizeMiB")?,
            type_guid: p.type_guid.clone().filter(|s| !s.is_empty()),
            guid: p.guid.clone().filter(|s| !s.is_empty()),
            existence: if p.should_exist == Some(false) {
                Existence::Absent
            } else {
                Existence::Present
            },
            wipe_entry: if p.wipe_partition_entry == Some(true) {
                WipeEntry::Wipe
            } else {
                WipeEntry::Keep
            },
            resize: if p.resize == Some(true) {
                Resize::Allowed
            } else {
                Resize::No
            },
        });
    }
    out.sort_by_key(|s| s.number == 0);
    Ok(out)
}

fn new_args(p: &NewPartition, out: &mut Vec<String>) {
    let start = p.start.unwrap_or(0);
    let size = p.size.unwrap_or(0);
    out.push(format!("--new={}:{start}:+{size}", p.number));
    if let Some(l) = &p.label {
        out.push(format!("--change-name={}:{l}", p.number));
    }
    if let Some(t) = &p.type_guid {
        out.push(format!("--typecode={}:{t}", p.number));
    }
    if let Some(g) = &p.guid {
        out.push(format!("--partition-guid={}:{g}", p.number));
    }
}

fn as_new(s: &Spec) -> NewPartition {
    NewPartition {
        number: s.number,
        start: s.start,
        size: s.size,
        label: s.label.clone(),
        type_guid: s.type_guid.clone(),
        guid: s.guid.clone(),
    }
}

fn needs_inspection(s: &Spec) -> bool {
    s.number != 0 && (s.start == Some(0) || s.size == Some(0))
}

/// The `sgdisk --pretend` arguments (without the device) that recreate every
/// listed partition, and the partition numbers whose real start/size must be
/// read back. `clear_first` starts from an empty table (dry run of
/// `wipeTable`, whose wipe has not really happened).
pub fn pretend_args(specs: &[Spec], disk: &DiskInfo, clear_first: bool) -> (Vec<String>, Vec<u32>) {
    let mut args = vec!["--pretend".to_string()];
    if clear_first {
        args.push("--clear".to_string());
    }
    for s in specs {
        let mut p = as_new(s);
        if let Some(e) = disk.get(s.number) {
            args.push(format!("--delete={}", s.number));
            if s.wipe_entry == WipeEntry::Keep {
                p.start = p.start.or(Some(e.start));
                p.size = p.size.or(Some(e.size));
            }
        }
        if s.existence == Existence::Present {
            // Labels are left out: sgdisk does not escape them in its output.
            p.label = None;
            new_args(&p, &mut args);
        }
    }
    let inspect: Vec<u32> = specs.iter().filter(|s| needs_inspection(s)).map(|s| s.number).collect();
    for n in &inspect {
        args.push(format!("--info={n}"));
    }
    (args, inspect)
}

/// Parses the `--info` blocks of `sgdisk --pretend` (one per number in
/// `numbers`, in order) into partition number → (start, size) in sectors.
/// `None` when the output does not have exactly those blocks.
pub fn parse_pretend(output: &str, numbers: &[u32]) -> Option<HashMap<u32, (u64, u64)>> {
    let mut out = HashMap::new();
    if numbers.is_empty() {
        return Some(out);
    }
    let field = |line: &str, name: &str| -> Option<Option<u64>> {
        let rest = line.strip_prefix(name)?;
        let num = rest.split(' ').next().unwrap_or("");
        Some(num.parse().ok())
    };
    let mut start: Option<u64> = None;
    let mut i = 0;
    for line in output.lines() {
        if let Some(v) = field(line, "First sector: ") {
            if i == numbers.len() || start.is_some() {
                return None;
            }
            start = Some(v?);
        } else if let Some(v) = field(line, "Last sector: ") {
            let (Some(s), Some(end)) = (start.take(), v) else {
                return None;
            };
            if i == numbers.len() || end < s {
                return None;
            }
            out.insert(numbers[i], (s, end - s + 1));
            i += 1;
        }
    }
    (i == numbers.len() && start.is_none()).then_some(out)
}

/// Replaces start/size values of 0 with what sgdisk would really use.
pub fn resolve(specs: &[Spec], dims: &HashMap<u32, (u64, u64)>) -> Vec<Spec> {
    specs
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Some((start, size)) = dims.get(&s.number).filter(|_| needs_inspection(&s)) {
                if s.start.is_some() {
                    s.start = Some(*start);
                }
                if s.size.is_some() {
                    s.size = Some(*size);
                }
            }
            s
        })
        .collect()
}

/// Everything except the size (Ignition's partitionMatchesCommon).
fn matches_common(e: &ExistingPartition, s: &Spec) -> Result<(), String> {
    if let Some(start) = s.start {
        if start != e.start {
            return Err(format!(
                "starting sector did not match (specified {start}, got {})",
                e.start
            ));
        }
    }
    if let Some(g) = &s.guid {
        if !g.eq_ignore_ascii_case(&e.guid) {
            return Err(format!("GUID did not match (specified {g:?}, got {:?})", e.guid));
        }
    }
    if let Some(t) = &s.type_guid {
        if !t.eq_ignore_ascii_case(&e.type_guid) {
            return Err(format!(
                "type GUID did not match (specified {t:?}, got {:?})",
                e.type_guid
            ));
        }
    }
    if let Some(l) = &s.label {
        if *l != e.label {
            return Err(format!("label did not match (specified {l:?}, got {:?})", e.label));
        }
    }
    Ok(())
}

fn matches(e: &ExistingPartition, s: &Spec) -> Result<(), String> {
    matches_common(e, s)?;
    match s.size {
        Some(size) if size != e.size => Err(format!("size did not match (specified {size}, got {})", e.size)),
        _ => Ok(()),
    }
}

/// Decides what happens to each (resolved) partition; Ignition's matrix.
pub fn plan(specs: &[Spec], disk: &DiskInfo) -> Result<Vec<(usize, Action)>, PlanError> {
    let mut actions = Vec::with_capacity(specs.len());
    for s in specs {
        let existing = disk.get(s.number);
        let action = match (existing, s.existence) {
            (None, Existence::Absent) => Action::AlreadyAbsent { number: s.number },
            (None, Existence::Present) => Action::Create(as_new(s)),
            (Some(_), Existence::Absent) => match s.wipe_entry {
                WipeEntry::Keep => {
                    return Err(PlanError::Exists {
                        index: s.index,
                        number: s.number,
                    })
                }
                WipeEntry::Wipe => Action::Delete { number: s.number },
            },
            (Some(e), Existence::Present) => match (matches(e, s), s.wipe_entry) {
                (Ok(()), _) => Action::Keep { number: s.number },
                (Err(_), WipeEntry::Wipe) => Action::Recreate(as_new(s)),
                (Err(reason), WipeEntry::Keep) => {
                    if s.resize == Resize::Allowed && matches_common(e, s).is_ok() {
                        Action::Resize(NewPartition {
                            number: e.number,
                            start: Some(e.start),
                            size: s.size,
                            label: Some(e.label.clone()),
                            type_guid: Some(e.type_guid.clone()),
                            guid: Some(e.guid.clone()),
                        })
                    } else {
                        return Err(PlanError::Mismatch {
                            index: s.index,
                            number: s.number,
                            reason,
                        });
                    }
                }
            },
        };
        actions.push((s.index, action));
    }
    Ok(actions)
}

/// The sgdisk arguments (without the device) that carry out `actions`:
/// all deletions first, then the creations in order, as Ignition does.
/// Empty when nothing needs to change.
pub fn commit_args(actions: &[(usize, Action)]) -> Vec<String> {
    let mut deletes = Vec::new();
    let mut creates = Vec::new();
    for (_, a) in actions {
        match a {
            Action::Keep { .. } | Action::AlreadyAbsent { .. } => {}
            Action::Create(p) => new_args(p, &mut creates),
            Action::Delete { number } => deletes.push(format!("--delete={number}")),
            Action::Resize(p) | Action::Recreate(p) => {
                deletes.push(format!("--delete={}", p.number));
                new_args(p, &mut creates);
            }
        }
    }
    deletes.extend(creates);
    deletes
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
