//! SQLite: one file, WAL journal, `BEGIN IMMEDIATE` for writers so grant decisions serialise.

use super::{Conn, Database, DbError, Dialect, Pool, PoolStats, Pooled, Row, Val};
use rusqlite::types::ValueRef;
use std::path::Path;

/// An SQLite database file.
pub struct SqliteDb {
    pool: Pool,
}

impl SqliteDb {
    /// Opens (creating) the file with WAL and a busy timeout so concurrent writers wait, not fail.
    pub fn open(path: &Path, pool_size: usize) -> Result<SqliteDb, DbError> {
        let path = path.to_path_buf();
        let factory = move || -> Result<Box<dyn Conn>, DbError> {
            let c =
                rusqlite::Connection::open(&path).map_err(|e| DbError::Connect(format!("{}: {e}", path.display())))?;
            c.busy_timeout(std::time::Duration::from_secs(30))
                .map_err(|e| wrap("setting busy timeout", e))?;
            c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
                .map_err(|e| wrap("setting pragmas", e))?;
            c.set_prepared_statement_cache_capacity(64);
            Ok(Box::new(SqliteConn(c)))
        };
        // Open once eagerly so a bad path fails at start-up.
        let pool = Pool::new(pool_size.max(1), Box::new(factory));
        drop(pool.get()?);
        Ok(SqliteDb { pool })
    }
}

impl Database for SqliteDb {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    fn conn(&self) -> Result<Pooled<'_>, DbError> {
        self.pool.get()
    }
    fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }
}

struct SqliteConn(rusqlite::Connection);

fn wrap(op: &str, e: rusqlite::Error) -> DbError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            return DbError::Conflict(op.to_string());
        }
    }
    DbError::Sqlite {
        op: op.to_string(),
        source: e,
    }
}

/// `$1` → `?1`: SQLite reads `$name` as a named parameter, `?N` as the N-th.
fn translate(sql: &str) -> String {
    sql.replace('$', "?")
}

fn op_name(sql: &str) -> String {
    sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

impl SqliteConn {
    fn prepare<'a>(&'a self, sql: &str, params: &[Val]) -> Result<rusqlite::CachedStatement<'a>, DbError> {
        let mut stmt = self
            .0
            .prepare_cached(&translate(sql))
            .map_err(|e| wrap(&op_name(sql), e))?;
        for (i, p) in params.iter().enumerate() {
            let r = match p {
                Val::Null => stmt.raw_bind_parameter(i + 1, rusqlite::types::Null),
                Val::Int(v) => stmt.raw_bind_parameter(i + 1, v),
                Val::Text(t) => stmt.raw_bind_parameter(i + 1, t),
            };
            r.map_err(|e| wrap(&op_name(sql), e))?;
        }
        Ok(stmt)
    }
}

impl Conn for SqliteConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.prepare(sql, params)?;
        let n = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| wrap(&op_name(sql), e))? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(match row.get_ref(i).map_err(|e| wrap(&op_name(sql), e))? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Real(v) => Val::Int(v as i64),
                    ValueRef::Text(t) | ValueRef::Blob(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                });
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError> {
        let mut stmt = self.prepare(sql, params)?;
        let n = stmt.raw_execute().map_err(|e| wrap(&op_name(sql), e))?;
        Ok(n as u64)
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.0.execute_batch(sql).map_err(|e| wrap(&op_name(sql), e))
    }
}
