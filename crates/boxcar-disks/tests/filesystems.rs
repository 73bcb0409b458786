//! Filesystems, mount and umount on real loop devices, read back with
//! `blkid` and /proc/self/mountinfo.

mod common;

use boxcar_disks::{disks, mount, umount, DisksError, Mode, NoKeySource};
use common::*;

const UUID_EXT4: &str = "3f1b0c2e-9a44-4b8e-8f7a-1d2c3b4a5e61";
const UUID_XFS: &str = "5a6b7c8d-1234-4cde-9f00-aabbccddeeff";
const UUID_BTRFS: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const UUID_SWAP: &str = "b7c6d5e4-f3a2-4b1c-9d8e-7f6a5b4c3d2e";

/// Six partitions on a 1 GiB sparse image (XFS needs at least 300 MiB).
fn layout(lo: &Loop, tag: &str) -> String {
    format!(
        r#"{{"device":"{}","wipeTable":true,"partitions":[
            {{"number":1,"label":"e4-{tag}","sizeMiB":64}},
            {{"number":2,"label":"xfs-{tag}","sizeMiB":320}},
            {{"number":3,"label":"bt-{tag}","sizeMiB":256}},
            {{"number":4,"label":"fat-{tag}","sizeMiB":64}},
            {{"number":5,"label":"sw-{tag}","sizeMiB":16}},
            {{"number":6,"label":"raw-{tag}","sizeMiB":8}}]}}"#,
        lo.dev
    )
}

fn filesystems(lo: &Loop, tag: &str, ext4_label: &str, wipe_ext4: bool) -> String {
    format!(
        r#"[{{"device":"/dev/disk/by-partlabel/e4-{tag}","format":"ext4","label":"{ext4_label}","uuid":"{UUID_EXT4}","wipeFilesystem":{wipe_ext4},"path":"/","mountOptions":["noatime"]}},
            {{"device":"{p2}","format":"xfs","label":"VAR","uuid":"{UUID_XFS}","path":"/var"}},
            {{"device":"{p3}","format":"btrfs","label":"HOME","uuid":"{UUID_BTRFS}","options":["--nodesize","16384"],"path":"/var/home"}},
            {{"device":"{p4}","format":"vfat","label":"EFI","uuid":"A1B2-C3D4"}},
            {{"device":"{p5}","format":"swap","label":"SWAP","uuid":"{UUID_SWAP}"}},
            {{"device":"{p6}","format":"none"}}]"#,
        p2 = lo.part(2),
        p3 = lo.part(3),
        p4 = lo.part(4),
        p5 = lo.part(5),
        p6 = lo.part(6),
    )
}

fn config(disks_json: &str, fss: &str) -> String {
    format!(r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"disks":[{disks_json}],"filesystems":{fss}}}}}"#)
}

fn mkfs_count(r: &boxcar_disks::Report) -> usize {
    r.operations
        .iter()
        .filter(|o| {
            o.command
                .as_deref()
                .is_some_and(|c| c.starts_with("mkfs") || c.starts_with("mkswap"))
        })
        .count()
}

