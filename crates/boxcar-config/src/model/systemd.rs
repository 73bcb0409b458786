//! systemd units and drop-ins.

use super::impl_is_empty;
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Systemd {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<Unit>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Unit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contents: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropins: Vec<Dropin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<bool>,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dropin {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contents: Option<String>,
    pub name: String,
}

impl_is_empty!(Systemd);
