//! Bakery: build several extensions from one manifest and publish a directory that any
//! static HTTP server (or the Boxcar server) can serve to `sysupdate`-style clients.
//!
//! Layout per extension (the sysext-bakery / extensions.flatcar.org shape):
//! `OUT/NAME/NAME-VERSION-ARCH.raw`, `OUT/NAME/SHA256SUMS` (every published version, so
//! clients see history), `OUT/NAME/NAME.conf` (a transfer file pointing at `BASE_URL/NAME/`).

use crate::build::{self, BuildSpec, Format, ReleaseSpec};
use std::path::{Path, PathBuf};

/// The manifest (JSON).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// URL the output directory will be served from.
    pub base_url: String,
    /// Architecture (`ConditionArchitecture=` spelling) of the images and `%a` in patterns.
    pub architecture: String,
    /// Image format for all extensions.
    #[serde(default)]
    pub format: Format,
    /// `InstancesMax=` written into transfer files.
    #[serde(default = "default_instances")]
    pub instances_max: u32,
    /// The extensions.
    pub extensions: Vec<ManifestExtension>,
}

fn default_instances() -> u32 {
    3
}

/// One extension to build.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestExtension {
    /// Name.
    pub name: String,
    /// Version (sysupdate version syntax).
    pub version: String,
    /// Source tree, relative to the manifest's directory.
    pub source: PathBuf,
    /// Release fields; `architecture` defaults to the manifest's.
    pub release: ReleaseSpec,
}

/// Errors of the bakery.
#[derive(Debug, thiserror::Error)]
pub enum BakeryError {
    /// The manifest is invalid.
    #[error("manifest: {0}")]
    Manifest(String),
    /// Building one extension failed.
    #[error("building {name}: {source}")]
    Build {
        /// Extension.
        name: String,
        /// Cause.
        source: build::BuildError,
    },
    /// Writing output failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What.
        op: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The transfer file for one extension (pure).
pub fn transfer_file(base_url: &str, name: &str, instances_max: u32) -> String {
    let base = base_url.trim_end_matches('/');
    format!(
        "[Transfer]\nVerify=false\n\n[Source]\nType=url-file\nPath={base}/{name}/\nMatchPattern={name}-@v-%a.raw\n\n\
         [Target]\nInstancesMax={instances_max}\nType=regular-file\nPath=/opt/extensions/{name}\n\
         MatchPattern={name}-@v-%a.raw\nCurrentSymlink=/etc/extensions/{name}.raw\n"
    )
}

/// Parses and checks a manifest (pure).
pub fn parse_manifest(text: &str) -> Result<Manifest, BakeryError> {
    let m: Manifest = serde_json::from_str(text).map_err(|e| BakeryError::Manifest(e.to_string()))?;
    if m.instances_max < 2 {
        return Err(BakeryError::Manifest("instances_max must be at least 2".into()));
    }
    for e in &m.extensions {
        if !crate::discover::image_name_is_valid(&e.name) || e.name.contains(['%', '@']) {
            return Err(BakeryError::Manifest(format!("invalid extension name {:?}", e.name)));
        }
        if !crate::transfer::version_is_valid(&e.version) {
            return Err(BakeryError::Manifest(format!(
                "{}: invalid version {:?}",
                e.name, e.version
            )));
        }
    }
    Ok(m)
}

/// Builds every extension of the manifest into `out`; returns the images written.
pub fn bake(manifest_path: &Path, out: &Path) -> Result<Vec<build::BuildOutput>, BakeryError> {
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| BakeryError::Io { op, path, source }
    };
    let text = std::fs::read_to_string(manifest_path).map_err(io("reading", manifest_path))?;
    let m = parse_manifest(&text)?;
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let mut built = Vec::new();
    for e in &m.extensions {
        let dir = out.join(&e.name);
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let mut release = e.release.clone();
        release.architecture.get_or_insert_with(|| m.architecture.clone());
        let file = format!("{}-{}-{}.raw", e.name, e.version, m.architecture);
        let spec = BuildSpec {
            name: e.name.clone(),
            source: base.join(&e.source),
            output: dir.join(&file),
            format: m.format,
            release,
        };
        let o = build::build(&spec).map_err(|source| BakeryError::Build {
            name: e.name.clone(),
            source,
        })?;
        let sums_path = dir.join("SHA256SUMS");
        let existing = std::fs::read_to_string(&sums_path).unwrap_or_default();
        let text = crate::sums::upsert(&existing, &o.sha256, &file)
            .map_err(|e| BakeryError::Manifest(format!("{}: {e}", sums_path.display())))?;
        std::fs::write(&sums_path, text).map_err(io("writing", &sums_path))?;
        let conf = dir.join(format!("{}.conf", e.name));
        std::fs::write(&conf, transfer_file(&m.base_url, &e.name, m.instances_max)).map_err(io("writing", &conf))?;
        built.push(o);
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_file_parses_back() {
        let t = crate::transfer::Transfer::parse(&transfer_file("http://h/ext/", "k8s", 3), "x86-64").unwrap();
        assert_eq!(t.source_path, "http://h/ext/k8s/");
        assert_eq!(t.instances_max, 3);
        assert_eq!(t.current_symlink.as_deref(), Some("/etc/extensions/k8s.raw"));
        assert_eq!(t.source_version("k8s-1.30.1-x86-64.raw").as_deref(), Some("1.30.1"));
    }

    #[test]
    fn manifest_checks() {
        let ok = r#"{"base_url":"http://h/","architecture":"x86-64","extensions":[{"name":"a","version":"1.0","source":"a","release":{"id":"_any"}}]}"#;
        assert_eq!(parse_manifest(ok).unwrap().instances_max, 3);
        assert!(parse_manifest(&ok.replace("\"1.0\"", "\"1 0\"")).is_err());
        assert!(parse_manifest(&ok.replace("\"name\":\"a\"", "\"name\":\"a/b\"")).is_err());
        assert!(parse_manifest(&ok.replace("\"base_url\"", "\"bogus\":1,\"base_url\"")).is_err());
    }
}
