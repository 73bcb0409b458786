//! LUKS2 volumes through cryptsetup (and clevis), as Ignition creates them.
//!
//! The key is either generated (4096 random bytes, hex) or fetched from the
//! entry's `keyFile` through the caller's [`KeySource`]. It only ever lives
//! in memory ([`Secret`]) and in a 0600 temporary file handed to cryptsetup
//! with `--key-file`, deleted when the volume is done; it is never an
//! argument and never logged. Keys of volumes without clevis are returned in
//! the [`Report`](crate::Report) so [`crate::persist_luks`] can store them in
//! the target's `/etc/luks/<name>` once the root is mounted, as Ignition's
//! files stage does.

use crate::clevis::needs_network;
pub use crate::clevis::{clevis_config, clevis_present};
use crate::cmd::{in_path, Cmd};
use crate::error::DisksError;
use crate::fs::probe;
use crate::run::Run;
use crate::secret::Secret;
use crate::KeySource;
use boxcar_config::model::{Luks, Resource};
use std::io::Write;
use std::path::Path;

/// A LUKS volume set up by the disks stage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LuksVolume {
    pub name: String,
    /// The LUKS header's UUID (`None` in a dry run).
    pub uuid: Option<String>,
    /// The key to keep in `/etc/luks/<name>`; `None` for clevis volumes,
    /// which unlock through their pin instead.
    #[serde(skip)]
    pub key: Option<Secret>,
    /// Unlocking needs the network (tang, or a custom pin that says so).
    pub needs_network: bool,
}

/// `cryptsetup luksFormat` as Ignition runs it.
pub fn format_cmd(luks: &Luks, dev: &str, key_file: &str) -> Cmd {
    let mut c = Cmd::new("cryptsetup").args(["luksFormat", "--type", "luks2", "--key-file", key_file]);
    if let Some(l) = luks.label.as_deref().filter(|s| !s.is_empty()) {
        c = c.arg("--label").arg(l);
    }
    if let Some(u) = luks.uuid.as_deref().filter(|s| !s.is_empty()) {
        c = c.arg("--uuid").arg(u);
    }
    c.args(luks.options.iter().cloned()).arg(dev)
}

/// `cryptsetup luksOpen` with the 3.4 `openOptions` and `discard`.
pub fn open_cmd(luks: &Luks, dev: &str, key_file: &str) -> Cmd {
    let mut c = Cmd::new("cryptsetup").args(["luksOpen", dev, &luks.name, "--key-file", key_file]);
    c = c.args(luks.open_options.iter().cloned());
    if luks.discard == Some(true) {
        c = c.arg("--allow-discards");
    }
    c
}

/// Where the key comes from.
enum KeyOrigin {
    Generated,
    KeyFile,
}

/// The key in a private temporary file (mode 0600, removed on drop).
struct KeyFile {
    file: tempfile::NamedTempFile,
}

impl KeyFile {
    fn write(key: &Secret) -> std::io::Result<Self> {
        let mut file = tempfile::Builder::new().prefix("boxcar-luks-").tempfile()?;
        file.write_all(key.expose())?;
        file.flush()?;
        Ok(KeyFile { file })
    }

    fn path(&self) -> String {
        self.file.path().to_string_lossy().into_owned()
    }
}

fn fetch_key(src: &dyn KeySource, r: &Resource) -> Result<Secret, String> {
    src.fetch(r).map(Secret::new).map_err(|e| e.to_string())
}

