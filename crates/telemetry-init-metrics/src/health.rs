//! Typed handles for the telemetry pipeline's own health metrics, named
//! after the OpenTelemetry SDK self-observability semantic conventions
//! (`otel.sdk.*`).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{CounterFn, GaugeFn, HistogramFn, Key, Label};

use crate::naming::Kind;
use crate::registry::{Registry, Series};
use telemetry_init_semconv::{Signal, metric};

/// Metric names of the health helpers, per signal (the names, units and
/// help texts are written once, in [`telemetry_init_semconv::metric`]).
pub mod names {
    use telemetry_init_semconv::metric;

    /// `otel.sdk.exporter.operation.duration` (histogram, seconds).
    pub const EXPORT_DURATION: &str = metric::EXPORTER_OPERATION_DURATION.name;
    /// `otel.sdk.exporter.span.exported` (counter).
    pub const SPAN_EXPORTED: &str = metric::EXPORTER_SPAN_EXPORTED.name;
    /// `otel.sdk.exporter.log.exported` (counter).
    pub const LOG_EXPORTED: &str = metric::EXPORTER_LOG_EXPORTED.name;
    /// `otel.sdk.exporter.metric_data_point.exported` (counter).
    pub const METRIC_DATA_POINT_EXPORTED: &str = metric::EXPORTER_METRIC_DATA_POINT_EXPORTED.name;
    /// `otel.sdk.processor.span.processed` (counter).
    pub const SPAN_PROCESSED: &str = metric::PROCESSOR_SPAN_PROCESSED.name;
    /// `otel.sdk.processor.log.processed` (counter).
    pub const LOG_PROCESSED: &str = metric::PROCESSOR_LOG_PROCESSED.name;
    /// `otel.sdk.processor.span.queue.size` (gauge).
    pub const SPAN_QUEUE_SIZE: &str = metric::PROCESSOR_SPAN_QUEUE_SIZE.name;
    /// `otel.sdk.processor.log.queue.size` (gauge).
    pub const LOG_QUEUE_SIZE: &str = metric::PROCESSOR_LOG_QUEUE_SIZE.name;
    /// `otel.sdk.processor.span.queue.capacity` (gauge).
    pub const SPAN_QUEUE_CAPACITY: &str = metric::PROCESSOR_SPAN_QUEUE_CAPACITY.name;
    /// `otel.sdk.processor.log.queue.capacity` (gauge).
    pub const LOG_QUEUE_CAPACITY: &str = metric::PROCESSOR_LOG_QUEUE_CAPACITY.name;
    /// `error.type` value used by [`PipelineHealth::dropped`](crate::PipelineHealth::dropped).
    pub const QUEUE_FULL: &str = "queue_full";
    /// Label key naming the component type (e.g. `otlp_grpc_span_exporter`).
    pub const COMPONENT_TYPE: &str = "otel.component.type";
    /// Label key of the failure reason.
    pub const ERROR_TYPE: &str = "error.type";
}

fn exported_name(s: Signal) -> &'static str {
    metric::exported(s).name
}

fn processed_name(s: Signal) -> Option<&'static str> {
    metric::processed(s).map(|m| m.name)
}

fn queue_names(s: Signal) -> Option<(&'static str, &'static str)> {
    metric::queue(s).map(|(size, capacity)| (size.name, capacity.name))
}

/// The `otel.component.type` of each pipeline component.
///
/// ```
/// use telemetry_init_metrics::PipelineComponents;
/// let c = PipelineComponents::otlp_http();
/// assert_eq!(c.span_exporter, "otlp_http_span_exporter");
/// assert_eq!(PipelineComponents::default().span_exporter, "otlp_grpc_span_exporter");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineComponents {
    /// Span exporter type, e.g. `otlp_grpc_span_exporter`.
    pub span_exporter: Cow<'static, str>,
    /// Log exporter type, e.g. `otlp_grpc_log_exporter`.
    pub log_exporter: Cow<'static, str>,
    /// Metric exporter type, e.g. `otlp_grpc_metric_exporter`.
    pub metric_exporter: Cow<'static, str>,
    /// Span processor type, e.g. `batching_span_processor`.
    pub span_processor: Cow<'static, str>,
    /// Log processor type, e.g. `batching_log_processor`.
    pub log_processor: Cow<'static, str>,
}

impl Default for PipelineComponents {
    fn default() -> Self {
        Self::otlp_grpc()
    }
}

impl PipelineComponents {
    /// OTLP/gRPC exporters with batching processors.
    pub fn otlp_grpc() -> Self {
        Self {
            span_exporter: "otlp_grpc_span_exporter".into(),
            log_exporter: "otlp_grpc_log_exporter".into(),
            metric_exporter: "otlp_grpc_metric_exporter".into(),
            span_processor: "batching_span_processor".into(),
            log_processor: "batching_log_processor".into(),
        }
    }

