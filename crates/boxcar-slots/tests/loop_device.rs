//! The same file API on a real block device: a loop device over an image
//! (needs root and /dev/loop-control, as the agent has on a node).

use boxcar_slots::layout::{self, Sizes, Slot};
use boxcar_slots::{read, write, Guid, Health, Mbr};
use std::path::PathBuf;
use std::process::Command;

/// Detaches the loop device even if the test fails.
struct Loop(PathBuf);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn read_and_write_through_a_loop_device() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    std::fs::File::create(&img).unwrap().set_len(32 << 20).unwrap();
    let sizes = Sizes {
        esp_mib: 4,
        usr_mib: 4,
        verity_mib: 1,
        oem_mib: 1,
    };
    let mut n = 0u8;
    let gpt = layout::boxcar_layout(32 << 20 >> 9, sizes, Guid([9; 16]), || {
        n += 1;
        Guid([n; 16])
    })
    .unwrap();
    write(&img, &gpt, Mbr::Protective).unwrap();

    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&img)
        .output()
        .expect("losetup (util-linux)");
    assert!(
        out.status.success(),
        "losetup failed (root and loop devices needed): {out:?}"
    );
    let dev = Loop(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()));
    assert!(
        std::fs::metadata(&dev.0).unwrap().len() == 0,
        "block devices report length 0"
    );

    let t = read(&dev.0).unwrap();
    assert_eq!(t.health, Health::Both);
    assert_eq!(t.gpt.total_sectors, 32 << 20 >> 9);
    let mut g = t.gpt;
    layout::stage_trial(&mut g, Slot::B, 1).unwrap();
    write(&dev.0, &g, Mbr::Keep).unwrap();
    drop(dev);

    // Through the image file, cgpt sees what we wrote on the device.
    let show = |flag: &str| {
        let o = Command::new("cgpt")
            .args(["show", "-i", "4", flag])
            .arg(&img)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    assert_eq!(
        (show("-P"), show("-T"), show("-S")),
        ("2".into(), "1".into(), "0".into())
    );
}
