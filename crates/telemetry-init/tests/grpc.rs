//! The server layer on a real tonic server (the generated `tonic-health`
//! service over HTTP/2 sockets) and the client layer on a real tonic
//! `Channel`: exact RPC span attributes for unary OK, unary errors (client
//! and server side of the RPC conventions), trailers-only responses, server
//! streaming cancelled and completed, the skip list, the `rpc.server.duration`
//! series, and client -> server propagation, checked on what a real OTLP
//! receiver decoded.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use telemetry_init::{ClientLayer, ServerLayer};
use telemetry_init_testing::{ReceivedSpan, SpanKind, StatusCode as Otel};
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::HealthReporter;
use tracing::Instrument;

const SERVICE_NAME: &str = "grpc-test";

use common::s;

use common::i;

fn env() -> &'static common::Env {
    common::env(SERVICE_NAME)
}

/// A hand-made gRPC service that fails every call with a trailers-only
/// response (`grpc-status` in the response headers, no body).
#[derive(Debug, Clone)]
struct Broken;

impl tonic::server::NamedService for Broken {
    const NAME: &'static str = "test.Broken";
}

impl tower::Service<http::Request<tonic::body::Body>> for Broken {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: http::Request<tonic::body::Body>) -> Self::Future {
        let res = http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc")
            .header("grpc-status", "13")
            .header("grpc-message", "exploded")
            .body(tonic::body::Body::empty())
            .expect("static response");
        std::future::ready(Ok(res))
    }
}

struct Server {
    url: String,
    port: u16,
    reporter: HealthReporter,
}

/// A tonic server on a real socket: the health service (with `svc.Up`
/// SERVING) and [`Broken`], behind `layer`.
async fn serve(layer: ServerLayer) -> Server {
    let _ = env();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("svc.Up", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(health)
            .add_service(Broken)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    Server {
        url: format!("http://127.0.0.1:{port}"),
        port,
        reporter,
    }
}

/// The health service is skipped by default; these tests trace it.
fn traced_layer() -> ServerLayer {
    telemetry_init::layer().skip_paths(Vec::<String>::new())
}

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn request(service: &str, rid: &str) -> tonic::Request<HealthCheckRequest> {
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    req.metadata_mut()
        .insert("x-request-id", rid.parse().unwrap());
    req
}

/// A unary call to `test.Broken/<method>`.
async fn call_broken(channel: Channel, method: &str, rid: &str) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = PathAndQuery::try_from(format!("/test.Broken/{method}")).unwrap();
    grpc.unary::<_, HealthCheckResponse, _>(
        request("", rid),
        path,
        tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default(),
    )
    .await
    .expect_err("Broken always fails")
}

async fn span_for(request_id: &str) -> ReceivedSpan {
    common::server_span(env(), request_id).await
}

