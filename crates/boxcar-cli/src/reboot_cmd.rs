//! `boxcar reboot …`: the node's reboot coordination as the operator sees it (boxcar-reboot).
//!
//! `status` shows the strategy, the windows (and whether one is open now) and the lock holders;
//! `unlock ID` frees the slot of a holder that died or was reinstalled, like
//! `locksmithctl unlock`; `run` is the node daemon (report steady state, wait for the staged
//! update's signal, coordinate and reboot). All read the same layered update.conf.

use crate::exit;
use boxcar_reboot::agent;
use boxcar_reboot::config::{self, ConfigErrors, RebootConfig, StrategyKind};
use boxcar_reboot::cycle::{
    AlwaysHealthy, CommandCheck, CommandHook, Coordinator, HealthCheck, Loginctl, Outcome, PreRebootHook,
    SystemctlReboot,
};
use boxcar_reboot::status::{self, LockView, Unlocked};
use boxcar_reboot::strategy;
use std::path::PathBuf;
use std::time::Duration;

/// The lock service could not be reached or refused.
const UNAVAILABLE: u8 = 4;

/// Reboot coordination: strategy, maintenance windows, lock holders.
#[derive(clap::Args)]
pub struct Args {
    /// Config layers, lowest precedence first (default: /usr/share/boxcar/update.conf then
    /// /etc/boxcar/update.conf). Missing files are skipped.
    #[arg(long = "config", value_name = "PATH", global = true)]
    configs: Vec<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Show strategy, windows and lock holders; exits 1 if the config is invalid.
    Status,
    /// Release the reboot slot held by ID (a dead or reinstalled node).
    Unlock {
        /// Holder id (machine id or REBOOT_ID of that node).
        id: String,
    },
    /// The node daemon: release the lock once healthy, wait for a staged update, then
    /// coordinate and reboot (`systemctl reboot`). Exits at once with strategy off.
    Run {
        /// File whose existence means "an update is staged".
        #[arg(long, default_value = agent::REBOOT_NEEDED)]
        signal: PathBuf,
        /// Seconds between checks.
        #[arg(long, default_value_t = 60)]
        poll: u64,
        /// Shell command that must succeed for the node to count as healthy.
        #[arg(long)]
        health_check: Option<String>,
        /// Shell command to run right before rebooting (repeatable, run in order).
        #[arg(long = "pre-reboot")]
        pre_reboot: Vec<String>,
    },
}

fn load(args: &Args) -> Result<RebootConfig, ConfigErrors> {
    let paths: Vec<PathBuf> = if args.configs.is_empty() {
        config::DEFAULT_PATHS.iter().map(PathBuf::from).collect()
    } else {
        args.configs.clone()
    };
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    config::load(&refs)
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: Args) -> u8 {
    let loaded = load(&args);
    match args.command {
        Cmd::Run {
            signal,
            poll,
            health_check,
            pre_reboot,
        } => {
            let _ = tracing_subscriber::fmt()
                // Colours only on a terminal: under systemd stderr goes to the journal.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .try_init();
            let cfg = match loaded {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("boxcar reboot: {e}");
                    eprintln!("boxcar reboot: acting as strategy off until this is fixed");
                    RebootConfig {
                        strategy: StrategyKind::Off,
                        ..RebootConfig::default()
                    }
                }
            };
            daemon(
                &cfg,
                &signal,
                Duration::from_secs(poll.max(1)),
                health_check,
                pre_reboot,
            )
        }
        Cmd::Status => {
            let (cfg, code) = match loaded {
                Ok(cfg) => (cfg, exit::OK),
                Err(e) => {
                    eprintln!("boxcar reboot: {e}");
                    eprintln!("boxcar reboot: the agent falls back to strategy off until this is fixed");
                    (
                        RebootConfig {
                            strategy: config::StrategyKind::Off,
                            ..RebootConfig::default()
                        },
                        exit::INVALID,
                    )
                }
            };
            let s = status::status(&cfg, boxcar_reboot::jiff::Timestamp::now());
            print!("{s}");
            match (&s.lock, code) {
                (LockView::Unavailable(_), exit::OK) => UNAVAILABLE,
                _ => code,
            }
        }
        Cmd::Unlock { id } => {
            let cfg = match loaded {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("boxcar reboot: {e}");
                    return exit::INVALID;
                }
            };
            match status::unlock(&cfg, &id) {
                Ok(Unlocked::Released) => {
                    println!("released the reboot slot of {id} in group {}", cfg.group);
                    exit::OK
                }
                Ok(Unlocked::NotHeld) => {
                    println!("{id} held no reboot slot in group {}", cfg.group);
                    exit::OK
                }
                Ok(Unlocked::Accepted) => {
                    println!(
                        "the FleetLock server released {id} in group {} (if it held a slot)",
                        cfg.group
                    );
                    exit::OK
                }
                Err(status::UnlockError::NoLock(k)) => {
                    eprintln!("boxcar reboot: strategy {k} has no reboot lock to release");
                    exit::INVALID
                }
                Err(e) => {
                    eprintln!("boxcar reboot: {e}");
                    UNAVAILABLE
                }
            }
        }
    }
}

