//! Running the server: background jobs (heartbeat flushing, snapshot refresh, retention) and the
//! HTTP listener.

use crate::service::{Fleet, HEARTBEAT_FLUSH, SNAPSHOT_REFRESH};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long instances, events and activity are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep everything.
    Forever,
    /// Prune rows older than `days` days, every `every` (hourly by default; the first run is at
    /// start-up).
    Days {
        /// Age limit in days.
        days: u32,
        /// Time between prunes.
        every: Duration,
    },
}

/// Starts the background jobs on the current tokio runtime.
pub fn spawn_background(fleet: Arc<Fleet>, retention: Retention) {
    let f = fleet.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT_FLUSH);
        loop {
            tick.tick().await;
            let f = f.clone();
            match tokio::task::spawn_blocking(move || f.flush_heartbeats()).await {
                Ok(Err(e)) => tracing::error!(error = %e, "flushing heartbeats"),
                Err(e) => tracing::error!(error = %e, "heartbeat flush task failed"),
                Ok(Ok(_)) => {}
            }
        }
    });
    let f = fleet.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SNAPSHOT_REFRESH);
        loop {
            tick.tick().await;
            let f = f.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || f.refresh_snapshot()).await {
                tracing::error!(error = %e, "refreshing routing snapshot");
            }
        }
    });
    if let Retention::Days { days, every } = retention {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let f = fleet.clone();
                let before = f.clock.now() - i64::from(days) * 86400;
                match tokio::task::spawn_blocking(move || f.prune(before)).await {
                    Ok(Ok((i, e, a))) => tracing::info!(instances = i, events = e, activity = a, "retention pruning"),
                    Ok(Err(e)) => tracing::error!(error = %e, "retention pruning"),
                    Err(e) => tracing::error!(error = %e, "retention task failed"),
                }
            }
        });
    }
}

/// Mirrors from an upstream server on its interval (downstream mode).
pub fn spawn_downstream(fleet: Arc<Fleet>, upstream: crate::downstream::Upstream) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(upstream.interval);
        loop {
            tick.tick().await;
            let (f, up) = (fleet.clone(), upstream.clone());
            let result = tokio::task::spawn_blocking(move || {
                let report = crate::downstream::sync_once(&f.store, f.clock.now(), &up)?;
                f.refresh_snapshot()?;
                Ok::<_, crate::downstream::SyncError>(report)
            })
            .await;
            match result {
                Ok(Ok(r)) => tracing::info!(?r, "mirrored from upstream"),
                Ok(Err(e)) => tracing::error!(error = %e, "mirroring from upstream"),
                Err(e) => tracing::error!(error = %e, "mirror task failed"),
            }
        }
    });
}

/// Starts the background jobs on `rt` (for callers outside a runtime).
pub fn spawn_background_on(rt: &tokio::runtime::Runtime, fleet: Arc<Fleet>, retention: Retention) {
    let _guard = rt.enter();
    spawn_background(fleet, retention);
}

/// Serves HTTP on `listener` until the future resolves with an error or forever.
pub async fn serve(fleet: Arc<Fleet>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = crate::http::router(fleet);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
}
