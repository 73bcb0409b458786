//! Boxcar's update server: answers Omaha update checks from Flatcar and Boxcar nodes, rolls
//! releases out per group policy, keeps the fleet view, and coordinates reboots (FleetLock).
//!
//! Layers: pure policy and event logic ([`policy`], [`events`]); the fleet [`store`] written once
//! over the [`db::Database`] trait (SQLite or PostgreSQL); the HTTP surface ([`http`]).

pub mod db;
pub mod downstream;
pub mod events;
pub mod http;
pub mod lastseen;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod server;
pub mod service;
pub mod store;