#[test]
fn create_reuse_refuse_and_wipe() {
    let _g = lock();
    let lo = Loop::new(1024);
    let tag = uniq();
    let root = tempfile::tempdir().unwrap();
    let c = ctx(root.path(), Mode::Apply, &NoKeySource);

    let cfg = config(&layout(&lo, &tag), &filesystems(&lo, &tag, "ROOT", false));
    let r = disks(&storage(&cfg), &c).unwrap();
    assert_eq!(mkfs_count(&r), 5, "{r}");
    assert_eq!(blkid(&lo.part(1)), ("ext4".into(), "ROOT".into(), UUID_EXT4.into()));
    assert_eq!(blkid(&lo.part(2)), ("xfs".into(), "VAR".into(), UUID_XFS.into()));
    assert_eq!(blkid(&lo.part(3)), ("btrfs".into(), "HOME".into(), UUID_BTRFS.into()));
    assert_eq!(blkid(&lo.part(4)), ("vfat".into(), "EFI".into(), "A1B2-C3D4".into()));
    assert_eq!(blkid(&lo.part(5)), ("swap".into(), "SWAP".into(), UUID_SWAP.into()));
    assert_eq!(blkid(&lo.part(6)).0, "");

    // Second run without wipeTable: partitions and filesystems all match.
    let layout2 = layout(&lo, &tag).replace(r#""wipeTable":true"#, r#""wipeTable":false"#);
    let r = disks(&storage(&config(&layout2, &filesystems(&lo, &tag, "ROOT", false))), &c).unwrap();
    assert_eq!(mkfs_count(&r), 0, "everything reused: {r}");
    assert!(r.operations.iter().all(|o| o.command.is_none()), "{r}");

    // A different label without wipeFilesystem is refused, data kept.
    let e = disks(&storage(&config(&layout2, &filesystems(&lo, &tag, "OTHER", false))), &c).unwrap_err();
    match &e {
        DisksError::FilesystemMismatch {
            path,
            found_type,
            found_label,
            ..
        } => {
            assert_eq!(path, "$.storage.filesystems.0");
            assert_eq!((found_type.as_str(), found_label.as_str()), ("ext4", "ROOT"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(blkid(&lo.part(1)).1, "ROOT");

    // With wipeFilesystem it is recreated.
    let r = disks(&storage(&config(&layout2, &filesystems(&lo, &tag, "OTHER", true))), &c).unwrap();
    assert_eq!(mkfs_count(&r), 1, "{r}");
    assert_eq!(blkid(&lo.part(1)), ("ext4".into(), "OTHER".into(), UUID_EXT4.into()));

    // `none` on a device that holds a filesystem is a mismatch too.
    let fss = format!(r#"[{{"device":"{}","format":"none"}}]"#, lo.part(5));
    let e = disks(&storage(&config(&layout2, &fss)), &c).unwrap_err();
    assert!(matches!(e, DisksError::FilesystemMismatch { .. }), "{e}");
}

#[test]
fn mount_and_umount_under_the_root() {
    let _g = lock();
    let lo = Loop::new(1024);
    let tag = uniq();
    let root = tempfile::tempdir().unwrap();
    let c = ctx(root.path(), Mode::Apply, &NoKeySource);
    let st = storage(&config(&layout(&lo, &tag), &filesystems(&lo, &tag, "ROOT", false)));
    disks(&st, &c).unwrap();

    let guards = [
        MountGuard(root.path().join("var/home")),
        MountGuard(root.path().join("var")),
        MountGuard(root.path().to_path_buf()),
    ];
    let r = mount(&st, &c).unwrap();
    let mounted: Vec<String> = r.operations.iter().filter_map(|o| o.command.clone()).collect();
    assert_eq!(mounted.len(), 3, "{r}");
    assert!(mounted[0].starts_with("mount -o noatime -t ext4 "), "{}", mounted[0]);
    assert!(
        mounted[1].contains("-t xfs") && mounted[1].ends_with("/var"),
        "{}",
        mounted[1]
    );
    assert!(
        mounted[2].contains("-t btrfs") && mounted[2].ends_with("/var/home"),
        "{}",
        mounted[2]
    );
    for g in &guards {
        assert!(is_mounted(&g.0), "{} mounted", g.0.display());
    }
    // The xfs mount point was created inside the freshly mounted ext4.
    std::fs::write(root.path().join("var/home/hello"), b"hi").unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root_line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(root.path().to_str().unwrap()))
        .unwrap();
    assert!(root_line.contains("noatime"), "{root_line}");

    umount(&st, &c).unwrap();
    for g in &guards {
        assert!(!is_mounted(&g.0), "{} unmounted", g.0.display());
    }
    // What was written landed on the btrfs filesystem.
    let mp = tempfile::tempdir().unwrap();
    let _m = MountGuard(mp.path().to_path_buf());
    run("mount", &[&lo.part(3), mp.path().to_str().unwrap()]);
    assert_eq!(std::fs::read(mp.path().join("hello")).unwrap(), b"hi");
    run("umount", &[mp.path().to_str().unwrap()]);
}

#[test]
fn mount_point_through_a_symlink_is_refused() {
    let _g = lock();
    let root = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/tmp", root.path().join("var")).unwrap();
    let cfg = r#"{"ignition":{"version":"3.4.0"},"storage":{"filesystems":[
        {"device":"/dev/null","format":"ext4","path":"/var/lib"}]}}"#;
    let e = mount(&storage(cfg), &ctx(root.path(), Mode::Apply, &NoKeySource)).unwrap_err();
    assert!(
        matches!(&e, DisksError::MountPoint { path, .. } if path == "$.storage.filesystems.0"),
        "{e}"
    );
}

#[test]
fn dry_run_plans_filesystems_without_writing() {
    let _g = lock();
    let lo = Loop::new(1024);
    let tag = uniq();
    let root = tempfile::tempdir().unwrap();
    let st = storage(&config(&layout(&lo, &tag), &filesystems(&lo, &tag, "ROOT", false)));
    let c = ctx(root.path(), Mode::DryRun, &NoKeySource);
    let r = disks(&st, &c).unwrap();
    assert!(sfdisk(&lo.dev).is_empty());
    assert_eq!(mkfs_count(&r), 5, "{r}");
    let m = mount(&st, &c).unwrap();
    assert_eq!(m.operations.iter().filter(|o| o.command.is_some()).count(), 3);
    assert!(!root.path().join("var").exists(), "dry run created no mount point");
    assert!(!is_mounted(root.path()));
}
