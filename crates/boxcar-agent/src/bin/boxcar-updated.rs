//! `boxcar-updated`: the node's update daemon (thin: everything is in `boxcar_agent::daemon`).

use anyhow::Context;
use boxcar_agent::daemon::{self, config, dbus::Bus, identity::IdentityFiles, schedule::Timing, Daemon, Options};
use boxcar_agent::{SlotStager, StageConfig, Stager};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Boxcar's update agent: checks an Omaha server (Flatcar's update_engine protocol), stages
/// updates into the passive slot, signals "reboot needed", reports the outcome after the
/// reboot, and serves a local API (`boxcar update …`) and update_engine's D-Bus interface.
#[derive(Parser)]
#[command(name = "boxcar-updated", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon (as boxcar-updated.service does).
    Run(RunArgs),
    /// Mark the running version good: bless its boot entry, make its slot the successful,
    /// highest-priority one. Run by boxcar-mark-good.service once boot-complete.target is reached.
    MarkGood(StagerArgs),
    /// One update check in the foreground, then exit: 0 no update or staged, 1 failed.
    CheckOnce(RunArgs),
}

#[derive(clap::Args, Clone)]
struct StagerArgs {
    /// The disk holding the USR-A/USR-B slots (whole-disk block device or image file), or
    /// `auto`: the disk whose partition carries the booted `usrhash=`'s PARTUUID.
    #[arg(long, value_name = "PATH", env = "BOXCAR_UPDATED_DISK", default_value = "auto")]
    disk: PathBuf,
    /// Root of the mounted EFI system partition (boot entries in EFI/Linux/).
    #[arg(long, value_name = "DIR", env = "BOXCAR_UPDATED_ESP", default_value = "/boot")]
    esp: PathBuf,
    /// Trusted public key payload signatures are checked with (SPKI PEM, in /usr).
    #[arg(long, value_name = "PEM", default_value = "/usr/share/boxcar/update-key.pub.pem")]
    key: PathBuf,
    /// os-release of the running /usr (VERSION_ID is the running version).
    #[arg(long, value_name = "PATH", default_value = "/usr/lib/os-release")]
    os_release: PathBuf,
    /// Kernel command line (usrhash= tells which slot booted).
    #[arg(long, value_name = "PATH", default_value = "/proc/cmdline")]
    cmdline: PathBuf,
    /// State directory: download checkpoints, the pending update, the staged marker.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/boxcar")]
    state_dir: PathBuf,
    /// Boot tries of a staged version's boot entry (`boxcar-<v>+N.efi`): failed boots
    /// systemd-boot allows before it falls back to the previous version (1–15).
    #[arg(long, value_name = "N", env = "BOXCAR_UPDATED_BOOT_TRIES", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=15))]
    boot_tries: u32,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    #[command(flatten)]
    stager: StagerArgs,
    /// update.conf layers, lowest precedence first (default: /usr/share/boxcar/update.conf
    /// then /etc/boxcar/update.conf; missing files are skipped).
    #[arg(long = "config", value_name = "PATH")]
    configs: Vec<PathBuf>,
    /// Machine id file.
    #[arg(long, value_name = "PATH", default_value = "/etc/machine-id")]
    machine_id: PathBuf,
    /// Boot id file.
    #[arg(long, value_name = "PATH", default_value = "/proc/sys/kernel/random/boot_id")]
    boot_id: PathBuf,
    /// oem-release files, first existing wins (repeatable).
    #[arg(long = "oem-release", value_name = "PATH")]
    oem_release: Vec<PathBuf>,
    /// File touched when an update waits for its reboot (kured's sentinel).
    #[arg(long, value_name = "PATH", default_value = "/run/reboot-required")]
    reboot_required: PathBuf,
    /// Local API socket.
    #[arg(long, value_name = "PATH", default_value = daemon::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// D-Bus: system, session, none, or an address (unix:path=…).
    #[arg(long, value_name = "BUS", default_value = "system")]
    dbus: Bus,
    /// Seconds before the first check (update_engine: 420), fuzzed.
    #[arg(long, value_name = "SECS", env = "BOXCAR_UPDATED_FIRST_CHECK", default_value_t = 420)]
    first_check: u64,
    /// Seconds between checks (update_engine: 2700), fuzzed by ±fuzz/2.
    #[arg(long, value_name = "SECS", env = "BOXCAR_UPDATED_INTERVAL", default_value_t = 2700)]
    interval: u64,
    /// Width of the random window around each check, seconds.
    #[arg(long, value_name = "SECS", env = "BOXCAR_UPDATED_FUZZ", default_value_t = 600)]
    fuzz: u64,
    /// Longest delay after failed checks, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 14400)]
    max_backoff: u64,
    /// Timeout of each Omaha request, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    http_timeout: u64,
    /// Largest payload accepted, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 30)]
    max_payload: u64,
}

