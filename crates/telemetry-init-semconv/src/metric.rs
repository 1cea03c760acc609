//! Every metric telemetry-init records or knows: one [`Metric`] entry each,
//! with its OpenTelemetry name, instrument, unit, help text and attributes.
//!
//! ```
//! use telemetry_init_semconv::metric::{self, Instrument};
//!
//! let m = metric::HTTP_SERVER_REQUEST_DURATION;
//! assert_eq!((m.name, m.instrument, m.unit), ("http.server.request.duration", Instrument::Histogram, "s"));
//! assert_eq!(metric::find("rpc.server.duration").unwrap().help, "Measures the duration of inbound RPC.");
//! ```
//!
//! This module is the one place these are written. The recorder
//! (`telemetry-init-metrics`) serves units and help texts from it (the
//! `# HELP` and `# UNIT` of the scrape, the OTLP unit and description); the
//! middleware of `telemetry-init` records under these names; the tables of
//! `docs/metrics.md` and the metric contract the dashboards are checked
//! against are tested to list exactly these entries.
//!
//! The names are `&'static str` constants: recording under them costs what
//! a string literal costs.

use crate::Signal;

/// The kind of instrument a metric is recorded with (through the `metrics`
/// facade: counter, gauge, histogram).
///
/// ```
/// use telemetry_init_semconv::metric::Instrument;
/// assert_eq!(Instrument::Histogram.as_str(), "histogram");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Instrument {
    /// A monotonic counter (`…_total` in Prometheus).
    Counter,
    /// A gauge (a value that goes up and down).
    Gauge,
    /// A histogram (`…_bucket`, `…_sum`, `…_count` in Prometheus).
    Histogram,
}

impl Instrument {
    /// The Prometheus `# TYPE` word: `counter`, `gauge`, `histogram`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Instrument::Counter => "counter",
            Instrument::Gauge => "gauge",
            Instrument::Histogram => "histogram",
        }
    }
}

/// Who records a metric.
///
/// ```
/// use telemetry_init_semconv::metric::{self, Source};
/// assert_eq!(metric::RPC_SERVER_DURATION.source, Source::Middleware);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The HTTP/gRPC middleware of `telemetry-init` (`ServerLayer`,
    /// `ClientLayer`): the RED metrics.
    Middleware,
    /// `PipelineHealth`: the export pipeline's own health (`otel.sdk.*`).
    PipelineHealth,
    /// The recorder itself (its cardinality guard).
    Recorder,
    /// Nobody in telemetry-init: an OpenTelemetry semantic-convention
    /// metric the recorder knows the unit and help text of, for when the
    /// application records it.
    Application,
}

/// One metric: everything about it that is not a measurement.
///
/// ```
/// use telemetry_init_semconv::metric;
/// let m = metric::HTTP_SERVER_ACTIVE_REQUESTS;
/// assert_eq!(m.unit, "{request}");
/// assert_eq!(m.attributes, ["http.request.method", "http.route"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Metric {
    /// The OpenTelemetry name (`http.server.request.duration`).
    pub name: &'static str,
    /// The instrument it is recorded with.
    pub instrument: Instrument,
    /// The UCUM unit (`s`, `By`, `{request}`); it gives the Prometheus
    /// suffix (`_seconds`, `_bytes`, none).
    pub unit: &'static str,
    /// The help text (`# HELP`, the OTLP description).
    pub help: &'static str,
    /// The attribute keys a series may carry (besides the constant labels
    /// such as `service.name`), in the order they are recorded.
    pub attributes: &'static [&'static str],
    /// Who records it.
    pub source: Source,
}

const HTTP_SERVER_ATTRIBUTES: &[&str] = &[
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "error.type",
];
const RPC_ATTRIBUTES: &[&str] = &[
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "rpc.grpc.status_code",
];
const EXPORTER_ATTRIBUTES: &[&str] = &["otel.component.type", "error.type"];
const PROCESSOR_ATTRIBUTES: &[&str] = &["otel.component.type", "error.type"];
const QUEUE_ATTRIBUTES: &[&str] = &["otel.component.type"];

const fn metric(
    name: &'static str,
    instrument: Instrument,
    unit: &'static str,
    help: &'static str,
    attributes: &'static [&'static str],
    source: Source,
) -> Metric {
    Metric {
        name,
        instrument,
        unit,
        help,
        attributes,
        source,
    }
}

