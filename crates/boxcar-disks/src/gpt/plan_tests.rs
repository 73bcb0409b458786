//! Worked examples of Ignition's partition matrix.

use super::*;

const LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

fn part(number: i64, label: &str) -> Partition {
    Partition {
        number,
        label: (!label.is_empty()).then(|| label.to_string()),
        ..Default::default()
    }
}

fn existing(number: u32, start: u64, size: u64, label: &str) -> ExistingPartition {
    ExistingPartition {
        number,
        start,
        size,
        type_guid: LINUX.into(),
        guid: format!("00000000-0000-4000-8000-00000000000{number}"),
        label: label.into(),
    }
}

fn disk(parts: Vec<ExistingPartition>) -> DiskInfo {
    DiskInfo { partitions: parts }
}

#[test]
fn number_zero_goes_last_and_mib_become_sectors() {
    let mut a = part(0, "data");
    a.size_mib = Some(10);
    let mut b = part(2, "root");
    b.start_mib = Some(1);
    let s = specs(&[a, b], 512).unwrap();
    assert_eq!(s[0].number, 2);
    assert_eq!(s[0].start, Some(2048));
    assert_eq!(s[0].index, 1);
    assert_eq!(s[1].number, 0);
    assert_eq!(s[1].size, Some(20480));
    let s4k = specs(
        &[part(1, "x")].map(|mut p| {
            p.size_mib = Some(1);
            p
        }),
        4096,
    )
    .unwrap();
    assert_eq!(s4k[0].size, Some(256));
}

#[test]
fn negative_values_are_invalid() {
    let mut p = part(1, "x");
    p.size_mib = Some(-1);
    assert!(matches!(specs(&[p], 512), Err(PlanError::Invalid { index: 0, .. })));
    assert!(matches!(specs(&[part(-3, "")], 512), Err(PlanError::Invalid { .. })));
}

#[test]
fn empty_disk_creates_everything() {
    let mut root = part(1, "ROOT");
    root.size_mib = Some(10);
    root.type_guid = Some(ESP.into());
    root.guid = Some("11111111-2222-4333-8444-555555555555".into());
    let s = specs(&[root, part(0, "rest")], 512).unwrap();
    let actions = plan(&s, &DiskInfo::default()).unwrap();
    assert_eq!(
        commit_args(&actions),
        [
            "--new=1:0:+20480",
            "--change-name=1:ROOT",
            &format!("--typecode=1:{ESP}"),
            "--partition-guid=1:11111111-2222-4333-8444-555555555555",
            "--new=0:0:+0",
            "--change-name=0:rest",
        ]
    );
}

#[test]
fn matching_partition_is_kept() {
    // Unset start/size/type/guid match anything; the label must match.
    let d = disk(vec![existing(1, 2048, 20480, "ROOT")]);
    let s = specs(&[part(1, "ROOT")], 512).unwrap();
    assert_eq!(plan(&s, &d).unwrap(), [(0, Action::Keep { number: 1 })]);
    assert!(commit_args(&plan(&s, &d).unwrap()).is_empty());
    // Type GUIDs compare case-insensitively.
    let mut p = part(1, "ROOT");
    p.type_guid = Some(LINUX.to_lowercase());
    p.size_mib = Some(10);
    p.start_mib = Some(1);
    assert_eq!(
        plan(&specs(&[p], 512).unwrap(), &d).unwrap(),
        [(0, Action::Keep { number: 1 })]
    );
}

