//! The Omaha service: turns requests into store calls and answers.
//!
//! Most check-ins change nothing (the node runs the channel's version and reports a plain
//! heartbeat). Those are answered from a per-replica routing snapshot and their "last seen" is
//! written in batches; everything that can change state (events, an update to decide) goes
//! through one store transaction. The snapshot is refreshed after local admin writes and every
//! [`SNAPSHOT_REFRESH`] so that replicas converge.

use crate::lastseen::{Admission, LastSeen, Sighting, CAPACITY, DEFAULT_RESOLUTION};
use crate::metrics::Metrics;
use crate::model::{arch_from_board, compare_versions, Package};
use crate::store::{CheckIn, CheckOutcome, Heartbeat, NoUpdateReason, Snapshot, Store, StoreError};
use boxcar_omaha::{
    normalize_app_id, Action, AppRequest, AppResponse, AppStatus, Limits, Manifest, ParseError, Request, Response,
    UpdateCheckResponse, UpdateStatus,
};
use std::cmp::Ordering;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How often each replica reloads the routing snapshot.
pub const SNAPSHOT_REFRESH: Duration = Duration::from_secs(2);
/// How often buffered heartbeats are written.
pub const HEARTBEAT_FLUSH: Duration = Duration::from_millis(500);

/// Where the server gets the time from.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock.
    System,
    /// A settable clock (simulations and tests).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            Clock::Manual(t) => t.load(AtomicOrdering::SeqCst),
        }
    }
}

/// Why an Omaha request was refused (HTTP 4xx/5xx).
#[derive(Debug, thiserror::Error)]
pub enum OmahaError {
    /// The document did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The request is not Omaha 3.0 or names no app.
    #[error("handling Omaha request: {0}")]
    Invalid(String),
    /// The store failed.
    #[error("handling Omaha request: {0}")]
    Store(#[from] StoreError),
}

/// Shared server state for the Omaha side.
pub struct Fleet {
    /// The store.
    pub store: Store,
    /// The clock.
    pub clock: Clock,
    /// Counters and histograms.
    pub metrics: Metrics,
    snapshot: RwLock<Arc<Snapshot>>,
    pending: Mutex<Pending>,
    flushing: Mutex<()>,
    limits: Limits,
}

/// Heartbeats waiting for the next flush, and what was queued per instance recently (one lock:
/// deciding and queueing is one step).
struct Pending {
    queue: Vec<Heartbeat>,
    seen: LastSeen,
}

impl Fleet {
    /// A fleet service over `store`; loads the first snapshot (blocking).
    pub fn new(store: Store, clock: Clock) -> Result<Fleet, StoreError> {
        let snap = store.snapshot()?;
        Ok(Fleet {
            store,
            clock,
            metrics: Metrics::default(),
            snapshot: RwLock::new(Arc::new(snap)),
            pending: Mutex::new(Pending {
                queue: Vec::new(),
                seen: LastSeen::new(DEFAULT_RESOLUTION, CAPACITY),
            }),
            flushing: Mutex::new(()),
            limits: Limits::default(),
        })
    }