/// Sets up `$.storage.luks.<index>`.
pub(crate) fn create(run: &mut Run, index: usize, luks: &Luks) -> Result<(), DisksError> {
    let path = format!("$.storage.luks.{index}");
    let name = luks.name.clone();
    let spec = |reason: String| DisksError::LuksSpec {
        path: path.clone(),
        name: name.clone(),
        reason,
    };
    let device = luks
        .device
        .as_deref()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| spec("device is required".into()))?;
    let clevis = clevis_present(&luks.clevis);
    let pin = if clevis {
        if !in_path("clevis") {
            return Err(DisksError::ClevisUnavailable {
                path: path.clone(),
                name: name.clone(),
            });
        }
        Some(clevis_config(&luks.clevis).map_err(spec)?)
    } else {
        None
    };
    if !run.applying() {
        // The device may be a partition or array an earlier step would create.
        let dev = run
            .device_or_planned(&path, device)?
            .unwrap_or_else(|| device.to_string());
        return plan_dry(run, &path, luks, &dev, pin);
    }
    let dev = run.wait_device(&path, device)?;
    let has_key_file = luks.key_file.source.as_deref().is_some_and(|s| !s.is_empty());

    let (key, origin) = if has_key_file {
        let k = fetch_key(run.ctx.key_source, &luks.key_file).map_err(|reason| DisksError::LuksKeyFetch {
            path: path.clone(),
            name: name.clone(),
            reason,
        })?;
        (k, KeyOrigin::KeyFile)
    } else {
        let k = Secret::generate().map_err(|source| DisksError::LuksIo {
            path: path.clone(),
            name: name.clone(),
            what: "generating a key",
            source,
        })?;
        (k, KeyOrigin::Generated)
    };
    let kf = KeyFile::write(&key).map_err(|source| DisksError::LuksIo {
        path: path.clone(),
        name: name.clone(),
        what: "writing the key file",
        source,
    })?;
    let kp = kf.path();
    let crypt = |what: &'static str| {
        let (path, name) = (path.clone(), name.clone());
        move |source| DisksError::Cryptsetup {
            path,
            name,
            what,
            source,
        }
    };
    let mismatch = |reason: String| DisksError::LuksVolumeMismatch {
        path: path.clone(),
        device: device.to_string(),
        name: name.clone(),
        reason,
    };

    if luks.wipe_volume != Some(true) {
        let is_luks = Cmd::new("cryptsetup")
            .args(["isLuks", "--type", "luks2", &dev])
            .run()
            .is_ok();
        if is_luks {
            reuse(run, &path, luks, &dev, &kp, clevis, has_key_file).map_err(mismatch)?;
            let uuid = luks_uuid(&dev).map_err(crypt("reading the LUKS UUID"))?;
            run.report.luks.push(LuksVolume {
                name,
                uuid: Some(uuid),
                key: Some(key),
                needs_network: false,
            });
            return Ok(());
        }
        let found = probe(&dev).map_err(|source| DisksError::ProbeFilesystem {
            path: path.clone(),
            device: device.to_string(),
            source,
        })?;
        if !found.fs_type.is_empty() {
            return Err(mismatch(format!("it holds {}", found.fs_type)));
        }
    } else {
        run.exec(
            &path,
            format!("wipe signatures from {dev}"),
            Cmd::new("wipefs").args(["-a", &dev]),
        )
        .map_err(|source| DisksError::Wipefs {
            path: path.clone(),
            device: dev.clone(),
            source,
        })?;
    }

    run.exec(
        &path,
        format!("format {dev} as LUKS2 volume {name}"),
        format_cmd(luks, &dev, &kp),
    )
    .map_err(crypt("formatting"))?;
    run.exec(
        &path,
        format!("open {dev} as /dev/mapper/{name}"),
        open_cmd(luks, &dev, &kp),
    )
    .map_err(crypt("opening"))?;
    let mut keep_key = true;
    if let Some((pin, config)) = pin {
        crate::clevis::bind(run, &path, luks, &dev, &kp, &pin, &config)?;
        if matches!(origin, KeyOrigin::Generated) {
            // The user never saw this key; the clevis pin replaces it.
            let rm = Cmd::new("cryptsetup").args(["luksRemoveKey", &dev, &kp]);
            run.exec(&path, format!("remove the generated key from {dev}"), rm)
                .map_err(crypt("removing the generated key"))?;
            keep_key = false;
        }
    }
    let uuid = luks_uuid(&dev).map_err(crypt("reading the LUKS UUID"))?;
    run.report.luks.push(LuksVolume {
        name,
        uuid: Some(uuid),
        key: keep_key.then_some(key),
        needs_network: needs_network(&luks.clevis),
    });
    Ok(())
}

