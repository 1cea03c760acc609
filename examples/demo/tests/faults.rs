//! Fail-open: a collector that refuses, hangs or answers 503 never fails or
//! blocks a request, shutdown stays within its deadline, and the guard
//! reports what was not delivered.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::Demo;
use telemetry_init_testing::{Behavior, OtlpReceiver};

const N: usize = 30;

async fn drive_and_stop(endpoint: &str, protocol: &str) -> Demo {
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        // Export while requests are served, not only at shutdown.
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50"),
    ]);
    let client = reqwest::Client::new();
    for i in 0..N {
        let started = Instant::now();
        let res = client
            .get(demo.url(&format!("/users/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        // The exporter's timeout is 10 s: a request that waited on it would
        // take that long.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "request {i} blocked"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (code, took) = demo.terminate(Duration::from_secs(15));
    assert_eq!(code, 0, "stderr: {:?}", demo.stderr());
    // The demo shuts down with a 5 s deadline.
    assert!(took < Duration::from_millis(6500), "shutdown took {took:?}");
    demo
}

/// The guard's report, as the demo prints it on stderr:
/// `spans: 0 exported, 30 not delivered; log records: 0 exported, 60 not delivered…`.
fn assert_reported_undelivered(demo: &Demo) {
    let stderr = demo.stderr().join("\n");
    let line = stderr
        .lines()
        .find(|l| l.contains("telemetry not fully delivered"))
        .unwrap_or_else(|| panic!("no delivery report on stderr: {stderr}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    // spans exported, spans undelivered, logs exported, logs undelivered
    assert_eq!(numbers[0], 0, "{line}");
    assert_eq!(numbers[1], N as u64, "{line}");
    assert_eq!(numbers[2], 0, "{line}");
    // One exported log record per request: the handler's.
    assert!(numbers[3] >= N as u64, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_refusing_connections() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let demo = drive_and_stop(&format!("http://127.0.0.1:{port}"), "grpc").await;
    assert_reported_undelivered(&demo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_accepting_and_never_answering() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts every connection and holds it open without a byte in reply.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    for protocol in ["grpc", "http/protobuf"] {
        let demo = drive_and_stop(&format!("http://{addr}"), protocol).await;
        assert_reported_undelivered(&demo);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_answering_unavailable() {
    let receiver = OtlpReceiver::start().await.unwrap();
    receiver.handle().set_behavior(Behavior::Unavailable);
    let demo = drive_and_stop(&receiver.http_endpoint(), "http/protobuf").await;
    assert_reported_undelivered(&demo);
    assert!(receiver.handle().stats().unavailable_requests > 0);
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_that_recovers_gets_everything_after() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let handle = receiver.handle();
    handle.set_behavior(Behavior::Unavailable);
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ]);
    let client = reqwest::Client::new();
    client.get(demo.url("/hello")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    handle.set_behavior(Behavior::Accept);
    for _ in 0..5 {
        client.get(demo.url("/hello")).send().await.unwrap();
    }
    let (code, _) = demo.terminate(Duration::from_secs(10));
    assert_eq!(code, 0);
    let servers = handle
        .spans()
        .into_iter()
        .filter(|s| s.name == "GET /hello")
        .count();
    assert!(
        servers >= 5,
        "export resumed after recovery: {servers} spans"
    );
    receiver.shutdown().await;
}
