//! Admin JSON API (`/api/v1/…`), described by `openapi.json`. Bearer tokens: read-only tokens may
//! GET, admin tokens may do everything. Tokens are compared by hash and never logged.

use crate::model::{App, Group, Package};
use crate::policy::{Policy, UpdatesMode};
use crate::service::Fleet;
use crate::store::{GroupPatch, InstanceFilter, Role, StoreError};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// An API failure: status and message.
pub struct ApiError(StatusCode, String);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound(_) => ApiError(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::Invalid(_) => ApiError(StatusCode::BAD_REQUEST, e.to_string()),
            _ if e.is_conflict() => ApiError(StatusCode::CONFLICT, e.to_string()),
            _ => {
                tracing::error!(error = %e, "admin API storage failure");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal storage error".into())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs a store job on a blocking thread.
async fn run<T: Send + 'static>(
    f: &Arc<Fleet>,
    job: impl FnOnce(&Fleet) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let f = f.clone();
    tokio::task::spawn_blocking(move || job(&f))
        .await
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()))?
        .map_err(ApiError::from)
}

/// Runs a store job that changes configuration, then refreshes this replica's routing snapshot.
async fn write<T: Send + 'static>(
    f: &Arc<Fleet>,
    job: impl FnOnce(&Fleet, i64) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    run(f, move |fl| {
        let r = job(fl, fl.clock.now())?;
        fl.refresh_snapshot()?;
        Ok(r)
    })
    .await
}

pub(super) fn routes(fleet: Arc<Fleet>) -> Router<Arc<Fleet>> {
    Router::new()
        .route("/apps", get(list_apps).post(create_app))
        .route("/apps/{app}/channels", get(list_channels).post(create_channel))
        .route("/apps/{app}/channels/{channel}", put(promote))
        .route("/apps/{app}/packages", get(list_packages).post(create_package))
        .route("/apps/{app}/groups", get(list_groups).post(create_group))
        .route("/apps/{app}/groups/{group}", get(get_group).patch(patch_group))
        .route("/apps/{app}/groups/{group}/pause", post(pause))
        .route("/apps/{app}/groups/{group}/resume", post(resume))
        .route("/apps/{app}/versions", get(versions))
        .route("/apps/{app}/instances/{machine}", get(get_instance))
        .route("/instances", get(list_instances))
        .route("/activity", get(activity))
        .route("/prune", post(prune))
        .route("/tokens", post(create_token))
        .route("/fleetlock/groups", get(fleetlock_groups))
        .route("/fleetlock/groups/{group}", put(fleetlock_set))
        .layer(axum::middleware::from_fn_with_state(fleet, auth))
}

/// Bearer-token check: GET/HEAD need any valid token, everything else an admin token.
async fn auth(State(fleet): State<Arc<Fleet>>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 256) else {
        return ApiError(StatusCode::UNAUTHORIZED, "a bearer token is required".into()).into_response();
    };
    let role = match run(&fleet, move |f| f.store.token_role(&token)).await {
        Ok(Some(role)) => role,
        Ok(None) => return ApiError(StatusCode::UNAUTHORIZED, "unknown token".into()).into_response(),
        Err(e) => return e.into_response(),
    };
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    if !reading && role != Role::Admin {
        return ApiError(StatusCode::FORBIDDEN, "this token is read-only".into()).into_response();
    }
    next.run(req).await
}

async fn resolve(f: &Arc<Fleet>, key: String) -> Result<App, ApiError> {
    run(f, move |fl| fl.store.resolve_app(&key)).await
}

async fn list_apps(State(f): State<Arc<Fleet>>) -> ApiResult<Vec<App>> {
    Ok(Json(run(&f, |fl| fl.store.list_apps()).await?))
}

async fn create_app(State(f): State<Arc<Fleet>>, Json(app): Json<App>) -> Result<(StatusCode, Json<App>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(write(&f, move |fl, now| fl.store.create_app(now, &app)).await?),
    ))
}

async fn list_channels(State(f): State<Arc<Fleet>>, Path(app): Path<String>) -> ApiResult<Vec<crate::model::Channel>> {
    let app = resolve(&f, app).await?;
    Ok(Json(run(&f, move |fl| fl.store.list_channels(&app.id)).await?))
}

#[derive(Deserialize)]
struct NewChannel {
    name: String,
}

