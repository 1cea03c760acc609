//! The viewer over real sockets: every ingest transport, the store's
//! guarantees and every query endpoint.

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

#[tokio::test]
async fn grpc_traces_and_logs_are_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = builder(&dir).start().await.unwrap();
    let mut client = TraceServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    let t0 = now_ns() - 5_000_000_000;
    let mut spans = vec![server_span(1, 1, "/users/{id}", 200, t0, 1500)];
    spans.push(child_span(
        1,
        2,
        1,
        "SELECT users",
        SpanKind::Client,
        t0 + 100_000,
        800,
    ));
    client.export(traces("frontend", spans)).await.unwrap();
    let mut logs_client = LogsServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    logs_client
        .export(logs(
            "frontend",
            vec![log("user loaded", 9, "INFO", Some((1, 1)), t0 + 200_000)],
        ))
        .await
        .unwrap();
    viewer.store().flush().await.unwrap();

    let (status, page) = get_json(&viewer, "/api/traces").await;
    assert_eq!(status, 200, "{page}");
    let traces = page["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "{page}");
    assert_eq!(traces[0]["trace_id"], hex(&trace_id(1)));
    assert_eq!(traces[0]["root_name"], "GET /users/{id}");
    assert_eq!(traces[0]["service"], "frontend");
    assert_eq!(traces[0]["span_count"], 2);
    assert_eq!(traces[0]["duration_us"], 1500);
    assert_eq!(traces[0]["error"], false);
    assert!(page["next_cursor"].is_null());

    let (status, t) = get_json(&viewer, &format!("/api/traces/{}", hex(&trace_id(1)))).await;
    assert_eq!(status, 200, "{t}");
    let spans = t["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0]["kind"], "SERVER");
    assert_eq!(spans[0]["attributes"]["http.response.status_code"], 200);
    assert_eq!(spans[1]["parent_span_id"], hex(&span_id(1)));
    assert_eq!(t["logs"][0]["body"], "user loaded");
    assert_eq!(t["logs"][0]["span_id"], hex(&span_id(1)));

    let (status, l) = get_json(&viewer, "/api/logs?service=frontend&level=info").await;
    assert_eq!(status, 200);
    assert_eq!(l["logs"].as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l["logs"][0]["trace_id"], hex(&trace_id(1)));
    assert_eq!(l["logs"][0]["attributes"]["user.id"], 7);
    let (_, l) = get_json(&viewer, "/api/logs?level=error").await;
    assert_eq!(l["logs"].as_array().unwrap().len(), 0);

    let (status, e) = get_json(&viewer, &format!("/api/traces/{}", hex(&trace_id(99)))).await;
    assert_eq!(status, 404);
    assert!(e["error"].as_str().unwrap().contains("not found"));
    let (status, e) = get_json(&viewer, "/api/traces/not-hex").await;
    assert_eq!(status, 400);
    assert!(e["error"].is_string());

    let mut metrics_client = MetricsServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    metrics_client
        .export(metrics("frontend", now_ns(), 5))
        .await
        .unwrap();
    viewer.store().flush().await.unwrap();
    let (_, m) = get_json(&viewer, "/api/metrics").await;
    let names: Vec<&str> = m
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["http.server.request.duration", "requests_total"],
        "{m}"
    );
    viewer.shutdown().await;
    let _ = Duration::ZERO;
}

