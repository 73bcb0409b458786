//! A small blocking connection pool (connections are created lazily up to a maximum).

use super::{Conn, DbError};
use std::sync::{Condvar, Mutex};

type Factory = Box<dyn Fn() -> Result<Box<dyn Conn>, DbError> + Send + Sync>;

/// Connection pool.
pub struct Pool {
    state: Mutex<State>,
    available: Condvar,
    max: usize,
    factory: Factory,
}

struct State {
    idle: Vec<Box<dyn Conn>>,
    open: usize,
}

/// Pool figures for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open.
    pub open: usize,
    /// Connections idle in the pool.
    pub idle: usize,
    /// Connections lent out.
    pub in_use: usize,
    /// Maximum size.
    pub max: usize,
}

impl Pool {
    /// A pool of at most `max` connections made by `factory`.
    pub fn new(max: usize, factory: Factory) -> Pool {
        Pool {
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            available: Condvar::new(),
            max,
            factory,
        }
    }

    /// Borrows a connection, waiting when all are in use.
    pub fn get(&self) -> Result<Pooled<'_>, DbError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled {
                    conn: Some(conn),
                    pool: self,
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match (self.factory)() {
                    Ok(conn) => Ok(Pooled {
                        conn: Some(conn),
                        pool: self,
                    }),
                    Err(e) => {
                        self.state.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                        self.available.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.available.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Current figures.
    pub fn stats(&self) -> PoolStats {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        PoolStats {
            open: s.open,
            idle: s.idle.len(),
            in_use: s.open - s.idle.len(),
            max: self.max,
        }
    }
}

/// A borrowed connection; goes back to the pool on drop (or is closed when broken).
pub struct Pooled<'a> {
    conn: Option<Box<dyn Conn>>,
    pool: &'a Pool,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = dyn Conn;
    fn deref(&self) -> &Self::Target {
        self.conn.as_deref().expect("pooled connection present until drop")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn.as_deref_mut().expect("pooled connection present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut state = self.pool.state.lock().unwrap_or_else(|p| p.into_inner());
            if conn.is_broken() {
                state.open -= 1;
            } else {
                state.idle.push(conn);
            }
            drop(state);
            self.pool.available.notify_one();
        }
    }
}
