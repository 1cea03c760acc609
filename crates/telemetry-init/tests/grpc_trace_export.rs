//! Our own OTLP/gRPC trace path (hand-encoded protobuf on a tonic client)
//! honours the exporter options: gzip, headers, resource, and the shutdown
//! flush. A real receiver decodes what arrives.

use std::time::Duration;

use telemetry_init_testing::{OtlpReceiver, Signal, SpanKind, Transport};

#[test]
fn gzip_spans_arrive_decoded_with_their_resource() {
    let receiver = OtlpReceiver::start_blocking().expect("receiver");
    let guard = telemetry_init::builder()
        .service_name("grpc-export-test")
        .otlp_endpoint(receiver.grpc_endpoint())
        .stdout_filter("off")
        .env_lookup(|k| match k {
            "OTEL_EXPORTER_OTLP_COMPRESSION" => Some("gzip".into()),
            "OTEL_EXPORTER_OTLP_HEADERS" => Some("x-tenant=acme".into()),
            "OTEL_RESOURCE_ATTRIBUTES" => Some("deployment.environment.name=test".into()),
            _ => None,
        })
        .install()
        .expect("install");
    for i in 0..700_i64 {
        let span = tracing::info_span!("work", otel.kind = "server", i, note = "é\"quoted\"");
        span.in_scope(|| tracing::info!("inside"));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(guard.shutdown(Duration::from_secs(10)));
    assert_eq!(report.traces.exported, 700, "{report:?}");
    assert_eq!(report.traces.undelivered(), 0, "{report:?}");

    let handle = receiver.handle();
    let spans = handle.spans();
    let work: Vec<_> = spans.iter().filter(|s| s.name == "work").collect();
    assert_eq!(work.len(), 700);
    let s = work
        .iter()
        .find(|s| s.attr("i").and_then(|v| v.as_i64()) == Some(699));
    let s = s.expect("the last span, with its integer attribute");
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!(s.attr("note").and_then(|v| v.as_str()), Some("é\"quoted\""));
    assert_eq!(
        s.resource.get("service.name").and_then(|v| v.as_str()),
        Some("grpc-export-test")
    );
    assert_eq!(
        s.resource
            .get("deployment.environment.name")
            .and_then(|v| v.as_str()),
        Some("test")
    );
    assert!(s.end_unix_nanos >= s.start_unix_nanos);
    assert!(handle.export_requests(Transport::Grpc, Signal::Traces) >= 2);
    assert!(handle.stats().gzip_requests >= 2, "{:?}", handle.stats());
    // The exporter names itself, as OTLP asks.
    let ua = handle.last_user_agent(Signal::Traces).unwrap_or_default();
    assert!(
        ua.starts_with("OTel-OTLP-Exporter-Rust telemetry-init/"),
        "{ua}"
    );
}