// --- The RED metrics of the middleware -----------------------------------

/// `http.server.request.duration`: duration of HTTP server requests.
pub const HTTP_SERVER_REQUEST_DURATION: Metric = metric(
    "http.server.request.duration",
    Instrument::Histogram,
    "s",
    "Duration of HTTP server requests.",
    HTTP_SERVER_ATTRIBUTES,
    Source::Middleware,
);
/// `http.server.active_requests`: requests being served (an UpDownCounter
/// in the semantic conventions, a gauge here).
pub const HTTP_SERVER_ACTIVE_REQUESTS: Metric = metric(
    "http.server.active_requests",
    Instrument::Gauge,
    "{request}",
    "Number of active HTTP server requests.",
    &["http.request.method", "http.route"],
    Source::Middleware,
);
/// `http.client.request.duration`: duration of outgoing HTTP requests.
pub const HTTP_CLIENT_REQUEST_DURATION: Metric = metric(
    "http.client.request.duration",
    Instrument::Histogram,
    "s",
    "Duration of HTTP client requests.",
    &[
        "http.request.method",
        "server.address",
        "http.response.status_code",
        "error.type",
    ],
    Source::Middleware,
);
/// `rpc.server.duration`: duration of gRPC calls served.
pub const RPC_SERVER_DURATION: Metric = metric(
    "rpc.server.duration",
    Instrument::Histogram,
    "s",
    "Measures the duration of inbound RPC.",
    RPC_ATTRIBUTES,
    Source::Middleware,
);
/// `rpc.client.duration`: duration of gRPC calls made.
pub const RPC_CLIENT_DURATION: Metric = metric(
    "rpc.client.duration",
    Instrument::Histogram,
    "s",
    "Measures the duration of outbound RPC.",
    RPC_ATTRIBUTES,
    Source::Middleware,
);

// --- Semantic-convention metrics the application may record ---------------

/// `http.server.request.body.size` (recorded by the application, not by
/// telemetry-init).
pub const HTTP_SERVER_REQUEST_BODY_SIZE: Metric = metric(
    "http.server.request.body.size",
    Instrument::Histogram,
    "By",
    "Size of HTTP server request bodies.",
    HTTP_SERVER_ATTRIBUTES,
    Source::Application,
);
/// `http.server.response.body.size` (recorded by the application, not by
/// telemetry-init).
pub const HTTP_SERVER_RESPONSE_BODY_SIZE: Metric = metric(
    "http.server.response.body.size",
    Instrument::Histogram,
    "By",
    "Size of HTTP server response bodies.",
    HTTP_SERVER_ATTRIBUTES,
    Source::Application,
);
/// `rpc.server.call.duration`, the newer semantic-convention name of
/// `rpc.server.duration` (recorded by the application, not by
/// telemetry-init).
pub const RPC_SERVER_CALL_DURATION: Metric = metric(
    "rpc.server.call.duration",
    Instrument::Histogram,
    "s",
    "Measures the duration of inbound remote procedure calls.",
    RPC_ATTRIBUTES,
    Source::Application,
);
/// `rpc.client.call.duration`, the newer semantic-convention name of
/// `rpc.client.duration` (recorded by the application, not by
/// telemetry-init).
pub const RPC_CLIENT_CALL_DURATION: Metric = metric(
    "rpc.client.call.duration",
    Instrument::Histogram,
    "s",
    "Measures the duration of outbound remote procedure calls.",
    RPC_ATTRIBUTES,
    Source::Application,
);

// --- The pipeline's own health (OpenTelemetry SDK self-observability) -----

