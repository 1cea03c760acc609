//! The OTLP metric exporter, run on the export runtime.
//!
//! It also puts exemplars on pushed histogram points. The OpenTelemetry
//! SDK 0.33 collects none (see `telemetry-init-metrics`' crate docs), but
//! every histogram it pushes is a mirror of one of our recorder's series,
//! whose buckets keep the latest exemplar recorded inside a sampled span
//! (the same slots the OpenMetrics scrape renders). At export time each
//! pushed point gets the exemplars of the series with the same attributes
//! that were recorded since the last delivered push and no later than the
//! point itself. The request path pays nothing for this.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue as ProtoKeyValue;
use opentelemetry_proto::tonic::metrics::v1::{Exemplar as ProtoExemplar, exemplar, metric};

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
    recorder: RecorderSlot,
    /// Exemplars recorded at or before this time (ns since the epoch) went
    /// out with a delivered push.
    exemplars_sent_until: AtomicU64,
}

/// What the exporter needs from the metrics recorder.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Where export outcomes are counted.
    pub(crate) health: telemetry_init_metrics::PipelineHealth,
    /// Where exemplars are read.
    pub(crate) metrics: telemetry_init_metrics::MetricsHandle,
}

/// Set once the metrics recorder exists, which needs this exporter's meter
/// provider first.
pub(crate) type RecorderSlot = std::sync::Arc<std::sync::OnceLock<Recorder>>;

impl RuntimeMetricExporter {
    pub(crate) fn new(
        client: OtlpClient,
        protocol: Protocol,
        handle: Handle,
        timeout: Duration,
        recorder: RecorderSlot,
    ) -> Self {
        Self {
            client,
            protocol,
            handle,
            timeout,
            recorder,
            exemplars_sent_until: AtomicU64::new(0),
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

/// Adds to each histogram point of `request` the exemplars of the matching
/// series recorded after `after` and no later than the point's time;
/// returns the newest histogram point time (what the next push starts
/// after, once this one is delivered).
fn attach_exemplars(
    request: &mut ExportMetricsServiceRequest,
    source: &telemetry_init_metrics::MetricsHandle,
    after: u64,
) -> u64 {
    let mut newest = 0;
    let histograms = request
        .resource_metrics
        .iter_mut()
        .flat_map(|r| r.scope_metrics.iter_mut())
        .flat_map(|s| s.metrics.iter_mut())
        .filter_map(|m| match &mut m.data {
            Some(metric::Data::Histogram(h)) => Some((m.name.as_str(), h)),
            _ => None,
        });
    for (name, histogram) in histograms {
        let mut by_series: HashMap<Vec<u8>, Vec<telemetry_init_metrics::Exemplar>> = HashMap::new();
        source.for_each_exemplar(name, |attrs, e| {
            if e.time_unix_nanos > after {
                let attrs: Vec<ProtoKeyValue> = attrs.iter().map(ProtoKeyValue::from).collect();
                by_series
                    .entry(attributes_key(attrs.iter()))
                    .or_default()
                    .push(e);
            }
        });
        for point in &mut histogram.data_points {
            newest = newest.max(point.time_unix_nano);
            let Some(found) = by_series.get(&attributes_key(point.attributes.iter())) else {
                continue;
            };
            point.exemplars.extend(
                found
                    .iter()
                    .filter(|e| e.time_unix_nanos <= point.time_unix_nano)
                    .map(|e| ProtoExemplar {
                        filtered_attributes: Vec::new(),
                        time_unix_nano: e.time_unix_nanos,
                        span_id: e.span_id.to_bytes().to_vec(),
                        trace_id: e.trace_id.to_bytes().to_vec(),
                        value: Some(exemplar::Value::AsDouble(e.value)),
                    }),
            );
        }
    }
    newest
}

/// An attribute set as comparable bytes: its key-values sorted by key,
/// each in its protobuf encoding (the SDK sorts a point's attributes; our
/// series keep the order they were recorded in).
fn attributes_key<'a>(attrs: impl Iterator<Item = &'a ProtoKeyValue>) -> Vec<u8> {
    use prost::Message as _;
    let mut sorted: Vec<&ProtoKeyValue> = attrs.collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut key = Vec::new();
    for kv in sorted {
        // Encoding into a Vec cannot fail.
        let _ = kv.encode_length_delimited(&mut key);
    }
    key
}

impl PushMetricExporter for RuntimeMetricExporter {
    fn export(
        &self,
        metrics: &ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let started = std::time::Instant::now();
        let mut request = ExportMetricsServiceRequest::from(metrics);
        let recorder = self.recorder.get();
        let until = match recorder {
            Some(r) => attach_exemplars(
                &mut request,
                &r.metrics,
                self.exemplars_sent_until.load(Ordering::Relaxed),
            ),
            None => 0,
        };
        let body = encode_metrics(self.protocol, &request);
        let result = runtime::block_on(&self.handle, async {
            match tokio::time::timeout(self.timeout, self.client.export(body, self.timeout)).await {
                Ok(r) => r,
                Err(_) => Err(ExportError::timeout(self.timeout)),
            }
        });
        if result.is_ok() {
            self.exemplars_sent_until
                .fetch_max(until, Ordering::Relaxed);
        }
        if let Some(r) = recorder {
            record_outcome(
                &r.health,
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
