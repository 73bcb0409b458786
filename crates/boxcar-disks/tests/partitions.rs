//! GPT partitioning on real loop devices, read back with `sfdisk --json`.

mod common;

use boxcar_disks::{disks, DisksError, Mode, NoKeySource};
use common::*;

const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const GUID1: &str = "8E1A44E8-5A7C-4C7A-9D8B-0E0F4B7B5A01";

fn config(dev: &str, wipe: bool, parts: &str) -> String {
    format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"disks":[{{"device":"{dev}","wipeTable":{wipe},"partitions":[{parts}]}}]}}}}"#
    )
}

fn apply(json: &str) -> Result<boxcar_disks::Report, DisksError> {
    let root = tempfile::tempdir().unwrap();
    disks(&storage(json), &ctx(root.path(), Mode::Apply, &NoKeySource))
}

fn writes_table(r: &boxcar_disks::Report) -> bool {
    r.operations
        .iter()
        .any(|o| o.command.as_deref().is_some_and(|c| c.starts_with("sgdisk")))
}

#[test]
fn creates_layout_and_keeps_it_on_rerun() {
    let _g = lock();
    let lo = Loop::new(128);
    let parts = format!(
        r#"{{"number":1,"label":"EFI-SYSTEM","sizeMiB":32,"typeGuid":"{ESP}","guid":"{GUID1}"}},
           {{"number":2,"label":"ROOT","sizeMiB":0}},
           {{"number":3,"shouldExist":false}}"#
    );
    let cfg = config(&lo.dev, true, &parts);
    let r = apply(&cfg).unwrap();
    assert!(writes_table(&r));
    let t = sfdisk(&lo.dev);
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(t[0].node, lo.part(1));
    assert_eq!((t[0].start, t[0].size), (2048, 32 * 2048));
    assert_eq!(
        (t[0].type_guid.as_str(), t[0].guid.as_str(), t[0].name.as_str()),
        (ESP, GUID1, "EFI-SYSTEM")
    );
    assert_eq!(t[1].node, lo.part(2));
    assert_eq!(t[1].start, 2048 + 32 * 2048);
    assert_eq!(t[1].type_guid, LINUX);
    assert_eq!(t[1].name, "ROOT");
    // sizeMiB 0 fills the disk up to the backup GPT (33 sectors at the end).
    assert_eq!(t[1].start + t[1].size, 128 * 2048 - 33);
    assert!(std::path::Path::new(&lo.part(2)).exists(), "partition node appears");

    // Same config without wipeTable: everything matches, nothing is written.
    let cfg = config(&lo.dev, false, &parts);
    let r = apply(&cfg).unwrap();
    assert!(!writes_table(&r), "{r}");
    assert!(r
        .operations
        .iter()
        .any(|o| o.description.contains("partition 2") && o.description.contains("kept")));
}