    /// OTLP/HTTP (protobuf) exporters with batching processors.
    pub fn otlp_http() -> Self {
        Self {
            span_exporter: "otlp_http_span_exporter".into(),
            log_exporter: "otlp_http_log_exporter".into(),
            metric_exporter: "otlp_http_metric_exporter".into(),
            ..Self::otlp_grpc()
        }
    }

    /// OTLP/HTTP (JSON) exporters with batching processors.
    pub fn otlp_http_json() -> Self {
        Self {
            span_exporter: "otlp_http_json_span_exporter".into(),
            log_exporter: "otlp_http_json_log_exporter".into(),
            metric_exporter: "otlp_http_json_metric_exporter".into(),
            ..Self::otlp_grpc()
        }
    }

    fn exporter(&self, s: Signal) -> &str {
        match s {
            Signal::Traces => &self.span_exporter,
            Signal::Logs => &self.log_exporter,
            Signal::Metrics => &self.metric_exporter,
        }
    }

    fn processor(&self, s: Signal) -> &str {
        match s {
            Signal::Traces => &self.span_processor,
            Signal::Logs => &self.log_processor,
            Signal::Metrics => "",
        }
    }
}

struct SignalHandles {
    exported: Option<Arc<Series>>,
    processed: Option<Arc<Series>>,
    dropped: Option<Arc<Series>>,
    queue_size: Option<Arc<Series>>,
    queue_capacity: Option<Arc<Series>>,
    duration: Option<Arc<Series>>,
    totals: Totals,
}

/// The running totals of one signal, kept beside its series by the same
/// calls, so what a program reads back ([`PipelineHealth::totals`], e.g.
/// a shutdown report) and what the metrics show cannot disagree.
#[derive(Debug, Default)]
struct Totals {
    enqueued: AtomicU64,
    dropped: AtomicU64,
    processed: AtomicU64,
    discarded: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

/// What was recorded for one signal through a [`PipelineHealth`] (and its
/// clones) so far; see [`PipelineHealth::totals`].
///
/// Every field except `enqueued` is the sum of series of the `otel.sdk.*`
/// metrics, as the table of [`PipelineHealth`] shows; `enqueued` has no
/// series of its own (the semantic conventions define none) and is what
/// makes [`pending`](Self::pending) computable.
///
/// ```
/// use telemetry_init_metrics::{MetricsConfig, Signal, TelemetryRecorder};
///
/// let recorder = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
/// let health = recorder.handle().pipeline_health();
/// for _ in 0..10 {
///     health.enqueued(Signal::Traces);
/// }
/// health.dropped(Signal::Traces, 2);
/// health.processed(Signal::Traces, 6);
/// health.exported(Signal::Traces, 5);
/// health.failed(Signal::Traces, 1, "unavailable");
/// health.discarded(Signal::Traces, 3, "shutdown_timeout");
/// let t = health.totals(Signal::Traces);
/// assert_eq!((t.exported, t.failed, t.discarded, t.dropped), (5, 1, 3, 2));
/// // Enqueued, not yet exported, failed or discarded: one span still queued.
/// assert_eq!(t.pending(), 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineTotals {
    /// Items accepted into the processor's queue
    /// ([`enqueued`](PipelineHealth::enqueued)); no series.
    pub enqueued: u64,
    /// Items refused because the queue was full
    /// (`otel.sdk.processor.*.processed{error.type="queue_full"}`).
    pub dropped: u64,
    /// Items the processor handed to the exporter
    /// (`otel.sdk.processor.*.processed` without `error.type`).
    pub processed: u64,
    /// Items the processor gave up on after accepting them, e.g. still
    /// queued when the shutdown deadline passed
    /// (`otel.sdk.processor.*.processed` with any other `error.type`).
    pub discarded: u64,
    /// Items the collector accepted
    /// (`otel.sdk.exporter.*.exported` without `error.type`).
    pub exported: u64,
    /// Items whose export failed, whatever the reason
    /// (`otel.sdk.exporter.*.exported` with `error.type`, all values).
    pub failed: u64,
}

impl PipelineTotals {
    /// Items accepted into the queue whose fate is not known yet: still
    /// queued, or in an export that has not ended.
    pub fn pending(&self) -> u64 {
        self.enqueued
            .saturating_sub(self.exported + self.failed + self.discarded)
    }
}

impl Totals {
    fn snapshot(&self) -> PipelineTotals {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PipelineTotals {
            enqueued: get(&self.enqueued),
            dropped: get(&self.dropped),
            processed: get(&self.processed),
            discarded: get(&self.discarded),
            exported: get(&self.exported),
            failed: get(&self.failed),
        }
    }
}

