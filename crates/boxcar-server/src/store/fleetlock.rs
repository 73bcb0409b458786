//! FleetLock semaphores (one per group, recursive per holder id) in the server's database.

use super::{Store, StoreError};
use crate::db::Dialect;
use serde::Serialize;

/// Default number of slots for a group nobody configured (airlock's default is 1 per group
/// unless configured; Zincati fleets usually start with 1).
pub const DEFAULT_MAX_HOLDERS: i64 = 1;

/// Result of a lock attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LockOutcome {
    /// The id holds a slot (newly or already).
    Held,
    /// All slots are taken by these holders.
    Full { max: i64, holders: Vec<String> },
}

impl Store {
    /// Takes (or re-confirms) a slot in `group` for `id`.
    pub fn fleetlock_lock(&self, now: i64, group: &str, id: &str) -> Result<LockOutcome, StoreError> {
        self.write(|c| {
            // Serialise lockers of one group: insert-or-lock the group row first.
            c.execute(
                "INSERT INTO fleetlock_groups (name, max_holders) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[group.into(), DEFAULT_MAX_HOLDERS.into()],
            )?;
            let lock = if c.dialect() == Dialect::Postgres {
                " FOR UPDATE"
            } else {
                ""
            };
            let max = c.query(
                &format!("SELECT max_holders FROM fleetlock_groups WHERE name = $1{lock}"),
                &[group.into()],
            )?[0]
                .int(0);
            let holders: Vec<String> = c
                .query(
                    "SELECT holder FROM fleetlock_holders WHERE group_name = $1 ORDER BY holder",
                    &[group.into()],
                )?
                .iter()
                .map(|r| r.text(0))
                .collect();
            if holders.iter().any(|h| h == id) {
                return Ok(LockOutcome::Held);
            }
            if holders.len() as i64 >= max {
                return Ok(LockOutcome::Full { max, holders });
            }
            c.execute(
                "INSERT INTO fleetlock_holders (group_name, holder, since) VALUES ($1,$2,$3)",
                &[group.into(), id.into(), now.into()],
            )?;
            Ok(LockOutcome::Held)
        })
    }

    /// Releases `id`'s slot in `group` if held (idempotent).
    pub fn fleetlock_unlock(&self, group: &str, id: &str) -> Result<bool, StoreError> {
        self.write(|c| {
            Ok(c.execute(
                "DELETE FROM fleetlock_holders WHERE group_name = $1 AND holder = $2",
                &[group.into(), id.into()],
            )? > 0)
        })
    }

    /// Sets the number of slots of a group.
    pub fn fleetlock_set_max(&self, group: &str, max: i64) -> Result<(), StoreError> {
        if max < 1 {
            return Err(StoreError::Invalid("max_holders must be at least 1".into()));
        }
        self.write(|c| {
            c.execute(
                "INSERT INTO fleetlock_groups (name, max_holders) VALUES ($1,$2) \
                 ON CONFLICT (name) DO UPDATE SET max_holders = excluded.max_holders",
                &[group.into(), max.into()],
            )?;
            Ok(())
        })
    }

    /// Groups with their slots and holders.
    pub fn fleetlock_groups(&self) -> Result<Vec<(String, i64, Vec<String>)>, StoreError> {
        let mut c = self.conn()?;
        let groups = c.query("SELECT name, max_holders FROM fleetlock_groups ORDER BY name", &[])?;
        let holders = c.query("SELECT group_name, holder FROM fleetlock_holders ORDER BY holder", &[])?;
        Ok(groups
            .iter()
            .map(|g| {
                let hs = holders
                    .iter()
                    .filter(|h| h.text(0) == g.text(0))
                    .map(|h| h.text(1))
                    .collect();
                (g.text(0), g.int(1), hs)
            })
            .collect())
    }
}
