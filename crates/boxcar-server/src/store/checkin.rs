//! Check-ins: register the instance, apply its events, decide about an update — in one
//! transaction, so that grants stay exact under concurrency and across replicas.

use super::admin::{channel_package, lock_group, save_group};
use super::heartbeat::{upsert_params, Heartbeat, UPSERT_INSTANCE};
use super::{add_activity, Store, StoreError};
use crate::db::{Conn, Val};
use crate::events::{apply_event, detect_rollback, is_heartbeat, Progress};
use crate::model::{compare_versions, Activity, Group, InstanceStatus, Package, Severity};
use crate::policy::{
    decide_grant, effective_limit, in_windows, period_start, should_halt, GrantDecision, GroupStats, SafeMode,
    UpdatesMode, Withheld,
};
use boxcar_omaha::{error_code_name, Event, EventResult};
use std::cmp::Ordering;

/// What a client sent, reduced to what the store needs.
#[derive(Debug, Clone)]
pub struct CheckIn {
    /// Normalised app id.
    pub app_id: String,
    /// Machine id.
    pub machine_id: String,
    /// Running version.
    pub version: String,
    /// Track as sent.
    pub track: String,
    /// Architecture.
    pub arch: String,
    /// Client address.
    pub ip: String,
    /// OEM id.
    pub oem: String,
    /// Machine alias.
    pub alias: String,
    /// Events in the request.
    pub events: Vec<Event>,
    /// Whether the client asked for an update.
    pub update_check: bool,
}

/// Why the answer is "no update".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoUpdateReason {
    /// Running the channel's version or newer.
    UpToDate,
    /// The track matches no group.
    UnknownGroup,
    /// The group has no channel or the channel no package for this architecture.
    NoPackage,
    /// The policy withheld the update.
    Withheld(Withheld),
    /// This instance rolled back from the target version, or reported a failure in this very
    /// request; it is not offered the same version again right away.
    Failed,
}

/// The store's answer to a check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The app is not known.
    UnknownApp,
    /// No update check was asked for; events (if any) were recorded.
    Recorded,
    /// No update now.
    NoUpdate(NoUpdateReason),
    /// Serve this package again (granted earlier, not finished yet).
    Update(Package),
    /// Serve this package: granted just now.
    Granted(Package),
}

