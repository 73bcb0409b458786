//! `boxcar payload keygen|build|sign|verify|inspect`: update payloads
//! (format in docs/payload.md). Thin: all logic is in boxcar-payload.

use crate::exit;
use boxcar_payload::{keys, PayloadError, Signing, VersionPolicy};
use std::path::PathBuf;

/// Build, sign and check signed update payloads.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Generate an Ed25519 signing key (PKCS#8 PEM, mode 0600) and its public key (SPKI PEM).
    Keygen {
        /// Private key file to create (never overwritten).
        #[arg(long)]
        private: PathBuf,
        /// Public key file: what nodes trust (shipped in /usr).
        #[arg(long)]
        public: PathBuf,
    },
    /// Build a payload from a /usr image and a UKI; the verity tree is computed.
    Build {
        /// OS version the payload installs, e.g. 4800.1.0.
        #[arg(long = "os-version")]
        os_version: String,
        /// The /usr filesystem image (size a multiple of 4096).
        #[arg(long)]
        usr: PathBuf,
        /// The unified kernel image.
        #[arg(long)]
        uki: PathBuf,
        /// Private key to sign with; without it the payload is left unsigned for `sign`.
        #[arg(long)]
        key: Option<PathBuf>,
        /// zstd compression level.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
        level: i32,
        /// Uncompressed MiB per zstd frame: nodes resume an interrupted
        /// download at frame boundaries, so smaller frames re-fetch less.
        #[arg(long = "frame-mib", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
        frame_mib: u64,
        /// Payload file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Sign a built payload in place.
    Sign {
        #[arg(long)]
        key: PathBuf,
        payload: PathBuf,
    },
    /// Verify signature, manifest and every section (streaming); exit 1 if anything is wrong.
    Verify {
        /// Trusted public key (SPKI PEM).
        #[arg(long)]
        public_key: PathBuf,
        /// Refuse payloads not newer than this version (what a node runs).
        #[arg(long)]
        current_version: Option<String>,
        /// Also unpack usr.img, verity.img, uki.efi here and check usr against its tree.
        #[arg(long)]
        extract: Option<PathBuf>,
        payload: PathBuf,
    },
    /// Show the manifest WITHOUT verifying anything (for humans, not for installing).
    Inspect {
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
        payload: PathBuf,
    },
}

fn code_for(e: &PayloadError) -> u8 {
    match e {
        PayloadError::Read { .. }
        | PayloadError::Write { .. }
        | PayloadError::Key { .. }
        | PayloadError::Sink { .. } => exit::IO,
        _ => exit::INVALID,
    }
}

fn open(p: &PathBuf) -> Result<std::io::BufReader<std::fs::File>, PayloadError> {
    std::fs::File::open(p)
        .map(|f| std::io::BufReader::with_capacity(1 << 20, f))
        .map_err(|source| PayloadError::Read {
            path: p.clone(),
            source,
        })
}

fn run_inner(cmd: Cmd) -> Result<(), PayloadError> {
    match cmd {
        Cmd::Keygen { private, public } => {
            let k = keys::generate().map_err(|e| PayloadError::Key {
                path: private.clone(),
                why: e.to_string(),
            })?;
            keys::save(&k, &private, &public)?;
            println!("wrote {} and {}", private.display(), public.display());
        }
        Cmd::Build {
            os_version,
            usr,
            uki,
            key,
            level,
            frame_mib,
            output,
        } => {
            let key = key.as_deref().map(keys::load_private).transpose()?;
            let signing = match &key {
                Some(k) => Signing::With(k),
                None => Signing::Unsigned,
            };
            let input = boxcar_payload::BuildInput {
                version: &os_version,
                usr: &usr,
                uki: &uki,
                level,
                frame_bytes: frame_mib << 20,
            };
            let m = boxcar_payload::build(&input, &output, signing)?;
            println!(
                "built {} version {} usrhash={}{}",
                output.display(),
                m.version,
                m.verity_params.root_hash,
                if key.is_none() { " (UNSIGNED)" } else { "" }
            );
        }
        Cmd::Sign { key, payload } => {
            let m = boxcar_payload::sign(&payload, &keys::load_private(&key)?)?;
            println!("signed {} version {}", payload.display(), m.version);
        }
        Cmd::Verify {
            public_key,
            current_version,
            extract,
            payload,
        } => {
            let key = keys::load_public(&public_key)?;
            let policy = match current_version {
                Some(v) => VersionPolicy::NewerThan(v),
                None => VersionPolicy::Any,
            };
            let m = match extract {
                Some(dir) => boxcar_payload::extract(open(&payload)?, &key, &policy, &dir)?,
                None => boxcar_payload::verify_stream(open(&payload)?, &key, &policy)?,
            };
            println!(
                "OK: {} version {} usrhash={}",
                payload.display(),
                m.version,
                m.verity_params.root_hash
            );
        }
        Cmd::Inspect { json, payload } => {
            let (h, m) = boxcar_payload::read_unverified(open(&payload)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&m).expect("manifest serializes"));
            } else {
                println!("UNVERIFIED payload {}", payload.display());
                println!("version:   {}", m.version);
                println!("signature: {:?}", h.alg);
                println!("usrhash:   {}", m.verity_params.root_hash);
                for (name, s) in m.sections() {
                    println!(
                        "{name:<8} {:>12} bytes ({:>12} compressed) sha256 {}",
                        s.size, s.compressed_size, s.sha256
                    );
                }
            }
        }
    }
    Ok(())
}

pub fn run(a: Args) -> u8 {
    match run_inner(a.command) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            code_for(&e)
        }
    }
}
