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

/// Every header set a plain downstream (no telemetry) received.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<axum::http::HeaderMap>>>;

/// A loopback downstream that records the headers of every request.
async fn recording_downstream() -> (String, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| async move {
        record.lock().unwrap().push(headers);
        "recorded"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/next"), seen)
}

/// `TELEMETRY_REQUEST_ID_HEADER` end to end, through the environment,
/// `install()`, the demo's server layer and its `send_traced()` call: the
/// configured header is read from the request, echoed on the response,
/// forwarded downstream, and the id is `request_id` on the SERVER span and
/// in the JSON lines. `x-request-id` is then neither read nor sent, and an
/// invalid value is still replaced by a generated id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_request_id_header_is_read_echoed_forwarded_and_logged() {
    const HEADER: &str = "x-correlation-id";
    const ID: &str = "corr-42";
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = receiver.grpc_endpoint();
    let (next, seen) = recording_downstream().await;
    let mut a = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_SERVICE_NAME", "demo-a"),
        ("DOWNSTREAM_URL", &next),
        // Case-insensitive, as header names are.
        ("TELEMETRY_REQUEST_ID_HEADER", "X-Correlation-ID"),
    ]);
    let client = reqwest::Client::new();

    // The configured header wins over an `x-request-id` sent beside it.
    let res = client
        .get(a.url("/chain"))
        .header(HEADER, ID)
        .header("x-request-id", "decoy-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[HEADER], ID, "echoed: {:?}", res.headers());
    assert!(
        res.headers().get("x-request-id").is_none(),
        "x-request-id is not echoed: {:?}",
        res.headers()
    );
    assert_eq!(res.text().await.unwrap(), "downstream 200 OK: recorded");

    // Only `x-request-id`, and then a value over the bound: a generated id
    // each time, echoed and forwarded under the configured header.
    let mut generated = Vec::new();
    for (name, value) in [
        ("x-request-id", "decoy-2".to_string()),
        (HEADER, "x".repeat(129)),
    ] {
        let res = client
            .get(a.url("/chain"))
            .header(name, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("x-request-id").is_none());
        let id = res.headers()[HEADER].to_str().unwrap().to_string();
        assert_ne!(id, value);
        assert_eq!(id.len(), 32, "a generated id: {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        generated.push(id);
    }
    let (code, _) = a.terminate(Duration::from_secs(10));
    assert_eq!(code, 0, "stderr: {:?}", a.stderr());

    // Forwarded downstream under the configured header only.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    for (h, id) in seen
        .iter()
        .zip([ID, generated[0].as_str(), generated[1].as_str()])
    {
        assert_eq!(
            h.get(HEADER).map(|v| v.to_str().unwrap()),
            Some(id),
            "{h:?}"
        );
        assert!(h.get("x-request-id").is_none(), "{h:?}");
    }

    // `request_id` on the SERVER span and in the JSON lines of the request.
    let spans = receiver
        .handle()
        .wait_for_spans_where(3, Duration::from_secs(10), |s| {
            s.kind == SpanKind::Server && s.service_name() == Some("demo-a")
        })
        .await
        .unwrap();
    let ids: Vec<&str> = spans.iter().filter_map(|sp| s(sp, "request_id")).collect();
    for id in [ID, generated[0].as_str(), generated[1].as_str()] {
        assert_eq!(ids.iter().filter(|i| **i == id).count(), 1, "{id}: {ids:?}");
    }
    let lines = a.json_lines();
    let messages: Vec<&str> = lines
        .iter()
        .filter(|l| l["request_id"] == ID)
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "calling downstream",
            "downstream answered",
            "request completed"
        ],
        "{lines:#?}"
    );
    let all = lines.iter().map(|l| l.to_string()).collect::<String>();
    for decoy in ["decoy-1", "decoy-2", "x".repeat(129).as_str()] {
        assert!(!all.contains(decoy), "{decoy} was used: {all}");
    }
    receiver.shutdown().await;
}