/// Typed recorder for the pipeline's own health, for the exporter and
/// processor wrappers of the main crate. Cheap to clone; success paths use
/// pre-registered series (plain atomics), failures look their `error.type`
/// series up in the registry.
///
/// It is also the one record of the pipeline's counts: each call adds to
/// the signal's series *and* to its [`totals`](Self::totals) at once (the
/// shutdown report of the main crate reads the totals), so there is no way
/// to count an item in one and not the other. The totals are kept per
/// `PipelineHealth` (shared by its clones), the series per registry.
///
/// | call | metric | labels | total |
/// |---|---|---|---|
/// | [`enqueued`](Self::enqueued) | none | | `enqueued` |
/// | [`exported`](Self::exported) | `otel.sdk.exporter.{signal}.exported` | `otel.component.type` | `exported` |
/// | [`failed`](Self::failed) | `otel.sdk.exporter.{signal}.exported` | + `error.type` | `failed` |
/// | [`processed`](Self::processed) | `otel.sdk.processor.{span,log}.processed` | `otel.component.type` | `processed` |
/// | [`dropped`](Self::dropped) | `otel.sdk.processor.{span,log}.processed` | + `error.type="queue_full"` | `dropped` |
/// | [`discarded`](Self::discarded) | `otel.sdk.processor.{span,log}.processed` | + `error.type` | `discarded` |
/// | [`queue_size`](Self::queue_size) / [`queue_capacity`](Self::queue_capacity) | `otel.sdk.processor.{span,log}.queue.{size,capacity}` | `otel.component.type` |
/// | [`export_duration`](Self::export_duration) | `otel.sdk.exporter.operation.duration` | `otel.component.type` (+ `error.type`) |
///
/// ```
/// use telemetry_init_metrics::{MetricsConfig, Signal, TelemetryRecorder};
///
/// let recorder = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
/// let health = recorder.handle().pipeline_health();
/// health.exported(Signal::Traces, 512);
/// health.failed(Signal::Traces, 3, "unavailable");
/// health.dropped(Signal::Traces, 1);
/// health.queue_size(Signal::Traces, 17);
/// health.export_duration(Signal::Traces, 0.012, None);
/// let text = recorder.handle().render_prometheus();
/// assert!(text.contains(
///     "otel_sdk_exporter_span_exported_total{otel_component_type=\"otlp_grpc_span_exporter\"} 512"
/// ));
/// assert!(text.contains(
///     "otel_sdk_processor_span_processed_total{otel_component_type=\"batching_span_processor\",error_type=\"queue_full\"} 1"
/// ));
/// ```
#[derive(Clone)]
pub struct PipelineHealth {
    registry: Arc<Registry>,
    components: Arc<PipelineComponents>,
    signals: Arc<[SignalHandles; 3]>,
}

impl fmt::Debug for PipelineHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineHealth")
            .field("components", &self.components)
            .finish_non_exhaustive()
    }
}

fn key(name: &'static str, labels: Vec<Label>) -> Key {
    Key::from_parts(name, labels)
}

impl PipelineHealth {
    pub(crate) fn new(registry: Arc<Registry>, components: PipelineComponents) -> Self {
        let handles = |s: Signal| {
            let exporter = Label::new(names::COMPONENT_TYPE, components.exporter(s).to_string());
            let processor = Label::new(names::COMPONENT_TYPE, components.processor(s).to_string());
            SignalHandles {
                exported: registry.series(
                    Kind::Counter,
                    &key(exported_name(s), vec![exporter.clone()]),
                ),
                processed: processed_name(s)
                    .and_then(|n| registry.series(Kind::Counter, &key(n, vec![processor.clone()]))),
                dropped: processed_name(s).and_then(|n| {
                    registry.series(
                        Kind::Counter,
                        &key(
                            n,
                            vec![
                                processor.clone(),
                                Label::new(names::ERROR_TYPE, names::QUEUE_FULL),
                            ],
                        ),
                    )
                }),
                queue_size: queue_names(s).and_then(|(n, _)| {
                    registry.series(Kind::Gauge, &key(n, vec![processor.clone()]))
                }),
                queue_capacity: queue_names(s).and_then(|(_, n)| {
                    registry.series(Kind::Gauge, &key(n, vec![processor.clone()]))
                }),
                duration: registry.series(
                    Kind::Histogram,
                    &key(names::EXPORT_DURATION, vec![exporter]),
                ),
                totals: Totals::default(),
            }
        };
        let signals = Arc::new(Signal::ALL.map(handles));
        Self {
            registry,
            components: Arc::new(components),
            signals,
        }
    }

    fn h(&self, s: Signal) -> &SignalHandles {
        &self.signals[s.index()]
    }

    /// The component types this instance labels its series with.
    pub fn components(&self) -> &PipelineComponents {
        &self.components
    }

