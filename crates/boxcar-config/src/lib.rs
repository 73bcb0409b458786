//! Boxcar's declarative configuration: the Ignition 3.x config model,
//! its validation and merge rules, and the Butane YAML translator.
//!
//! Everything starts as a positioned [`tree::Node`] (from JSON or YAML), is
//! decoded strictly for the spec version the config declares, validated
//! with Ignition's rules, and reported with the JSON path *and* the
//! `line:col` of the user's own input.
//!
//! ```
//! use boxcar_config::{ignition, Strictness};
//! let cfg = br#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"etc/motd"}]}}"#;
//! let report = ignition::parse(cfg, Strictness::Lenient).unwrap_err();
//! assert_eq!(
//!     report.entries[0].to_string(),
//!     "error at $.storage.files.0.path, line 1 col 61: path not absolute"
//! );
//! ```

pub mod butane;
pub mod dataurl;
pub mod decode;
pub mod ignition;
pub mod json;
pub mod merge;
pub mod model;
pub mod path;
pub mod render;
pub mod report;
pub mod tree;
pub mod validate;
pub mod version;
pub mod yaml;

pub use model::{Config, JsonStyle};
pub use report::{Diagnostic, Report, Severity, Strictness};
pub use version::SpecVersion;
