//! Differential tests against Debian's `cgpt` (vboot-utils) on image files:
//! tables and attributes we write read identically in cgpt, what `cgpt add`
//! writes reads identically in ours, and `prioritize` renumbers the same.

use boxcar_slots::layout::{self, types, Sizes, Slot};
use boxcar_slots::{read, write, AddFields, Friends, Gpt, Guid, Health, Mbr, Prio, Successful};
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1 << 20;

fn cgpt(args: &[&str]) -> String {
    let out = cgpt_raw(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("invalid"), "cgpt {args:?} complained: {stderr}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs cgpt and checks only its exit status (`create` on a blank file
/// warns that there is no valid header yet).
fn cgpt_raw(args: &[&str]) -> std::process::Output {
    let out = Command::new("cgpt")
        .args(args)
        .output()
        .expect("cgpt must be installed (scripts/setup.sh)");
    assert!(out.status.success(), "cgpt {args:?}: {out:?}");
    out
}

/// (priority, tries, successful) of partition `n` as cgpt reads it.
fn cgpt_prio(img: &Path, n: u32) -> (u8, u8, u8) {
    let i = n.to_string();
    let p = img.to_str().unwrap();
    let get = |flag: &str| cgpt(&["show", "-i", &i, flag, p]).parse::<u8>().unwrap();
    (get("-P"), get("-T"), get("-S"))
}

fn ours(p: Prio) -> (u8, u8, u8) {
    (p.priority, p.tries, (p.successful == Successful::Yes) as u8)
}

fn counter_guids() -> impl FnMut() -> Guid {
    let mut n = 0u8;
    move || {
        n += 1;
        Guid([n; 16])
    }
}

fn small_sizes() -> Sizes {
    Sizes {
        esp_mib: 4,
        usr_mib: 8,
        verity_mib: 1,
        oem_mib: 2,
    }
}

/// A 48 MiB image with the Boxcar layout written by us.
fn boxcar_image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("disk.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(48 * MIB).unwrap();
    let gpt = layout::boxcar_layout(48 * MIB / 512, small_sizes(), Guid([0xab; 16]), counter_guids()).unwrap();
    write(&img, &gpt, Mbr::Protective).unwrap();
    img
}

#[test]
fn cgpt_and_sgdisk_accept_our_layout() {
    let dir = tempfile::tempdir().unwrap();
    let img = boxcar_image(dir.path());
    let p = img.to_str().unwrap();
    let show = cgpt(&["show", p]);
    for label in [
        "EFI-SYSTEM",
        "USR-A",
        "USR-A-VERITY",
        "USR-B",
        "USR-B-VERITY",
        "OEM",
        "ROOT",
    ] {
        assert!(
            show.contains(&format!("Label: \"{label}\"")),
            "{label} missing in:\n{show}"
        );
    }
    assert!(show.contains("Sec GPT header"), "{show}");
    assert_eq!(
        cgpt(&["show", "-i", "2", "-t", p]).to_lowercase(),
        types::USR_X86_64.to_string()
    );
    assert_eq!(
        cgpt(&["show", "-i", "3", "-t", p]).to_lowercase(),
        types::USR_VERITY_X86_64.to_string()
    );
    // USR-A follows the 4 MiB ESP at 1 MiB.
    assert_eq!(cgpt(&["show", "-i", "2", "-b", p]), "10240");
    assert_eq!(cgpt(&["show", "-i", "2", "-s", p]), "16384");
    // Fresh image: A good (P1 T0 S1), B empty.
    assert_eq!(cgpt_prio(&img, 2), (1, 0, 1));
    assert_eq!(cgpt_prio(&img, 4), (0, 0, 0));
    // sgdisk's verifier finds no problems (both headers, both arrays, CRCs, PMBR).
    let v = Command::new("sgdisk").args(["-v", p]).output().unwrap();
    let vout = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success() && vout.contains("No problems found"), "{vout}");
    // Our own reader sees both copies valid.
    let t = read(&img).unwrap();
    assert_eq!(t.health, Health::Both);
    assert_eq!(t.gpt.find_by_label("ROOT"), Some(7));
}

#[test]
fn attributes_written_by_us_read_identically_in_cgpt() {
    let dir = tempfile::tempdir().unwrap();
    let img = boxcar_image(dir.path());
    for (i, (p, t, s)) in [
        (0u8, 0u8, 0u8),
        (15, 15, 1),
        (2, 1, 0),
        (1, 0, 1),
        (9, 4, 1),
        (3, 15, 0),
    ]
    .into_iter()
    .enumerate()
    {
        let n = if i % 2 == 0 { 2 } else { 4 };
        let mut gpt = read(&img).unwrap().gpt;
        layout::set_fields(
            &mut gpt,
            n,
            AddFields {
                priority: Some(p),
                tries: Some(t),
                successful: Some(if s == 1 { Successful::Yes } else { Successful::No }),
            },
        )
        .unwrap();
        write(&img, &gpt, Mbr::Keep).unwrap();
        assert_eq!(cgpt_prio(&img, n), (p, t, s), "P{p} T{t} S{s} on {n}");
        // The raw attribute nibbles agree too.
        let raw = cgpt(&["show", "-i", &n.to_string(), "-A", img.to_str().unwrap()]);
        let want = gpt.partition(n).unwrap().attributes >> 48;
        // cgpt prints it with printf's "%#x" (plain "0" for zero).
        let want = if want == 0 {
            "0".to_string()
        } else {
            format!("{want:#x}")
        };
        assert_eq!(raw, want);
    }
}

#[test]
fn attributes_written_by_cgpt_add_read_identically_by_us() {
    let dir = tempfile::tempdir().unwrap();
    let img = boxcar_image(dir.path());
    let p = img.to_str().unwrap();
    for (pr, t, s) in [(2u8, 1u8, 0u8), (15, 0, 1), (0, 15, 1), (7, 3, 0), (1, 0, 1)] {
        cgpt(&[
            "add",
            "-i",
            "4",
            "-P",
            &pr.to_string(),
            "-T",
            &t.to_string(),
            "-S",
            &s.to_string(),
            p,
        ]);
        let t2 = read(&img).unwrap();
        assert_eq!(t2.health, Health::Both, "cgpt wrote both copies");
        let e = t2.gpt.partition(4).unwrap();
        assert_eq!(ours(Prio::decode(e.attributes)), (pr, t, s));
        // Partial update: only -T changes tries.
        cgpt(&["add", "-i", "4", "-T", "5", p]);
        let e = read(&img).unwrap().gpt.partition(4).unwrap().clone();
        assert_eq!(ours(Prio::decode(e.attributes)), (pr, 5, s));
        // Our own arithmetic on the same operation gives the same word.
        let mine = boxcar_slots::prio::apply_add(
            0,
            AddFields {
                priority: Some(pr),
                tries: Some(5),
                successful: Some(if s == 1 { Successful::Yes } else { Successful::No }),
            },
        )
        .unwrap();
        assert_eq!(e.attributes, mine);
    }
    // And on a table cgpt created itself.
    let img2 = dir.path().join("cgpt.img");
    std::fs::File::create(&img2).unwrap().set_len(16 * MIB).unwrap();
    let p2 = img2.to_str().unwrap();
    cgpt_raw(&["create", p2]);
    cgpt(&[
        "add",
        "-b",
        "2048",
        "-s",
        "4096",
        "-t",
        &types::USR_X86_64.to_string(),
        "-l",
        "USR-A",
        "-S1",
        "-T0",
        "-P2",
        p2,
    ]);
    let t = read(&img2).unwrap();
    let e = t.gpt.partition(1).unwrap();
    assert_eq!((e.first_lba, e.last_lba, e.name.as_str()), (2048, 6143, "USR-A"));
    assert_eq!(e.attributes, 0x0102_0000_0000_0000);
}

/// Deterministic pseudo-random numbers for case generation.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn prioritize_matches_cgpt_renumbering() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.img");
    std::fs::File::create(&base).unwrap().set_len(MIB).unwrap();
    // Six Chrome OS kernel partitions and one other in between (cgpt's
    // prioritize only renumbers kernel partitions; ours is type-generic).
    let mut gpt = Gpt::new(MIB / 512, Guid([1; 16])).unwrap();
    for i in 0..7u64 {
        let e = &mut gpt.entries[i as usize];
        e.type_guid = if i == 3 {
            types::LINUX_DATA
        } else {
            types::CHROMEOS_KERNEL
        };
        e.guid = Guid([i as u8 + 10; 16]);
        e.first_lba = 64 + i * 64;
        e.last_lba = e.first_lba + 63;
        e.name = format!("K{i}");
    }
    write(&base, &gpt, Mbr::Protective).unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let (theirs, mine) = (dir.path().join("theirs.img"), dir.path().join("mine.img"));
    for case in 0..40 {
        let mut g = gpt.clone();
        for e in g.entries.iter_mut().take(7) {
            // Few distinct priorities, zeros included, to exercise groups.
            e.attributes = Prio {
                priority: [0, 1, 1, 2, 3, 5, 15][rng.next(7) as usize],
                tries: rng.next(16) as u8,
                successful: Successful::No,
            }
            .encode(0);
        }
        let target = [1u32, 2, 3, 5, 6, 7][rng.next(6) as usize];
        let friends = if rng.next(3) == 0 {
            Friends::WithFriends
        } else {
            Friends::Alone
        };
        let max = match rng.next(4) {
            0 => Some(1 + rng.next(15) as u8),
            _ => None,
        };
        std::fs::copy(&base, &theirs).unwrap();
        write(&theirs, &g, Mbr::Keep).unwrap();
        std::fs::copy(&theirs, &mine).unwrap();

        let mut args = vec!["prioritize".to_string(), "-i".into(), target.to_string()];
        if friends == Friends::WithFriends {
            args.push("-f".into());
        }
        if let Some(m) = max {
            args.push("-P".into());
            args.push(m.to_string());
        }
        args.push(theirs.to_str().unwrap().into());
        cgpt(&args.iter().map(String::as_str).collect::<Vec<_>>());

        layout::prioritize_type(&mut g, types::CHROMEOS_KERNEL, target, friends, max).unwrap();
        write(&mine, &g, Mbr::Keep).unwrap();

        let (a, b) = (read(&theirs).unwrap().gpt, read(&mine).unwrap().gpt);
        let before: Vec<u8> = gpt_prios(&read(&base).unwrap().gpt);
        assert_eq!(
            gpt_prios(&a),
            gpt_prios(&b),
            "case {case}: target {target} {friends:?} max {max:?} (base {before:?})"
        );
        assert_eq!(a.entries, b.entries, "case {case}: whole entries differ");
        assert_eq!(
            std::fs::read(&theirs).unwrap(),
            std::fs::read(&mine).unwrap(),
            "case {case}: images differ"
        );
    }
}

