//! Mirror of the facade metrics onto OpenTelemetry instruments.
//!
//! * counters → `ObservableCounter<u64>` whose callback reads our atomics
//!   (zero hot-path cost, cumulative values identical to the scrape);
//! * gauges → `ObservableGauge<f64>` (same);
//! * histograms → synchronous `Histogram<f64>` with the same boundaries,
//!   recorded next to our own buckets with a per-series attribute slice that
//!   is built once at registration.
//!
//! This module knows nothing of the registry: the registry builds the
//! instruments of its families and series here, and the observable
//! instruments' callbacks read the registry's values back through
//! `Observed`, which the registry implements (so the two modules do not
//! import each other).

use std::sync::Weak;

use metrics::Label;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter, ObservableCounter, ObservableGauge};

use crate::naming::Kind;

/// OpenTelemetry attribute marking the overflow series.
pub(crate) const OVERFLOW_LABEL: &str = "otel.metric.overflow";

/// What the observable instruments read at collection time: the current
/// value of every series of one family that has OpenTelemetry attributes.
pub(crate) trait Observed: Send + Sync + 'static {
    /// Calls `f` with the value and attributes of every counter series.
    fn observe_counters(&self, f: &mut dyn FnMut(u64, &[KeyValue]));
    /// Calls `f` with the value and attributes of every gauge series.
    fn observe_gauges(&self, f: &mut dyn FnMut(f64, &[KeyValue]));
}

/// Instruments of one family.
#[allow(dead_code)] // the observable handles are kept alive, never read
pub(crate) enum OtelFamily {
    Counter(ObservableCounter<u64>),
    Gauge(ObservableGauge<f64>),
    Histogram(Histogram<f64>),
}

/// Per-series OpenTelemetry state.
pub(crate) struct OtelSeries {
    pub(crate) attrs: Box<[KeyValue]>,
    #[cfg(not(feature = "otel-bound-instruments"))]
    histogram: Option<Histogram<f64>>,
    #[cfg(feature = "otel-bound-instruments")]
    histogram: Option<opentelemetry::metrics::BoundHistogram<f64>>,
}

impl OtelSeries {
    /// Forwards one histogram observation.
    #[inline]
    pub(crate) fn record(&self, value: f64) {
        if let Some(h) = &self.histogram {
            #[cfg(not(feature = "otel-bound-instruments"))]
            h.record(value, &self.attrs);
            #[cfg(feature = "otel-bound-instruments")]
            h.record(value);
        }
    }
}

/// Attribute keys whose values semantic conventions define as integers.
const INT_ATTRIBUTES: &[&str] = &[
    "http.response.status_code",
    "server.port",
    "client.port",
    "network.peer.port",
    "rpc.grpc.status_code",
];

pub(crate) fn attributes(labels: &[Label]) -> Box<[KeyValue]> {
    labels
        .iter()
        .map(|l| {
            let (k, v) = (l.key(), l.value());
            if k == OVERFLOW_LABEL && v == "true" {
                return KeyValue::new(k.to_string(), true);
            }
            if INT_ATTRIBUTES.contains(&k)
                && let Ok(i) = v.parse::<i64>()
            {
                return KeyValue::new(k.to_string(), i);
            }
            KeyValue::new(k.to_string(), v.to_string())
        })
        .collect()
}

/// The instrument of one family named `name`; observable instruments read
/// `values` (held weakly: a dropped family observes nothing).
pub(crate) fn build_family(
    meter: &Meter,
    name: &str,
    kind: Kind,
    bounds: Option<&[f64]>,
    values: Weak<dyn Observed>,
    unit: Option<String>,
    description: Option<String>,
) -> OtelFamily {
    let name = name.to_string();
    match kind {
        Kind::Counter => {
            let mut b = meter
                .u64_observable_counter(name)
                .with_callback(move |obs| {
                    if let Some(f) = values.upgrade() {
                        f.observe_counters(&mut |v, attrs| obs.observe(v, attrs));
                    }
                });
            if let Some(u) = unit {
                b = b.with_unit(u);
            }
            if let Some(d) = description {
                b = b.with_description(d);
            }
            OtelFamily::Counter(b.build())
        }
        Kind::Gauge => {
            let mut b = meter.f64_observable_gauge(name).with_callback(move |obs| {
                if let Some(f) = values.upgrade() {
                    f.observe_gauges(&mut |v, attrs| obs.observe(v, attrs));
                }
            });
            if let Some(u) = unit {
                b = b.with_unit(u);
            }
            if let Some(d) = description {
                b = b.with_description(d);
            }
            OtelFamily::Gauge(b.build())
        }
        Kind::Histogram => {
            let bounds = bounds.map(<[f64]>::to_vec).unwrap_or_default();
            let mut b = meter.f64_histogram(name).with_boundaries(bounds);
            if let Some(u) = unit {
                b = b.with_unit(u);
            }
            if let Some(d) = description {
                b = b.with_description(d);
            }
            OtelFamily::Histogram(b.build())
        }
    }
}

/// The OpenTelemetry state of one series with `labels`.
pub(crate) fn build_series(family: &OtelFamily, labels: &[Label]) -> OtelSeries {
    let attrs = attributes(labels);
    let histogram = match family {
        #[cfg(not(feature = "otel-bound-instruments"))]
        OtelFamily::Histogram(h) => Some(h.clone()),
        #[cfg(feature = "otel-bound-instruments")]
        OtelFamily::Histogram(h) => Some(h.bind(&attrs)),
        _ => None,
    };
    OtelSeries { attrs, histogram }
}
