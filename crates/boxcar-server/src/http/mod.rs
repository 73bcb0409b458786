//! HTTP surface: Omaha (`/v1/update/`), FleetLock, `/metrics`, the admin API and the dashboard.

mod api;
mod dashboard;
mod fleetlock;

use crate::service::{Fleet, OmahaError, Path};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Largest Omaha body accepted (Nebraska's limit).
pub const MAX_OMAHA_BODY: usize = 64 * 1024;

/// Builds the whole router.
pub fn router(fleet: Arc<Fleet>) -> Router {
    Router::new()
        .route("/v1/update", post(omaha))
        .route("/v1/update/", post(omaha))
        .route("/v1/pre-reboot", post(fleetlock::pre_reboot))
        .route("/v1/steady-state", post(fleetlock::steady_state))
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .route("/openapi.json", get(openapi))
        .merge(dashboard::routes())
        .nest("/api/v1", api::routes(fleet.clone()))
        .with_state(fleet)
}

/// The OpenAPI document of the admin API.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Client address: first `X-Forwarded-For` entry (behind a proxy, as Nebraska), else the peer.
fn client_ip(headers: &HeaderMap, req_peer: Option<SocketAddr>) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|s| s.trim().chars().take(64).collect())
        .or_else(|| req_peer.map(|p| p.ip().to_string()))
        .unwrap_or_default()
}

async fn omaha(State(fleet): State<Arc<Fleet>>, req: Request) -> Response {
    let start = Instant::now();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = client_ip(req.headers(), peer);
    let body = match axum::body::to_bytes(req.into_body(), MAX_OMAHA_BODY).await {
        Ok(b) => b,
        Err(_) => {
            fleet.metrics.bad_request();
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("parsing Omaha document: body exceeds the limit of {MAX_OMAHA_BODY} bytes"),
            );
        }
    };
    // Snapshot-only requests (the common heartbeat check) are answered right here; only requests
    // that need a store transaction go to a blocking thread.
    let result = match fleet.prepare(&body) {
        Err(e) => Ok(Err(e)),
        Ok(prepared) if prepared.path() == Path::Snapshot => Ok(fleet.answer(&prepared, &ip)),
        Ok(prepared) => {
            let f = fleet.clone();
            tokio::task::spawn_blocking(move || f.answer(&prepared, &ip)).await
        }
    };
    let resp = match result {
        Ok(Ok(xml)) => ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response(),
        Ok(Err(e @ (OmahaError::Parse(_) | OmahaError::Invalid(_)))) => {
            fleet.metrics.bad_request();
            text(StatusCode::BAD_REQUEST, e.to_string())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Omaha request failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
        Err(e) => {
            tracing::error!(error = %e, "Omaha handler panicked");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
    };
    fleet.metrics.observe(start.elapsed());
    resp
}

async fn metrics(State(fleet): State<Arc<Fleet>>) -> Response {
    let f = fleet.clone();
    match tokio::task::spawn_blocking(move || f.store.instance_counts()).await {
        Ok(Ok(counts)) => {
            let body = fleet.metrics.render(&counts, fleet.store.database().pool_stats());
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
        }
        _ => text(StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable".into()),
    }
}

fn text(status: StatusCode, msg: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(msg + "\n"))
        .unwrap_or_else(|_| status.into_response())
}