fn http_url(viewer: &telemetry_init_viewer::Viewer, path: &str) -> String {
    format!("{}{path}", viewer.http_endpoint())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sdk_span(trace: u128, span: u64, name: &str) -> opentelemetry_sdk::trace::SpanData {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    let start = std::time::SystemTime::now() - Duration::from_secs(2);
    opentelemetry_sdk::trace::SpanData {
        span_context: SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: opentelemetry::trace::SpanKind::Server,
        name: name.to_owned().into(),
        start_time: start,
        end_time: start + Duration::from_millis(3),
        attributes: vec![
            KeyValue::new("http.route", "/sdk"),
            KeyValue::new("http.response.status_code", 503_i64),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::error("unavailable"),
        instrumentation_scope: opentelemetry::InstrumentationScope::builder("sdk-test").build(),
    }
}

/// The OpenTelemetry SDK's own exporters, over gRPC (gzip), HTTP/protobuf
/// (gzip) and HTTP/JSON, land spans the API returns exactly.
#[tokio::test]
async fn sdk_exporters_on_every_transport() {
    use opentelemetry_otlp::{
        Compression, Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
    };
    use opentelemetry_sdk::trace::SpanExporter as _;
    let dir = tempfile::tempdir().unwrap();
    let viewer = builder(&dir).start().await.unwrap();
    let mut exporters = [
        (
            "grpc+gzip",
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(viewer.grpc_endpoint())
                .with_compression(Compression::Gzip)
                .build()
                .unwrap(),
        ),
        (
            "http/protobuf+gzip",
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(http_url(&viewer, "/v1/traces"))
                .with_compression(Compression::Gzip)
                .build()
                .unwrap(),
        ),
        (
            "http/json",
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpJson)
                .with_endpoint(http_url(&viewer, "/v1/traces"))
                .build()
                .unwrap(),
        ),
    ];
    for (i, (name, exporter)) in exporters.iter_mut().enumerate() {
        exporter
            .export(vec![sdk_span(0x1000 + i as u128, 0x77 + i as u64, name)])
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    viewer.store().flush().await.unwrap();
    for (i, (name, _)) in exporters.iter().enumerate() {
        let id = format!("{:032x}", 0x1000 + i as u128);
        let (status, t) = get_json(&viewer, &format!("/api/traces/{id}")).await;
        assert_eq!(status, 200, "{name}: {t}");
        let span = &t["spans"][0];
        assert_eq!(span["name"], *name);
        assert_eq!(span["span_id"], format!("{:016x}", 0x77 + i as u64));
        assert_eq!(span["kind"], "SERVER");
        assert_eq!(span["status_code"], "ERROR");
        assert_eq!(span["status_message"], "unavailable");
        assert_eq!(span["duration_us"], 3000);
        assert_eq!(
            span["attributes"]["http.response.status_code"], 503,
            "{name}"
        );
        assert_eq!(span["scope"], "sdk-test");
    }
    let (_, page) = get_json(&viewer, "/api/traces?error=true&route=/sdk").await;
    assert_eq!(page["traces"].as_array().unwrap().len(), 3, "{page}");
    viewer.shutdown().await;
}

/// Hand-encoded protobuf and OTLP/JSON bodies over HTTP, plain and gzip,
/// for logs and metrics; malformed requests are refused with the
/// receiver's statuses.
#[tokio::test]
async fn http_protobuf_and_json_logs_and_metrics() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let viewer = builder(&dir).start().await.unwrap();
    let client = reqwest::Client::new();
    let t = now_ns() - 1_000_000_000;
    let body = logs("billing", vec![log("charged card", 13, "WARN", None, t)]).encode_to_vec();
    let resp = client
        .post(http_url(&viewer, "/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gzip(&body))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let json = serde_json::to_vec(&logs(
        "billing",
        vec![log("refund issued", 9, "INFO", Some((5, 5)), t + 1000)],
    ))
    .unwrap();
    let resp = client
        .post(http_url(&viewer, "/v1/logs"))
        .header("content-type", "application/json")
        .body(json)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let resp = client
        .post(http_url(&viewer, "/v1/metrics"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&metrics("billing", t, 3)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // refusals
    let resp = client
        .post(http_url(&viewer, "/v1/logs"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let resp = client
        .post(http_url(&viewer, "/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = client
        .post(http_url(&viewer, "/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    viewer.store().flush().await.unwrap();

    let (_, l) = get_json(&viewer, "/api/logs?service=billing").await;
    let bodies: Vec<&str> = l["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["refund issued", "charged card"],
        "newest first: {l}"
    );
    let (_, l) = get_json(&viewer, "/api/logs?q=CARD").await;
    assert_eq!(l["logs"].as_array().unwrap().len(), 1, "{l}");
    let (_, l) = get_json(&viewer, "/api/logs?level=warn").await;
    assert_eq!(l["logs"][0]["severity_text"], "WARN", "{l}");
    assert_eq!(l["logs"].as_array().unwrap().len(), 1);
    let (_, l) = get_json(
        &viewer,
        &format!("/api/logs?trace_id={}", hex(&trace_id(5))),
    )
    .await;
    assert_eq!(l["logs"][0]["body"], "refund issued", "{l}");
    let (_, l) = get_json(&viewer, "/api/logs?attr=user.id=7").await;
    assert_eq!(l["logs"].as_array().unwrap().len(), 2, "{l}");
    let (_, l) = get_json(&viewer, "/api/logs?attr=user.id=8").await;
    assert_eq!(l["logs"].as_array().unwrap().len(), 0, "{l}");
    let (status, e) = get_json(&viewer, "/api/logs?level=loud").await;
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().contains("level"), "{e}");
    // paging
    let (_, p1) = get_json(&viewer, "/api/logs?limit=1").await;
    assert_eq!(p1["logs"][0]["body"], "refund issued");
    let cursor = p1["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, p2) = get_json(&viewer, &format!("/api/logs?limit=1&cursor={cursor}")).await;
    assert_eq!(p2["logs"][0]["body"], "charged card");
    assert!(p2["next_cursor"].is_null(), "{p2}");

    let (_, m) = get_json(&viewer, "/api/metrics").await;
    let hist = m
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "http.server.request.duration")
        .unwrap();
    assert_eq!(hist["kind"], "histogram");
    assert_eq!(hist["unit"], "s");
    assert_eq!(hist["series_count"], 1);
    let (status, h) = get_json(&viewer, "/api/metrics/http.server.request.duration").await;
    assert_eq!(status, 200, "{h}");
    let p = &h["series"][0]["points"][0];
    assert_eq!(p["count"], 4);
    assert_eq!(p["sum"], 1.0);
    assert_eq!(p["value"], 0.25);
    assert_eq!(p["bounds"], serde_json::json!([0.1, 0.5]));
    assert_eq!(p["bucket_counts"], serde_json::json!([1, 2, 1]));
    assert_eq!(h["series"][0]["attributes"]["http.route"], "/users/{id}");
    let (_, c) = get_json(&viewer, "/api/metrics/requests_total").await;
    assert_eq!(c["kind"], "counter");
    assert_eq!(c["series"][0]["points"][0]["value"], 3.0);
    let (status, _) = get_json(&viewer, "/api/metrics/nope").await;
    assert_eq!(status, 404);
    viewer.shutdown().await;
}

/// `curl`-style NDJSON POSTs and a WebSocket client are answered with the
/// count stored so far; each event keeps its stream's metadata, secrets
/// redacted.
#[tokio::test]
async fn raw_events_over_post_and_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let viewer = builder(&dir).start().await.unwrap();
    let client = reqwest::Client::new();
    let post = |body: &'static str| {
        client
            .post(http_url(&viewer, "/v1/events?stream=deploys"))
            .header("content-type", "application/x-ndjson")
            .header("authorization", "Bearer s3cr3t")
            .header("x-team", "payments")
            .body(body)
            .send()
    };
    let r: serde_json::Value = post("{\"event\":\"deploy\",\"v\":1}\n\n{\"event\":\"migrate\"}\n")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, serde_json::json!({"stored": 2, "accepted": 2}));
    let r: serde_json::Value = post("{\"event\":\"rollback\"}")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, serde_json::json!({"stored": 3, "accepted": 1}));
    let resp = post("{\"ok\":true}\n{not json}\n").await.unwrap();
    assert_eq!(resp.status(), 400);
    let e: serde_json::Value = resp.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().starts_with("line 2"), "{e}");

    let url = format!("ws://{}/v1/events/ws?stream=browser", viewer.http_addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text("{\"click\":1}")).await.unwrap();
    let answer = ws.next().await.unwrap().unwrap();
    assert_eq!(answer.to_text().unwrap(), r#"{"stored":1}"#);
    ws.send(Message::text("{\"click\":2}\n{\"click\":3}\n"))
        .await
        .unwrap();
    let answer = ws.next().await.unwrap().unwrap();
    assert_eq!(answer.to_text().unwrap(), r#"{"stored":3}"#);
    ws.send(Message::text("nope")).await.unwrap();
    let answer: serde_json::Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("not JSON"),
        "{answer}"
    );
    ws.close(None).await.unwrap();
    viewer.store().flush().await.unwrap();

    let (_, ev) = get_json(&viewer, "/api/events?stream=deploys").await;
    let ev = ev.as_array().unwrap();
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0]["event"]["event"], "rollback");
    assert_eq!(ev[2]["event"]["v"], 1);
    assert_eq!(ev[0]["transport"], "http");
    assert_eq!(ev[0]["headers"]["authorization"], "[REDACTED]");
    assert_eq!(ev[0]["headers"]["x-team"], "payments");
    assert!(
        ev[0]["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{}",
        ev[0]
    );
    assert!(!serde_json::to_string(&ev).unwrap().contains("s3cr3t"));
    let (_, ev) = get_json(&viewer, "/api/events?stream=browser&limit=2").await;
    assert_eq!(ev.as_array().unwrap().len(), 2);
    assert_eq!(ev[0]["transport"], "websocket");
    assert_eq!(ev[0]["event"]["click"], 3);
    viewer.shutdown().await;
}

/// Everything acknowledged before shutdown is there after a restart on the
/// same file, and event counts continue.
#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = builder(&dir).start().await.unwrap();
    let mut client = TraceServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    let t0 = now_ns() - 1_000_000_000;
    for i in 0..20 {
        client
            .export(traces(
                "api",
                vec![server_span(100 + i, 1, "/orders", 200, t0, 100)],
            ))
            .await
            .unwrap();
    }
    let r: serde_json::Value = reqwest::Client::new()
        .post(http_url(&viewer, "/v1/events?stream=s"))
        .body("{\"a\":1}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["stored"], 1);
    // No flush: shutdown must commit what was acknowledged.
    viewer.shutdown().await;

    let viewer = builder(&dir).start().await.unwrap();
    let (_, page) = get_json(&viewer, "/api/traces?limit=100").await;
    assert_eq!(page["traces"].as_array().unwrap().len(), 20, "{page}");
    let (_, s) = get_json(&viewer, "/api/services").await;
    assert_eq!(s[0]["service"], "api");
    assert_eq!(s[0]["span_count"], 20);
    let r: serde_json::Value = reqwest::Client::new()
        .post(http_url(&viewer, "/v1/events?stream=s"))
        .body("{\"a\":2}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["stored"], 2, "the count continues across restarts");
    viewer.shutdown().await;
}

/// A viewer enforcing `retention` every 50 ms, and an OTLP/gRPC trace client for it.
async fn start_with_retention(
    dir: &tempfile::TempDir,
    retention: telemetry_init_viewer::RetentionConfig,
) -> (
    telemetry_init_viewer::Viewer,
    TraceServiceClient<tonic::transport::Channel>,
) {
    let viewer = builder(dir)
        .retention(retention)
        .retention_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let client = TraceServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    (viewer, client)
}

/// Retention deletes by age and by row count, continuously, per signal.
#[tokio::test]
async fn retention_by_age_and_by_rows() {
    use telemetry_init_viewer::{RetentionConfig, RetentionPolicy};
    let dir = tempfile::tempdir().unwrap();
    let retention = RetentionConfig {
        spans: RetentionPolicy::new(Duration::from_secs(3600), 5),
        logs: RetentionPolicy {
            max_age: Some(Duration::from_secs(600)),
            max_rows: None,
            max_bytes: None,
        },
        ..RetentionConfig::default()
    };
    let (viewer, mut client) = start_with_retention(&dir, retention).await;
    let now = now_ns();
    let old = now - 2 * 3600 * 1_000_000_000;
    // 2 spans too old, then 8 recent ones: age removes 2, rows keep the newest 5.
    let mut spans: Vec<_> = (0..2)
        .map(|i| server_span(200 + i, 1, "/old", 200, old, 10))
        .collect();
    spans.extend(
        (0..8).map(|i| server_span(300 + i, 1, "/new", 200, now - 1_000_000_000 + i * 1000, 10)),
    );
    client.export(traces("r", spans)).await.unwrap();
    let mut logs_client = LogsServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    logs_client
        .export(logs(
            "r",
            vec![
                log("stale", 9, "INFO", None, now - 3600 * 1_000_000_000),
                log("fresh", 9, "INFO", None, now),
            ],
        ))
        .await
        .unwrap();
    viewer.store().flush().await.unwrap();
    // Continuous enforcement: wait (bounded) for the next passes.
    let mut remaining = (0, 0);
    for _ in 0..100 {
        remaining = viewer
            .store()
            .read(|c| {
                c.query_row(
                    "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM logs)",
                    [],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )
            })
            .await
            .unwrap();
        if remaining == (5, 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(remaining, (5, 1), "spans, logs left");
    let (_, page) = get_json(
        &viewer,
        &format!("/api/traces?limit=100&from_us={}", (old / 1000) as i64 - 1),
    )
    .await;
    let ids: Vec<String> = page["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (303..308).rev().map(|i| hex(&trace_id(i))).collect();
    assert_eq!(ids, expected, "the newest five survive");
    let bodies = viewer
        .store()
        .read(|c| {
            let mut s = c.prepare("SELECT body FROM logs")?;
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .unwrap();
    assert_eq!(bodies, ["fresh"]);
    viewer.shutdown().await;
}

/// A size limit keeps a signal's tables and indexes within the bytes given
/// (measured with `dbstat`), deleting the oldest rows, and leaves the other
/// signals alone.
#[tokio::test]
async fn retention_by_bytes_on_disk() {
    use telemetry_init_viewer::{RetentionConfig, RetentionPolicy};
    const LIMIT: u64 = 256 << 10;
    let dir = tempfile::tempdir().unwrap();
    let retention = RetentionConfig {
        spans: RetentionPolicy::unlimited().with_max_bytes(LIMIT),
        logs: RetentionPolicy::unlimited(),
        ..RetentionConfig::default()
    };
    let (viewer, mut client) = start_with_retention(&dir, retention).await;
    let now = now_ns();
    // About 1 MiB of spans (each with a 600-byte attribute), in insertion order.
    let pad = "x".repeat(600);
    for batch in 0..20u64 {
        let spans: Vec<_> = (0..100u64)
            .map(|i| {
                let n = batch * 100 + i;
                let mut s = server_span(10_000 + n, 1, "/sized", 200, now - 1_000_000_000 + n, 10);
                s.attributes.push(kv("pad", pad.as_str()));
                s
            })
            .collect();
        client.export(traces("sized", spans)).await.unwrap();
    }
    let mut logs_client = LogsServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    logs_client
        .export(logs("sized", vec![log("kept", 9, "INFO", None, now)]))
        .await
        .unwrap();
    viewer.store().flush().await.unwrap();
    let bytes = |c: &rusqlite::Connection| -> rusqlite::Result<(i64, i64, i64, i64)> {
        c.query_row(
            "SELECT (SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN \
                 (SELECT name FROM sqlite_schema WHERE tbl_name IN ('spans', 'span_events', 'span_links'))), \
                 (SELECT count(*) FROM spans), (SELECT min(id) FROM spans), (SELECT count(*) FROM logs)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
    };
    let mut last = (0, 0, 0, 0);
    for _ in 0..100 {
        last = viewer.store().read(bytes).await.unwrap();
        if last.1 < 2000 && (last.0 as u64) <= LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (span_bytes, spans, oldest, n_logs) = last;
    assert!(
        spans > 0 && spans < 2000,
        "some spans deleted, some kept: {spans}"
    );
    assert!(
        (span_bytes as u64) <= LIMIT,
        "spans use {span_bytes} B on disk, limit {LIMIT}"
    );
    // Deleted oldest first: the survivors are the newest rows.
    let newest: i64 = viewer
        .store()
        .read(|c| c.query_row("SELECT max(id) FROM spans", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(
        newest - oldest + 1,
        spans,
        "a contiguous run of the newest rows"
    );
    assert_eq!(n_logs, 1, "the logs (no size limit) are untouched");
    viewer.shutdown().await;
}

/// A full queue answers gRPC UNAVAILABLE and HTTP 503 with Retry-After at
/// once; what was accepted is all written once the writer can go on.
#[tokio::test]
async fn back_pressure_when_the_writer_is_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = builder(&dir).queue_len(2).start().await.unwrap();
    // Another connection holds the write lock: the writer waits (busy_timeout).
    let blocker = rusqlite::Connection::open(dir.path().join("viewer.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE;").unwrap();
    let mut client = TraceServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    let t0 = now_ns() - 1_000_000_000;
    let mut accepted = 0u64;
    let mut refused = None;
    for i in 0..50 {
        match client
            .export(traces(
                "bp",
                vec![server_span(500 + i, 1, "/bp", 200, t0, 10)],
            ))
            .await
        {
            Ok(_) => accepted += 1,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let status = refused.expect("the queue filled up");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(accepted >= 2, "accepted {accepted}");
    // The writer may not have taken its first batch off the queue when gRPC
    // was refused; once it has, the queue fills again within a few requests.
    let mut http_refused = None;
    for i in 0..10 {
        let resp = reqwest::Client::new()
            .post(http_url(&viewer, "/v1/traces"))
            .header("content-type", "application/json")
            .body(
                serde_json::to_vec(&traces(
                    "bp",
                    vec![server_span(900 + i, 1, "/bp", 200, t0, 10)],
                ))
                .unwrap(),
            )
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => accepted += 1,
            503 => {
                http_refused = Some(resp);
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let resp = http_refused.expect("HTTP refused too");
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(accepted <= 8, "accepted {accepted} with a queue of 2");
    blocker.execute_batch("ROLLBACK;").unwrap();
    viewer.store().flush().await.unwrap();
    let (_, page) = get_json(&viewer, "/api/traces?service=bp&limit=100").await;
    assert_eq!(
        page["traces"].as_array().unwrap().len() as u64,
        accepted,
        "every acknowledged span is stored"
    );
    // And ingestion works again.
    client
        .export(traces("bp", vec![server_span(777, 1, "/bp", 200, t0, 10)]))
        .await
        .unwrap();
    viewer.shutdown().await;
}

/// RED, services, trace search filters and paging, OTLP/JSON export.
#[tokio::test]
async fn red_services_search_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = builder(&dir).start().await.unwrap();
    let mut client = TraceServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    let t0 = now_ns() - 60_000_000_000;
    // /users/{id}: durations 1..=100 ms, every 10th a 500.
    let spans: Vec<_> = (1..=100u64)
        .map(|i| {
            let status = if i % 10 == 0 { 500 } else { 200 };
            server_span(
                1000 + i,
                1,
                "/users/{id}",
                status,
                t0 + i * 1_000_000,
                i * 1000,
            )
        })
        .collect();
    client.export(traces("shop", spans)).await.unwrap();
    // /health: 10 fast ones, plus a trace with a CLIENT child and a link/event.
    let mut spans: Vec<_> = (1..=10u64)
        .map(|i| server_span(2000 + i, 1, "/health", 200, t0 + i * 1_000_000, 50))
        .collect();
    let mut child = child_span(
        2001,
        2,
        1,
        "GET downstream",
        SpanKind::Client,
        t0 + 1_000_000,
        20,
    );
    child
        .events
        .push(opentelemetry_proto::tonic::trace::v1::span::Event {
            time_unix_nano: t0 + 1_000_010,
            name: "retry".into(),
            attributes: vec![kv("attempt", 2)],
            dropped_attributes_count: 0,
        });
    child
        .links
        .push(opentelemetry_proto::tonic::trace::v1::span::Link {
            trace_id: trace_id(1001),
            span_id: span_id(1),
            attributes: vec![kv("link.kind", "follows")],
            ..Default::default()
        });
    spans.push(child);
    client.export(traces("gateway", spans)).await.unwrap();
    viewer.store().flush().await.unwrap();

    let (_, s) = get_json(&viewer, "/api/services").await;
    let mut names: Vec<(String, u64)> = s
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_owned(),
                s["span_count"].as_u64().unwrap(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [("gateway".to_owned(), 11), ("shop".to_owned(), 100)]
    );

    let (status, red) = get_json(&viewer, "/api/red?service=shop").await;
    assert_eq!(status, 200, "{red}");
    let red = red.as_array().unwrap();
    assert_eq!(red.len(), 1, "{red:?}");
    let r = &red[0];
    assert_eq!(r["route"], "/users/{id}");
    assert_eq!(r["count"], 100);
    assert_eq!(r["errors"], 10);
    assert_eq!(r["error_ratio"], 0.1);
    assert_eq!(r["p50_us"], 50_000);
    assert_eq!(r["p95_us"], 95_000);
    assert_eq!(r["p99_us"], 99_000);
    assert!(
        (r["rate_per_s"].as_f64().unwrap() - 100.0 / 3600.0).abs() < 1e-3,
        "{r}"
    );
    let (_, all) = get_json(&viewer, "/api/red").await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");

    // filters
    let count = |v: &serde_json::Value| v["traces"].as_array().unwrap().len();
    let (_, p) = get_json(&viewer, "/api/traces?service=shop&error=true&limit=100").await;
    assert_eq!(count(&p), 10);
    assert!(
        p["traces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["error"] == true)
    );
    let (_, p) = get_json(&viewer, "/api/traces?service=shop&min_us=90000&limit=100").await;
    assert_eq!(count(&p), 11, "90..=100 ms");
    let (_, p) = get_json(&viewer, "/api/traces?service=shop&max_us=5000&limit=100").await;
    assert_eq!(count(&p), 5);
    let (_, p) = get_json(&viewer, "/api/traces?route=/health&limit=100").await;
    assert_eq!(count(&p), 10);
    // http.route is stored in a column, not the JSON: the filter still finds it
    let (_, p) = get_json(&viewer, "/api/traces?attr=http.route=/health&limit=100").await;
    assert_eq!(count(&p), 10);
    let (_, p) = get_json(
        &viewer,
        "/api/traces?attr=http.response.status_code=500&limit=100",
    )
    .await;
    assert_eq!(count(&p), 10);
    let (_, p) = get_json(&viewer, "/api/traces?status=error&limit=100").await;
    assert_eq!(count(&p), 10);
    let (status, e) = get_json(&viewer, "/api/traces?status=bad").await;
    assert_eq!(status, 400, "{e}");
    let (status, _) = get_json(&viewer, "/api/traces?attr=novalue").await;
    assert_eq!(status, 400);
    let (status, _) = get_json(&viewer, "/api/traces?min_us=abc").await;
    assert_eq!(status, 400);
    let (_, p) = get_json(&viewer, &format!("/api/traces?to_us={}", t0 / 1000)).await;
    assert_eq!(count(&p), 0, "time range");

    // paging: 110 traces in pages of 30, each once, newest first
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/traces?limit=30&cursor={c}"),
            None => "/api/traces?limit=30".to_owned(),
        };
        let (_, p) = get_json(&viewer, &path).await;
        for t in p["traces"].as_array().unwrap() {
            seen.push((
                t["start_us"].as_i64().unwrap(),
                t["trace_id"].as_str().unwrap().to_owned(),
            ));
        }
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 110);
    let unique: std::collections::HashSet<_> = seen.iter().map(|s| &s.1).collect();
    assert_eq!(unique.len(), 110);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");

    // one trace with events and links, and its OTLP/JSON export
    let id = hex(&trace_id(2001));
    let (_, t) = get_json(&viewer, &format!("/api/traces/{id}")).await;
    assert_eq!(t["spans"].as_array().unwrap().len(), 2);
    let client_span = &t["spans"][1];
    assert_eq!(client_span["kind"], "CLIENT");
    assert_eq!(client_span["events"][0]["name"], "retry");
    assert_eq!(client_span["events"][0]["attributes"]["attempt"], 2);
    assert_eq!(client_span["links"][0]["trace_id"], hex(&trace_id(1001)));
    assert_eq!(
        client_span["links"][0]["attributes"]["link.kind"],
        "follows"
    );
    let resp = reqwest::get(format!("http://{}/api/traces/{id}/otlp", viewer.ui_addr()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&id)
    );
    let export: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_slice(&resp.bytes().await.unwrap()).expect("valid OTLP/JSON");
    let spans = &export.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].trace_id, trace_id(2001));
    assert_eq!(spans[1].parent_span_id, span_id(1));
    assert_eq!(spans[1].events[0].name, "retry");
    assert_eq!(spans[1].links[0].span_id, span_id(1));
    let service = export.resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|k| k.key == "service.name")
        .unwrap();
    assert_eq!(
        format!("{:?}", service.value),
        format!("{:?}", kv("x", "gateway").value)
    );
    let (status, _) = get_json(
        &viewer,
        &format!("/api/traces/{}/otlp", hex(&trace_id(4242))),
    )
    .await;
    assert_eq!(status, 404);
    let (status, e) = get_json(&viewer, "/api/nope").await;
    assert_eq!(status, 404);
    assert!(e["error"].is_string());
    viewer.shutdown().await;
}

/// SLO status and burn-rate series from stored spans, with the windows and
/// factors of the generated alert rules.
#[tokio::test]
async fn slo_status_and_series() {
    let dir = tempfile::tempdir().unwrap();
    let slo = dir.path().join("shop.yaml");
    std::fs::write(
        &slo,
        "services:\n  - name: shop\n    objectives:\n      - name: availability\n        kind: availability\n        target: 99.9\n      - name: users-latency\n        route: /users/{id}\n        kind: latency\n        target: 99\n        threshold: 0.25\n",
    )
    .unwrap();
    let viewer = builder(&dir).slo_files(vec![slo]).start().await.unwrap();
    let mut client = TraceServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    let now = now_ns();
    // Last 4 minutes: 100 requests, 20 of them 5xx, 30 slower than 250 ms.
    let spans: Vec<_> = (0..100u64)
        .map(|i| {
            let status = if i < 20 { 503 } else { 200 };
            let dur = if i >= 70 { 300_000 } else { 10_000 };
            server_span(
                3000 + i,
                1,
                "/users/{id}",
                status,
                now - 240_000_000_000 + i * 1_000_000_000,
                dur,
            )
        })
        .collect();
    client.export(traces("shop", spans)).await.unwrap();
    viewer.store().flush().await.unwrap();

    let (status, s) = get_json(&viewer, "/api/slo").await;
    assert_eq!(status, 200, "{s}");
    let s = s.as_array().unwrap();
    assert_eq!(s.len(), 2);
    let avail = &s[0];
    assert_eq!(avail["objective"], "availability");
    assert_eq!(avail["target"], 99.9);
    assert_eq!(avail["sli"]["requests"], 100);
    assert_eq!(avail["sli"]["bad"], 20);
    assert_eq!(avail["sli"]["good_ratio"], 0.8);
    assert_eq!(avail["sli"]["period"], "30d");
    let windows = avail["windows"].as_array().unwrap();
    let shape: Vec<(String, String, f64)> = windows
        .iter()
        .map(|w| {
            (
                w["long"].as_str().unwrap().to_owned(),
                w["short"].as_str().unwrap().to_owned(),
                w["burn_rate_factor"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("1h".to_owned(), "5m".to_owned(), 14.4),
            ("6h".to_owned(), "30m".to_owned(), 6.0),
            ("1d".to_owned(), "2h".to_owned(), 3.0),
            ("3d".to_owned(), "6h".to_owned(), 1.0)
        ]
    );
    // 20% errors over a 0.1% budget: burn rate 200 everywhere, every alert fires.
    for w in windows {
        let long = w["burn_rate_long"].as_f64().unwrap();
        assert!((long - 200.0).abs() < 1e-6, "{w}");
        assert_eq!(w["firing"], true, "{w}");
    }
    assert_eq!(windows[0]["alert"], "SLOErrorBudgetBurnPage");
    let latency = &s[1];
    assert_eq!(latency["sli"]["bad"], 30);
    assert_eq!(latency["sli"]["route"], "/users/{id}");
    // 30% slow over a 1% budget: burn rate 30 > every factor.
    assert!((latency["windows"][0]["burn_rate_short"].as_f64().unwrap() - 30.0).abs() < 1e-6);

    let (status, series) = get_json(&viewer, "/api/slo/shop/availability/series").await;
    assert_eq!(status, 200, "{series}");
    let w0 = &series["windows"][0];
    assert_eq!(w0["long"], "1h");
    let points = w0["points"].as_array().unwrap();
    assert!(!points.is_empty());
    let last = points.last().unwrap();
    assert!(
        (last["burn_rate_long"].as_f64().unwrap() - 200.0).abs() < 1e-6,
        "{last}"
    );
    assert!(
        points[0]["burn_rate_long"].is_null(),
        "no requests an hour ago: {}",
        points[0]
    );
    let (status, _) = get_json(&viewer, "/api/slo/shop/nope/series").await;
    assert_eq!(status, 404);
    viewer.shutdown().await;
}

/// `/api/live` announces committed batches as Server-Sent Events.
#[tokio::test]
async fn live_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = builder(&dir).start().await.unwrap();
    let mut resp = reqwest::get(format!("http://{}/api/live", viewer.ui_addr()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut client = TraceServiceClient::connect(viewer.grpc_endpoint())
        .await
        .unwrap();
    client
        .export(traces(
            "live",
            vec![
                server_span(1, 1, "/x", 200, now_ns(), 10),
                server_span(2, 1, "/x", 200, now_ns(), 10),
            ],
        ))
        .await
        .unwrap();
    let mut text = String::new();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while !text.contains("\n\n") || !text.contains("event: spans") {
            match resp.chunk().await.unwrap() {
                Some(c) => text.push_str(&String::from_utf8_lossy(&c)),
                None => break,
            }
        }
    })
    .await;
    assert!(got.is_ok(), "no event within 10 s: {text:?}");
    assert!(
        text.contains("event: spans\ndata: {\"count\":2,\"services\":[\"live\"]}"),
        "{text:?}"
    );
    viewer.shutdown().await;
}

/// Non-loopback listeners need an explicit opt-in.
#[tokio::test]
async fn remote_binding_is_refused_without_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let err = builder(&dir)
        .ui_addr("0.0.0.0:0".parse().unwrap())
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("allow_remote"), "{err}");
    let viewer = builder(&dir)
        .ui_addr("0.0.0.0:0".parse().unwrap())
        .allow_remote(true)
        .start()
        .await
        .unwrap();
    let (status, _) = get_json(&viewer, "/api/services").await;
    assert_eq!(status, 200);
    viewer.shutdown().await;
}
