//! The export pipeline: bounded queues in front of exporters that run on a
//! private runtime, off every request thread.

pub(crate) mod batch;
pub(crate) mod exporters;
pub(crate) mod runtime;
mod span_encoder;
mod tls;
mod transport;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::logs::AnyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use tokio::runtime::Handle;

use crate::Error;
use crate::config::{BatchSettings, ExporterSetting, Signal};
use batch::{BatchQueue, Delivered, Export, ExportFn, SignalStats};
use telemetry_init_metrics::PipelineHealth;

/// The `otel.component.type` names of this pipeline, from each signal's protocol.
pub(crate) fn components(
    traces: &ExporterSetting,
    logs: &ExporterSetting,
    metrics: &ExporterSetting,
) -> telemetry_init_metrics::PipelineComponents {
    use crate::config::Protocol;
    use telemetry_init_metrics::PipelineComponents as C;
    let pick = |s: &ExporterSetting, f: fn(C) -> std::borrow::Cow<'static, str>| match s {
        ExporterSetting::Otlp(o) => f(match o.protocol {
            Protocol::Grpc => C::otlp_grpc(),
            Protocol::HttpProtobuf => C::otlp_http(),
            Protocol::HttpJson => C::otlp_http_json(),
        }),
        ExporterSetting::Console => "console_exporter".into(),
        ExporterSetting::Off(_) => f(C::otlp_grpc()),
    };
    C {
        span_exporter: pick(traces, |c| c.span_exporter),
        log_exporter: pick(logs, |c| c.log_exporter),
        metric_exporter: pick(metrics, |c| c.metric_exporter),
        ..C::otlp_grpc()
    }
}

fn export_runtime(handle: Option<&Handle>) -> Result<Handle, Error> {
    handle
        .cloned()
        .ok_or_else(|| Error::InvalidConfig("internal: OTLP export without a runtime".into()))
}

/// Builds the export function for spans, or `None` when traces are off.
pub(crate) fn span_export(
    setting: &ExporterSetting,
    resource: &Resource,
    handle: Option<&Handle>,
) -> Result<Option<ExportFn<SpanData>>, Error> {
    Ok(match setting {
        ExporterSetting::Off(_) => None,
        ExporterSetting::Console => Some(Box::new(|batch: Vec<SpanData>, _| {
            for span in &batch {
                eprintln!("{}", console_span(span));
            }
            Export::Done(Ok(Delivered::default()))
        })),
        ExporterSetting::Otlp(s) => {
            let handle = export_runtime(handle)?;
            let client = Arc::new(exporters::client(s, Signal::Traces, &handle)?);
            let mut body = exporters::SpanBody::new(s.protocol, resource);
            Some(Box::new(move |batch: Vec<SpanData>, timeout: Duration| {
                // Encoded here, on the batch thread; the runtime only sends.
                let body = body.encode(batch);
                let client = Arc::clone(&client);
                Export::Spawn(
                    handle.clone(),
                    Box::pin(async move { client.export(body, timeout).await }),
                )
            }))
        }
    })
}

/// Builds the export function for log records, or `None` when logs are off.
pub(crate) fn log_export(
    setting: &ExporterSetting,
    resource: &Resource,
    handle: Option<&Handle>,
) -> Result<Option<ExportFn<LogItem>>, Error> {
    Ok(match setting {
        ExporterSetting::Off(_) => None,
        ExporterSetting::Console => Some(Box::new(|batch: Vec<LogItem>, _| {
            for (record, _) in &batch {
                eprintln!("{}", console_log(record));
            }
            Export::Done(Ok(Delivered::default()))
        })),
        ExporterSetting::Otlp(s) => {
            let handle = export_runtime(handle)?;
            let client = Arc::new(exporters::client(s, Signal::Logs, &handle)?);
            let protocol = s.protocol;
            let resource = resource.into();
            Some(Box::new(move |batch: Vec<LogItem>, timeout: Duration| {
                let body = exporters::encode_logs(protocol, &resource, &batch);
                drop(batch);
                let client = Arc::clone(&client);
                Export::Spawn(
                    handle.clone(),
                    Box::pin(async move { client.export(body, timeout).await }),
                )
            }))
        }
    })
}

