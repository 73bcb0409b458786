use super::*;

fn fs(format: &str) -> Filesystem {
    Filesystem {
        device: "/dev/sda1".into(),
        format: Some(format.into()),
        ..Default::default()
    }
}

fn found(t: &str, label: &str, uuid: &str) -> FsInfo {
    FsInfo {
        fs_type: t.into(),
        label: label.into(),
        uuid: uuid.into(),
    }
}

fn args(c: &Cmd) -> String {
    c.to_string()
}

#[test]
fn mkfs_commands_carry_ignition_flags() {
    let mut f = fs("ext4");
    f.label = Some("ROOT".into());
    f.uuid = Some("9D1E0A4B-0000-4000-8000-000000000001".into());
    f.options = vec!["-b".into(), "4096".into()];
    let c = mkfs_cmd(&f, "ext4", "/dev/sda1").unwrap().unwrap();
    assert_eq!(
        args(&c),
        "mkfs.ext4 -b 4096 -F -U 9d1e0a4b-0000-4000-8000-000000000001 -L ROOT /dev/sda1"
    );

    f.options.clear();
    let c = mkfs_cmd(&f, "xfs", "/dev/sda1").unwrap().unwrap();
    assert_eq!(
        args(&c),
        "mkfs.xfs -f -m uuid=9d1e0a4b-0000-4000-8000-000000000001 -L ROOT /dev/sda1"
    );
    let c = mkfs_cmd(&f, "btrfs", "/dev/sda1").unwrap().unwrap();
    assert_eq!(
        args(&c),
        "mkfs.btrfs --force -U 9d1e0a4b-0000-4000-8000-000000000001 -L ROOT /dev/sda1"
    );
    let c = mkfs_cmd(&f, "swap", "/dev/sda1").unwrap().unwrap();
    assert_eq!(
        args(&c),
        "mkswap -f -U 9d1e0a4b-0000-4000-8000-000000000001 -L ROOT /dev/sda1"
    );

    let mut v = fs("vfat");
    v.label = Some("EFI".into());
    v.uuid = Some("A1B2-C3D4".into());
    let c = mkfs_cmd(&v, "vfat", "/dev/sda1").unwrap().unwrap();
    assert_eq!(args(&c), "mkfs.vfat -i a1b2c3d4 -n EFI /dev/sda1");

    assert_eq!(mkfs_cmd(&fs("none"), "none", "/dev/sda1"), Ok(None));
    assert_eq!(
        mkfs_cmd(&fs("ntfs"), "ntfs", "/dev/sda1"),
        Err(DecideError::Unsupported("ntfs".into()))
    );
}

#[test]
fn uuid_canonicalisation() {
    assert_eq!(canonical_uuid("vfat", "A1B2-C3D4"), "a1b2c3d4");
    assert_eq!(canonical_uuid("vfat", "a1b2c3d4"), "a1b2c3d4");
    assert_eq!(canonical_uuid("ext4", "ABCD-0000"), "abcd-0000");
}

#[test]
fn blank_device_is_formatted() {
    let d = decide(&fs("ext4"), "/dev/sda1", &FsInfo::default()).unwrap();
    assert!(matches!(d, Decision::Create { mkfs: Some(_) }));
}

#[test]
fn matching_filesystem_is_reused() {
    let mut f = fs("ext4");
    f.label = Some("ROOT".into());
    f.uuid = Some("ABC".into());
    assert_eq!(
        decide(&f, "/dev/sda1", &found("ext4", "ROOT", "abc")),
        Ok(Decision::Reuse)
    );
    // Unset label/uuid match anything.
    assert_eq!(
        decide(&fs("ext4"), "/dev/sda1", &found("ext4", "x", "y")),
        Ok(Decision::Reuse)
    );
    // vfat ids compare with or without the dash.
    let mut v = fs("vfat");
    v.uuid = Some("a1b2c3d4".into());
    assert_eq!(
        decide(&v, "/dev/sda1", &found("vfat", "", "A1B2-C3D4")),
        Ok(Decision::Reuse)
    );
}

#[test]
fn different_filesystem_without_wipe_is_an_error() {
    let mut f = fs("ext4");
    f.label = Some("ROOT".into());
    let e = decide(&f, "/dev/sda1", &found("ext4", "DATA", "u")).unwrap_err();
    assert_eq!(e, DecideError::Mismatch(found("ext4", "DATA", "u")));
    assert!(decide(&fs("xfs"), "/dev/sda1", &found("ext4", "", "")).is_err());
    // `none` asks for no filesystem: an existing one is a mismatch.
    assert!(decide(&fs("none"), "/dev/sda1", &found("swap", "", "")).is_err());
    assert_eq!(
        decide(&fs("none"), "/dev/sda1", &FsInfo::default()),
        Ok(Decision::Reuse)
    );
}

#[test]
fn wipe_always_recreates() {
    let mut f = fs("ext4");
    f.wipe_filesystem = Some(true);
    assert!(matches!(
        decide(&f, "/dev/sda1", &found("ext4", "", "")),
        Ok(Decision::Create { mkfs: Some(_) })
    ));
    let mut n = fs("none");
    n.wipe_filesystem = Some(true);
    assert_eq!(
        decide(&n, "/dev/sda1", &found("ext4", "", "")),
        Ok(Decision::Create { mkfs: None })
    );
}

#[test]
fn no_format_means_untouched() {
    let f = Filesystem {
        device: "/dev/sda1".into(),
        ..Default::default()
    };
    assert_eq!(decide(&f, "/dev/sda1", &found("ext4", "", "")), Ok(Decision::Untouched));
}

#[test]
fn blkid_export_parsing() {
    let out = "DEVNAME=/dev/loop0p1\nSEC_TYPE=msdos\nLABEL_FATBOOT=FOO\nLABEL=FOO\nUUID=A1B2-C3D4\nTYPE=vfat\n";
    assert_eq!(parse_blkid_export(out), found("vfat", "FOO", "A1B2-C3D4"));
}
