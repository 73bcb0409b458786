//! build.json: what a build produced (version, usrhash, PARTUUIDs, files
//! with sizes and digests, step timings), written next to SHA256SUMS so the
//! test bed and the update server can pick the right files without parsing
//! names.

use crate::error::{rd, wr};
use crate::{sums, ImageError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Time spent in one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub seconds: f64,
}

/// One output file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputFile {
    /// What it is: raw, qcow2, uki, usr, verity, initrd, kernel, cmdline, payload, sbom, key.
    pub kind: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The build report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildReport {
    pub os: String,
    pub version: String,
    pub channel: String,
    pub kernel: String,
    pub source_date_epoch: i64,
    pub usrhash: String,
    pub usr_sha256: String,
    pub usr_partuuid: String,
    pub usr_verity_partuuid: String,
    pub cmdline: String,
    pub uki_entry: String,
    pub signing_key: String,
    pub files: Vec<OutputFile>,
    pub steps: Vec<Step>,
    pub seconds: f64,
}

/// Fills in the file list, writes SHA256SUMS and build.json.
pub fn finish(mut r: BuildReport, dir: &Path, prefix: &str, qcow2: bool) -> Result<BuildReport, ImageError> {
    let usr_ext = r
        .cmdline
        .split("mount.usrfstype=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or("erofs")
        .to_string();
    let mut kinds = vec![
        ("raw", format!("{prefix}.raw")),
        ("uki", format!("{prefix}.efi")),
        ("usr", format!("{prefix}-usr.{usr_ext}")),
        ("verity", format!("{prefix}-usr.verity")),
        ("initrd", format!("{prefix}-initrd.img")),
        ("kernel", format!("{prefix}-vmlinuz")),
        ("cmdline", format!("{prefix}-cmdline.txt")),
        ("payload", format!("{prefix}.bxp")),
        ("sbom", format!("{prefix}-sbom.json")),
        ("key", "update-key.pub.pem".to_string()),
    ];
    if qcow2 {
        kinds.push(("qcow2", format!("{prefix}.qcow2")));
    }
    let mut sums_entries = Vec::new();
    for (kind, name) in kinds {
        let p = dir.join(&name);
        let size = std::fs::metadata(&p).map_err(rd(&p))?.len();
        let sha256 = sums::file_sha256(&p)?;
        sums_entries.push((name.clone(), sha256.clone()));
        r.files.push(OutputFile {
            kind: kind.into(),
            name,
            size,
            sha256,
        });
    }
    let s = dir.join("SHA256SUMS");
    std::fs::write(&s, sums::render(&sums_entries)).map_err(wr(&s))?;
    let j = dir.join("build.json");
    std::fs::write(&j, serde_json::to_vec_pretty(&r).expect("serializes")).map_err(wr(&j))?;
    Ok(r)
}
