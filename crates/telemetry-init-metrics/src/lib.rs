//! A [`metrics`] facade recorder for telemetry-init: lock-free storage,
//! OpenTelemetry-style naming, Prometheus and OpenMetrics exposition with
//! trace exemplars, a hard cardinality guard and an OTLP bridge.
//!
//! The recorder serves **every** facade metric — the SLO metrics of the
//! telemetry-init middleware and the application's own `counter!`,
//! `gauge!` and `histogram!` calls.
//!
//! ```
//! use metrics::{Unit, describe_histogram, histogram};
//! use telemetry_init_metrics::{MetricsConfig, TelemetryRecorder};
//!
//! let recorder = TelemetryRecorder::new(MetricsConfig::new().constant_label("service.name", "demo")).unwrap();
//! let handle = recorder.handle();
//! metrics::with_local_recorder(&recorder, || {
//!     describe_histogram!("http.server.request.duration", Unit::Seconds, "Duration of HTTP server requests.");
//!     histogram!("http.server.request.duration",
//!         "http.request.method" => "GET", "http.route" => "/users/{id}",
//!         "http.response.status_code" => "200")
//!     .record(0.2);
//! });
//! let text = handle.render_prometheus();
//! assert!(text.contains(
//!     r#"http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/users/{id}",http_response_status_code="200",service_name="demo",le="0.25"} 1"#
//! ));
//! ```
//!
//! # Naming
//!
//! Metrics are recorded with OpenTelemetry names and attribute keys
//! (`http.server.request.duration`, `http.request.method`). The exposition
//! applies the OpenTelemetry → Prometheus mapping: invalid characters become
//! `_`, the unit adds a suffix (`s` → `_seconds`, `By` → `_bytes`, `1` →
//! `_ratio` for gauges, `{annotations}` → nothing), counters get `_total`.
//! Units come from, in order: `metrics::describe_*!` (a `metrics::Unit`),
//! [`MetricsConfig::unit`], the metrics telemetry-init knows
//! ([`semconv::metric`]: HTTP/RPC durations, `otel.sdk.*`), which also give
//! the help text of a metric nobody described. [`prometheus_names`] gives
//! the Prometheus names of those. See `docs/metrics.md` in the repository.
//!
//! # Hot path
//!
//! Registering a handle (what every `histogram!(…)` invocation does) is one
//! read-locked lookup keyed by the facade `Key`'s precomputed hash (computed
//! at compile time for static labels). On a miss, label sets are matched
//! order-independently (the first-seen label order is kept for the
//! exposition) and the key is cached — except for keys that landed in the
//! overflow series, so the cache is bounded too. Recording on a
//! registered handle is atomics only: one `fetch_add` on the bucket, one CAS
//! on the sum, the exemplar hook (a thread-local read) and, with the OTLP
//! bridge, the SDK's own histogram `record`. Cache handles in hot code.
//! Non-finite histogram values are dropped (as the OpenTelemetry SDK does).
//!
//! Measured with `benches/record.rs` (2-core CI box, noisy): cached labelled
//! histogram record ≈ 19 ns (≈ 27 ns with the exemplar hook outside spans,
//! ≈ 55–105 ns inside a sampled span incl. the exemplar write); the default
//! [`current_trace_context`] hook ≈ 10 ns with `tracing-opentelemetry`
//! context activation (its default), ≈ 290 ns without it; OTLP mirror adds
//! ≈ 145 ns per histogram record (≈ 20 ns with the `otel-bound-instruments`
//! feature); `histogram!(name, 4 labels).record(v)` including registration
//! ≈ 80 ns; counter increment ≈ 9 ns.
//!
//! # Cargo features
//!
//! * `otel-bound-instruments` (off here; `telemetry-init` turns it on):
//!   mirror histograms through the SDK's experimental bound instruments, so
//!   the attribute set is resolved once per series, not hashed on every
//!   record (enables `experimental_metrics_bound_instruments` on
//!   `opentelemetry` and `opentelemetry_sdk`, which also turns on the
//!   self-metrics of the SDK's own span and log processors).
//!
//! # Cardinality guard
//!
//! Each metric name has a hard limit of distinct label sets
//! ([`MetricsConfig::cardinality_limit`], default 1000, per-prefix overrides).
//! Beyond it every new label set is folded into one series labelled only
//! `otel_metric_overflow="true"` (attribute `otel.metric.overflow=true` on
//! OTLP, the SDK convention) and each folded record increments
//! `telemetry_init.metrics.overflowed_records{metric.name=…}`. Memory is
//! bounded by `limit + 1` series per name.
//!
//! Label keys and values are bounded in length too
//! ([`MetricsConfig::label_length_limit`], default 256 bytes, cut on a UTF-8
//! character boundary), so a series, and a scrape, stays small whatever
//! text was recorded.
//!
//! # Exemplars
//!
//! When a histogram value is recorded while a sampled span is current, its
//! bucket keeps the latest `{trace_id, span_id} value timestamp`, rendered
//! in the OpenMetrics exposition. The trace context comes from a
//! [`TraceContextFn`] hook (default [`current_trace_context`]).
//!
//! # OTLP bridge and exemplars
//!
//! With [`MetricsConfig::otel_meter`] or [`MetricsHandle::attach_meter`],
//! every metric is mirrored onto OpenTelemetry instruments of the same name,
//! unit, description and attributes (OpenTelemetry keys with dots; the
//! overflow series carries `otel.metric.overflow=true`;
//! `http.response.status_code` and a few other semantic-convention integers
//! become `i64`). Counters and gauges are *observable* instruments read from
//! the same atomics at collection time, so pushed and scraped values are
//! identical. Histograms are synchronous `f64` histograms built
//! `with_boundaries` from the same bounds; every record is forwarded with a
//! per-series attribute slice built once at registration. Histogram values
//! recorded before the meter was attached are not pushed; attach it at
//! install time. Units are taken when the first series of a name is
//! registered, so describe metrics before recording them.
//!
//! **The OpenTelemetry Rust SDK 0.33.1 does not support exemplars.** Its data
//! model has `Exemplar` types and `opentelemetry-proto` would encode them,
//! but every aggregator (`histogram.rs`, `sum.rs`, `last_value.rs`,
//! `precomputed_sum.rs`, `exponential_histogram.rs` in
//! `opentelemetry_sdk/src/metrics/internal/`) always emits
//! `exemplars: vec![]`, there is no exemplar filter or reservoir, the
//! `Exemplar` fields are `pub(crate)` (no way to inject one), and the
//! synchronous `record(value, attributes)` API takes no `Context`. So the
//! SDK's own pushes carry none. Instead, an OTLP exporter reads this
//! crate's per-bucket exemplars with [`MetricsHandle::for_each_exemplar`]
//! (keyed by the same attributes as the pushed data point) and adds them to
//! the encoded histogram points: `telemetry-init`'s OTLP metric exporter
//! does, on every transport. The request path pays nothing more than for
//! the OpenMetrics exemplars: the same slot write.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod health;
mod naming;
mod otel;
mod registry;
mod render;
mod server;
mod storage;
mod trace_context;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use opentelemetry::metrics::Meter;

