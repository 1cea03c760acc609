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
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar as ProtoExemplar, ExponentialHistogram, Gauge, Histogram, Metric,
    ResourceMetrics as ProtoResourceMetrics, ScopeMetrics, Sum, Summary, exemplar, metric,
};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use tokio::runtime::Handle;

use crate::config::Protocol;
use crate::pipeline::batch::ExportError;
use crate::pipeline::counters::SignalCounters;
use crate::pipeline::exporters::{OtlpClient, encode_metrics};
use crate::pipeline::{fit, runtime};

/// Sends metrics with the same OTLP client, retry policy and failure
/// accounting as spans and logs, driven from the `PeriodicReader`'s plain
/// thread with a bounded wait.
#[derive(Debug)]
pub(crate) struct RuntimeMetricExporter {
    client: OtlpClient,
    protocol: Protocol,
    handle: Handle,
    timeout: Duration,
    max_request_bytes: usize,
    recorder: RecorderSlot,
    /// Exemplars recorded at or before this time (ns since the epoch) went
    /// out with a delivered push.
    exemplars_sent_until: AtomicU64,
}

/// What the exporter needs from the metrics recorder.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Where export outcomes are counted: the metric data points' part of
    /// the pipeline's one set of counters.
    pub(crate) counters: SignalCounters,
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
        max_request_bytes: usize,
        recorder: RecorderSlot,
    ) -> Self {
        Self {
            client,
            protocol,
            handle,
            timeout,
            max_request_bytes,
            recorder,
            exemplars_sent_until: AtomicU64::new(0),
        }
    }
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

/// One data point of a request: resource, scope, metric and point index.
#[derive(Debug, Clone, Copy)]
struct PointRef {
    resource: usize,
    scope: usize,
    metric: usize,
    point: usize,
}

fn point_count(data: Option<&metric::Data>) -> usize {
    match data {
        Some(metric::Data::Gauge(d)) => d.data_points.len(),
        Some(metric::Data::Sum(d)) => d.data_points.len(),
        Some(metric::Data::Histogram(d)) => d.data_points.len(),
        Some(metric::Data::ExponentialHistogram(d)) => d.data_points.len(),
        Some(metric::Data::Summary(d)) => d.data_points.len(),
        None => 0,
    }
}

/// Every data point of `request`, in order: the items a request is cut by.
fn point_refs(request: &ExportMetricsServiceRequest) -> Vec<PointRef> {
    let mut out = Vec::new();
    for (resource, rm) in request.resource_metrics.iter().enumerate() {
        for (scope, sm) in rm.scope_metrics.iter().enumerate() {
            for (metric, m) in sm.metrics.iter().enumerate() {
                out.extend((0..point_count(m.data.as_ref())).map(|point| PointRef {
                    resource,
                    scope,
                    metric,
                    point,
                }));
            }
        }
    }
    out
}

/// `m` with no data points (same kind, temporality and monotonicity).
fn empty_like(m: &Metric) -> Metric {
    let data = m.data.as_ref().map(|d| match d {
        metric::Data::Gauge(_) => metric::Data::Gauge(Gauge {
            data_points: Vec::new(),
        }),
        metric::Data::Sum(d) => metric::Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: d.aggregation_temporality,
            is_monotonic: d.is_monotonic,
        }),
        metric::Data::Histogram(d) => metric::Data::Histogram(Histogram {
            data_points: Vec::new(),
            aggregation_temporality: d.aggregation_temporality,
        }),
        metric::Data::ExponentialHistogram(d) => {
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: Vec::new(),
                aggregation_temporality: d.aggregation_temporality,
            })
        }
        metric::Data::Summary(_) => metric::Data::Summary(Summary {
            data_points: Vec::new(),
        }),
    });
    Metric {
        name: m.name.clone(),
        description: m.description.clone(),
        unit: m.unit.clone(),
        metadata: m.metadata.clone(),
        data,
    }
}

/// Copies point `i` of `from` into `to` (both of the same kind).
fn push_point(to: &mut Metric, from: &Metric, i: usize) {
    match (to.data.as_mut(), from.data.as_ref()) {
        (Some(metric::Data::Gauge(t)), Some(metric::Data::Gauge(f))) => {
            t.data_points.extend(f.data_points.get(i).cloned())
        }
        (Some(metric::Data::Sum(t)), Some(metric::Data::Sum(f))) => {
            t.data_points.extend(f.data_points.get(i).cloned())
        }
        (Some(metric::Data::Histogram(t)), Some(metric::Data::Histogram(f))) => {
            t.data_points.extend(f.data_points.get(i).cloned())
        }
        (
            Some(metric::Data::ExponentialHistogram(t)),
            Some(metric::Data::ExponentialHistogram(f)),
        ) => t.data_points.extend(f.data_points.get(i).cloned()),
        (Some(metric::Data::Summary(t)), Some(metric::Data::Summary(f))) => {
            t.data_points.extend(f.data_points.get(i).cloned())
        }
        _ => {}
    }
}

