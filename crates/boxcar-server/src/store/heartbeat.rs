//! Heartbeats: check-ins that change nothing but "last seen", queued in memory by the service
//! and written here in batches.
//!
//! Most rows already say what the heartbeat says; for those only `last_check` moves, and many of
//! them move in one statement ([`touch_sql`]) — a round trip per row is what a PostgreSQL
//! server on the other end of a socket cannot keep up with at thousands of checks a second.
//! Rows that differ (new instance, new version or address, an update completing) go through the
//! full upsert one by one.

use super::{Store, StoreError};
use crate::db::{Conn, Dialect, Val};
use std::collections::HashSet;

/// A check-in that changes nothing but "last seen" (written in batches).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// Normalised app id.
    pub app_id: String,
    /// Machine id.
    pub machine_id: String,
    /// Group resolved from the track (if any).
    pub group_id: Option<String>,
    /// Track as sent.
    pub track: String,
    /// Running version.
    pub version: String,
    /// Architecture.
    pub arch: String,
    /// Client address.
    pub ip: String,
    /// OEM id.
    pub oem: String,
    /// Machine alias.
    pub alias: String,
    /// Unix time of the check-in.
    pub at: i64,
}

/// How a flush wrote its heartbeats (counted in `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatWrites {
    /// Rows that already said what the heartbeat says: only `last_check` moved, in batches.
    pub touched: usize,
    /// Rows written by the full upsert (new instance, something changed, update completing).
    pub upserted: usize,
}

/// Rows per heartbeat transaction.
pub const HEARTBEAT_CHUNK: usize = 200;

/// The upsert of an instance, with `$tail` appended (a `WHERE` on the update, or nothing).
macro_rules! upsert_instance {
    ($tail:literal) => {
        concat!(
            "INSERT INTO instances (app_id, machine_id, group_id, track, version, arch, ip, oem, alias, \
     status, update_in_progress, first_seen, last_check) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,1,0,$10,$10) \
     ON CONFLICT (app_id, machine_id) DO UPDATE SET group_id = excluded.group_id, track = excluded.track, \
     version = excluded.version, arch = excluded.arch, ip = excluded.ip, oem = excluded.oem, alias = excluded.alias, \
     last_check = excluded.last_check, \
     status = CASE WHEN instances.update_in_progress = 1 AND instances.last_update_version = excluded.version \
       THEN 4 ELSE instances.status END, \
     update_in_progress = CASE WHEN instances.update_in_progress = 1 AND instances.last_update_version = excluded.version \
       THEN 0 ELSE instances.update_in_progress END",
            $tail
        )
    };
}

/// Registers or refreshes an instance; an in-flight update whose version is now running completes.
/// Used by check-ins, which always write.
pub(super) const UPSERT_INSTANCE: &str = upsert_instance!("");

/// [`UPSERT_INSTANCE`] for a queued heartbeat: not applied over a row seen later (by another
/// replica, or by a check-in after the heartbeat was queued), so a late flush never makes the row
/// older than what was written before it.
const UPSERT_HEARTBEAT: &str = upsert_instance!(" WHERE instances.last_check <= excluded.last_check");

/// Sorts by instance (stable, so pushes keep their order) and drops a heartbeat when the next one
/// is for the same instance with the same fields: writing both leaves the same row as writing the
/// later one.
fn coalesce_heartbeats(batch: &mut Vec<Heartbeat>) {
    batch.sort_by(|a, b| (&a.app_id, &a.machine_id).cmp(&(&b.app_id, &b.machine_id)));
    let mut out: Vec<Heartbeat> = Vec::with_capacity(batch.len());
    for h in batch.drain(..) {
        if let Some(last) = out.last_mut() {
            if same_but_time(last, &h) {
                *last = h;
                continue;
            }
        }
        out.push(h);
    }
    *batch = out;
}

