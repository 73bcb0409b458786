//! The typed Ignition config: spec 3.4.0, the newest version this crate
//! reads, and the one internal model every older config is upgraded to.
//!
//! Field names and order follow Ignition's schema so the JSON this model
//! serialises to is what Ignition (and Butane) users expect to read; unset
//! and empty fields are omitted, as Ignition's `omitempty` does.

mod passwd;
mod resource;
mod storage;
mod systemd;

pub use passwd::{Passwd, PasswdGroup, PasswdUser};
pub use resource::{HttpHeader, Resource, Verification};
pub use storage::{
    Clevis, ClevisCustom, Directory, Disk, File, Filesystem, Link, Luks, NodeOwner, Partition, Raid, Storage, Tang,
};
pub use systemd::{Dropin, Systemd, Unit};

use serde::Serialize;

/// Implemented by every section so `omitempty` can skip empty structs.
pub trait IsEmpty {
    fn is_empty(&self) -> bool;
}

/// One whole Ignition config.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    pub ignition: Ignition,
    #[serde(rename = "kernelArguments", skip_serializing_if = "IsEmpty::is_empty")]
    pub kernel_arguments: KernelArguments,
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub passwd: Passwd,
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub storage: Storage,
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub systemd: Systemd,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ignition {
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub config: IgnitionConfig,
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub proxy: Proxy,
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub security: Security,
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub timeouts: Timeouts,
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IgnitionConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merge: Vec<Resource>,
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub replace: Resource,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_proxy: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Security {
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub tls: Tls,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificate_authorities: Vec<Resource>,
}

/// HTTP timeouts in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_response_headers: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_total: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelArguments {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub should_exist: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub should_not_exist: Vec<String>,
}

macro_rules! impl_is_empty {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::model::IsEmpty for $t {
            fn is_empty(&self) -> bool {
                *self == <$t>::default()
            }
        }
    )*};
}
pub(crate) use impl_is_empty;

impl_is_empty!(
    KernelArguments,
    IgnitionConfig,
    Proxy,
    Security,
    Tls,
    Timeouts,
    Ignition
);

impl Config {
    /// Serialise as compact or pretty JSON; the field order is fixed, so the
    /// same config always gives the same bytes.
    pub fn to_json(&self, style: JsonStyle) -> String {
        let r = match style {
            JsonStyle::Compact => serde_json::to_string(self),
            JsonStyle::Pretty => serde_json::to_string_pretty(self),
        };
        r.expect("config serialisation cannot fail")
    }
}

/// How to print JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonStyle {
    #[default]
    Compact,
    Pretty,
}
