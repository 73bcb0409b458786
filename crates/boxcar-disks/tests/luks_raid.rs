//! LUKS and RAID on real loop devices. This host's kernel may lack
//! device-mapper and md: then the tests assert the exact failure of the one
//! step that needs them (opening the volume, creating the array) after
//! checking everything before it on disk; with them, they assert success.

mod common;

use boxcar_disks::{disks, persist_luks, DisksError, LuksVolume, Mode, NoKeySource, Secret};
use common::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

const LUKS_UUID: &str = "2c5cbd63-1c57-4c2e-8a5f-2a3f4b2c9f10";
const KEY: &[u8] = b"correct horse battery staple, not to be logged";
/// Fast key derivation so the tests do not spend seconds in argon2.
const FAST: &str = r#""options":["--pbkdf","pbkdf2","--pbkdf-force-iterations","1000"]"#;

/// Whether the kernel has device-mapper. (/dev/mapper/control is no proof:
/// libdevmapper creates that node itself when it is missing.)
fn have_dm() -> bool {
    Path::new("/sys/class/misc/device-mapper").exists()
}

fn have_md() -> bool {
    Path::new("/proc/mdstat").exists()
}

fn partitioned(size: u64) -> Loop {
    let lo = Loop::new(size);
    run("sgdisk", &["--new=1:0:+0", &lo.dev]);
    run("partx", &["--update", &lo.dev]);
    lo
}

fn luks_config(dev: &str, name: &str, extra: &str) -> String {
    format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"luks":[{{"name":"{name}","device":"{dev}",{FAST}{extra}}}]}}}}"#
    )
}

fn key_unlocks(dev: &str, key: &[u8]) -> bool {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(key).unwrap();
    std::process::Command::new("cryptsetup")
        .args([
            "luksOpen",
            "--test-passphrase",
            dev,
            "--key-file",
            f.path().to_str().unwrap(),
        ])
        .status()
        .unwrap()
        .success()
}

fn close(name: &str) {
    let _ = std::process::Command::new("cryptsetup")
        .args(["luksClose", name])
        .status();
}

/// Collects every log line the library emits, at all levels.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn luks_with_a_key_file() {
    let _g = lock();
    let lo = partitioned(64);
    let dev = lo.part(1);
    let name = format!("bx{}", uniq());
    let keys = MapKeys(vec![("https://example.com/key".into(), KEY.to_vec())]);
    let root = tempfile::tempdir().unwrap();
    let c = ctx(root.path(), Mode::Apply, &keys);
    let extra = format!(r#","label":"CRYPT","uuid":"{LUKS_UUID}","keyFile":{{"source":"https://example.com/key"}}"#);
    let st = storage(&luks_config(&dev, &name, &extra));

    let logs = Logs::default();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer({
            let l = logs.clone();
            move || l.clone()
        })
        .finish();
    let res = tracing::subscriber::with_default(sub, || disks(&st, &c));
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logged.contains("luksFormat"), "the steps are logged: {logged}");
    assert!(!logged.contains("correct horse"), "the key is never logged");

    if have_dm() {
        let r = res.unwrap();
        assert_eq!(r.luks.len(), 1);
        assert_eq!(r.luks[0].uuid.as_deref(), Some(LUKS_UUID));
        assert_eq!(r.luks[0].key.as_ref().map(|k| k.expose()), Some(KEY));
        assert!(!format!("{r:?}").contains("correct horse"));
        close(&name);
    } else {
        let e = res.unwrap_err();
        assert!(
            matches!(&e, DisksError::Cryptsetup { path, what: "opening", .. } if path == "$.storage.luks.0"),
            "without device-mapper only opening fails: {e}"
        );
    }
    // The header was written as configured and the fetched key unlocks it.
    assert_eq!(blkid(&dev), ("crypto_LUKS".into(), "CRYPT".into(), LUKS_UUID.into()));
    assert!(key_unlocks(&dev, KEY));

    // Run again without wipeVolume: the volume qualifies for reuse.
    let res = disks(&st, &c);
    if have_dm() {
        assert_eq!(res.unwrap().luks[0].uuid.as_deref(), Some(LUKS_UUID));
        close(&name);
    } else {
        match res.unwrap_err() {
            DisksError::LuksVolumeMismatch { reason, .. } => assert!(reason.contains("opening it failed"), "{reason}"),
            other => panic!("{other}"),
        }
    }

    // A key that does not unlock the existing header is refused.
    let wrong = MapKeys(vec![("https://example.com/key".into(), b"wrong".to_vec())]);
    let e = disks(&st, &ctx(root.path(), Mode::Apply, &wrong)).unwrap_err();
    match e {
        DisksError::LuksVolumeMismatch { reason, .. } => assert!(reason.contains("does not unlock"), "{reason}"),
        other => panic!("{other}"),
    }
    // As is a different label.
    let st2 = storage(&luks_config(
        &dev,
        &name,
        r#","label":"OTHER","keyFile":{"source":"https://example.com/key"}"#,
    ));
    match disks(&st2, &c).unwrap_err() {
        DisksError::LuksVolumeMismatch { reason, .. } => assert!(reason.contains("label"), "{reason}"),
        other => panic!("{other}"),
    }
    // A key source that fails names the volume and the config path.
    let e = disks(&st, &ctx(root.path(), Mode::Apply, &NoKeySource)).unwrap_err();
    assert!(
        matches!(&e, DisksError::LuksKeyFetch { path, .. } if path == "$.storage.luks.0"),
        "{e}"
    );
}

