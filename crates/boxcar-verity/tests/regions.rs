//! Verifying partitions in place: data and hash tree at offsets inside one
//! "disk" file, as the update agent reads a written slot back.

use boxcar_verity::{format_file, verify_regions, DataBlocks, Parallelism, Params, Region, Salt, VerityError};

#[test]
fn regions_inside_a_disk_file_verify_and_corruption_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..300 * 4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (dp, hp) = (dir.path().join("data"), dir.path().join("hash"));
    std::fs::write(&dp, &data).unwrap();
    let params = Params {
        salt: Salt::from_hex("00ff").unwrap(),
        uuid: [7; 16],
        data_blocks: DataBlocks::WholeFile,
    };
    let out = format_file(&dp, &hp, &params, Parallelism::Threads(2)).unwrap();
    let hash = std::fs::read(&hp).unwrap();
    // Disk: 1 MiB gap, data partition (with slack), gap, hash partition (with slack).
    let (doff, dlen) = (1 << 20, data.len() as u64 + 8192);
    let hoff = doff + dlen + 4096;
    let hlen = hash.len() as u64 + 4096;
    let mut disk = vec![0xa5u8; (hoff + hlen + 4096) as usize];
    disk[doff as usize..doff as usize + data.len()].copy_from_slice(&data);
    disk[hoff as usize..hoff as usize + hash.len()].copy_from_slice(&hash);
    let disk_path = dir.path().join("disk");
    std::fs::write(&disk_path, &disk).unwrap();
    let region = |offset, len| Region {
        path: &disk_path,
        offset,
        len: Some(len),
    };
    verify_regions(
        region(doff, dlen),
        region(hoff, hlen),
        &out.root,
        Parallelism::Threads(2),
    )
    .unwrap();

    // A flipped byte in block 123 of the data partition is named as such.
    let mut bad = disk.clone();
    bad[doff as usize + 123 * 4096 + 5] ^= 1;
    std::fs::write(&disk_path, &bad).unwrap();
    let e = verify_regions(region(doff, dlen), region(hoff, hlen), &out.root, Parallelism::Auto).unwrap_err();
    assert!(
        matches!(
            &e,
            VerityError::Corrupt {
                mismatch: boxcar_verity::Mismatch::DataBlock { block: 123, .. },
                ..
            }
        ),
        "{e}"
    );
    // A region past the end of the disk is an error, not a panic.
    std::fs::write(&disk_path, &disk).unwrap();
    assert!(verify_regions(region(doff, dlen), region(hoff, 1 << 40), &out.root, Parallelism::Auto).is_err());
}