/// The `metrics` facade this recorder implements (re-exported so callers
/// use the exact same version).
pub use metrics;

pub use config::{
    DEFAULT_BUCKETS, DEFAULT_BUCKETS_OTHER_UNITS, DEFAULT_CARDINALITY_LIMIT,
    DEFAULT_LABEL_LENGTH_LIMIT, MetricsConfig,
};
pub use health::{PipelineComponents, PipelineHealth, PipelineTotals, names as health_names};
pub use render::{Format, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
pub use server::MetricsServer;
/// The one vocabulary of the telemetry-init crates: [`Signal`] and every
/// metric's name, instrument, unit and help text (`semconv::metric`), which
/// this recorder serves as `# HELP`/`# UNIT` and as the OTLP unit and
/// description.
pub use telemetry_init_semconv as semconv;
/// The telemetry signal (one type across the telemetry-init crates; see
/// [`semconv`]).
pub use telemetry_init_semconv::Signal;
pub use trace_context::{TraceContextFn, active_otel_trace_context, current_trace_context};

/// Environment variable read by [`MetricsHandle::serve_from_env`].
pub const PROMETHEUS_ADDR_ENV: &str = "TELEMETRY_PROMETHEUS_ADDR";

/// Name of the counter of records folded into overflow series
/// (`telemetry_init_metrics_overflowed_records_total{metric_name=…}`).
pub const OVERFLOW_RECORDS_METRIC: &str = semconv::metric::OVERFLOWED_RECORDS.name;
/// Attribute key of the overflow series (`otel.metric.overflow`).
pub const OVERFLOW_LABEL: &str = otel::OVERFLOW_LABEL;

/// How a metric appears in this recorder's Prometheus exposition, from
/// [`prometheus_names`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrometheusNames {
    /// The family name of `# TYPE` and `# HELP` in the Prometheus text
    /// format (`http_server_request_duration_seconds`).
    pub family: String,
    /// Every sample name a scrape carries for it: `…_bucket`, `…_sum`,
    /// `…_count` for a histogram, `…_total` for a counter, the family name
    /// for a gauge.
    pub samples: Vec<String>,
    /// The label names of its attributes (`http.route` → `http_route`), in
    /// the order of [`semconv::metric::Metric::attributes`].
    pub labels: Vec<String>,
}

