//! The dashboard: one HTML page with plain JavaScript, embedded in the binary (no front-end build),
//! talking to the admin API with the operator's token.

use crate::service::Fleet;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The page.
pub const PAGE: &str = include_str!("dashboard.html");

pub(super) fn routes() -> Router<Arc<Fleet>> {
    Router::new().route("/", get(page)).route("/ui", get(page))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
            ),
        ],
        PAGE,
    )
}
