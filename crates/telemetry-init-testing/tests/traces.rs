//! Spans sent by the OpenTelemetry SDK's own OTLP exporters, over every
//! transport, arrive complete and exact.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use common::{ALL_ROUTES, Route, TIMEOUT, resource, span_data, span_exporter, span_id, trace_id};
use opentelemetry::trace::{Event, Link, SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{Array, KeyValue, Value as OtelValue};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use telemetry_init_testing::{
    OtlpReceiver, Signal, SpanKind as Kind, StatusCode, Transport, Value,
};

fn hex_trace(n: u128) -> String {
    trace_id(n).to_string()
}

fn hex_span(n: u64) -> String {
    span_id(n).to_string()
}

/// A span with every kind of field set.
fn rich_span(trace: u128, span: u64, parent: u64) -> SpanData {
    let mut s = span_data(
        trace,
        span,
        Some(parent),
        "GET /users/{id}",
        SpanKind::Server,
    );
    s.attributes.extend([
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.response.status_code", 500_i64),
        KeyValue::new("sampled.ratio", 0.25_f64),
        KeyValue::new("cache.hit", false),
        KeyValue::new(
            "tags",
            OtelValue::Array(Array::String(vec!["a".into(), "b".into()])),
        ),
    ]);
    s.status = Status::error("upstream failed");
    s.events.events.push(Event::new(
        "exception",
        s.start_time + Duration::from_millis(1),
        vec![KeyValue::new("exception.message", "boom")],
        0,
    ));
    s.links.links.push(Link::new(
        SpanContext::new(
            trace_id(999),
            span_id(999),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ),
        vec![KeyValue::new("link.kind", "follows")],
        0,
    ));
    s
}

/// One batch per route, each from its own service, to one receiver.
async fn deliver_over_every_route() {
    let rx = OtlpReceiver::start().await.expect("receiver starts");
    const PER_ROUTE: u64 = 50;
    for (i, route) in ALL_ROUTES.iter().enumerate() {
        let i = i as u128 + 1;
        let mut exporter = span_exporter(&rx, *route, TIMEOUT);
        exporter.set_resource(&resource(&format!("svc-{i}")));
        let mut batch = vec![span_data(i, 0, None, "root", SpanKind::Client)];
        for s in 1..PER_ROUTE - 1 {
            batch.push(span_data(
                i,
                s,
                Some(0),
                &format!("child-{s}"),
                SpanKind::Internal,
            ));
        }
        batch.push(rich_span(i, PER_ROUTE - 1, 0));
        exporter
            .export(batch)
            .await
            .unwrap_or_else(|e| panic!("{route:?}: {e}"));
    }
    let total = PER_ROUTE as usize * ALL_ROUTES.len();
    let spans = rx
        .wait_for_spans(total, TIMEOUT)
        .await
        .expect("all spans arrive");
    assert_eq!(spans.len(), total, "exactly the spans sent, no duplicates");

    for (i, route) in ALL_ROUTES.iter().enumerate() {
        let i = i as u128 + 1;
        let service = format!("svc-{i}");
        let mine: Vec<_> = spans
            .iter()
            .filter(|s| s.service_name() == Some(&service))
            .collect();
        assert_eq!(mine.len(), PER_ROUTE as usize, "{route:?}");
        let ids: BTreeSet<String> = mine.iter().map(|s| s.span_id.clone()).collect();
        let expected: BTreeSet<String> = (0..PER_ROUTE).map(hex_span).collect();
        assert_eq!(ids, expected, "{route:?}: span ids");
        for s in &mine {
            assert_eq!(s.trace_id, hex_trace(i), "{route:?}");
            assert_eq!(s.trace_id.len(), 32);
            assert_eq!(s.transport, route.transport, "{route:?}");
            assert_eq!(s.scope_name, "telemetry-init-testing-tests");
            assert_eq!(
                s.resource.get("deployment.environment"),
                Some(&Value::from("test"))
            );
            let index = s
                .attr("test.index")
                .and_then(Value::as_i64)
                .expect("test.index");
            assert_eq!(hex_span(index as u64), s.span_id, "{route:?}");
            assert_eq!(s.duration_nanos(), 5_000_000);
        }
        let root = mine.iter().find(|s| s.name == "root").expect("root");
        assert_eq!(root.parent_span_id, None);
        assert_eq!(root.kind, Kind::Client);
        for s in mine.iter().filter(|s| s.name != "root") {
            assert_eq!(
                s.parent_span_id.as_deref(),
                Some(hex_span(0).as_str()),
                "{route:?}"
            );
        }
        let rich = mine
            .iter()
            .find(|s| s.name == "GET /users/{id}")
            .expect("rich span");
        assert_eq!(rich.kind, Kind::Server);
        assert_eq!(rich.status_code, StatusCode::Error);
        assert_eq!(rich.status_message, "upstream failed");
        assert_eq!(
            rich.attr("http.request.method").and_then(Value::as_str),
            Some("GET")
        );
        assert_eq!(
            rich.attr("http.response.status_code")
                .and_then(Value::as_i64),
            Some(500)
        );
        assert_eq!(
            rich.attr("sampled.ratio").and_then(Value::as_f64),
            Some(0.25)
        );
        assert_eq!(rich.attr("cache.hit").and_then(Value::as_bool), Some(false));
        assert_eq!(
            rich.attr("tags"),
            Some(&Value::Array(vec![Value::from("a"), Value::from("b")]))
        );
        assert_eq!(rich.events.len(), 1);
        assert_eq!(rich.events[0].name, "exception");
        assert_eq!(
            rich.events[0].attributes.get("exception.message"),
            Some(&Value::from("boom"))
        );
        assert_eq!(rich.links.len(), 1);
        assert_eq!(rich.links[0].trace_id, hex_trace(999));
        assert_eq!(rich.links[0].span_id, hex_span(999));
    }
    // Two routes (plain and gzip) per transport, one request each.
    for t in Transport::ALL {
        assert_eq!(rx.export_requests(t, Signal::Traces), 2, "{t}");
        assert_eq!(rx.export_requests(t, Signal::Logs), 0, "{t}");
    }
    let stats = rx.stats();
    assert_eq!(stats.accepted_requests, 6);
    assert_eq!(stats.gzip_requests, 3, "one gzip route per transport");
    assert_eq!(stats.rejected_requests, 0);
    assert_eq!(stats.evicted_spans, 0);
    rx.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn every_transport_delivers_exact_spans_current_thread() {
    deliver_over_every_route().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_delivers_exact_spans_multi_thread() {
    deliver_over_every_route().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_spans_in_one_export_per_transport() {
    let rx = OtlpReceiver::start().await.unwrap();
    const N: u64 = 10_000;
    let routes = [
        Route {
            transport: Transport::Grpc,
            gzip: true,
        },
        Route {
            transport: Transport::HttpProtobuf,
            gzip: false,
        },
        Route {
            transport: Transport::HttpJson,
            gzip: true,
        },
    ];
    for (i, route) in routes.iter().enumerate() {
        let trace = 100 + i as u128;
        let mut exporter = span_exporter(&rx, *route, TIMEOUT);
        exporter.set_resource(&resource("bulk"));
        let batch: Vec<SpanData> = (0..N)
            .map(|s| {
                span_data(
                    trace,
                    s,
                    (s > 0).then_some(0),
                    &format!("op-{s}"),
                    SpanKind::Internal,
                )
            })
            .collect();
        let started = std::time::Instant::now();
        exporter
            .export(batch)
            .await
            .unwrap_or_else(|e| panic!("{route:?}: {e}"));
        // The answer comes as soon as the request is decoded and stored.
        assert!(
            started.elapsed() < TIMEOUT,
            "{route:?} took {:?}",
            started.elapsed()
        );
        let spans = rx
            .wait_for_spans(N as usize * (i + 1), TIMEOUT)
            .await
            .unwrap();
        let mine: Vec<_> = spans
            .iter()
            .filter(|s| s.trace_id == hex_trace(trace))
            .collect();
        assert_eq!(mine.len(), N as usize, "{route:?}");
        let ids: HashSet<&str> = mine.iter().map(|s| s.span_id.as_str()).collect();
        assert_eq!(ids.len(), N as usize, "{route:?}: distinct ids");
        for s in &mine {
            let index = s.attr("test.index").and_then(Value::as_i64).unwrap() as u64;
            assert_eq!(s.span_id, hex_span(index));
            assert_eq!(s.name, format!("op-{index}"));
            assert_eq!(s.transport, route.transport);
        }
        assert_eq!(rx.export_requests(route.transport, Signal::Traces), 1);
    }
    assert_eq!(rx.spans().len(), 3 * N as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exporters_lose_nothing() {
    let rx = OtlpReceiver::start().await.unwrap();
    const BATCHES: u64 = 20;
    const PER_BATCH: u64 = 50;
    let mut tasks = Vec::new();
    for (e, route) in ALL_ROUTES.iter().enumerate() {
        let mut exporter = span_exporter(&rx, *route, TIMEOUT);
        exporter.set_resource(&resource(&format!("concurrent-{e}")));
        let route = *route;
        tasks.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                let trace = 1_000 + (e as u128) * 100 + b as u128;
                let batch: Vec<SpanData> = (0..PER_BATCH)
                    .map(|s| span_data(trace, s, None, "work", SpanKind::Producer))
                    .collect();
                exporter
                    .export(batch)
                    .await
                    .unwrap_or_else(|err| panic!("{route:?}: {err}"));
            }
        }));
    }
    for t in tasks {
        t.await.expect("exporter task");
    }
    let total = ALL_ROUTES.len() as u64 * BATCHES * PER_BATCH;
    let spans = rx.wait_for_spans(total as usize, TIMEOUT).await.unwrap();
    assert_eq!(spans.len(), total as usize);
    let got: HashSet<(String, String)> = spans
        .iter()
        .map(|s| (s.trace_id.clone(), s.span_id.clone()))
        .collect();
    let mut expected = HashSet::new();
    for e in 0..ALL_ROUTES.len() as u128 {
        for b in 0..BATCHES as u128 {
            for s in 0..PER_BATCH {
                expected.insert((hex_trace(1_000 + e * 100 + b), hex_span(s)));
            }
        }
    }
    assert_eq!(got, expected);
    for t in Transport::ALL {
        assert_eq!(rx.export_requests(t, Signal::Traces), 2 * BATCHES, "{t}");
        let n = spans.iter().filter(|s| s.transport == t).count() as u64;
        assert_eq!(n, 2 * BATCHES * PER_BATCH, "{t}");
    }
}

/// The full SDK pipeline (tracer provider, simple processor) rather than
/// hand-built batches: nested spans keep their parent links.
async fn sdk_pipeline(route: Route) {
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    let rx = OtlpReceiver::start().await.unwrap();
    let exporter = span_exporter(&rx, route, TIMEOUT);
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(resource("pipeline"))
        .build();
    // The simple processor blocks on each export: run it off the async workers.
    let p = provider.clone();
    let (outer_ids, inner_ids) = tokio::task::spawn_blocking(move || {
        let tracer = p.tracer("pipeline-tests");
        tracer.in_span("outer", |cx| {
            use opentelemetry::trace::TraceContextExt as _;
            let outer = cx.span().span_context().clone();
            let inner = tracer.in_span("inner", |cx| cx.span().span_context().clone());
            (outer, inner)
        })
    })
    .await
    .unwrap();
    let spans = rx.wait_for_spans(2, TIMEOUT).await.unwrap();
    assert_eq!(spans.len(), 2);
    let outer = spans.iter().find(|s| s.name == "outer").unwrap();
    let inner = spans.iter().find(|s| s.name == "inner").unwrap();
    assert_eq!(outer.trace_id, outer_ids.trace_id().to_string());
    assert_eq!(outer.span_id, outer_ids.span_id().to_string());
    assert_eq!(inner.span_id, inner_ids.span_id().to_string());
    assert_eq!(inner.trace_id, outer.trace_id);
    assert_eq!(
        inner.parent_span_id.as_deref(),
        Some(outer.span_id.as_str())
    );
    assert_eq!(outer.parent_span_id, None);
    assert_eq!(inner.scope_name, "pipeline-tests");
    assert_eq!(outer.service_name(), Some("pipeline"));
    assert_eq!(outer.transport, route.transport);
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn sdk_pipeline_grpc_current_thread() {
    sdk_pipeline(Route {
        transport: Transport::Grpc,
        gzip: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_pipeline_http_json() {
    sdk_pipeline(Route {
        transport: Transport::HttpJson,
        gzip: false,
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn sdk_pipeline_http_protobuf_gzip_current_thread() {
    sdk_pipeline(Route {
        transport: Transport::HttpProtobuf,
        gzip: true,
    })
    .await;
}

#[tokio::test]
async fn fixed_addresses_and_endpoints() {
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let rx = OtlpReceiver::start_on(any, any).await.unwrap();
    assert_ne!(rx.grpc_addr().port(), 0);
    assert_ne!(rx.http_addr().port(), rx.grpc_addr().port());
    assert_eq!(
        rx.grpc_endpoint(),
        format!("http://127.0.0.1:{}", rx.grpc_addr().port())
    );
    assert_eq!(
        rx.http_endpoint(),
        format!("http://127.0.0.1:{}", rx.http_addr().port())
    );
    // A second receiver on a taken port fails with a bind error naming it.
    let err = OtlpReceiver::start_on(rx.grpc_addr(), any)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("gRPC"), "{err}");
    assert!(
        err.to_string().contains(&rx.grpc_addr().to_string()),
        "{err}"
    );
}

/// OTLP/JSON as another SDK or a collector writes it (hex ids, int64 as
/// strings, enum numbers), posted by hand.
#[tokio::test]
async fn handwritten_otlp_json_traces_are_decoded() {
    let rx = OtlpReceiver::start().await.unwrap();
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"js-frontend"}}]},
      "scopeSpans":[{"scope":{"name":"manual","version":"1.0"},"spans":[
        {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173",
         "name":"I'm a server span","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
         "attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}},{"key":"retries","value":{"intValue":"3"}}],
         "status":{"code":2,"message":"bad"}}]}]}]}"#;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/traces", rx.http_endpoint()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let spans = rx.wait_for_spans(1, TIMEOUT).await.unwrap();
    let s = &spans[0];
    assert_eq!(s.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(s.span_id, "eee19b7ec3c1b174");
    assert_eq!(s.parent_span_id.as_deref(), Some("eee19b7ec3c1b173"));
    assert_eq!(s.kind, Kind::Server);
    assert_eq!(s.status_code, StatusCode::Error);
    assert_eq!(s.start_unix_nanos, 1_544_712_660_000_000_000);
    assert_eq!(s.attr("retries").and_then(Value::as_i64), Some(3));
    assert_eq!(s.service_name(), Some("js-frontend"));
    assert_eq!(s.transport, Transport::HttpJson);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_waits_and_snapshot_limits() {
    let rx = OtlpReceiver::start().await.unwrap();
    let mut exporter = span_exporter(
        &rx,
        Route {
            transport: Transport::Grpc,
            gzip: false,
        },
        TIMEOUT,
    );
    exporter.set_resource(&resource("snap"));
    for t in 1..=5u128 {
        // Span 2's parent (span 9) is never sent: it is shown as a root.
        let batch = vec![
            span_data(t, 1, None, "root", SpanKind::Server),
            span_data(t, 2, Some(9), "orphan", SpanKind::Internal),
            span_data(t, 3, Some(1), "child", SpanKind::Client),
        ];
        exporter.export(batch).await.unwrap();
    }
    let third = rx
        .wait_for_spans_where(3, TIMEOUT, |s| s.trace_id == hex_trace(3))
        .await
        .unwrap();
    assert_eq!(third.len(), 3);
    assert!(third.iter().all(|s| s.trace_id == hex_trace(3)));
    let err = rx
        .wait_for_spans_where(1, Duration::from_millis(50), |s| s.name == "missing")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only 0 arrived"), "{err}");

    let snap = rx.snapshot_json_with_limit(2);
    let traces = snap["traces"].as_array().unwrap();
    let ids: Vec<&str> = traces
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [hex_trace(5), hex_trace(4)], "most recent first");
    let roots: Vec<&str> = traces[0]["root_spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roots, ["root", "orphan"]);
    assert_eq!(traces[0]["root_spans"][0]["children"][0]["name"], "child");
    assert_eq!(snap["stats"]["stored_spans"], 15);
    assert_eq!(rx.snapshot_json()["traces"].as_array().unwrap().len(), 5);
}

#[test]
fn receiver_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<OtlpReceiver>();
    check::<telemetry_init_testing::ReceiverHandle>();
}
