//! Typed, owned views of received telemetry: [`ReceivedSpan`],
//! [`ReceivedLog`] and [`ReceivedMetric`].

use std::collections::BTreeMap;
use std::fmt;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde::Serialize;

use crate::value::{Value, attributes_map, hex, optional_id};

/// The way an export request reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a binary protobuf body (`application/x-protobuf`).
    HttpProtobuf,
    /// OTLP/HTTP with a JSON body (`application/json`).
    HttpJson,
}

impl Transport {
    /// Every transport, in declaration order.
    pub const ALL: [Transport; 3] = [
        Transport::Grpc,
        Transport::HttpProtobuf,
        Transport::HttpJson,
    ];
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "http/protobuf",
            Transport::HttpJson => "http/json",
        })
    }
}

/// A telemetry signal: the one type of every telemetry-init crate, from
/// the dependency-free `telemetry-init-semconv` (this receiver must not pull
/// in a metrics recorder or the OpenTelemetry SDK just to name a signal).
pub use telemetry_init_semconv::Signal;

/// Serializes a [`Signal`] by its name (`"traces"`, `"logs"`, `"metrics"`):
/// the type lives in a crate without serde.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes `serialize_with` a reference
pub(crate) fn serialize_signal<S: serde::Serializer>(
    s: &Signal,
    ser: S,
) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

/// The kind of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SpanKind {
    /// `SPAN_KIND_UNSPECIFIED` (or an unknown value).
    Unspecified,
    /// `SPAN_KIND_INTERNAL`.
    Internal,
    /// `SPAN_KIND_SERVER`.
    Server,
    /// `SPAN_KIND_CLIENT`.
    Client,
    /// `SPAN_KIND_PRODUCER`.
    Producer,
    /// `SPAN_KIND_CONSUMER`.
    Consumer,
}

impl SpanKind {
    fn from_i32(v: i32) -> Self {
        match v {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpanKind::Unspecified => "UNSPECIFIED",
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        })
    }
}

/// The status code of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusCode {
    /// `STATUS_CODE_UNSET` (also used when no status was sent).
    Unset,
    /// `STATUS_CODE_OK`.
    Ok,
    /// `STATUS_CODE_ERROR`.
    Error,
}

/// An event recorded on a span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanEvent {
    /// Event name.
    pub name: String,
    /// Event time, nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
    /// Event attributes.
    pub attributes: BTreeMap<String, Value>,
}

/// A link from a span to another span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanLink {
    /// Linked trace id (32 lowercase hex digits).
    pub trace_id: String,
    /// Linked span id (16 lowercase hex digits).
    pub span_id: String,
    /// Link attributes.
    pub attributes: BTreeMap<String, Value>,
}

/// One received span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedSpan {
    /// Trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// Span id, 16 lowercase hex digits.
    pub span_id: String,
    /// Parent span id (16 hex digits), `None` for a root span.
    pub parent_span_id: Option<String>,
    /// W3C trace state, as sent (often empty).
    pub trace_state: String,
    /// Span name.
    pub name: String,
    /// Span kind.
    pub kind: SpanKind,
    /// Status code.
    pub status_code: StatusCode,
    /// Status message (empty when none).
    pub status_message: String,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// Span attributes.
    pub attributes: BTreeMap<String, Value>,
    /// Attributes of the resource that produced the span.
    pub resource: BTreeMap<String, Value>,
    /// Name of the instrumentation scope.
    pub scope_name: String,
    /// Span events.
    pub events: Vec<SpanEvent>,
    /// Span links.
    pub links: Vec<SpanLink>,
    /// Transport the span arrived on.
    pub transport: Transport,
}

impl ReceivedSpan {
    /// The resource's `service.name`, if present and a string.
    pub fn service_name(&self) -> Option<&str> {
        self.resource.get("service.name").and_then(Value::as_str)
    }

    /// A span attribute by key.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    /// Duration in nanoseconds (0 when the end precedes the start).
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }
}

/// One received log record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedLog {
    /// Trace id (32 hex digits) when the record is correlated with a trace.
    pub trace_id: Option<String>,
    /// Span id (16 hex digits) when the record is correlated with a span.
    pub span_id: Option<String>,
    /// Severity number (1..=24, 0 when unspecified).
    pub severity_number: i32,
    /// Severity text, as sent.
    pub severity_text: String,
    /// Body.
    pub body: Option<Value>,
    /// Record attributes.
    pub attributes: BTreeMap<String, Value>,
    /// Attributes of the resource that produced the record.
    pub resource: BTreeMap<String, Value>,
    /// Event time, nanoseconds since the Unix epoch (0 when unset).
    pub time_unix_nanos: u64,
    /// Observed time, nanoseconds since the Unix epoch (0 when unset).
    pub observed_time_unix_nanos: u64,
    /// Event name (empty when none).
    pub event_name: String,
    /// Name of the instrumentation scope.
    pub scope_name: String,
    /// Transport the record arrived on.
    pub transport: Transport,
}