fn same_but_time(a: &Heartbeat, b: &Heartbeat) -> bool {
    a.app_id == b.app_id
        && a.machine_id == b.machine_id
        && a.group_id == b.group_id
        && a.track == b.track
        && a.version == b.version
        && a.arch == b.arch
        && a.ip == b.ip
        && a.oem == b.oem
        && a.alias == b.alias
}

pub(super) fn upsert_params(h: &Heartbeat) -> [Val; 10] {
    [
        (&h.app_id).into(),
        (&h.machine_id).into(),
        h.group_id.clone().into(),
        (&h.track).into(),
        (&h.version).into(),
        (&h.arch).into(),
        (&h.ip).into(),
        (&h.oem).into(),
        (&h.alias).into(),
        h.at.into(),
    ]
}

impl Store {
    /// Writes heartbeats in short transactions of [`HEARTBEAT_CHUNK`] rows, sorted so concurrent
    /// flushes from several replicas lock rows in the same order. Short transactions matter: a
    /// grant holds its group's lock while it upserts its instance, so a long flush holding instance
    /// rows would stall every grant of the group behind it.
    ///
    /// Repeats of the same heartbeat within the batch are written once (the last one: the same
    /// final row as writing them all). An instance whose row already says what the heartbeat says
    /// only has its `last_check` moved (with others, see [`touch_sql`]; in SQLite one index
    /// entry is rewritten instead of every index of the table); anything else goes through the
    /// full upsert.
    pub fn flush_heartbeats(&self, batch: &mut Vec<Heartbeat>) -> Result<HeartbeatWrites, StoreError> {
        coalesce_heartbeats(batch);
        let mut writes = HeartbeatWrites::default();
        let (single, repeated) = split_repeated(batch);
        for chunk in single.chunks(HEARTBEAT_CHUNK) {
            // Every row of the chunk is either touched or upserted.
            let touched = self.heartbeat_tx(|c| {
                let touched = touch(c, chunk)?;
                for h in chunk {
                    if !touched.contains(&(h.app_id.clone(), h.machine_id.clone())) {
                        c.execute(UPSERT_HEARTBEAT, &upsert_params(h))?;
                    }
                }
                Ok(touched.len())
            })?;
            writes.touched += touched;
            writes.upserted += chunk.len() - touched;
        }
        // An instance whose heartbeats differ within the batch: one by one, in order (a touch
        // statement must not name a row twice, its outcome would be either one).
        for chunk in repeated.chunks(HEARTBEAT_CHUNK) {
            self.heartbeat_tx(|c| {
                for h in chunk {
                    c.execute(UPSERT_HEARTBEAT, &upsert_params(h))?;
                }
                Ok(())
            })?;
            writes.upserted += chunk.len();
        }
        Ok(writes)
    }

    fn heartbeat_tx<R>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<R, StoreError>) -> Result<R, StoreError> {
        self.write(|c| {
            if c.dialect() == Dialect::Postgres {
                // "Last seen" was already held in memory for up to HEARTBEAT_FLUSH; not waiting
                // for the WAL flush at commit adds well under a second to what a crash can lose,
                // and spares one disk flush per chunk. Grants and events commit synchronously.
                //
                // Plans: the only good plan for the touch statement is a primary-key probe per
                // heartbeat row. When it was a join against a 32-row VALUES list, PostgreSQL's
                // generic plan (after five executions) scanned the table instead (10-15 ms per
                // 32 rows against about 2 ms), hence the custom plans; and with the statistics of
                // a freshly filled table it sometimes chose a hash join over a sequential scan
                // or a bitmap scan of another index (17-70 ms). The JSON rows of today's
                // statement are estimated too (100 rows), so the other join and scan methods stay
                // switched off for these transactions (they hold nothing else).
                c.batch(
                    "SET LOCAL synchronous_commit TO OFF; SET LOCAL plan_cache_mode TO force_custom_plan; \
                     SET LOCAL enable_hashjoin TO OFF; SET LOCAL enable_mergejoin TO OFF; \
                     SET LOCAL enable_seqscan TO OFF; SET LOCAL enable_bitmapscan TO OFF",
                )?;
            }
            f(c)
        })
    }
}