fn gpt_prios(g: &Gpt) -> Vec<u8> {
    g.entries
        .iter()
        .take(7)
        .map(|e| Prio::decode(e.attributes).priority)
        .collect()
}

#[test]
fn damaged_primary_falls_back_to_backup_and_write_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let img = boxcar_image(dir.path());
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[512 + 100] ^= 0xff; // inside the primary header's CRC'd... reserved area is not CRC'd
    bytes[512 + 60] ^= 0xff; // disk GUID: CRC'd
    std::fs::write(&img, &bytes).unwrap();
    let t = read(&img).unwrap();
    assert!(
        matches!(t.health, Health::BackupOnly(ref why) if why.contains("CRC32")),
        "{:?}",
        t.health
    );
    assert_eq!(t.gpt.disk_guid, Guid([0xab; 16]));
    write(&img, &t.gpt, Mbr::Keep).unwrap();
    assert_eq!(read(&img).unwrap().health, Health::Both);
    assert_eq!(cgpt_prio(&img, 2), (1, 0, 1));
    // Entry array damage is caught by the array CRC.
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[1024 + 128 + 40] ^= 1;
    std::fs::write(&img, &bytes).unwrap();
    assert!(matches!(read(&img).unwrap().health, Health::BackupOnly(ref why) if why.contains("array CRC32")));
    // Both gone: a clear error, no panic.
    let n = bytes.len();
    bytes[n - 512] ^= 1;
    std::fs::write(&img, &bytes).unwrap();
    assert!(read(&img).is_err());
}

