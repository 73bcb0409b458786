//! `boxcar-updated`: the node's update daemon around the pure [`crate::Machine`].
//!
//! One module per concern: [`config`] (update.conf keys, via the shared `boxcar-updateconf`
//! parser), [`identity`] (os-release, machine and boot id), [`omaha`] (requests and answers in
//! update_engine's shape, pure), [`schedule`] (check timing, pure), [`http`] (bounded Omaha
//! transport), [`runner`] (the worker executing the machine's effects), [`api`] + [`proto`]
//! (local Unix-socket JSON API), [`dbus`] (`com.coreos.update1`), [`marker`] (what was staged
//! in this boot). [`Daemon`] starts and stops them together.

pub mod api;
pub mod config;
pub mod dbus;
pub mod http;
pub mod identity;
pub mod marker;
pub mod omaha;
pub mod proto;
pub mod runner;
pub mod schedule;

use crate::stager::Stager;
use std::path::PathBuf;
use std::sync::Arc;

pub use runner::{Agent, Options};

/// Where the local API listens by default.
pub const DEFAULT_SOCKET: &str = "/run/boxcar/updated.sock";

/// A running daemon: the agent, its socket and its D-Bus name.
pub struct Daemon {
    /// The agent (status, check, reset, rollback).
    pub agent: Arc<Agent>,
    api: Option<api::ApiServer>,
    dbus: Option<dbus::DbusService>,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The agent itself.
    #[error(transparent)]
    Start(#[from] runner::StartError),
    /// The socket.
    #[error("listening on {path}: {source}")]
    Socket {
        /// Socket path.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The bus.
    #[error("D-Bus: {0}")]
    Dbus(#[from] zbus::Error),
}

impl Daemon {
    /// Starts the agent, then the API on `socket` and the D-Bus service on `bus`.
    pub fn start(
        config: config::AgentConfig,
        options: Options,
        stager: Arc<dyn Stager>,
        socket: Option<PathBuf>,
        bus: &dbus::Bus,
    ) -> Result<Daemon, DaemonError> {
        let agent = Agent::start(config, options, stager)?;
        let api = match socket {
            Some(p) => match api::serve(&p, agent.clone()) {
                Ok(s) => Some(s),
                Err(source) => {
                    agent.shutdown();
                    return Err(DaemonError::Socket {
                        path: p.display().to_string(),
                        source,
                    });
                }
            },
            None => None,
        };
        let dbus = match dbus::serve(bus, agent.clone()) {
            Ok(d) => d,
            Err(e) => {
                agent.shutdown();
                if let Some(a) = api {
                    a.stop();
                }
                return Err(e.into());
            }
        };
        Ok(Daemon { agent, api, dbus })
    }

    /// Stops everything (cancels a download in progress).
    pub fn stop(self) {
        self.agent.shutdown();
        if let Some(a) = self.api {
            a.stop();
        }
        if let Some(d) = self.dbus {
            d.stop();
        }
    }
}
