//! Two real demo processes, A calling B: one trace across both, with the
//! caller's trace state, baggage and request id carried all the way.

mod support;

use std::time::Duration;

use support::Demo;
use telemetry_init_testing::{OtlpReceiver, ReceivedSpan, SpanKind};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const TRACESTATE: &str = "congo=t61rcWkgMzE";
const REQUEST_ID: &str = "chain-123";

fn s<'a>(span: &'a ReceivedSpan, key: &str) -> Option<&'a str> {
    span.attr(key).and_then(|v| v.as_str())
}

fn the<'a>(
    spans: &'a [ReceivedSpan],
    service: &str,
    kind: SpanKind,
    all: &[ReceivedSpan],
) -> &'a ReceivedSpan {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.service_name() == Some(service) && s.kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind:?} span of {service}: {all:#?}");
    found[0]
}

/// stdout lines of `demo` logged inside the request `REQUEST_ID`.
fn request_lines(demo: &Demo) -> Vec<serde_json::Value> {
    demo.json_lines()
        .into_iter()
        .filter(|l| l["request_id"].as_str() == Some(REQUEST_ID))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_across_two_services() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = receiver.grpc_endpoint();
    let mut b = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_SERVICE_NAME", "demo-b"),
    ]);
    let downstream = b.url("/hello");
    let mut a = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_SERVICE_NAME", "demo-a"),
        ("DOWNSTREAM_URL", &downstream),
    ]);

    let res = reqwest::Client::new()
        .get(a.url("/chain"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .header("tracestate", TRACESTATE)
        .header("baggage", "tenant=acme")
        .header("x-request-id", REQUEST_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], REQUEST_ID);
    assert_eq!(res.text().await.unwrap(), "downstream 200 OK: hello\n");

    for demo in [&mut a, &mut b] {
        let (code, _) = demo.terminate(Duration::from_secs(10));
        assert_eq!(code, 0, "stderr: {:?}", demo.stderr());
    }

    let handle = receiver.handle();
    let spans = handle.spans();
    assert_eq!(spans.len(), 3, "A server, A client, B server: {spans:#?}");
    assert!(
        spans.iter().all(|s| s.trace_id == TRACE_ID),
        "one trace, the caller's: {spans:#?}"
    );
    let a_server = the(&spans, "demo-a", SpanKind::Server, &spans);
    let a_client = the(&spans, "demo-a", SpanKind::Client, &spans);
    let b_server = the(&spans, "demo-b", SpanKind::Server, &spans);

    // A continues the caller's trace.
    assert_eq!(a_server.name, "GET /chain");
    assert_eq!(a_server.parent_span_id.as_deref(), Some(CALLER_SPAN));
    assert_eq!(a_server.trace_state, TRACESTATE);
    assert_eq!(s(a_server, "request_id"), Some(REQUEST_ID));

    // A's outgoing call is a child of A's request.
    assert_eq!(a_client.name, "GET");
    assert_eq!(
        a_client.parent_span_id.as_deref(),
        Some(a_server.span_id.as_str())
    );
    assert_eq!(s(a_client, "url.full"), Some(downstream.as_str()));
    assert_eq!(
        a_client
            .attr("http.response.status_code")
            .and_then(|v| v.as_i64()),
        Some(200)
    );
    assert_eq!(a_client.trace_state, TRACESTATE);

    // B's request is a child of A's call, with the caller's trace state.
    assert_eq!(b_server.name, "GET /hello");
    assert_eq!(
        b_server.parent_span_id.as_deref(),
        Some(a_client.span_id.as_str())
    );
    assert_eq!(b_server.trace_state, TRACESTATE, "tracestate reaches B");
    assert_eq!(s(b_server, "request_id"), Some(REQUEST_ID));

    // Baggage reaches B: its handler logs the tenant, on stdout and in the
    // exported log record of B's span.
    let b_lines = request_lines(&b);
    let hello = b_lines
        .iter()
        .find(|l| l["message"] == "saying hello")
        .unwrap_or_else(|| panic!("B's handler line: {b_lines:#?}"));
    assert_eq!(hello["tenant"], "acme", "baggage reaches B: {hello}");
    assert_eq!(hello["trace_id"], TRACE_ID);
    assert_eq!(hello["span_id"], b_server.span_id.as_str());
    let b_log = handle
        .logs()
        .into_iter()
        .find(|l| l.body_str() == Some("saying hello"))
        .expect("B's handler log record");
    assert_eq!(b_log.service_name(), Some("demo-b"));
    assert_eq!(b_log.span_id.as_deref(), Some(b_server.span_id.as_str()));
    assert_eq!(b_log.attr("tenant").and_then(|v| v.as_str()), Some("acme"));

    // The request id is in both processes' lines, with the trace id.
    let a_lines = request_lines(&a);
    for (name, lines, expected) in [
        (
            "A",
            &a_lines,
            &[
                "calling downstream",
                "downstream answered",
                "request completed",
            ][..],
        ),
        ("B", &b_lines, &["saying hello", "request completed"][..]),
    ] {
        let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
        assert_eq!(messages, expected, "{name}'s lines of {REQUEST_ID}");
        assert!(
            lines.iter().all(|l| l["trace_id"] == TRACE_ID),
            "{name}: {lines:#?}"
        );
    }
    receiver.shutdown().await;
}

/// The edge setting through the environment, install() and the demo's
/// layer: with `TELEMETRY_TRUST_INCOMING_CONTEXT=false` the caller's trace
/// is not continued (a new root, the caller's context as a link), and its
/// tracestate and baggage are not read or forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_service_starts_its_own_trace() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = receiver.grpc_endpoint();
    let mut b = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_SERVICE_NAME", "demo-b"),
    ]);
    let downstream = b.url("/hello");
    let mut edge = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_SERVICE_NAME", "edge"),
        ("DOWNSTREAM_URL", &downstream),
        ("TELEMETRY_TRUST_INCOMING_CONTEXT", "false"),
    ]);
    let res = reqwest::Client::new()
        .get(edge.url("/chain"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .header("tracestate", TRACESTATE)
        .header("baggage", "tenant=acme")
        .header("x-request-id", REQUEST_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for demo in [&mut edge, &mut b] {
        let (code, _) = demo.terminate(Duration::from_secs(10));
        assert_eq!(code, 0, "stderr: {:?}", demo.stderr());
    }

    let spans = receiver.handle().spans();
    let server = the(&spans, "edge", SpanKind::Server, &spans);
    assert_ne!(server.trace_id, TRACE_ID, "a new trace: {server:#?}");
    assert_eq!(server.parent_span_id, None, "a root span: {server:#?}");
    assert_eq!(
        server.trace_state, "",
        "the caller's tracestate is not kept"
    );
    assert_eq!(server.links.len(), 1, "{server:#?}");
    assert_eq!(server.links[0].trace_id, TRACE_ID);
    assert_eq!(server.links[0].span_id, CALLER_SPAN);
    // Downstream continues the edge's trace, without the caller's state.
    let b_server = the(&spans, "demo-b", SpanKind::Server, &spans);
    assert_eq!(b_server.trace_id, server.trace_id);
    assert_eq!(b_server.trace_state, "");
    let hello = b
        .json_lines()
        .into_iter()
        .find(|l| l["message"] == "saying hello")
        .expect("B's handler line");
    assert!(
        hello.get("tenant").is_none(),
        "the caller's baggage stops at the edge: {hello}"
    );
}
