//! `boxcar reboot …`: the node's reboot coordination as the operator sees it (boxcar-reboot).
//!
//! `status` shows the strategy, the windows (and whether one is open now) and the lock holders;
//! `unlock ID` frees the slot of a holder that died or was reinstalled, like
//! `locksmithctl unlock`. Both read the same layered update.conf as the agent.

use crate::exit;
use boxcar_reboot::config::{self, ConfigErrors, RebootConfig};
use boxcar_reboot::status::{self, LockView, Unlocked};
use std::path::PathBuf;

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
    }
}
