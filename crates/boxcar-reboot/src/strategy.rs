//! The strategies behind one trait: each answers "may this node reboot now?" and takes back
//! its permission once the node is steady. Windows are not a strategy's business: the
//! [`crate::cycle::Coordinator`] gates every strategy by the schedule, so windows combine with
//! the locks.

use crate::config::{RebootConfig, StrategyKind};
use crate::etcd::{Acquire, EtcdError, EtcdGateway, EtcdLock};
use crate::fleetlock::{FleetLockClient, FleetLockError};
use std::path::PathBuf;
use std::time::Duration;

/// Per-request timeout for lock servers.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a strategy says about rebooting now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// Go ahead (a lock, if any, is now held).
    Granted,
    /// Not now; the text says why (e.g. who holds the slots).
    Wait(String),
    /// Someone else reboots the node (kured); nothing more to do here.
    HandedOff(String),
    /// Automatic reboots are disabled.
    Never,
}

/// A strategy's failure; the coordinator treats it as "no permission".
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// etcd failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The FleetLock server failed.
    #[error(transparent)]
    FleetLock(#[from] FleetLockError),
    /// The kured sentinel could not be written.
    #[error("writing kured sentinel {path}: {source}")]
    Sentinel {
        /// The sentinel path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The node has no id to hold a lock with.
    #[error("reading the node id from {path}: {message}")]
    NodeId {
        /// Where it was looked for.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// One reboot strategy.
pub trait Strategy: Send + Sync {
    /// Which one this is.
    fn kind(&self) -> StrategyKind;
    /// Asks for permission to reboot now; takes a lock if the strategy has one.
    fn request(&self) -> Result<Permission, StrategyError>;
    /// Gives the permission back (after a healthy boot, or when an attempt is aborted).
    /// Idempotent: releasing what is not held succeeds.
    fn release(&self) -> Result<(), StrategyError>;
}

/// `off`: never reboot automatically.
pub struct Off;

impl Strategy for Off {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Off
    }
    fn request(&self) -> Result<Permission, StrategyError> {
        Ok(Permission::Never)
    }
    fn release(&self) -> Result<(), StrategyError> {
        Ok(())
    }
}

/// `reboot` and `windowed`: no lock, permission is immediate (the windows gate it).
pub struct Immediate(pub StrategyKind);

impl Strategy for Immediate {
    fn kind(&self) -> StrategyKind {
        self.0
    }
    fn request(&self) -> Result<Permission, StrategyError> {
        Ok(Permission::Granted)
    }
    fn release(&self) -> Result<(), StrategyError> {
        Ok(())
    }
}

/// `etcd-lock`: a slot of the group's semaphore in etcd.
pub struct EtcdStrategy(pub EtcdLock);

impl Strategy for EtcdStrategy {
    fn kind(&self) -> StrategyKind {
        StrategyKind::EtcdLock
    }
    fn request(&self) -> Result<Permission, StrategyError> {
        Ok(match self.0.acquire()? {
            Acquire::Held => Permission::Granted,
            Acquire::Busy { holders, slots } => Permission::Wait(format!(
                "all {slots} reboot slots in {} are held by {}",
                self.0.key(),
                holders.join(", ")
            )),
        })
    }
    fn release(&self) -> Result<(), StrategyError> {
        self.0.release()?;
        Ok(())
    }
}

/// `fleetlock`: a slot from a FleetLock server.
pub struct FleetLockStrategy(pub FleetLockClient);

impl Strategy for FleetLockStrategy {
    fn kind(&self) -> StrategyKind {
        StrategyKind::FleetLock
    }
    fn request(&self) -> Result<Permission, StrategyError> {
        match self.0.pre_reboot() {
            Ok(()) => Ok(Permission::Granted),
            // The server answered no: a normal "wait", whatever the reason.
            Err(e @ FleetLockError::Refused { .. }) => Ok(Permission::Wait(e.to_string())),
            Err(e) => Err(e.into()),
        }
    }
    fn release(&self) -> Result<(), StrategyError> {
        Ok(self.0.steady_state()?)
    }
}

/// `kured`: write the sentinel; kured takes its own lock, drains and reboots.
pub struct Kured {
    /// The sentinel kured watches (`--reboot-sentinel`).
    pub sentinel: PathBuf,
}

impl Strategy for Kured {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Kured
    }
    fn request(&self) -> Result<Permission, StrategyError> {
        let err = |source| StrategyError::Sentinel {
            path: self.sentinel.clone(),
            source,
        };
        if let Some(dir) = self.sentinel.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        std::fs::write(&self.sentinel, b"").map_err(err)?;
        Ok(Permission::HandedOff(format!(
            "wrote {}; kured drains and reboots the node",
            self.sentinel.display()
        )))
    }
    /// Nothing to give back: the sentinel normally lives in /run and disappears with the boot.
    fn release(&self) -> Result<(), StrategyError> {
        Ok(())
    }
}

/// The node's lock id: `REBOOT_ID` or `/etc/machine-id` (as locksmith).
pub fn node_id(config: &RebootConfig) -> Result<String, StrategyError> {
    if let Some(id) = &config.node_id {
        return Ok(id.clone());
    }
    let path = "/etc/machine-id";
    let err = |message: String| StrategyError::NodeId {
        path: path.into(),
        message,
    };
    let id = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let id = id.trim();
    if id.is_empty() {
        return Err(err("empty".into()));
    }
    Ok(id.to_string())
}

/// Builds the configured strategy for holder `id`.
pub fn build(config: &RebootConfig, id: &str) -> Box<dyn Strategy> {
    match config.strategy {
        StrategyKind::Off => Box::new(Off),
        k @ (StrategyKind::Reboot | StrategyKind::Windowed) => Box::new(Immediate(k)),
        StrategyKind::EtcdLock => Box::new(EtcdStrategy(EtcdLock::new(
            EtcdGateway::new(config.etcd_endpoints.clone(), LOCK_TIMEOUT),
            &config.group,
            id,
            u64::from(config.max_holders),
            config.lock_ttl,
        ))),
        StrategyKind::FleetLock => match &config.fleetlock_url {
            Some(url) => Box::new(FleetLockStrategy(FleetLockClient::new(
                url,
                id,
                &config.group,
                LOCK_TIMEOUT,
            ))),
            // The config loader rejects this; never reboot without the lock that was asked for.
            None => Box::new(Off),
        },
        StrategyKind::Kured => Box::new(Kured {
            sentinel: config.kured_sentinel.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kured_writes_the_sentinel() {
        let dir = tempfile::tempdir().unwrap();
        let sentinel = dir.path().join("run/reboot-required");
        let k = Kured {
            sentinel: sentinel.clone(),
        };
        assert!(matches!(k.request().unwrap(), Permission::HandedOff(_)));
        assert!(sentinel.exists());
        let bad = Kured {
            sentinel: "/proc/version/reboot-required".into(),
        };
        assert!(matches!(bad.request(), Err(StrategyError::Sentinel { .. })));
    }

    #[test]
    fn unreachable_lock_server_is_an_error_not_a_grant() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let cfg = RebootConfig {
            strategy: StrategyKind::FleetLock,
            fleetlock_url: Some(url.clone()),
            ..RebootConfig::default()
        };
        assert!(build(&cfg, "n1").request().is_err());
        let cfg = RebootConfig {
            strategy: StrategyKind::EtcdLock,
            etcd_endpoints: vec![url],
            ..RebootConfig::default()
        };
        let err = build(&cfg, "n1").request().unwrap_err();
        assert!(err.to_string().contains("no endpoint reachable"), "{err}");
        let cfg = RebootConfig {
            strategy: StrategyKind::FleetLock,
            fleetlock_url: None,
            ..RebootConfig::default()
        };
        assert_eq!(build(&cfg, "n1").request().unwrap(), Permission::Never);
    }
}