/// The request holding only the points of `run` (a consecutive run of
/// [`point_refs`]), under their own resource, scope and metric headers.
fn subset(request: &ExportMetricsServiceRequest, run: &[PointRef]) -> ExportMetricsServiceRequest {
    let mut out = ExportMetricsServiceRequest::default();
    let mut last: Option<PointRef> = None;
    for p in run {
        let rm = &request.resource_metrics[p.resource];
        let sm = &rm.scope_metrics[p.scope];
        let m = &sm.metrics[p.metric];
        let same_resource = last.is_some_and(|l| l.resource == p.resource);
        let same_scope = same_resource && last.is_some_and(|l| l.scope == p.scope);
        let same_metric = same_scope && last.is_some_and(|l| l.metric == p.metric);
        if !same_resource {
            out.resource_metrics.push(ProtoResourceMetrics {
                resource: rm.resource.clone(),
                scope_metrics: Vec::new(),
                schema_url: rm.schema_url.clone(),
            });
        }
        let Some(out_rm) = out.resource_metrics.last_mut() else {
            continue;
        };
        if !same_scope {
            out_rm.scope_metrics.push(ScopeMetrics {
                scope: sm.scope.clone(),
                metrics: Vec::new(),
                schema_url: sm.schema_url.clone(),
            });
        }
        let Some(out_sm) = out_rm.scope_metrics.last_mut() else {
            continue;
        };
        if !same_metric {
            out_sm.metrics.push(empty_like(m));
        }
        if let Some(out_m) = out_sm.metrics.last_mut() {
            push_point(out_m, m, p.point);
        }
        last = Some(*p);
    }
    out
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
        // Cut into requests that fit the size limit, by data point, and
        // cut again if the collector still refuses one as too large: the
        // same fitting, retry and accounting as spans and logs.
        let points = point_refs(&request);
        let protocol = self.protocol;
        let encode = |run: &[PointRef]| {
            if run.len() == points.len() {
                encode_metrics(protocol, &request)
            } else {
                encode_metrics(protocol, &subset(&request, run))
            }
        };
        let (runs, too_large) = fit::fit_runs(
            &points,
            self.max_request_bytes,
            &mut |run: &[PointRef]| encode(run),
        );
        let result = runtime::block_on(&self.handle, async {
            let sent = fit::send_runs(runs, too_large, |run, ready| {
                let body = ready.unwrap_or_else(|| encode(&points[run]));
                let budget = self.timeout.saturating_sub(started.elapsed());
                self.client.export(body, budget)
            });
            match tokio::time::timeout(self.timeout, sent).await {
                Ok(r) => r,
                Err(_) => Err(ExportError::timeout(self.timeout)),
            }
        });
        if result.is_ok() {
            self.exemplars_sent_until
                .fetch_max(until, Ordering::Relaxed);
        }
        if let Some(r) = recorder {
            r.counters.finished(points.len() as u64, started, &result);
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{HistogramDataPoint, NumberDataPoint};

    fn number(v: i64) -> NumberDataPoint {
        NumberDataPoint {
            value: Some(
                opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(v),
            ),
            ..Default::default()
        }
    }

    fn request() -> ExportMetricsServiceRequest {
        let sum = Metric {
            name: "jobs".into(),
            unit: "{job}".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![number(1), number(2), number(3)],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let histogram = Metric {
            name: "latency".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 4,
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        };
        let scope = |metrics| ScopeMetrics {
            metrics,
            ..Default::default()
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![
                ProtoResourceMetrics {
                    scope_metrics: vec![scope(vec![sum, histogram.clone()])],
                    ..Default::default()
                },
                ProtoResourceMetrics {
                    scope_metrics: vec![scope(vec![histogram])],
                    schema_url: "second".into(),
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn a_request_cut_by_data_point_keeps_every_point_once_under_its_headers() {
        let req = request();
        let points = point_refs(&req);
        assert_eq!(points.len(), 5);
        // All points: the request itself.
        assert_eq!(subset(&req, &points), req);
        // Any cut: each point once, with its metric's kind and settings.
        for cut in 1..points.len() {
            let (left, right) = (subset(&req, &points[..cut]), subset(&req, &points[cut..]));
            assert_eq!(point_refs(&left).len() + point_refs(&right).len(), 5);
            for part in [&left, &right] {
                for rm in &part.resource_metrics {
                    for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                        match &m.data {
                            Some(metric::Data::Sum(s)) => {
                                assert!(s.is_monotonic && s.aggregation_temporality == 2);
                                assert_eq!(m.name, "jobs");
                            }
                            Some(metric::Data::Histogram(h)) => {
                                assert_eq!(h.data_points[0].count, 4);
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                        assert!(point_count(m.data.as_ref()) > 0, "no empty metric");
                    }
                }
            }
        }
        // The last point alone: under the second resource.
        let last = subset(&req, &points[4..]);
        assert_eq!(last.resource_metrics.len(), 1);
        assert_eq!(last.resource_metrics[0].schema_url, "second");
    }

    #[test]
    fn attribute_sets_compare_in_any_order() {
        let a = ProtoKeyValue::from(&opentelemetry::KeyValue::new("a", "1"));
        let b = ProtoKeyValue::from(&opentelemetry::KeyValue::new("b", 2));
        assert_eq!(
            attributes_key([&a, &b].into_iter()),
            attributes_key([&b, &a].into_iter())
        );
        assert_ne!(
            attributes_key([&a].into_iter()),
            attributes_key([&b].into_iter())
        );
    }
}
