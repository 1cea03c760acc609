//! The demo exports exactly what it served, over every OTLP transport, and
//! its stdout lines carry the ids of the exported spans.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use support::Demo;
use telemetry_init_testing::{OtlpReceiver, SpanKind};

const N: usize = 12;

async fn run(protocol: &str) {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = if protocol == "grpc" {
        receiver.grpc_endpoint()
    } else {
        receiver.http_endpoint()
    };
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test,team=core",
        ),
        ("OTEL_SERVICE_NAME", "demo-under-test"),
    ]);
    let client = reqwest::Client::new();
    for i in 0..N {
        let res = client
            .get(demo.url(&format!("/users/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // Nothing is exported synchronously: the flush happens at SIGTERM.
    let (code, took) = demo.terminate(Duration::from_secs(10));
    assert_eq!(code, 0, "stderr: {:?}", demo.stderr());
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");

    let handle = receiver.handle();
    let spans = handle.spans();
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server)
        .collect();
    assert_eq!(
        servers.len(),
        N,
        "server spans over {protocol}: {servers:#?}"
    );
    for s in &servers {
        assert_eq!(s.name, "GET /users/{id}");
        assert_eq!(
            s.attr("http.route").and_then(|v| v.as_str()),
            Some("/users/{id}")
        );
        assert_eq!(
            s.attr("http.response.status_code").and_then(|v| v.as_i64()),
            Some(200)
        );
        for key in [
            "service.name",
            "service.version",
            "service.instance.id",
            "host.name",
            "process.pid",
            "os.type",
            "deployment.environment.name",
            "telemetry.sdk.name",
            "telemetry.sdk.language",
            "telemetry.sdk.version",
            "team",
        ] {
            assert!(
                s.resource.contains_key(key),
                "resource lacks {key}: {:?}",
                s.resource
            );
        }
        assert_eq!(s.service_name(), Some("demo-under-test"));
        assert_eq!(
            s.resource["deployment.environment.name"].as_str(),
            Some("test")
        );
    }

    // Every request's log records arrived, correlated with its span.
    let logs = handle.logs();
    let by_span: HashMap<&str, usize> =
        logs.iter()
            .filter_map(|l| l.span_id.as_deref())
            .fold(HashMap::new(), |mut m, id| {
                *m.entry(id).or_default() += 1;
                m
            });
    for s in &servers {
        // The handler's line (the access log is printed, not exported).
        assert_eq!(
            by_span.get(s.span_id.as_str()).copied().unwrap_or(0),
            1,
            "log records of span {}",
            s.span_id
        );
        let log = logs
            .iter()
            .find(|l| l.span_id.as_deref() == Some(&s.span_id))
            .unwrap();
        assert_eq!(log.trace_id.as_deref(), Some(s.trace_id.as_str()));
        assert_eq!(log.service_name(), Some("demo-under-test"));
    }

    // stdout: every line logged inside a request carries the ids of the
    // exported span that contains it.
    let exported: HashSet<(&str, &str)> = servers
        .iter()
        .map(|s| (s.trace_id.as_str(), s.span_id.as_str()))
        .collect();
    let lines = demo.json_lines();
    let in_request: Vec<_> = lines
        .iter()
        .filter(|l| l.get("request_id").is_some())
        .collect();
    assert_eq!(in_request.len(), 2 * N, "lines inside requests");
    for l in in_request {
        let ids = (
            l["trace_id"].as_str().expect("trace_id"),
            l["span_id"].as_str().expect("span_id"),
        );
        assert!(
            exported.contains(&ids),
            "line not tied to an exported span: {l}"
        );
        for key in ["timestamp", "level", "target", "message", "service"] {
            assert!(l.get(key).is_some(), "line lacks {key}: {l}");
        }
    }
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_over_grpc() {
    run("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_over_http_protobuf() {
    run("http/protobuf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_over_http_json() {
    run("http/json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoint_means_no_export_but_correlated_logs() {
    let mut demo = Demo::start(&[("DEMO_EMBEDDED_RECEIVER", "false")]);
    let client = reqwest::Client::new();
    let res = client.get(demo.url("/hello")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let (code, _) = demo.terminate(Duration::from_secs(10));
    assert_eq!(code, 0);
    let lines = demo.json_lines();
    let start = lines
        .iter()
        .find(|l| l["message"] == "telemetry installed")
        .expect("start-up line");
    for signal in ["traces", "logs", "metrics"] {
        assert!(
            start[signal]
                .as_str()
                .unwrap()
                .starts_with("off (no OTLP endpoint"),
            "{start}"
        );
    }
    let request_lines: Vec<_> = lines
        .iter()
        .filter(|l| l["request_id"].as_str() == Some(&rid))
        .collect();
    assert_eq!(request_lines.len(), 2);
    assert!(
        request_lines
            .iter()
            .all(|l| l["trace_id"].as_str().is_some_and(|t| t.len() == 32))
    );
    assert!(demo.stderr().is_empty(), "{:?}", demo.stderr());
}