/// `otel.sdk.exporter.operation.duration`.
pub const EXPORTER_OPERATION_DURATION: Metric = metric(
    "otel.sdk.exporter.operation.duration",
    Instrument::Histogram,
    "s",
    "The duration of exporting a batch of telemetry records.",
    EXPORTER_ATTRIBUTES,
    Source::PipelineHealth,
);
/// `otel.sdk.exporter.span.exported`.
pub const EXPORTER_SPAN_EXPORTED: Metric = metric(
    "otel.sdk.exporter.span.exported",
    Instrument::Counter,
    "{span}",
    "The number of spans for which the export has finished, either successful or failed.",
    EXPORTER_ATTRIBUTES,
    Source::PipelineHealth,
);
/// `otel.sdk.exporter.log.exported`.
pub const EXPORTER_LOG_EXPORTED: Metric = metric(
    "otel.sdk.exporter.log.exported",
    Instrument::Counter,
    "{log_record}",
    "The number of log records for which the export has finished, either successful or failed.",
    EXPORTER_ATTRIBUTES,
    Source::PipelineHealth,
);
/// `otel.sdk.exporter.metric_data_point.exported`.
pub const EXPORTER_METRIC_DATA_POINT_EXPORTED: Metric = metric(
    "otel.sdk.exporter.metric_data_point.exported",
    Instrument::Counter,
    "{data_point}",
    "The number of metric data points for which the export has finished, either successful or failed.",
    EXPORTER_ATTRIBUTES,
    Source::PipelineHealth,
);
/// `otel.sdk.processor.span.processed`.
pub const PROCESSOR_SPAN_PROCESSED: Metric = metric(
    "otel.sdk.processor.span.processed",
    Instrument::Counter,
    "{span}",
    "The number of spans for which the processing has finished, either successful or failed.",
    PROCESSOR_ATTRIBUTES,
    Source::PipelineHealth,
);
/// `otel.sdk.processor.log.processed`.
pub const PROCESSOR_LOG_PROCESSED: Metric = metric(
    "otel.sdk.processor.log.processed",
    Instrument::Counter,
    "{log_record}",
    "The number of log records for which the processing has finished, either successful or failed.",
    PROCESSOR_ATTRIBUTES,
    Source::PipelineHealth,
);
/// `otel.sdk.processor.span.queue.size`.
pub const PROCESSOR_SPAN_QUEUE_SIZE: Metric = metric(
    "otel.sdk.processor.span.queue.size",
    Instrument::Gauge,
    "{span}",
    "The number of spans in the queue of a given instance of an SDK span processor.",
    QUEUE_ATTRIBUTES,
    Source::PipelineHealth,
);
/// `otel.sdk.processor.log.queue.size`.
pub const PROCESSOR_LOG_QUEUE_SIZE: Metric = metric(
    "otel.sdk.processor.log.queue.size",
    Instrument::Gauge,
    "{log_record}",
    "The number of log records in the queue of a given instance of an SDK log processor.",
    QUEUE_ATTRIBUTES,
    Source::PipelineHealth,
);
/// `otel.sdk.processor.span.queue.capacity`.
pub const PROCESSOR_SPAN_QUEUE_CAPACITY: Metric = metric(
    "otel.sdk.processor.span.queue.capacity",
    Instrument::Gauge,
    "{span}",
    "The maximum number of spans the queue of a given instance of an SDK span processor can hold.",
    QUEUE_ATTRIBUTES,
    Source::PipelineHealth,
);
/// `otel.sdk.processor.log.queue.capacity`.
pub const PROCESSOR_LOG_QUEUE_CAPACITY: Metric = metric(
    "otel.sdk.processor.log.queue.capacity",
    Instrument::Gauge,
    "{log_record}",
    "The maximum number of log records the queue of a given instance of an SDK log processor can hold.",
    QUEUE_ATTRIBUTES,
    Source::PipelineHealth,
);

// --- The recorder's own ----------------------------------------------------

/// `telemetry_init.metrics.overflowed_records`: measurements the
/// cardinality guard folded into an overflow series, by `metric.name`.
pub const OVERFLOWED_RECORDS: Metric = metric(
    "telemetry_init.metrics.overflowed_records",
    Instrument::Counter,
    "{record}",
    "Measurements folded into the otel_metric_overflow series because the metric reached its cardinality limit.",
    &["metric.name"],
    Source::Recorder,
);

/// Every entry of this module, grouped by [`Source`].
///
/// ```
/// use telemetry_init_semconv::metric::{ALL, Source};
/// let recorded = ALL.iter().filter(|m| m.source != Source::Application).count();
/// assert_eq!(recorded, 16);
/// ```
pub const ALL: &[Metric] = &[
    HTTP_SERVER_REQUEST_DURATION,
    HTTP_SERVER_ACTIVE_REQUESTS,
    HTTP_CLIENT_REQUEST_DURATION,
    RPC_SERVER_DURATION,
    RPC_CLIENT_DURATION,
    HTTP_SERVER_REQUEST_BODY_SIZE,
    HTTP_SERVER_RESPONSE_BODY_SIZE,
    RPC_SERVER_CALL_DURATION,
    RPC_CLIENT_CALL_DURATION,
    EXPORTER_SPAN_EXPORTED,
    EXPORTER_LOG_EXPORTED,
    EXPORTER_METRIC_DATA_POINT_EXPORTED,
    PROCESSOR_SPAN_PROCESSED,
    PROCESSOR_LOG_PROCESSED,
    PROCESSOR_SPAN_QUEUE_SIZE,
    PROCESSOR_SPAN_QUEUE_CAPACITY,
    PROCESSOR_LOG_QUEUE_SIZE,
    PROCESSOR_LOG_QUEUE_CAPACITY,
    EXPORTER_OPERATION_DURATION,
    OVERFLOWED_RECORDS,
];

