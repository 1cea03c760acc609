//! Wiring the resolved configuration into global state, once.

use std::sync::Arc;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, ExporterSetting, ExporterSummary, LogFormat};
use crate::guard::{Parts, TelemetryGuard};
use crate::logs::{BufferedStdout, CorrelationLayer, JsonFormat, NoSpanFields, text_fields};
use crate::pipeline::{self, QueueLogProcessor, QueueSpanProcessor, runtime::ExportRuntime};
use crate::{Error, TelemetryHandle, metrics_export};

/// Crates whose own logs and spans must never be exported: they are the
/// exporters' transport, and exporting them feeds telemetry back into itself
/// (opentelemetry-rust #2877).
const TRANSPORT_OFF: &str = "hyper=off,hyper_util=off,h2=off,tonic=off,tower=off,reqwest=off,\
                             opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,\
                             rustls=off,hyper_rustls=off,tokio_rustls=off";

/// A per-layer filter for `directives` (`EnvFilter` syntax).
///
/// Why not always `EnvFilter`: it takes a lock on every span enter, exit and
/// close to serve span-scoped directives (`[span]`, `{field=…}`) even when
/// there are none, which is a measurable part of a request's telemetry cost.
/// `Targets` applies static `target=level` directives with the same
/// most-specific-wins rules and no span hooks, so it serves every filter
/// without span-scoped parts; `EnvFilter` serves the rest.
fn level_filter<S>(directives: &str) -> Result<Box<dyn Filter<S> + Send + Sync>, Error>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let d = directives.trim();
    if !d.is_empty()
        && !d.contains(['[', '{'])
        && let Ok(targets) = d.parse::<Targets>()
    {
        return Ok(Box::new(targets));
    }
    EnvFilter::builder()
        .parse(d)
        .map(|f| Box::new(f) as Box<dyn Filter<S> + Send + Sync>)
        .map_err(|e| Error::InvalidConfig(e.to_string()))
}