    /// Reloads the routing snapshot (blocking).
    pub fn refresh_snapshot(&self) -> Result<(), StoreError> {
        let snap = self.store.snapshot()?;
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
        Ok(())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the last-seen resolution: a heartbeat that repeats, within this time, what this
    /// replica already queued for the instance is not written ([`crate::lastseen`]); zero writes
    /// every heartbeat. Starts from an empty map.
    pub fn set_last_seen_resolution(&self, resolution: Duration) {
        self.pending().seen = LastSeen::new(resolution, CAPACITY);
    }

    /// Writes buffered heartbeats (blocking). Flushes do not overlap: a caller waits for one in
    /// progress, so when this returns everything queued before the call is written. Returns how
    /// many heartbeats were queued.
    pub fn flush_heartbeats(&self) -> Result<usize, StoreError> {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = std::mem::take(&mut self.pending().queue);
        let n = batch.len();
        match self.store.flush_heartbeats(&mut batch) {
            Ok(writes) => self.metrics.heartbeats_written(writes),
            Err(e) => {
                // What the map says was queued may not be in the database: write everything again.
                self.pending().seen.clear();
                return Err(e);
            }
        }
        Ok(n)
    }

    /// Prunes instances not seen, and events and activity older than, `before` (blocking); the
    /// last-seen map is emptied so that an instance pruned here is written again at its next
    /// check.
    pub fn prune(&self, before: i64) -> Result<(u64, u64, u64), StoreError> {
        let pruned = self.store.prune(before)?;
        self.pending().seen.clear();
        Ok(pruned)
    }

    /// Handles one Omaha request body (blocking when the request needs the store; see
    /// [`Fleet::prepare`] for answering snapshot-only requests without a blocking thread).
    pub fn handle(&self, body: &[u8], ip: &str) -> Result<String, OmahaError> {
        let prepared = self.prepare(body)?;
        self.answer(&prepared, ip)
    }

    /// Parses and validates a request and decides, against the current routing snapshot, whether
    /// answering it needs the store. Pure CPU work (bounded by the parser limits), so the HTTP layer
    /// runs it on its event loop and only hands [`Path::Store`] requests to a blocking thread.
    pub fn prepare(&self, body: &[u8]) -> Result<Prepared, OmahaError> {
        let req = Request::parse_with(body, &self.limits)?;
        if req.protocol != "3.0" {
            return Err(OmahaError::Invalid(format!(
                "unsupported protocol {:?}, expected 3.0",
                req.protocol
            )));
        }
        if req.apps.is_empty() {
            return Err(OmahaError::Invalid("request has no <app>".into()));
        }
        // Validated up front so that a bad second app does not leave the first one half-applied.
        if req.apps.iter().any(|a| a.machine_id.is_empty()) {
            return Err(OmahaError::Invalid("<app> has no machineid".into()));
        }
        let snap = self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone();
        let routes: Vec<AppRoute> = req.apps.iter().map(|app| route_app(&snap, &req, app)).collect();
        let path = if routes.iter().all(|r| r.plan != AppPlan::Store) {
            Path::Snapshot
        } else {
            Path::Store
        };
        Ok(Prepared {
            req,
            snap,
            routes,
            path,
        })
    }

    /// Answers a prepared request. Touches the database only for [`Path::Store`] requests (then it
    /// blocks: call it from a blocking thread); snapshot-only requests just queue heartbeats.
    pub fn answer(&self, p: &Prepared, ip: &str) -> Result<String, OmahaError> {
        let now = self.clock.now();
        let mut apps = Vec::with_capacity(p.req.apps.len());
        for (app, route) in p.req.apps.iter().zip(&p.routes) {
            apps.push(self.handle_app(now, &p.snap, route, app, ip)?);
        }
        Ok(Response {
            protocol: "3.0".into(),
            server: Some("boxcar".into()),
            daystart_elapsed_seconds: Some((now.rem_euclid(86400)) as u64),
            apps,
        }
        .to_xml())
    }

    fn handle_app(
        &self,
        now: i64,
        snap: &Snapshot,
        route: &AppRoute,
        app: &AppRequest,
        ip: &str,
    ) -> Result<AppResponse, OmahaError> {
        let AppRoute {
            app_id,
            arch,
            track,
            plan,
        } = route;
        let mut resp = AppResponse {
            app_id: app.app_id.clone(),
            status: AppStatus::Ok,
            ping_status: app.ping.as_ref().map(|_| "ok".to_string()),
            update_check: None,
            event_acks: app.events.len(),
        };
        let outcome = match plan {
            AppPlan::UnknownApp => {
                self.metrics.unknown_app();
                resp.status = AppStatus::UnknownApplication;
                resp.update_check = app
                    .update_check
                    .as_ref()
                    .map(|_| update_check(UpdateStatus::ErrorInternal));
                return Ok(resp);
            }
            AppPlan::Heartbeat => {
                let group = snap.apps.get(app_id).and_then(|groups| groups.get(track));
                let sighting = Sighting {
                    app_id,
                    machine_id: &app.machine_id,
                    group_id: group.map(|g| g.id.as_str()),
                    track,
                    version: &app.version,
                    arch,
                    ip,
                    oem: app.oem.as_deref().unwrap_or_default(),
                    alias: app.machine_alias.as_deref().unwrap_or_default(),
                    at: now,
                };
                let mut pending = self.pending();
                match pending.seen.admit(&sighting) {
                    Admission::Write => pending.queue.push(heartbeat(&sighting)),
                    Admission::Skip => self.metrics.heartbeat_skipped(),
                }
                drop(pending);
                match (&app.update_check, group) {
                    (None, _) => CheckOutcome::Recorded,
                    (Some(_), None) => CheckOutcome::NoUpdate(NoUpdateReason::UnknownGroup),
                    (Some(_), Some(_)) => CheckOutcome::NoUpdate(NoUpdateReason::UpToDate),
                }
            }
            AppPlan::Store => {
                let check = CheckIn {
                    app_id: app_id.clone(),
                    machine_id: app.machine_id.clone(),
                    version: app.version.clone(),
                    track: track.clone(),
                    arch: arch.to_string(),
                    ip: ip.to_string(),
                    oem: app.oem.clone().unwrap_or_default(),
                    alias: app.machine_alias.clone().unwrap_or_default(),
                    events: app.events.clone(),
                    update_check: app.update_check.is_some(),
                };
                // The check-in rewrites the row: the heartbeats after it are written, whatever
                // this replica queued before.
                self.pending().seen.forget(&check.app_id, &check.machine_id);
                let outcome = self.store.check_in(now, &check);
                self.pending().seen.forget(&check.app_id, &check.machine_id);
                let outcome = outcome?;
                self.metrics.events(&check.events);
                outcome
            }
        };
        self.metrics.outcome(&outcome);
        match outcome {
            CheckOutcome::UnknownApp => {
                resp.status = AppStatus::UnknownApplication;
                resp.update_check = app
                    .update_check
                    .as_ref()
                    .map(|_| update_check(UpdateStatus::ErrorInternal));
            }
            CheckOutcome::Recorded => {}
            CheckOutcome::NoUpdate(_) => resp.update_check = Some(update_check(UpdateStatus::NoUpdate)),
            CheckOutcome::Update(pkg) | CheckOutcome::Granted(pkg) => resp.update_check = Some(update_response(&pkg)),
        }
        Ok(resp)
    }
}

fn heartbeat(s: &Sighting) -> Heartbeat {
    Heartbeat {
        app_id: s.app_id.to_string(),
        machine_id: s.machine_id.to_string(),
        group_id: s.group_id.map(str::to_string),
        track: s.track.to_string(),
        version: s.version.to_string(),
        arch: s.arch.to_string(),
        ip: s.ip.to_string(),
        oem: s.oem.to_string(),
        alias: s.alias.to_string(),
        at: s.at,
    }
}

/// Where a request is answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Every app is answered from the routing snapshot; only heartbeats are queued (no database
    /// access, no blocking).
    Snapshot,
    /// At least one app has events to record or an update to decide: one store transaction per
    /// such app (blocking).
    Store,
}

/// A parsed, validated request and the snapshot it is answered from (so the route decided in
/// [`Fleet::prepare`] is the one [`Fleet::answer`] takes, even if the snapshot is refreshed in
/// between).
pub struct Prepared {
    req: Request,
    snap: Arc<Snapshot>,
    routes: Vec<AppRoute>,
    path: Path,
}

impl Prepared {
    /// Whether answering needs the store.
    pub fn path(&self) -> Path {
        self.path
    }
}

/// How one app of a request is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppPlan {
    /// The app id is not in the snapshot.
    UnknownApp,
    /// Nothing changes but "last seen": only heartbeat events, and no update check or already
    /// running the target (or no group / no target for this track).
    Heartbeat,
    /// Events to record or an update to decide.
    Store,
}

