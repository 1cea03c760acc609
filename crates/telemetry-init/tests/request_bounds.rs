//! Hostile requests against the server layer over real sockets, checked on
//! what a real OTLP receiver decoded and on the `/metrics` text: values the
//! client chooses are cut to the documented bounds, and a client that says
//! `content-type: application/grpc` to an HTTP route is still recorded as
//! HTTP (no `rpc.*` attributes, no RPC series, in the HTTP SLO metrics).

mod common;

use axum::Router;
use axum::routing::{get, post};
use telemetry_init::http::{GrpcDetection, limits};

use common::s;

fn env() -> &'static common::Env {
    common::env("request-bounds-test")
}

async fn serve(layer: telemetry_init::ServerLayer) -> String {
    let _ = env();
    let app = Router::new()
        .route("/orders/create", post(|| async { "echo" }))
        .route("/items/{id}", get(|| async { "item" }))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "no") })
        .layer(layer);
    common::serve(app).await
}

fn metrics_text() -> String {
    telemetry_init::handle()
        .expect("installed")
        .render_metrics(None)
        .1
}

/// The `_count` of the HTTP duration histogram for `route`, summed over
/// methods and statuses.
fn http_count(text: &str, route: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
        .filter(|l| l.contains(&format!("http_route=\"{route}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_content_type_does_not_make_an_http_route_grpc() {
    let base = serve(telemetry_init::layer()).await;
    let client = reqwest::Client::new();
    let before = http_count(&metrics_text(), "/orders/create");
    for i in 0..300 {
        let res = client
            .post(format!("{base}/orders/create"))
            .header("content-type", "application/grpc")
            .header("x-request-id", format!("grpc-ct-{i}"))
            .body("not grpc")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        // A routed path shaped like a gRPC method (above) and unrouted ones.
        let res = client
            .post(format!("{base}/evil.Service{i}/Method{i}"))
            .header("content-type", "application/grpc+proto")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    let span = common::server_span(env(), "grpc-ct-7").await;
    assert_eq!(s(&span, "http.request.method"), Some("POST"));
    assert_eq!(s(&span, "http.route"), Some("/orders/create"));
    assert_eq!(span.name, "POST /orders/create");
    for key in ["rpc.system", "rpc.service", "rpc.method"] {
        assert_eq!(span.attr(key), None, "{key} on an HTTP span");
    }

    let text = metrics_text();
    // Every request is in the HTTP SLO metrics ...
    assert_eq!(http_count(&text, "/orders/create") - before, 300);
    // ... none became an RPC series, and the scrape stays small.
    assert!(
        !text.contains("evil.Service"),
        "a client-chosen path became a label"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("rpc_server_duration") && l.contains("orders")),
        "an RPC series from an HTTP route"
    );
    assert!(text.len() < 64 * 1024, "/metrics is {} bytes", text.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_that_routes_grpc_can_say_so() {
    let base = serve(telemetry_init::layer().grpc(GrpcDetection::ContentType)).await;
    reqwest::Client::new()
        .post(format!("{base}/pkg.Svc/Call"))
        .header("content-type", "application/grpc")
        .header("x-request-id", "grpc-opt-in")
        .send()
        .await
        .unwrap();
    let span = common::server_span(env(), "grpc-opt-in").await;
    assert_eq!(s(&span, "rpc.system"), Some("grpc"));
    assert_eq!(s(&span, "rpc.service"), Some("pkg.Svc"));
    assert_eq!(s(&span, "rpc.method"), Some("Call"));

    // `Never`: HTTP whatever the header.
    let base = serve(telemetry_init::layer().grpc(GrpcDetection::Never)).await;
    reqwest::Client::new()
        .post(format!("{base}/pkg.Svc/Call"))
        .header("content-type", "application/grpc")
        .header("x-request-id", "grpc-never")
        .send()
        .await
        .unwrap();
    let span = common::server_span(env(), "grpc-never").await;
    assert_eq!(span.attr("rpc.system"), None);
    assert_eq!(s(&span, "http.request.method"), Some("POST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_taken_from_the_request_are_bounded() {
    let base = serve(telemetry_init::layer()).await;
    // 30 KB path, 30 KB query, 60 KB user agent, a 4 KB host (the `http`
    // crate refuses URIs over 64 KiB; cuts on multi-byte characters are
    // unit-tested in `limits`).
    let long_path = format!("/items/{}", "p".repeat(30_000));
    let query = format!("q={}", "v".repeat(30_000));
    let ua = "u".repeat(60_000);
    let host = format!("{}.example:8080", "h".repeat(4000));
    let res = reqwest::Client::new()
        .get(format!("{base}{long_path}?{query}"))
        .header("user-agent", &ua)
        .header("host", &host)
        .header("x-request-id", "huge-values")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let span = common::server_span(env(), "huge-values").await;
    let path = s(&span, "url.path").unwrap();
    assert_eq!(path.len(), limits::MAX_PATH);
    assert!(long_path.starts_with(path));
    let q = s(&span, "url.query").unwrap();
    assert_eq!(q.len(), limits::MAX_QUERY);
    assert!(query.starts_with(q));
    let agent = s(&span, "user_agent.original").unwrap();
    assert_eq!(agent.len(), limits::MAX_USER_AGENT);
    assert!(ua.starts_with(agent));
    let server = s(&span, "server.address").unwrap();
    assert_eq!(server.len(), limits::MAX_HOST);
    assert_eq!(common::i(&span, "server.port"), Some(8080));
    // The route template is what the metrics see, never the path.
    assert_eq!(s(&span, "http.route"), Some("/items/{id}"));
    assert!(!metrics_text().contains("ppppppppp"));
}
