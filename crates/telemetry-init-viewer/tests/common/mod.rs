//! Shared helpers: hand-built OTLP requests (real protobuf on the wire) and
//! a viewer on ephemeral loopback ports over a temporary database.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use telemetry_init_viewer::{Viewer, ViewerBuilder};

pub(crate) fn kv(key: &str, v: impl Into<Val>) -> KeyValue {
    let value = match v.into() {
        Val::S(s) => any_value::Value::StringValue(s),
        Val::I(i) => any_value::Value::IntValue(i),
    };
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(crate) enum Val {
    S(String),
    I(i64),
}
impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Val::S(s.into())
    }
}
impl From<i64> for Val {
    fn from(i: i64) -> Self {
        Val::I(i)
    }
}

pub(crate) fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service), kv("service.version", "1.0.0")],
        ..Default::default()
    })
}

pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub(crate) fn trace_id(n: u64) -> Vec<u8> {
    let mut id = vec![0xab; 8];
    id.extend_from_slice(&n.to_be_bytes());
    id
}

pub(crate) fn span_id(n: u64) -> Vec<u8> {
    (n | 1 << 63).to_be_bytes().to_vec()
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A typical HTTP server span.
pub(crate) fn server_span(
    trace: u64,
    span: u64,
    route: &str,
    status: i64,
    start_ns: u64,
    dur_us: u64,
) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: span_id(span),
        name: format!("GET {route}"),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + dur_us * 1000,
        attributes: vec![
            kv("http.request.method", "GET"),
            kv("http.route", route),
            kv("url.path", route.replace("{id}", "42").as_str()),
            kv("http.response.status_code", status),
        ],
        status: Some(Status {
            code: if status >= 500 { 2 } else { 0 },
            message: String::new(),
        }),
        ..Default::default()
    }
}

pub(crate) fn child_span(
    trace: u64,
    span: u64,
    parent: u64,
    name: &str,
    kind: span::SpanKind,
    start_ns: u64,
    dur_us: u64,
) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: span_id(span),
        parent_span_id: span_id(parent),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + dur_us * 1000,
        ..Default::default()
    }
}

pub(crate) fn traces(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub(crate) fn log(
    body: &str,
    severity: i32,
    text: &str,
    trace: Option<(u64, u64)>,
    time_ns: u64,
) -> LogRecord {
    LogRecord {
        time_unix_nano: time_ns,
        observed_time_unix_nano: time_ns,
        severity_number: severity,
        severity_text: text.into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        attributes: vec![kv("user.id", 7)],
        trace_id: trace.map(|t| trace_id(t.0)).unwrap_or_default(),
        span_id: trace.map(|t| span_id(t.1)).unwrap_or_default(),
        ..Default::default()
    }
}

pub(crate) fn logs(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub(crate) fn metrics(service: &str, time_ns: u64, counter: i64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(service),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics: vec![
                    Metric {
                        name: "requests_total".into(),
                        description: "requests".into(),
                        unit: "1".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                attributes: vec![kv("http.route", "/users/{id}")],
                                time_unix_nano: time_ns,
                                value: Some(number_data_point::Value::AsInt(counter)),
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "http.server.request.duration".into(),
                        unit: "s".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: vec![kv("http.route", "/users/{id}")],
                                time_unix_nano: time_ns,
                                count: 4,
                                sum: Some(1.0),
                                bucket_counts: vec![1, 2, 1],
                                explicit_bounds: vec![0.1, 0.5],
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        })),
                        ..Default::default()
                    },
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub(crate) fn builder(dir: &tempfile::TempDir) -> ViewerBuilder {
    Viewer::builder()
        .db_path(dir.path().join("viewer.db"))
        .ephemeral_ports()
        .batch_interval(std::time::Duration::from_millis(20))
}

pub(crate) async fn get_json(viewer: &Viewer, path: &str) -> (u16, serde_json::Value) {
    let url = format!("http://{}{path}", viewer.ui_addr());
    let resp = reqwest::get(&url).await.expect("GET");
    let status = resp.status().as_u16();
    let body = resp.json().await.expect("JSON body");
    (status, body)
}