#[test]
fn luks_generated_key_and_refusing_a_filesystem() {
    let _g = lock();
    let lo = partitioned(64);
    let dev = lo.part(1);
    let name = format!("bx{}", uniq());
    let root = tempfile::tempdir().unwrap();
    let c = ctx(root.path(), Mode::Apply, &NoKeySource);

    run("mkfs.ext4", &["-q", &dev]);
    let st = storage(&luks_config(&dev, &name, ""));
    match disks(&st, &c).unwrap_err() {
        DisksError::LuksVolumeMismatch { reason, .. } => assert!(reason.contains("ext4"), "{reason}"),
        other => panic!("{other}"),
    }
    assert_eq!(blkid(&dev).0, "ext4", "data kept");

    let temp_keys = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("boxcar-luks-")
            })
            .count()
    };
    let before = temp_keys();
    let st = storage(&luks_config(&dev, &name, r#","wipeVolume":true"#));
    let res = disks(&st, &c);
    assert_eq!(temp_keys(), before, "the temporary key file is removed");
    if have_dm() {
        let r = res.unwrap();
        let key = r.luks[0].key.as_ref().unwrap();
        assert_eq!(key.expose().len(), 8192);
        assert!(key_unlocks(&dev, key.expose()));
        close(&name);
    } else {
        assert!(matches!(
            res.unwrap_err(),
            DisksError::Cryptsetup { what: "opening", .. }
        ));
    }
    assert_eq!(blkid(&dev).0, "crypto_LUKS");

    // Reusing needs a key file: a generated key cannot match.
    match disks(&storage(&luks_config(&dev, &name, "")), &c).unwrap_err() {
        DisksError::LuksVolumeMismatch { reason, .. } => assert!(reason.contains("keyFile"), "{reason}"),
        other => panic!("{other}"),
    }
}

#[test]
fn clevis_needs_the_clevis_tool() {
    let _g = lock();
    let lo = partitioned(64);
    let dev = lo.part(1);
    let root = tempfile::tempdir().unwrap();
    let st = storage(&luks_config(&dev, "bxclevis", r#","clevis":{"tpm2":true}"#));
    let res = disks(&st, &ctx(root.path(), Mode::Apply, &NoKeySource));
    if boxcar_disks::cmd::in_path("clevis") {
        // With clevis but no TPM in a test VM the bind (or open) fails.
        assert!(res.is_err());
    } else {
        let e = res.unwrap_err();
        assert!(matches!(e, DisksError::ClevisUnavailable { .. }), "{e}");
        assert_eq!(blkid(&dev).0, "", "nothing formatted before the check");
    }
}

#[test]
fn luks_dry_run_fetches_and_formats_nothing() {
    let _g = lock();
    // The LUKS device is a partition the same config would create.
    let lo = Loop::new(64);
    let dev = lo.part(1);
    let root = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{
            "disks":[{{"device":"{}","partitions":[{{"number":1,"sizeMiB":0}}]}}],
            "luks":[{{"name":"bxdry","device":"{dev}","keyFile":{{"source":"https://example.com/key"}}}}],
            "filesystems":[{{"device":"/dev/mapper/bxdry","format":"ext4","path":"/"}}]}}}}"#,
        lo.dev
    );
    let r = disks(&storage(&cfg), &ctx(root.path(), Mode::DryRun, &NoKeySource)).unwrap();
    let cmds: Vec<&str> = r.operations.iter().filter_map(|o| o.command.as_deref()).collect();
    assert!(cmds[0].starts_with("sgdisk --new=1:0:+"), "{r}");
    assert_eq!(
        cmds[1],
        format!("cryptsetup luksFormat --type luks2 --key-file '<temporary key file>' {dev}"),
        "{r}"
    );
    assert_eq!(
        cmds[2],
        format!("cryptsetup luksOpen {dev} bxdry --key-file '<temporary key file>'")
    );
    assert_eq!(cmds[3], "wipefs -a /dev/mapper/bxdry");
    assert_eq!(cmds[4], "mkfs.ext4 -F /dev/mapper/bxdry");
    assert_eq!(r.luks.len(), 1);
    assert!(r.luks[0].key.is_none() && r.luks[0].uuid.is_none());
    assert!(sfdisk(&lo.dev).is_empty(), "nothing written");
}

