//! The build, step by step: binaries → Debian root → customization →
//! initrd → /usr image and verity → UKI → ESP → ROOT/OEM filesystems → GPT
//! disk (raw, qcow2) → signed payload → SBOM → SHA256SUMS and build.json.

use crate::bootstrap::{staging_root, Cache, Reuse};
use crate::cmd::run;
use crate::customize::{customize, root_skeleton, Customization, InstallBinary};
use crate::error::{rd, wr};
use crate::manifest::Manifest;
use crate::report::{BuildReport, Step};
use crate::{disk, esp, initrd, sbom, sums, uki, usrfs, ImageError};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where our binaries come from.
#[derive(Debug, Clone)]
pub enum BinarySource {
    /// `cargo build --release -p …` in this workspace.
    Cargo { workspace: PathBuf },
    /// Already built, all in this directory.
    Dir(PathBuf),
}

/// Whether a qcow2 copy of the raw disk is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qcow2 {
    Write,
    Skip,
}

/// Everything a build needs besides the manifest's content.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub manifest: PathBuf,
    pub output: PathBuf,
    /// Overrides the manifest's `os.patch` (build N+1 from the same manifest).
    pub patch: Option<u32>,
    /// Payload signing key; else the manifest's, else the cached dev key.
    pub key: Option<PathBuf>,
    pub cache: Cache,
    pub reuse: Reuse,
    pub binaries: BinarySource,
    pub qcow2: Qcow2,
    /// More directories copied over the root after the manifest's overlay
    /// (test variants, e.g. a failing health check).
    pub extra_overlays: Vec<PathBuf>,
    /// Overrides SOURCE_DATE_EPOCH (default: the manifest's major date).
    pub source_date_epoch: Option<i64>,
    /// zstd level of the payload sections (3 for development, 19 for releases).
    pub payload_level: i32,
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Loads or creates the signing key; returns (key, public PEM, private path).
fn signing_key(
    opts: &BuildOptions,
    m: &Manifest,
    base: &Path,
) -> Result<(boxcar_payload::keys::PrivateKey, Vec<u8>, PathBuf), ImageError> {
    use boxcar_payload::keys;
    let explicit = opts
        .key
        .clone()
        .or_else(|| m.signing.key.as_ref().map(|k| resolve(base, k)));
    let private = match explicit {
        Some(p) => p,
        None => {
            let p = opts.cache.dir.join("dev-key.pem");
            if !p.exists() {
                std::fs::create_dir_all(&opts.cache.dir).map_err(wr(&opts.cache.dir))?;
                let k = keys::generate().map_err(rd(Path::new("/dev/urandom")))?;
                keys::save(&k, &p, &opts.cache.dir.join("dev-key.pub.pem"))?;
                tracing::warn!(key = %p.display(), "generated a development signing key");
            }
            p
        }
    };
    let key = keys::load_private(&private)?;
    // The public PEM exactly as `keys::save` writes it.
    let t = tempfile::tempdir().map_err(wr(Path::new("/tmp")))?;
    keys::save(&key, &t.path().join("k"), &t.path().join("k.pub"))?;
    let pem = std::fs::read(t.path().join("k.pub")).map_err(rd(t.path()))?;
    Ok((key, pem, private))
}

fn build_binaries(m: &Manifest, src: &BinarySource) -> Result<Vec<InstallBinary>, ImageError> {
    let dir = match src {
        BinarySource::Dir(d) => d.clone(),
        BinarySource::Cargo { workspace } => {
            let mut args = vec!["build".to_string(), "--release".to_string()];
            for b in &m.binaries.install {
                args.push("-p".into());
                args.push(b.package.clone());
            }
            let mut c = std::process::Command::new("cargo");
            c.args(&args).current_dir(workspace);
            tracing::info!(?args, "building our binaries");
            let st = c.status().map_err(|source| ImageError::Spawn {
                program: "cargo".into(),
                source,
            })?;
            if !st.success() {
                return Err(ImageError::Tool {
                    program: "cargo build --release".into(),
                    status: st.to_string(),
                    stderr: "see the compiler output above".into(),
                });
            }
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace.join("target"));
            resolve(workspace, &target).join("release")
        }
    };
    m.binaries
        .install
        .iter()
        .map(|b| {
            let from = dir.join(&b.bin);
            if from.is_file() {
                Ok(InstallBinary {
                    name: b.bin.clone(),
                    from,
                })
            } else {
                Err(ImageError::Read {
                    path: from,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "binary not built"),
                })
            }
        })
        .collect()
}

