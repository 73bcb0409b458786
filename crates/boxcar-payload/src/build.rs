//! Building and signing payloads (fleet side).

use crate::hashio::{HashingReader, HashingWriter};
use crate::header::{signed_message, Header, SigAlg, HEADER_LEN, MAX_MANIFEST};
use crate::manifest::{valid_version, Manifest, Section, VerityParams, FORMAT};
use crate::PayloadError;
use boxcar_verity::{DataBlocks, Parallelism, Params, Salt};
use ed25519_dalek::{Signer, SigningKey};
use sha2::Digest;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What goes into a payload.
#[derive(Debug, Clone)]
pub struct BuildInput<'a> {
    pub version: &'a str,
    /// The /usr filesystem image; its size must be a multiple of 4096.
    pub usr: &'a Path,
    pub uki: &'a Path,
    /// zstd level (1–22); 3 is zstd's default, 19 for releases.
    pub level: i32,
    /// Uncompressed bytes per zstd frame ([`DEFAULT_FRAME_BYTES`] normally).
    /// Each section is a sequence of independent frames, so a node can
    /// resume decompression at any frame boundary after an interruption.
    pub frame_bytes: u64,
}

/// 16 MiB of input per frame: the ratio loss against one frame is small
/// (well under 1 % at level 3 on /usr images) and a resumed download
/// re-fetches at most one frame.
pub const DEFAULT_FRAME_BYTES: u64 = 16 << 20;

/// Whether `build` signs the result right away.
pub enum Signing<'a> {
    /// Leave the signature empty for a later `sign` (e.g. on a signing host).
    Unsigned,
    /// Sign with this key.
    With(&'a SigningKey),
}

fn rd(path: &Path) -> impl Fn(std::io::Error) -> PayloadError + '_ {
    move |source| PayloadError::Read {
        path: path.into(),
        source,
    }
}
fn wr(path: &Path) -> impl Fn(std::io::Error) -> PayloadError + '_ {
    move |source| PayloadError::Write {
        path: path.into(),
        source,
    }
}

/// Compresses `src` into `dst` as independent zstd frames of at most
/// `frame_bytes` input each, returning the section's sizes and digests.
fn compress(src: &Path, dst: &Path, level: i32, frame_bytes: u64) -> Result<Section, PayloadError> {
    let file = File::open(src).map_err(rd(src))?;
    let total = file.metadata().map_err(rd(src))?.len();
    let mut input = HashingReader::new(BufReader::with_capacity(1 << 20, file));
    let mut out = HashingWriter::new(BufWriter::new(File::create(dst).map_err(wr(dst))?));
    let frame_bytes = frame_bytes.max(1);
    // An empty input still gets one (empty) frame.
    let frames = total.div_ceil(frame_bytes).max(1);
    for _ in 0..frames {
        let mut enc = zstd::stream::Encoder::new(&mut out, level).map_err(wr(dst))?;
        std::io::copy(&mut (&mut input).take(frame_bytes), &mut enc).map_err(rd(src))?;
        enc.finish().map_err(wr(dst))?;
    }
    if input.count != total {
        return Err(rd(src)(std::io::Error::other(format!(
            "file changed size while compressing ({} of {total} bytes)",
            input.count
        ))));
    }
    out.flush().map_err(wr(dst))?;
    Ok(Section {
        size: input.count,
        sha256: hex::encode(input.hasher.finalize()),
        compressed_size: out.count,
        compressed_sha256: hex::encode(out.hasher.finalize()),
    })
}

fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// Builds a payload at `out`: formats the verity tree of `usr` (random salt
/// and UUID), compresses the three sections, writes header, manifest and
/// sections, optionally signed. Written to a temporary file and renamed.
pub fn build(input: &BuildInput, out: &Path, signing: Signing) -> Result<Manifest, PayloadError> {
    build_with_verity(input, VerityIdentity::Random, out, signing)
}

/// Where the verity salt and UUID of a payload come from.
#[derive(Debug, Clone)]
pub enum VerityIdentity {
    /// Fresh random salt and UUID (a payload built on its own).
    Random,
    /// Given ones: the image builder's, so the payload's root hash equals
    /// the `usrhash=` already baked into the UKI it carries.
    Fixed { salt: Salt, uuid: [u8; 16] },
}