/// The Prometheus names this recorder gives `metric` (the OpenTelemetry →
/// Prometheus mapping described in the crate docs): what dashboards and
/// alert rules query.
///
/// ```
/// use telemetry_init_metrics::{prometheus_names, semconv::metric};
///
/// let p = prometheus_names(&metric::HTTP_SERVER_REQUEST_DURATION);
/// assert_eq!(p.family, "http_server_request_duration_seconds");
/// assert_eq!(p.samples, [
///     "http_server_request_duration_seconds_bucket",
///     "http_server_request_duration_seconds_sum",
///     "http_server_request_duration_seconds_count",
/// ]);
/// assert_eq!(p.labels[1], "http_route");
/// assert_eq!(prometheus_names(&metric::EXPORTER_SPAN_EXPORTED).samples,
///            ["otel_sdk_exporter_span_exported_total"]);
/// ```
pub fn prometheus_names(metric: &semconv::metric::Metric) -> PrometheusNames {
    let names = naming::prometheus_names(metric.name, Some(metric.unit), metric.instrument);
    let samples = match metric.instrument {
        Kind::Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|s| format!("{}{s}", names.sample))
            .collect(),
        Kind::Counter | Kind::Gauge => vec![names.sample],
    };
    PrometheusNames {
        family: names.family,
        samples,
        labels: metric
            .attributes
            .iter()
            .map(|a| naming::sanitize_label_name(a))
            .collect(),
    }
}

use naming::Kind;
use registry::Registry;

/// Errors of this crate.
///
/// ```
/// use telemetry_init_metrics::{MetricsConfig, MetricsError, TelemetryRecorder};
/// let err = TelemetryRecorder::new(MetricsConfig::new().slo_threshold("http.", f64::NAN)).unwrap_err();
/// assert!(matches!(err, MetricsError::InvalidBuckets(_)));
/// assert_eq!(err.to_string(), "invalid histogram buckets: SLO threshold NaN for `http.`");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A global `metrics` recorder was already installed.
    #[error("a global metrics recorder is already installed")]
    AlreadyInstalled,
    /// An OpenTelemetry meter was already attached.
    #[error("an OpenTelemetry meter is already attached")]
    MeterAlreadyAttached,
    /// A bucket boundary or SLO threshold is not a finite number.
    #[error("invalid histogram buckets: {0}")]
    InvalidBuckets(String),
    /// `TELEMETRY_PROMETHEUS_ADDR` is not a socket address.
    #[error("invalid {PROMETHEUS_ADDR_ENV}={0:?}: expected host:port, e.g. 0.0.0.0:9464")]
    InvalidAddress(String),
    /// Binding or running the scrape listener failed.
    #[error("metrics listener: {0}")]
    Io(#[source] std::io::Error),
}

/// The `metrics::Recorder` implementation.
///
/// Install it globally with [`install_recorder`], or use it locally (tests)
/// with `metrics::with_local_recorder`.
///
/// ```
/// use telemetry_init_metrics::{MetricsConfig, TelemetryRecorder};
///
/// let recorder = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
/// metrics::with_local_recorder(&recorder, || metrics::counter!("jobs.done").increment(2));
/// assert!(recorder.handle().render_prometheus().contains("jobs_done_total 2"));
/// ```
pub struct TelemetryRecorder {
    registry: Arc<Registry>,
}

impl fmt::Debug for TelemetryRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryRecorder")
            .field("config", &self.registry.config)
            .finish_non_exhaustive()
    }
}

