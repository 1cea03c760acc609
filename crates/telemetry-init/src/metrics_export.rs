//! The OTLP metric exporter, run on the export runtime.

use std::time::Duration;

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use tokio::runtime::Handle;

use crate::config::{Protocol, Signal};
use crate::pipeline::batch::{ExportError, record_outcome};
use crate::pipeline::exporters::{OtlpClient, encode_metrics};
use crate::pipeline::runtime;

/// Sends metrics with the same OTLP client, retry policy and failure
/// accounting as spans and logs, driven from the `PeriodicReader`'s plain
/// thread with a bounded wait.
#[derive(Debug)]
pub(crate) struct RuntimeMetricExporter {
    client: OtlpClient,
    protocol: Protocol,
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
        client: OtlpClient,
        protocol: Protocol,
        handle: Handle,
        timeout: Duration,
        health: HealthSlot,
    ) -> Self {
        Self {
            client,
            protocol,
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
        let body = encode_metrics(self.protocol, metrics);
        let result = runtime::block_on(&self.handle, async {
            match tokio::time::timeout(self.timeout, self.client.export(body, self.timeout)).await {
                Ok(r) => r,
                Err(_) => Err(ExportError::timeout(self.timeout)),
            }
        });
        if let Some(health) = self.health.get() {
            record_outcome(
                health,
                Signal::Metrics,
                data_points(metrics),
                started,
                &result,
            );
        }
        std::future::ready(match result {
            Ok(_) => Ok(()),
            Err(ExportError {
                error_type: "timeout",
                ..
            }) => Err(OTelSdkError::Timeout(self.timeout)),
            Err(e) => Err(OTelSdkError::InternalFailure(e.message)),
        })
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        // What opentelemetry-otlp's exporter defaults to, and what
        // Prometheus-style backends (Mimir) store without conversion.
        Temporality::Cumulative
    }
}
