//! The Chrome OS "gptprio" attribute bits that GRUB's `gptprio.next`, cgpt
//! and Flatcar's update_engine use for A/B slots, as small pure functions:
//! priority in bits 48–51, tries left in 52–55, successful in bit 56.
//!
//! Worked example (from Flatcar's update flow): the running slot A is
//! `P2 T0 S1`; the staged slot B gets `cgpt add -S0 -T1` then `cgpt
//! prioritize B` → B `P2 T1 S0`, A `P1 T0 S1`. GRUB boots B and spends the
//! try (B `T0`). If B is marked good it becomes `P2 T0 S1`; if not, the next
//! boot skips B (no tries, not successful) and A boots: automatic rollback.

use crate::SlotsError;

const PRIORITY_SHIFT: u32 = 48;
const TRIES_SHIFT: u32 = 52;
const SUCCESSFUL_BIT: u64 = 1 << 56;
const NIBBLE: u64 = 0xf;

/// Whether a slot has booted to the point of being marked good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Successful {
    No,
    Yes,
}

/// The decoded gptprio fields of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prio {
    /// 0 = never boot, 15 = highest.
    pub priority: u8,
    /// Boot attempts left before the slot is skipped (unless successful).
    pub tries: u8,
    pub successful: Successful,
}

impl Prio {
    /// Decodes bits 48–56 of a GPT attribute word.
    pub fn decode(attributes: u64) -> Prio {
        Prio {
            priority: ((attributes >> PRIORITY_SHIFT) & NIBBLE) as u8,
            tries: ((attributes >> TRIES_SHIFT) & NIBBLE) as u8,
            successful: if attributes & SUCCESSFUL_BIT != 0 {
                Successful::Yes
            } else {
                Successful::No
            },
        }
    }

    /// Writes these fields into an attribute word, keeping all other bits.
    pub fn encode(self, attributes: u64) -> u64 {
        let cleared = attributes & !((NIBBLE << PRIORITY_SHIFT) | (NIBBLE << TRIES_SHIFT) | SUCCESSFUL_BIT);
        cleared
            | ((self.priority as u64 & NIBBLE) << PRIORITY_SHIFT)
            | ((self.tries as u64 & NIBBLE) << TRIES_SHIFT)
            | if self.successful == Successful::Yes {
                SUCCESSFUL_BIT
            } else {
                0
            }
    }

    /// Whether GRUB's `gptprio.next` would consider this partition at all.
    pub fn bootable(self) -> bool {
        self.priority > 0 && (self.tries > 0 || self.successful == Successful::Yes)
    }
}

/// The fields `cgpt add -P -T -S` may set; `None` leaves a field as is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddFields {
    pub priority: Option<u8>,
    pub tries: Option<u8>,
    pub successful: Option<Successful>,
}

/// Applies `cgpt add -P -T -S` to an attribute word; values over 15 are
/// refused like cgpt does.
pub fn apply_add(attributes: u64, f: AddFields) -> Result<u64, SlotsError> {
    let check = |field: &'static str, v: Option<u8>| match v {
        Some(value) if value > 15 => Err(SlotsError::PrioOutOfRange { field, value, max: 15 }),
        _ => Ok(()),
    };
    check("priority", f.priority)?;
    check("tries", f.tries)?;
    let mut p = Prio::decode(attributes);
    if let Some(v) = f.priority {
        p.priority = v;
    }
    if let Some(v) = f.tries {
        p.tries = v;
    }
    if let Some(v) = f.successful {
        p.successful = v;
    }
    Ok(p.encode(attributes))
}

/// Whether `prioritize` moves only the chosen partition or its whole
/// priority group (cgpt's `-f`, "friends").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Friends {
    Alone,
    WithFriends,
}

