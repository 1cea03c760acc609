//! Ingestion: OTLP over gRPC and HTTP (decoded by
//! [`telemetry_init_testing::codec`], the test kit's receiver code), and raw
//! NDJSON events over HTTP POST and WebSocket. Every transport only queues
//! what it decoded (`Store::submit`) and answers; a full queue
//! answers gRPC `UNAVAILABLE` / HTTP `503` with `Retry-After`.

pub(crate) mod events;
pub(crate) mod grpc;
pub(crate) mod http;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Seconds an exporter is told to wait when the queue is full.
pub(crate) const RETRY_AFTER_SECS: u64 = 1;

/// A `503` with `Retry-After`, the answer to a full queue.
pub(crate) fn queue_full() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS)),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        r#"{"error":"write queue full, retry later"}"#,
    )
        .into_response()
}
