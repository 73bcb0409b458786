//! Read side: instance search, rollout progress, the configuration snapshot the check fast path
//! uses, and aggregates for metrics.

use super::admin::package_from_row;
use super::{Store, StoreError};
use crate::db::{Row, Val};
use crate::model::{EventRecord, Instance, InstanceStatus};
use boxcar_omaha::error_code_name;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Instance search criteria (all optional, combined with AND).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InstanceFilter {
    /// App id (normalised).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Machine id prefix.
    #[serde(default)]
    pub id: Option<String>,
    /// Exact version.
    #[serde(default)]
    pub version: Option<String>,
    /// Status name.
    #[serde(default)]
    pub status: Option<String>,
    /// Group id.
    #[serde(default)]
    pub group: Option<String>,
    /// IP address prefix.
    #[serde(default)]
    pub ip: Option<String>,
    /// Maximum rows (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Rollout progress of a group for the version its channel serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupProgress {
    /// Target version (none without a package).
    pub version: Option<String>,
    /// Instances in the group.
    pub instances: u64,
    /// Instances granted the target version.
    pub granted: u64,
    /// Of those, still in flight.
    pub in_progress: u64,
    /// Of those, complete.
    pub complete: u64,
    /// Of those, failed.
    pub error: u64,
    /// Of those, rolled back.
    pub rollback: u64,
    /// Instances on hold.
    pub on_hold: u64,
}

/// The routing configuration, cached by each replica for the check fast path.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// app id → track or group id → group.
    pub apps: HashMap<String, HashMap<String, SnapshotGroup>>,
}

/// One group in the snapshot.
#[derive(Debug, Clone, Default)]
pub struct SnapshotGroup {
    /// Group id.
    pub id: String,
    /// arch → target version.
    pub targets: HashMap<String, String>,
}

const INSTANCE_COLS: &str = "app_id, machine_id, group_id, track, version, arch, ip, oem, alias, status, \
    update_in_progress, last_update_version, from_version, last_update_granted_at, last_error_code, first_seen, last_check";

fn instance_from_row(r: &Row) -> Instance {
    let code = r.opt_int(14).map(|c| c as u32);
    Instance {
        app_id: r.text(0),
        machine_id: r.text(1),
        group_id: r.opt_text(2),
        track: r.text(3),
        version: r.text(4),
        arch: r.text(5),
        ip: r.text(6),
        oem: r.text(7),
        alias: r.text(8),
        status: InstanceStatus::from_code(r.int(9)),
        update_in_progress: r.int(10) != 0,
        last_update_version: r.opt_text(11),
        from_version: r.opt_text(12),
        last_update_granted_at: r.opt_int(13),
        last_error_code: code,
        last_error: code.map(error_code_name),
        first_seen: r.int(15),
        last_check: r.int(16),
    }
}

