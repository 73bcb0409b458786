//! Resources: where contents come from (`source`), how they are packed
//! (`compression`) and checked (`verification`).

use super::{impl_is_empty, IsEmpty};
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "IsEmpty::is_empty")]
    pub verification: Verification,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HttpHeader {
    pub name: String,
    /// `None` in a child config deletes the parent's header when merging.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verification {
    /// `sha512-<hex>` or `sha256-<hex>` over the decompressed contents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl_is_empty!(Resource, Verification);