/// Moves `last_check` of the rows that already say what their heartbeat says; returns the
/// `(app_id, machine_id)` it moved; the others need the full upsert.
///
/// PostgreSQL gets the whole chunk in one statement, as one JSON parameter ([`TOUCH_JSON_SQL`]):
/// one round trip and one plan per chunk. SQLite, in process and without planning costs, takes the
/// multi-row `VALUES` statements ([`touch_sql`]).
fn touch(c: &mut dyn Conn, rows: &[&Heartbeat]) -> Result<HashSet<(String, String)>, StoreError> {
    let mut moved = HashSet::with_capacity(rows.len());
    match c.dialect() {
        Dialect::Postgres => {
            let json = touch_json(rows);
            for r in c.query(TOUCH_JSON_SQL, &[json.into()])? {
                moved.insert((r.text(0), r.text(1)));
            }
        }
        Dialect::Sqlite => {
            let mut rest = rows;
            while !rest.is_empty() {
                let (now, later) = rest.split_at(touch_rows(rest.len()));
                rest = later;
                let params: Vec<Val> = now.iter().flat_map(|h| upsert_params(h)).collect();
                for r in c.query(&touch_sql(now.len()), &params)? {
                    moved.insert((r.text(0), r.text(1)));
                }
            }
        }
    }
    Ok(moved)
}

/// What both touch statements do with their rows `v` (columns named as in [`touch_json`]): move
/// `last_check` where the row already says what the heartbeat says, its update does not complete
/// with it, and it was not seen later; return the keys moved.
macro_rules! touch_matching {
    () => {
        "WHERE instances.app_id = v.a AND instances.machine_id = v.m \
         AND instances.group_id IS NOT DISTINCT FROM v.g AND instances.track = v.t \
         AND instances.version = v.ver AND instances.arch = v.r AND instances.ip = v.i \
         AND instances.oem = v.o AND instances.alias = v.l \
         AND NOT (instances.update_in_progress = 1 AND instances.last_update_version IS NOT DISTINCT FROM v.ver) \
         AND instances.last_check <= v.at \
         RETURNING instances.app_id, instances.machine_id"
    };
}

/// [`touch_sql`] for PostgreSQL over any number of rows: the heartbeats arrive as one JSON array
/// of objects ([`touch_json`]), so the statement text and its plan are the same for every chunk.
const TOUCH_JSON_SQL: &str = concat!(
    "UPDATE instances SET last_check = v.at \
     FROM json_to_recordset(CAST($1 AS TEXT)::json) AS v(a text, m text, g text, t text, ver text, r text, \
       i text, o text, l text, at bigint) ",
    touch_matching!()
);