#[test]
fn mismatch_without_wipe_is_an_error_naming_the_field() {
    let d = disk(vec![existing(1, 2048, 20480, "ROOT")]);
    let s = specs(&[part(1, "DATA")], 512).unwrap();
    match plan(&s, &d) {
        Err(PlanError::Mismatch { number: 1, reason, .. }) => {
            assert_eq!(reason, r#"label did not match (specified "DATA", got "ROOT")"#)
        }
        other => panic!("{other:?}"),
    }
    let mut p = part(1, "ROOT");
    p.size_mib = Some(20);
    match plan(&specs(&[p], 512).unwrap(), &d) {
        Err(PlanError::Mismatch { reason, .. }) => {
            assert_eq!(reason, "size did not match (specified 40960, got 20480)")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mismatch_with_wipe_entry_recreates() {
    let d = disk(vec![existing(1, 2048, 20480, "ROOT")]);
    let mut p = part(1, "DATA");
    p.wipe_partition_entry = Some(true);
    let actions = plan(&specs(&[p], 512).unwrap(), &d).unwrap();
    assert!(matches!(actions[0].1, Action::Recreate(_)));
    assert_eq!(
        commit_args(&actions),
        ["--delete=1", "--new=1:0:+0", "--change-name=1:DATA"]
    );
}

#[test]
fn resize_keeps_identity_and_start() {
    let d = disk(vec![existing(1, 2048, 20480, "ROOT")]);
    let mut p = part(1, "ROOT");
    p.size_mib = Some(30);
    p.resize = Some(true);
    let actions = plan(&specs(&[p], 512).unwrap(), &d).unwrap();
    assert_eq!(
        commit_args(&actions),
        [
            "--delete=1",
            "--new=1:2048:+61440",
            "--change-name=1:ROOT",
            &format!("--typecode=1:{LINUX}"),
            "--partition-guid=1:00000000-0000-4000-8000-000000000001",
        ]
    );
    // resize does not excuse a different label.
    let mut q = part(1, "OTHER");
    q.size_mib = Some(30);
    q.resize = Some(true);
    assert!(matches!(
        plan(&specs(&[q], 512).unwrap(), &d),
        Err(PlanError::Mismatch { .. })
    ));
}

#[test]
fn should_exist_false() {
    let d = disk(vec![existing(1, 2048, 20480, "ROOT")]);
    let mut gone = part(1, "");
    gone.should_exist = Some(false);
    assert_eq!(
        plan(&specs(&[gone.clone()], 512).unwrap(), &d),
        Err(PlanError::Exists { index: 0, number: 1 })
    );
    gone.wipe_partition_entry = Some(true);
    let actions = plan(&specs(&[gone.clone()], 512).unwrap(), &d).unwrap();
    assert_eq!(commit_args(&actions), ["--delete=1"]);
    // Nothing there: success without operations.
    let actions = plan(&specs(&[gone], 512).unwrap(), &DiskInfo::default()).unwrap();
    assert_eq!(actions, [(0, Action::AlreadyAbsent { number: 1 })]);
}

#[test]
fn deletions_come_before_creations() {
    let d = disk(vec![existing(1, 2048, 20480, "A"), existing(2, 22528, 2048, "B")]);
    let mut new3 = part(3, "C");
    new3.size_mib = Some(1);
    let mut del2 = part(2, "");
    del2.should_exist = Some(false);
    del2.wipe_partition_entry = Some(true);
    let actions = plan(&specs(&[new3, del2], 512).unwrap(), &d).unwrap();
    assert_eq!(
        commit_args(&actions),
        ["--delete=2", "--new=3:0:+2048", "--change-name=3:C"]
    );
}

#[test]
fn pretend_recreates_existing_with_their_dimensions() {
    let d = disk(vec![existing(1, 2048, 20480, "ROOT")]);
    let mut p1 = part(1, "ROOT");
    p1.size_mib = Some(0);
    let mut p2 = part(2, "DATA");
    p2.start_mib = Some(0);
    p2.size_mib = Some(0);
    let s = specs(&[p1, p2], 512).unwrap();
    let (args, inspect) = pretend_args(&s, &d, false);
    assert_eq!(
        args,
        [
            "--pretend",
            "--delete=1",
            "--new=1:2048:+0",
            "--new=2:0:+0",
            "--info=1",
            "--info=2"
        ]
    );
    assert_eq!(inspect, [1, 2]);
    let (args, _) = pretend_args(&s, &d, true);
    assert_eq!(&args[..2], ["--pretend", "--clear"]);
}

const PRETEND_OUT: &str = "\
Partition GUID code: 0FC63DAF-8483-4772-8E79-3D69D8477DE4 (Linux filesystem)
Partition unique GUID: B8342757-43BB-4BCF-B6C8-D127DD41E4AC
First sector: 2048 (at 1024.0 KiB)
Last sector: 22527 (at 11.0 MiB)
Partition size: 20480 sectors (10.0 MiB)
Partition name: ''
Partition GUID code: 0FC63DAF-8483-4772-8E79-3D69D8477DE4 (Linux filesystem)
First sector: 22528 (at 11.0 MiB)
Last sector: 204766 (at 100.0 MiB)
";

#[test]
fn pretend_output_resolves_zero_sizes() {
    let dims = parse_pretend(PRETEND_OUT, &[1, 2]).unwrap();
    assert_eq!(dims[&1], (2048, 20480));
    assert_eq!(dims[&2], (22528, 182239));
    // Too few or too many blocks is "unexpected output".
    assert!(parse_pretend(PRETEND_OUT, &[1, 2, 3]).is_none());
    assert!(parse_pretend(PRETEND_OUT, &[1]).is_none());
    assert!(parse_pretend("First sector: x (at 0)\n", &[1]).is_none());
    assert_eq!(parse_pretend("", &[]).unwrap().len(), 0);

    let mut p = part(2, "DATA");
    p.size_mib = Some(0);
    let s = resolve(&specs(&[p], 512).unwrap(), &dims);
    assert_eq!((s[0].start, s[0].size), (None, Some(182239)));
    // A fill-the-disk partition matches the one an earlier run created.
    let d = disk(vec![existing(2, 22528, 182239, "DATA")]);
    assert_eq!(plan(&s, &d).unwrap(), [(0, Action::Keep { number: 2 })]);
}
