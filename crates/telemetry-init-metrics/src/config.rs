//! Recorder configuration.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use opentelemetry::metrics::Meter;

use crate::MetricsError;
use crate::trace_context::{TraceContextFn, current_trace_context};

/// OpenTelemetry's advisory bucket boundaries (seconds) for
/// `http.server.request.duration`, used for every histogram that has no
/// more specific configuration.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The OpenTelemetry SDK's default explicit bucket boundaries, used for
/// histograms whose unit is known and is not seconds (bytes, milliseconds,
/// counts, …) unless a prefix configuration matches.
pub const DEFAULT_BUCKETS_OTHER_UNITS: &[f64] = &[
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// Default hard limit of distinct label sets per metric name.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 1000;

/// Default longest label key or value, in bytes; longer ones are cut on a
/// UTF-8 character boundary.
pub const DEFAULT_LABEL_LENGTH_LIMIT: usize = 256;

/// Configuration of a [`TelemetryRecorder`](crate::TelemetryRecorder).
///
/// Built with chained setters; every setter is optional.
///
/// ```
/// use telemetry_init_metrics::MetricsConfig;
///
/// let config = MetricsConfig::new()
///     // RPC latencies get their own boundaries.
///     .buckets_for_prefix("rpc.", vec![0.001, 0.01, 0.1, 1.0])
///     // A 300 ms SLO on HTTP latency must be a bucket boundary.
///     .slo_threshold("http.server.request.duration", 0.3)
///     // At most 100 label sets for a user metric.
///     .cardinality_limit_for("myapp.cache.hits", 100)
///     .constant_label("service.name", "demo");
/// assert_eq!(
///     config.buckets_for("http.server.request.duration", Some("s"))[6..8],
///     [0.25, 0.3]
/// );
/// ```
#[derive(Clone)]
pub struct MetricsConfig {
    pub(crate) default_buckets: Vec<f64>,
    pub(crate) other_unit_buckets: Vec<f64>,
    pub(crate) prefix_buckets: Vec<(String, Vec<f64>)>,
    pub(crate) slo_thresholds: Vec<(String, f64)>,
    pub(crate) cardinality_limit: usize,
    pub(crate) prefix_limits: Vec<(String, usize)>,
    pub(crate) label_length_limit: usize,
    pub(crate) constant_labels: Vec<(String, String)>,
    pub(crate) units: Vec<(String, Cow<'static, str>)>,
    pub(crate) trace_context: Option<TraceContextFn>,
    pub(crate) meter: Option<Meter>,
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("default_buckets", &self.default_buckets)
            .field("other_unit_buckets", &self.other_unit_buckets)
            .field("prefix_buckets", &self.prefix_buckets)
            .field("slo_thresholds", &self.slo_thresholds)
            .field("cardinality_limit", &self.cardinality_limit)
            .field("prefix_limits", &self.prefix_limits)
            .field("label_length_limit", &self.label_length_limit)
            .field("constant_labels", &self.constant_labels)
            .field("units", &self.units)
            .field("exemplars", &self.trace_context.is_some())
            .field("otel_meter", &self.meter.is_some())
            .finish()
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsConfig {
    /// The defaults: OpenTelemetry HTTP bucket advice, a cardinality limit of
    /// [`DEFAULT_CARDINALITY_LIMIT`], exemplars from the current `tracing`
    /// span ([`current_trace_context`]), no constant labels, no OTLP mirror.
    pub fn new() -> Self {
        Self {
            default_buckets: DEFAULT_BUCKETS.to_vec(),
            other_unit_buckets: DEFAULT_BUCKETS_OTHER_UNITS.to_vec(),
            prefix_buckets: Vec::new(),
            slo_thresholds: Vec::new(),
            cardinality_limit: DEFAULT_CARDINALITY_LIMIT,
            prefix_limits: Vec::new(),
            label_length_limit: DEFAULT_LABEL_LENGTH_LIMIT,
            constant_labels: Vec::new(),
            units: Vec::new(),
            trace_context: Some(current_trace_context),
            meter: None,
        }
    }

    /// Replaces the default histogram bucket boundaries (upper bounds, in the
    /// metric's unit, normally seconds). They are sorted and de-duplicated;
    /// non-finite values are rejected by [`MetricsConfig::validate`].
    #[must_use]
    pub fn default_buckets(mut self, bounds: Vec<f64>) -> Self {
        self.default_buckets = bounds;
        self
    }

    /// Replaces the boundaries used for histograms whose unit is known and is
    /// not seconds (default [`DEFAULT_BUCKETS_OTHER_UNITS`]).
    #[must_use]
    pub fn default_buckets_other_units(mut self, bounds: Vec<f64>) -> Self {
        self.other_unit_buckets = bounds;
        self
    }

    /// Uses `bounds` for every histogram whose name starts with `prefix`.
    /// The longest matching prefix wins; an exact name is a prefix too.
    #[must_use]
    pub fn buckets_for_prefix(mut self, prefix: impl Into<String>, bounds: Vec<f64>) -> Self {
        self.prefix_buckets.push((prefix.into(), bounds));
        self
    }

    /// Adds an SLO latency threshold (seconds) as an extra bucket boundary to
    /// every histogram whose name starts with `prefix`, so that
    /// `…_bucket{le="<threshold>"}` exists and good/total ratios are exact.
    #[must_use]
    pub fn slo_threshold(mut self, prefix: impl Into<String>, threshold_seconds: f64) -> Self {
        self.slo_thresholds.push((prefix.into(), threshold_seconds));
        self
    }

    /// Sets the default hard limit of distinct label sets per metric name
    /// (minimum 1). Label sets beyond it are folded into one overflow series
    /// labelled `otel_metric_overflow="true"`.
    #[must_use]
    pub fn cardinality_limit(mut self, limit: usize) -> Self {
        self.cardinality_limit = limit.max(1);
        self
    }

    /// Sets a specific cardinality limit for metrics whose name starts with
    /// `prefix` (longest prefix wins).
    #[must_use]
    pub fn cardinality_limit_for(mut self, prefix: impl Into<String>, limit: usize) -> Self {
        self.prefix_limits.push((prefix.into(), limit.max(1)));
        self
    }

    /// Sets the longest label key or value, in bytes (minimum 8; default
    /// [`DEFAULT_LABEL_LENGTH_LIMIT`]). Longer ones, typically values a
    /// client chose, are cut on a UTF-8 character boundary before they become
    /// a series, so one series costs at most a few hundred bytes in memory
    /// and in every scrape whatever was recorded. Values that agree up to the
    /// limit share a series.
    ///
    /// ```
    /// use telemetry_init_metrics::{MetricsConfig, TelemetryRecorder};
    ///
    /// let r = TelemetryRecorder::new(MetricsConfig::new().label_length_limit(16)).unwrap();
    /// metrics::with_local_recorder(&r, || {
    ///     metrics::counter!("hits", "path" => "/".repeat(10_000)).increment(1);
    /// });
    /// let text = r.handle().render_prometheus();
    /// assert!(text.contains(&format!("path=\"{}\"", "/".repeat(16))));
    /// assert!(!text.contains(&"/".repeat(17)));
    /// ```
    #[must_use]
    pub fn label_length_limit(mut self, bytes: usize) -> Self {
        self.label_length_limit = bytes.max(8);
        self
    }

    /// Adds a label (OpenTelemetry attribute name, e.g. `service.name`) to
    /// every series, in both the exposition and the OTLP mirror. A label of
    /// the same key recorded by the caller takes precedence.
    #[must_use]
    pub fn constant_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.constant_labels.push((key.into(), value.into()));
        self
    }

    /// Sets the OpenTelemetry (UCUM) unit of a metric, e.g. `"{request}"`,
    /// `"By"` or `"s"`. This overrides the built-in catalogue; a unit given
    /// via `metrics::describe_*!` overrides both.
    #[must_use]
    pub fn unit(
        mut self,
        metric_name: impl Into<String>,
        unit: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.units.push((metric_name.into(), unit.into()));
        self
    }

    /// Sets the hook that returns the sampled trace context of the current
    /// call site, used for histogram exemplars. `None` disables exemplars.
    /// The default is [`current_trace_context`].
    #[must_use]
    pub fn trace_context(mut self, hook: Option<TraceContextFn>) -> Self {
        self.trace_context = hook;
        self
    }

    /// Mirrors every metric to OpenTelemetry instruments created from
    /// `meter` (see the crate docs, "OTLP bridge").
    #[must_use]
    pub fn otel_meter(mut self, meter: Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// The bucket boundaries a histogram called `name` with OpenTelemetry
    /// unit `unit` gets: the longest matching prefix configuration, else the
    /// seconds defaults when the unit is `s` or unknown, else
    /// [`DEFAULT_BUCKETS_OTHER_UNITS`]; plus matching SLO thresholds; sorted
    /// and de-duplicated. (The recorder passes the unit known when the
    /// first series of the name is registered.)
    pub fn buckets_for(&self, name: &str, unit: Option<&str>) -> Vec<f64> {
        let mut bounds = longest_prefix(&self.prefix_buckets, name)
            .cloned()
            .unwrap_or_else(|| match unit {
                Some(u) if u != "s" => self.other_unit_buckets.clone(),
                _ => self.default_buckets.clone(),
            });
        bounds.extend(
            self.slo_thresholds
                .iter()
                .filter(|(p, _)| name.starts_with(p.as_str()))
                .map(|(_, t)| *t),
        );
        bounds.retain(|b| b.is_finite());
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        bounds
    }

    /// The cardinality limit for metric `name`.
    pub fn limit_for(&self, name: &str) -> usize {
        longest_prefix(&self.prefix_limits, name)
            .copied()
            .unwrap_or(self.cardinality_limit)
    }

    /// Checks that all bucket boundaries and SLO thresholds are finite.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidBuckets`] naming the offending list.
    pub fn validate(&self) -> Result<(), MetricsError> {
        let bad = |v: &[f64]| v.iter().any(|b| !b.is_finite());
        if bad(&self.default_buckets) || bad(&self.other_unit_buckets) {
            return Err(MetricsError::InvalidBuckets("default buckets".into()));
        }
        for (p, b) in &self.prefix_buckets {
            if bad(b) {
                return Err(MetricsError::InvalidBuckets(format!("buckets for `{p}`")));
            }
        }
        for (p, t) in &self.slo_thresholds {
            if !t.is_finite() || *t <= 0.0 {
                return Err(MetricsError::InvalidBuckets(format!(
                    "SLO threshold {t} for `{p}`"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn configured_unit(&self, name: &str) -> Option<Cow<'static, str>> {
        self.units
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, u)| u.clone())
    }
}

fn longest_prefix<'a, T>(list: &'a [(String, T)], name: &str) -> Option<&'a T> {
    list.iter()
        .filter(|(p, _)| name.starts_with(p.as_str()))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, v)| v)
}

/// Shared immutable view of the config used by the registry.
pub(crate) type SharedConfig = Arc<MetricsConfig>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_selection() {
        let c = MetricsConfig::new()
            .buckets_for_prefix("rpc.", vec![1.0, 0.1])
            .buckets_for_prefix("rpc.server.", vec![2.0])
            .slo_threshold("rpc.server.duration", 0.5)
            .slo_threshold("rpc.server.duration", 2.0);
        assert_eq!(c.buckets_for("http.x", None), DEFAULT_BUCKETS);
        assert_eq!(c.buckets_for("http.x", Some("s")), DEFAULT_BUCKETS);
        assert_eq!(
            c.buckets_for("http.x", Some("By")),
            DEFAULT_BUCKETS_OTHER_UNITS
        );
        assert_eq!(
            c.buckets_for("rpc.client.duration", Some("ms")),
            vec![0.1, 1.0]
        );
        assert_eq!(c.buckets_for("rpc.server.duration", None), vec![0.5, 2.0]);
        assert_eq!(c.limit_for("x"), DEFAULT_CARDINALITY_LIMIT);
        let c = c.cardinality_limit(10).cardinality_limit_for("x.", 3);
        assert_eq!(c.limit_for("x.y"), 3);
        assert_eq!(c.limit_for("y"), 10);
        assert!(c.validate().is_ok());
        assert!(
            MetricsConfig::new()
                .slo_threshold("a", f64::NAN)
                .validate()
                .is_err()
        );
        assert!(
            MetricsConfig::new()
                .default_buckets(vec![f64::INFINITY])
                .validate()
                .is_err()
        );
    }
}