pub(crate) fn install_config(config: Config) -> Result<TelemetryGuard, Error> {
    // First, so every line printed from here on (the start-up line too) and
    // every record exported uses the configured policy.
    crate::redact::set_current(config.redaction.clone());
    let needs_runtime = [&config.traces, &config.logs, &config.metrics]
        .iter()
        .any(|s| matches!(s, ExporterSetting::Otlp(_)));
    let runtime = needs_runtime.then(ExportRuntime::start).transpose()?;
    let handle = runtime.as_ref().map(ExportRuntime::handle);

    let instance_id = uuid::Uuid::new_v4().to_string();
    let resource = crate::resource::build(&config, &instance_id);

    // The metric exporter counts its outcomes, and reads exemplars, once
    // the recorder exists.
    let metric_recorder = Arc::new(std::sync::OnceLock::new());
    let meter_provider = match (&config.metrics, &handle) {
        (ExporterSetting::Otlp(s), Some(h)) => {
            let exporter = metrics_export::RuntimeMetricExporter::new(
                pipeline::exporters::client(s, crate::config::Signal::Metrics, h)?,
                s.protocol,
                h.clone(),
                s.timeout,
                Arc::clone(&metric_recorder),
            );
            let reader = PeriodicReader::builder(exporter)
                .with_interval(config.metric_export_interval)
                .build();
            Some(
                SdkMeterProvider::builder()
                    .with_resource(resource.clone())
                    .with_reader(reader)
                    .build(),
            )
        }
        _ => None,
    };

    // Metrics: one recorder behind the `metrics` facade serves the scrape
    // and, when OTLP metrics are on, mirrors every instrument to the push.
    let mut metrics_config = telemetry_init_metrics::MetricsConfig::new()
        .constant_label("service.name", config.service_name.clone());
    if let Some(buckets) = &config.duration_buckets {
        use crate::http::slo::names;
        for name in [
            names::HTTP_SERVER_DURATION,
            names::RPC_SERVER_DURATION,
            names::HTTP_CLIENT_DURATION,
        ] {
            metrics_config = metrics_config.buckets_for_prefix(name, buckets.clone());
        }
    }
    for threshold in &config.slo_latency_thresholds {
        metrics_config =
            metrics_config.slo_threshold(crate::http::slo::names::HTTP_SERVER_DURATION, *threshold);
    }
    if let Some(mp) = &meter_provider {
        use opentelemetry::metrics::MeterProvider as _;
        metrics_config = metrics_config.otel_meter(mp.meter("telemetry-init"));
    }
    let metrics =
        telemetry_init_metrics::install_recorder(metrics_config).map_err(|e| match e {
            telemetry_init_metrics::MetricsError::AlreadyInstalled => {
                Error::AlreadyInstalled("a global metrics recorder")
            }
            other => Error::InvalidConfig(other.to_string()),
        })?;
    crate::http::slo::describe();
    let metrics_server =
        match config.prometheus_addr {
            Some(addr) => Some(metrics.serve(addr).map_err(|e| {
                Error::InvalidConfig(format!("cannot serve /metrics on {addr}: {e}"))
            })?),
            None => None,
        };
    let health = metrics.pipeline_health_with(pipeline::components(
        &config.traces,
        &config.logs,
        &config.metrics,
    ));
    let _ = metric_recorder.set(metrics_export::Recorder {
        health: health.clone(),
        metrics: metrics.clone(),
    });

    // Traces: a provider always exists, so trace ids are created (and logs
    // correlated, context propagated) even when nothing is exported.
    let span_stats = Arc::default();
    let limits = config.span_limits;
    let mut tracer_builder = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_sampler(config.sampler.build())
        .with_max_attributes_per_span(limits.attributes)
        .with_max_events_per_span(limits.events)
        .with_max_links_per_span(limits.links)
        .with_max_attributes_per_event(limits.event_attributes)
        .with_max_attributes_per_link(limits.link_attributes);
    let sizes = config.size_limits;
    if let Some(export) = pipeline::span_export(
        &config.traces,
        &resource,
        handle.as_ref(),
        sizes.max_request_bytes,
    )? {
        tracer_builder = tracer_builder.with_span_processor(QueueSpanProcessor::start(
            config.span_batch,
            sizes.span_queue_bytes,
            limits.attribute_value_length,
            Arc::clone(&span_stats),
            export,
            health.clone(),
        )?);
    }
    let tracer_provider = tracer_builder.build();
    let tracer = tracer_provider.tracer("telemetry-init");

    let log_stats = Arc::default();
    let logger_provider = match pipeline::log_export(
        &config.logs,
        &resource,
        handle.as_ref(),
        sizes.max_request_bytes,
    )? {
        Some(export) => Some(
            SdkLoggerProvider::builder()
                .with_resource(resource.clone())
                .with_log_processor(QueueLogProcessor::start(
                    config.log_batch,
                    sizes.log_queue_bytes,
                    config.log_limits,
                    Arc::clone(&log_stats),
                    export,
                    health.clone(),
                )?)
                .build(),
        ),
        None => None,
    };

    let (stdout, stdout_guard) = BufferedStdout::start()?;

    let stdout_filter = level_filter(&config.stdout_filter)?;
    let export_directives = format!("{},{TRANSPORT_OFF}", config.export_filter);

    let fmt_layer = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .fmt_fields(NoSpanFields)
            .event_format(JsonFormat::new(&config.service_name))
            .with_writer(stdout)
            .with_filter(stdout_filter)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .fmt_fields(text_fields())
            .with_writer(stdout)
            .with_filter(stdout_filter)
            .boxed(),
    };
    let otel_layer = (!config.sdk_disabled).then(|| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_error_records_to_exceptions(true)
            .with_threads(false)
            .with_location(false)
            .with_target(false)
            .with_level(false)
            .with_tracked_inactivity(false)
    });
    // Events reach the collector as OTLP log records carrying the span's
    // ids; copying them into span events as well would double the volume
    // and the per-event cost, so the trace layer only sees spans.
    let otel_layer = match otel_layer {
        Some(l) => Some(
            l.with_filter(
                level_filter(&export_directives)?
                    .and(tracing_subscriber::filter::filter_fn(|meta| meta.is_span())),
            ),
        ),
        None => None,
    };
    let log_bridge = match &logger_provider {
        Some(lp) => Some(
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(lp)
                .with_filter(level_filter(&export_directives)?),
        ),
        None => None,
    };

    let subscriber = tracing_subscriber::registry()
        // Filtered to its spans: an unfiltered layer is "always interested",
        // which would switch on every `trace!` callsite of hyper, h2 and
        // tonic (request path and export runtime) just to be ignored.
        .with(
            CorrelationLayer.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && meta.fields().field("request_id").is_some()
            })),
        )
        .with(otel_layer)
        .with(log_bridge)
        .with(fmt_layer);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|_| Error::AlreadyInstalled("a global tracing subscriber"))?;

    // Forward `log` records from dependencies that use the `log` crate; an
    // existing logger is not an error worth failing start-up for.
    let _ = tracing_log::LogTracer::init();

    // The layers and `send_traced()` read these on every request (one byte,
    // one atomic load), so layers made before `install()` follow them too.
    let propagators = config.propagator_set();
    crate::http::Propagation::new(propagators, config.trust_incoming_context).set_global();

    if !config.sdk_disabled {
        // Ours, not the SDK's: the stock propagator fails 9-12 of the 41 W3C
        // conformance tests (see telemetry-init-propagation). The same set as
        // the layers, so code using the global propagator agrees with them.
        opentelemetry::global::set_text_map_propagator(propagators.text_map_propagator());
        opentelemetry::global::set_tracer_provider(tracer_provider.clone());
        if let Some(mp) = &meter_provider {
            opentelemetry::global::set_meter_provider(mp.clone());
        }
    }

    let config = Arc::new(config);
    log_effective_config(&config, &instance_id);

    let parts = Parts {
        tracer_provider,
        logger_provider,
        meter_provider,
        span_stats,
        log_stats,
        runtime,
        stdout: Some(stdout_guard),
        metrics_server,
        drop_timeout: config.shutdown_timeout,
    };
    let handle = TelemetryHandle { config, metrics };
    let _ = crate::GLOBAL_HANDLE.set(handle.clone());
    Ok(TelemetryGuard::new(parts, handle))
}

/// One line that says what is on, where it goes, and why anything is off.
fn log_effective_config(config: &Config, instance_id: &str) {
    tracing::info!(
        target: "telemetry_init",
        service_name = %config.service_name,
        service_instance_id = %instance_id,
        traces = %ExporterSummary(&config.traces),
        logs = %ExporterSummary(&config.logs),
        metrics = %ExporterSummary(&config.metrics),
        sampler = %config.sampler.describe(),
        propagators = %config.propagator_set(),
        trust_incoming_context = config.trust_incoming_context,
        stdout_filter = %config.stdout_filter,
        export_filter = %config.export_filter,
        "telemetry installed"
    );
}
