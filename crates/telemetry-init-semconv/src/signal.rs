//! The telemetry signal, and every name derived from it.

use std::fmt;

/// A telemetry signal: traces, logs or metrics.
///
/// The one definition shared by the exporter configuration of
/// `telemetry-init` (`OTEL_EXPORTER_OTLP_TRACES_*`, `/v1/traces`), its
/// pipeline self-health metrics (`otel.sdk.exporter.span.exported`) and the
/// test receiver of `telemetry-init-testing` (which endpoint a request came
/// in on). Each of those names is a method here, so a signal is spelt one way
/// everywhere.
///
/// ```
/// use telemetry_init_semconv::Signal;
///
/// let s = Signal::Traces;
/// assert_eq!(s.to_string(), "traces");
/// assert_eq!(s.env_segment(), "TRACES"); // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
/// assert_eq!(s.http_path(), "/v1/traces");
/// assert_eq!(s.grpc_path(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
/// assert_eq!(s.otel_sdk_segment(), "span"); // otel.sdk.exporter.span.exported
/// assert_eq!(Signal::ALL[s.index()], s);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Spans (`/v1/traces`, `TraceService/Export`, `otel.sdk.*.span.*`).
    Traces,
    /// Log records (`/v1/logs`, `LogsService/Export`, `otel.sdk.*.log.*`).
    Logs,
    /// Metric data points (`/v1/metrics`, `MetricsService/Export`,
    /// `otel.sdk.exporter.metric_data_point.*`).
    Metrics,
}

impl Signal {
    /// Every signal, in declaration order ([`index`](Self::index) is the
    /// position in this array).
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// The lower-case name: `traces`, `logs`, `metrics` (what
    /// `OTEL_TRACES_EXPORTER` and friends are named after, and what reports
    /// and logs show).
    ///
    /// ```
    /// # use telemetry_init_semconv::Signal;
    /// assert_eq!(Signal::Metrics.as_str(), "metrics");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    /// The segment of the per-signal OTLP exporter variables:
    /// `OTEL_EXPORTER_OTLP_{TRACES,LOGS,METRICS}_*`.
    ///
    /// ```
    /// # use telemetry_init_semconv::Signal;
    /// assert_eq!(format!("OTEL_EXPORTER_OTLP_{}_HEADERS", Signal::Logs.env_segment()),
    ///            "OTEL_EXPORTER_OTLP_LOGS_HEADERS");
    /// ```
    pub const fn env_segment(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Logs => "LOGS",
            Signal::Metrics => "METRICS",
        }
    }

    /// The path OTLP/HTTP appends to a base endpoint for this signal, and
    /// the path a receiver serves it on.
    ///
    /// ```
    /// # use telemetry_init_semconv::Signal;
    /// assert_eq!(Signal::Logs.http_path(), "/v1/logs");
    /// ```
    pub const fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
        }
    }

    /// The OTLP/gRPC method (HTTP/2 path) of this signal's `Export` call.
    ///
    /// ```
    /// # use telemetry_init_semconv::Signal;
    /// assert_eq!(Signal::Metrics.grpc_path(),
    ///            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export");
    /// ```
    pub const fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        }
    }

    /// The segment naming this signal's items in the OpenTelemetry SDK
    /// self-observability metrics (`otel.sdk.exporter.{segment}.exported`):
    /// `span`, `log`, `metric_data_point`.
    ///
    /// ```
    /// # use telemetry_init_semconv::Signal;
    /// let names: Vec<_> = Signal::ALL.iter().map(|s| s.otel_sdk_segment()).collect();
    /// assert_eq!(names, ["span", "log", "metric_data_point"]);
    /// ```
    pub const fn otel_sdk_segment(self) -> &'static str {
        match self {
            Signal::Traces => "span",
            Signal::Logs => "log",
            Signal::Metrics => "metric_data_point",
        }
    }

    /// The position of this signal in [`Signal::ALL`], for per-signal
    /// arrays.
    ///
    /// ```
    /// # use telemetry_init_semconv::Signal;
    /// let mut counts = [0u64; 3];
    /// counts[Signal::Logs.index()] += 1;
    /// assert_eq!(counts, [0, 1, 0]);
    /// ```
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Signal;

    #[test]
    fn names_agree_with_each_other() {
        for (i, s) in Signal::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(s.env_segment(), s.as_str().to_ascii_uppercase());
            assert_eq!(s.http_path(), format!("/v1/{}", s.as_str()));
            assert!(s.grpc_path().ends_with("Service/Export"), "{s}");
        }
    }
}
