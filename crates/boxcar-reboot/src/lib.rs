//! Boxcar reboot coordination: when a node with a staged update may reboot.
//!
//! Operators pick a strategy in `update.conf` ([`config`]): `off`, `reboot`, `windowed`,
//! `etcd-lock` (a counting semaphore in etcd v3, airlock's key layout, [`etcd`]), `fleetlock`
//! (Zincati's HTTP protocol, [`fleetlock`]) or `kured` (write the sentinel). Maintenance windows
//! ([`window`]) gate every strategy except kured's. The cycle ([`cycle`]) is: window → nobody
//! logged in and healthy → lock → pre-reboot hooks → reboot → after boot, release once healthy.
//!
//! Pure parts (config parsing, window arithmetic, semaphore transitions) are separate from the
//! I/O parts (etcd gateway, FleetLock client, commands) so they are tested with worked examples.

pub mod agent;
pub mod config;
pub mod cycle;
pub mod etcd;
pub mod fleetlock;
mod http;
pub mod semaphore;
pub mod status;
pub mod strategy;
pub mod window;

/// The time library of the public API (schedules take and return `jiff::Timestamp`).
pub use jiff;
