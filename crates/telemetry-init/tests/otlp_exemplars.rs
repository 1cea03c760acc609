//! Acceptance 2 of issue 11: histogram points pushed over OTLP carry
//! exemplars pointing at the sampled request they measured, on every
//! transport (gRPC, HTTP/protobuf, HTTP/JSON).
//!
//! A real axum service with the server layer runs on a loopback socket and
//! exports traces and metrics to the test kit's OTLP receiver. One request
//! arrives with a sampled `traceparent`, one with an unsampled one. The
//! test decodes the pushed `http.server.request.duration` points and finds
//! an exemplar whose trace id is the sampled request's and whose span id is
//! its server span's (as received over OTLP traces), sent exactly once, and
//! no exemplar naming the unsampled request.
//!
//! `install()` sets process-wide state, so each transport runs in a child
//! process: this binary re-executes itself with `EXEMPLAR_CASE` set.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use telemetry_init::config::BatchSettings;
use telemetry_init_testing::{OtlpReceiver, ReceivedMetric, SpanKind};

const SAMPLED_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const UNSAMPLED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const METRIC: &str = "http.server.request.duration";

/// Every exemplar of `METRIC` in everything received, with its point's
/// `http.route` and time.
fn exemplars(metrics: &[ReceivedMetric]) -> Vec<(String, telemetry_init_testing::Exemplar, u64)> {
    metrics
        .iter()
        .filter(|m| m.name == METRIC)
        .flat_map(|m| m.points.iter())
        .flat_map(|p| {
            let route = p
                .attributes
                .get("http.route")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            p.exemplars
                .iter()
                .map(move |e| (route.clone(), e.clone(), p.time_unix_nanos))
        })
        .collect()
}

fn child(protocol: &str) {
    let receiver = OtlpReceiver::start_blocking().expect("receiver");
    let endpoint = if protocol == "grpc" {
        receiver.grpc_endpoint()
    } else {
        receiver.http_endpoint()
    };
    let mut vars: HashMap<&str, String> = HashMap::new();
    vars.insert("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    vars.insert("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into());
    vars.insert("OTEL_METRIC_EXPORT_INTERVAL", "200".into());
    vars.insert("OTEL_LOGS_EXPORTER", "none".into());
    if let Ok(filter) = std::env::var("EXEMPLAR_FILTER") {
        vars.insert("OTEL_METRICS_EXEMPLAR_FILTER", filter);
    }
    let fast = BatchSettings {
        max_queue_size: 256,
        max_export_batch_size: 64,
        schedule_delay: Duration::from_millis(50),
        export_timeout: Duration::from_secs(5),
    };
    let guard = telemetry_init::builder()
        .service_name("exemplars")
        .stdout_filter("off")
        .span_batch(fast)
        .env_lookup(move |k| vars.get(k).cloned())
        .install()
        .expect("install");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let app = axum::Router::new()
            .route("/work/{id}", axum::routing::get(|| async { "done" }))
            .layer(telemetry_init::layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        for (trace, flags) in [(SAMPLED_TRACE, "01"), (UNSAMPLED_TRACE, "00")] {
            let r = client
                .get(format!("http://{addr}/work/7"))
                .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-{flags}"))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), 200);
        }

        let spans = receiver
            .wait_for_spans_where(1, Duration::from_secs(10), |s| {
                s.trace_id == SAMPLED_TRACE && s.kind == SpanKind::Server
            })
            .await
            .expect("the sampled request's server span");
        let server_span = spans
            .iter()
            .find(|s| s.trace_id == SAMPLED_TRACE && s.kind == SpanKind::Server)
            .expect("server span");

        if std::env::var("EXEMPLAR_FILTER").as_deref() == Ok("always_off") {
            // Pushes of the request's histogram arrive, without exemplars.
            receiver
                .wait_for_stats("three pushes of the duration", Duration::from_secs(10), |_| {
                    receiver.metrics().iter().filter(|m| m.name == METRIC).count() >= 3
                })
                .await
                .expect("pushes");
            println!("RESULT_OFF exemplars={}", exemplars(&receiver.metrics()).len());
            return;
        }
        // Wait for the exemplar, then for two more pushes, which must not
        // repeat it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let found = loop {
            let all = exemplars(&receiver.metrics());
            if let Some(found) = all
                .iter()
                .find(|(_, e, _)| e.trace_id.as_deref() == Some(SAMPLED_TRACE))
            {
                break found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no exemplar with trace id {SAMPLED_TRACE} on {METRIC}: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let pushes_then = receiver
            .metrics()
            .iter()
            .filter(|m| m.name == METRIC)
            .count();
        receiver
            .wait_for_stats("two more metric pushes", Duration::from_secs(10), |_| {
                receiver
                    .metrics()
                    .iter()
                    .filter(|m| m.name == METRIC)
                    .count()
                    >= pushes_then + 2
            })
            .await
            .ok();
        let all = exemplars(&receiver.metrics());
        let (route, exemplar, point_time) = found;
        let times_sent = all
            .iter()
            .filter(|(_, e, _)| e.trace_id.as_deref() == Some(SAMPLED_TRACE))
            .count();
        let unsampled = all
            .iter()
            .filter(|(_, e, _)| e.trace_id.as_deref() == Some(UNSAMPLED_TRACE))
            .count();
        println!(
            "RESULT route={route} span_match={} span_len={} value_ok={} time_ok={} times_sent={times_sent} unsampled={unsampled} pushes={}",
            exemplar.span_id.as_deref() == Some(server_span.span_id.as_str()),
            exemplar.span_id.as_deref().map_or(0, str::len),
            exemplar.value > 0.0 && exemplar.value < 5.0,
            exemplar.time_unix_nanos > 0 && exemplar.time_unix_nanos <= point_time,
            receiver
                .metrics()
                .iter()
                .filter(|m| m.name == METRIC)
                .count(),
        );
    });
    let _ = rt.block_on(guard.shutdown(Duration::from_secs(5)));
}