fn luks_uuid(dev: &str) -> Result<String, crate::cmd::CmdError> {
    Ok(Cmd::new("cryptsetup").args(["luksUUID", dev]).run()?.trim().to_string())
}

/// Ignition's reuse rules for an existing LUKS2 header; the volume is
/// opened when it qualifies.
fn reuse(
    run: &mut Run,
    path: &str,
    luks: &Luks,
    dev: &str,
    kp: &str,
    clevis: bool,
    has_key_file: bool,
) -> Result<(), String> {
    if clevis {
        return Err("it is already LUKS and a clevis-bound volume cannot be reused".into());
    }
    if !has_key_file {
        return Err("it is already LUKS and reusing it needs a keyFile (a generated key cannot unlock it)".into());
    }
    if let Some(label) = &luks.label {
        let found = probe(dev).map_err(|e| e.to_string())?;
        if found.label != *label {
            return Err(format!(
                "volume label {:?} doesn't match expected label {label:?}",
                found.label
            ));
        }
    }
    if let Some(uuid) = &luks.uuid {
        let found = luks_uuid(dev).map_err(|e| e.to_string())?;
        if found != *uuid {
            return Err(format!("volume UUID {found:?} doesn't match expected UUID {uuid:?}"));
        }
    }
    Cmd::new("cryptsetup")
        .args(["luksOpen", "--test-passphrase", dev, "--key-file", kp])
        .run()
        .map_err(|_| "the key file does not unlock it".to_string())?;
    run.exec(
        path,
        format!("open existing LUKS volume {dev} as /dev/mapper/{}", luks.name),
        open_cmd(luks, dev, kp),
    )
    .map_err(|e| format!("opening it failed: {e}"))?;
    Ok(())
}

/// Dry run: say what would happen, fetch and generate nothing.
fn plan_dry(
    run: &mut Run,
    path: &str,
    luks: &Luks,
    dev: &str,
    pin: Option<(String, String)>,
) -> Result<(), DisksError> {
    let kp = "<temporary key file>";
    let is_luks = Path::new(dev).exists()
        && Cmd::new("cryptsetup")
            .args(["isLuks", "--type", "luks2", dev])
            .run()
            .is_ok();
    if luks.wipe_volume != Some(true) && is_luks {
        run.note(
            path,
            format!("{dev} is already LUKS2: reuse it if label, UUID and key file match"),
        );
        run.exec(
            path,
            format!("open {dev} as /dev/mapper/{}", luks.name),
            open_cmd(luks, dev, kp),
        )
        .ok();
        return Ok(());
    }
    if luks.wipe_volume == Some(true) {
        run.exec(
            path,
            format!("wipe signatures from {dev}"),
            Cmd::new("wipefs").args(["-a", dev]),
        )
        .ok();
    }
    let origin = if luks.key_file.source.as_deref().is_some_and(|s| !s.is_empty()) {
        "the key file from keyFile"
    } else {
        "a newly generated key"
    };
    run.note(path, format!("use {origin} for {}", luks.name));
    run.exec(
        path,
        format!("format {dev} as LUKS2 volume {}", luks.name),
        format_cmd(luks, dev, kp),
    )
    .ok();
    run.exec(
        path,
        format!("open {dev} as /dev/mapper/{}", luks.name),
        open_cmd(luks, dev, kp),
    )
    .ok();
    if let Some((pin, config)) = pin {
        let bind = Cmd::new("clevis").args(["luks", "bind", "-f", "-k", kp, "-d", dev, &pin, &config]);
        run.exec(path, format!("bind {dev} to clevis pin {pin}"), bind).ok();
    }
    run.report.luks.push(LuksVolume {
        name: luks.name.clone(),
        uuid: None,
        key: None,
        needs_network: needs_network(&luks.clevis),
    });
    Ok(())
}

#[cfg(test)]
#[path = "luks_tests.rs"]
mod tests;
