//! The export pipeline: bounded queues in front of exporters that run on a
//! private runtime, off every request thread.

pub(crate) mod batch;
pub(crate) mod counters;
pub(crate) mod exporters;
pub(crate) mod fit;
mod limits;
mod log_record;
pub(crate) mod outcome;
pub(crate) mod runtime;
mod scrub;
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
use crate::config::{BatchSettings, ExporterSetting, LogLimits, Signal};
use crate::redact::Redaction;
use batch::{BatchQueue, Delivered, Export, ExportFn};
use counters::SignalCounters;

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
/// No export request is larger than `max_request_bytes`.
pub(crate) fn span_export(
    setting: &ExporterSetting,
    resource: &Resource,
    handle: Option<&Handle>,
    max_request_bytes: usize,
    policy: Arc<Redaction>,
) -> Result<Option<ExportFn<SpanData>>, Error> {
    Ok(match setting {
        ExporterSetting::Off(_) => None,
        ExporterSetting::Console => Some(Box::new(move |mut batch: Vec<SpanData>, _| {
            scrub_spans(&policy, &mut batch);
            for span in &batch {
                eprintln!("{}", console_span(span));
            }
            Export::Done(Ok(Delivered::default()))
        })),
        ExporterSetting::Otlp(s) => {
            let handle = export_runtime(handle)?;
            let client = Arc::new(exporters::client(s, Signal::Traces, &handle)?);
            let protocol = s.protocol;
            let resource = resource.clone();
            let mut body = exporters::SpanBody::new(protocol, &resource);
            Some(Box::new(
                move |mut batch: Vec<SpanData>, timeout: Duration| {
                    // Redacted on the batch thread, before encoding.
                    scrub_spans(&policy, &mut batch);
                    let resource = resource.clone();
                    let mut again: Option<exporters::SpanBody> = None;
                    encode_and_send(
                        batch,
                        timeout,
                        max_request_bytes,
                        &mut |run: &[SpanData]| body.encode_run(run),
                        move |run: &[SpanData]| {
                            again
                                .get_or_insert_with(|| {
                                    exporters::SpanBody::new(protocol, &resource)
                                })
                                .encode_run(run)
                        },
                        &client,
                        &handle,
                    )
                },
            ))
        }
    })
}

/// Builds the export function for log records, or `None` when logs are off.
/// No export request is larger than `max_request_bytes`.
pub(crate) fn log_export(
    setting: &ExporterSetting,
    resource: &Resource,
    handle: Option<&Handle>,
    max_request_bytes: usize,
    policy: Arc<Redaction>,
) -> Result<Option<ExportFn<LogItem>>, Error> {
    Ok(match setting {
        ExporterSetting::Off(_) => None,
        ExporterSetting::Console => Some(Box::new(move |mut batch: Vec<LogItem>, _| {
            scrub_logs(&policy, &mut batch);
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
            let resource = Arc::new(resource);
            Some(Box::new(
                move |mut batch: Vec<LogItem>, timeout: Duration| {
                    scrub_logs(&policy, &mut batch);
                    let again = Arc::clone(&resource);
                    encode_and_send(
                        batch,
                        timeout,
                        max_request_bytes,
                        &mut |run: &[LogItem]| exporters::encode_logs(protocol, &resource, run),
                        move |run: &[LogItem]| exporters::encode_logs(protocol, &again, run),
                        &client,
                        &handle,
                    )
                },
            ))
        }
    })
}

/// One OTLP export of a batch: encoded here, on the batch thread, in
/// requests of at most `max_request_bytes` (`encode` may reuse its
/// buffers); sent on the export runtime, which re-encodes (`reencode`) only
/// the halves of a request the collector still refused as too large.
fn encode_and_send<T, R>(
    batch: Vec<T>,
    timeout: Duration,
    max_request_bytes: usize,
    encode: &mut impl FnMut(&[T]) -> bytes::Bytes,
    mut reencode: R,
    client: &Arc<exporters::OtlpClient>,
    handle: &Handle,
) -> Export
where
    T: Send + Sync + 'static,
    R: FnMut(&[T]) -> bytes::Bytes + Send + 'static,
{
    let (runs, too_large) = fit::fit_runs(&batch, max_request_bytes, encode);
    let client = Arc::clone(client);
    let started = std::time::Instant::now();
    Export::Spawn(
        handle.clone(),
        Box::pin(async move {
            fit::send_runs(runs, too_large, |run, ready| {
                let body = ready.unwrap_or_else(|| reencode(&batch[run]));
                let budget = timeout.saturating_sub(started.elapsed());
                let client = Arc::clone(&client);
                async move { client.export(body, budget).await }
            })
            .await
        }),
    )
}

/// The redaction policy applied on the batch thread, off the request path.
fn scrub_spans(policy: &Redaction, batch: &mut [SpanData]) {
    for span in batch {
        scrub::scrub_span(policy, span);
    }
}

fn scrub_logs(policy: &Redaction, batch: &mut [LogItem]) {
    for (record, _) in batch {
        scrub::scrub_log(policy, record);
    }
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

/// Hands ended, sampled spans to the bounded queue, with the attribute
/// value length limit applied.
#[derive(Debug)]
pub(crate) struct QueueSpanProcessor {
    queue: BatchQueue<SpanData>,
    value_length: Option<usize>,
}

impl QueueSpanProcessor {
    pub(crate) fn start(
        settings: BatchSettings,
        max_bytes: usize,
        value_length: Option<usize>,
        counters: SignalCounters,
        export: ExportFn<SpanData>,
    ) -> Result<Self, Error> {
        Ok(Self {
            queue: BatchQueue::start(settings, max_bytes, counters, export)?,
            value_length,
        })
    }
}

impl SpanProcessor for QueueSpanProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, mut span: SpanData) {
        if span.span_context.is_sampled() {
            let size = limits::limit_span(&mut span, self.value_length);
            self.queue.push(span, size);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        sdk_flush(&self.queue)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        sdk_shutdown(&self.queue, timeout)
    }
}

/// Hands log records to the bounded queue, with the log record limits
/// applied.
#[derive(Debug)]
pub(crate) struct QueueLogProcessor {
    queue: BatchQueue<LogItem>,
    limits: LogLimits,
    minter: opentelemetry_sdk::logs::SdkLogger,
}

impl QueueLogProcessor {
    pub(crate) fn start(
        settings: BatchSettings,
        max_bytes: usize,
        log_limits: LogLimits,
        counters: SignalCounters,
        export: ExportFn<LogItem>,
    ) -> Result<Self, Error> {
        Ok(Self {
            queue: BatchQueue::start(settings, max_bytes, counters, export)?,
            limits: log_limits,
            minter: log_record::minter("telemetry-init.limits"),
        })
    }
}

impl LogProcessor for QueueLogProcessor {
    fn emit(&self, data: &mut SdkLogRecord, instrumentation: &InstrumentationScope) {
        // Ours is the provider's only processor: `limit_log` takes the record.
        let (record, size) = limits::limit_log(data, &self.limits, &self.minter);
        let size = size + instrumentation.name().len();
        self.queue.push((record, instrumentation.clone()), size);
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
