//! FleetLock client (Zincati's protocol, served by the Boxcar server and by airlock):
//! `POST <base>/v1/pre-reboot` takes or re-confirms a slot, `POST <base>/v1/steady-state`
//! releases it (idempotent). Both carry the `fleet-lock-protocol: true` header and
//! `{"client_params":{"id":..,"group":..}}`; 200 means success, anything else is a refusal
//! with an optional `{"kind","value"}` body.

use crate::http;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// A failed FleetLock call.
#[derive(Debug, thiserror::Error)]
pub enum FleetLockError {
    /// The server could not be reached.
    #[error("FleetLock {op} at {url}: {message}")]
    Unreachable {
        /// `pre-reboot`, `steady-state` or `listing holders`.
        op: &'static str,
        /// The full URL.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The server refused (non-200).
    #[error("FleetLock {op} at {url}: HTTP {status} {kind}: {value}")]
    Refused {
        /// `pre-reboot`, `steady-state` or `listing holders`.
        op: &'static str,
        /// The full URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's bounded error token (`failed_lock_semaphore_full`), or `unknown`.
        kind: String,
        /// The server's human text.
        value: String,
    },
}

impl FleetLockError {
    /// The refusal kind, if the server answered.
    pub fn kind(&self) -> Option<&str> {
        match self {
            FleetLockError::Refused { kind, .. } => Some(kind),
            FleetLockError::Unreachable { .. } => None,
        }
    }
}

#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
}

/// A FleetLock client for one node.
pub struct FleetLockClient {
    base_url: String,
    id: String,
    group: String,
    agent: ureq::Agent,
}

impl FleetLockClient {
    /// A client for `base_url` (without `/v1/...`) acting as `id` in `group`.
    pub fn new(base_url: &str, id: &str, group: &str, timeout: Duration) -> FleetLockClient {
        FleetLockClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            id: id.to_string(),
            group: group.to_string(),
            agent: http::agent(timeout),
        }
    }

    fn call(&self, op: &'static str, id: &str) -> Result<(), FleetLockError> {
        let url = format!("{}/v1/{op}", self.base_url);
        let body = json!({"client_params": {"id": id, "group": self.group}}).to_string();
        match http::post_json(&self.agent, &url, &[("fleet-lock-protocol", "true")], &body) {
            Ok((200, _)) => Ok(()),
            Ok((status, text)) => {
                let r = serde_json::from_str::<Refusal>(&text).unwrap_or(Refusal {
                    kind: String::new(),
                    value: text.chars().take(200).collect(),
                });
                Err(FleetLockError::Refused {
                    op,
                    url,
                    status,
                    kind: if r.kind.is_empty() { "unknown".into() } else { r.kind },
                    value: r.value,
                })
            }
            Err(message) => Err(FleetLockError::Unreachable { op, url, message }),
        }
    }

    /// Asks for (or re-confirms) a reboot slot.
    pub fn pre_reboot(&self) -> Result<(), FleetLockError> {
        self.call("pre-reboot", &self.id)
    }

    /// Releases this node's slot (steady state reached).
    pub fn steady_state(&self) -> Result<(), FleetLockError> {
        self.call("steady-state", &self.id)
    }

    /// Releases another node's slot (operator unlock); the protocol lets anyone knowing the id
    /// do that, which is exactly what recovering from a dead holder needs.
    pub fn steady_state_for(&self, id: &str) -> Result<(), FleetLockError> {
        self.call("steady-state", id)
    }
}

/// One FleetLock group as a Boxcar server's admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LockGroup {
    /// Group name.
    pub name: String,
    /// Slots.
    pub max_holders: i64,
    /// Current holders.
    pub holders: Vec<String>,
}

/// Reads `group` from a Boxcar server's admin API (`GET /api/v1/fleetlock/groups` with a
/// read-only token): the FleetLock protocol itself has no read call. `None`: the server
/// knows no such group yet (nobody has asked for a slot in it).
pub fn server_group(
    base_url: &str,
    token: &str,
    group: &str,
    timeout: Duration,
) -> Result<Option<LockGroup>, FleetLockError> {
    let op = "listing holders";
    let url = format!("{}/api/v1/fleetlock/groups", base_url.trim_end_matches('/'));
    let auth = format!("Bearer {token}");
    match http::get(&http::agent(timeout), &url, &[("authorization", auth.as_str())]) {
        Ok((200, text)) => {
            let groups: Vec<LockGroup> = serde_json::from_str(&text).map_err(|e| FleetLockError::Refused {
                op,
                url: url.clone(),
                status: 200,
                kind: "bad_response".into(),
                value: e.to_string(),
            })?;
            Ok(groups.into_iter().find(|g| g.name == group))
        }
        Ok((status, text)) => Err(FleetLockError::Refused {
            op,
            url,
            status,
            kind: "unknown".into(),
            value: text.chars().take(200).collect(),
        }),
        Err(message) => Err(FleetLockError::Unreachable { op, url, message }),
    }
}
