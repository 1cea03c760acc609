//! A stored trace as an OTLP/JSON `ExportTraceServiceRequest`, to attach to
//! a bug report or replay into another collector.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::Value as Json;

use crate::store::encode::parse_hex;
use crate::store::query::TraceView;

fn any(v: &Json) -> AnyValue {
    let value = match v {
        Json::Null => None,
        Json::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Json::Number(n) => Some(match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
        }),
        Json::String(s) => Some(any_value::Value::StringValue(s.clone())),
        Json::Array(a) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: a.iter().map(any).collect(),
        })),
        Json::Object(o) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: kvs(&Json::Object(o.clone())),
        })),
    };
    AnyValue { value }
}

fn kvs(attrs: &Json) -> Vec<KeyValue> {
    match attrs {
        Json::Object(o) => o
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: Some(any(v)),
                ..Default::default()
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn kind(k: &str) -> i32 {
    match k {
        "INTERNAL" => 1,
        "SERVER" => 2,
        "CLIENT" => 3,
        "PRODUCER" => 4,
        "CONSUMER" => 5,
        _ => 0,
    }
}

fn status(c: &str) -> i32 {
    match c {
        "OK" => 1,
        "ERROR" => 2,
        _ => 0,
    }
}

fn us_to_ns(us: i64) -> u64 {
    (us.max(0) as u64).saturating_mul(1000)
}

/// The trace's spans grouped by resource and scope.
pub(crate) fn export_request(t: &TraceView) -> ExportTraceServiceRequest {
    let trace_id = parse_hex(&t.trace_id, 16).unwrap_or_default();
    // resource JSON text -> scope -> spans
    let mut groups: BTreeMap<String, (Json, BTreeMap<String, Vec<Span>>)> = BTreeMap::new();
    for s in &t.spans {
        let key = s.resource.to_string();
        let entry = groups
            .entry(key)
            .or_insert_with(|| (s.resource.clone(), BTreeMap::new()));
        entry
            .1
            .entry(s.scope.clone().unwrap_or_default())
            .or_default()
            .push(Span {
                trace_id: trace_id.clone(),
                span_id: parse_hex(&s.span_id, 8).unwrap_or_default(),
                trace_state: String::new(),
                parent_span_id: s
                    .parent_span_id
                    .as_deref()
                    .and_then(|p| parse_hex(p, 8))
                    .unwrap_or_default(),
                flags: 0,
                name: s.name.clone(),
                kind: kind(s.kind),
                start_time_unix_nano: us_to_ns(s.start_us),
                end_time_unix_nano: us_to_ns(s.end_us),
                attributes: kvs(&s.attributes),
                dropped_attributes_count: 0,
                events: s
                    .events
                    .iter()
                    .map(|e| span::Event {
                        time_unix_nano: us_to_ns(e.time_us),
                        name: e.name.clone(),
                        attributes: kvs(&e.attributes),
                        dropped_attributes_count: 0,
                    })
                    .collect(),
                dropped_events_count: 0,
                links: s
                    .links
                    .iter()
                    .map(|l| span::Link {
                        trace_id: parse_hex(&l.trace_id, 16).unwrap_or_default(),
                        span_id: parse_hex(&l.span_id, 8).unwrap_or_default(),
                        trace_state: String::new(),
                        attributes: kvs(&l.attributes),
                        dropped_attributes_count: 0,
                        flags: 0,
                    })
                    .collect(),
                dropped_links_count: 0,
                status: Some(Status {
                    message: s.status_message.clone().unwrap_or_default(),
                    code: status(s.status_code),
                }),
            });
    }
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_values()
            .map(|(resource, scopes)| ResourceSpans {
                resource: Some(Resource {
                    attributes: kvs(&resource),
                    dropped_attributes_count: 0,
                    entity_refs: Vec::new(),
                }),
                scope_spans: scopes
                    .into_iter()
                    .map(|(scope, spans)| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: scope,
                            ..Default::default()
                        }),
                        spans,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}
