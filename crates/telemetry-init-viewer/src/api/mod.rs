//! The JSON query API under `/api` (see `docs/viewer.md` for every route).
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<telemetry_init_viewer::store::Store>) {
//! use telemetry_init_viewer::api::{ApiState, api_router};
//!
//! let app: axum::Router = api_router(ApiState::new(store, Vec::new()));
//! # let _ = app;
//! # }
//! ```

mod live;
mod otlp;
pub mod slo;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::store::query::{self, LogFilter, QueryError, Range, TraceFilter};
use crate::store::{Store, StoreError};
use telemetry_init_slo::SloSpec;

/// What the API handlers share.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The store.
    pub store: Arc<Store>,
    /// SLO specs for `/api/slo`.
    pub slo: Arc<Vec<SloSpec>>,
}

impl ApiState {
    /// State over `store` with the given SLO specs.
    pub fn new(store: Arc<Store>, slo: Vec<SloSpec>) -> Self {
        ApiState {
            store,
            slo: Arc::new(slo),
        }
    }
}

/// An API error, answered as `{"error": "message"}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(m: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, m.into())
    }
    fn not_found(m: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, m.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::bad_request(e.body_text())
    }
}

fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::BadRequest(m) => ApiError::bad_request(m),
        QueryError::Sqlite(e) => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Runs a query that may fail with a bad parameter.
async fn run<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    let out = store
        .read(move |c| Ok(f(c)))
        .await
        .map_err(ApiError::from)?;
    out.map_err(query_error)
}

type Json<T> = Result<axum::Json<T>, ApiError>;

/// The `/api` routes (paths include the `/api` prefix).
pub fn api_router(state: ApiState) -> Router {
    Router::new()
        .route("/api/services", get(services))
        .route("/api/red", get(red))
        .route("/api/traces", get(traces))
        .route("/api/traces/{trace_id}", get(trace))
        .route("/api/traces/{trace_id}/otlp", get(trace_otlp))
        .route("/api/logs", get(logs))
        .route("/api/metrics", get(metrics))
        .route("/api/metrics/{name}", get(metric))
        .route("/api/slo", get(slo::status))
        .route("/api/slo/{service}/{objective}/series", get(slo::series))
        .route("/api/live", get(live::live))
        .route("/api/events", get(events))
        .fallback(|| async { ApiError::not_found("no such API route") })
        .with_state(state)
}

async fn services(State(s): State<ApiState>) -> Json<Vec<query::ServiceSummary>> {
    Ok(axum::Json(s.store.read(query::services).await?))
}

#[derive(Debug, Deserialize)]
struct RangeParams {
    service: Option<String>,
    from_us: Option<i64>,
    to_us: Option<i64>,
}

async fn red(
    State(s): State<ApiState>,
    q: Result<Query<RangeParams>, QueryRejection>,
) -> Json<Vec<query::Red>> {
    let Query(q) = q?;
    let range = Range::from_options(q.from_us, q.to_us);
    Ok(axum::Json(
        s.store
            .read(move |c| query::red(c, q.service.as_deref(), range))
            .await?,
    ))
}

fn split_attr(a: Option<String>) -> Result<Option<(String, String)>, ApiError> {
    match a {
        None => Ok(None),
        Some(a) => match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(Some((k.to_owned(), v.to_owned()))),
            _ => Err(ApiError::bad_request(format!(
                "attr must be key=value, not {a:?}"
            ))),
        },
    }
}

#[derive(Debug, Deserialize)]
struct TraceParams {
    service: Option<String>,
    route: Option<String>,
    status: Option<String>,
    error: Option<bool>,
    min_us: Option<i64>,
    max_us: Option<i64>,
    attr: Option<String>,
    from_us: Option<i64>,
    to_us: Option<i64>,
    limit: Option<usize>,
    cursor: Option<String>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

async fn traces(
    State(s): State<ApiState>,
    q: Result<Query<TraceParams>, QueryRejection>,
) -> Json<query::TracePage> {
    let Query(q) = q?;
    let f = TraceFilter {
        service: nonempty(q.service),
        route: nonempty(q.route),
        status: nonempty(q.status),
        error: q.error.unwrap_or(false),
        min_us: q.min_us,
        max_us: q.max_us,
        attr: split_attr(nonempty(q.attr))?,
        from_us: q.from_us,
        to_us: q.to_us,
        limit: q.limit,
        cursor: nonempty(q.cursor),
    };
    Ok(axum::Json(
        run(&s.store, move |c| query::search_traces(c, &f)).await?,
    ))
}

fn trace_id(id: &str) -> Result<Vec<u8>, ApiError> {
    query::parse_trace_id(id)
        .ok_or_else(|| ApiError::bad_request("trace id must be 32 hex digits, not all zero"))
}

async fn trace(State(s): State<ApiState>, Path(id): Path<String>) -> Json<query::TraceView> {
    let bytes = trace_id(&id)?;
    match s.store.read(move |c| query::trace(c, &bytes)).await? {
        Some(t) => Ok(axum::Json(t)),
        None => Err(ApiError::not_found(format!("trace {id} not found"))),
    }
}

async fn trace_otlp(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = trace_id(&id)?;
    let Some(t) = s.store.read(move |c| query::trace(c, &bytes)).await? else {
        return Err(ApiError::not_found(format!("trace {id} not found")));
    };
    let body = serde_json::to_vec(&otlp::export_request(&t))
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"trace-{}.otlp.json\"", t.trace_id),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct LogParams {
    service: Option<String>,
    level: Option<String>,
    q: Option<String>,
    trace_id: Option<String>,
    attr: Option<String>,
    from_us: Option<i64>,
    to_us: Option<i64>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn logs(
    State(s): State<ApiState>,
    q: Result<Query<LogParams>, QueryRejection>,
) -> Json<query::LogPage> {
    let Query(q) = q?;
    let f = LogFilter {
        service: nonempty(q.service),
        level: nonempty(q.level),
        q: nonempty(q.q),
        trace_id: nonempty(q.trace_id),
        attr: split_attr(nonempty(q.attr))?,
        from_us: q.from_us,
        to_us: q.to_us,
        limit: q.limit,
        cursor: nonempty(q.cursor),
        ascending: false,
    };
    Ok(axum::Json(
        run(&s.store, move |c| query::search_logs(c, &f)).await?,
    ))
}

async fn metrics(State(s): State<ApiState>) -> Json<Vec<query::MetricSummary>> {
    Ok(axum::Json(s.store.read(query::metrics).await?))
}

#[derive(Debug, Deserialize)]
struct MetricParams {
    from_us: Option<i64>,
    to_us: Option<i64>,
}

async fn metric(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    q: Result<Query<MetricParams>, QueryRejection>,
) -> Json<query::MetricView> {
    let Query(q) = q?;
    let range = Range::from_options(q.from_us, q.to_us);
    let n = name.clone();
    match s.store.read(move |c| query::metric(c, &n, range)).await? {
        Some(m) => Ok(axum::Json(m)),
        None => Err(ApiError::not_found(format!("metric {name:?} not found"))),
    }
}

#[derive(Debug, Deserialize)]
struct EventParams {
    stream: Option<String>,
    limit: Option<usize>,
}

async fn events(
    State(s): State<ApiState>,
    q: Result<Query<EventParams>, QueryRejection>,
) -> Json<Vec<query::EventRecord>> {
    let Query(q) = q?;
    let stream = nonempty(q.stream);
    Ok(axum::Json(
        s.store
            .read(move |c| query::events(c, stream.as_deref(), q.limit))
            .await?,
    ))
}
