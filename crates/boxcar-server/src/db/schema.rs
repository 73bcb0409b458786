//! Versioned migrations, applied in order at start-up (under an advisory lock on PostgreSQL so
//! replicas starting together do not race).

use super::{Database, DbError, Dialect};

/// Migrations; `{serial}` becomes the engine's auto-increment key type.
const MIGRATIONS: &[&str] = &[
    // 1: the fleet model.
    "CREATE TABLE applications (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL);
    CREATE TABLE packages (
        id TEXT PRIMARY KEY, app_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
        version TEXT NOT NULL, arch TEXT NOT NULL, url TEXT NOT NULL, filename TEXT NOT NULL,
        size BIGINT NOT NULL, sha1 TEXT NOT NULL, sha256 TEXT NOT NULL, extra_files TEXT NOT NULL DEFAULT '[]',
        created_at BIGINT NOT NULL, UNIQUE (app_id, version, arch));
    CREATE TABLE channels (
        app_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE, name TEXT NOT NULL,
        created_at BIGINT NOT NULL, PRIMARY KEY (app_id, name));
    CREATE TABLE channel_packages (
        app_id TEXT NOT NULL, channel TEXT NOT NULL, arch TEXT NOT NULL,
        package_id TEXT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        PRIMARY KEY (app_id, channel, arch));
    CREATE TABLE fleet_groups (
        app_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE, id TEXT NOT NULL,
        name TEXT NOT NULL, channel TEXT, track TEXT NOT NULL, policy TEXT NOT NULL,
        created_at BIGINT NOT NULL, PRIMARY KEY (app_id, id), UNIQUE (app_id, track));
    CREATE TABLE instances (
        app_id TEXT NOT NULL, machine_id TEXT NOT NULL, group_id TEXT, track TEXT NOT NULL DEFAULT '',
        version TEXT NOT NULL DEFAULT '', arch TEXT NOT NULL DEFAULT '', ip TEXT NOT NULL DEFAULT '',
        oem TEXT NOT NULL DEFAULT '', alias TEXT NOT NULL DEFAULT '', status BIGINT NOT NULL DEFAULT 1,
        update_in_progress BIGINT NOT NULL DEFAULT 0, last_update_version TEXT, from_version TEXT,
        last_update_granted_at BIGINT, last_error_code BIGINT, first_seen BIGINT NOT NULL,
        last_check BIGINT NOT NULL, PRIMARY KEY (app_id, machine_id));
    CREATE INDEX instances_group_granted ON instances (app_id, group_id, last_update_granted_at);
    CREATE INDEX instances_last_check ON instances (last_check);
    CREATE INDEX instances_version ON instances (version);
    CREATE INDEX instances_ip ON instances (ip);
    CREATE TABLE events (
        id {serial}, ts BIGINT NOT NULL, app_id TEXT NOT NULL, machine_id TEXT NOT NULL, group_id TEXT,
        event_type BIGINT NOT NULL, event_result BIGINT NOT NULL, error_code BIGINT,
        previous_version TEXT, version TEXT NOT NULL);
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX events_machine ON events (app_id, machine_id);
    CREATE TABLE activity (
        id {serial}, ts BIGINT NOT NULL, app_id TEXT NOT NULL, group_id TEXT, kind TEXT NOT NULL,
        severity TEXT NOT NULL, version TEXT, message TEXT NOT NULL);
    CREATE INDEX activity_ts ON activity (ts);
    CREATE TABLE tokens (
        hash TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created_at BIGINT NOT NULL);
    CREATE TABLE fleetlock_groups (name TEXT PRIMARY KEY, max_holders BIGINT NOT NULL);
    CREATE TABLE fleetlock_holders (
        group_name TEXT NOT NULL, holder TEXT NOT NULL, since BIGINT NOT NULL, PRIMARY KEY (group_name, holder));",
    // 2: index-backed grant statistics (cost follows recent grants, not group size).
    "CREATE INDEX instances_group_progress ON instances (app_id, group_id, update_in_progress, last_update_granted_at);
    CREATE INDEX instances_group_version ON instances (app_id, group_id, last_update_version, status);",
    // 3: the in-flight and timed-out counts read status from the index too (no table lookup per
    // in-flight update while a rollout is running).
    "DROP INDEX instances_group_progress;
    CREATE INDEX instances_group_inflight ON instances (app_id, group_id, update_in_progress, status, last_update_granted_at);",
];

/// Applies the migrations not applied yet.
pub fn migrate(db: &dyn Database) -> Result<(), DbError> {
    let mut conn = db.conn()?;
    let serial = match db.dialect() {
        Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    match db.dialect() {
        Dialect::Sqlite => conn.batch("BEGIN IMMEDIATE")?,
        Dialect::Postgres => conn.batch("BEGIN; SELECT pg_advisory_xact_lock(7364022)")?,
    }
    let result = (|| {
        conn.batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")?;
        let done = conn.query("SELECT COUNT(*) FROM schema_migrations", &[])?[0].int(0) as usize;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(done) {
            tracing::info!(version = i + 1, "applying database migration");
            conn.batch(&m.replace("{serial}", serial))?;
            conn.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[(i as i64 + 1).into()],
            )?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.batch("COMMIT"),
        Err(e) => {
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}
