//! `boxcar-server`: the update server binary.

use anyhow::Context;
use boxcar_server::server::Retention;
use boxcar_server::service::{Clock, Fleet};
use boxcar_server::store::{Role, Store};
use clap::{Parser, Subcommand, ValueEnum};
use std::sync::Arc;

/// mimalloc instead of glibc's malloc: a check allocates a few dozen small short-lived objects
/// (request fields, response, heartbeat) on two threads; glibc's arenas spent about a tenth of
/// the benchmark's CPU in malloc/free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Boxcar update server: Omaha updates for Flatcar and Boxcar nodes, rollout policies, fleet view,
/// admin API, metrics and FleetLock.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Database: an SQLite file path (created if missing) or a postgres:// URL.
    #[arg(long, env = "BOXCAR_SERVER_DB", default_value = "boxcar-server.db", global = true)]
    db: String,
    /// Database connections per replica.
    #[arg(long, default_value_t = 8, global = true)]
    pool_size: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (Omaha at /v1/update/, admin API at /api/v1, dashboard at /, /metrics, FleetLock).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: String,
        /// Prune instances, events and activity older than this many days (0 keeps everything).
        #[arg(long, default_value_t = 90)]
        retention_days: u32,
        /// Seconds between retention prunes (the first runs at start-up).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
        prune_interval_secs: u64,
        /// Downstream mode: mirror channels and packages from this upstream: a Boxcar server's
        /// base URL (`--upstream-protocol boxcar-api`), or an Omaha endpoint such as
        /// `https://public.update.flatcar-linux.net/v1/update/` (`--upstream-protocol omaha`).
        #[arg(long)]
        upstream: Option<String>,
        /// How the upstream is asked: `boxcar-api` reads every channel of a Boxcar server's
        /// admin API (needs --upstream-token-file); `omaha` sends one update check per
        /// --mirror-channel and --mirror-arch, as Nebraska's syncer does (any Omaha server).
        #[arg(long, value_enum, default_value = "boxcar-api", requires = "upstream")]
        upstream_protocol: UpstreamKind,
        /// File holding a read-only token of the upstream (boxcar-api).
        #[arg(long, requires = "upstream")]
        upstream_token_file: Option<std::path::PathBuf>,
        /// Channel (upstream track) to mirror over Omaha (repeatable).
        #[arg(long = "mirror-channel", default_values = ["stable"])]
        mirror_channels: Vec<String>,
        /// Architecture to mirror over Omaha (repeatable): amd64, arm64.
        #[arg(long = "mirror-arch", default_values = ["amd64"], value_parser = ["amd64", "arm64"])]
        mirror_arches: Vec<String>,
        /// PEM file of the CA certificate(s) to trust for an https:// upstream (default: Mozilla's
        /// roots).
        #[arg(long, requires = "upstream")]
        upstream_ca_file: Option<std::path::PathBuf>,
        /// Apps to mirror (repeatable).
        #[arg(long = "mirror-app", default_value = "flatcar")]
        mirror_apps: Vec<String>,
        /// Seconds between syncs (the first runs at start-up).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
        sync_interval_secs: u64,
        /// Last-seen resolution in seconds (0-3600): a heartbeat check that repeats, within this
        /// time, what this replica already wrote for the instance (same version, address, track,
        /// group, OEM and alias) does not rewrite its row. "Last seen" in the API and dashboard is
        /// then precise to this resolution; a crash loses at most this much of last-seen moves,
        /// never a version change, a status change or an event. 0 writes every check.
        #[arg(long, default_value_t = boxcar_server::lastseen::DEFAULT_RESOLUTION.as_secs(),
              value_parser = clap::value_parser!(u64).range(0..=boxcar_server::lastseen::MAX_RESOLUTION.as_secs()))]
        last_seen_resolution_secs: u64,
    },
    /// Create an API token and print it (it is stored hashed and cannot be shown again).
    Token {
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// What the token may do.
        #[arg(long, value_enum, default_value_t = RoleArg::Readonly)]
        role: RoleArg,
    },
    /// Delete instances, events and activity older than a number of days now.
    Prune {
        /// Age in days.
        #[arg(long)]
        older_than_days: u32,
    },
}

/// How the upstream of downstream mode is asked.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum UpstreamKind {
    /// Another Boxcar server's read-only admin API.
    BoxcarApi,
    /// Any Omaha server (Nebraska, Flatcar's public update server, a Boxcar server).
    Omaha,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    /// May read.
    Readonly,
    /// May change everything.
    Admin,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        // Colours only on a terminal: under systemd stderr goes to the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        // Logs go to stderr: stdout carries results (`token` prints the
        // token for scripts to capture).
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let db = boxcar_server::db::open(&cli.db, cli.pool_size).context("opening the database")?;
    let store = Store::new(db);
    let clock = Clock::System;
    store
        .ensure_defaults(clock.now())
        .context("creating default application")?;
    match cli.command {
        Command::Token { name, role } => {
            let role = match role {
                RoleArg::Readonly => Role::ReadOnly,
                RoleArg::Admin => Role::Admin,
            };
            println!("{}", store.create_token(clock.now(), &name, role)?);
        }
        Command::Prune { older_than_days } => {
            let (i, e, a) = store.prune(clock.now() - i64::from(older_than_days) * 86400)?;
            println!("pruned {i} instances, {e} events, {a} activity entries");
        }
        Command::Serve {
            listen,
            retention_days,
            prune_interval_secs,
            upstream,
            upstream_protocol,
            upstream_token_file,
            mirror_channels,
            mirror_arches,
            upstream_ca_file,
            mirror_apps,
            sync_interval_secs,
            last_seen_resolution_secs,
        } => {
            let upstream = match upstream {
                None => None,
                Some(url) => {
                    let protocol = match upstream_protocol {
                        UpstreamKind::BoxcarApi => {
                            let path = upstream_token_file
                                .context("--upstream-protocol boxcar-api needs --upstream-token-file")?;
                            let token = std::fs::read_to_string(&path)
                                .with_context(|| format!("reading {}", path.display()))?
                                .trim()
                                .to_string();
                            boxcar_server::downstream::UpstreamProtocol::BoxcarApi { token }
                        }
                        UpstreamKind::Omaha => boxcar_server::downstream::UpstreamProtocol::Omaha {
                            channels: mirror_channels,
                            arches: mirror_arches,
                        },
                    };
                    let ca = match upstream_ca_file {
                        None => None,
                        Some(path) => {
                            let pem = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                            let certs = boxcar_server::downstream::ca_certificates(&pem)
                                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                            Some(certs)
                        }
                    };
                    Some(boxcar_server::downstream::Upstream {
                        url,
                        protocol,
                        apps: mirror_apps,
                        interval: std::time::Duration::from_secs(sync_interval_secs),
                        ca,
                    })
                }
            };
            let fleet = Arc::new(Fleet::new(store, clock)?);
            fleet.set_last_seen_resolution(std::time::Duration::from_secs(last_seen_resolution_secs));
            let retention = if retention_days == 0 {
                Retention::Forever
            } else {
                Retention::Days {
                    days: retention_days,
                    every: std::time::Duration::from_secs(prune_interval_secs),
                }
            };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("binding {listen}"))?;
                tracing::info!(address = %listener.local_addr()?, "serving");
                boxcar_server::server::spawn_background(fleet.clone(), retention);
                if let Some(up) = upstream {
                    boxcar_server::server::spawn_downstream(fleet.clone(), up);
                }
                boxcar_server::server::serve(fleet, listener)
                    .await
                    .context("serving HTTP")
            })?;
        }
    }
    Ok(())
}
