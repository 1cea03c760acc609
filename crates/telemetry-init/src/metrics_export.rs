//! The OTLP metric exporter, run on the export runtime.

use std::time::Duration;

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use tokio::runtime::Handle;

use crate::pipeline::runtime;

/// Wraps the OTLP exporter so the `PeriodicReader`'s plain thread can drive
/// its tonic/reqwest future, with a bounded wait, and counts the outcome.
#[derive(Debug)]
pub(crate) struct RuntimeMetricExporter {
    inner: opentelemetry_otlp::MetricExporter,
    handle: Handle,
    timeout: Duration,
    health: HealthSlot,
}

/// Set once the metrics recorder exists, which needs this exporter's meter
/// provider first.
pub(crate) type HealthSlot =
    std::sync::Arc<std::sync::OnceLock<telemetry_init_metrics::PipelineHealth>>;

impl RuntimeMetricExporter {
    pub(crate) fn new(
        inner: opentelemetry_otlp::MetricExporter,
        handle: Handle,
        timeout: Duration,
        health: HealthSlot,
    ) -> Self {
        Self {
            inner,
            handle,
            timeout,
            health,
        }
    }
}

/// The number of data points in one export.
fn data_points(metrics: &ResourceMetrics) -> u64 {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    fn count<T>(d: &MetricData<T>) -> usize {
        match d {
            MetricData::Gauge(g) => g.data_points().count(),
            MetricData::Sum(s) => s.data_points().count(),
            MetricData::Histogram(h) => h.data_points().count(),
            MetricData::ExponentialHistogram(h) => h.data_points().count(),
        }
    }
    metrics
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .map(|m| match m.data() {
            AggregatedMetrics::F64(d) => count(d),
            AggregatedMetrics::U64(d) => count(d),
            AggregatedMetrics::I64(d) => count(d),
        })
        .sum::<usize>() as u64
}

impl PushMetricExporter for RuntimeMetricExporter {
    fn export(
        &self,
        metrics: &ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let started = std::time::Instant::now();
        let result = runtime::block_on(&self.handle, async {
            match tokio::time::timeout(self.timeout, self.inner.export(metrics)).await {
                Ok(r) => r,
                Err(_) => Err(OTelSdkError::Timeout(self.timeout)),
            }
        });
        if let Some(health) = self.health.get() {
            use telemetry_init_metrics::Signal;
            let points = data_points(metrics);
            let seconds = started.elapsed().as_secs_f64();
            match &result {
                Ok(()) => {
                    health.exported(Signal::MetricDataPoint, points);
                    health.export_duration(Signal::MetricDataPoint, seconds, None);
                }
                Err(e) => {
                    let error_type = match e {
                        OTelSdkError::Timeout(_) => "timeout",
                        _ => "export_failed",
                    };
                    health.failed(Signal::MetricDataPoint, points, error_type);
                    health.export_duration(Signal::MetricDataPoint, seconds, Some(error_type));
                }
            }
        }
        std::future::ready(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}