/// The rows of [`TOUCH_JSON_SQL`]: `[{"a": app_id, "m": machine_id, "g": group_id or null, "t":
/// track, "ver": version, "r": arch, "i": ip, "o": oem, "l": alias, "at": unix time}, …]`.
fn touch_json(rows: &[&Heartbeat]) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|h| {
            serde_json::json!({
                "a": h.app_id, "m": h.machine_id, "g": h.group_id, "t": h.track, "ver": h.version,
                "r": h.arch, "i": h.ip, "o": h.oem, "l": h.alias, "at": h.at,
            })
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// Splits a coalesced (sorted) batch into instances with one heartbeat and instances with
/// several (that differ), keeping the order within each.
fn split_repeated(batch: &[Heartbeat]) -> (Vec<&Heartbeat>, Vec<&Heartbeat>) {
    fn key(h: &Heartbeat) -> (&str, &str) {
        (&h.app_id, &h.machine_id)
    }
    let (mut single, mut repeated) = (Vec::new(), Vec::new());
    for (i, h) in batch.iter().enumerate() {
        let before = i > 0 && key(&batch[i - 1]) == key(h);
        let after = batch.get(i + 1).is_some_and(|n| key(n) == key(h));
        if before || after {
            repeated.push(h);
        } else {
            single.push(h);
        }
    }
    (single, repeated)
}

/// Rows per multi-row touch statement: the largest of 32, 8, 1 that fits in `n`, so that only three
/// statement texts exist (prepared-statement caches stay small).
///
/// 200 rows → 6 × 32 + 1 × 8; 13 rows → 8 + 5 × 1.
pub(super) fn touch_rows(n: usize) -> usize {
    [32, 8, 1].into_iter().find(|&k| k <= n).unwrap_or(1)
}

/// The touch statement for `rows` heartbeats as SQL parameters (10 each, as [`upsert_params`]),
/// used on SQLite: `UPDATE … FROM (VALUES …)` with the VALUES columns (`column1…`) renamed to
/// those of [`touch_json`], then [`touch_matching`]. The others need [`UPSERT_HEARTBEAT`]. Valid
/// PostgreSQL too (`CAST` for the time: untyped parameters would be text there).
pub(super) fn touch_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p = |i: usize| format!("${}", r * 10 + i);
            format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {}, CAST({} AS BIGINT))",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8),
                p(9),
                p(10)
            )
        })
        .collect();
    format!(
        concat!(
            "UPDATE instances SET last_check = v.at FROM (SELECT column1 AS a, column2 AS m, column3 AS g, \
             column4 AS t, column5 AS ver, column6 AS r, column7 AS i, column8 AS o, column9 AS l, column10 AS at \
             FROM (VALUES {})) AS v ",
            touch_matching!()
        ),
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(machine: &str, ip: &str, at: i64) -> Heartbeat {
        Heartbeat {
            app_id: "app".into(),
            machine_id: machine.into(),
            group_id: Some("stable".into()),
            track: "stable".into(),
            version: "1.0.0".into(),
            arch: "amd64".into(),
            ip: ip.into(),
            oem: String::new(),
            alias: String::new(),
            at,
        }
    }

    #[test]
    fn repeats_collapse_to_the_last_and_changes_are_kept_in_order() {
        // b: same heartbeat at 1 and 3 → one row at 3. a: address A, B, A → all three, in order
        // (the final row must say A at 6, and the B in between must have been written too).
        let mut batch = vec![
            hb("b", "10.0.0.1", 1),
            hb("a", "A", 2),
            hb("b", "10.0.0.1", 3),
            hb("a", "B", 4),
            hb("a", "A", 6),
        ];
        coalesce_heartbeats(&mut batch);
        let got: Vec<(&str, &str, i64)> = batch.iter().map(|h| (&*h.machine_id, &*h.ip, h.at)).collect();
        assert_eq!(
            got,
            vec![("a", "A", 2), ("a", "B", 4), ("a", "A", 6), ("b", "10.0.0.1", 3)]
        );
        // a's three go one by one, b may be touched with others.
        let (single, repeated) = split_repeated(&batch);
        assert_eq!(single.iter().map(|h| &*h.machine_id).collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(repeated.iter().map(|h| h.at).collect::<Vec<_>>(), vec![2, 4, 6]);
    }

    #[test]
    fn touch_statements_come_in_three_sizes() {
        let split = |mut n: usize| {
            let mut out = Vec::new();
            while n > 0 {
                let k = touch_rows(n);
                out.push(k);
                n -= k;
            }
            out
        };
        assert_eq!(split(200), vec![32, 32, 32, 32, 32, 32, 8]);
        assert_eq!(split(13), vec![8, 1, 1, 1, 1, 1]);
        assert_eq!(split(0), Vec::<usize>::new());
        let sql = touch_sql(2);
        assert!(
            sql.contains("($11, $12, $13, $14, $15, $16, $17, $18, $19, CAST($20 AS BIGINT))"),
            "{sql}"
        );
        assert!(!sql.contains("$21"));
    }
}
