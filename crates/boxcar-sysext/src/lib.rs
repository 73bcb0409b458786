//! System extensions for Boxcar, compatible with systemd-sysext 252 and sysupdate.
//!
//! Decision logic (release parsing, matching, discovery, layer order, transfer files) is pure
//! and lives in its own modules; [`merge`], [`build`] and [`update`] do the I/O.

pub mod bakery;
pub mod build;
pub mod compat;
pub mod discover;
pub mod merge;
pub mod metadata;
pub mod mount;
pub mod plan;
pub mod release;
pub mod sums;
pub mod transfer;
pub mod update;
