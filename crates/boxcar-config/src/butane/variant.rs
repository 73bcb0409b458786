//! Butane variants and versions, and the Ignition spec each produces.

use crate::version::SpecVersion;

/// Which distribution a Butane config targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Flatcar,
    Fcos,
}

/// A supported `variant` + `version` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub variant: Variant,
    pub version: &'static str,
    /// The Ignition spec this translates to.
    pub spec: SpecVersion,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target {
            variant: Variant::Flatcar,
            version: "1.0.0",
            spec: SpecVersion::V3_3,
        },
        Target {
            variant: Variant::Flatcar,
            version: "1.1.0",
            spec: SpecVersion::V3_4,
        },
        Target {
            variant: Variant::Fcos,
            version: "1.4.0",
            spec: SpecVersion::V3_3,
        },
        Target {
            variant: Variant::Fcos,
            version: "1.5.0",
            spec: SpecVersion::V3_4,
        },
    ];

    pub fn find(variant: &str, version: &str) -> Option<Target> {
        let v = match variant {
            "flatcar" => Variant::Flatcar,
            "fcos" => Variant::Fcos,
            _ => return None,
        };
        Target::ALL.into_iter().find(|t| t.variant == v && t.version == version)
    }

    /// Whether `luks.clevis` may be used (Flatcar's variants forbid it).
    pub fn allows_clevis(&self) -> bool {
        self.variant == Variant::Fcos
    }

    /// `contents_local` and `ssh_authorized_keys_local` arrived with the
    /// Butane base that produces spec 3.4.0.
    pub fn has_local_sugar(&self) -> bool {
        self.spec >= SpecVersion::V3_4
    }

    pub fn variant_name(&self) -> &'static str {
        match self.variant {
            Variant::Flatcar => "flatcar",
            Variant::Fcos => "fcos",
        }
    }
}

/// "requires spec version 3.4.0 or newer (flatcar 1.1.0 or newer)".
pub fn requirement_label(v: SpecVersion) -> String {
    let variants: Vec<String> = [Variant::Flatcar, Variant::Fcos]
        .iter()
        .filter_map(|var| {
            Target::ALL
                .iter()
                .find(|t| t.variant == *var && t.spec >= v)
                .map(|t| format!("{} {}", t.variant_name(), t.version))
        })
        .collect();
    if variants.is_empty() {
        format!("requires spec version {v} or newer")
    } else {
        format!("requires spec version {v} or newer ({} or newer)", variants.join(" / "))
    }
}
