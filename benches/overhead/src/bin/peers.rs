//! Variant `peers`: the stack users assemble by hand today, as the crates'
//! READMEs set it up.
//!
//! * `init-tracing-opentelemetry` 0.44 `TracingConfig::production()`: JSON
//!   logs on stdout, spans exported over OTLP (the runner sets
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc`
//!   and `OTEL_TRACES_SAMPLER=always_on`).
//! * `axum-tracing-opentelemetry` 0.42 `OtelAxumLayer` (server span, W3C
//!   extraction) and `OtelInResponseLayer` (trace context in the response).
//! * `axum-prometheus` 0.10 `PrometheusMetricLayer::pair()` and `/metrics`.
//! * tower-http `TraceLayer` for the access log line (its README recommends
//!   combining the two): the span stays at tower-http's default DEBUG level
//!   (off under `info`, so it is not exported as a second span) and the
//!   response event is INFO, so each request prints one JSON line inside the
//!   OpenTelemetry span, with its `trace_id` - the same output as `ours`.

use axum::routing::get;
use axum_prometheus::PrometheusMetricLayer;
use axum_tracing_opentelemetry::middleware::{OtelAxumLayer, OtelInResponseLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

#[tokio::main]
async fn main() {
    let _guard = init_tracing_opentelemetry::TracingConfig::production()
        .init_subscriber()
        .expect("init_subscriber");

    let (prometheus_layer, metric_handle) = PrometheusMetricLayer::pair();
    let app = overhead_bench::app()
        .route("/metrics", get(|| async move { metric_handle.render() }))
        .layer(TraceLayer::new_for_http().on_response(DefaultOnResponse::new().level(Level::INFO)))
        .layer(OtelInResponseLayer)
        .layer(OtelAxumLayer::default())
        .layer(prometheus_layer);
    overhead_bench::serve(app).await;
}