/// cgpt's `prioritize` renumbering over `(partition number, priority)` of
/// the candidate partitions, in table order. Returns the new priorities in
/// the same order.
///
/// Semantics: partitions are grouped by equal priority; `target` (alone, or
/// with its group) is lifted above every group; groups are ordered by
/// priority (stable), a lowest group of priority 0 is left at 0, and the
/// others are renumbered downwards from `max` (default: the number of groups,
/// at most 15), never below 1, so the lowest groups coalesce at 1 when there
/// are more groups than priorities.
///
/// Example: A=2, B=1, target B → B=2, A=1. Example with coalescing:
/// priorities 3,2,1, target the 1, `max` 2 → 2,1,1.
pub fn prioritize(parts: &[(u32, u8)], target: u32, friends: Friends, max: Option<u8>) -> Vec<(u32, u8)> {
    const LIFTED: u16 = 99;
    let target_prio = parts.iter().find(|(n, _)| *n == target).map(|(_, p)| *p);
    // Groups in first-seen order: (group priority, member indices).
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    for (i, &(n, p)) in parts.iter().enumerate() {
        let key = match (n == target, friends) {
            (true, Friends::Alone) => LIFTED,
            _ => p as u16,
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    if let (Friends::WithFriends, Some(tp)) = (friends, target_prio) {
        if let Some(g) = groups.iter_mut().find(|(k, _)| *k == tp as u16) {
            g.0 = LIFTED;
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.0)); // stable, highest first
    if groups.last().is_some_and(|(k, _)| *k == 0) {
        groups.pop();
    }
    let mut prio = max.unwrap_or_else(|| groups.len().min(15) as u8);
    let mut out: Vec<(u32, u8)> = parts.to_vec();
    for (_, members) in &groups {
        for &i in members {
            out[i].1 = prio;
        }
        if prio > 1 {
            prio -= 1;
        }
    }
    out
}

/// GRUB `gptprio.next`'s choice among `(partition number, fields)` in table
/// order: the highest priority among bootable ones; ties keep the first.
pub fn next_boot(parts: &[(u32, Prio)]) -> Option<u32> {
    let mut best: Option<(u32, u8)> = None;
    for &(n, p) in parts {
        if p.bootable() && best.is_none_or(|(_, bp)| p.priority > bp) {
            best = Some((n, p.priority));
        }
    }
    best.map(|(n, _)| n)
}

/// What a boot attempt does to the chosen partition: one try is spent
/// (GRUB decrements tries when they are above zero).
pub fn spend_try(p: Prio) -> Prio {
    Prio {
        tries: p.tries.saturating_sub(1),
        ..p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_match_cgpt_add_examples() {
        // Verified against Debian's cgpt: -S1 -T0 -P2 → 0x0102000000000000.
        let a = apply_add(
            0,
            AddFields {
                priority: Some(2),
                tries: Some(0),
                successful: Some(Successful::Yes),
            },
        )
        .unwrap();
        assert_eq!(a, 0x0102_0000_0000_0000);
        // -S0 -T1 -P1 → 0x0011000000000000.
        let b = apply_add(
            a,
            AddFields {
                priority: Some(1),
                tries: Some(1),
                successful: Some(Successful::No),
            },
        )
        .unwrap();
        assert_eq!(b, 0x0011_0000_0000_0000);
        // Other bits survive (read-only 60, required 0).
        let keep = (1u64 << 60) | 1;
        let c = apply_add(
            keep,
            AddFields {
                tries: Some(15),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c, keep | (15 << 52));
        assert!(apply_add(
            0,
            AddFields {
                priority: Some(16),
                ..Default::default()
            }
        )
        .is_err());
        assert_eq!(Prio::decode(c).tries, 15);
    }

    #[test]
    fn prioritize_worked_examples() {
        // Flatcar: A=2 running, B=1 staged; prioritize B.
        assert_eq!(
            prioritize(&[(3, 2), (4, 1)], 4, Friends::Alone, None),
            vec![(3, 1), (4, 2)]
        );
        // Already on top: unchanged numbering, groups compacted to 2,1.
        assert_eq!(
            prioritize(&[(3, 5), (4, 1)], 3, Friends::Alone, None),
            vec![(3, 2), (4, 1)]
        );
        // Zero stays zero (the empty slot is never made bootable by renumbering).
        assert_eq!(
            prioritize(&[(3, 1), (4, 0)], 3, Friends::Alone, None),
            vec![(3, 1), (4, 0)]
        );
        // A zero target is lifted.
        assert_eq!(
            prioritize(&[(3, 1), (4, 0)], 4, Friends::Alone, None),
            vec![(3, 1), (4, 2)]
        );
        // Ties: 2,2,1 lift the second → 2,3,1.
        assert_eq!(
            prioritize(&[(1, 2), (2, 2), (3, 1)], 2, Friends::Alone, None),
            vec![(1, 2), (2, 3), (3, 1)]
        );
        // Friends move with it: 2,2,3 lift 1 with friends → 3,3,2 … then renumbered 2,2,1.
        assert_eq!(
            prioritize(&[(1, 2), (2, 2), (3, 3)], 1, Friends::WithFriends, None),
            vec![(1, 2), (2, 2), (3, 1)]
        );
        // Explicit max and coalescing at 1.
        assert_eq!(
            prioritize(&[(1, 3), (2, 2), (3, 1)], 3, Friends::Alone, Some(2)),
            vec![(1, 1), (2, 1), (3, 2)]
        );
        assert_eq!(
            prioritize(&[(1, 1), (2, 1)], 1, Friends::Alone, Some(15)),
            vec![(1, 15), (2, 14)]
        );
    }

    #[test]
    fn next_boot_follows_grub_gptprio() {
        let p = |priority, tries, s| Prio {
            priority,
            tries,
            successful: s,
        };
        use Successful::*;
        // Staged B with a try beats good A.
        assert_eq!(next_boot(&[(3, p(1, 0, Yes)), (4, p(2, 1, No))]), Some(4));
        // B's try spent and never marked good: A boots (rollback).
        assert_eq!(next_boot(&[(3, p(1, 0, Yes)), (4, spend_try(p(2, 1, No)))]), Some(3));
        // Ties keep the first; priority 0 never boots.
        assert_eq!(next_boot(&[(3, p(2, 0, Yes)), (4, p(2, 0, Yes))]), Some(3));
        assert_eq!(next_boot(&[(3, p(0, 5, Yes))]), None);
    }
}
