//! What `boxcar reboot status` shows and what `boxcar reboot unlock ID` does, as library calls
//! so the CLI stays thin: strategy, windows and whether one is open now, and the lock holders.

use crate::config::{RebootConfig, StrategyKind};
use crate::etcd::{EtcdError, EtcdGateway, EtcdLock};
use crate::fleetlock::{FleetLockClient, FleetLockError};
use crate::strategy::LOCK_TIMEOUT;
use crate::window::Gate;
use jiff::Timestamp;
use std::fmt;

/// What a FleetLock server says about the node's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetLockHolders {
    /// No token configured: holders cannot be read through the protocol.
    NotListed,
    /// The server has no such group yet.
    NoGroupYet,
    /// Slots and current holders.
    Listed {
        /// Slots in the group.
        slots: i64,
        /// Current holders.
        holders: Vec<String>,
    },
}

/// The lock side of the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockView {
    /// The strategy takes no lock.
    NoLock,
    /// The etcd semaphore.
    Etcd {
        /// Its key.
        key: String,
        /// Slots (None: nobody created the semaphore yet).
        slots: Option<u64>,
        /// Current holders.
        holders: Vec<String>,
    },
    /// FleetLock: the protocol has no read call; holders come from a Boxcar server's admin
    /// API when `FLEETLOCK_TOKEN_FILE` is set.
    FleetLock {
        /// Base URL.
        url: String,
        /// What the server says about this group.
        holders: FleetLockHolders,
    },
    /// The lock service could not be read.
    Unavailable(String),
}

/// A snapshot for operators.
#[derive(Debug, Clone)]
pub struct Status {
    /// Strategy.
    pub strategy: StrategyKind,
    /// Windows as written.
    pub windows: Vec<String>,
    /// Their time zone's name.
    pub time_zone: String,
    /// The zone itself (times are shown in it).
    pub tz: jiff::tz::TimeZone,
    /// Window state at the time of the snapshot.
    pub gate: Gate,
    /// Lock group.
    pub group: String,
    /// Lock state.
    pub lock: LockView,
}

/// Builds the status at `now`, reading the lock service (errors are shown, not raised: status
/// must work exactly when things are broken).
pub fn status(config: &RebootConfig, now: Timestamp) -> Status {
    let lock = match config.strategy {
        StrategyKind::EtcdLock => {
            let l = etcd_lock(config, "status");
            match l.status() {
                Ok(Some(s)) => LockView::Etcd {
                    key: l.key().to_string(),
                    slots: Some(s.total_slots),
                    holders: s.holders,
                },
                Ok(None) => LockView::Etcd {
                    key: l.key().to_string(),
                    slots: None,
                    holders: Vec::new(),
                },
                Err(e) => LockView::Unavailable(e.to_string()),
            }
        }
        StrategyKind::FleetLock => {
            let url = config.fleetlock_url.clone().unwrap_or_default();
            match fleetlock_holders(config, &url) {
                Ok(holders) => LockView::FleetLock { url, holders },
                Err(e) => LockView::Unavailable(e),
            }
        }
        _ => LockView::NoLock,
    };
    Status {
        strategy: config.strategy,
        windows: config.schedule.windows.iter().map(ToString::to_string).collect(),
        time_zone: config.schedule.tz_name.clone(),
        tz: config.schedule.tz.clone(),
        gate: config.schedule.gate(now),
        group: config.group.clone(),
        lock,
    }
}

/// FleetLock holders as far as they can be known: listed by a Boxcar server when a token
/// is configured.
fn fleetlock_holders(config: &RebootConfig, url: &str) -> Result<FleetLockHolders, String> {
    let Some(file) = &config.fleetlock_token_file else {
        return Ok(FleetLockHolders::NotListed);
    };
    let token = std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    match crate::fleetlock::server_group(url, token.trim(), &config.group, LOCK_TIMEOUT) {
        Ok(Some(g)) => Ok(FleetLockHolders::Listed {
            slots: g.max_holders,
            holders: g.holders,
        }),
        Ok(None) => Ok(FleetLockHolders::NoGroupYet),
        Err(e) => Err(e.to_string()),
    }
}