/// The attributes every server span of a gRPC call carries.
fn assert_rpc_span(span: &ReceivedSpan, service: &str, method: &str, port: u16) {
    assert_eq!(span.name, format!("{service}/{method}"));
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.scope_name, "telemetry-init");
    assert_eq!(s(span, "rpc.system"), Some("grpc"));
    assert_eq!(s(span, "rpc.service"), Some(service));
    assert_eq!(s(span, "rpc.method"), Some(method));
    assert_eq!(
        s(span, "url.path"),
        Some(format!("/{service}/{method}").as_str())
    );
    assert_eq!(s(span, "server.address"), Some("127.0.0.1"));
    assert_eq!(i(span, "server.port"), Some(i64::from(port)));
    assert_eq!(s(span, "client.address"), Some("127.0.0.1"));
    assert_eq!(s(span, "network.protocol.version"), Some("2"));
    assert!(
        s(span, "user_agent.original").is_some_and(|ua| ua.starts_with("tonic/")),
        "{span:#?}"
    );
    // No HTTP conventions on an RPC span.
    for http_key in [
        "http.request.method",
        "http.route",
        "http.response.status_code",
        "url.scheme",
    ] {
        assert_eq!(span.attr(http_key), None, "{http_key} on an RPC span");
    }
    assert_eq!(span.service_name(), Some(SERVICE_NAME));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_ok_has_exact_rpc_attributes() {
    let server = serve(traced_layer()).await;
    let mut client = HealthClient::new(channel(&server.url).await);
    let res = client
        .check(request("svc.Up", "grpc-ok"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(res.status, ServingStatus::Serving as i32);

    let span = span_for("grpc-ok").await;
    assert_rpc_span(&span, "grpc.health.v1.Health", "Check", server.port);
    assert_eq!(i(&span, "rpc.grpc.status_code"), Some(0));
    assert_eq!(span.status_code, Otel::Unset);
    assert_eq!(span.attr("error.type"), None);
    assert_eq!(span.parent_span_id, None);

    // The access log line names the RPC, not `POST unmatched`.
    let sid = span.span_id.clone();
    let log = env()
        .receiver
        .handle()
        .wait_for_logs_where(1, Duration::from_secs(10), move |l| {
            l.span_id.as_deref() == Some(sid.as_str()) && l.body_str() == Some("request completed")
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(log.trace_id.as_deref(), Some(span.trace_id.as_str()));
    let la = |k: &str| log.attr(k).and_then(|v| v.as_str());
    assert_eq!(la("rpc.service"), Some("grpc.health.v1.Health"));
    assert_eq!(la("rpc.method"), Some("Check"));
    assert_eq!(
        log.attr("rpc.grpc.status_code").and_then(|v| v.as_i64()),
        Some(0)
    );
    assert_eq!(log.attr("http.route"), None);
    assert_eq!(log.attr("http.request.method"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_codes_are_not_server_errors() {
    let server = serve(traced_layer()).await;
    let mut client = HealthClient::new(channel(&server.url).await);
    let status = client
        .check(request("svc.Unknown", "grpc-not-found"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    let span = span_for("grpc-not-found").await;
    assert_rpc_span(&span, "grpc.health.v1.Health", "Check", server.port);
    assert_eq!(i(&span, "rpc.grpc.status_code"), Some(5));
    assert_eq!(
        span.status_code,
        Otel::Unset,
        "NOT_FOUND is the caller's problem (RPC semconv, server side)"
    );
    assert_eq!(span.attr("error.type"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailers_only_internal_is_a_server_error() {
    let server = serve(traced_layer()).await;
    let status = call_broken(channel(&server.url).await, "Fail", "grpc-internal").await;
    assert_eq!(status.code(), tonic::Code::Internal);
    assert_eq!(status.message(), "exploded");

    let span = span_for("grpc-internal").await;
    assert_rpc_span(&span, "test.Broken", "Fail", server.port);
    assert_eq!(i(&span, "rpc.grpc.status_code"), Some(13));
    assert_eq!(s(&span, "error.type"), Some("13"));
    assert_eq!(span.status_code, Otel::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_cancelled_by_the_client() {
    let server = serve(traced_layer()).await;
    let mut client = HealthClient::new(channel(&server.url).await);
    let mut stream = client
        .watch(request("svc.Up", "grpc-watch-cancel"))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().expect("a first message");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    // The client walks away from a stream that would never end by itself.
    drop(stream);

    let span = span_for("grpc-watch-cancel").await;
    assert_rpc_span(&span, "grpc.health.v1.Health", "Watch", server.port);
    assert_eq!(
        i(&span, "rpc.grpc.status_code"),
        Some(1),
        "a call the client cancelled is CANCELLED"
    );
    assert_eq!(
        span.status_code,
        Otel::Unset,
        "CANCELLED is not a server error (RPC semconv, server side)"
    );
    assert_eq!(span.attr("error.type"), None);

    // The metric says the same: CANCELLED, not UNKNOWN.
    let series = rpc_series();
    let watch = |code: &str| {
        series.iter().any(|(labels, count)| {
            labels.get("rpc_method").map(String::as_str) == Some("Watch")
                && labels.get("rpc_grpc_status_code").map(String::as_str) == Some(code)
                && *count >= 1.0
        })
    };
    assert!(watch("1"), "{series:#?}");
    assert!(
        !watch("2"),
        "a cancelled stream is not UNKNOWN: {series:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_dropped_after_its_deadline_is_deadline_exceeded() {
    let server = serve(traced_layer()).await;
    let svc = tower::ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(channel(&server.url).await);
    let mut client = HealthClient::new(svc);
    let mut req = request("svc.Up", "grpc-watch-deadline");
    req.set_timeout(Duration::from_millis(200));
    let mut stream = client.watch(req).await.unwrap().into_inner();
    stream.message().await.unwrap().expect("a first message");
    // The client gives up once its deadline has passed.
    tokio::time::sleep(Duration::from_millis(400)).await;
    drop(stream);

    let span = span_for("grpc-watch-deadline").await;
    assert_rpc_span(&span, "grpc.health.v1.Health", "Watch", server.port);
    assert_eq!(i(&span, "rpc.grpc.status_code"), Some(4));
    assert_eq!(s(&span, "error.type"), Some("4"));
    assert_eq!(
        span.status_code,
        Otel::Error,
        "DEADLINE_EXCEEDED is a server error (RPC semconv, server side)"
    );
    // The client's span says the same.
    let client_span = client_span_of(&span).await;
    assert_rpc_client_span(&client_span, "Watch", 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_that_completes() {
    let mut server = serve(traced_layer()).await;
    server
        .reporter
        .set_service_status("svc.Temp", tonic_health::ServingStatus::Serving)
        .await;
    let mut client = HealthClient::new(channel(&server.url).await);
    let mut stream = client
        .watch(request("svc.Temp", "grpc-watch-done"))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().expect("a first message");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Unregistering the service ends its watch streams with OK trailers.
    server.reporter.clear_service_status("svc.Temp").await;
    assert!(
        stream.message().await.unwrap().is_none(),
        "the stream ends cleanly"
    );

    let span = span_for("grpc-watch-done").await;
    assert_rpc_span(&span, "grpc.health.v1.Health", "Watch", server.port);
    assert_eq!(i(&span, "rpc.grpc.status_code"), Some(0));
    assert_eq!(span.status_code, Otel::Unset);
    assert_eq!(span.attr("error.type"), None);
    assert!(
        span.duration_nanos() >= 300_000_000,
        "the span lasts as long as the stream, not until the headers: {} ns",
        span.duration_nanos()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_is_skipped_by_default() {
    let server = serve(telemetry_init::layer()).await;
    let channel = channel(&server.url).await;
    let mut client = HealthClient::new(channel.clone());
    client
        .check(request("svc.Up", "grpc-skipped-check"))
        .await
        .unwrap();
    let mut stream = client
        .watch(request("svc.Up", "grpc-skipped-watch"))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().expect("a first message");
    drop(stream);
    // A traced call after them, to know the exporter has flushed past them.
    call_broken(channel, "Fail", "grpc-after-skipped").await;
    let after = span_for("grpc-after-skipped").await;
    assert_eq!(after.name, "test.Broken/Fail");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leaked: Vec<_> = env()
        .receiver
        .handle()
        .spans()
        .into_iter()
        .filter(|s| {
            matches!(
                s.attr("request_id").and_then(|v| v.as_str()),
                Some("grpc-skipped-check" | "grpc-skipped-watch")
            )
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "health checks are not traced: {leaked:#?}"
    );
}

/// `rpc_server_duration_seconds_count` series of the scrape: labels -> count.
fn rpc_series() -> Vec<(BTreeMap<String, String>, f64)> {
    let text = telemetry_init::handle()
        .expect("installed")
        .metrics()
        .render_prometheus();
    series(&text, "rpc_server_duration_seconds_count")
}

fn series(text: &str, sample: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(sample)?.strip_prefix('{')?;
            let (labels, value) = rest.split_once("} ")?;
            let labels = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once("=\"").expect("k=\"v\"");
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            Some((labels, value.trim().parse().expect("a number")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_server_duration_series() {
    let server = serve(traced_layer()).await;
    let channel = channel(&server.url).await;
    for n in 0..3 {
        let status = call_broken(channel.clone(), "MetricsOnly", &format!("grpc-m-{n}")).await;
        assert_eq!(status.code(), tonic::Code::Internal);
    }
    HealthClient::new(channel)
        .check(request("svc.Up", "grpc-m-check"))
        .await
        .unwrap();

    let text = telemetry_init::handle()
        .expect("installed")
        .metrics()
        .render_prometheus();
    assert!(
        text.contains("# TYPE rpc_server_duration_seconds histogram"),
        "{text}"
    );
    let rpc = series(&text, "rpc_server_duration_seconds_count");
    let expected = |service: &str, method: &str, code: &str| -> BTreeMap<String, String> {
        [
            ("rpc_system", "grpc"),
            ("rpc_service", service),
            ("rpc_method", method),
            ("rpc_grpc_status_code", code),
            ("service_name", SERVICE_NAME),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let count = |labels: &BTreeMap<String, String>| {
        rpc.iter()
            .find(|(l, _)| l == labels)
            .map(|(_, c)| *c)
            .unwrap_or_else(|| panic!("no series {labels:?} in {rpc:#?}"))
    };
    assert_eq!(
        count(&expected("test.Broken", "MetricsOnly", "13")),
        3.0,
        "one observation per call"
    );
    assert!(count(&expected("grpc.health.v1.Health", "Check", "0")) >= 1.0);
    // Bounded labels only: never the request id, the path or the peer.
    let keys: Vec<&str> = [
        "rpc_grpc_status_code",
        "rpc_method",
        "rpc_service",
        "rpc_system",
        "service_name",
    ]
    .into();
    for (labels, _) in &rpc {
        assert_eq!(labels.keys().map(String::as_str).collect::<Vec<_>>(), keys);
    }
    // The histogram's buckets: every call is in +Inf.
    let buckets = series(&text, "rpc_server_duration_seconds_bucket");
    let inf = buckets
        .iter()
        .find(|(l, _)| {
            l.get("rpc_method").map(String::as_str) == Some("MetricsOnly")
                && l.get("le").map(String::as_str) == Some("+Inf")
        })
        .expect("a +Inf bucket");
    assert_eq!(inf.1, 3.0);
    // gRPC calls are not counted a second time as HTTP requests.
    assert!(
        series(&text, "http_server_request_duration_seconds_count").is_empty(),
        "{text}"
    );
}

/// The CLIENT span that is the parent of `server`'s span.
async fn client_span_of(server: &ReceivedSpan) -> ReceivedSpan {
    let client_id = server
        .parent_span_id
        .clone()
        .expect("the server span has the client span as parent");
    let mut spans = env()
        .receiver
        .handle()
        .wait_for_spans_where(1, Duration::from_secs(10), move |s| s.span_id == client_id)
        .await
        .expect("the client span is exported");
    let client = spans.remove(0);
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(client.trace_id, server.trace_id, "one trace");
    client
}

/// The gRPC conventions on a CLIENT span, without the HTTP ones.
fn assert_rpc_client_span(span: &ReceivedSpan, method: &str, code: i64) {
    assert_eq!(span.name, format!("grpc.health.v1.Health/{method}"));
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(s(span, "rpc.system"), Some("grpc"));
    assert_eq!(s(span, "rpc.service"), Some("grpc.health.v1.Health"));
    assert_eq!(s(span, "rpc.method"), Some(method));
    assert_eq!(i(span, "rpc.grpc.status_code"), Some(code));
    for http_key in [
        "http.request.method",
        "http.response.status_code",
        "url.full",
    ] {
        assert_eq!(span.attr(http_key), None, "{http_key} on an RPC span");
    }
    if code == 0 {
        assert_eq!(span.status_code, Otel::Unset);
        assert_eq!(span.attr("error.type"), None);
    } else {
        // On the client every code but OK is an error.
        assert_eq!(span.status_code, Otel::Error);
        assert_eq!(s(span, "error.type"), Some(code.to_string().as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_client_layer_propagates_to_the_server() {
    let server = serve(traced_layer()).await;
    let svc = tower::ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(channel(&server.url).await);
    let mut client = HealthClient::with_origin(svc, server.url.parse().unwrap());

    let caller = tracing::info_span!("caller");
    let (trace_id, caller_id) = async {
        let ids = telemetry_init::current_trace_ids().expect("a sampled caller span");
        client
            .check(request("svc.Up", "grpc-propagated"))
            .await
            .unwrap();
        ids
    }
    .instrument(caller)
    .await;

    let server_span = span_for("grpc-propagated").await;
    let client_span = client_span_of(&server_span).await;
    assert_eq!(server_span.trace_id, trace_id);
    assert_eq!(
        client_span.parent_span_id.as_deref(),
        Some(caller_id.as_str()),
        "the client span is a child of the span the call was made in"
    );
    assert_rpc_client_span(&client_span, "Check", 0);
    assert_eq!(s(&client_span, "server.address"), Some("127.0.0.1"));
    assert_eq!(i(&client_span, "server.port"), Some(i64::from(server.port)));
    assert_rpc_span(&server_span, "grpc.health.v1.Health", "Check", server.port);
    assert_eq!(i(&server_span, "rpc.grpc.status_code"), Some(0));

    let text = telemetry_init::handle()
        .expect("installed")
        .metrics()
        .render_prometheus();
    let expected: BTreeMap<String, String> = [
        ("rpc_system", "grpc"),
        ("rpc_service", "grpc.health.v1.Health"),
        ("rpc_method", "Check"),
        ("rpc_grpc_status_code", "0"),
        ("service_name", SERVICE_NAME),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let client_series = series(&text, "rpc_client_duration_seconds_count");
    assert!(
        client_series
            .iter()
            .any(|(labels, count)| *labels == expected && *count >= 1.0),
        "{client_series:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_client_spans_follow_the_rpc_conventions() {
    let server = serve(traced_layer()).await;
    // Without an origin the URI has no authority before the Channel adds
    // it: no server.address is better than an empty one.
    let svc = tower::ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(channel(&server.url).await);
    let mut client = HealthClient::new(svc);

    // A trailers-only error: the status is in the response headers.
    let status = client
        .check(request("svc.Unknown", "grpc-client-not-found"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let server_span = span_for("grpc-client-not-found").await;
    assert_eq!(server_span.status_code, Otel::Unset);
    let client_span = client_span_of(&server_span).await;
    assert_rpc_client_span(&client_span, "Check", 5);
    assert_eq!(client_span.attr("server.address"), None);
    assert_eq!(client_span.attr("server.port"), None);

    // A stream that completes: the status is in the trailers, and the
    // client span lasts until they arrive.
    let mut reporter = server.reporter.clone();
    reporter
        .set_service_status("svc.ClientDone", tonic_health::ServingStatus::Serving)
        .await;
    let mut stream = client
        .watch(request("svc.ClientDone", "grpc-client-watch-done"))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().expect("a first message");
    tokio::time::sleep(Duration::from_millis(300)).await;
    reporter.clear_service_status("svc.ClientDone").await;
    assert!(stream.message().await.unwrap().is_none());
    let server_span = span_for("grpc-client-watch-done").await;
    let client_span = client_span_of(&server_span).await;
    assert_rpc_client_span(&client_span, "Watch", 0);
    assert!(
        client_span.duration_nanos() >= 300_000_000,
        "{} ns",
        client_span.duration_nanos()
    );

    // A stream the client stops reading: CANCELLED on both sides.
    let mut stream = client
        .watch(request("svc.Up", "grpc-client-watch-cancel"))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().expect("a first message");
    drop(stream);
    let server_span = span_for("grpc-client-watch-cancel").await;
    assert_eq!(i(&server_span, "rpc.grpc.status_code"), Some(1));
    assert_eq!(server_span.status_code, Otel::Unset);
    let client_span = client_span_of(&server_span).await;
    assert_rpc_client_span(&client_span, "Watch", 1);
}

/// `OTEL_PROPAGATORS` on tonic: what the server layer extracts from gRPC
/// metadata, and what `ClientLayer` injects into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagators_govern_tonic_both_ways() {
    use telemetry_init::http::Propagators;
    const TID: &str = "0af7651916cd43dd8448eb211c80319c";
    const PID: &str = "b7ad6b7169203331";

    // Server side: the caller's metadata is read only as configured.
    for (set, continued) in [
        (Propagators::NONE, false),
        (Propagators::BAGGAGE, false),
        (Propagators::TRACE_CONTEXT, true),
    ] {
        let server = serve(traced_layer().propagators(set)).await;
        let mut client = HealthClient::new(channel(&server.url).await);
        let rid = format!("grpc-propagators-server-{set}");
        let mut req = request("svc.Up", &rid);
        req.metadata_mut()
            .insert("traceparent", format!("00-{TID}-{PID}-01").parse().unwrap());
        client.check(req).await.unwrap();
        let span = span_for(&rid).await;
        assert_eq!(span.trace_id == TID, continued, "{set}");
        assert_eq!(
            span.parent_span_id.as_deref() == Some(PID),
            continued,
            "{set}"
        );
    }

    // Client side: a CLIENT span is always made, but its context reaches
    // the server only when the client layer injects tracecontext.
    let server = serve(traced_layer().propagators(Propagators::W3C)).await;
    for (set, injected) in [
        (Propagators::NONE, false),
        (Propagators::BAGGAGE, false),
        (Propagators::TRACE_CONTEXT, true),
    ] {
        let svc = tower::ServiceBuilder::new()
            .layer(ClientLayer::new().propagators(set))
            .service(channel(&server.url).await);
        let mut client = HealthClient::new(svc);
        let rid = format!("grpc-propagators-client-{set}");
        client.check(request("svc.Up", &rid)).await.unwrap();
        let span = span_for(&rid).await;
        if injected {
            let client_span = client_span_of(&span).await;
            assert_eq!(client_span.trace_id, span.trace_id, "{set}");
        } else {
            assert_eq!(span.parent_span_id, None, "{set}: a new root");
        }
    }
}
