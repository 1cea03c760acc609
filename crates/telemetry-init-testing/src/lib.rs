//! An embeddable, in-process OTLP receiver for testing telemetry.
//!
//! [`OtlpReceiver::start`] binds two ephemeral loopback listeners:
//!
//! * **gRPC** ([`OtlpReceiver::grpc_endpoint`]): the OTLP `TraceService`,
//!   `LogsService` and `MetricsService`, gzip accepted;
//! * **HTTP** ([`OtlpReceiver::http_endpoint`]): `POST /v1/traces`,
//!   `/v1/logs` and `/v1/metrics` with `application/x-protobuf` or
//!   `application/json` (OTLP/JSON) bodies, `Content-Encoding: gzip`
//!   accepted; the answer is the `Export*ServiceResponse` in the request's
//!   encoding.
//!
//! Everything received is decoded into plain, serializable views
//! ([`ReceivedSpan`], [`ReceivedLog`], [`ReceivedMetric`]) kept in memory
//! up to a byte budget (oldest evicted first). Exporters always get their
//! answer at once: storage never applies back-pressure. Tests wait for data
//! with [`ReceiverHandle::wait_for_spans`] and friends, inject faults with
//! [`ReceiverHandle::set_behavior`] or, request by request and per signal,
//! with [`ReceiverHandle::script`] ([`Answer`]: OTLP `partial_success`,
//! retryable, throttling, too-large and permanent failures, the same on
//! gRPC, HTTP/protobuf and HTTP/JSON), and check properties with the
//! [`assert`](mod@assert) module. [`ReceiverHandle::snapshot_json`] renders traces as
//! trees with their logs, for a debug endpoint.
//!
//! The servers run on a dedicated thread with their own tokio runtime, so a
//! receiver can be started from a current-thread or multi-thread runtime (or
//! from plain code with [`OtlpReceiver::start_blocking`]), keeps answering
//! while the caller's runtime is busy, and may be shared by tests that each
//! run their own runtime. It stops when dropped or [`OtlpReceiver::shutdown`].
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use telemetry_init_testing::{assert, Behavior, OtlpReceiver};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = OtlpReceiver::start().await?;
//! // Point the code under test at it, always with an explicit `http://`:
//! let endpoint = receiver.grpc_endpoint(); // e.g. "http://127.0.0.1:41234"
//! # let _ = endpoint;
//! // … run the code under test …
//! let spans = receiver.wait_for_spans(2, Duration::from_secs(5)).await?;
//! assert::trace_propagated(&spans, "frontend", "backend")?;
//! let logs = receiver.logs();
//! assert::logs_correlated(&logs, &spans)?;
//! assert::no_secrets(&spans, &logs)?;
//!
//! // Make the collector look down, then hang, then come back:
//! receiver.set_behavior(Behavior::Unavailable);
//! receiver.set_behavior(Behavior::Hang);
//! receiver.set_behavior(Behavior::Accept);
//! receiver.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod access;
pub mod assert;
pub mod codec;
mod model;
#[cfg(target_os = "linux")]
pub mod netns;
mod receiver;
mod server;
mod size_limit;
pub mod snapshot;
mod store;
pub mod tls;
mod value;

pub use assert::AssertionError;
pub use model::{
    Exemplar, HistogramValue, MetricKind, MetricPoint, PointValue, ReceivedLog, ReceivedMetric,
    ReceivedSpan, Signal, SpanEvent, SpanKind, SpanLink, StatusCode, Temporality, Transport,
};
pub use receiver::{OtlpReceiver, ReceiverBuilder, ReceiverError, ReceiverHandle, WaitError};
pub use store::{
    Answer, Behavior, DEFAULT_MEMORY_BUDGET_BYTES, Failure, ReceiverStats, RequestCount,
};
pub use tls::{PkiFiles, PkiOptions, ReceiverTls, TestPki, TlsError};
pub use value::{MAX_VALUE_DEPTH, TOO_DEEP, Value};