fn daemon(
    cfg: &RebootConfig,
    signal: &std::path::Path,
    poll: Duration,
    health_check: Option<String>,
    pre_reboot: Vec<String>,
) -> u8 {
    if cfg.strategy == StrategyKind::Off {
        println!("reboot strategy is off: staged updates wait for a manual reboot");
        return exit::OK;
    }
    let id = match strategy::node_id(cfg) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("boxcar reboot: {e} (set REBOOT_ID)");
            return exit::INVALID;
        }
    };
    let strategy = strategy::build(cfg, &id);
    let sh = |c: String| vec!["sh".to_string(), "-c".to_string(), c];
    let health: Box<dyn HealthCheck> = match health_check {
        Some(c) => Box::new(CommandCheck(sh(c))),
        None => Box::new(AlwaysHealthy),
    };
    let hooks: Vec<Box<dyn PreRebootHook>> = pre_reboot
        .into_iter()
        .map(|c| Box::new(CommandHook(sh(c))) as Box<dyn PreRebootHook>)
        .collect();
    let clock = boxcar_reboot::jiff::Timestamp::now;
    let c = Coordinator {
        strategy: strategy.as_ref(),
        schedule: &cfg.schedule,
        rebooter: &SystemctlReboot,
        sessions: &Loginctl,
        health: health.as_ref(),
        hooks: &hooks,
        clock: &clock,
    };
    match agent::serve(&c, signal, poll, &std::thread::sleep) {
        Ok(Outcome::Rebooted) => exit::OK,
        Ok(Outcome::HandedOff(m)) => {
            println!("{m}");
            exit::OK
        }
        Ok(Outcome::Disabled) => {
            println!("automatic reboots are disabled");
            exit::OK
        }
        Ok(Outcome::Wait(r)) => {
            eprintln!("boxcar reboot: stopped while waiting: {r}");
            UNAVAILABLE
        }
        Err(e) => {
            eprintln!("boxcar reboot: {e}");
            UNAVAILABLE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(configs: Vec<PathBuf>, command: Cmd) -> Args {
        Args { configs, command }
    }

    #[test]
    fn status_and_unlock_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.conf");
        std::fs::write(&good, "REBOOT_STRATEGY=windowed\nREBOOT_WINDOWS=Sat 02:00 2h\n").unwrap();
        let bad = dir.path().join("bad.conf");
        std::fs::write(&bad, "REBOOT_STRATEGY=sometimes\n").unwrap();
        assert_eq!(run(args(vec![good.clone()], Cmd::Status)), exit::OK);
        assert_eq!(run(args(vec![good.clone(), bad.clone()], Cmd::Status)), exit::INVALID);
        assert_eq!(run(args(vec![bad], Cmd::Unlock { id: "n".into() })), exit::INVALID);
        assert_eq!(run(args(vec![good], Cmd::Unlock { id: "n".into() })), exit::INVALID);
        // etcd-lock against a port nothing listens on: the lock is reported unavailable.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let etcd = dir.path().join("etcd.conf");
        std::fs::write(
            &etcd,
            format!("REBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_ENDPOINT=http://127.0.0.1:{port}\n"),
        )
        .unwrap();
        assert_eq!(run(args(vec![etcd.clone()], Cmd::Status)), UNAVAILABLE);
        assert_eq!(run(args(vec![etcd], Cmd::Unlock { id: "n".into() })), UNAVAILABLE);
        // A broken config makes the daemon act as off: it exits without waiting or rebooting.
        let bad = dir.path().join("bad.conf");
        let run_cmd = Cmd::Run {
            signal: dir.path().join("never"),
            poll: 1,
            health_check: None,
            pre_reboot: vec![],
        };
        assert_eq!(run(args(vec![bad], run_cmd)), exit::OK);
    }
}