impl ReceivedLog {
    /// The resource's `service.name`, if present and a string.
    pub fn service_name(&self) -> Option<&str> {
        self.resource.get("service.name").and_then(Value::as_str)
    }

    /// A record attribute by key.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    /// The body as a string, if it is one.
    pub fn body_str(&self) -> Option<&str> {
        self.body.as_ref().and_then(Value::as_str)
    }

    /// `time_unix_nanos`, or `observed_time_unix_nanos` when the former is 0.
    pub fn effective_time_unix_nanos(&self) -> u64 {
        if self.time_unix_nanos != 0 {
            self.time_unix_nanos
        } else {
            self.observed_time_unix_nanos
        }
    }
}

/// Aggregation temporality of a sum or histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Temporality {
    /// Not specified (or an unknown value).
    Unspecified,
    /// Delta.
    Delta,
    /// Cumulative.
    Cumulative,
}

impl Temporality {
    fn from_i32(v: i32) -> Self {
        match v {
            1 => Temporality::Delta,
            2 => Temporality::Cumulative,
            _ => Temporality::Unspecified,
        }
    }
}

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum MetricKind {
    /// A sum (counter or up-down counter).
    Sum {
        /// Whether the sum is monotonic (a counter).
        monotonic: bool,
        /// Aggregation temporality.
        temporality: Temporality,
    },
    /// A gauge.
    Gauge,
    /// An explicit-bucket histogram.
    Histogram {
        /// Aggregation temporality.
        temporality: Temporality,
    },
    /// An exponential histogram (points carry only count/sum/min/max).
    ExponentialHistogram {
        /// Aggregation temporality.
        temporality: Temporality,
    },
    /// A summary (points carry only count/sum).
    Summary,
    /// A metric with no data.
    Empty,
}

/// An exemplar attached to a data point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exemplar {
    /// Trace id of the exemplar's span, when sampled inside one.
    pub trace_id: Option<String>,
    /// Span id of the exemplar's span, when sampled inside one.
    pub span_id: Option<String>,
    /// Measured value (integers converted to `f64`).
    pub value: f64,
    /// Time of the measurement, nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
    /// Attributes filtered out of the point but kept on the exemplar.
    pub filtered_attributes: BTreeMap<String, Value>,
}

/// Histogram contents of a data point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramValue {
    /// Number of measurements.
    pub count: u64,
    /// Sum of measurements, when sent.
    pub sum: Option<f64>,
    /// Minimum measurement, when sent.
    pub min: Option<f64>,
    /// Maximum measurement, when sent.
    pub max: Option<f64>,
    /// Explicit bucket boundaries (empty for exponential histograms and summaries).
    pub explicit_bounds: Vec<f64>,
    /// Bucket counts (`explicit_bounds.len() + 1` of them for explicit histograms).
    pub bucket_counts: Vec<u64>,
    /// Exemplars of this point (same list as [`MetricPoint::exemplars`]).
    pub exemplars: Vec<Exemplar>,
}

/// The value of one data point.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointValue {
    /// An integer sum or gauge value.
    Int(i64),
    /// A floating-point sum or gauge value.
    Double(f64),
    /// A histogram, exponential histogram or summary.
    Histogram(HistogramValue),
    /// A number point with no value set.
    Empty,
}

impl PointValue {
    /// The value as `f64` for numbers (ints converted); `None` otherwise.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PointValue::Int(i) => Some(*i as f64),
            PointValue::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The integer, for an integer point.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            PointValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The histogram, for a histogram point.
    pub fn as_histogram(&self) -> Option<&HistogramValue> {
        match self {
            PointValue::Histogram(h) => Some(h),
            _ => None,
        }
    }
}

/// One data point of a metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPoint {
    /// Point attributes (the metric's labels).
    pub attributes: BTreeMap<String, Value>,
    /// Value.
    pub value: PointValue,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// Time, nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
    /// Exemplars (any point kind).
    pub exemplars: Vec<Exemplar>,
}

/// One metric from one export request, with all its data points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedMetric {
    /// Metric name.
    pub name: String,
    /// Unit (empty when none).
    pub unit: String,
    /// Description (empty when none).
    pub description: String,
    /// Kind, with temporality and monotonicity.
    pub kind: MetricKind,
    /// Data points.
    pub points: Vec<MetricPoint>,
    /// Attributes of the resource that produced the metric.
    pub resource: BTreeMap<String, Value>,
    /// Name of the instrumentation scope.
    pub scope_name: String,
    /// Transport the metric arrived on.
    pub transport: Transport,
}

