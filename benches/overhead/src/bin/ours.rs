//! Variant `telemetry-init`: the full stack exactly as a user sets it up, with
//! the library's defaults: JSON access log line per request, one SERVER span
//! per request exported over OTLP gRPC (the runner sets
//! `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_TRACES_SAMPLER=always_on`), log
//! records and RED metrics over OTLP, `/metrics`, W3C propagation.

use std::time::Duration;

#[tokio::main]
async fn main() {
    let telemetry = telemetry_init::builder()
        .service_name("overhead-bench")
        .install()
        .expect("install");

    let app = overhead_bench::app()
        .layer(telemetry_init::layer())
        .merge(telemetry.handle().metrics_router());
    overhead_bench::serve(app).await;

    let report = telemetry.shutdown(Duration::from_secs(5)).await;
    if !report.is_complete() {
        eprintln!("telemetry not fully delivered: {report}");
    }
}
