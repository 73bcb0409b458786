//! The etcd-lock strategy's storage: a counting semaphore in etcd v3 ([`crate::semaphore`]),
//! updated by compare-and-swap on the key's `mod_revision`, spoken over etcd's v3 JSON gateway
//! (`POST /v3/kv/range`, `/v3/kv/txn`; keys and values base64).
//!
//! Why the JSON gateway and not a gRPC client: it is plain HTTP/1.1 with `ureq`, which the node
//! already carries, so the agent gets etcd without tonic/prost/protoc, an async runtime or a
//! second HTTP stack; the gateway is on by default on every etcd v3.4+ client port. The price is
//! no watch streams (we poll, which the reboot cadence tolerates) and base64 in the logs.

use crate::http;
use crate::semaphore::{semaphore_key, LockOutcome, Semaphore};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How many times a write is retried after losing a compare-and-swap race.
const MAX_CAS_ATTEMPTS: u32 = 200;

/// A failed etcd operation.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered.
    #[error("etcd {op} on {key}: no endpoint reachable ({message})")]
    Unreachable {
        /// The operation (range, txn).
        op: &'static str,
        /// The key.
        key: String,
        /// The last transport error.
        message: String,
    },
    /// An endpoint answered with an error or something unparsable.
    #[error("etcd {op} on {key} at {endpoint}: {message}")]
    Response {
        /// The operation.
        op: &'static str,
        /// The key.
        key: String,
        /// The endpoint that answered.
        endpoint: String,
        /// Status and body, or the parse error.
        message: String,
    },
    /// The stored semaphore is not airlock's JSON.
    #[error("decoding the semaphore at {key}: {message}")]
    Value {
        /// The key.
        key: String,
        /// The decode error.
        message: String,
    },
    /// Too many concurrent writers.
    #[error("updating {key}: lost {attempts} compare-and-swap races in a row")]
    Contention {
        /// The key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
}

/// A stored key's value and revision.
#[derive(Debug, Clone)]
pub struct Kv {
    /// The value bytes.
    pub value: Vec<u8>,
    /// The revision of the last write, for compare-and-swap.
    pub mod_revision: i64,
}

/// A client for etcd's v3 JSON gateway over several endpoints (tried in turn).
pub struct EtcdGateway {
    endpoints: Vec<String>,
    agent: ureq::Agent,
    preferred: AtomicUsize,
}

impl EtcdGateway {
    /// A client for `endpoints` (`http://host:port`), each request bounded by `timeout`.
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> EtcdGateway {
        EtcdGateway {
            endpoints,
            agent: http::agent(timeout),
            preferred: AtomicUsize::new(0),
        }
    }

    fn call(&self, op: &'static str, path: &str, key: &str, body: Value) -> Result<Value, EtcdError> {
        let n = self.endpoints.len().max(1);
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last = String::from("no endpoints configured");
        for i in 0..self.endpoints.len() {
            let idx = (first + i) % n;
            let endpoint = &self.endpoints[idx];
            match http::post_json(&self.agent, &format!("{endpoint}{path}"), &[], &body.to_string()) {
                Ok((200, text)) => {
                    self.preferred.store(idx, Ordering::Relaxed);
                    return serde_json::from_str(&text).map_err(|e| EtcdError::Response {
                        op,
                        key: key.into(),
                        endpoint: endpoint.clone(),
                        message: format!("parsing response: {e}"),
                    });
                }
                // 503 and friends: this member cannot serve (no leader yet); try the next.
                Ok((status, text)) if status >= 500 => last = format!("{endpoint}: HTTP {status}: {text}"),
                Ok((status, text)) => {
                    return Err(EtcdError::Response {
                        op,
                        key: key.into(),
                        endpoint: endpoint.clone(),
                        message: format!("HTTP {status}: {text}"),
                    })
                }
                Err(e) => last = format!("{endpoint}: {e}"),
            }
        }
        Err(EtcdError::Unreachable {
            op,
            key: key.into(),
            message: last,
        })
    }

    /// Reads `key`.
    pub fn get(&self, key: &str) -> Result<Option<Kv>, EtcdError> {
        let resp = self.call("range", "/v3/kv/range", key, json!({ "key": B64.encode(key) }))?;
        let Some(kv) = resp.get("kvs").and_then(|k| k.get(0)) else {
            return Ok(None);
        };
        let bad = |m: &str| EtcdError::Value {
            key: key.into(),
            message: m.into(),
        };
        let value = match kv.get("value").and_then(Value::as_str) {
            Some(v) => B64.decode(v).map_err(|e| bad(&e.to_string()))?,
            None => Vec::new(),
        };
        let mod_revision = int_field(kv, "mod_revision").ok_or_else(|| bad("missing mod_revision"))?;
        Ok(Some(Kv { value, mod_revision }))
    }

