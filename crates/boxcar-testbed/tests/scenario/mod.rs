//! Shared pieces of the image scenarios: image versions and host servers.
#![allow(dead_code)]

pub mod images;
pub mod provision_time;
pub mod servers;
