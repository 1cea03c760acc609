//! # telemetry-init
//!
//! One line in `main` gives a Rust service JSON logs correlated with traces,
//! OpenTelemetry traces and logs exported over OTLP, W3C propagation and SLO
//! metrics; a guard flushes everything at exit.
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), telemetry_init::Error> {
//!     let _telemetry = telemetry_init::install()?;
//!     tracing::info!(user = 42, "started");
//!     Ok(())
//! }
//! ```
//!
//! Configuration comes from the standard OpenTelemetry environment variables
//! (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_SAMPLER`,
//! …); see [`config`] for every variable and [`builder`] for code settings.
//! With no endpoint configured nothing is sent over the network, but trace
//! ids are still created, so logs stay correlated and context propagates.
//!
//! # Composing with your own layers
//!
//! [`install`] sets the global `tracing` subscriber itself. A service that
//! already has layers (a file appender, an error reporter, tokio-console,
//! its own filters) builds instead, and adds our layer to its registry;
//! each layer keeps its own filter, so neither changes what the other
//! receives:
//!
//! ```no_run
//! use tracing_subscriber::filter::LevelFilter;
//! use tracing_subscriber::prelude::*;
//!
//! # fn main() -> Result<(), telemetry_init::Error> {
//! let telemetry = telemetry_init::builder().service_name("orders").build()?;
//! let debug_log = tracing_subscriber::fmt::layer()
//!     .with_ansi(false)
//!     .with_writer(std::sync::Mutex::new(std::fs::File::create("debug.log").unwrap()))
//!     .with_filter(LevelFilter::DEBUG);
//! let subscriber = tracing_subscriber::registry()
//!     .with(telemetry.layer()) // stdout lines, OTLP export, span events
//!     .with(debug_log);
//! // The subscriber becomes the global default, with everything else
//! // `install()` sets (metrics recorder, propagators, OpenTelemetry globals).
//! let _guard = telemetry.install_with(subscriber)?;
//! # Ok(()) }
//! ```
//!
//! [`Builder::build`] touches no global state; [`Telemetry`] gives the
//! layer, the providers, the metrics recorder, the handle and the guard.
//! The workspace's `examples/composed` is a complete service built this way.
//! See [`telemetry`] for exactly what is global.
//!
//! # Tests: the scoped mode
//!
//! [`Telemetry::set_default`] makes a built telemetry the current thread's
//! default `tracing` dispatcher and `metrics` recorder until its guard is
//! dropped, like `tracing::subscriber::set_default`, so each test can have
//! its own telemetry (and its own receiver) in one test binary. It covers
//! the current thread only (use a current-thread runtime) and leaves the
//! OpenTelemetry globals, the layers' propagation defaults and the `log`
//! bridge alone; [the details](telemetry#the-scoped-mode-tests).
//!
//! # Events on spans
//!
//! Events at or above `TELEMETRY_SPAN_EVENTS_LEVEL` (`warn` by default;
//! [`Builder::span_events_level`]) inside an exported span are recorded on
//! that span as span events as well as exported once as log records; an
//! event carrying an error value becomes an `exception` event:
//!
//! ```no_run
//! # let err = std::io::Error::other("issuer unreachable");
//! // In a request handler: one log record, and an `exception` event
//! // (exception.type, exception.message) on the request's SERVER span.
//! tracing::error!(error = &err as &dyn std::error::Error, "payment failed");
//! ```
//!
//! # A service, start to finish
//!
//! ```no_run
//! use axum::{Router, routing::get};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Logs, traces, metrics and propagation, configured from OTEL_* variables.
//!     let telemetry = telemetry_init::install()?;
//!     let app = Router::new()
//!         .route("/users/{id}", get(|| async { "user" }))
//!         // One SERVER span, one access-log line and the RED metrics per request.
//!         .layer(telemetry_init::layer())
//!         // `GET /metrics` for Prometheus (OpenMetrics with exemplars on request).
//!         .merge(telemetry.handle().metrics_router());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     // Stop on SIGTERM/Ctrl-C, drain within TELEMETRY_DRAIN_TIMEOUT...
//!     telemetry_init::shutdown::serve_with_drain(
//!         listener,
//!         app,
//!         telemetry_init::shutdown::signal(),
//!         telemetry_init::shutdown::drain_timeout()?,
//!     )
//!     .await?;
//!     // ...then flush everything within TELEMETRY_SHUTDOWN_TIMEOUT.
//!     let timeout = telemetry.handle().config().shutdown_timeout;
//!     let report = telemetry.shutdown(timeout).await;
//!     if !report.is_complete() {
//!         eprintln!("telemetry not fully delivered: {report}");
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Outgoing calls carry the context on: [`ClientLayer`] for tower/hyper
//! clients, `send_traced()` for reqwest ([`http::client`]); tonic servers
//! and clients take the same layers ([`http::server`], [`http::client`]).
//!
//! # Configuration
//!
//! Environment variables win over code ([`Builder`]), so operators can change
//! a deployed service without a rebuild. The ones most services set:
//!
//! | Variable | Default | What it does |
//! |---|---|---|
//! | `OTEL_SERVICE_NAME` | the executable's name | `service.name` on every signal |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | none: nothing is sent | the collector; `https://` for TLS |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | `grpc` | or `http/protobuf`, `http/json` |
//! | `OTEL_EXPORTER_OTLP_HEADERS` | none | e.g. an API key (redacted in every message) |
//! | `OTEL_TRACES_SAMPLER` | `parentbased_always_on` | and `OTEL_TRACES_SAMPLER_ARG` |
//! | `OTEL_PROPAGATORS` | `tracecontext,baggage` | or `none` |
//! | `RUST_LOG` | `info` | what reaches stdout |
//! | `TELEMETRY_LOG_FORMAT` | `json` | or `text` |
//! | `TELEMETRY_SPAN_EVENTS_LEVEL` | `warn` | events recorded on spans too |
//! | `TELEMETRY_SHUTDOWN_TIMEOUT` | `5000` ms | the flush's deadline |
//!
//! Per-signal variants (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, …), TLS,
//! limits, batching and the rest: [`config`] and `docs/configuration.md`.
//! An invalid value is an [`Error`] naming the variable, never a panic.
//!
//! # Feature flags
//!
//! | Feature | Default | Enables |
//! |---|---|---|
//! | `axum` | on | `http.route` from axum's `MatchedPath`, [`TelemetryHandle::metrics_router`], [`shutdown::serve_with_drain`] |
//! | `reqwest` | on | `send_traced()`: propagation and CLIENT spans for reqwest |
//! | `tonic` | on | gRPC conventions for tonic servers and clients (`rpc.*`, status from trailers) |
//!
//! With `default-features = false` the core (logs, traces, metrics, the
//! tower [`ServerLayer`] and [`ClientLayer`]) still works on any tower stack.
//!
//! # The shutdown contract
//!
//! - [`TelemetryGuard::shutdown`] flushes traces, then logs, then metrics and
//!   returns within its timeout whatever the collector does, with a
//!   [`ShutdownReport`] of what was delivered, dropped, failed or left.
//! - Dropping the guard does the same within `TELEMETRY_SHUTDOWN_TIMEOUT`,
//!   on any runtime (`current_thread` included) without deadlocking.
//! - A dead, slow or refusing collector never fails or slows a request:
//!   queues are bounded, drops are counted (`otel_sdk_*` metrics and the
//!   report), memory stays within the configured budget.
//! - The report and the `otel_sdk_*` self-health metrics are computed from
//!   one set of counters, so they agree: items still queued when the
//!   deadline passes are `failed` in the report and
//!   `error_type="shutdown_timeout"` in the metrics.
//!
//! # Performance
//!
//! The request thread only records: encoding and export run on a private
//! runtime. Per request, the full stack's cost is stated as ratios to a bare
//! service and to tower-http's `TraceLayer` with one JSON line, measured in
//! the same run (`docs/performance.md`, with the command, date, commit and
//! machine); CI gates the request path's instruction count against a
//! committed baseline.
//!
//! The opentelemetry crates this one is built on are re-exported: depend on
//! them through these paths so versions never disagree.
#![deny(missing_docs)]
// Denied, not forbidden: `span_activity` forwards one `unsafe` trait method
// (tracing-subscriber's `downcast_raw`) and says why with a local `allow`.
#![deny(unsafe_code)]

mod build;
pub mod config;
mod error;
mod guard;
pub mod http;
mod logs;
mod metrics_export;
mod pipeline;
pub mod redact;
mod resource;
#[cfg(feature = "axum")]
pub mod shutdown;
mod span_activity;
mod span_events;
pub mod telemetry;

use std::sync::Arc;

pub use config::{Builder, Config};
pub use error::Error;
pub use guard::{ShutdownReport, SignalReport, TelemetryGuard};
pub use http::{ClientLayer, ServerLayer};
pub use logs::current_trace_ids;
pub use telemetry::{ScopedTelemetry, Telemetry};

pub use opentelemetry;
pub use opentelemetry_otlp;
pub use opentelemetry_sdk;
pub use tracing_opentelemetry;

/// Installs telemetry configured from the environment only:
/// `builder().build()?.install()` (see [`Telemetry::install`] for what it
/// sets, and [`Builder::build`] to compose with your own layers instead).
///
/// Returns an error (never panics, never exits) when a variable holds an
/// invalid value or when telemetry is already installed in this process.
///
/// ```no_run
/// let _telemetry = telemetry_init::install().expect("telemetry configuration");
/// ```
pub fn install() -> Result<TelemetryGuard, Error> {
    builder().install()
}

/// Starts code configuration; environment variables still win.
///
/// ```no_run
/// let _telemetry = telemetry_init::builder()
///     .service_name("api")
///     .install()?;
/// # Ok::<(), telemetry_init::Error>(())
/// ```
pub fn builder() -> Builder {
    Builder::default()
}

/// The server middleware with its defaults: `.layer(telemetry_init::layer())`.
///
/// See [`http::server`] for what it records and how to configure it.
pub fn layer() -> ServerLayer {
    ServerLayer::new()
}

pub(crate) static GLOBAL_HANDLE: std::sync::OnceLock<TelemetryHandle> = std::sync::OnceLock::new();

/// The handle of the telemetry [`install`] set up in this process, if any
/// (`None` for one only built, or made a thread's default with
/// [`Telemetry::set_default`]: use [`Telemetry::handle`] there).
pub fn handle() -> Option<TelemetryHandle> {
    GLOBAL_HANDLE.get().cloned()
}

/// Shared access to what [`install`] set up; cheap to clone.
#[derive(Debug, Clone)]
pub struct TelemetryHandle {
    config: Arc<Config>,
    metrics: telemetry_init_metrics::MetricsHandle,
}

impl TelemetryHandle {
    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The metrics registry behind the `metrics` facade.
    pub fn metrics(&self) -> &telemetry_init_metrics::MetricsHandle {
        &self.metrics
    }

    /// Renders the metrics for a scrape, choosing OpenMetrics (with
    /// exemplars) or the Prometheus text format from the `Accept` header.
    /// Returns `(content_type, body)`.
    pub fn render_metrics(&self, accept: Option<&str>) -> (&'static str, String) {
        self.metrics.render(accept)
    }

    /// An axum router serving `GET /metrics` (merge it into your app).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), telemetry_init::Error> {
    /// let telemetry = telemetry_init::install()?;
    /// let app: axum::Router = axum::Router::new()
    ///     .merge(telemetry.handle().metrics_router());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "axum")]
    pub fn metrics_router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        let handle = self.clone();
        axum::Router::new().route(
            "/metrics",
            axum::routing::get(move |headers: ::http::HeaderMap| {
                let handle = handle.clone();
                async move {
                    let accept = headers
                        .get(::http::header::ACCEPT)
                        .and_then(|v| v.to_str().ok());
                    let (ct, body) = handle.render_metrics(accept);
                    ([(::http::header::CONTENT_TYPE, ct)], body)
                }
            }),
        )
    }
}

pub use telemetry_init_metrics as metrics;
