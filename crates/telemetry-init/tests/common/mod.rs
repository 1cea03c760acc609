//! What the integration tests of this crate share: one telemetry
//! installation per test binary (it is process-global), exporting fast to an
//! in-process OTLP receiver, and lookups of the spans it received.

#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use telemetry_init::config::BatchSettings;
use telemetry_init_testing::{OtlpReceiver, ReceivedSpan, SpanKind};

pub(crate) struct Env {
    pub receiver: OtlpReceiver,
    _guard: telemetry_init::TelemetryGuard,
}

/// Installs telemetry for `service` on first use; every later call returns
/// the same installation. The access log is exported too (it is off by
/// default) so tests can check it; stdout shows warnings only.
pub(crate) fn env(service: &'static str) -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let receiver = OtlpReceiver::start_blocking().expect("receiver");
        let fast = BatchSettings {
            max_queue_size: 4096,
            max_export_batch_size: 256,
            schedule_delay: Duration::from_millis(50),
            export_timeout: Duration::from_secs(5),
        };
        let guard = telemetry_init::builder()
            .service_name(service)
            .stdout_filter("warn")
            .export_filter("info")
            .otlp_endpoint(receiver.grpc_endpoint())
            .span_batch(fast)
            .log_batch(fast)
            .env_lookup(|_| None)
            .install()
            .expect("install");
        Env {
            receiver,
            _guard: guard,
        }
    })
}

/// The one SERVER span carrying `request_id`, waiting up to 10 s for it.
pub(crate) async fn server_span(env: &Env, request_id: &str) -> ReceivedSpan {
    let rid = request_id.to_string();
    let mut spans = env
        .receiver
        .handle()
        .wait_for_spans_where(1, Duration::from_secs(10), move |s| {
            s.kind == SpanKind::Server
                && s.attr("request_id").and_then(|v| v.as_str()) == Some(rid.as_str())
        })
        .await
        .unwrap_or_else(|e| panic!("no span for {request_id}: {e}"));
    assert_eq!(spans.len(), 1, "one span per request: {spans:#?}");
    spans.remove(0)
}

/// A string attribute.
pub(crate) fn s<'a>(span: &'a ReceivedSpan, key: &str) -> Option<&'a str> {
    span.attr(key).and_then(|v| v.as_str())
}

/// An integer attribute.
pub(crate) fn i(span: &ReceivedSpan, key: &str) -> Option<i64> {
    span.attr(key).and_then(|v| v.as_i64())
}

/// Serves `app` on a new loopback port (with the peer address available to
/// the server layer, as `axum::serve` gives it) and returns the address.
pub(crate) async fn serve_at(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// [`serve_at`], as a base URL (`http://127.0.0.1:PORT`).
pub(crate) async fn serve(app: axum::Router) -> String {
    format!("http://{}", serve_at(app).await)
}

/// Every header set a recording downstream server received, in order.
pub(crate) type Seen = std::sync::Arc<std::sync::Mutex<Vec<axum::http::HeaderMap>>>;

/// A plain downstream server (no telemetry) that records the headers of
/// every request to `/`; returns its base URL.
pub(crate) async fn recording_downstream() -> (String, Seen) {
    let seen: Seen = Seen::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move |headers: axum::http::HeaderMap| async move {
            record.lock().unwrap().push(headers);
            "ok"
        }),
    );
    (serve(app).await, seen)
}

/// The caller's trace and span ids that [`call`] sends.
pub(crate) const TID: &str = "0af7651916cd43dd8448eb211c80319c";
pub(crate) const PID: &str = "b7ad6b7169203331";

/// A GET of `base` as a traced caller would send it: request id `rid`,
/// `traceparent` with [`TID`], [`PID`] and `flags`, a `tracestate` and the
/// baggage `tenant=acme`. Expects 200; returns the body.
pub(crate) async fn call(base: &str, rid: &str, flags: &str) -> String {
    let res = reqwest::Client::new()
        .get(base)
        .header("x-request-id", rid)
        .header("traceparent", format!("00-{TID}-{PID}-{flags}"))
        .header("tracestate", "congo=t61rcWkgMzE")
        .header("baggage", "tenant=acme")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}