fn options(a: &RunArgs) -> Options {
    Options {
        identity: IdentityFiles {
            os_release: a.stager.os_release.clone(),
            machine_id: a.machine_id.clone(),
            boot_id: a.boot_id.clone(),
            oem_release: if a.oem_release.is_empty() {
                IdentityFiles::default().oem_release
            } else {
                a.oem_release.clone()
            },
        },
        reboot_required: a.reboot_required.clone(),
        state_dir: a.stager.state_dir.clone(),
        timing: Timing {
            initial: Duration::from_secs(a.first_check),
            interval: Duration::from_secs(a.interval.max(1)),
            fuzz: Duration::from_secs(a.fuzz),
            max_backoff: Duration::from_secs(a.max_backoff),
        },
        http_timeout: Duration::from_secs(a.http_timeout.max(1)),
        max_payload: a.max_payload,
        ..Options::default()
    }
}

fn load_config(a: &RunArgs) -> anyhow::Result<config::AgentConfig> {
    let paths: Vec<PathBuf> = if a.configs.is_empty() {
        boxcar_updateconf::DEFAULT_PATHS.iter().map(PathBuf::from).collect()
    } else {
        a.configs.clone()
    };
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let loaded = config::load(&refs);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    for e in &loaded.errors {
        tracing::error!("{e}");
    }
    Ok(loaded.config)
}

/// The disk named by `--disk`, or for `auto` the one holding the booted /usr.
fn disk(a: &StagerArgs) -> anyhow::Result<PathBuf> {
    if a.disk.as_os_str() != "auto" {
        return Ok(a.disk.clone());
    }
    let cmdline = std::fs::read_to_string(&a.cmdline).with_context(|| format!("reading {}", a.cmdline.display()))?;
    let root = boxcar_agent::stage::system::usrhash(&cmdline)
        .with_context(|| format!("--disk auto: no usrhash= in {}", a.cmdline.display()))?;
    let d = boxcar_agent::stage::system::disk_of_booted_usr(&root)
        .context("--disk auto: finding the disk of the booted /usr")?;
    tracing::info!(disk = %d.display(), "disk holding the booted /usr");
    Ok(d)
}

fn stager(a: &StagerArgs) -> anyhow::Result<Arc<dyn Stager>> {
    let mut c = StageConfig::system(disk(a)?, a.esp.clone());
    c.tuning.boot_tries = a.boot_tries;
    c.public_key = a.key.clone();
    c.os_release = a.os_release.clone();
    c.cmdline = a.cmdline.clone();
    c.state_dir = a.state_dir.clone();
    Ok(Arc::new(SlotStager::new(c)))
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        // Colours only on a terminal: under systemd stderr goes to the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("boxcar-updated: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Cmd::Run(a) => {
            // Registered before any thread starts, so no thread dies of the default action.
            let mut signals =
                signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
                    .context("installing signal handlers")?;
            let cfg = load_config(&a)?;
            let d = Daemon::start(cfg, options(&a), stager(&a.stager)?, Some(a.socket.clone()), &a.dbus)
                .context("starting boxcar-updated")?;
            tracing::info!(socket = %a.socket.display(), "boxcar-updated running");
            wait_for_signal(&mut signals);
            tracing::info!("stopping");
            d.stop();
            Ok(0)
        }
        Cmd::MarkGood(a) => {
            stager(&a)?
                .mark_booted_good()
                .map_err(|e| anyhow::anyhow!("marking the running version good: {e}"))?;
            println!("running version marked good");
            Ok(0)
        }
        Cmd::CheckOnce(a) => {
            let cfg = load_config(&a)?;
            let mut o = options(&a);
            o.timing.initial = Duration::from_secs(u64::MAX / 4);
            let agent = daemon::Agent::start(cfg, o, stager(&a.stager)?).context("starting the agent")?;
            let rx = agent.subscribe();
            agent.request_check().map_err(|r| anyhow::anyhow!("{r}"))?;
            let mut failed = false;
            loop {
                let s = match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(s) => s,
                    Err(_) => agent.status(),
                };
                failed |= s.current_operation == "UPDATE_STATUS_REPORTING_ERROR_EVENT";
                if s.is_settled() {
                    print!("{}", s.to_update_engine_lines());
                    if let Some(e) = &s.last_error {
                        eprintln!("error {} ({}): {}", e.code, e.name, e.message);
                        failed = true;
                    }
                    break;
                }
            }
            agent.shutdown();
            Ok(u8::from(failed))
        }
    }
}

/// Blocks until SIGTERM or SIGINT (systemd stop, Ctrl-C).
fn wait_for_signal(signals: &mut signal_hook::iterator::Signals) {
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "signal received");
    }
}