async fn create_channel(
    State(f): State<Arc<Fleet>>,
    Path(app): Path<String>,
    Json(ch): Json<NewChannel>,
) -> Result<StatusCode, ApiError> {
    let app = resolve(&f, app).await?;
    write(&f, move |fl, now| fl.store.create_channel(now, &app.id, &ch.name)).await?;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
struct Promote {
    version: String,
    #[serde(default)]
    arch: Option<String>,
}

async fn promote(
    State(f): State<Arc<Fleet>>,
    Path((app, channel)): Path<(String, String)>,
    Json(p): Json<Promote>,
) -> ApiResult<Vec<Package>> {
    let app = resolve(&f, app).await?;
    Ok(Json(
        write(&f, move |fl, now| {
            fl.store.promote(now, &app.id, &channel, &p.version, p.arch.as_deref())
        })
        .await?,
    ))
}

async fn list_packages(State(f): State<Arc<Fleet>>, Path(app): Path<String>) -> ApiResult<Vec<Package>> {
    let app = resolve(&f, app).await?;
    Ok(Json(run(&f, move |fl| fl.store.list_packages(&app.id)).await?))
}

#[derive(Deserialize)]
struct NewPackage {
    version: String,
    #[serde(default)]
    arch: String,
    url: String,
    filename: String,
    size: u64,
    #[serde(default)]
    sha1: String,
    sha256: String,
    #[serde(default)]
    extra_files: Vec<crate::model::ExtraFile>,
    /// Publish: point this channel at the new package.
    #[serde(default)]
    channel: Option<String>,
}

async fn create_package(
    State(f): State<Arc<Fleet>>,
    Path(app): Path<String>,
    Json(p): Json<NewPackage>,
) -> Result<(StatusCode, Json<Package>), ApiError> {
    let app = resolve(&f, app).await?;
    let pkg = Package {
        id: String::new(),
        app_id: app.id,
        version: p.version,
        arch: p.arch,
        url: p.url,
        filename: p.filename,
        size: p.size,
        sha1: p.sha1,
        sha256: p.sha256,
        extra_files: p.extra_files,
    };
    let created = write(&f, move |fl, now| {
        fl.store.create_package(now, &pkg, p.channel.as_deref())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list_groups(State(f): State<Arc<Fleet>>, Path(app): Path<String>) -> ApiResult<Vec<Group>> {
    let app = resolve(&f, app).await?;
    Ok(Json(run(&f, move |fl| fl.store.list_groups(&app.id)).await?))
}

#[derive(Deserialize)]
struct NewGroup {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    track: String,
    #[serde(default)]
    policy: Policy,
}

async fn create_group(
    State(f): State<Arc<Fleet>>,
    Path(app): Path<String>,
    Json(g): Json<NewGroup>,
) -> Result<(StatusCode, Json<Group>), ApiError> {
    let app = resolve(&f, app).await?;
    let group = Group {
        id: g.id,
        app_id: app.id,
        name: g.name,
        channel: g.channel,
        track: g.track,
        policy: g.policy,
    };
    Ok((
        StatusCode::CREATED,
        Json(write(&f, move |fl, now| fl.store.create_group(now, &group)).await?),
    ))
}

#[derive(Serialize)]
struct GroupView {
    #[serde(flatten)]
    group: Group,
    progress: crate::store::GroupProgress,
}

async fn get_group(State(f): State<Arc<Fleet>>, Path((app, group)): Path<(String, String)>) -> ApiResult<GroupView> {
    let app = resolve(&f, app).await?;
    Ok(Json(
        run(&f, move |fl| {
            let g = fl.store.get_group(&app.id, &group)?;
            let progress = fl.store.group_progress(&app.id, &g.id)?;
            Ok(GroupView { group: g, progress })
        })
        .await?,
    ))
}

async fn patch_group(
    State(f): State<Arc<Fleet>>,
    Path((app, group)): Path<(String, String)>,
    Json(patch): Json<GroupPatch>,
) -> ApiResult<Group> {
    let app = resolve(&f, app).await?;
    Ok(Json(
        write(&f, move |fl, now| fl.store.update_group(now, &app.id, &group, &patch)).await?,
    ))
}

async fn set_mode(f: Arc<Fleet>, app: String, group: String, mode: UpdatesMode) -> ApiResult<Group> {
    let app = resolve(&f, app).await?;
    Ok(Json(
        write(&f, move |fl, now| fl.store.set_updates(now, &app.id, &group, mode)).await?,
    ))
}

async fn pause(State(f): State<Arc<Fleet>>, Path((app, group)): Path<(String, String)>) -> ApiResult<Group> {
    set_mode(f, app, group, UpdatesMode::Paused).await
}

async fn resume(State(f): State<Arc<Fleet>>, Path((app, group)): Path<(String, String)>) -> ApiResult<Group> {
    set_mode(f, app, group, UpdatesMode::Enabled).await
}

#[derive(Deserialize)]
struct Days {
    #[serde(default)]
    days: Option<i64>,
}

#[derive(Serialize)]
struct VersionPoint {
    day: i64,
    version: String,
    instances: u64,
}

async fn versions(
    State(f): State<Arc<Fleet>>,
    Path(app): Path<String>,
    Query(d): Query<Days>,
) -> ApiResult<Vec<VersionPoint>> {
    let app = resolve(&f, app).await?;
    let days = d.days.unwrap_or(30).clamp(1, 365);
    let rows = run(&f, move |fl| fl.store.version_history(&app.id, fl.clock.now(), days)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(day, version, instances)| VersionPoint {
                day,
                version,
                instances,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
struct InstanceView {
    #[serde(flatten)]
    instance: crate::model::Instance,
    events: Vec<crate::model::EventRecord>,
}

async fn get_instance(
    State(f): State<Arc<Fleet>>,
    Path((app, machine)): Path<(String, String)>,
) -> ApiResult<InstanceView> {
    let app = resolve(&f, app).await?;
    Ok(Json(
        run(&f, move |fl| {
            Ok(InstanceView {
                instance: fl.store.get_instance(&app.id, &machine)?,
                events: fl.store.instance_events(&app.id, &machine, 50)?,
            })
        })
        .await?,
    ))
}

#[derive(Deserialize)]
struct InstanceQuery {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn list_instances(
    State(f): State<Arc<Fleet>>,
    Query(q): Query<InstanceQuery>,
) -> ApiResult<Vec<crate::model::Instance>> {
    let mut filter = InstanceFilter {
        app_id: None,
        id: q.id,
        version: q.version,
        status: q.status,
        group: q.group,
        ip: q.ip,
        limit: q.limit,
    };
    if let Some(a) = q.app.filter(|a| !a.is_empty()) {
        filter.app_id = Some(resolve(&f, a).await?.id);
    }
    Ok(Json(run(&f, move |fl| fl.store.list_instances(&filter)).await?))
}

#[derive(Deserialize)]
struct ActivityQuery {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn activity(
    State(f): State<Arc<Fleet>>,
    Query(q): Query<ActivityQuery>,
) -> ApiResult<Vec<crate::model::Activity>> {
    let app_id = match q.app.filter(|a| !a.is_empty()) {
        Some(a) => Some(resolve(&f, a).await?.id),
        None => None,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        run(&f, move |fl| fl.store.list_activity(app_id.as_deref(), limit)).await?,
    ))
}

#[derive(Deserialize)]
struct Prune {
    older_than_days: i64,
}

async fn prune(State(f): State<Arc<Fleet>>, Json(p): Json<Prune>) -> ApiResult<serde_json::Value> {
    if p.older_than_days < 1 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "older_than_days must be at least 1".into(),
        ));
    }
    let (i, e, a) = run(&f, move |fl| fl.prune(fl.clock.now() - p.older_than_days * 86400)).await?;
    Ok(Json(json!({ "instances": i, "events": e, "activity": a })))
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
    role: Role,
}

async fn create_token(
    State(f): State<Arc<Fleet>>,
    Json(t): Json<NewToken>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let name = t.name.clone();
    let token = run(&f, move |fl| fl.store.create_token(fl.clock.now(), &t.name, t.role)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": name, "token": token }))))
}

#[derive(Serialize)]
struct LockGroup {
    name: String,
    max_holders: i64,
    holders: Vec<String>,
}

async fn fleetlock_groups(State(f): State<Arc<Fleet>>) -> ApiResult<Vec<LockGroup>> {
    let groups = run(&f, |fl| fl.store.fleetlock_groups()).await?;
    Ok(Json(
        groups
            .into_iter()
            .map(|(name, max_holders, holders)| LockGroup {
                name,
                max_holders,
                holders,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
struct SetMax {
    max_holders: i64,
}

async fn fleetlock_set(
    State(f): State<Arc<Fleet>>,
    Path(group): Path<String>,
    Json(s): Json<SetMax>,
) -> Result<StatusCode, ApiError> {
    run(&f, move |fl| fl.store.fleetlock_set_max(&group, s.max_holders)).await?;
    Ok(StatusCode::NO_CONTENT)
}
