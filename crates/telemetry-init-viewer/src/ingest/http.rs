//! OTLP/HTTP (`/v1/traces`, `/v1/logs`, `/v1/metrics`; protobuf or JSON,
//! gzip) and the raw event routes, on one axum router.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use telemetry_init_testing::Signal;
use telemetry_init_testing::codec::{HttpEncoding, MAX_MESSAGE_BYTES, decode_http};

use super::{events, queue_full};
use crate::store::{Op, Store};

fn ok(encoding: HttpEncoding, body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

fn refused(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

async fn traces(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    match decode_http::<ExportTraceServiceRequest>(&headers, &body, Signal::Traces) {
        Err(e) => refused(e.status, e.message),
        Ok(d) => match store.submit(Op::Traces(d.request), body.len()) {
            Ok(()) => ok(
                d.encoding,
                d.encoding.encode(&ExportTraceServiceResponse::default()),
            ),
            Err(_) => queue_full(),
        },
    }
}

async fn logs(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    match decode_http::<ExportLogsServiceRequest>(&headers, &body, Signal::Logs) {
        Err(e) => refused(e.status, e.message),
        Ok(d) => match store.submit(Op::Logs(d.request), body.len()) {
            Ok(()) => ok(
                d.encoding,
                d.encoding.encode(&ExportLogsServiceResponse::default()),
            ),
            Err(_) => queue_full(),
        },
    }
}

async fn metrics(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    match decode_http::<ExportMetricsServiceRequest>(&headers, &body, Signal::Metrics) {
        Err(e) => refused(e.status, e.message),
        Ok(d) => match store.submit(Op::Metrics(d.request), body.len()) {
            Ok(()) => ok(
                d.encoding,
                d.encoding.encode(&ExportMetricsServiceResponse::default()),
            ),
            Err(_) => queue_full(),
        },
    }
}

/// The OTLP/HTTP and raw event routes.
pub(crate) fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route(Signal::Traces.http_path(), post(traces))
        .route(Signal::Logs.http_path(), post(logs))
        .route(Signal::Metrics.http_path(), post(metrics))
        .route("/v1/events", post(events::post))
        .route("/v1/events/ws", get(events::websocket))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(store)
}