impl ReceivedMetric {
    /// The resource's `service.name`, if present and a string.
    pub fn service_name(&self) -> Option<&str> {
        self.resource.get("service.name").and_then(Value::as_str)
    }

    /// The first point whose attributes contain every `(key, string value)` given.
    pub fn point_with(&self, labels: &[(&str, &str)]) -> Option<&MetricPoint> {
        self.points.iter().find(|p| {
            labels
                .iter()
                .all(|(k, v)| p.attributes.get(*k).and_then(Value::as_str) == Some(*v))
        })
    }
}

fn resource_map(r: Option<&Resource>) -> BTreeMap<String, Value> {
    r.map(|r| attributes_map(&r.attributes)).unwrap_or_default()
}

fn scope_name(s: Option<&InstrumentationScope>) -> String {
    s.map(|s| s.name.clone()).unwrap_or_default()
}

fn resource_len(r: Option<&Resource>) -> usize {
    r.map(Message::encoded_len).unwrap_or(0)
}

/// Converts a trace request; each span comes with its decoded proto size
/// (span plus resource).
pub(crate) fn spans_from(
    req: &ExportTraceServiceRequest,
    transport: Transport,
) -> Vec<(ReceivedSpan, usize)> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let resource = resource_map(rs.resource.as_ref());
        let rlen = resource_len(rs.resource.as_ref());
        for ss in &rs.scope_spans {
            let scope = scope_name(ss.scope.as_ref());
            for s in &ss.spans {
                let (status_code, status_message) = match &s.status {
                    Some(st) => (
                        match st.code {
                            1 => StatusCode::Ok,
                            2 => StatusCode::Error,
                            _ => StatusCode::Unset,
                        },
                        st.message.clone(),
                    ),
                    None => (StatusCode::Unset, String::new()),
                };
                let span = ReceivedSpan {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: optional_id(&s.parent_span_id),
                    trace_state: s.trace_state.clone(),
                    name: s.name.clone(),
                    kind: SpanKind::from_i32(s.kind),
                    status_code,
                    status_message,
                    start_unix_nanos: s.start_time_unix_nano,
                    end_unix_nanos: s.end_time_unix_nano,
                    attributes: attributes_map(&s.attributes),
                    resource: resource.clone(),
                    scope_name: scope.clone(),
                    events: s
                        .events
                        .iter()
                        .map(|e| SpanEvent {
                            name: e.name.clone(),
                            time_unix_nanos: e.time_unix_nano,
                            attributes: attributes_map(&e.attributes),
                        })
                        .collect(),
                    links: s
                        .links
                        .iter()
                        .map(|l| SpanLink {
                            trace_id: hex(&l.trace_id),
                            span_id: hex(&l.span_id),
                            attributes: attributes_map(&l.attributes),
                        })
                        .collect(),
                    transport,
                };
                out.push((span, s.encoded_len() + rlen));
            }
        }
    }
    out
}

/// Converts a logs request; each record comes with its decoded proto size.
pub(crate) fn logs_from(
    req: &ExportLogsServiceRequest,
    transport: Transport,
) -> Vec<(ReceivedLog, usize)> {
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        let resource = resource_map(rl.resource.as_ref());
        let rlen = resource_len(rl.resource.as_ref());
        for sl in &rl.scope_logs {
            let scope = scope_name(sl.scope.as_ref());
            for r in &sl.log_records {
                let log = ReceivedLog {
                    trace_id: optional_id(&r.trace_id),
                    span_id: optional_id(&r.span_id),
                    severity_number: r.severity_number,
                    severity_text: r.severity_text.clone(),
                    body: r.body.as_ref().map(Value::from),
                    attributes: attributes_map(&r.attributes),
                    resource: resource.clone(),
                    time_unix_nanos: r.time_unix_nano,
                    observed_time_unix_nanos: r.observed_time_unix_nano,
                    event_name: r.event_name.clone(),
                    scope_name: scope.clone(),
                    transport,
                };
                out.push((log, r.encoded_len() + rlen));
            }
        }
    }
    out
}

fn exemplars(ex: &[pm::Exemplar]) -> Vec<Exemplar> {
    ex.iter()
        .map(|e| Exemplar {
            trace_id: optional_id(&e.trace_id),
            span_id: optional_id(&e.span_id),
            value: match e.value {
                Some(pm::exemplar::Value::AsDouble(d)) => d,
                Some(pm::exemplar::Value::AsInt(i)) => i as f64,
                None => 0.0,
            },
            time_unix_nanos: e.time_unix_nano,
            filtered_attributes: attributes_map(&e.filtered_attributes),
        })
        .collect()
}

