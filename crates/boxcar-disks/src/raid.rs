//! Software RAID through mdadm, with Ignition's command line.
//!
//! Ignition always creates the array (`--create --force --run`, homehost
//! `any` so the array assembles under any hostname); it does not try to
//! detect and reuse an existing array, and neither do we.

use crate::cmd::Cmd;
use crate::error::DisksError;
use crate::run::Run;
use boxcar_config::model::Raid;

/// The mdadm command for one array; member devices already resolved.
pub fn mdadm_cmd(raid: &Raid, devices: &[String]) -> Result<Cmd, String> {
    let level = raid
        .level
        .as_deref()
        .filter(|l| !l.is_empty())
        .ok_or("level is required")?;
    let spares = raid.spares.unwrap_or(0);
    let total = devices.len() as i64;
    if spares < 0 {
        return Err(format!("spares {spares} is negative"));
    }
    if devices.is_empty() || spares >= total {
        return Err(format!(
            "{total} device(s) leave no active device after {spares} spare(s)"
        ));
    }
    let mut cmd = Cmd::new("mdadm")
        .args([
            "--create",
            &raid.name,
            "--force",
            "--run",
            "--homehost",
            "any",
            "--level",
            level,
        ])
        .arg("--raid-devices")
        .arg((total - spares).to_string());
    if spares > 0 {
        cmd = cmd.arg("--spare-devices").arg(spares.to_string());
    }
    Ok(cmd.args(raid.options.iter().cloned()).args(devices.iter().cloned()))
}

/// Creates `$.storage.raid.<index>`.
pub(crate) fn create(run: &mut Run, index: usize, raid: &Raid) -> Result<(), DisksError> {
    let path = format!("$.storage.raid.{index}");
    let mut devices = Vec::with_capacity(raid.devices.len());
    for (i, d) in raid.devices.iter().enumerate() {
        let p = format!("{path}.devices.{i}");
        devices.push(run.device_or_planned(&p, d)?.unwrap_or_else(|| d.clone()));
    }
    let spec = |reason| DisksError::RaidSpec {
        path: path.clone(),
        name: raid.name.clone(),
        reason,
    };
    let cmd = mdadm_cmd(raid, &devices).map_err(spec)?;
    run.exec(&path, format!("create RAID array {}", raid.name), cmd)
        .map_err(|source| DisksError::CreateRaid {
            path: path.clone(),
            name: raid.name.clone(),
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raid(level: &str, n: usize, spares: Option<i64>) -> (Raid, Vec<String>) {
        let devs: Vec<String> = (1..=n)
            .map(|i| format!("/dev/vd{}", (b'a' + i as u8) as char))
            .collect();
        let r = Raid {
            name: "data".into(),
            level: Some(level.into()),
            devices: devs.clone(),
            spares,
            options: vec![],
        };
        (r, devs)
    }

    #[test]
    fn raid1_with_a_spare() {
        let (mut r, devs) = raid("raid1", 3, Some(1));
        r.options = vec!["--metadata=1.2".into()];
        assert_eq!(
            mdadm_cmd(&r, &devs).unwrap().to_string(),
            "mdadm --create data --force --run --homehost any --level raid1 --raid-devices 2 \
             --spare-devices 1 --metadata=1.2 /dev/vdb /dev/vdc /dev/vdd"
        );
    }

    #[test]
    fn raid0_without_spares() {
        let (r, devs) = raid("raid0", 2, None);
        assert_eq!(
            mdadm_cmd(&r, &devs).unwrap().to_string(),
            "mdadm --create data --force --run --homehost any --level raid0 --raid-devices 2 /dev/vdb /dev/vdc"
        );
    }

    #[test]
    fn invalid_arrays() {
        let (r, devs) = raid("raid1", 2, Some(2));
        assert!(mdadm_cmd(&r, &devs).unwrap_err().contains("no active device"));
        let (mut r, devs) = raid("raid1", 2, None);
        r.level = None;
        assert_eq!(mdadm_cmd(&r, &devs).unwrap_err(), "level is required");
        let (r, _) = raid("raid1", 0, None);
        assert!(mdadm_cmd(&r, &[]).is_err());
        let (r, devs) = raid("raid1", 2, Some(-1));
        assert!(mdadm_cmd(&r, &devs).is_err());
    }
}