#[test]
fn update_flow_stage_boot_rollback_and_mark_good() {
    let dir = tempfile::tempdir().unwrap();
    let img = boxcar_image(dir.path());
    let mut g = read(&img).unwrap().gpt;
    assert_eq!(layout::next_boot_slot(&g).unwrap(), Some(Slot::A));
    // Stage B for one trial: cgpt reads B P2 T1 S0, A P1 T0 S1.
    layout::invalidate(&mut g, Slot::B).unwrap();
    layout::stage_trial(&mut g, Slot::B, 1).unwrap();
    write(&img, &g, Mbr::Keep).unwrap();
    assert_eq!(cgpt_prio(&img, 4), (2, 1, 0));
    assert_eq!(cgpt_prio(&img, 2), (1, 0, 1));
    // Boot 1 picks B and spends the try.
    assert_eq!(layout::simulate_boot(&mut g).unwrap(), Some(Slot::B));
    // Never marked good: boot 2 rolls back to A.
    assert_eq!(layout::simulate_boot(&mut g).unwrap(), Some(Slot::A));
    assert_eq!(layout::next_boot_slot(&g).unwrap(), Some(Slot::A));
    // Retry: stage again, boot, mark good → B stays.
    layout::stage_trial(&mut g, Slot::B, 1).unwrap();
    assert_eq!(layout::simulate_boot(&mut g).unwrap(), Some(Slot::B));
    layout::mark_good(&mut g, Slot::B).unwrap();
    write(&img, &g, Mbr::Keep).unwrap();
    assert_eq!(cgpt_prio(&img, 4), (2, 0, 1));
    assert_eq!(cgpt_prio(&img, 2), (1, 0, 1));
    assert_eq!(layout::simulate_boot(&mut g).unwrap(), Some(Slot::B));
    assert_eq!(layout::simulate_boot(&mut g).unwrap(), Some(Slot::B));
    // Manual rollback: A (still successful) made top priority.
    layout::mark_good(&mut g, Slot::A).unwrap();
    assert_eq!(layout::next_boot_slot(&g).unwrap(), Some(Slot::A));
    assert_eq!(
        layout::find_slot(&g, Slot::B).unwrap(),
        layout::SlotPartitions { usr: 4, verity: 5 }
    );
}
