//! Helpers shared by the integration tests: real OpenTelemetry SDK exporters
//! pointed at the receiver, and hand-built span batches.
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{
    Compression, LogExporter, MetricExporter, Protocol, RetryPolicy, SpanExporter,
    WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use telemetry_init_testing::{OtlpReceiver, Transport};

pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);

/// One way to reach the receiver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub transport: Transport,
    pub gzip: bool,
}

pub(crate) const ALL_ROUTES: [Route; 6] = [
    Route {
        transport: Transport::Grpc,
        gzip: false,
    },
    Route {
        transport: Transport::Grpc,
        gzip: true,
    },
    Route {
        transport: Transport::HttpProtobuf,
        gzip: false,
    },
    Route {
        transport: Transport::HttpProtobuf,
        gzip: true,
    },
    Route {
        transport: Transport::HttpJson,
        gzip: false,
    },
    Route {
        transport: Transport::HttpJson,
        gzip: true,
    },
];

pub(crate) fn resource(service: &str) -> Resource {
    Resource::builder_empty()
        .with_service_name(service.to_owned())
        .with_attribute(KeyValue::new("deployment.environment", "test"))
        .build()
}

fn compression(route: Route) -> Option<Compression> {
    route.gzip.then_some(Compression::Gzip)
}

fn http_protocol(route: Route) -> Protocol {
    match route.transport {
        Transport::HttpJson => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    }
}

/// A span exporter over `route`. Must be called inside a tokio runtime.
pub(crate) fn span_exporter(rx: &OtlpReceiver, route: Route, timeout: Duration) -> SpanExporter {
    span_exporter_with_retry(rx, route, timeout, RetryPolicy::disabled())
}

pub(crate) fn span_exporter_with_retry(
    rx: &OtlpReceiver,
    route: Route,
    timeout: Duration,
    retry: RetryPolicy,
) -> SpanExporter {
    match route.transport {
        Transport::Grpc => {
            let b = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(rx.grpc_endpoint())
                .with_timeout(timeout)
                .with_retry_policy(retry);
            match compression(route) {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
        _ => {
            let b = SpanExporter::builder()
                .with_http()
                .with_protocol(http_protocol(route))
                .with_endpoint(format!("{}/v1/traces", rx.http_endpoint()))
                .with_timeout(timeout)
                .with_retry_policy(retry);
            match compression(route) {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
    }
    .expect("span exporter builds")
}

/// A log exporter over `route`. Must be called inside a tokio runtime.
pub(crate) fn log_exporter(rx: &OtlpReceiver, route: Route) -> LogExporter {
    match route.transport {
        Transport::Grpc => {
            let b = LogExporter::builder()
                .with_tonic()
                .with_endpoint(rx.grpc_endpoint())
                .with_timeout(TIMEOUT)
                .with_retry_policy(RetryPolicy::disabled());
            match compression(route) {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
        _ => {
            let b = LogExporter::builder()
                .with_http()
                .with_protocol(http_protocol(route))
                .with_endpoint(format!("{}/v1/logs", rx.http_endpoint()))
                .with_timeout(TIMEOUT)
                .with_retry_policy(RetryPolicy::disabled());
            match compression(route) {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
    }
    .expect("log exporter builds")
}

/// A metric exporter over `route`. Must be called inside a tokio runtime.
pub(crate) fn metric_exporter(rx: &OtlpReceiver, route: Route) -> MetricExporter {
    match route.transport {
        Transport::Grpc => {
            let b = MetricExporter::builder()
                .with_tonic()
                .with_endpoint(rx.grpc_endpoint())
                .with_timeout(TIMEOUT)
                .with_retry_policy(RetryPolicy::disabled());
            match compression(route) {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
        _ => {
            let b = MetricExporter::builder()
                .with_http()
                .with_protocol(http_protocol(route))
                .with_endpoint(format!("{}/v1/metrics", rx.http_endpoint()))
                .with_timeout(TIMEOUT)
                .with_retry_policy(RetryPolicy::disabled());
            match compression(route) {
                Some(c) => b.with_compression(c).build(),
                None => b.build(),
            }
        }
    }
    .expect("metric exporter builds")
}

/// Deterministic, distinct ids: `trace_id(n)` is `n` in the low bits with a
/// fixed high marker so it is never zero.
pub(crate) fn trace_id(n: u128) -> TraceId {
    TraceId::from_bytes(((0xabcd_u128 << 112) | n).to_be_bytes())
}

pub(crate) fn span_id(n: u64) -> SpanId {
    SpanId::from_bytes(((0x5a_u64 << 56) | n).to_be_bytes())
}

/// A finished span as the SDK hands it to an exporter.
pub(crate) fn span_data(
    trace: u128,
    span: u64,
    parent: Option<u64>,
    name: &str,
    kind: SpanKind,
) -> SpanData {
    let start =
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_micros(span);
    SpanData {
        span_context: SpanContext::new(
            trace_id(trace),
            span_id(span),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: parent.map(span_id).unwrap_or(SpanId::INVALID),
        parent_span_is_remote: false,
        span_kind: kind,
        name: name.to_owned().into(),
        start_time: start,
        end_time: start + Duration::from_millis(5),
        attributes: vec![
            KeyValue::new("test.index", span as i64),
            KeyValue::new("test.name", name.to_owned()),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("telemetry-init-testing-tests")
            .build(),
    }
}

/// Runs an OTLP metric exporter's async export on a tokio runtime from the
/// SDK's `PeriodicReader` thread (which has no runtime of its own).
#[derive(Debug)]
pub(crate) struct InRuntime<E> {
    pub inner: E,
    pub handle: tokio::runtime::Handle,
}

impl<E: opentelemetry_sdk::metrics::exporter::PushMetricExporter>
    opentelemetry_sdk::metrics::exporter::PushMetricExporter for InRuntime<E>
{
    async fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.handle.block_on(self.inner.export(metrics))
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.inner.temporality()
    }
}