impl Store {
    /// Handles a check-in that may change state: events, rollbacks, grants.
    pub fn check_in(&self, now: i64, req: &CheckIn) -> Result<CheckOutcome, StoreError> {
        self.write(|c| {
            if c.query("SELECT 1 FROM applications WHERE id = $1", &[(&req.app_id).into()])?.is_empty() {
                return Ok(CheckOutcome::UnknownApp);
            }
            let group = match lock_group(c, &req.app_id, &req.track) {
                Ok(g) => Some(g),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            let hb = Heartbeat {
                app_id: req.app_id.clone(),
                machine_id: req.machine_id.clone(),
                group_id: group.as_ref().map(|g| g.id.clone()),
                track: req.track.clone(),
                version: req.version.clone(),
                arch: req.arch.clone(),
                ip: req.ip.clone(),
                oem: req.oem.clone(),
                alias: req.alias.clone(),
                at: now,
            };
            c.execute(UPSERT_INSTANCE, &upsert_params(&hb))?;
            let mut progress = read_progress(c, req)?;

            let mut failure = false;
            if detect_rollback(&progress, &req.version) {
                progress = Progress { status: InstanceStatus::Rollback, update_in_progress: false, ..progress };
                write_progress(c, req, &progress, Some(44))?;
                failure = true;
            }
            for ev in req.events.iter().filter(|e| !is_heartbeat(e)) {
                c.execute(
                    "INSERT INTO events (ts, app_id, machine_id, group_id, event_type, event_result, error_code, \
                     previous_version, version) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
                    &[
                        now.into(),
                        (&req.app_id).into(),
                        (&req.machine_id).into(),
                        hb.group_id.clone().into(),
                        ev.event_type.code().into(),
                        ev.event_result.code().into(),
                        ev.error_code.into(),
                        ev.previous_version.clone().into(),
                        (&req.version).into(),
                    ],
                )?;
                if let Some(next) = apply_event(&progress, &req.version, ev) {
                    let code = (ev.event_result == EventResult::Error).then(|| ev.error_code.unwrap_or(1));
                    write_progress(c, req, &next, code)?;
                    failure |= matches!(next.status, InstanceStatus::Error | InstanceStatus::Rollback);
                    progress = next;
                }
            }
            if failure {
                if let (Some(g), Some(v)) = (&group, &progress.last_update_version) {
                    maybe_halt(c, now, g, v)?;
                }
            }
            if !req.update_check {
                return Ok(CheckOutcome::Recorded);
            }
            let Some(group) = group else { return Ok(CheckOutcome::NoUpdate(NoUpdateReason::UnknownGroup)) };
            // Re-read: a halt above changed the policy.
            let group = lock_group(c, &req.app_id, &group.id)?;
            let Some(channel) = &group.channel else { return Ok(CheckOutcome::NoUpdate(NoUpdateReason::NoPackage)) };
            let Some(target) = channel_package(c, &req.app_id, channel, &req.arch)? else {
                return Ok(CheckOutcome::NoUpdate(NoUpdateReason::NoPackage));
            };
            if compare_versions(&req.version, &target.version) != Ordering::Less {
                return Ok(CheckOutcome::NoUpdate(NoUpdateReason::UpToDate));
            }
            let rolled_back_from_target = progress.status == InstanceStatus::Rollback
                && progress.last_update_version.as_deref() == Some(target.version.as_str());
            if failure || rolled_back_from_target {
                return Ok(CheckOutcome::NoUpdate(NoUpdateReason::Failed));
            }
            let granted_statuses =
                [InstanceStatus::Granted, InstanceStatus::Downloading, InstanceStatus::Downloaded];
            if progress.update_in_progress && granted_statuses.contains(&progress.status) {
                // Already granted: serve again without consulting the policy.
                return Ok(CheckOutcome::Update(target));
            }
            // Paused, halted or outside every window: the answer does not depend on the counts, so
            // the group lock is not held for them.
            let window = in_windows(&group.policy, now);
            let stats = if group.policy.updates == UpdatesMode::Enabled && window {
                group_stats(c, now, &group, &target.version)?
            } else {
                GroupStats::default()
            };
            match decide_grant(&group.policy, window, stats) {
                GrantDecision::Grant => {
                    grant(c, now, req, &group, &target)?;
                    Ok(CheckOutcome::Granted(target))
                }
                GrantDecision::Withhold(reason) => {
                    if matches!(reason, Withheld::PeriodLimit | Withheld::ConcurrencyLimit) {
                        c.execute(
                            "UPDATE instances SET status = $3 WHERE app_id = $1 AND machine_id = $2 AND update_in_progress = 0",
                            &[(&req.app_id).into(), (&req.machine_id).into(), InstanceStatus::OnHold.code().into()],
                        )?;
                    }
                    Ok(CheckOutcome::NoUpdate(NoUpdateReason::Withheld(reason)))
                }
                GrantDecision::HaltForTimeouts => {
                    halt(c, now, group, &target.version, format!("{} updates timed out in safe mode", stats.timed_out))?;
                    Ok(CheckOutcome::NoUpdate(NoUpdateReason::Withheld(Withheld::Halted)))
                }
            }
        })
    }
}

fn read_progress(c: &mut dyn Conn, req: &CheckIn) -> Result<Progress, StoreError> {
    let rows = c.query(
        "SELECT status, update_in_progress, last_update_version, from_version FROM instances \
         WHERE app_id = $1 AND machine_id = $2",
        &[(&req.app_id).into(), (&req.machine_id).into()],
    )?;
    let r = rows
        .first()
        .ok_or_else(|| StoreError::NotFound(format!("instance {}", req.machine_id)))?;
    Ok(Progress {
        status: InstanceStatus::from_code(r.int(0)),
        update_in_progress: r.int(1) != 0,
        last_update_version: r.opt_text(2),
        from_version: r.opt_text(3),
    })
}

fn write_progress(c: &mut dyn Conn, req: &CheckIn, p: &Progress, error: Option<u32>) -> Result<(), StoreError> {
    c.execute(
        "UPDATE instances SET status = $3, update_in_progress = $4, \
         last_error_code = CASE WHEN $5 >= 0 THEN $5 ELSE last_error_code END \
         WHERE app_id = $1 AND machine_id = $2",
        &[
            (&req.app_id).into(),
            (&req.machine_id).into(),
            p.status.code().into(),
            p.update_in_progress.into(),
            error.map(i64::from).unwrap_or(-1).into(),
        ],
    )?;
    Ok(())
}

/// Counts for the grant decision; each query is a range scan on an index, so the cost follows the
/// number of recent grants, not the size of the group. Only the counts [`decide_grant`] will look
/// at are taken (same order as it checks them): the safe-mode counts only in safe mode, the
/// in-flight count only while the period still has room. The others stay 0, which does not
/// change the decision. This matters during a rollout: once the period limit is reached every
/// check of an eligible instance lands here, under the group lock.
fn group_stats(c: &mut dyn Conn, now: i64, g: &Group, target: &str) -> Result<GroupStats, StoreError> {
    let timeout_start = now - i64::from(g.policy.update_timeout_minutes) * 60;
    let key = || -> Vec<Val> { vec![(&g.app_id).into(), (&g.id).into()] };
    let count = |c: &mut dyn Conn, sql: &str, extra: Vec<Val>| -> Result<u64, StoreError> {
        let mut params = key();
        params.extend(extra);
        Ok(c.query(sql, &params)?[0].int(0) as u64)
    };
    let mut stats = GroupStats::default();
    if g.policy.safe_mode == SafeMode::On {
        stats.completed_target = count(
            c,
            "SELECT COUNT(*) FROM (SELECT 1 FROM instances WHERE app_id = $1 AND group_id = $2 \
             AND last_update_version = $3 AND status = 4 LIMIT 1) AS x",
            vec![target.into()],
        )?;
        stats.timed_out = count(
            c,
            "SELECT COUNT(*) FROM instances WHERE app_id = $1 AND group_id = $2 AND update_in_progress = 1 \
             AND last_update_granted_at <= $3 AND status IN (2, 6, 7)",
            vec![timeout_start.into()],
        )?;
    }
    stats.granted_in_period = count(
        c,
        "SELECT COUNT(*) FROM instances WHERE app_id = $1 AND group_id = $2 AND last_update_granted_at > $3",
        vec![period_start(now, g.policy.period_minutes).into()],
    )?;
    if stats.granted_in_period < effective_limit(&g.policy, stats.completed_target) {
        stats.in_progress = count(
            c,
            "SELECT COUNT(*) FROM instances WHERE app_id = $1 AND group_id = $2 AND update_in_progress = 1 \
             AND last_update_granted_at > $3 AND status IN (2, 6, 7)",
            vec![timeout_start.into()],
        )?;
    }
    Ok(stats)
}

fn grant(c: &mut dyn Conn, now: i64, req: &CheckIn, g: &Group, target: &Package) -> Result<(), StoreError> {
    let first = c
        .query(
            "SELECT 1 FROM instances WHERE app_id = $1 AND group_id = $2 AND last_update_version = $3 LIMIT 1",
            &[(&g.app_id).into(), (&g.id).into(), (&target.version).into()],
        )?
        .is_empty();
    c.execute(
        "UPDATE instances SET status = $3, update_in_progress = 1, last_update_version = $4, from_version = $5, \
         last_update_granted_at = $6 WHERE app_id = $1 AND machine_id = $2",
        &[
            (&req.app_id).into(),
            (&req.machine_id).into(),
            InstanceStatus::Granted.code().into(),
            (&target.version).into(),
            (&req.version).into(),
            now.into(),
        ],
    )?;
    if first {
        add_activity(
            c,
            &Activity {
                ts: now,
                app_id: g.app_id.clone(),
                group_id: Some(g.id.clone()),
                kind: "rollout_started".into(),
                severity: Severity::Info,
                version: Some(target.version.clone()),
                message: format!("group {}: rollout of {} started", g.id, target.version),
            },
        )?;
    }
    Ok(())
}

/// Halts the group when failures among instances granted `version` pass the threshold.
fn maybe_halt(c: &mut dyn Conn, now: i64, g: &Group, version: &str) -> Result<(), StoreError> {
    let g = lock_group(c, &g.app_id, &g.id)?;
    if g.policy.updates != UpdatesMode::Enabled {
        return Ok(());
    }
    let rows = c.query(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE status IN (3, 9)), COUNT(*) FILTER (WHERE status = 9), \
         MAX(last_error_code) FROM instances WHERE app_id = $1 AND group_id = $2 AND last_update_version = $3",
        &[(&g.app_id).into(), (&g.id).into(), version.into()],
    )?;
    let (granted, failed, rollbacks) = (rows[0].int(0) as u64, rows[0].int(1) as u64, rows[0].int(2) as u64);
    if should_halt(&g.policy.halt, granted, failed) {
        let code = rows[0]
            .opt_int(3)
            .map(|c| error_code_name(c as u32))
            .unwrap_or_default();
        let reason = format!(
            "{failed} of {granted} instances granted {version} failed ({rollbacks} rollbacks; e.g. {code}), \
             threshold {} %",
            g.policy.halt.threshold_percent
        );
        halt(c, now, g, version, reason)?;
    }
    Ok(())
}

fn halt(c: &mut dyn Conn, now: i64, mut g: Group, version: &str, reason: String) -> Result<(), StoreError> {
    tracing::warn!(app = %g.app_id, group = %g.id, %reason, "halting rollout");
    g.policy.updates = UpdatesMode::Halted;
    g.policy.halted_reason = Some(reason.clone());
    save_group(c, &g)?;
    add_activity(
        c,
        &Activity {
            ts: now,
            app_id: g.app_id.clone(),
            group_id: Some(g.id.clone()),
            kind: "group_halted".into(),
            severity: Severity::Error,
            version: Some(version.to_string()),
            message: format!("group {} halted automatically: {reason}", g.id),
        },
    )?;
    Ok(())
}