/// One app's route, decided once in [`Fleet::prepare`] against the snapshot it is answered from.
struct AppRoute {
    app_id: String,
    arch: &'static str,
    track: String,
    plan: AppPlan,
}

/// Classifies one app against the snapshot (pure).
fn route_app(snap: &Snapshot, req: &Request, app: &AppRequest) -> AppRoute {
    let app_id = normalize_app_id(&app.app_id);
    let arch = arch_from_board(app.board.as_deref(), req.os.as_ref().and_then(|o| o.arch.as_deref()));
    let track = app.track.clone().unwrap_or_else(|| "stable".into());
    let plan = match snap.apps.get(&app_id) {
        None => AppPlan::UnknownApp,
        Some(groups) => {
            let group = groups.get(&track);
            let only_heartbeats = app.events.iter().all(crate::events::is_heartbeat);
            let up_to_date = match group.and_then(|g| g.targets.get(arch)) {
                None => true,
                Some(target) => compare_versions(&app.version, target) != Ordering::Less,
            };
            if only_heartbeats && (app.update_check.is_none() || up_to_date) {
                AppPlan::Heartbeat
            } else {
                AppPlan::Store
            }
        }
    };
    AppRoute {
        app_id,
        arch,
        track,
        plan,
    }
}

fn update_check(status: UpdateStatus) -> UpdateCheckResponse {
    UpdateCheckResponse {
        status,
        poll_interval: None,
        urls: Vec::new(),
        manifest: None,
    }
}

/// The answer update_engine needs: codebase URL, first package = payload (name, size, SHA-1),
/// extra files as further packages with `hash_sha256`, postinstall action with base64 SHA-256.
pub fn update_response(pkg: &Package) -> UpdateCheckResponse {
    let mut packages = vec![boxcar_omaha::Package {
        name: pkg.filename.clone(),
        hash: Some(pkg.sha1.clone()),
        hash_sha256: None,
        size: pkg.size,
        required: true,
    }];
    for f in &pkg.extra_files {
        packages.push(boxcar_omaha::Package {
            name: f.name.clone(),
            hash: Some(f.sha1.clone()),
            hash_sha256: Some(f.sha256_hex.clone()),
            size: f.size,
            required: false,
        });
    }
    UpdateCheckResponse {
        status: UpdateStatus::Ok,
        poll_interval: None,
        urls: vec![pkg.url.clone()],
        manifest: Some(Manifest {
            version: pkg.version.clone(),
            packages,
            actions: vec![Action {
                event: "postinstall".into(),
                sha256: Some(pkg.sha256.clone()),
                disable_payload_backoff: true,
                ..Action::default()
            }],
        }),
    }
}