fn etcd_lock(config: &RebootConfig, id: &str) -> EtcdLock {
    EtcdLock::new(
        EtcdGateway::new(config.etcd_endpoints.clone(), LOCK_TIMEOUT),
        &config.group,
        id,
        u64::from(config.max_holders),
        config.lock_ttl,
    )
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "strategy:  {}", self.strategy)?;
        if self.windows.is_empty() {
            writeln!(f, "windows:   none (any time)")?;
        } else {
            writeln!(f, "windows:   {} ({})", self.windows.join("; "), self.time_zone)?;
        }
        match &self.gate {
            Gate::Always => {}
            Gate::Open { closes } => writeln!(
                f,
                "now:       inside a window, closes {}",
                closes.to_zoned(self.tz.clone())
            )?,
            Gate::Closed { opens: Some(t) } => writeln!(
                f,
                "now:       outside, next window opens {}",
                t.to_zoned(self.tz.clone())
            )?,
            Gate::Closed { opens: None } => writeln!(f, "now:       outside")?,
        }
        match &self.lock {
            LockView::NoLock => Ok(()),
            LockView::Etcd { key, slots, holders } => {
                writeln!(f, "group:     {}", self.group)?;
                writeln!(f, "etcd key:  {key}")?;
                match slots {
                    Some(n) => writeln!(f, "holders:   {}/{n} {}", holders.len(), holders.join(", ")),
                    None => writeln!(f, "holders:   none (semaphore not created yet)"),
                }
            }
            LockView::FleetLock { url, holders } => {
                writeln!(f, "group:     {}", self.group)?;
                match holders {
                    FleetLockHolders::NotListed => writeln!(
                        f,
                        "fleetlock: {url} (set FLEETLOCK_TOKEN_FILE to a Boxcar server's read-only token to list holders)"
                    ),
                    FleetLockHolders::NoGroupYet => {
                        writeln!(f, "fleetlock: {url}")?;
                        writeln!(f, "holders:   none (no node has asked for a slot in this group yet)")
                    }
                    FleetLockHolders::Listed { slots, holders } => {
                        writeln!(f, "fleetlock: {url}")?;
                        writeln!(f, "holders:   {}/{slots} {}", holders.len(), holders.join(", "))
                    }
                }
            }
            LockView::Unavailable(e) => writeln!(f, "lock:      unavailable: {e}"),
        }
    }
}

/// Why an unlock failed.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    /// The strategy has no lock to release.
    #[error("strategy {0} has no reboot lock")]
    NoLock(StrategyKind),
    /// etcd failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The FleetLock server refused or was unreachable.
    #[error(transparent)]
    FleetLock(#[from] FleetLockError),
}

/// What an unlock did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocked {
    /// The id held a slot and no longer does.
    Released,
    /// The id held no slot (etcd tells; nothing changed).
    NotHeld,
    /// The server accepted the release (FleetLock does not say whether it was held).
    Accepted,
}

/// Releases `id`'s slot in the configured group: for a holder that died or was reinstalled.
pub fn unlock(config: &RebootConfig, id: &str) -> Result<Unlocked, UnlockError> {
    match config.strategy {
        StrategyKind::EtcdLock => Ok(if etcd_lock(config, id).unlock(id)? {
            Unlocked::Released
        } else {
            Unlocked::NotHeld
        }),
        StrategyKind::FleetLock => {
            let url = config.fleetlock_url.as_deref().unwrap_or_default();
            FleetLockClient::new(url, id, &config.group, LOCK_TIMEOUT).steady_state_for(id)?;
            Ok(Unlocked::Accepted)
        }
        k => Err(UnlockError::NoLock(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_layers;

    #[test]
    fn status_text_for_a_windowed_node() {
        let cfg = parse_layers(&[(
            "/etc/boxcar/update.conf",
            "REBOOT_STRATEGY=windowed\nREBOOT_WINDOWS=Sun 23:00 2h\n",
        )])
        .unwrap();
        let s = status(&cfg, "2024-01-08T00:30:00Z".parse().unwrap());
        assert_eq!(
            s.to_string(),
            "strategy:  windowed\nwindows:   Sun 23:00 2h (UTC)\nnow:       inside a window, closes 2024-01-08T01:00:00+00:00[UTC]\n"
        );
        assert!(matches!(
            unlock(&cfg, "x"),
            Err(UnlockError::NoLock(StrategyKind::Windowed))
        ));
    }

    #[test]
    fn status_survives_an_unreachable_etcd() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = RebootConfig {
            strategy: StrategyKind::EtcdLock,
            etcd_endpoints: vec![format!("http://127.0.0.1:{port}")],
            ..RebootConfig::default()
        };
        let s = status(&cfg, Timestamp::UNIX_EPOCH);
        assert!(matches!(s.lock, LockView::Unavailable(_)));
        assert!(s.to_string().contains("lock:      unavailable: etcd range"), "{s}");
    }
}