fn number_points(points: &[pm::NumberDataPoint]) -> Vec<MetricPoint> {
    points
        .iter()
        .map(|p| MetricPoint {
            attributes: attributes_map(&p.attributes),
            value: match p.value {
                Some(pm::number_data_point::Value::AsInt(i)) => PointValue::Int(i),
                Some(pm::number_data_point::Value::AsDouble(d)) => PointValue::Double(d),
                None => PointValue::Empty,
            },
            start_unix_nanos: p.start_time_unix_nano,
            time_unix_nanos: p.time_unix_nano,
            exemplars: exemplars(&p.exemplars),
        })
        .collect()
}

fn convert_metric(m: &pm::Metric) -> (MetricKind, Vec<MetricPoint>) {
    use pm::metric::Data;
    match &m.data {
        None => (MetricKind::Empty, Vec::new()),
        Some(Data::Gauge(g)) => (MetricKind::Gauge, number_points(&g.data_points)),
        Some(Data::Sum(s)) => (
            MetricKind::Sum {
                monotonic: s.is_monotonic,
                temporality: Temporality::from_i32(s.aggregation_temporality),
            },
            number_points(&s.data_points),
        ),
        Some(Data::Histogram(h)) => (
            MetricKind::Histogram {
                temporality: Temporality::from_i32(h.aggregation_temporality),
            },
            h.data_points
                .iter()
                .map(|p| {
                    let ex = exemplars(&p.exemplars);
                    MetricPoint {
                        attributes: attributes_map(&p.attributes),
                        value: PointValue::Histogram(HistogramValue {
                            count: p.count,
                            sum: p.sum,
                            min: p.min,
                            max: p.max,
                            explicit_bounds: p.explicit_bounds.clone(),
                            bucket_counts: p.bucket_counts.clone(),
                            exemplars: ex.clone(),
                        }),
                        start_unix_nanos: p.start_time_unix_nano,
                        time_unix_nanos: p.time_unix_nano,
                        exemplars: ex,
                    }
                })
                .collect(),
        ),
        Some(Data::ExponentialHistogram(h)) => (
            MetricKind::ExponentialHistogram {
                temporality: Temporality::from_i32(h.aggregation_temporality),
            },
            h.data_points
                .iter()
                .map(|p| {
                    let ex = exemplars(&p.exemplars);
                    MetricPoint {
                        attributes: attributes_map(&p.attributes),
                        value: PointValue::Histogram(HistogramValue {
                            count: p.count,
                            sum: p.sum,
                            min: p.min,
                            max: p.max,
                            explicit_bounds: Vec::new(),
                            bucket_counts: Vec::new(),
                            exemplars: ex.clone(),
                        }),
                        start_unix_nanos: p.start_time_unix_nano,
                        time_unix_nanos: p.time_unix_nano,
                        exemplars: ex,
                    }
                })
                .collect(),
        ),
        Some(Data::Summary(s)) => (
            MetricKind::Summary,
            s.data_points
                .iter()
                .map(|p| MetricPoint {
                    attributes: attributes_map(&p.attributes),
                    value: PointValue::Histogram(HistogramValue {
                        count: p.count,
                        sum: Some(p.sum),
                        min: None,
                        max: None,
                        explicit_bounds: Vec::new(),
                        bucket_counts: Vec::new(),
                        exemplars: Vec::new(),
                    }),
                    start_unix_nanos: p.start_time_unix_nano,
                    time_unix_nanos: p.time_unix_nano,
                    exemplars: Vec::new(),
                })
                .collect(),
        ),
    }
}

/// Converts a metrics request; each metric comes with its decoded proto size.
pub(crate) fn metrics_from(
    req: &ExportMetricsServiceRequest,
    transport: Transport,
) -> Vec<(ReceivedMetric, usize)> {
    let mut out = Vec::new();
    for rm in &req.resource_metrics {
        let resource = resource_map(rm.resource.as_ref());
        let rlen = resource_len(rm.resource.as_ref());
        for sm in &rm.scope_metrics {
            let scope = scope_name(sm.scope.as_ref());
            for m in &sm.metrics {
                let (kind, points) = convert_metric(m);
                let metric = ReceivedMetric {
                    name: m.name.clone(),
                    unit: m.unit.clone(),
                    description: m.description.clone(),
                    kind,
                    points,
                    resource: resource.clone(),
                    scope_name: scope.clone(),
                    transport,
                };
                out.push((metric, m.encoded_len() + rlen));
            }
        }
    }
    out
}
