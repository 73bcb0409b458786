//! `boxcar-provision`: run Ignition-compatible provisioning stages against
//! a target root. Thin wrapper over the `boxcar_provision` library.

use anyhow::Context;
use boxcar_provision::fetch::HttpOptions;
use boxcar_provision::provider::{
    CmdlineProvider, ConfigProvider, FileProvider, MetadataFlavor, MetadataProvider, NotAvailable, OemProvider,
    QemuFwCfgProvider,
};
use boxcar_provision::stages::block::BlockStorage;
use boxcar_provision::stages::kargs::KargsCommand;
use boxcar_provision::stages::users::{KeysFile, ShadowTools};
use boxcar_provision::{Engine, Mode, Stage};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// First-boot provisioning compatible with Ignition 2.14.
///
/// Runs one stage, or all in order (fetch-offline, fetch, kargs, disks,
/// mount, files, umount), against a target root. A failure prints the
/// stage, the config's JSON path and the cause, and exits non-zero.
/// Per-stage status and timings go to /etc/.boxcar-provision-result.json
/// in the target.
///
/// Examples:
///   boxcar-provision --root /sysroot --stage all --provider cmdline
///   boxcar-provision --root /tmp/r --config my.ign --dry-run
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    /// Target root the config is applied to.
    #[arg(long, default_value = "/sysroot")]
    root: PathBuf,

    /// Stage to run.
    #[arg(long, value_enum, default_value = "all")]
    stage: StageArg,

    /// Read the user config from this file (implies --provider file).
    #[arg(long)]
    config: Option<PathBuf>,

    /// Where the user config comes from. `auto` tries the kernel command
    /// line, then QEMU fw_cfg, then the OEM partition.
    #[arg(long, value_enum, default_value = "auto")]
    provider: ProviderArg,

    /// Kernel command line to read `ignition.config.url=`/`boxcar.config.url=` from.
    #[arg(long, default_value = "/proc/cmdline")]
    cmdline: PathBuf,

    /// QEMU fw_cfg sysfs directory.
    #[arg(long, default_value = "/sys/firmware/qemu_fw_cfg")]
    fw_cfg_dir: PathBuf,

    /// Config file on the OEM partition.
    #[arg(long, default_value = "/oem/config.ign")]
    oem_config: PathBuf,

    /// Metadata service base URL (EC2/OpenStack-style user data).
    #[arg(long, default_value = "http://169.254.169.254")]
    metadata_url: String,

    /// Base configs merged under the user config (`*.ign`, name order).
    #[arg(long, default_value = "/usr/lib/boxcar/base.d")]
    base_dir: PathBuf,

    /// Config cache and state between stage invocations.
    #[arg(long, default_value = "/run/boxcar-provision")]
    run_dir: PathBuf,

    /// Program applying kernel arguments (Ignition's
    /// `ignition-kargs-helper` interface); without it, configs with
    /// kernelArguments fail.
    #[arg(long)]
    kargs_helper: Option<PathBuf>,

    /// Directory with useradd/usermod/groupadd/userdel/groupdel.
    #[arg(long, default_value = "/usr/sbin")]
    shadow_dir: PathBuf,

    /// Write SSH keys to ~/.ssh/authorized_keys instead of the
    /// authorized_keys.d/ignition fragment.
    #[arg(long)]
    legacy_authorized_keys: bool,

    /// Attempts per HTTP fetch before giving up.
    #[arg(long, default_value_t = 10)]
    http_attempts: u32,

    /// Seconds to wait for each block device the config names (disks,
    /// partitions, RAID members, LUKS and filesystem devices) to appear.
    #[arg(long, default_value_t = 90, value_name = "SECONDS")]
    device_timeout: u64,

    /// Print what each stage would do; change nothing.
    #[arg(long)]
    dry_run: bool,

    /// Log verbosity (tracing filter, e.g. `info`, `debug`).
    #[arg(long, default_value = "info")]
    log: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StageArg {
    FetchOffline,
    Fetch,
    Kargs,
    Disks,
    Mount,
    Files,
    Umount,
    All,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProviderArg {
    Auto,
    File,
    Cmdline,
    Qemu,
    Oem,
    Ec2,
    Openstack,
    /// No user config: base configs only.
    None,
    /// Platforms this build cannot read (e.g. aws-s3, gcp): fails clearly.
    Unsupported,
}

fn providers(cli: &Cli) -> anyhow::Result<Vec<Box<dyn ConfigProvider>>> {
    let cmdline = || {
        Box::new(CmdlineProvider {
            cmdline: cli.cmdline.clone(),
        }) as Box<dyn ConfigProvider>
    };
    let qemu = || {
        Box::new(QemuFwCfgProvider {
            base: cli.fw_cfg_dir.clone(),
        }) as Box<dyn ConfigProvider>
    };
    let oem = || {
        Box::new(OemProvider {
            path: cli.oem_config.clone(),
        }) as Box<dyn ConfigProvider>
    };
    let meta = |flavor| {
        Box::new(MetadataProvider {
            base_url: cli.metadata_url.clone(),
            flavor,
        }) as Box<dyn ConfigProvider>
    };
    if let Some(p) = &cli.config {
        return Ok(vec![Box::new(FileProvider { path: p.clone() })]);
    }
    Ok(match cli.provider {
        ProviderArg::Auto => {
            let mut v = vec![cmdline()];
            if cli.fw_cfg_dir.is_dir() {
                v.push(qemu());
            }
            v.push(oem());
            v
        }
        ProviderArg::File => anyhow::bail!("--provider file needs --config PATH"),
        ProviderArg::Cmdline => vec![cmdline()],
        ProviderArg::Qemu => vec![qemu()],
        ProviderArg::Oem => vec![oem()],
        ProviderArg::Ec2 => vec![meta(MetadataFlavor::Ec2)],
        ProviderArg::Openstack => vec![meta(MetadataFlavor::OpenStack)],
        ProviderArg::None => vec![],
        ProviderArg::Unsupported => vec![Box::new(NotAvailable {
            platform: "this platform".into(),
        })],
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The HTTP client's own debug output prints full URLs and requests
    // (tokens, headers): it is never shown, whatever the level.
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| "info".into())
        .add_directive("ureq=off".parse().expect("static directive"))
        .add_directive("rustls=warn".parse().expect("static directive"));
    tracing_subscriber::fmt()
        // Colours only on a terminal: under systemd stderr goes to the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("boxcar-provision: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let mut engine = Engine::new(&cli.root, &cli.run_dir);
    engine.providers = providers(cli).context("choosing the config provider")?;
    engine.base_dir = Some(cli.base_dir.clone());
    engine.storage = Box::new(BlockStorage {
        device_timeout: Duration::from_secs(cli.device_timeout),
    });
    if let Some(h) = &cli.kargs_helper {
        engine.kargs = Box::new(KargsCommand { program: h.clone() });
    }
    engine.shadow = ShadowTools {
        dir: cli.shadow_dir.clone(),
    };
    engine.keys_file = if cli.legacy_authorized_keys {
        KeysFile::AuthorizedKeys
    } else {
        KeysFile::Fragment
    };
    engine.http = HttpOptions {
        max_attempts: cli.http_attempts.max(1),
        ..HttpOptions::default()
    };
    engine.http.initial_backoff = Duration::from_millis(200);
    engine.mode = if cli.dry_run { Mode::DryRun } else { Mode::Apply };

    let stages: Vec<Stage> = match cli.stage {
        StageArg::FetchOffline => vec![Stage::FetchOffline],
        StageArg::Fetch => vec![Stage::Fetch],
        StageArg::Kargs => vec![Stage::Kargs],
        StageArg::Disks => vec![Stage::Disks],
        StageArg::Mount => vec![Stage::Mount],
        StageArg::Files => vec![Stage::Files],
        StageArg::Umount => vec![Stage::Umount],
        StageArg::All => Stage::ALL.to_vec(),
    };
    let (outcome, failure) = match engine.run(&stages) {
        Ok(o) => (o, None),
        Err((o, f)) => (o, Some(f)),
    };
    if cli.dry_run {
        println!("dry run: nothing was changed under {}", cli.root.display());
        for (stage, line) in &outcome.plan {
            println!("[{stage}] would {line}");
        }
    }
    for r in &outcome.records {
        eprintln!(
            "boxcar-provision: stage {:<13} {:?} in {} ms",
            r.stage, r.status, r.duration_ms
        );
    }
    match failure {
        None => Ok(ExitCode::SUCCESS),
        Some(f) => {
            eprintln!("\nboxcar-provision: {f}");
            Ok(ExitCode::from(1))
        }
    }
}
