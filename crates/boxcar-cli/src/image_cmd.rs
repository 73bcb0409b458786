//! `boxcar image build`: a bootable disk image, UKI, /usr image and signed
//! update payload from a manifest (docs/image.md). Thin: all logic is in
//! boxcar-image.

use crate::exit;
use boxcar_image::bootstrap::{Cache, Reuse};
use boxcar_image::{BinarySource, BuildOptions, ImageError, Qcow2};
use std::path::PathBuf;

/// Build Boxcar images.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Build the disk image (raw + qcow2), UKI, /usr image + verity, initrd,
    /// signed payload, SBOM and SHA256SUMS for one version.
    ///
    /// Runs as root without mounting anything (mmdebstrap --mode=unshare).
    /// The Debian root is cached per package list; .debs are cached too.
    ///
    /// Example:
    ///   boxcar image build -m images/boxcar.toml -o out/ --patch 1
    #[command(verbatim_doc_comment)]
    Build {
        /// Image manifest (TOML).
        #[arg(short, long, default_value = "images/boxcar.toml")]
        manifest: PathBuf,
        /// Output directory (created; files are named <id>-<version>.*).
        #[arg(short, long)]
        output: PathBuf,
        /// Patch number (overrides the manifest's os.patch): N+1 from the same manifest.
        #[arg(long)]
        patch: Option<u32>,
        /// Payload signing key (PKCS#8 PEM). Default: the manifest's, else a
        /// development key generated once in the cache directory.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Cache for .debs, bootstrapped roots and the development key.
        #[arg(long, env = "BOXCAR_IMAGE_CACHE", default_value = "/var/cache/boxcar-image")]
        cache_dir: PathBuf,
        /// Bootstrap again even if a root for the same package list is cached.
        #[arg(long)]
        fresh: bool,
        /// Take our binaries from this directory instead of `cargo build --release`.
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Cargo workspace to build our binaries in.
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        /// Do not write the qcow2 copy.
        #[arg(long)]
        no_qcow2: bool,
        /// Extra directory copied over the root (repeatable), e.g. a test unit.
        #[arg(long = "overlay")]
        overlays: Vec<PathBuf>,
        /// SOURCE_DATE_EPOCH for every timestamp (default: the manifest's major date).
        #[arg(long, env = "SOURCE_DATE_EPOCH")]
        source_date_epoch: Option<i64>,
        /// zstd level of the update payload (19 for releases; slow).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
        payload_level: i32,
        /// Print the build report (build.json) on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn code_for(e: &ImageError) -> u8 {
    match e {
        ImageError::Manifest { .. } => exit::INVALID,
        _ => exit::IO,
    }
}

/// Runs `boxcar image …`; exit 0 ok, 1 bad manifest, 3 a step failed.
pub fn run(a: Args) -> u8 {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .try_init();
    match a.command {
        Cmd::Build {
            manifest,
            output,
            patch,
            key,
            cache_dir,
            fresh,
            bin_dir,
            workspace,
            no_qcow2,
            overlays,
            source_date_epoch,
            payload_level,
            json,
        } => {
            let opts = BuildOptions {
                manifest,
                output,
                patch,
                key,
                cache: Cache { dir: cache_dir },
                reuse: if fresh { Reuse::Fresh } else { Reuse::Cached },
                binaries: match bin_dir {
                    Some(d) => BinarySource::Dir(d),
                    None => BinarySource::Cargo { workspace },
                },
                qcow2: if no_qcow2 { Qcow2::Skip } else { Qcow2::Write },
                extra_overlays: overlays,
                source_date_epoch,
                payload_level,
            };
            match boxcar_image::build(&opts) {
                Ok(r) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&r).expect("serializes"));
                    } else {
                        println!("built {} {} in {:.0} s", r.os, r.version, r.seconds);
                        println!("usrhash {}", r.usrhash);
                        for f in &r.files {
                            println!("{:8} {:>12}  {}", f.kind, f.size, f.name);
                        }
                    }
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    code_for(&e)
                }
            }
        }
    }
}
