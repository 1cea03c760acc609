//! Ingestion: OTLP over gRPC and HTTP (decoded by
//! [`telemetry_init_testing::codec`], the test kit's receiver code), and raw
//! NDJSON events over HTTP POST and WebSocket. Every transport only queues
//! what it decoded (`Store::submit`) and answers; a full queue
//! answers gRPC `UNAVAILABLE` / HTTP `503` with `Retry-After`.

pub(crate) mod events;
pub(crate) mod grpc;
pub(crate) mod http;

/// Seconds an exporter is told to wait when the queue is full.
pub(crate) const RETRY_AFTER_SECS: u64 = 1;
