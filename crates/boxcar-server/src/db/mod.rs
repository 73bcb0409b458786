//! Storage: one [`Database`] trait, implemented for SQLite (embedded, default) and PostgreSQL.
//!
//! The store above speaks one SQL dialect subset both engines understand (`$n` parameters,
//! `BIGINT`/`TEXT` columns, `ON CONFLICT`, `COUNT(*) FILTER`), so the whole fleet logic is written
//! once and the same tests run against both engines. Connections are synchronous and pooled; the
//! HTTP layer calls into the store from blocking threads.

mod pool;
mod postgres;
mod schema;
mod sqlite;

pub use self::postgres::PostgresDb;
pub use pool::{Pool, PoolStats, Pooled};
pub use sqlite::SqliteDb;

/// A value crossing the storage boundary: every column is an integer or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// SQL NULL.
    Null,
    /// BIGINT.
    Int(i64),
    /// TEXT.
    Text(String),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Val::Null)
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Val>);

impl Row {
    /// Integer column (NULL reads as 0).
    pub fn int(&self, i: usize) -> i64 {
        self.opt_int(i).unwrap_or(0)
    }
    /// Nullable integer column.
    pub fn opt_int(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            Some(Val::Int(v)) => Some(*v),
            Some(Val::Text(t)) => t.parse().ok(),
            _ => None,
        }
    }
    /// Text column (NULL reads as empty).
    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }
    /// Nullable text column.
    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Val::Text(t)) => Some(t.clone()),
            Some(Val::Int(v)) => Some(v.to_string()),
            _ => None,
        }
    }
}

/// Which engine, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: writers serialise on `BEGIN IMMEDIATE`.
    Sqlite,
    /// PostgreSQL: writers lock the rows they decide on (`SELECT … FOR UPDATE`).
    Postgres,
}

/// Storage failures, naming the operation.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("{op}: sqlite: {source}")]
    Sqlite { op: String, source: rusqlite::Error },
    /// PostgreSQL failed.
    #[error("{op}: postgres: {source}")]
    Postgres { op: String, source: ::postgres::Error },
    /// A uniqueness constraint was violated (the thing exists already).
    #[error("{0}: already exists")]
    Conflict(String),
    /// Opening or pooling connections failed.
    #[error("connecting to the database: {0}")]
    Connect(String),
    /// A stored value could not be decoded.
    #[error("decoding stored {what}: {message}")]
    Decode { what: &'static str, message: String },
}

/// One connection: run statements with `$n` parameters.
pub trait Conn: Send {
    /// The engine behind this connection.
    fn dialect(&self) -> Dialect;
    /// Runs a query and returns all rows.
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError>;
    /// Runs a statement and returns the number of affected rows.
    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError>;
    /// Runs several statements without parameters (migrations, BEGIN/COMMIT).
    fn batch(&mut self, sql: &str) -> Result<(), DbError>;
    /// Whether the connection is unusable and must not go back to the pool.
    fn is_broken(&self) -> bool {
        false
    }
}

/// A database the server can run on.
pub trait Database: Send + Sync + 'static {
    /// The engine.
    fn dialect(&self) -> Dialect;
    /// A pooled connection.
    fn conn(&self) -> Result<Pooled<'_>, DbError>;
    /// Pool figures for `/metrics`.
    fn pool_stats(&self) -> PoolStats;
}

/// Opens a database from a location: `postgres://…`/`postgresql://…` URLs go to PostgreSQL,
/// anything else is an SQLite file path. Migrations run before this returns.
pub fn open(location: &str, pool_size: usize) -> Result<std::sync::Arc<dyn Database>, DbError> {
    let db: std::sync::Arc<dyn Database> =
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            std::sync::Arc::new(PostgresDb::connect(location, pool_size)?)
        } else {
            std::sync::Arc::new(SqliteDb::open(std::path::Path::new(location), pool_size)?)
        };
    schema::migrate(db.as_ref())?;
    Ok(db)
}

/// Runs `f` in a write transaction; commits on success, rolls back on error.
pub fn write_tx<R, E: From<DbError>>(db: &dyn Database, f: impl FnOnce(&mut dyn Conn) -> Result<R, E>) -> Result<R, E> {
    let mut conn = db.conn()?;
    conn.batch(match db.dialect() {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    })?;
    match f(&mut *conn) {
        Ok(r) => {
            conn.batch("COMMIT").map_err(E::from)?;
            Ok(r)
        }
        Err(e) => {
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}