    /// What was recorded for `signal` so far, through this handle and its
    /// clones; see [`PipelineTotals`].
    pub fn totals(&self, signal: Signal) -> PipelineTotals {
        self.h(signal).totals.snapshot()
    }

    /// One item of `signal` was accepted into the processor's queue. Counted
    /// in the [`totals`](Self::totals) only (no series): one relaxed atomic
    /// increment, cheap enough for a request thread.
    #[inline]
    pub fn enqueued(&self, signal: Signal) {
        self.h(signal)
            .totals
            .enqueued
            .fetch_add(1, Ordering::Relaxed);
    }

    /// `n` items of `signal` were exported successfully.
    pub fn exported(&self, signal: Signal, n: u64) {
        let h = self.h(signal);
        h.totals.exported.fetch_add(n, Ordering::Relaxed);
        if let Some(s) = &h.exported {
            CounterFn::increment(&**s, n);
        }
    }

    /// The export of `n` items of `signal` failed with `error_type` (e.g.
    /// `timeout`, `unavailable`, an HTTP status code or a gRPC status name).
    pub fn failed(&self, signal: Signal, n: u64, error_type: &str) {
        self.h(signal).totals.failed.fetch_add(n, Ordering::Relaxed);
        let labels = vec![
            Label::new(
                names::COMPONENT_TYPE,
                self.components.exporter(signal).to_string(),
            ),
            Label::new(names::ERROR_TYPE, error_type.to_string()),
        ];
        if let Some(s) = self
            .registry
            .series(Kind::Counter, &key(exported_name(signal), labels))
        {
            CounterFn::increment(&*s, n);
        }
    }

    /// `n` items of `signal` were handed from the processor to the exporter.
    /// No series for [`Signal::Metrics`] (the totals still count).
    pub fn processed(&self, signal: Signal, n: u64) {
        let h = self.h(signal);
        h.totals.processed.fetch_add(n, Ordering::Relaxed);
        if let Some(s) = &h.processed {
            CounterFn::increment(&**s, n);
        }
    }

    /// `n` items of `signal` were dropped because the processor queue was
    /// full (`error.type="queue_full"`). No series for
    /// [`Signal::Metrics`] (the totals still count).
    pub fn dropped(&self, signal: Signal, n: u64) {
        let h = self.h(signal);
        h.totals.dropped.fetch_add(n, Ordering::Relaxed);
        if let Some(s) = &h.dropped {
            CounterFn::increment(&**s, n);
        }
    }

    /// `n` items of `signal` that the processor had accepted never reached
    /// the exporter, for `error_type`: e.g. `shutdown_timeout`, still queued
    /// when the shutdown deadline passed. Recorded as
    /// `otel.sdk.processor.{span,log}.processed{error.type=…}`; for
    /// items refused by a full queue use [`dropped`](Self::dropped). No
    /// series for [`Signal::Metrics`] (the totals still count).
    pub fn discarded(&self, signal: Signal, n: u64, error_type: &str) {
        self.h(signal)
            .totals
            .discarded
            .fetch_add(n, Ordering::Relaxed);
        let Some(name) = processed_name(signal) else {
            return;
        };
        let labels = vec![
            Label::new(
                names::COMPONENT_TYPE,
                self.components.processor(signal).to_string(),
            ),
            Label::new(names::ERROR_TYPE, error_type.to_string()),
        ];
        if let Some(s) = self.registry.series(Kind::Counter, &key(name, labels)) {
            CounterFn::increment(&*s, n);
        }
    }

    /// Sets the current processor queue size. No-op for
    /// [`Signal::Metrics`].
    pub fn queue_size(&self, signal: Signal, n: u64) {
        if let Some(s) = &self.h(signal).queue_size {
            GaugeFn::set(&**s, n as f64);
        }
    }

    /// Sets the processor queue capacity. No-op for
    /// [`Signal::Metrics`].
    pub fn queue_capacity(&self, signal: Signal, n: u64) {
        if let Some(s) = &self.h(signal).queue_capacity {
            GaugeFn::set(&**s, n as f64);
        }
    }

    /// Records the duration of one export call of `signal`'s exporter, with
    /// `error.type` when it failed.
    pub fn export_duration(&self, signal: Signal, seconds: f64, error_type: Option<&str>) {
        match error_type {
            None => {
                if let Some(s) = &self.h(signal).duration {
                    HistogramFn::record(&**s, seconds);
                }
            }
            Some(e) => {
                let labels = vec![
                    Label::new(
                        names::COMPONENT_TYPE,
                        self.components.exporter(signal).to_string(),
                    ),
                    Label::new(names::ERROR_TYPE, e.to_string()),
                ];
                if let Some(s) = self
                    .registry
                    .series(Kind::Histogram, &key(names::EXPORT_DURATION, labels))
                {
                    HistogramFn::record(&*s, seconds);
                }
            }
        }
    }
}
