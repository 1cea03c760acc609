//! The encoder must write exactly what opentelemetry-otlp's path writes.

use super::*;
use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceId};
use opentelemetry::{KeyValue, StringValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
use prost::Message;
use std::borrow::Cow;
use std::time::Duration;

fn cx(trace: u128, span: u64, state: TraceState, remote: bool) -> SpanContext {
    SpanContext::new(
        TraceId::from(trace),
        SpanId::from(span),
        TraceFlags::SAMPLED,
        remote,
        state,
    )
}

fn span(n: u64, scope: &InstrumentationScope) -> SpanData {
    let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + n);
    SpanData {
        span_context: cx(
            0xabcdef + u128::from(n),
            0x1234 + n,
            TraceState::NONE,
            false,
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("GET /users/{id}"),
        start_time: start,
        end_time: start + Duration::from_micros(250),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.response.status_code", 200_i64),
            KeyValue::new("url.path", "/users/42"),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope.clone(),
    }
}

fn rich_span(scope: &InstrumentationScope) -> SpanData {
    let mut s = span(7, scope);
    let state = TraceState::from_key_value([("vendor", "v1"), ("other", "x")]).unwrap();
    s.span_context = cx(u128::MAX - 3, 0xfeed, state.clone(), false);
    s.parent_span_id = SpanId::from(0x77);
    s.parent_span_is_remote = true;
    s.span_kind = SpanKind::Client;
    s.name = Cow::Owned("a much longer span name ".repeat(12));
    s.attributes = vec![
        KeyValue::new("bool", true),
        KeyValue::new("false", false),
        KeyValue::new("neg", -5_i64),
        KeyValue::new("zero", 0_i64),
        KeyValue::new("f", 1.5_f64),
        KeyValue::new("empty", ""),
        KeyValue::new("big", "x".repeat(300)),
        KeyValue::new("a_bool", Value::Array(Array::Bool(vec![true, false]))),
        KeyValue::new("a_i64", Value::Array(Array::I64(vec![1, -2, 0]))),
        KeyValue::new("a_f64", Value::Array(Array::F64(vec![0.0, 2.25]))),
        KeyValue::new(
            "a_str",
            Value::Array(Array::String(vec![StringValue::from("a"), "".into()])),
        ),
    ];
    s.dropped_attributes_count = 3;
    s.events.events.push(opentelemetry::trace::Event::new(
        "exception",
        s.start_time + Duration::from_micros(10),
        vec![KeyValue::new("exception.message", "boom")],
        2,
    ));
    s.events
        .events
        .push(opentelemetry::trace::Event::with_name(""));
    s.events.dropped_count = 4;
    s.links.links.push(opentelemetry::trace::Link::new(
        cx(5, 6, state, true),
        vec![KeyValue::new("link.kind", "follows")],
        1,
    ));
    s.links
        .links
        .push(opentelemetry::trace::Link::with_context(cx(
            9,
            10,
            TraceState::NONE,
            false,
        )));
    s.links.dropped_count = 5;
    s.status = Status::error("it broke");
    s
}

fn sdk_bytes(batch: Vec<SpanData>, resource: &Resource) -> Vec<u8> {
    let resource = ResourceAttributesWithSchema::from(resource);
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(batch, &resource),
    }
    .encode_to_vec()
}

/// Byte equality, reported as the first differing offset (batches are large).
fn assert_same(ours: &[u8], sdk: &[u8]) {
    let first = ours.iter().zip(sdk).position(|(a, b)| a != b);
    assert!(
        first.is_none() && ours.len() == sdk.len(),
        "encodings differ at byte {first:?} (lengths {} vs {})",
        ours.len(),
        sdk.len()
    );
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "demo"),
            KeyValue::new("process.pid", 42_i64),
        ])
        .build()
}

#[test]
fn bytes_match_the_sdk_path() {
    let a = InstrumentationScope::builder("tracing-opentelemetry")
        .with_version("0.34.0")
        .build();
    let b = InstrumentationScope::builder("other")
        .with_attributes([KeyValue::new("scope.attr", 1_i64)])
        .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
        .build();
    let batch = vec![
        span(1, &a),
        rich_span(&b),
        span(2, &a),
        rich_span(&a),
        span(3, &b),
    ];
    for resource in [resource(), Resource::builder_empty().build()] {
        let ours = SpanEncoder::new(&resource).encode(&batch);
        assert_same(&ours, &sdk_bytes(batch.clone(), &resource));
    }
}

#[test]
fn resource_schema_url_and_a_large_batch() {
    let resource = Resource::builder_empty()
        .with_schema_url([KeyValue::new("k", "v")], "https://example.com/schema")
        .build();
    let scope = InstrumentationScope::builder("s").build();
    let batch: Vec<SpanData> = (0..600).map(|n| span(n, &scope)).collect();
    let mut encoder = SpanEncoder::new(&resource);
    // Twice: the reused buffer must not leak the first batch into the second.
    let first = encoder.encode(&batch);
    let second = encoder.encode(&batch);
    let expected = sdk_bytes(batch, &resource);
    assert_same(&first, &expected);
    assert_same(&second, &expected);
    let decoded = ExportTraceServiceRequest::decode(second).unwrap();
    assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 600);
}