    /// Writes `value` if the key is still at `expected` (`None`: still absent). Returns whether
    /// the write happened.
    pub fn put_if(&self, key: &str, expected: Option<i64>, value: &[u8]) -> Result<bool, EtcdError> {
        let k = B64.encode(key);
        let compare = match expected {
            Some(rev) => json!({"target": "MOD", "key": k, "mod_revision": rev.to_string(), "result": "EQUAL"}),
            None => json!({"target": "CREATE", "key": k, "create_revision": "0", "result": "EQUAL"}),
        };
        let body = json!({
            "compare": [compare],
            "success": [{"request_put": {"key": k, "value": B64.encode(value)}}],
        });
        let resp = self.call("txn", "/v3/kv/txn", key, body)?;
        Ok(resp.get("succeeded").and_then(Value::as_bool).unwrap_or(false))
    }
}

/// proto3 JSON renders int64 as strings; accept both.
fn int_field(v: &Value, name: &str) -> Option<i64> {
    match v.get(name)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Result of a lock attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// This node holds a slot.
    Held,
    /// All slots are taken.
    Busy {
        /// Who holds them.
        holders: Vec<String>,
        /// How many slots there are.
        slots: u64,
    },
}

/// The etcd-lock: one group's semaphore, taken and released by one holder id.
pub struct EtcdLock {
    gateway: EtcdGateway,
    key: String,
    id: String,
    max_holders: u64,
    ttl: Option<Duration>,
}

impl EtcdLock {
    /// A lock on `group` for holder `id`; `max_holders` is used only when this node creates the
    /// semaphore (afterwards the stored `total_slots` rules, as with airlock).
    pub fn new(gateway: EtcdGateway, group: &str, id: &str, max_holders: u64, ttl: Option<Duration>) -> EtcdLock {
        EtcdLock {
            gateway,
            key: semaphore_key(group),
            id: id.to_string(),
            max_holders,
            ttl,
        }
    }

    /// The etcd key used.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Reads the semaphore (None if nobody created it yet).
    pub fn status(&self) -> Result<Option<Semaphore>, EtcdError> {
        match self.gateway.get(&self.key)? {
            None => Ok(None),
            Some(kv) => Ok(Some(self.decode(&kv.value)?)),
        }
    }

    fn decode(&self, value: &[u8]) -> Result<Semaphore, EtcdError> {
        serde_json::from_slice(value).map_err(|e| EtcdError::Value {
            key: self.key.clone(),
            message: e.to_string(),
        })
    }

    /// Read-modify-CAS loop. `f` returns its result and whether the value must be written.
    fn modify<T>(&self, mut f: impl FnMut(&mut Semaphore) -> (T, bool)) -> Result<T, EtcdError> {
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let current = self.gateway.get(&self.key)?;
            let (mut sem, rev) = match &current {
                Some(kv) => (self.decode(&kv.value)?, Some(kv.mod_revision)),
                None => (Semaphore::new(self.max_holders), None),
            };
            let (out, write) = f(&mut sem);
            if !write {
                return Ok(out);
            }
            let value = serde_json::to_vec(&sem).map_err(|e| EtcdError::Value {
                key: self.key.clone(),
                message: e.to_string(),
            })?;
            if self.gateway.put_if(&self.key, rev, &value)? {
                return Ok(out);
            }
            tracing::debug!(key = %self.key, attempt, "lost a compare-and-swap race, retrying");
            std::thread::sleep(jitter(&self.id, attempt));
        }
        Err(EtcdError::Contention {
            key: self.key.clone(),
            attempts: MAX_CAS_ATTEMPTS,
        })
    }

    /// Takes a slot (recursive: holding one already counts as success). Stale holders past the
    /// TTL are evicted first.
    pub fn acquire(&self) -> Result<Acquire, EtcdError> {
        let now = unix_now();
        self.modify(|sem| {
            let evicted = match self.ttl {
                Some(ttl) => sem.evict_stale(now, ttl),
                None => Vec::new(),
            };
            for e in &evicted {
                tracing::warn!(holder = %e, key = %self.key, "evicting reboot lock holder past its TTL");
            }
            match sem.lock(&self.id, now) {
                LockOutcome::AlreadyHeld => (Acquire::Held, !evicted.is_empty()),
                LockOutcome::Taken => (Acquire::Held, true),
                LockOutcome::Full(holders) => (
                    Acquire::Busy {
                        holders,
                        slots: sem.total_slots,
                    },
                    !evicted.is_empty(),
                ),
            }
        })
    }

    /// Releases this node's slot (idempotent); returns whether it held one.
    pub fn release(&self) -> Result<bool, EtcdError> {
        let id = self.id.clone();
        self.unlock(&id)
    }

    /// Releases `id`'s slot (operator's `boxcar reboot unlock ID`); returns whether it held one.
    pub fn unlock(&self, id: &str) -> Result<bool, EtcdError> {
        self.modify(|sem| {
            let held = sem.unlock(id);
            (held, held)
        })
    }
}

/// Unix seconds now (0 if the clock is before 1970).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A short, de-synchronising pause after a lost race (no RNG needed: id hash + time).
fn jitter(id: &str, attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let h = id
        .bytes()
        .fold(u64::from(nanos), |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    let cap = 2 + u64::from(attempt.min(20));
    Duration::from_millis(1 + h % cap)
}