/// The entry named `name` (an OpenTelemetry name), if this module has one.
///
/// ```
/// use telemetry_init_semconv::metric;
/// assert_eq!(metric::find("otel.sdk.exporter.span.exported"), Some(&metric::EXPORTER_SPAN_EXPORTED));
/// assert_eq!(metric::find("jobs.done"), None);
/// ```
pub fn find(name: &str) -> Option<&'static Metric> {
    ALL.iter().find(|m| m.name == name)
}

/// `otel.sdk.exporter.{span,log,metric_data_point}.exported` of `signal`.
///
/// ```
/// use telemetry_init_semconv::{Signal, metric};
/// assert_eq!(metric::exported(Signal::Logs).name, "otel.sdk.exporter.log.exported");
/// ```
pub const fn exported(signal: Signal) -> &'static Metric {
    match signal {
        Signal::Traces => &EXPORTER_SPAN_EXPORTED,
        Signal::Logs => &EXPORTER_LOG_EXPORTED,
        Signal::Metrics => &EXPORTER_METRIC_DATA_POINT_EXPORTED,
    }
}

/// `otel.sdk.processor.{span,log}.processed` of `signal`; `None` for
/// metrics, which have no processor.
///
/// ```
/// use telemetry_init_semconv::{Signal, metric};
/// assert_eq!(metric::processed(Signal::Traces).unwrap().name, "otel.sdk.processor.span.processed");
/// assert!(metric::processed(Signal::Metrics).is_none());
/// ```
pub const fn processed(signal: Signal) -> Option<&'static Metric> {
    match signal {
        Signal::Traces => Some(&PROCESSOR_SPAN_PROCESSED),
        Signal::Logs => Some(&PROCESSOR_LOG_PROCESSED),
        Signal::Metrics => None,
    }
}

/// `otel.sdk.processor.{span,log}.queue.size` and `.capacity` of `signal`;
/// `None` for metrics, which have no processor.
///
/// ```
/// use telemetry_init_semconv::{Signal, metric};
/// let (size, capacity) = metric::queue(Signal::Logs).unwrap();
/// assert_eq!(size.name, "otel.sdk.processor.log.queue.size");
/// assert_eq!(capacity.name, "otel.sdk.processor.log.queue.capacity");
/// ```
pub const fn queue(signal: Signal) -> Option<(&'static Metric, &'static Metric)> {
    match signal {
        Signal::Traces => Some((&PROCESSOR_SPAN_QUEUE_SIZE, &PROCESSOR_SPAN_QUEUE_CAPACITY)),
        Signal::Logs => Some((&PROCESSOR_LOG_QUEUE_SIZE, &PROCESSOR_LOG_QUEUE_CAPACITY)),
        Signal::Metrics => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_per_signal_helpers_match_the_signal() {
        let mut names: Vec<_> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a name is listed twice");
        for s in Signal::ALL {
            let seg = s.otel_sdk_segment();
            assert_eq!(
                exported(s).name,
                format!("otel.sdk.exporter.{seg}.exported")
            );
            if let Some(p) = processed(s) {
                assert_eq!(p.name, format!("otel.sdk.processor.{seg}.processed"));
            }
            if let Some((size, cap)) = queue(s) {
                assert_eq!(size.name, format!("otel.sdk.processor.{seg}.queue.size"));
                assert_eq!(cap.name, format!("otel.sdk.processor.{seg}.queue.capacity"));
            }
            assert!(ALL.contains(exported(s)));
        }
        for m in ALL {
            assert!(!m.help.is_empty() && m.help.ends_with('.'), "{}", m.name);
            assert_eq!(find(m.name), Some(m));
        }
    }
}
