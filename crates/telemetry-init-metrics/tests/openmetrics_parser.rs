//! The OpenMetrics exposition parses with the reference Python parser
//! (`prometheus_client.openmetrics.parser`, strict about `# EOF`, `le`
//! canonical form, exemplar syntax, unit/name consistency).
//!
//! Needs `python3 -c "import prometheus_client"` to work (PyPI package
//! `prometheus-client`, which .ci/run installs): without it the test fails in
//! CI (`CI` set) or with `REQUIRE_OPENMETRICS_PARSER=1`, and skips elsewhere.

use std::io::Write;
use std::process::{Command, Stdio};

use metrics::{Unit, counter, describe_histogram, gauge, histogram};
use opentelemetry::trace::{SpanId, TraceId};
use telemetry_init_metrics::{MetricsConfig, Signal, TelemetryRecorder};

const SCRIPT: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = sys.stdin.read()
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        ex = ""
        if s.exemplar is not None:
            ex = " exemplar=%s,%s,%r" % (s.exemplar.labels["trace_id"], s.exemplar.labels["span_id"], s.exemplar.value)
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s|%s|%s|%r%s" % (fam.type, s.name, labels, s.value, ex))
"#;

/// Whether a missing tool fails the test instead of skipping it: in CI (`CI`
/// set, as scripts/test.sh does) or with `{var}=1`.
fn tool_required(var: &str) -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set(var)
}

fn parser_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !tool_required("REQUIRE_OPENMETRICS_PARSER"),
            "python3 cannot import prometheus_client (python3 -m pip install prometheus-client), \
             and CI or REQUIRE_OPENMETRICS_PARSER=1 requires it"
        );
        eprintln!(
            "python3 prometheus_client not available: skipping (CI=1 or REQUIRE_OPENMETRICS_PARSER=1 makes this fail)"
        );
    }
    ok
}

fn fixed_context() -> Option<(TraceId, SpanId)> {
    Some((
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
    ))
}

#[test]
fn reference_parser_accepts_openmetrics_output() {
    if !parser_available() {
        return;
    }
    let r = TelemetryRecorder::new(
        MetricsConfig::new()
            .trace_context(Some(fixed_context))
            .constant_label("service.name", "demo")
            .cardinality_limit_for("app.", 1),
    )
    .unwrap();
    metrics::with_local_recorder(&r, || {
        describe_histogram!(
            "http.server.request.duration",
            Unit::Seconds,
            "Duration \"of\" requests."
        );
        histogram!("http.server.request.duration", "http.route" => "/users/{id}").record(0.2);
        histogram!("http.server.request.duration", "http.route" => "/users/{id}").record(42.0);
        gauge!("http.server.active_requests").set(1.0);
        counter!("app.jobs", "id" => "1").increment(1);
        counter!("app.jobs", "id" => "2").increment(1);
        histogram!("http.server.response.body.size").record(100.0);
    });
    r.handle().pipeline_health().exported(Signal::Traces, 3);
    let text = r.handle().render_openmetrics();

    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "parser rejected the exposition:\n{}\ninput:\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let expect = [
        "histogram|http_server_request_duration_seconds_bucket|http_route=/users/{id},le=0.1,service_name=demo|0",
        "histogram|http_server_request_duration_seconds_bucket|http_route=/users/{id},le=0.25,service_name=demo|1 exemplar=4bf92f3577b34da6a3ce929d0e0e4736,00f067aa0ba902b7,0.2",
        "histogram|http_server_request_duration_seconds_bucket|http_route=/users/{id},le=10.0,service_name=demo|1",
        "histogram|http_server_request_duration_seconds_bucket|http_route=/users/{id},le=+Inf,service_name=demo|2 exemplar=4bf92f3577b34da6a3ce929d0e0e4736,00f067aa0ba902b7,42",
        "histogram|http_server_request_duration_seconds_count|http_route=/users/{id},service_name=demo|2",
        "histogram|http_server_request_duration_seconds_sum|http_route=/users/{id},service_name=demo|42.2",
        "gauge|http_server_active_requests|service_name=demo|1",
        "counter|app_jobs_total|id=1,service_name=demo|1",
        "counter|app_jobs_total|otel_metric_overflow=true|1",
        "counter|otel_sdk_exporter_span_exported_total|otel_component_type=otlp_grpc_span_exporter,service_name=demo|3",
        // Byte histograms get the SDK's default (non-seconds) boundaries.
        "histogram|http_server_response_body_size_bytes_bucket|le=100.0,service_name=demo|1 exemplar=4bf92f3577b34da6a3ce929d0e0e4736,00f067aa0ba902b7,100",
        "histogram|http_server_response_body_size_bytes_bucket|le=75.0,service_name=demo|0",
        "histogram|http_server_response_body_size_bytes_sum|service_name=demo|100",
    ];
    for e in expect {
        assert!(
            lines.contains(&e),
            "missing parsed sample {e:?} in\n{stdout}\ninput:\n{text}"
        );
    }
}
