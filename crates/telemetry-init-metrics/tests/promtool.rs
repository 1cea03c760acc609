//! `promtool check metrics` reports nothing on our exposition.
//!
//! Needs `promtool` on `PATH` (Debian package `prometheus`): without it the
//! test fails in CI (`CI` set) or with `REQUIRE_PROMTOOL=1`, and skips
//! elsewhere.

use std::io::Write;
use std::process::{Command, Stdio};

use metrics::{Unit, counter, describe_gauge, describe_histogram, gauge, histogram};
use telemetry_init_metrics::{MetricsConfig, PipelineComponents, Signal, TelemetryRecorder};

/// Whether a missing tool fails the test instead of skipping it: in CI (`CI`
/// set, as scripts/test.sh does) or with `{var}=1`.
fn tool_required(var: &str) -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set(var)
}

fn promtool() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !tool_required("REQUIRE_PROMTOOL"),
            "promtool is not on PATH (apt-get install prometheus), and CI or REQUIRE_PROMTOOL=1 requires it"
        );
        eprintln!("promtool not on PATH: skipping (CI=1 or REQUIRE_PROMTOOL=1 makes this fail)");
    }
    found
}

fn exposition() -> String {
    let r = TelemetryRecorder::new(
        MetricsConfig::new()
            .constant_label("service.name", "demo")
            .cardinality_limit_for("app.", 2)
            .slo_threshold("http.server.request.duration", 0.3),
    )
    .unwrap();
    let handle = r.handle();
    metrics::with_local_recorder(&r, || {
        describe_histogram!(
            "http.server.request.duration",
            Unit::Seconds,
            "Duration of HTTP server requests."
        );
        describe_gauge!(
            "app.temperature",
            "Temperature with \"quotes\"\nand newline \\."
        );
        for (m, route, status, v) in [
            ("GET", "/users/{id}", "200", 0.12),
            ("POST", "/users", "201", 0.4),
            ("GET", "unmatched", "404", 0.002),
            ("GET", "/users/{id}", "500", 12.0),
        ] {
            histogram!("http.server.request.duration",
                "http.request.method" => m, "http.route" => route,
                "http.response.status_code" => status)
            .record(v);
        }
        gauge!("http.server.active_requests", "http.request.method" => "GET").set(2.0);
        histogram!("http.server.response.body.size").record(512.0);
        histogram!("rpc.server.duration", "rpc.system" => "grpc").record(0.01);
        for i in 0..5 {
            counter!("app.jobs", "job.id" => i.to_string(), "weird label!" => "a\"b\\c")
                .increment(1);
            gauge!("app.temperature", "sensor" => i.to_string()).set(f64::from(i) - 2.5);
        }
        counter!("requests_total").increment(1);
    });
    let health = handle.pipeline_health_with(PipelineComponents::otlp_http());
    for s in Signal::ALL {
        health.exported(s, 10);
        health.failed(s, 1, "timeout");
        health.processed(s, 11);
        health.dropped(s, 1);
        health.queue_size(s, 3);
        health.queue_capacity(s, 2048);
        health.export_duration(s, 0.02, None);
        health.export_duration(s, 5.0, Some("timeout"));
    }
    handle.render_prometheus()
}

#[test]
fn promtool_check_metrics_is_silent() {
    let Some(promtool) = promtool() else {
        return;
    };
    let text = exposition();
    // Sanity: the document is non-trivial.
    for needle in [
        "http_server_request_duration_seconds_bucket{",
        "otel_metric_overflow=\"true\"",
        "otel_sdk_processor_span_queue_capacity",
        "weird_label_=",
        "requests_total{service_name=\"demo\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool complained (status {:?}):\nstdout: {stdout}\nstderr: {stderr}\ninput:\n{text}",
        out.status
    );

    // And it does complain about a broken document, so silence means something.
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"# TYPE foo counter\nfoo 1\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.stdout.is_empty() || !out.stderr.is_empty() || !out.status.success());
}
