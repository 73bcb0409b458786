//! The dashboard: plain HTML and JavaScript embedded in the binary, talking to the admin API.

use crate::service::Fleet;
use axum::Router;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Fleet>> {
    Router::new()
}