impl TelemetryRecorder {
    /// Builds a recorder (not installed anywhere).
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidBuckets`] if the config has non-finite
    /// boundaries.
    pub fn new(config: MetricsConfig) -> Result<Self, MetricsError> {
        config.validate()?;
        let meter = config.meter.clone();
        let registry = Arc::new(Registry::new(Arc::new(config)));
        if let Some(m) = meter {
            registry.attach_meter(m);
        }
        Ok(Self { registry })
    }

    /// A handle to render and inspect this recorder's metrics.
    pub fn handle(&self) -> MetricsHandle {
        MetricsHandle {
            registry: self.registry.clone(),
        }
    }
}

impl metrics::Recorder for TelemetryRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.registry.describe(key.as_str(), unit, &description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.registry.describe(key.as_str(), unit, &description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.registry.describe(key.as_str(), unit, &description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        match self.registry.series(Kind::Counter, key) {
            Some(s) => Counter::from_arc(s),
            None => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        match self.registry.series(Kind::Gauge, key) {
            Some(s) => Gauge::from_arc(s),
            None => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        match self.registry.series(Kind::Histogram, key) {
            Some(s) => Histogram::from_arc(s),
            None => Histogram::noop(),
        }
    }
}

/// Builds a [`TelemetryRecorder`] and installs it as the global `metrics`
/// recorder.
///
/// # Errors
///
/// [`MetricsError::AlreadyInstalled`] if a global recorder exists (from this
/// crate or any other), [`MetricsError::InvalidBuckets`] for a bad config.
///
/// ```
/// use telemetry_init_metrics::{MetricsConfig, MetricsError, install_recorder};
///
/// let handle = install_recorder(MetricsConfig::new()).unwrap();
/// metrics::counter!("app.started").increment(1);
/// assert_eq!(handle.series_count("app.started"), 1);
/// assert!(matches!(install_recorder(MetricsConfig::new()), Err(MetricsError::AlreadyInstalled)));
/// ```
pub fn install_recorder(config: MetricsConfig) -> Result<MetricsHandle, MetricsError> {
    let recorder = TelemetryRecorder::new(config)?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
    Ok(handle)
}

/// A histogram exemplar: the latest measurement of one bucket recorded
/// inside a sampled span, read by [`MetricsHandle::for_each_exemplar`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Exemplar {
    /// Trace id of the span the measurement was recorded in.
    pub trace_id: opentelemetry::trace::TraceId,
    /// Id of that span.
    pub span_id: opentelemetry::trace::SpanId,
    /// The measured value.
    pub value: f64,
    /// When it was recorded, nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
}

/// A cheap-to-clone handle to a recorder's registry: exposition, inspection,
/// OTLP bridge, health helpers and the scrape listener.
#[derive(Clone)]
pub struct MetricsHandle {
    registry: Arc<Registry>,
}