/// The entry point children run; a no-op in the parent.
#[test]
fn child_entry() {
    if let Ok(protocol) = std::env::var("EXEMPLAR_CASE") {
        child(&protocol);
    }
}

fn child_output(protocol: &str, filter: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env("EXEMPLAR_CASE", protocol)
        .env_remove("EXEMPLAR_FILTER")
        .env_remove("RUST_LOG");
    if let Some(f) = filter {
        cmd.env("EXEMPLAR_FILTER", f);
    }
    cmd.output().expect("spawn child")
}

fn run(protocol: &str) {
    if std::env::var("EXEMPLAR_CASE").is_ok() {
        return;
    }
    let out = child_output(protocol, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!("{protocol}:\n{stdout}\n{stderr}");
    assert!(out.status.success(), "child failed: {ctx}");
    let result = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no result: {ctx}"));
    // On the request's own point (its route), naming its server span (an
    // 8-byte id, 16 hex digits), with the measured duration, no later than
    // the point.
    for expected in [
        "route=/work/{id} ",
        "span_match=true ",
        "span_len=16 ",
        "value_ok=true ",
        "time_ok=true ",
        // Sent with one push, not repeated by the later ones.
        "times_sent=1 ",
        // An unsampled request's trace is in no backend: never an exemplar.
        "unsampled=0 ",
    ] {
        assert!(result.contains(expected), "{expected}missing: {ctx}");
    }
}

#[test]
fn grpc() {
    run("grpc");
}

#[test]
fn http_protobuf() {
    run("http/protobuf");
}

#[test]
fn http_json() {
    run("http/json");
}

/// `OTEL_METRICS_EXEMPLAR_FILTER=always_off`: the same sampled request, and
/// pushes without any exemplar.
#[test]
fn exemplar_filter_always_off() {
    if std::env::var("EXEMPLAR_CASE").is_ok() {
        return;
    }
    let out = child_output("grpc", Some("always_off"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ctx = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child failed: {ctx}");
    assert!(stdout.contains("RESULT_OFF exemplars=0\n"), "{ctx}");
}