impl Store {
    /// Searches instances.
    pub fn list_instances(&self, f: &InstanceFilter) -> Result<Vec<Instance>, StoreError> {
        let mut sql = format!("SELECT {INSTANCE_COLS} FROM instances WHERE 1 = 1");
        let mut params: Vec<Val> = Vec::new();
        let mut add = |sql: &mut String, clause: &str, v: Val| {
            params.push(v);
            sql.push_str(&clause.replace('?', &format!("${}", params.len())));
        };
        if let Some(a) = &f.app_id {
            add(&mut sql, " AND app_id = ?", a.into());
        }
        if let Some(id) = f.id.as_deref().filter(|s| !s.is_empty()) {
            add(
                &mut sql,
                " AND machine_id LIKE ?",
                format!("{}%", like_escape(id)).into(),
            );
        }
        if let Some(v) = f.version.as_deref().filter(|s| !s.is_empty()) {
            add(&mut sql, " AND version = ?", v.into());
        }
        if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty()) {
            let st =
                InstanceStatus::from_name(s).ok_or_else(|| StoreError::Invalid(format!("unknown status {s:?}")))?;
            add(&mut sql, " AND status = ?", st.code().into());
        }
        if let Some(g) = f.group.as_deref().filter(|s| !s.is_empty()) {
            add(&mut sql, " AND group_id = ?", g.into());
        }
        if let Some(ip) = f.ip.as_deref().filter(|s| !s.is_empty()) {
            add(&mut sql, " AND ip LIKE ?", format!("{}%", like_escape(ip)).into());
        }
        let limit = f.limit.unwrap_or(100).clamp(1, 1000);
        add(&mut sql, " ORDER BY last_check DESC, machine_id LIMIT ?", limit.into());
        let rows = self.conn()?.query(&sql, &params)?;
        Ok(rows.iter().map(instance_from_row).collect())
    }

    /// One instance.
    pub fn get_instance(&self, app_id: &str, machine_id: &str) -> Result<Instance, StoreError> {
        let rows = self.conn()?.query(
            &format!("SELECT {INSTANCE_COLS} FROM instances WHERE app_id = $1 AND machine_id = $2"),
            &[app_id.into(), machine_id.into()],
        )?;
        rows.first()
            .map(instance_from_row)
            .ok_or_else(|| StoreError::NotFound(format!("instance {machine_id}")))
    }

    /// Events of one instance, newest first.
    pub fn instance_events(&self, app_id: &str, machine_id: &str, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self.conn()?.query(
            "SELECT ts, app_id, machine_id, event_type, event_result, error_code, previous_version, version \
             FROM events WHERE app_id = $1 AND machine_id = $2 ORDER BY id DESC LIMIT $3",
            &[app_id.into(), machine_id.into(), limit.into()],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let code = r.opt_int(5).map(|c| c as u32);
                EventRecord {
                    ts: r.int(0),
                    app_id: r.text(1),
                    machine_id: r.text(2),
                    event_type: r.int(3) as u32,
                    event_result: r.int(4) as u32,
                    error_code: code,
                    error: code.map(error_code_name),
                    previous_version: r.opt_text(6),
                    version: r.text(7),
                }
            })
            .collect())
    }

    /// Rollout progress of a group.
    pub fn group_progress(&self, app_id: &str, group_id: &str) -> Result<GroupProgress, StoreError> {
        let g = self.get_group(app_id, group_id)?;
        let mut c = self.conn()?;
        let mut version = None;
        if let Some(ch) = &g.channel {
            let rows = c.query(
                "SELECT p.version FROM channel_packages cp JOIN packages p ON p.id = cp.package_id \
                 WHERE cp.app_id = $1 AND cp.channel = $2 ORDER BY cp.arch LIMIT 1",
                &[app_id.into(), ch.into()],
            )?;
            version = rows.first().map(|r| r.text(0));
        }
        let rows = c.query(
            "SELECT COUNT(*), \
               COUNT(*) FILTER (WHERE last_update_version = $3), \
               COUNT(*) FILTER (WHERE last_update_version = $3 AND update_in_progress = 1), \
               COUNT(*) FILTER (WHERE last_update_version = $3 AND status = 4), \
               COUNT(*) FILTER (WHERE last_update_version = $3 AND status = 3), \
               COUNT(*) FILTER (WHERE last_update_version = $3 AND status = 9), \
               COUNT(*) FILTER (WHERE status = 8) \
             FROM instances WHERE app_id = $1 AND group_id = $2",
            &[
                app_id.into(),
                g.id.clone().into(),
                version.clone().unwrap_or_default().into(),
            ],
        )?;
        let r = &rows[0];
        Ok(GroupProgress {
            version,
            instances: r.int(0) as u64,
            granted: r.int(1) as u64,
            in_progress: r.int(2) as u64,
            complete: r.int(3) as u64,
            error: r.int(4) as u64,
            rollback: r.int(5) as u64,
            on_hold: r.int(6) as u64,
        })
    }

    /// The routing snapshot.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut c = self.conn()?;
        let mut snap = Snapshot::default();
        for r in c.query("SELECT id FROM applications", &[])? {
            snap.apps.insert(r.text(0), HashMap::new());
        }
        let groups = c.query("SELECT app_id, id, track, channel FROM fleet_groups", &[])?;
        let targets = c.query(
            "SELECT cp.app_id, cp.channel, p.id, p.app_id, p.version, p.arch, p.url, p.filename, p.size, p.sha1, \
             p.sha256, p.extra_files FROM channel_packages cp JOIN packages p ON p.id = cp.package_id",
            &[],
        )?;
        for g in groups {
            let mut sg = SnapshotGroup {
                id: g.text(1),
                targets: HashMap::new(),
            };
            for t in targets
                .iter()
                .filter(|t| t.text(0) == g.text(0) && Some(t.text(1)) == g.opt_text(3))
            {
                let p = package_from_row(&Row(t.0[2..].to_vec()));
                sg.targets.insert(p.arch, p.version);
            }
            let app = snap.apps.entry(g.text(0)).or_default();
            app.insert(g.text(2), sg.clone());
            app.entry(g.text(1)).or_insert(sg);
        }
        Ok(snap)
    }

    /// (app id, group id, channel, version, status) → instance count, for metrics.
    #[allow(clippy::type_complexity)]
    pub fn instance_counts(&self) -> Result<Vec<(String, String, String, String, InstanceStatus, u64)>, StoreError> {
        let rows = self.conn()?.query(
            "SELECT i.app_id, COALESCE(i.group_id, ''), COALESCE(g.channel, ''), i.version, i.status, COUNT(*) \
             FROM instances i LEFT JOIN fleet_groups g ON g.app_id = i.app_id AND g.id = i.group_id \
             GROUP BY i.app_id, i.group_id, g.channel, i.version, i.status",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.text(0),
                    r.text(1),
                    r.text(2),
                    r.text(3),
                    InstanceStatus::from_code(r.int(4)),
                    r.int(5) as u64,
                )
            })
            .collect())
    }

    /// Version distribution per day over the last `days` days (from check-in times of current
    /// instances): (day start, version, count).
    pub fn version_history(&self, app_id: &str, now: i64, days: i64) -> Result<Vec<(i64, String, u64)>, StoreError> {
        let rows = self.conn()?.query(
            "SELECT (last_check / 86400) * 86400, version, COUNT(*) FROM instances \
             WHERE app_id = $1 AND last_check >= $2 GROUP BY (last_check / 86400) * 86400, version ORDER BY 1, 2",
            &[app_id.into(), (now - days * 86400).into()],
        )?;
        Ok(rows.iter().map(|r| (r.int(0), r.text(1), r.int(2) as u64)).collect())
    }
}

fn like_escape(s: &str) -> String {
    s.replace(['%', '_'], "")
}