impl fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// Renders in the format chosen by an HTTP `Accept` header (see
    /// [`Format::from_accept`]); returns `(content_type, body)`.
    ///
    /// ```
    /// # use telemetry_init_metrics::*;
    /// let handle = TelemetryRecorder::new(MetricsConfig::new()).unwrap().handle();
    /// let (ct, body) = handle.render(Some("application/openmetrics-text; version=1.0.0"));
    /// assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
    /// assert!(body.ends_with("# EOF\n"));
    /// assert_eq!(handle.render(None).0, PROMETHEUS_CONTENT_TYPE);
    /// ```
    pub fn render(&self, accept: Option<&str>) -> (&'static str, String) {
        let format = Format::from_accept(accept);
        (
            format.content_type(),
            render::render(&self.registry, format),
        )
    }

    /// Renders the Prometheus text format (0.0.4).
    ///
    /// ```
    /// # use telemetry_init_metrics::*;
    /// let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    /// metrics::with_local_recorder(&r, || metrics::gauge!("http.server.active_requests").set(3.0));
    /// assert_eq!(
    ///     r.handle().render_prometheus(),
    ///     concat!(
    ///         "# HELP http_server_active_requests Number of active HTTP server requests.\n",
    ///         "# TYPE http_server_active_requests gauge\n",
    ///         "http_server_active_requests 3\n",
    ///     )
    /// );
    /// ```
    pub fn render_prometheus(&self) -> String {
        render::render(&self.registry, Format::Prometheus)
    }

    /// Renders OpenMetrics 1.0 text, with histogram exemplars and `# EOF`.
    ///
    /// ```
    /// # use telemetry_init_metrics::*;
    /// let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    /// metrics::with_local_recorder(&r, || metrics::counter!("jobs.done").increment(1));
    /// let text = r.handle().render_openmetrics();
    /// assert!(text.starts_with("# HELP jobs_done jobs.done\n# TYPE jobs_done counter\n"));
    /// assert!(text.contains("\njobs_done_total 1\n"));
    /// ```
    pub fn render_openmetrics(&self) -> String {
        render::render(&self.registry, Format::OpenMetrics)
    }

    /// Number of series (label sets) of metric `name` (OpenTelemetry name),
    /// including the overflow series once it exists.
    ///
    /// ```
    /// # use telemetry_init_metrics::*;
    /// let r = TelemetryRecorder::new(MetricsConfig::new().cardinality_limit_for("q", 2)).unwrap();
    /// metrics::with_local_recorder(&r, || {
    ///     for i in 0..10 {
    ///         metrics::counter!("q", "id" => i.to_string()).increment(1);
    ///     }
    /// });
    /// assert_eq!(r.handle().series_count("q"), 3);
    /// assert_eq!(r.handle().series_count("unknown"), 0);
    /// ```
    pub fn series_count(&self, name: &str) -> usize {
        self.registry.family(name).map_or(0, |f| f.series_count())
    }

    /// The bucket boundaries of histogram `name`, once it has been
    /// registered (`None` for unknown names and non-histograms).
    ///
    /// ```
    /// # use telemetry_init_metrics::*;
    /// let r = TelemetryRecorder::new(MetricsConfig::new().slo_threshold("http.server.", 0.3)).unwrap();
    /// metrics::with_local_recorder(&r, || metrics::histogram!("http.server.request.duration").record(0.1));
    /// let b = r.handle().buckets("http.server.request.duration").unwrap();
    /// assert!(b.contains(&0.3) && b.contains(&0.25) && b.len() == DEFAULT_BUCKETS.len() + 1);
    /// ```
    pub fn buckets(&self, name: &str) -> Option<Vec<f64>> {
        self.registry
            .family(name)
            .and_then(|f| f.bounds().map(|b| b.to_vec()))
    }

    /// Number of records folded into the overflow series of `name`.
    pub fn overflowed_records(&self, name: &str) -> u64 {
        let Some(f) = self.registry.family(OVERFLOW_RECORDS_METRIC) else {
            return 0;
        };
        let mut n = 0;
        f.for_each_series(|s| {
            if s.labels()
                .iter()
                .any(|l| l.key() == "metric.name" && l.value() == name)
            {
                n += s.counter_value();
            }
        });
        n
    }

    /// The configuration the recorder was built with.
    pub fn config(&self) -> &MetricsConfig {
        &self.registry.config
    }

    /// Mirrors all current and future metrics to OpenTelemetry instruments
    /// created from `meter` (see the crate docs, "OTLP bridge").
    ///
    /// # Errors
    ///
    /// [`MetricsError::MeterAlreadyAttached`] on a second call or when the
    /// config already carried a meter.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    /// use telemetry_init_metrics::*;
    ///
    /// let exporter = InMemoryMetricExporter::default();
    /// let provider = SdkMeterProvider::builder()
    ///     .with_reader(PeriodicReader::builder(exporter.clone()).build())
    ///     .build();
    /// let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    /// r.handle().attach_meter(provider.meter("telemetry-init")).unwrap();
    /// metrics::with_local_recorder(&r, || metrics::counter!("jobs.done").increment(3));
    /// provider.force_flush().unwrap();
    /// let pushed = exporter.get_finished_metrics().unwrap();
    /// let names: Vec<String> = pushed[0]
    ///     .scope_metrics()
    ///     .flat_map(|s| s.metrics())
    ///     .map(|m| m.name().to_string())
    ///     .collect();
    /// assert_eq!(names, ["jobs.done"]);
    /// assert!(matches!(
    ///     r.handle().attach_meter(provider.meter("again")),
    ///     Err(MetricsError::MeterAlreadyAttached)
    /// ));
    /// ```
    pub fn attach_meter(&self, meter: Meter) -> Result<(), MetricsError> {
        if self.registry.attach_meter(meter) {
            Ok(())
        } else {
            Err(MetricsError::MeterAlreadyAttached)
        }
    }

    /// Calls `f` with the exemplar of every bucket of histogram `name`
    /// that holds one, for each series mirrored to OpenTelemetry (see
    /// [`attach_meter`](Self::attach_meter)), together with that series'
    /// OTLP attributes: exactly the attributes of its data point in an
    /// OTLP push. This is how an OTLP exporter puts exemplars on pushed
    /// histogram points, which the OpenTelemetry SDK cannot do itself
    /// (see the crate docs, "OTLP bridge and exemplars").
    ///
    /// Each bucket keeps its latest exemplar; filter by
    /// [`Exemplar::time_unix_nanos`] to send each one once. Reads atomics
    /// only, never blocks recording; nothing is called for an unknown name,
    /// a non-histogram, or a recorder without a meter or exemplars.
    ///
    /// ```
    /// use opentelemetry::trace::{SpanId, TraceId};
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    /// use telemetry_init_metrics::*;
    ///
    /// fn in_a_sampled_span() -> Option<(TraceId, SpanId)> {
    ///     Some((TraceId::from(7), SpanId::from(9)))
    /// }
    /// let provider = SdkMeterProvider::builder()
    ///     .with_reader(PeriodicReader::builder(InMemoryMetricExporter::default()).build())
    ///     .build();
    /// let config = MetricsConfig::new()
    ///     .trace_context(Some(in_a_sampled_span))
    ///     .otel_meter(provider.meter("telemetry-init"));
    /// let r = TelemetryRecorder::new(config).unwrap();
    /// metrics::with_local_recorder(&r, || {
    ///     metrics::histogram!("http.server.request.duration", "http.route" => "/").record(0.2)
    /// });
    /// let mut seen = Vec::new();
    /// r.handle().for_each_exemplar("http.server.request.duration", |attrs, e| {
    ///     seen.push((attrs.len(), e.trace_id, e.span_id, e.value))
    /// });
    /// assert_eq!(seen, [(1, TraceId::from(7), SpanId::from(9), 0.2)]);
    /// ```
    pub fn for_each_exemplar(
        &self,
        name: &str,
        mut f: impl FnMut(&[opentelemetry::KeyValue], Exemplar),
    ) {
        let Some(family) = self.registry.family(name) else {
            return;
        };
        family.for_each_series(|s| {
            if let (Some(o), registry::Cell::Histogram(h)) = (s.otel(), s.cell()) {
                h.for_each_exemplar(|e| {
                    f(
                        &o.attrs,
                        Exemplar {
                            trace_id: opentelemetry::trace::TraceId::from_bytes(
                                e.trace_id.to_be_bytes(),
                            ),
                            span_id: opentelemetry::trace::SpanId::from_bytes(
                                e.span_id.to_be_bytes(),
                            ),
                            value: e.value,
                            time_unix_nanos: e.timestamp_nanos,
                        },
                    )
                });
            }
        });
    }

    /// Health helpers labelled for OTLP/gRPC exporters and batching
    /// processors ([`PipelineComponents::default`]).
    pub fn pipeline_health(&self) -> PipelineHealth {
        self.pipeline_health_with(PipelineComponents::default())
    }

    /// Health helpers labelled with the given component types.
    pub fn pipeline_health_with(&self, components: PipelineComponents) -> PipelineHealth {
        PipelineHealth::new(self.registry.clone(), components)
    }

    /// Starts a standalone scrape listener serving `GET /metrics` (format
    /// negotiated from `Accept`) on `addr` — e.g. from
    /// `TELEMETRY_PROMETHEUS_ADDR`. Binds synchronously so address errors
    /// surface here. Runs on the current Tokio runtime when called inside
    /// one, otherwise on a dedicated thread with its own single-threaded
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`MetricsError::Io`] if binding fails.
    ///
    /// ```
    /// # use telemetry_init_metrics::*;
    /// let handle = TelemetryRecorder::new(MetricsConfig::new()).unwrap().handle();
    /// let server = handle.serve("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_ne!(server.local_addr().port(), 0);
    /// server.shutdown();
    /// ```
    pub fn serve(&self, addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        server::serve(self.clone(), addr)
    }

    /// Starts the scrape listener on `TELEMETRY_PROMETHEUS_ADDR` when that
    /// variable is set and non-empty; `Ok(None)` otherwise.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidAddress`] if the value does not parse as a
    /// socket address, [`MetricsError::Io`] if binding fails.
    ///
    /// ```
    /// # use telemetry_init_metrics::*;
    /// let handle = TelemetryRecorder::new(MetricsConfig::new()).unwrap().handle();
    /// // Unset in doctests: nothing is started.
    /// # unsafe { std::env::remove_var(PROMETHEUS_ADDR_ENV) };
    /// assert!(handle.serve_from_env().unwrap().is_none());
    /// ```
    pub fn serve_from_env(&self) -> Result<Option<MetricsServer>, MetricsError> {
        match std::env::var(PROMETHEUS_ADDR_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                let addr = v
                    .trim()
                    .parse()
                    .map_err(|_| MetricsError::InvalidAddress(v.clone()))?;
                self.serve(addr).map(Some)
            }
            _ => Ok(None),
        }
    }
}
