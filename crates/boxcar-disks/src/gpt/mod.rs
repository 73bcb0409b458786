//! GPT partitioning with sgdisk, as Ignition's disks stage does it.
//!
//! The pure part lives in [`plan`] and [`table`]; this module only reads
//! the disk, runs `sgdisk --pretend` to learn what "0" sizes become, and
//! commits the planned sgdisk call.

pub mod plan;
pub mod table;

use crate::cmd::{Cmd, CmdError};
use crate::device;
use crate::error::DisksError;
use crate::run::Run;
use boxcar_config::model::Disk;
use plan::{Action, PlanError};
use table::DiskInfo;

/// Partitions one configured disk (`$.storage.disks.<index>`).
pub(crate) fn partition_disk(run: &mut Run, index: usize, disk: &Disk) -> Result<(), DisksError> {
    let path = format!("$.storage.disks.{index}");
    let dev = run.wait_device(&path, &disk.device)?;
    let wipe = disk.wipe_table == Some(true);
    if wipe {
        let cmd = Cmd::new("sgdisk").arg("--zap-all").arg(&dev);
        run.exec(&path, format!("wipe the partition table of {dev}"), cmd)
            .map_err(|source| DisksError::WipeTable {
                path: path.clone(),
                device: dev.clone(),
                source,
            })?;
        if run.applying() {
            device::sync_partitions(&dev);
        }
    }
    if disk.partitions.is_empty() {
        return Ok(());
    }
    let sector_size = sector_size(&dev).map_err(|source| DisksError::ReadTable {
        path: path.clone(),
        device: dev.clone(),
        source,
    })?;
    // In a dry run the wipe has not happened: plan against an empty table.
    let dry_wipe = wipe && !run.applying();
    let info = if dry_wipe {
        DiskInfo::default()
    } else {
        read_table(&path, &dev)?
    };
    let plan_err = |e: PlanError| plan_error(&path, &dev, e);
    let specs = plan::specs(&disk.partitions, sector_size).map_err(plan_err)?;

    let (mut args, inspect) = plan::pretend_args(&specs, &info, dry_wipe);
    args.push(dev.clone());
    let out = Cmd::new("sgdisk")
        .args(args)
        .run()
        .map_err(|source| DisksError::Pretend {
            path: path.clone(),
            device: dev.clone(),
            source,
        })?;
    let dims = plan::parse_pretend(&out, &inspect).ok_or_else(|| DisksError::BadSgdiskOutput {
        path: path.clone(),
        device: dev.clone(),
    })?;
    let specs = plan::resolve(&specs, &dims);
    let actions = plan::plan(&specs, &info).map_err(plan_err)?;

    for (i, a) in &actions {
        let p = format!("{path}.partitions.{i}");
        match a {
            Action::Keep { number } => run.note(&p, format!("partition {number} on {dev} matches; kept")),
            Action::AlreadyAbsent { number } => {
                run.note(&p, format!("partition {number} on {dev} is absent as requested"))
            }
            Action::Create(n) => run.note(&p, format!("create partition {} on {dev}", n.number)),
            Action::Delete { number } => run.note(&p, format!("delete partition {number} on {dev}")),
            Action::Resize(n) => run.note(&p, format!("resize partition {} on {dev}", n.number)),
            Action::Recreate(n) => run.note(
                &p,
                format!(
                    "partition {} on {dev} does not match; wipe its entry and recreate it",
                    n.number
                ),
            ),
        }
    }
    let args = plan::commit_args(&actions);
    if args.is_empty() {
        return Ok(());
    }
    let cmd = Cmd::new("sgdisk").args(args).arg(&dev);
    run.exec(&path, format!("write the partition table of {dev}"), cmd)
        .map_err(|source| DisksError::CommitPartitions {
            path: path.clone(),
            device: dev.clone(),
            source,
        })?;
    if run.applying() {
        device::sync_partitions(&dev);
    }
    Ok(())
}

fn plan_error(path: &str, dev: &str, e: PlanError) -> DisksError {
    match e {
        PlanError::Exists { index, number } => DisksError::PartitionExists {
            path: format!("{path}.partitions.{index}"),
            device: dev.to_string(),
            number,
        },
        PlanError::Mismatch { index, number, reason } => DisksError::PartitionMismatch {
            path: format!("{path}.partitions.{index}"),
            device: dev.to_string(),
            number,
            reason,
        },
        PlanError::Invalid { index, reason } => DisksError::PartitionSpec {
            path: format!("{path}.partitions.{index}"),
            device: dev.to_string(),
            reason,
        },
    }
}

/// The logical sector size, which `sizeMiB`/`startMiB` are converted with.
fn sector_size(dev: &str) -> Result<u64, CmdError> {
    let out = Cmd::new("blockdev").args(["--getss", dev]).run()?;
    Ok(out.trim().parse().unwrap_or(512))
}

/// The current table; a disk without any partition table reads as empty.
fn read_table(path: &str, dev: &str) -> Result<DiskInfo, DisksError> {
    match Cmd::new("sfdisk").args(["--json", dev]).run() {
        Ok(out) => table::parse_sfdisk_json(&out, dev).map_err(|reason| DisksError::ParseTable {
            path: path.to_string(),
            device: dev.to_string(),
            reason,
        }),
        Err(CmdError::Failed(f)) if f.stderr.contains("does not contain a recognized partition table") => {
            Ok(DiskInfo::default())
        }
        Err(source) => Err(DisksError::ReadTable {
            path: path.to_string(),
            device: dev.to_string(),
            source,
        }),
    }
}
