//! FleetLock (Zincati's reboot coordination protocol) over the server's database.

use crate::service::Fleet;
use crate::store::LockOutcome;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Deserialize)]
struct Body {
    client_params: ClientParams,
}

#[derive(Deserialize)]
struct ClientParams {
    id: String,
    group: String,
}

fn error(status: StatusCode, kind: &str, value: String) -> Response {
    (status, Json(json!({ "kind": kind, "value": value }))).into_response()
}

/// A refused FleetLock request: status, bounded `kind` token, human text.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1, self.2)
    }
}

/// Validates header and body; returns (group, id).
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<(String, String), Refusal> {
    if headers.get("fleet-lock-protocol").and_then(|v| v.to_str().ok()) != Some("true") {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "missing_fleet_lock_header",
            "the fleet-lock-protocol: true header is required".into(),
        ));
    }
    let body: Body = serde_json::from_slice(body).map_err(|e| {
        Refusal(
            StatusCode::BAD_REQUEST,
            "bad_request_body",
            format!("parsing FleetLock body: {e}"),
        )
    })?;
    let ClientParams { id, group } = body.client_params;
    if id.is_empty() || id.len() > 256 {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "invalid_client_id",
            "client_params.id must be 1-256 bytes".into(),
        ));
    }
    if group.is_empty() || group.len() > 64 || !group.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "invalid_client_group",
            "client_params.group must match ^[a-zA-Z0-9.-]+$".into(),
        ));
    }
    Ok((group, id))
}

/// `POST /v1/pre-reboot`: take or re-confirm a slot.
pub async fn pre_reboot(State(fleet): State<Arc<Fleet>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let (group, id) = match parse(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let f = fleet.clone();
    let now = fleet.clock.now();
    match tokio::task::spawn_blocking(move || f.store.fleetlock_lock(now, &group, &id)).await {
        Ok(Ok(LockOutcome::Held)) => StatusCode::OK.into_response(),
        Ok(Ok(LockOutcome::Full { max, holders })) => error(
            StatusCode::CONFLICT,
            "failed_lock_semaphore_full",
            format!("all {max} reboot slots are held ({} holders)", holders.len()),
        ),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "lock storage failed".into(),
        ),
    }
}

/// `POST /v1/steady-state`: release the slot if held (idempotent).
pub async fn steady_state(State(fleet): State<Arc<Fleet>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let (group, id) = match parse(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let f = fleet.clone();
    match tokio::task::spawn_blocking(move || f.store.fleetlock_unlock(&group, &id)).await {
        Ok(Ok(_)) => StatusCode::OK.into_response(),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "lock storage failed".into(),
        ),
    }
}