#[test]
fn mismatch_is_an_error_unless_wipe_partition_entry() {
    let _g = lock();
    let lo = Loop::new(64);
    apply(&config(&lo.dev, true, r#"{"number":1,"label":"A","sizeMiB":8}"#)).unwrap();
    let e = apply(&config(&lo.dev, false, r#"{"number":1,"label":"B","sizeMiB":8}"#)).unwrap_err();
    match &e {
        DisksError::PartitionMismatch {
            path,
            number: 1,
            reason,
            ..
        } => {
            assert_eq!(path, "$.storage.disks.0.partitions.0");
            assert!(
                reason.contains(r#"label did not match (specified "B", got "A")"#),
                "{reason}"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(sfdisk(&lo.dev)[0].name, "A", "nothing changed");
    apply(&config(
        &lo.dev,
        false,
        r#"{"number":1,"label":"B","sizeMiB":16,"wipePartitionEntry":true}"#,
    ))
    .unwrap();
    let t = sfdisk(&lo.dev);
    assert_eq!((t[0].name.as_str(), t[0].size), ("B", 16 * 2048));
}

#[test]
fn should_exist_false_deletes_only_with_wipe_entry() {
    let _g = lock();
    let lo = Loop::new(64);
    apply(&config(
        &lo.dev,
        true,
        r#"{"number":1,"sizeMiB":8},{"number":2,"sizeMiB":8}"#,
    ))
    .unwrap();
    let e = apply(&config(&lo.dev, false, r#"{"number":2,"shouldExist":false}"#)).unwrap_err();
    assert!(matches!(e, DisksError::PartitionExists { number: 2, .. }), "{e}");
    assert_eq!(sfdisk(&lo.dev).len(), 2);
    apply(&config(
        &lo.dev,
        false,
        r#"{"number":2,"shouldExist":false,"wipePartitionEntry":true}"#,
    ))
    .unwrap();
    let t = sfdisk(&lo.dev);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].node, lo.part(1));
    assert!(!std::path::Path::new(&lo.part(2)).exists(), "kernel forgot partition 2");
}

#[test]
fn resize_grows_in_place_keeping_identity() {
    let _g = lock();
    let lo = Loop::new(96);
    apply(&config(&lo.dev, true, r#"{"number":1,"label":"ROOT","sizeMiB":16}"#)).unwrap();
    let before = sfdisk(&lo.dev).remove(0);
    // Without resize a different size is a mismatch.
    let e = apply(&config(&lo.dev, false, r#"{"number":1,"label":"ROOT","sizeMiB":0}"#)).unwrap_err();
    assert!(matches!(e, DisksError::PartitionMismatch { .. }), "{e}");
    apply(&config(
        &lo.dev,
        false,
        r#"{"number":1,"label":"ROOT","sizeMiB":0,"resize":true}"#,
    ))
    .unwrap();
    let after = sfdisk(&lo.dev).remove(0);
    assert_eq!(after.start, before.start);
    assert_eq!(after.guid, before.guid);
    assert_eq!(after.type_guid, before.type_guid);
    assert_eq!(after.name, "ROOT");
    assert!(after.size > 90 * 2048, "{after:?}");
}

#[test]
fn number_zero_takes_the_next_free_slot() {
    let _g = lock();
    let lo = Loop::new(64);
    apply(&config(&lo.dev, true, r#"{"number":1,"sizeMiB":8}"#)).unwrap();
    apply(&config(
        &lo.dev,
        false,
        r#"{"label":"extra","sizeMiB":4},{"number":1,"sizeMiB":8}"#,
    ))
    .unwrap();
    let t = sfdisk(&lo.dev);
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[1].node.as_str(), t[1].name.as_str(), t[1].size),
        (lo.part(2).as_str(), "extra", 4 * 2048)
    );
}

#[test]
fn start_mib_is_honoured_and_compared() {
    let _g = lock();
    let lo = Loop::new(64);
    apply(&config(&lo.dev, true, r#"{"number":1,"startMiB":4,"sizeMiB":8}"#)).unwrap();
    assert_eq!(sfdisk(&lo.dev)[0].start, 4 * 2048);
    let e = apply(&config(&lo.dev, false, r#"{"number":1,"startMiB":2,"sizeMiB":8}"#)).unwrap_err();
    match e {
        DisksError::PartitionMismatch { reason, .. } => assert!(reason.contains("starting sector"), "{reason}"),
        other => panic!("{other}"),
    }
}

#[test]
fn wipe_table_alone_clears_the_disk() {
    let _g = lock();
    let lo = Loop::new(64);
    apply(&config(&lo.dev, true, r#"{"number":1,"sizeMiB":8}"#)).unwrap();
    apply(&config(&lo.dev, true, "")).unwrap();
    assert!(sfdisk(&lo.dev).is_empty());
    assert!(!std::path::Path::new(&lo.part(1)).exists());
}

#[test]
fn impossible_layout_fails_at_pretend() {
    let _g = lock();
    let lo = Loop::new(32);
    let e = apply(&config(&lo.dev, true, r#"{"number":1,"sizeMiB":64}"#)).unwrap_err();
    assert!(
        matches!(e, DisksError::Pretend { .. } | DisksError::CommitPartitions { .. }),
        "{e}"
    );
}

#[test]
fn dry_run_touches_nothing() {
    let _g = lock();
    let lo = Loop::new(64);
    let root = tempfile::tempdir().unwrap();
    let cfg = config(
        &lo.dev,
        true,
        r#"{"number":1,"label":"X","sizeMiB":8},{"number":2,"sizeMiB":0}"#,
    );
    let r = disks(&storage(&cfg), &ctx(root.path(), Mode::DryRun, &NoKeySource)).unwrap();
    assert!(sfdisk(&lo.dev).is_empty(), "no table written");
    let cmds: Vec<&str> = r.operations.iter().filter_map(|o| o.command.as_deref()).collect();
    assert_eq!(cmds.len(), 2, "{r}");
    assert_eq!(cmds[0], format!("sgdisk --zap-all {}", lo.dev));
    // Like Ignition, the fill-the-rest size is what `sgdisk --pretend` computed:
    // 131072 sectors - 34 (backup GPT) - 18432 (start) + 1.
    assert_eq!(
        cmds[1],
        format!("sgdisk --new=1:0:+16384 --change-name=1:X --new=2:0:+112607 {}", lo.dev)
    );
}

#[test]
fn missing_disk_times_out_with_its_path() {
    let root = tempfile::tempdir().unwrap();
    let cfg = config("/dev/boxcar-no-such-disk", false, "");
    let mut c = ctx(root.path(), Mode::Apply, &NoKeySource);
    c.device_timeout = std::time::Duration::from_millis(200);
    let e = disks(&storage(&cfg), &c).unwrap_err();
    assert!(
        matches!(&e, DisksError::DeviceTimeout { path, .. } if path == "$.storage.disks.0"),
        "{e}"
    );
    assert!(e.to_string().contains("/dev/boxcar-no-such-disk"));
}
