//! PostgreSQL by URL: several server replicas share one database; grant decisions lock their group
//! row so the per-period limit holds across replicas.

use super::{Conn, Database, DbError, Dialect, Pool, PoolStats, Pooled, Row, Val};
use ::postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use ::postgres::{Client, NoTls, Statement};
use bytes::BytesMut;
use std::collections::HashMap;

/// A PostgreSQL database.
pub struct PostgresDb {
    pool: Pool,
}

impl PostgresDb {
    /// Connects lazily with up to `pool_size` connections; the first connection is made now so a
    /// wrong URL fails at start-up. Must be called outside an async context.
    pub fn connect(url: &str, pool_size: usize) -> Result<PostgresDb, DbError> {
        let url = url.to_string();
        let factory = move || -> Result<Box<dyn Conn>, DbError> {
            let client = Client::connect(&url, NoTls).map_err(|e| DbError::Connect(e.to_string()))?;
            Ok(Box::new(PgConn {
                client,
                statements: HashMap::new(),
            }))
        };
        let pool = Pool::new(pool_size.max(1), Box::new(factory));
        drop(pool.get()?);
        Ok(PostgresDb { pool })
    }
}

impl Database for PostgresDb {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    fn conn(&self) -> Result<Pooled<'_>, DbError> {
        self.pool.get()
    }
    fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }
}

struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
}

fn wrap(sql: &str, e: ::postgres::Error) -> DbError {
    let op = sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
    if e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION) {
        return DbError::Conflict(op);
    }
    DbError::Postgres { op, source: e }
}

/// Binds a [`Val`] to whatever type PostgreSQL inferred for the parameter.
#[derive(Debug)]
struct Param<'a>(&'a Val);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => v.to_string().as_str().to_sql(ty, out),
            },
            Val::Text(t) => match *ty {
                Type::INT8 => t.parse::<i64>()?.to_sql(ty, out),
                _ => t.as_str().to_sql(ty, out),
            },
        }
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

impl PgConn {
    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(|e| wrap(sql, e))?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

impl Conn for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError> {
        let stmt = self.statement(sql)?;
        let wrapped: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = wrapped.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(&stmt, &refs).map_err(|e| wrap(sql, e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut vals = Vec::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                let v = match *col.type_() {
                    Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Val::Int)),
                    Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(|v| Val::Int(v.into()))),
                    Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map(|v| Val::Int(v.into()))),
                    Type::BOOL => row.try_get::<_, Option<bool>>(i).map(|v| v.map(|v| Val::Int(v.into()))),
                    _ => row.try_get::<_, Option<String>>(i).map(|v| v.map(Val::Text)),
                }
                .map_err(|e| wrap(sql, e))?;
                vals.push(v.unwrap_or(Val::Null));
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError> {
        let stmt = self.statement(sql)?;
        let wrapped: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = wrapped.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        self.client.execute(&stmt, &refs).map_err(|e| wrap(sql, e))
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.client.batch_execute(sql).map_err(|e| wrap(sql, e))
    }

    fn is_broken(&self) -> bool {
        self.client.is_closed()
    }
}
