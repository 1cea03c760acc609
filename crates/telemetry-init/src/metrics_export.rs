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
}

impl RuntimeMetricExporter {
    pub(crate) fn new(
        inner: opentelemetry_otlp::MetricExporter,
        handle: Handle,
        timeout: Duration,
    ) -> Self {
        Self {
            inner,
            handle,
            timeout,
        }
    }
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
        metrics::histogram!(
            "otel.sdk.exporter.operation.duration",
            "otel.component.type" => "otlp_metric_exporter"
        )
        .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(()) => {
                metrics::counter!("otel.sdk.exporter.metric_data_point.exported").increment(1)
            }
            Err(_) => metrics::counter!(
                "otel.sdk.exporter.metric_data_point.exported",
                "error.type" => "export_failed"
            )
            .increment(1),
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
