//! The full image build (minutes; the Debian root is cached in
//! /var/cache/boxcar-image after the first run), checked with the real
//! tools: boxcar-slots and sgdisk/cgpt read the GPT back, veritysetup
//! verifies USR-A against USR-A-VERITY cut out of the disk, objdump lists the
//! UKI's sections, mtools lists the ESP, cpio lists the initrd, fsck.erofs
//! extracts /usr, sha256sum checks SHA256SUMS, the payload verifies with the
//! image's key. A second build from the same inputs must give the same /usr
//! image (reproducibility). Runs as root without mounting anything.

use boxcar_image::bootstrap::{Cache, Reuse};
use boxcar_image::{build, BinarySource, BuildOptions, BuildReport, Qcow2};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn tool(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (see scripts/setup.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Our binaries, debug builds (the image test checks assembly, not speed).
fn binaries() -> PathBuf {
    let ws = workspace();
    tool(
        Command::new("cargo")
            .args(["build", "-p", "boxcar-provision", "-p", "boxcar-cli"])
            .current_dir(&ws),
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    target.join("debug")
}

fn options(out: &Path, bins: &Path) -> BuildOptions {
    BuildOptions {
        manifest: workspace().join("images/boxcar.toml"),
        output: out.to_path_buf(),
        patch: Some(0),
        key: None,
        cache: Cache {
            dir: PathBuf::from(std::env::var("BOXCAR_IMAGE_CACHE").unwrap_or("/var/cache/boxcar-image".into())),
        },
        reuse: Reuse::Cached,
        binaries: BinarySource::Dir(bins.to_path_buf()),
        qcow2: Qcow2::Write,
        extra_overlays: vec![],
        source_date_epoch: None,
        payload_level: 1,
    }
}

fn file(r: &BuildReport, dir: &Path, kind: &str) -> PathBuf {
    dir.join(
        &r.files
            .iter()
            .find(|f| f.kind == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
            .name,
    )
}

/// Copies `len` bytes at `off` of `src` into a new file.
fn cut(src: &Path, off: u64, len: u64, dst: &Path) {
    let mut f = std::fs::File::open(src).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut o = std::fs::File::create(dst).unwrap();
    std::io::copy(&mut f.take(len), &mut o).unwrap();
}

#[test]
fn full_build_gives_a_consistent_reproducible_image() {
    let bins = binaries();
    let base = tempfile::Builder::new()
        .prefix("boxcar-image-test")
        .tempdir_in("/var/tmp")
        .unwrap();
    let out = base.path().join("a");
    let r = build(&options(&out, &bins)).expect("image build");
    let raw = file(&r, &out, "raw");

    // GPT read back: design.md's layout, the /usr pair named by the root hash.
    let t = boxcar_slots::read(&raw).unwrap();
    assert_eq!(t.health, boxcar_slots::Health::Both);
    let labels: Vec<_> = t
        .gpt
        .entries
        .iter()
        .filter(|e| e.is_used())
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(
        labels,
        [
            "EFI-SYSTEM",
            "USR-A",
            "USR-A-VERITY",
            "USR-B",
            "USR-B-VERITY",
            "OEM",
            "ROOT"
        ]
    );
    let usr = t.gpt.partition(2).unwrap().clone();
    let ver = t.gpt.partition(3).unwrap().clone();
    assert_eq!(usr.guid.to_string().replace('-', ""), r.usrhash[..32]);
    assert_eq!(ver.guid.to_string().replace('-', ""), r.usrhash[32..]);
    assert_eq!(usr.guid.to_string(), r.usr_partuuid);
    let sg = tool(Command::new("sgdisk").arg("-v").arg(&raw));
    assert!(sg.contains("No problems found"), "{sg}");
    let cg = tool(Command::new("cgpt").arg("show").arg(&raw));
    assert!(cg.contains("USR-A-VERITY") && cg.contains("ROOT"), "{cg}");

    // USR-A verifies against USR-A-VERITY as cut from the disk; one flipped
    // byte in the data makes veritysetup fail.
    let usr_len = std::fs::metadata(file(&r, &out, "usr")).unwrap().len();
    let ver_len = std::fs::metadata(file(&r, &out, "verity")).unwrap().len();
    let d = base.path().join("usr-a.img");
    let h = base.path().join("usr-a-verity.img");
    cut(&raw, usr.first_lba * 512, usr_len, &d);
    cut(&raw, ver.first_lba * 512, ver_len, &h);
    tool(
        Command::new("veritysetup")
            .arg("verify")
            .arg(&d)
            .arg(&h)
            .arg(&r.usrhash),
    );
    {
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&d).unwrap();
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(usr_len / 2)).unwrap();
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(usr_len / 2)).unwrap();
        f.write_all(&[b[0] ^ 0xff]).unwrap();
    }
    let bad = Command::new("veritysetup")
        .arg("verify")
        .arg(&d)
        .arg(&h)
        .arg(&r.usrhash)
        .status()
        .unwrap();
    assert!(!bad.success(), "a corrupted /usr must not verify");

    // /usr content: our binaries, os-release with version and channel, the key, /etc defaults.
    let x = base.path().join("usr-x");
    tool(
        Command::new("fsck.erofs")
            .arg(format!("--extract={}", x.display()))
            .arg(file(&r, &out, "usr")),
    );
    let osr = std::fs::read_to_string(x.join("lib/os-release")).unwrap();
    assert!(osr.contains(&format!("VERSION_ID=\"{}\"", r.version)), "{osr}");
    assert!(osr.contains("BOXCAR_CHANNEL=\"alpha\""), "{osr}");
    assert!(x.join("bin/boxcar-provision").is_file() && x.join("bin/boxcar").is_file());
    assert!(x.join("bin/podman").is_file());
    assert_eq!(
        std::fs::read(x.join("share/boxcar/update-key.pub.pem")).unwrap(),
        std::fs::read(file(&r, &out, "key")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(x.join("share/boxcar/etc/machine-id")).unwrap(),
        "uninitialized\n"
    );
    assert!(
        !x.join("share/boxcar/etc/ssh/ssh_host_ed25519_key").exists(),
        "host keys must not ship"
    );
    // Enabled by the presets at build time (absolute links into the image's /lib).
    let wants = x.join("share/boxcar/etc/systemd/system/multi-user.target.wants");
    assert_eq!(
        std::fs::read_link(wants.join("ssh.service")).unwrap(),
        Path::new("/lib/systemd/system/ssh.service")
    );
    assert!(std::fs::symlink_metadata(wants.join("boxcar-sshkeys.service")).is_ok());
    assert!(
        std::fs::symlink_metadata(x.join("share/boxcar/etc/systemd/system/timers.target.wants/apt-daily.timer"))
            .is_err(),
        "99-boxcar-default.preset disables what is not listed"
    );

    // UKI sections, and the command line inside it is the one in cmdline.txt.
    let uki = file(&r, &out, "uki");
    let sections = tool(Command::new("objdump").arg("-h").arg(&uki));
    for s in [".linux", ".initrd", ".cmdline", ".osrel"] {
        assert!(sections.contains(s), "{s} missing:\n{sections}");
    }
    let cl = base.path().join("cmdline.bin");
    tool(
        Command::new("objcopy")
            .args(["-O", "binary", "--only-section=.cmdline"])
            .arg(&uki)
            .arg(&cl),
    );
    let cmdline = std::fs::read_to_string(&cl).unwrap();
    assert_eq!(cmdline, std::fs::read_to_string(file(&r, &out, "cmdline")).unwrap());
    assert!(cmdline.contains(&format!("usrhash={}", r.usrhash)), "{cmdline}");

    // ESP (read in place on the disk): systemd-boot, loader.conf, the UKI, the first-boot flag.
    let esp = t.gpt.partition(1).unwrap();
    let at = format!("{}@@{}", raw.display(), esp.first_lba * 512);
    let mdir = |p: &str| {
        tool(
            Command::new("mdir")
                .args(["-b", "-i", &at, p])
                .env("MTOOLS_SKIP_CHECK", "1"),
        )
    };
    assert!(mdir("::/EFI/BOOT").contains("BOOTX64.EFI"));
    assert!(mdir("::/EFI/Linux").contains(&r.uki_entry));
    assert!(mdir("::/boxcar").contains("first_boot"));
    let lc = tool(
        Command::new("mtype")
            .args(["-i", &at, "::/loader/loader.conf"])
            .env("MTOOLS_SKIP_CHECK", "1"),
    );
    assert!(lc.contains("default boxcar-*"), "{lc}");

    // initrd: systemd as init, provisioning units in order, verity module and tools.
    let list = tool(Command::new("sh").arg("-c").arg(format!(
        "zstd -dc {} | cpio -t --quiet",
        file(&r, &out, "initrd").display()
    )));
    for want in [
        "init",
        "etc/initrd-release",
        "usr/bin/boxcar-provision",
        "usr/sbin/veritysetup",
        "usr/lib/systemd/system-generators/systemd-veritysetup-generator",
        "usr/lib/systemd/system/initrd.target.wants/boxcar-provision-disks.service",
        &format!("usr/lib/modules/{}/kernel/drivers/md/dm-verity.ko", r.kernel),
        &format!("usr/lib/modules/{}/modules.dep", r.kernel),
    ] {
        assert!(list.lines().any(|l| l == want), "initrd lacks {want}");
    }

    // Sums, SBOM, payload.
    tool(
        Command::new("sha256sum")
            .args(["-c", "--quiet", "SHA256SUMS"])
            .current_dir(&out),
    );
    let sbom: serde_json::Value = serde_json::from_slice(&std::fs::read(file(&r, &out, "sbom")).unwrap()).unwrap();
    let pkgs = sbom["packages"].as_array().unwrap();
    for p in ["linux-image-amd64", "systemd", "podman", "cryptsetup-bin"] {
        assert!(
            pkgs.iter()
                .any(|x| x["name"] == p && !x["version"].as_str().unwrap().is_empty()),
            "{p}"
        );
    }
    let key = boxcar_payload::keys::load_public(&file(&r, &out, "key")).unwrap();
    let m = boxcar_payload::verify_stream(
        std::fs::File::open(file(&r, &out, "payload")).unwrap(),
        &key,
        &boxcar_payload::VersionPolicy::Any,
    )
    .unwrap();
    assert_eq!(
        m.verity_params.root_hash, r.usrhash,
        "payload and UKI must agree on the root hash"
    );
    assert_eq!(m.version, r.version);
    let info = tool(
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(file(&r, &out, "qcow2")),
    );
    assert!(info.contains("\"format\": \"qcow2\""), "{info}");

    // Reproducibility: the same inputs again give the same /usr bytes.
    let out2 = base.path().join("b");
    let mut o2 = options(&out2, &bins);
    o2.qcow2 = Qcow2::Skip;
    let r2 = build(&o2).expect("second build");
    assert_eq!(r2.usr_sha256, r.usr_sha256, "/usr image differs between two builds");
    assert_eq!(r2.usrhash, r.usrhash);
    eprintln!(
        "build 1: {:.0} s, build 2: {:.0} s, usr sha256 {}, usrhash {}",
        r.seconds, r2.seconds, r.usr_sha256, r.usrhash
    );
}
