//! Criterion micro-benchmarks of the per-request path of telemetry-init.
//!
//! * `middleware/*`: one request through `telemetry_init::layer()` around a
//!   trivial `tower::service_fn` (and around an axum `Router`, where
//!   `http.route` comes from `MatchedPath`), via `ServiceExt::oneshot`, the
//!   response body drained (the span and the metrics end with the body). The
//!   `*_bare` rows are the same without the layer, to subtract.
//!   Telemetry is installed once per process (100% sampled, spans, logs and
//!   metrics exported over OTLP gRPC to an in-process receiver that keeps 1 MiB
//!   and discards the rest), so the access log line is formatted and written
//!   to stdout on every iteration: run with stdout sent to /dev/null and read
//!   the results from `target/criterion` (`run-micro.sh` does this).
//! * `propagation/*`: `telemetry_init_propagation::extract` of a `HeaderMap`.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt, service_fn};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
const BAGGAGE: &str = "userId=alice,serverNode=DF%2028,isProduction=false";

fn install_once() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let receiver = telemetry_init_testing::OtlpReceiver::builder()
            .memory_budget_bytes(1 << 20)
            .start_blocking()
            .expect("start receiver");
        let guard = telemetry_init::builder()
            .service_name("overhead-micro")
            .otlp_endpoint(receiver.grpc_endpoint())
            .install()
            .expect("install");
        // Both live until the process exits.
        std::mem::forget(guard);
        std::mem::forget(receiver);
    });
}

fn request(path: &str) -> Request<Body> {
    Request::get(path)
        .header("traceparent", TRACEPARENT)
        .header("host", "127.0.0.1:3000")
        .header("user-agent", "wrk")
        .body(Body::empty())
        .expect("request")
}

async fn handler(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::from("user 42")))
}

/// The same handler with one `tracing` event inside the request: a JSON
/// line on stdout and an OTLP log record (issue 13, goal 3: its cost as a
/// share of the request's telemetry overhead).
async fn handler_one_event(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
    tracing::info!(user_id = 42_u64, "looking up user");
    Ok(Response::new(Body::from("user 42")))
}

fn middleware(c: &mut Criterion) {
    install_once();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("middleware");
    g.measurement_time(Duration::from_secs(5));

    let bare = service_fn(handler);
    g.bench_function("service_fn_bare", |b| {
        b.to_async(&rt).iter(|| async {
            let res = bare.clone().oneshot(request("/users/42")).await.unwrap();
            res.into_body().collect().await.unwrap()
        })
    });
    let layered = telemetry_init::layer().layer(service_fn(handler));
    g.bench_function("service_fn_layer", |b| {
        b.to_async(&rt).iter(|| async {
            let res = layered.clone().oneshot(request("/users/42")).await.unwrap();
            res.into_body().collect().await.unwrap()
        })
    });
    let with_event = telemetry_init::layer().layer(service_fn(handler_one_event));
    g.bench_function("service_fn_layer_one_event", |b| {
        b.to_async(&rt).iter(|| async {
            let res = with_event.clone().oneshot(request("/users/42")).await.unwrap();
            res.into_body().collect().await.unwrap()
        })
    });

    let router_bare: Router = overhead_bench::app();
    g.bench_function("router_bare", |b| {
        b.to_async(&rt).iter(|| async {
            let res = router_bare.clone().oneshot(request("/users/42")).await.unwrap();
            res.into_body().collect().await.unwrap()
        })
    });
    let router_layer: Router = overhead_bench::app().layer(telemetry_init::layer());
    g.bench_function("router_layer", |b| {
        b.to_async(&rt).iter(|| async {
            let res = router_layer.clone().oneshot(request("/users/42")).await.unwrap();
            res.into_body().collect().await.unwrap()
        })
    });
    g.finish();
}

fn propagation(c: &mut Criterion) {
    let mut full = HeaderMap::new();
    full.insert("traceparent", HeaderValue::from_static(TRACEPARENT));
    full.insert("tracestate", HeaderValue::from_static(TRACESTATE));
    full.insert("baggage", HeaderValue::from_static(BAGGAGE));
    let mut only = HeaderMap::new();
    only.insert("traceparent", HeaderValue::from_static(TRACEPARENT));

    let mut g = c.benchmark_group("propagation");
    g.bench_function("extract_traceparent_tracestate_baggage", |b| {
        b.iter(|| telemetry_init_propagation::extract(std::hint::black_box(&full)))
    });
    g.bench_function("extract_traceparent_only", |b| {
        b.iter(|| telemetry_init_propagation::extract(std::hint::black_box(&only)))
    });
    let parent = telemetry_init::opentelemetry::Context::new();
    g.bench_function("extract_all_into_context", |b| {
        b.iter(|| telemetry_init_propagation::extract(std::hint::black_box(&full)).into_context(&parent))
    });
    g.finish();
}

criterion_group!(benches, propagation, middleware);
criterion_main!(benches);
