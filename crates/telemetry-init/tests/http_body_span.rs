//! A server span lasts until its response body has been sent, not only
//! until the handler returned the headers (tracing-opentelemetry ends a span
//! at its last exit, so the layer has to enter it when the body ends).

mod common;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use telemetry_init_testing::SpanKind;

fn env() -> &'static common::Env {
    common::env("http-body-span-test")
}

/// Two chunks, the second 300 ms after the headers.
fn slow_body() -> Body {
    Body::from_stream(futures_util::stream::unfold(0, |n| async move {
        match n {
            0 => Some((Ok::<_, Infallible>(Bytes::from_static(b"first ")), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Some((Ok(Bytes::from_static(b"second")), 2))
            }
            _ => None,
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_covers_a_streamed_body() {
    let _ = env();
    let app = Router::new()
        .route("/stream", get(|| async { slow_body() }))
        .layer(telemetry_init::layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let res = reqwest::Client::new()
        .get(format!("http://{addr}/stream"))
        .header("x-request-id", "rid-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "first second");

    let span = env()
        .receiver
        .handle()
        .wait_for_spans_where(1, Duration::from_secs(10), |s| {
            s.kind == SpanKind::Server
                && s.attr("request_id").and_then(|v| v.as_str()) == Some("rid-stream")
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(span.name, "GET /stream");
    assert!(
        span.duration_nanos() >= 300_000_000,
        "the span ends with the body, not with the headers: {} ns",
        span.duration_nanos()
    );
}

/// A body that never ends on its own: one chunk, then a chunk every 100 ms.
fn endless_body() -> Body {
    Body::from_stream(futures_util::stream::unfold(0u32, |n| async move {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some((Ok::<_, Infallible>(Bytes::from_static(b"chunk ")), n + 1))
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_of_a_body_dropped_mid_stream_ends_when_it_is_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = env();
    let app = Router::new()
        .route("/endless", get(|| async { endless_body() }))
        .layer(telemetry_init::layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /endless HTTP/1.1\r\nhost: x\r\nx-request-id: rid-dropped\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Keep reading for a while, then go away mid-stream.
    tokio::time::sleep(Duration::from_millis(350)).await;
    drop(conn);

    let span = env()
        .receiver
        .handle()
        .wait_for_spans_where(1, Duration::from_secs(10), |s| {
            s.kind == SpanKind::Server
                && s.attr("request_id").and_then(|v| v.as_str()) == Some("rid-dropped")
        })
        .await
        .unwrap()
        .remove(0);
    assert!(
        span.duration_nanos() >= 300_000_000,
        "the span ends when the unfinished body is dropped, not with the headers: {} ns",
        span.duration_nanos()
    );
}
