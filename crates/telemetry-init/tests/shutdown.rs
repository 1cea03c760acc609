//! `shutdown::serve_with_drain` over real sockets: on the signal it stops
//! accepting, lets an in-flight request finish, closes an idle keep-alive
//! connection and a half-sent request, returns within the drain deadline,
//! and every span of a completed request reaches the real receiver after
//! the telemetry flush.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use telemetry_init::config::BatchSettings;
use telemetry_init::shutdown::serve_with_drain;
use telemetry_init_testing::{OtlpReceiver, SpanKind};

fn app() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                tracing::info!("slow request done");
                "slow"
            }),
        )
        // Reads the whole body: a client that never sends it keeps the
        // request in flight for ever.
        .route(
            "/upload",
            post(|body: String| async move { body.len().to_string() }),
        )
        .layer(telemetry_init::layer())
}

/// A raw HTTP/1.1 exchange on a kept-open connection.
fn get_keep_alive(addr: std::net::SocketAddr, path: &str, rid: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nx-request-id: {rid}\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s
}

/// Reads until EOF (or the read timeout); true when the server closed.
fn closed_by_server(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_cannot_hold_shutdown() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let batch = BatchSettings {
        max_queue_size: 4096,
        max_export_batch_size: 256,
        // Long: the spans must be delivered by the final flush, not by a
        // timer that happens to fire first.
        schedule_delay: Duration::from_secs(60),
        export_timeout: Duration::from_secs(5),
    };
    let telemetry = telemetry_init::builder()
        .service_name("drain-test")
        .stdout_filter("off")
        .otlp_endpoint(receiver.grpc_endpoint())
        .span_batch(batch)
        .log_batch(batch)
        .env_lookup(|_| None)
        .install()
        .expect("install");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = Duration::from_millis(1500);
    let server = tokio::spawn(serve_with_drain(
        listener,
        app(),
        async move {
            let _ = stop_rx.await;
        },
        drain,
    ));

    // A completed request whose connection stays open (idle keep-alive).
    let idle = tokio::task::spawn_blocking(move || get_keep_alive(addr, "/hello", "rid-idle"))
        .await
        .unwrap();
    // Half a request head: hyper waits for the rest, only the deadline ends it.
    let mut half_head = TcpStream::connect(addr).unwrap();
    half_head
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    half_head
        .write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nx-request-id: rid-ha")
        .unwrap();
    // A whole head and half the body it announces: the handler waits for
    // the rest for ever, only the deadline ends it.
    let mut half = TcpStream::connect(addr).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    half.write_all(
        b"POST /upload HTTP/1.1\r\nHost: x\r\nx-request-id: rid-half\r\ncontent-length: 100\r\n\r\npartial",
    )
    .unwrap();
    // A request in flight when the signal comes.
    let in_flight = tokio::spawn(
        reqwest::Client::new()
            .get(format!("http://{addr}/slow"))
            .header("x-request-id", "rid-in-flight")
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;

    let signalled = Instant::now();
    stop_tx.send(()).unwrap();
    let report = server.await.unwrap().unwrap();
    let took = signalled.elapsed();
    assert!(
        took < drain + Duration::from_secs(1),
        "serve_with_drain took {took:?} with a {drain:?} drain: {report}"
    );
    assert_eq!(report.open_at_signal, 4, "{report}");
    assert_eq!(
        report.closed_at_deadline, 2,
        "the half-sent head and the half-sent body outlive the drain, nothing else: {report}"
    );

    // The in-flight request finished normally.
    let res = in_flight
        .await
        .unwrap()
        .expect("in-flight request answered");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "slow");
    // Idle and half-sent connections were closed by the server.
    let closed = tokio::task::spawn_blocking(move || [idle, half_head, half].map(closed_by_server))
        .await
        .unwrap();
    assert_eq!(
        closed, [true; 3],
        "idle, half-head and half-body connections are all closed by the server"
    );
    // Nothing accepts any more.
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );

    // The flush, within its own deadline, delivers every completed span.
    let flushed = telemetry.shutdown(Duration::from_secs(5)).await;
    assert!(flushed.is_complete(), "{flushed}");
    let spans = receiver.spans();
    for rid in ["rid-idle", "rid-in-flight"] {
        let n = spans
            .iter()
            .filter(|s| {
                s.kind == SpanKind::Server
                    && s.attr("request_id").and_then(|v| v.as_str()) == Some(rid)
            })
            .count();
        assert_eq!(n, 1, "server span of {rid}: {spans:#?}");
    }
    assert!(
        receiver
            .logs()
            .iter()
            .any(|l| l.body.as_ref().and_then(|b| b.as_str()) == Some("slow request done")),
        "the in-flight request's log record"
    );
}
