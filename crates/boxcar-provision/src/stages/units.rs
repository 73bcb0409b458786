//! `systemd.units`: unit files and drop-ins under `/etc/systemd/system`,
//! `mask` as a link to `/dev/null`, and `enabled` as lines in the preset
//! file `20-ignition.preset` (systemd applies presets on first boot), as
//! Ignition 2.14 does.

use crate::error::ApplyError;
use crate::fsops;
use crate::root::Root;
use boxcar_config::model::Unit;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Ignition's preset file.
pub const PRESET_PATH: &str = "/etc/systemd/system-preset/20-ignition.preset";
const UNITS_DIR: &str = "/etc/systemd/system";

/// Write a unit's drop-ins and contents; mask or unmask it.
pub fn unit(root: &Root, u: &Unit) -> Result<(), ApplyError> {
    for d in &u.dropins {
        let Some(contents) = &d.contents else { continue };
        let path = root.join(&format!("{UNITS_DIR}/{}.d/{}", u.name, d.name))?;
        fsops::mkdir_for_file(&path)?;
        fsops::write_replace(&path, contents.as_bytes())?;
        tracing::info!(unit = u.name, dropin = d.name, "wrote drop-in");
    }
    if let Some(c) = u.contents.as_deref().filter(|c| !c.is_empty()) {
        let path = root.join(&format!("{UNITS_DIR}/{}", u.name))?;
        fsops::mkdir_for_file(&path)?;
        fsops::write_replace(&path, c.as_bytes())?;
        tracing::info!(unit = u.name, "wrote unit");
    }
    match u.mask {
        Some(true) => {
            let path = root.join(&format!("{UNITS_DIR}/{}", u.name))?;
            fsops::mkdir_for_file(&path)?;
            fsops::remove_all(&path)?;
            std::os::unix::fs::symlink("/dev/null", &path).map_err(ApplyError::io("masking unit at", &path))?;
            tracing::info!(unit = u.name, "masked");
        }
        Some(false) => {
            let path = root.join(&format!("{UNITS_DIR}/{}", u.name))?;
            if fs::read_link(&path).is_ok_and(|t| t.as_os_str() == "/dev/null") {
                fs::remove_file(&path).map_err(ApplyError::io("unmasking unit at", &path))?;
                tracing::info!(unit = u.name, "unmasked");
            }
        }
        None => {}
    }
    Ok(())
}

/// The preset lines for the config's units, in config order: `enable X`
/// / `disable X`, instances of one template grouped on the template's
/// line (`enable getty@.service tty1 tty2`).
pub fn preset_lines(units: &[Unit]) -> Vec<String> {
    // (template-or-name, enabled, instances)
    let mut groups: Vec<(String, bool, Vec<String>)> = Vec::new();
    for u in units {
        let Some(enabled) = u.enabled else { continue };
        match split_instance(&u.name) {
            Some((template, instance)) => {
                match groups
                    .iter_mut()
                    .find(|(n, e, i)| *n == template && *e == enabled && !i.is_empty())
                {
                    Some(g) => g.2.push(instance),
                    None => groups.push((template, enabled, vec![instance])),
                }
            }
            None => groups.push((u.name.clone(), enabled, Vec::new())),
        }
    }
    groups
        .into_iter()
        .map(|(name, enabled, inst)| {
            let verb = if enabled { "enable" } else { "disable" };
            if inst.is_empty() {
                format!("{verb} {name}")
            } else {
                format!("{verb} {name} {}", inst.join(" "))
            }
        })
        .collect()
}

/// `echo@bar.service` → (`echo@.service`, `bar`).
fn split_instance(name: &str) -> Option<(String, String)> {
    let at = name.find('@')?;
    let dot = name.rfind('.')?;
    if dot <= at {
        return None;
    }
    Some((
        format!("{}{}", &name[..=at], &name[dot..]),
        name[at + 1..dot].to_string(),
    ))
}

/// Append the preset lines; for disabled units first remove enablement
/// links in `*.wants`/`*.requires`/`*.upholds` (what Ignition asks
/// `systemctl --root disable` to do).
pub fn write_presets(root: &Root, units: &[Unit]) -> Result<(), ApplyError> {
    let lines = preset_lines(units);
    if lines.is_empty() {
        return Ok(());
    }
    for u in units.iter().filter(|u| u.enabled == Some(false)) {
        remove_enablement_links(root, &u.name)?;
    }
    let path = root.join(PRESET_PATH)?;
    fsops::mkdir_for_file(&path)?;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(&path)
        .map_err(ApplyError::io("opening preset file", &path))?;
    let mut text = lines.join("\n");
    text.push('\n');
    f.write_all(text.as_bytes())
        .map_err(ApplyError::io("writing preset file", &path))?;
    tracing::info!(lines = lines.len(), "wrote presets");
    Ok(())
}

fn remove_enablement_links(root: &Root, name: &str) -> Result<(), ApplyError> {
    let dir = root.join(UNITS_DIR)?;
    let Ok(rd) = fs::read_dir(&dir) else { return Ok(()) };
    for ent in rd.flatten() {
        let n = ent.file_name().to_string_lossy().into_owned();
        if !(n.ends_with(".wants") || n.ends_with(".requires") || n.ends_with(".upholds")) {
            continue;
        }
        let link = ent.path().join(name);
        if fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
            fs::remove_file(&link).map_err(ApplyError::io("removing enablement link", &link))?;
            // systemctl removes the .wants directory it leaves empty.
            let _ = fs::remove_dir(ent.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(name: &str, enabled: Option<bool>) -> Unit {
        Unit {
            name: name.into(),
            enabled,
            ..Default::default()
        }
    }

    #[test]
    fn presets_group_instances() {
        let units = [
            u("a.service", Some(true)),
            u("getty@tty1.service", Some(true)),
            u("b.service", None),
            u("getty@tty2.service", Some(true)),
            u("c.service", Some(false)),
        ];
        assert_eq!(
            preset_lines(&units),
            [
                "enable a.service",
                "enable getty@.service tty1 tty2",
                "disable c.service"
            ]
        );
    }
}