#[test]
fn persisted_keys_and_crypttab() {
    let root = tempfile::tempdir().unwrap();
    let vols = vec![
        LuksVolume {
            name: "data".into(),
            uuid: Some(LUKS_UUID.into()),
            key: Some(Secret::new(KEY.to_vec())),
            needs_network: false,
        },
        LuksVolume {
            name: "tang".into(),
            uuid: Some("u-2".into()),
            key: None,
            needs_network: true,
        },
    ];
    let dry = persist_luks(&vols, &ctx(root.path(), Mode::DryRun, &NoKeySource)).unwrap();
    assert_eq!(dry.operations.len(), 3);
    assert!(!root.path().join("etc").exists());

    persist_luks(&vols, &ctx(root.path(), Mode::Apply, &NoKeySource)).unwrap();
    let mode = |p: &str| std::fs::metadata(root.path().join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("etc/luks"), 0o700);
    assert_eq!(mode("etc/luks/data"), 0o600);
    assert_eq!(std::fs::read(root.path().join("etc/luks/data")).unwrap(), KEY);
    assert!(!root.path().join("etc/luks/tang").exists());
    assert_eq!(mode("etc/crypttab"), 0o600);
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/crypttab")).unwrap(),
        format!("data UUID={LUKS_UUID} /etc/luks/data luks\ntang UUID=u-2 none luks,_netdev\n")
    );
}

#[test]
fn raid_on_loop_devices() {
    let _g = lock();
    let (a, b, s) = (Loop::new(64), Loop::new(64), Loop::new(64));
    let name = format!("bx{}", uniq());
    let cfg = format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"raid":[{{"name":"{name}","level":"raid1","devices":["{}","{}","{}"],"spares":1,"options":["--metadata=1.2"]}}]}}}}"#,
        a.dev, b.dev, s.dev
    );
    let root = tempfile::tempdir().unwrap();
    let st = storage(&cfg);
    let dry = disks(&st, &ctx(root.path(), Mode::DryRun, &NoKeySource)).unwrap();
    assert_eq!(
        dry.operations[0].command.as_deref().unwrap(),
        format!(
            "mdadm --create {name} --force --run --homehost any --level raid1 --raid-devices 2 --spare-devices 1 --metadata=1.2 {} {} {}",
            a.dev, b.dev, s.dev
        )
    );
    let res = disks(&st, &ctx(root.path(), Mode::Apply, &NoKeySource));
    if have_md() {
        res.unwrap();
        assert_eq!(blkid(&a.dev).0, "linux_raid_member");
        let _ = std::process::Command::new("mdadm")
            .args(["--stop", &format!("/dev/md/{name}")])
            .status();
    } else {
        let e = res.unwrap_err();
        assert!(
            matches!(&e, DisksError::CreateRaid { path, .. } if path == "$.storage.raid.0"),
            "{e}"
        );
        assert!(e.to_string().contains("mdadm --create"), "{e}");
    }
}
