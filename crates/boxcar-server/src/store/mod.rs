//! The fleet store: everything the server keeps, written once over [`crate::db::Database`].
//!
//! Methods are synchronous (they hold pooled connections); the HTTP layer calls them from blocking
//! threads. Grant decisions and event processing run in one write transaction each, which is what
//! keeps the per-period limit exact under concurrency and across replicas.

mod admin;
mod checkin;
mod fleetlock;
mod heartbeat;
mod query;

pub use admin::{hash_token, sha256_to_base64, GroupPatch, Role, DEFAULT_CHANNELS};
pub use checkin::{CheckIn, CheckOutcome, NoUpdateReason};
pub use fleetlock::LockOutcome;
pub use heartbeat::{Heartbeat, HeartbeatWrites};
pub use query::{GroupProgress, InstanceFilter, Snapshot, SnapshotGroup};

use crate::db::{Conn, Database, DbError, Row};
use crate::model::{Activity, Severity};
use std::sync::Arc;

/// Store failures as the API reports them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request makes no sense.
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether this is a uniqueness conflict (HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Db(DbError::Conflict(_)))
    }
}

/// The fleet store.
#[derive(Clone)]
pub struct Store {
    db: Arc<dyn Database>,
}

impl Store {
    /// A store over an opened (migrated) database.
    pub fn new(db: Arc<dyn Database>) -> Store {
        Store { db }
    }

    /// The database, for pool metrics.
    pub fn database(&self) -> &dyn Database {
        self.db.as_ref()
    }

    pub(crate) fn conn(&self) -> Result<crate::db::Pooled<'_>, DbError> {
        self.db.conn()
    }

    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<R, StoreError>) -> Result<R, StoreError> {
        crate::db::write_tx(self.db.as_ref(), f)
    }
}

/// Appends to the activity log inside a transaction.
pub(crate) fn add_activity(c: &mut dyn Conn, a: &Activity) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO activity (ts, app_id, group_id, kind, severity, version, message) VALUES ($1,$2,$3,$4,$5,$6,$7)",
        &[
            a.ts.into(),
            (&a.app_id).into(),
            a.group_id.clone().into(),
            (&a.kind).into(),
            severity_name(a.severity).into(),
            a.version.clone().into(),
            (&a.message).into(),
        ],
    )?;
    Ok(())
}

pub(crate) fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

pub(crate) fn activity_from_row(r: &Row) -> Activity {
    Activity {
        ts: r.int(0),
        app_id: r.text(1),
        group_id: r.opt_text(2),
        kind: r.text(3),
        severity: match r.text(4).as_str() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            _ => Severity::Info,
        },
        version: r.opt_text(5),
        message: r.text(6),
    }
}

/// A random hex id (16 bytes).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the OS random source works");
    hex::encode(buf)
}
