//! The real demo binary on SIGTERM, with a client that sent half a request
//! and never finishes: the demo still exits within its drain deadline plus
//! the telemetry flush, and the spans of a request completed before the
//! signal reach the collector. Also: `/debug/telemetry` answers loopback
//! clients only (the check is `telemetry_init_testing::access::peer_allowed`,
//! and a client in a network namespace of the test's own).

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use support::Demo;
use telemetry_init_testing::{OtlpReceiver, SpanKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_despite_a_half_sent_request() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = receiver.grpc_endpoint();
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        // Long schedule delays: only the final flush can deliver the spans.
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "60000"),
        ("TELEMETRY_DRAIN_TIMEOUT", "1000"),
        ("TELEMETRY_SHUTDOWN_TIMEOUT", "5000"),
    ]);
    let res = reqwest::Client::new()
        .get(demo.url("/hello"))
        .header("x-request-id", "before-sigterm")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Half a request head, and a request whose handler outlasts the drain.
    let mut half = TcpStream::connect(demo.addr).unwrap();
    half.write_all(b"GET /hello HTTP/1.1\r\nHost: demo\r\nx-request-id: never")
        .unwrap();
    let slow = tokio::spawn(
        reqwest::Client::new()
            .get(demo.url("/slow?ms=10000"))
            .header("x-request-id", "too-slow")
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Drain (1 s) + flush (at most 5 s) + start-up slack.
    let (code, took) = demo.terminate(Duration::from_secs(10));
    assert_eq!(code, 0, "{:?}", demo.stderr());
    assert!(took < Duration::from_secs(7), "exit took {took:?}");
    let stopped = demo
        .json_lines()
        .into_iter()
        .find(|l| l["message"] == "server stopped")
        .expect("the server stopped line");
    // The half-sent head and /slow: only the deadline ends them.
    assert_eq!(stopped["closed_at_deadline"], 2, "{stopped}");
    assert!(slow.await.unwrap().is_err(), "the slow request was cut");

    let spans = receiver.spans();
    let server: Vec<_> = spans
        .iter()
        .filter(|s| {
            s.kind == SpanKind::Server
                && s.attr("request_id").and_then(|v| v.as_str()) == Some("before-sigterm")
        })
        .collect();
    assert_eq!(server.len(), 1, "{spans:#?}");
    drop(half);
}

/// `GET path` over a connection opened from `peer`'s namespace; returns the
/// status and the body (HTTP/1.1, `Connection: close`).
async fn get_from(
    peer: &telemetry_init_testing::netns::RemotePeer,
    port: u16,
    path: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = std::net::SocketAddr::new(peer.host_ip(), port);
    let mut stream = peer.connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

/// The demo on `0.0.0.0`, asked from loopback and from a client in a network
/// namespace of the test's own (never this machine's real interfaces).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_telemetry_is_loopback_only_unless_opened() {
    let peer = telemetry_init_testing::netns::RemotePeer::create()
        .expect("this test makes a network namespace: it needs `ip` and root");
    for open in [false, true] {
        let flag = if open { "true" } else { "false" };
        let demo = Demo::start(&[
            ("LISTEN_ADDR", "0.0.0.0:0"),
            ("DEMO_DEBUG_ALLOW_REMOTE", flag),
        ]);
        let port = demo.addr.port();
        // Loopback: always the snapshot.
        let res = reqwest::get(format!("http://127.0.0.1:{port}/debug/telemetry"))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let v: serde_json::Value = res.json().await.unwrap();
        assert!(v["traces"].is_array(), "{v}");
        // From the namespace: refused unless opened.
        let (status, body) = get_from(&peer, port, "/debug/telemetry").await;
        if open {
            assert_eq!(status, 200, "{body}");
        } else {
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("DEMO_DEBUG_ALLOW_REMOTE"), "{body}");
            assert!(!body.contains("trace"), "{body}");
        }
        // Other routes stay public.
        let (status, _) = get_from(&peer, port, "/hello").await;
        assert_eq!(status, 200);
    }
}
