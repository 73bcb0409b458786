//! update_engine's D-Bus interface, so tools that drive or watch update_engine (locksmithd,
//! `update_engine_client`, FLUO, dashboards) work unchanged: bus name `com.coreos.update1`,
//! object `/com/coreos/update1`, interface `com.coreos.update1.Manager` with
//! `AttemptUpdate()`, `ResetStatus()`, `GetStatus() → (x, d, s, s, x)` and the signal
//! `StatusUpdate(x last_checked_time, d progress, s current_operation, s new_version,
//! x new_size)` (signatures as in update_engine's `update_engine.xml`).
//!
//! zbus's blocking API on its own async-io executor thread; no tokio.

use super::proto::ErrorKind;
use super::runner::Agent;
use std::sync::Arc;
use std::time::Duration;

/// Well-known name.
pub const BUS_NAME: &str = "com.coreos.update1";
/// Object path.
pub const OBJECT_PATH: &str = "/com/coreos/update1";
/// Interface name.
pub const INTERFACE: &str = "com.coreos.update1.Manager";

/// Which bus to serve on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system bus (production).
    System,
    /// The session bus.
    Session,
    /// An explicit address (`unix:path=…`; tests with their own dbus-daemon).
    Address(String),
    /// No D-Bus at all.
    Off,
}

impl std::str::FromStr for Bus {
    type Err = String;
    fn from_str(s: &str) -> Result<Bus, String> {
        match s {
            "system" => Ok(Bus::System),
            "session" => Ok(Bus::Session),
            "none" | "off" => Ok(Bus::Off),
            a if a.contains(':') => Ok(Bus::Address(a.to_string())),
            other => Err(format!(
                "unknown bus {other:?}: expected system, session, none or an address such as unix:path=/run/dbus/system_bus_socket"
            )),
        }
    }
}

struct Manager {
    agent: Arc<Agent>,
}

#[zbus::interface(name = "com.coreos.update1.Manager")]
impl Manager {
    /// Starts an update check (ignored, as by update_engine, while one is running or an
    /// update is staged).
    fn attempt_update(&self) -> zbus::fdo::Result<()> {
        match self.agent.request_check() {
            Ok(_) => Ok(()),
            Err(r) if r.kind == ErrorKind::Disabled => Err(zbus::fdo::Error::Failed(r.message)),
            Err(r) => {
                tracing::info!(reason = %r, "AttemptUpdate ignored");
                Ok(())
            }
        }
    }

    /// Forgets a staged update (fails unless idle or UPDATED_NEED_REBOOT).
    fn reset_status(&self) -> zbus::fdo::Result<()> {
        self.agent
            .reset()
            .map(|_| ())
            .map_err(|r| zbus::fdo::Error::Failed(r.message))
    }

    /// update_engine's five status values.
    #[zbus(out_args("last_checked_time", "progress", "current_operation", "new_version", "new_size"))]
    fn get_status(&self) -> (i64, f64, String, String, i64) {
        self.agent.status().dbus_tuple()
    }

    /// Emitted on every status change.
    #[zbus(signal)]
    async fn status_update(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        last_checked_time: i64,
        progress: f64,
        current_operation: &str,
        new_version: &str,
        new_size: i64,
    ) -> zbus::Result<()>;
}

/// The service on the bus; stopping it releases the name.
pub struct DbusService {
    conn: zbus::blocking::Connection,
    forwarder: Option<std::thread::JoinHandle<()>>,
}

/// Connects, serves the object, takes the name, and forwards status changes as signals.
pub fn serve(bus: &Bus, agent: Arc<Agent>) -> zbus::Result<Option<DbusService>> {
    use zbus::blocking::connection::Builder;
    let builder = match bus {
        Bus::Off => return Ok(None),
        Bus::System => Builder::system()?,
        Bus::Session => Builder::session()?,
        Bus::Address(a) => Builder::address(a.as_str())?,
    };
    let conn = builder
        .serve_at(OBJECT_PATH, Manager { agent: agent.clone() })?
        .name(BUS_NAME)?
        .build()?;
    let rx = agent.subscribe();
    let c = conn.clone();
    let forwarder = std::thread::Builder::new()
        .name("boxcar-updated-dbus".into())
        .spawn(move || loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(view) => {
                    let (t, p, op, v, s) = view.dbus_tuple();
                    if let Err(e) = c.emit_signal(
                        None::<&str>,
                        OBJECT_PATH,
                        INTERFACE,
                        "StatusUpdate",
                        &(t, p, op.as_str(), v.as_str(), s),
                    ) {
                        tracing::warn!(error = %e, "emitting StatusUpdate");
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if agent.stopping() {
                        return;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        })
        .map_err(|e| zbus::Error::Failure(format!("starting the D-Bus signal thread: {e}")))?;
    Ok(Some(DbusService {
        conn,
        forwarder: Some(forwarder),
    }))
}

impl DbusService {
    /// Releases the name and stops forwarding (call after the agent stopped).
    pub fn stop(mut self) {
        let _ = self.conn.release_name(BUS_NAME);
        if let Some(f) = self.forwarder.take() {
            let _ = f.join();
        }
    }
}