/// A log record with its scope, owned so it can wait in the queue.
pub(crate) type LogItem = (SdkLogRecord, InstrumentationScope);

/// `force_flush` as the SDK's processor traits want it.
fn sdk_flush<T: Send + 'static>(queue: &BatchQueue<T>) -> OTelSdkResult {
    queue
        .flush(Duration::from_secs(30))
        .map_err(OTelSdkError::InternalFailure)
}

/// `shutdown_with_timeout` as the SDK's processor traits want it.
fn sdk_shutdown<T: Send + 'static>(queue: &BatchQueue<T>, timeout: Duration) -> OTelSdkResult {
    queue
        .shutdown(timeout)
        .map_err(|_| OTelSdkError::Timeout(timeout))
}

/// Hands ended, sampled spans to the bounded queue.
#[derive(Debug)]
pub(crate) struct QueueSpanProcessor {
    queue: BatchQueue<SpanData>,
}

impl QueueSpanProcessor {
    pub(crate) fn start(
        settings: BatchSettings,
        stats: Arc<SignalStats>,
        export: ExportFn<SpanData>,
        health: PipelineHealth,
    ) -> Result<Self, Error> {
        Ok(Self {
            queue: BatchQueue::start(Signal::Traces, settings, stats, export, health)?,
        })
    }
}

impl SpanProcessor for QueueSpanProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.queue.push(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        sdk_flush(&self.queue)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        sdk_shutdown(&self.queue, timeout)
    }
}

/// Hands log records to the bounded queue.
#[derive(Debug)]
pub(crate) struct QueueLogProcessor {
    queue: BatchQueue<LogItem>,
}

impl QueueLogProcessor {
    pub(crate) fn start(
        settings: BatchSettings,
        stats: Arc<SignalStats>,
        export: ExportFn<LogItem>,
        health: PipelineHealth,
    ) -> Result<Self, Error> {
        Ok(Self {
            queue: BatchQueue::start(Signal::Logs, settings, stats, export, health)?,
        })
    }
}

impl LogProcessor for QueueLogProcessor {
    fn emit(&self, data: &mut SdkLogRecord, instrumentation: &InstrumentationScope) {
        self.queue.push((data.clone(), instrumentation.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        sdk_flush(&self.queue)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        sdk_shutdown(&self.queue, timeout)
    }
}

fn console_span(span: &SpanData) -> String {
    let mut attrs = serde_json::Map::new();
    for kv in &span.attributes {
        attrs.insert(
            kv.key.to_string(),
            serde_json::Value::String(kv.value.to_string()),
        );
    }
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    serde_json::json!({
        "span": span.name,
        "trace_id": span.span_context.trace_id().to_string(),
        "span_id": span.span_context.span_id().to_string(),
        "parent_span_id": span.parent_span_id.to_string(),
        "kind": format!("{:?}", span.span_kind),
        "status": format!("{:?}", span.status),
        "duration_us": duration.as_micros() as u64,
        "attributes": attrs,
    })
    .to_string()
}

fn console_log(record: &SdkLogRecord) -> String {
    let mut body = String::new();
    if let Some(AnyValue::String(s)) = record.body() {
        body.push_str(s.as_str());
    } else if let Some(b) = record.body() {
        let _ = write!(body, "{b:?}");
    }
    let (trace_id, span_id) = record
        .trace_context()
        .map(|c| (c.trace_id.to_string(), c.span_id.to_string()))
        .unwrap_or_default();
    serde_json::json!({
        "log": body,
        "severity": record.severity_text(),
        "trace_id": trace_id,
        "span_id": span_id,
    })
    .to_string()
}
