//! Prometheus metrics in the text exposition format (counters kept in atomics; instance gauges
//! computed from the database at scrape time).

use crate::db::PoolStats;
use crate::model::InstanceStatus;
use crate::store::{CheckOutcome, HeartbeatWrites, NoUpdateReason};
use boxcar_omaha::{Event, EventResult};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the request latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    checks_noupdate: AtomicU64,
    checks_update: AtomicU64,
    checks_withheld: AtomicU64,
    unknown_app: AtomicU64,
    grants: AtomicU64,
    error_events: AtomicU64,
    rollback_events: AtomicU64,
    bad_requests: AtomicU64,
    heartbeats_skipped: AtomicU64,
    heartbeats_touched: AtomicU64,
    heartbeats_upserted: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Counts a check outcome.
    pub fn outcome(&self, o: &CheckOutcome) {
        let c = match o {
            CheckOutcome::Granted(_) => {
                self.grants.fetch_add(1, Ordering::Relaxed);
                &self.checks_update
            }
            CheckOutcome::Update(_) => &self.checks_update,
            CheckOutcome::NoUpdate(NoUpdateReason::Withheld(_)) => &self.checks_withheld,
            CheckOutcome::NoUpdate(_) => &self.checks_noupdate,
            CheckOutcome::UnknownApp | CheckOutcome::Recorded => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts error and rollback events.
    pub fn events(&self, events: &[Event]) {
        for e in events {
            if e.event_result == EventResult::Error {
                self.error_events.fetch_add(1, Ordering::Relaxed);
                if e.error_code == Some(44) {
                    self.rollback_events.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Counts a request for an unknown app.
    pub fn unknown_app(&self) {
        self.unknown_app.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused request.
    pub fn bad_request(&self) {
        self.bad_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a heartbeat not written (within the last-seen resolution).
    pub fn heartbeat_skipped(&self) {
        self.heartbeats_skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the rows a heartbeat flush wrote, by how.
    pub fn heartbeats_written(&self, w: HeartbeatWrites) {
        self.heartbeats_touched.fetch_add(w.touched as u64, Ordering::Relaxed);
        self.heartbeats_upserted.fetch_add(w.upserted as u64, Ordering::Relaxed);
    }

    /// Records one Omaha request's latency: one counter per request (the bucket it falls in;
    /// the cumulative counts are summed at scrape time), so the two HTTP workers do not bounce a
    /// dozen cache lines per request.
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Renders everything, with per-instance gauges from `counts` and the pool figures.
    pub fn render(&self, counts: &[(String, String, String, String, InstanceStatus, u64)], pool: PoolStats) -> String {
        let mut out = String::new();
        let g = |x: &AtomicU64| x.load(Ordering::Relaxed);
        out.push_str("# HELP boxcar_instances Instances by app, group, channel, version and status.\n");
        out.push_str("# TYPE boxcar_instances gauge\n");
        for (app, group, channel, version, status, n) in counts {
            let _ = writeln!(
                out,
                "boxcar_instances{{app=\"{}\",group=\"{}\",channel=\"{}\",version=\"{}\",status=\"{}\"}} {n}",
                esc(app),
                esc(group),
                esc(channel),
                esc(version),
                status.name()
            );
        }
        out.push_str(
            "# HELP boxcar_update_checks_total Update checks by answer.\n# TYPE boxcar_update_checks_total counter\n",
        );
        for (label, v) in [
            ("noupdate", &self.checks_noupdate),
            ("update", &self.checks_update),
            ("withheld", &self.checks_withheld),
        ] {
            let _ = writeln!(out, "boxcar_update_checks_total{{result=\"{label}\"}} {}", g(v));
        }
        for (name, help, v) in [
            ("boxcar_update_grants_total", "Updates granted.", &self.grants),
            (
                "boxcar_error_events_total",
                "Error events received.",
                &self.error_events,
            ),
            (
                "boxcar_rollback_events_total",
                "Rollback events (error 44) received.",
                &self.rollback_events,
            ),
            (
                "boxcar_unknown_app_requests_total",
                "Requests for unknown apps.",
                &self.unknown_app,
            ),
            (
                "boxcar_bad_requests_total",
                "Refused Omaha requests.",
                &self.bad_requests,
            ),
            (
                "boxcar_heartbeats_skipped_total",
                "Heartbeats not written because they repeated, within the last-seen resolution, what was written.",
                &self.heartbeats_skipped,
            ),
            (
                "boxcar_heartbeats_touched_total",
                "Heartbeats written by moving last seen only, in batches (the row already said the rest).",
                &self.heartbeats_touched,
            ),
            (
                "boxcar_heartbeats_upserted_total",
                "Heartbeats written row by row with the full upsert (new instance, or something changed).",
                &self.heartbeats_upserted,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", g(v));
        }
        out.push_str("# HELP boxcar_omaha_request_duration_seconds Omaha request latency.\n");
        out.push_str("# TYPE boxcar_omaha_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += g(&self.latency_buckets[i]);
            let _ = writeln!(
                out,
                "boxcar_omaha_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        let count = g(&self.latency_count);
        let _ = writeln!(
            out,
            "boxcar_omaha_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "boxcar_omaha_request_duration_seconds_sum {}",
            g(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "boxcar_omaha_request_duration_seconds_count {count}");
        for (name, v) in [
            ("boxcar_db_connections_open", pool.open),
            ("boxcar_db_connections_in_use", pool.in_use),
            ("boxcar_db_connections_idle", pool.idle),
            ("boxcar_db_connections_max", pool.max),
        ] {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
