//! Boxcar's first-boot provisioning engine, compatible with Ignition 2.14.
//!
//! It runs Ignition's stages against a target root — `fetch-offline`,
//! `fetch`, `kargs`, `disks`, `mount`, `files`, `umount` — and leaves the
//! same tree real Ignition would (checked by a differential test against
//! the real binary). On top it records per-stage status and timings,
//! explains failures with the stage, JSON path and cause, never logs
//! secrets, and can describe a run without touching anything (dry run).
//!
//! Pluggable parts: [`provider::ConfigProvider`] (where the config comes
//! from), [`stages::storage::StorageStages`] (block devices),
//! [`stages::kargs::KargsHelper`] (kernel command line).

pub mod config;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod fsops;
pub mod owners;
pub mod passwd_db;
pub mod provider;
pub mod result;
pub mod root;
pub mod stages;

pub use engine::{Engine, Outcome};
pub use stages::storage::{Mode, StorageStages};
pub use stages::{Stage, StageFailure};