fn mkfs_ext4(
    dir: Option<&Path>,
    label: &str,
    mib: u64,
    out: &Path,
    uuid: [u8; 16],
    sde: i64,
) -> Result<(), ImageError> {
    let _ = std::fs::remove_file(out);
    let u = boxcar_verity::format_uuid(&uuid);
    let mut args: Vec<String> = vec![
        "-q".into(),
        "-F".into(),
        "-t".into(),
        "ext4".into(),
        "-L".into(),
        label.into(),
        "-U".into(),
        u.clone(),
        "-E".into(),
        format!("hash_seed={u},root_owner=0:0"),
    ];
    if let Some(d) = dir {
        args.push("-d".into());
        args.push(d.display().to_string());
    }
    args.push(out.display().to_string());
    args.push(format!("{mib}M"));
    run("mkfs.ext4", &args, &[("E2FSPROGS_FAKE_TIME", &sde.to_string())])?;
    Ok(())
}

/// Runs a whole build; returns what was produced.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, ImageError> {
    let started = Instant::now();
    let mut steps: Vec<Step> = Vec::new();
    let mut lap = Instant::now();
    let mut step = |name: &str, steps: &mut Vec<Step>| {
        steps.push(Step {
            name: name.into(),
            seconds: lap.elapsed().as_secs_f64(),
        });
        tracing::info!(step = name, secs = lap.elapsed().as_secs_f64(), "step done");
        lap = Instant::now();
    };
    let m = Manifest::load(&opts.manifest)?;
    let base = opts.manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let version = m.version(opts.patch);
    let sde = opts.source_date_epoch.unwrap_or_else(|| m.major_date().unix_seconds());
    let prefix = format!("{}-{version}", m.os.id);
    std::fs::create_dir_all(&opts.output).map_err(wr(&opts.output))?;
    let work = tempfile::Builder::new()
        .prefix(".boxcar-image-work")
        .tempdir_in(&opts.output)
        .map_err(wr(&opts.output))?;
    let w = work.path();
    let out = |name: &str| opts.output.join(name);

    let (key, pubpem, key_path) = signing_key(opts, &m, &base)?;
    let binaries = build_binaries(&m, &opts.binaries)?;
    step("binaries", &mut steps);

    let root = w.join("root");
    staging_root(&m.debian, &opts.cache, sde, opts.reuse, &root)?;
    step("bootstrap", &mut steps);

    let kver = initrd::kernel_version(&root)?;
    let vmlinuz = out(&format!("{prefix}-vmlinuz"));
    let kfile = root.join(format!("boot/vmlinuz-{kver}"));
    std::fs::copy(&kfile, &vmlinuz).map_err(rd(&kfile))?;
    // Debian's kernel hook built a generic initramfs: not ours, not shipped.
    for e in std::fs::read_dir(root.join("boot")).map_err(rd(&root))?.flatten() {
        std::fs::remove_file(e.path()).map_err(wr(&e.path()))?;
    }
    let mut overlays = vec![resolve(&base, &m.rootfs_overlay)];
    overlays.extend(opts.extra_overlays.iter().cloned());
    let files: Vec<(PathBuf, PathBuf)> = m
        .files
        .iter()
        .map(|f| (resolve(&base, &f.from), f.to.clone()))
        .collect();
    let osr_text = crate::customize::os_release(&m.os, version);
    customize(
        &root,
        &Customization {
            os: &m.os,
            version,
            binaries: &binaries,
            overlays: &overlays,
            files: &files,
            update_key_pem: &pubpem,
        },
    )?;
    step("customize", &mut steps);

    let initrd_dir = w.join("initrd");
    std::fs::create_dir(&initrd_dir).map_err(wr(&initrd_dir))?;
    initrd::assemble(
        &root,
        &initrd_dir,
        &m.initrd,
        &resolve(&base, &m.initrd.overlay),
        &osr_text,
    )?;
    let initrd_img = out(&format!("{prefix}-initrd.img"));
    initrd::archive(&initrd_dir, &initrd_img, m.initrd.compression, sde as u32)?;
    step("initrd", &mut steps);

    let usr_img = out(&format!("{prefix}-usr.{}", m.usr.filesystem.fstype()));
    let verity_img = out(&format!("{prefix}-usr.verity"));
    usrfs::make_usr_image(m.usr.filesystem, &root.join("usr"), &usr_img, sde, &prefix)?;
    let v = usrfs::make_verity(&usr_img, &verity_img)?;
    let (usr_guid, verity_guid) = usrfs::partuuids_for(&v.root);
    step("usr", &mut steps);

    let cmdline = uki::cmdline(&v.root.to_string(), m.usr.filesystem.fstype(), &m.kernel.cmdline);
    let cmdline_txt = out(&format!("{prefix}-cmdline.txt"));
    std::fs::write(&cmdline_txt, &cmdline).map_err(wr(&cmdline_txt))?;
    let osr_file = w.join("os-release");
    std::fs::write(&osr_file, &osr_text).map_err(wr(&osr_file))?;
    let uki_img = out(&format!("{prefix}.efi"));
    uki::build(
        &uki::UkiInput {
            stub: &root.join(uki::STUB),
            kernel: &vmlinuz,
            initrd: &initrd_img,
            cmdline: &cmdline_txt,
            os_release: &osr_file,
        },
        &uki_img,
    )?;
    step("uki", &mut steps);

    let esp_img = w.join("esp.img");
    let uki_name = format!("{}{version}.efi", boxcar_slots::bootent::PREFIX);
    esp::build(
        &esp::EspInput {
            systemd_boot: &root.join("usr/lib/systemd/boot/efi/systemd-bootx64.efi"),
            uki: &uki_img,
            uki_name: &uki_name,
            size_mib: m.disk.esp_mib,
            volume_id: u32::from_be_bytes(v.root.0[..4].try_into().expect("4 bytes")),
            mtime: sde,
        },
        &esp_img,
        w,
    )?;
    let skel = w.join("root-skel");
    root_skeleton(&skel)?;
    let root_img = w.join("root.img");
    mkfs_ext4(
        Some(&skel),
        "ROOT",
        m.disk.root_fs_mib,
        &root_img,
        usrfs::derived_uuid("boxcar ROOT", &v.root.0),
        sde,
    )?;
    let oem_img = w.join("oem.img");
    mkfs_ext4(
        None,
        "OEM",
        m.disk.oem_mib,
        &oem_img,
        usrfs::derived_uuid("boxcar OEM", &v.root.0),
        sde,
    )?;
    let gpt = disk::table(&m.disk, usr_guid, verity_guid, &v.root.0)?;
    let raw = out(&format!("{prefix}.raw"));
    disk::assemble(
        &gpt,
        &disk::Contents {
            esp: &esp_img,
            usr: &usr_img,
            verity: &verity_img,
            oem: &oem_img,
            root: &root_img,
        },
        &raw,
    )?;
    step("disk", &mut steps);
    let qcow2 = out(&format!("{prefix}.qcow2"));
    if opts.qcow2 == Qcow2::Write {
        let _ = std::fs::remove_file(&qcow2);
        run(
            "qemu-img",
            [
                "convert",
                "-f",
                "raw",
                "-O",
                "qcow2",
                &raw.display().to_string(),
                &qcow2.display().to_string(),
            ],
            &[],
        )?;
        step("qcow2", &mut steps);
    }

    let payload = out(&format!("{prefix}.bxp"));
    let version_s = version.to_string();
    boxcar_payload::build_with_verity(
        &boxcar_payload::BuildInput {
            version: &version_s,
            usr: &usr_img,
            uki: &uki_img,
            level: opts.payload_level,
            frame_bytes: boxcar_payload::DEFAULT_FRAME_BYTES,
        },
        boxcar_payload::VerityIdentity::Fixed {
            salt: v.salt.clone(),
            uuid: v.uuid,
        },
        &payload,
        boxcar_payload::Signing::With(&key),
    )?;
    step("payload", &mut steps);

    let pubkey_out = out("update-key.pub.pem");
    std::fs::write(&pubkey_out, &pubpem).map_err(wr(&pubkey_out))?;
    let status = root.join("var/lib/dpkg/status");
    let packages = sbom::parse_dpkg_status(&std::fs::read_to_string(&status).map_err(rd(&status))?);
    let doc = sbom::Sbom {
        os: m.os.id.clone(),
        version: version_s.clone(),
        debian_suite: m.debian.suite.clone(),
        kernel: kver.clone(),
        packages,
        binaries: binaries
            .iter()
            .map(|b| {
                Ok(sbom::Binary {
                    path: format!("/usr/bin/{}", b.name),
                    sha256: sums::file_sha256(&b.from)?,
                })
            })
            .collect::<Result<_, ImageError>>()?,
    };
    let sbom_file = out(&format!("{prefix}-sbom.json"));
    std::fs::write(&sbom_file, serde_json::to_vec_pretty(&doc).expect("serializes")).map_err(wr(&sbom_file))?;

    let report = BuildReport {
        os: m.os.id.clone(),
        version: version_s,
        channel: m.os.channel.name().into(),
        kernel: kver,
        source_date_epoch: sde,
        usrhash: v.root.to_string(),
        usr_sha256: hex::encode(v.usr_sha256),
        usr_partuuid: usr_guid.to_string(),
        usr_verity_partuuid: verity_guid.to_string(),
        cmdline,
        uki_entry: uki_name,
        signing_key: key_path.display().to_string(),
        files: Vec::new(),
        steps,
        seconds: started.elapsed().as_secs_f64(),
    };
    let report = crate::report::finish(report, &opts.output, &prefix, opts.qcow2 == Qcow2::Write)?;
    Ok(report)
}
