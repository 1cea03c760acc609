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
