//! The demo's routes: a public contract that docs and CI rely on.

use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use telemetry_init::http::client::TracedRequest;
use telemetry_init::http::{RequestBaggage, RequestId};

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) client: reqwest::Client,
    pub(crate) downstream: String,
    pub(crate) receiver: crate::Receiver,
    /// `DEMO_DEBUG_ALLOW_REMOTE`: serve `/debug/telemetry` to non-loopback clients.
    pub(crate) debug_allow_remote: bool,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/users/{id}", get(user))
        .route("/error", get(error))
        .route("/slow", get(slow))
        .route("/chain", get(chain))
        .route("/debug/telemetry", get(debug_telemetry))
        .route("/healthz", get(|| async { "ok" }))
        // An explicit fallback so unmatched requests go through the layer
        // too (measured under the `unmatched` route).
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(state)
        .layer(telemetry_init::layer())
}

async fn hello(baggage: Option<Extension<RequestBaggage>>) -> &'static str {
    // The `tenant` baggage entry, when a caller sent one (`/chain` forwards it).
    let tenant = baggage.as_ref().and_then(|Extension(b)| b.get("tenant"));
    tracing::info!(tenant, "saying hello");
    "hello\n"
}

async fn user(Path(id): Path<String>) -> impl IntoResponse {
    tracing::info!(user.id = %id, "looking up user");
    Json(serde_json::json!({ "id": id, "name": format!("user-{id}") }))
}

async fn error() -> impl IntoResponse {
    tracing::error!("something went wrong on purpose");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
}

#[derive(Deserialize)]
struct SlowParams {
    ms: Option<u64>,
}

async fn slow(Query(p): Query<SlowParams>) -> impl IntoResponse {
    // Capped so a request cannot hold a connection for long.
    let ms = p.ms.unwrap_or(100).min(10_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    tracing::info!(slept_ms = ms, "slow request done");
    format!("slept {ms} ms\n")
}

async fn chain(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
) -> impl IntoResponse {
    tracing::info!(downstream = %state.downstream, "calling downstream");
    match state.client.get(&state.downstream).send_traced().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            tracing::info!(status, "downstream answered");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, format!("downstream {status}: {body}"))
        }
        Err(e) => {
            // reqwest's message repeats the URL: credentials in it (userinfo,
            // `?token=`) must reach neither the client nor the logs.
            let message = e.to_string();
            let message = telemetry_init::redact::current().redact_text(&message);
            tracing::warn!(error = %message, request_id = request_id.as_str(), "downstream failed");
            (
                StatusCode::BAD_GATEWAY,
                format!("downstream failed: {message}\n"),
            )
        }
    }
}

async fn debug_telemetry(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
) -> impl IntoResponse {
    // Everything every client sent (addresses, user agents, paths, log
    // fields) is in there: loopback only unless explicitly opened. Without a
    // known peer there is nothing to check, so nothing is shown.
    let allowed = peer.is_some_and(|Extension(ConnectInfo(p))| {
        telemetry_init_testing::access::peer_allowed(p.ip(), state.debug_allow_remote)
    });
    if !allowed {
        return (
            StatusCode::FORBIDDEN,
            "/debug/telemetry answers loopback clients only (set DEMO_DEBUG_ALLOW_REMOTE=true to open it)\n",
        )
            .into_response();
    }
    match &state.receiver {
        Some(r) => Json(r.snapshot_json_with_limit(50)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "the embedded receiver is off: telemetry goes to OTEL_EXPORTER_OTLP_ENDPOINT\n",
        )
            .into_response(),
    }
}
