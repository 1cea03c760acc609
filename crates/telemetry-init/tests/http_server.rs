//! The server layer over real sockets: exact span attributes for axum
//! (nested routers, fallback, 4xx, 5xx, handler errors, cancellation),
//! propagation, request ids, the skip list, baggage and redaction, checked
//! on what a real OTLP receiver decoded.

mod common;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use telemetry_init_testing::{ReceivedLog, ReceivedSpan, StatusCode as Otel};
use tower::ServiceExt;

use common::s;

use common::i;

fn env() -> &'static common::Env {
    common::env("http-server-test")
}

#[derive(Debug)]
struct AppError;

impl IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        (StatusCode::INTERNAL_SERVER_ERROR, "failed").into_response()
    }
}

fn app() -> Router {
    let api = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "no") }));
    Router::new()
        .nest("/api", api)
        .route(
            "/boom",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/fails",
            get(|| async {
                tracing::warn!("about to fail");
                Err::<&str, _>(AppError)
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/log",
            get(|| async {
                tracing::info!(secret_free = true, "inside the handler");
                "logged"
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "nothing here") })
        .layer(telemetry_init::layer().baggage_allowlist(["tenant"]))
}

async fn serve() -> String {
    let _ = env();
    common::serve(app()).await
}

async fn span_for(request_id: &str) -> ReceivedSpan {
    common::server_span(env(), request_id).await
}

async fn get_with(base: &str, path: &str, rid: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("x-request-id", rid)
        .header("user-agent", "attr-test/1.0")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_route_has_exact_attributes() {
    let base = serve().await;
    let res = get_with(&base, "/api/users/42?q=shoes&page=2", "rid-nested").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "rid-nested");
    let span = span_for("rid-nested").await;
    assert_eq!(span.name, "GET /api/users/{id}");
    assert_eq!(span.status_code, Otel::Unset);
    assert_eq!(s(&span, "http.request.method"), Some("GET"));
    assert_eq!(s(&span, "http.route"), Some("/api/users/{id}"));
    assert_eq!(s(&span, "url.path"), Some("/api/users/42"));
    assert_eq!(s(&span, "url.query"), Some("q=shoes&page=2"));
    assert_eq!(s(&span, "url.scheme"), Some("http"));
    assert_eq!(i(&span, "http.response.status_code"), Some(200));
    assert_eq!(s(&span, "server.address"), Some("127.0.0.1"));
    assert!(i(&span, "server.port").is_some_and(|p| p > 0));
    assert_eq!(s(&span, "client.address"), Some("127.0.0.1"));
    assert_eq!(s(&span, "network.protocol.version"), Some("1.1"));
    assert_eq!(s(&span, "user_agent.original"), Some("attr-test/1.0"));
    assert_eq!(span.attr("error.type"), None);
    assert_eq!(span.parent_span_id, None);
    assert_eq!(span.scope_name, "telemetry-init");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_has_no_route_and_a_method_only_name() {
    let base = serve().await;
    let res = get_with(&base, "/wp-admin/setup.php", "rid-unmatched").await;
    assert_eq!(res.status(), 404);
    let span = span_for("rid-unmatched").await;
    assert_eq!(span.name, "GET");
    assert_eq!(span.attr("http.route"), None, "never the raw path");
    assert_eq!(s(&span, "url.path"), Some("/wp-admin/setup.php"));
    assert_eq!(i(&span, "http.response.status_code"), Some(404));
    assert_eq!(span.status_code, Otel::Unset, "4xx is not a server error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_span_errors() {
    let base = serve().await;
    assert_eq!(
        get_with(&base, "/api/missing", "rid-4xx").await.status(),
        404
    );
    let span = span_for("rid-4xx").await;
    assert_eq!(s(&span, "http.route"), Some("/api/missing"));
    assert_eq!(i(&span, "http.response.status_code"), Some(404));
    assert_eq!(span.attr("error.type"), None);
    assert_eq!(span.status_code, Otel::Unset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_mark_the_span() {
    let base = serve().await;
    assert_eq!(get_with(&base, "/boom", "rid-5xx").await.status(), 503);
    let span = span_for("rid-5xx").await;
    assert_eq!(i(&span, "http.response.status_code"), Some(503));
    assert_eq!(s(&span, "error.type"), Some("503"));
    assert_eq!(span.status_code, Otel::Error);

    assert_eq!(
        get_with(&base, "/fails", "rid-handler-err").await.status(),
        500
    );
    let span = span_for("rid-handler-err").await;
    assert_eq!(s(&span, "error.type"), Some("500"));
    assert_eq!(span.status_code, Otel::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_errors_and_cancellation() {
    let _ = env();
    // A tower service (not axum) that fails: error.type is its error type.
    let failing = tower::ServiceBuilder::new()
        .layer(telemetry_init::layer())
        .service_fn(|_req: http::Request<String>| async {
            Err::<http::Response<String>, _>(std::io::Error::other("backend down"))
        });
    let req = http::Request::builder()
        .uri("/svc")
        .header("x-request-id", "rid-svc-err")
        .body(String::new())
        .unwrap();
    assert!(failing.oneshot(req).await.is_err());
    let span = span_for("rid-svc-err").await;
    assert_eq!(s(&span, "error.type"), Some("Error"));
    assert_eq!(span.status_code, Otel::Error);

    // A request whose future is dropped before it completes (client gone,
    // timeout): the span says cancelled instead of vanishing.
    let slow = tower::ServiceBuilder::new()
        .layer(telemetry_init::layer())
        .service_fn(|_req: http::Request<String>| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        });
    let req = http::Request::builder()
        .uri("/slow")
        .header("x-request-id", "rid-cancelled")
        .body(String::new())
        .unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(50), slow.oneshot(req)).await;
    assert!(cancelled.is_err());
    let span = span_for("rid-cancelled").await;
    assert_eq!(s(&span, "error.type"), Some("cancelled"));
    assert_eq!(span.status_code, Otel::Error);
    assert_eq!(span.attr("http.response.status_code"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_are_normalised() {
    let base = serve().await;
    let res = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(b"PURGE").unwrap(),
            format!("{base}/api/users/1"),
        )
        .header("x-request-id", "rid-purge")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let span = span_for("rid-purge").await;
    assert_eq!(s(&span, "http.request.method"), Some("_OTHER"));
    assert_eq!(s(&span, "http.request.method_original"), Some("PURGE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_and_baggage_are_extracted() {
    let base = serve().await;
    let res = reqwest::Client::new()
        .get(format!("{base}/log"))
        .header("x-request-id", "rid-parent")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .header("tracestate", "congo=t61rcWkgMzE")
        .header("baggage", "tenant=acme,user.email=jane%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let span = span_for("rid-parent").await;
    assert_eq!(span.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(span.parent_span_id.as_deref(), Some("b7ad6b7169203331"));
    assert_eq!(span.trace_state, "congo=t61rcWkgMzE");
    assert_eq!(s(&span, "baggage.tenant"), Some("acme"), "allowlisted key");
    assert_eq!(span.attr("baggage.user.email"), None, "not allowlisted");

    // The handler's log record carries the span's ids.
    let sid = span.span_id.clone();
    let logs: Vec<ReceivedLog> = env()
        .receiver
        .handle()
        .wait_for_logs_where(1, Duration::from_secs(10), move |l| {
            l.span_id.as_deref() == Some(sid.as_str()) && l.body_str() == Some("inside the handler")
        })
        .await
        .unwrap();
    assert_eq!(
        logs[0].trace_id.as_deref(),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_never_fail_a_request() {
    let base = serve().await;
    let long_id = "x".repeat(500);
    let res = reqwest::Client::new()
        .get(format!("{base}/api/users/7"))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
        )
        .header("tracestate", "=broken,,,")
        .header("baggage", "%%%;;;==")
        .header("x-request-id", long_id.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(rid, long_id, "an insane request id is replaced");
    assert!(!rid.is_empty() && rid.len() <= 128);
    let span = span_for(&rid).await;
    assert_eq!(
        span.parent_span_id, None,
        "an invalid traceparent starts a new trace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_paths_make_no_span() {
    let base = serve().await;
    assert_eq!(
        get_with(&base, "/healthz", "rid-health").await.status(),
        200
    );
    // A traced request after it, to know the exporter has flushed past it.
    get_with(&base, "/api/users/1", "rid-after-health").await;
    span_for("rid-after-health").await;
    let health = env().receiver.handle().spans().into_iter().any(|s| {
        s.attr("request_id").and_then(|v| v.as_str()) == Some("rid-health")
            || s.attr("url.path").and_then(|v| v.as_str()) == Some("/healthz")
    });
    assert!(!health, "/healthz is not traced");
}

/// Credentials sent every way a client can send them never reach the
/// exported spans or logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_telemetry() {
    let base = serve().await;
    let secrets = [
        "Bearer-SeCrEt-0001",
        "Basic-SeCrEt-0002",
        "session=SeCrEt-0003",
        "SeCrEt-0004",
        "SeCrEt-0005",
        "SeCrEt-0006",
        "SeCrEt-0007",
    ];
    let res = reqwest::Client::new()
        .get(format!(
            "{base}/log?token={}&api_key={}&password={}&q=visible",
            secrets[3], secrets[4], secrets[5]
        ))
        .header("x-request-id", "rid-secrets")
        .header("authorization", format!("Bearer {}", secrets[0]))
        .header("proxy-authorization", format!("Basic {}", secrets[1]))
        .header("cookie", secrets[2])
        .header("x-api-key", secrets[6])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let span = span_for("rid-secrets").await;
    assert_eq!(
        s(&span, "url.query"),
        Some("token=REDACTED&api_key=REDACTED&password=REDACTED&q=visible")
    );
    let sid = span.span_id.clone();
    let logs = env()
        .receiver
        .handle()
        .wait_for_logs_where(2, Duration::from_secs(10), move |l| {
            l.span_id.as_deref() == Some(sid.as_str())
        })
        .await
        .unwrap();
    let everything = serde_json::to_string(&(&span, &logs)).unwrap();
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
    telemetry_init_testing::assert::no_secrets(std::slice::from_ref(&span), &logs).unwrap();
}