/// [`build`] with the verity salt and UUID chosen by the caller.
pub fn build_with_verity(
    input: &BuildInput,
    identity: VerityIdentity,
    out: &Path,
    signing: Signing,
) -> Result<Manifest, PayloadError> {
    if !valid_version(input.version) {
        return Err(PayloadError::BadManifest(format!(
            "version {:?} is not [A-Za-z0-9._~^]+",
            input.version
        )));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".boxcar-payload")
        .tempdir_in(parent)
        .map_err(wr(parent))?;
    let verity_img = tmp.path().join("verity.img");
    let (salt, uuid) = match identity {
        VerityIdentity::Random => (
            Salt::new(random_bytes::<32>().map_err(rd(Path::new("/dev/urandom")))?.to_vec())?,
            random_bytes::<16>().map_err(rd(Path::new("/dev/urandom")))?,
        ),
        VerityIdentity::Fixed { salt, uuid } => (salt, uuid),
    };
    let params = Params {
        salt: salt.clone(),
        uuid,
        data_blocks: DataBlocks::WholeFile,
    };
    let formatted = boxcar_verity::format_file(input.usr, &verity_img, &params, Parallelism::Auto)?;
    let z = |n: &str| tmp.path().join(format!("{n}.zst"));
    let manifest = Manifest {
        format: FORMAT,
        version: input.version.to_string(),
        usr: compress(input.usr, &z("usr"), input.level, input.frame_bytes)?,
        verity: compress(&verity_img, &z("verity"), input.level, input.frame_bytes)?,
        verity_params: VerityParams {
            root_hash: formatted.root.to_string(),
            salt: salt.to_hex(),
            uuid: boxcar_verity::format_uuid(&uuid),
            data_blocks: formatted.geometry.data_blocks,
        },
        uki: compress(input.uki, &z("uki"), input.level, input.frame_bytes)?,
    };
    manifest.validate()?;
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    let (alg, signature) = match signing {
        Signing::Unsigned => (SigAlg::None, [0u8; 64]),
        Signing::With(key) => (
            SigAlg::Ed25519,
            key.sign(&signed_message(FORMAT, &manifest_bytes)).to_bytes(),
        ),
    };
    let header = Header {
        format: FORMAT,
        alg,
        signature,
        manifest_len: manifest_bytes.len() as u32,
    };
    let staging = tmp.path().join("payload");
    {
        let mut w = BufWriter::new(File::create(&staging).map_err(wr(&staging))?);
        w.write_all(&header.encode()).map_err(wr(&staging))?;
        w.write_all(&manifest_bytes).map_err(wr(&staging))?;
        for name in crate::manifest::SECTIONS {
            let p = z(name);
            std::io::copy(&mut File::open(&p).map_err(rd(&p))?, &mut w).map_err(wr(&staging))?;
        }
        w.into_inner()
            .map_err(|e| wr(&staging)(e.into_error()))?
            .sync_all()
            .map_err(wr(&staging))?;
    }
    std::fs::rename(&staging, out).map_err(wr(out))?;
    tracing::info!(version = input.version, out = %out.display(), root = %formatted.root, "built payload");
    Ok(manifest)
}

/// Signs a built payload in place (rewrites its fixed header only).
pub fn sign(path: &Path, key: &SigningKey) -> Result<Manifest, PayloadError> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(rd(path))?;
    let mut hb = [0u8; HEADER_LEN];
    f.read_exact(&mut hb).map_err(|e| truncated_or(e, path))?;
    let mut header = Header::decode(&hb)?;
    debug_assert!(header.manifest_len <= MAX_MANIFEST);
    let mut manifest_bytes = vec![0u8; header.manifest_len as usize];
    f.read_exact(&mut manifest_bytes).map_err(|e| truncated_or(e, path))?;
    let manifest = Manifest::parse(&manifest_bytes)?;
    header.alg = SigAlg::Ed25519;
    header.signature = key.sign(&signed_message(header.format, &manifest_bytes)).to_bytes();
    f.seek(SeekFrom::Start(0)).map_err(wr(path))?;
    f.write_all_at(&header.encode(), 0).map_err(wr(path))?;
    f.sync_all().map_err(wr(path))?;
    Ok(manifest)
}

fn truncated_or(e: std::io::Error, path: &Path) -> PayloadError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        PayloadError::Truncated("header or manifest cut short".into())
    } else {
        rd(path)(e)
    }
}
