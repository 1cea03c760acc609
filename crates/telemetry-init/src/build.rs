//! Construction: the resolved configuration made into providers, exporters,
//! the metrics recorder and the pieces of the tracing layer; nothing global
//! is touched here (see [`crate::telemetry`] for that).

use std::sync::Arc;

use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::config::{Builder, Config, ExporterSetting};
use crate::guard::{Parts, TelemetryGuard};
use crate::logs::BufferedStdout;
use crate::pipeline::{self, QueueLogProcessor, QueueSpanProcessor, runtime::ExportRuntime};
use crate::telemetry::{Directives, LayerParts, TRANSPORT_OFF, Telemetry};
use crate::{Error, TelemetryHandle, metrics_export};

// The builder's last steps live here, beside what they call, so that the
// configuration module does not depend on construction (no module cycle).
impl Builder {
    /// Builds everything these settings describe (exporters, providers,
    /// the metrics recorder, the tracing layer) without installing any of it:
    /// add [`Telemetry::layer`](crate::Telemetry::layer) to your own
    /// subscriber, or use the [scoped mode](crate::telemetry#the-scoped-mode-tests)
    /// in tests. See [`crate::telemetry`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an invalid setting (as
    /// [`resolve`](Self::resolve)), or when a thread or listener cannot be
    /// started.
    ///
    /// ```
    /// # fn main() -> Result<(), telemetry_init::Error> {
    /// let telemetry = telemetry_init::builder()
    ///     .service_name("checkout")
    ///     .env_lookup(|_| None)
    ///     .build()?;
    /// // Nothing is global yet.
    /// assert!(telemetry_init::handle().is_none());
    /// assert_eq!(telemetry.handle().config().service_name, "checkout");
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> Result<Telemetry, Error> {
        let config = self.resolve()?;
        build(config)
    }

    /// Builds and installs telemetry with these settings, as
    /// `self.build()?.install()`; see [`crate::install`].
    pub fn install(self) -> Result<TelemetryGuard, Error> {
        self.build()?.install()
    }
}

pub(crate) fn build(config: Config) -> Result<Telemetry, Error> {
    // Validated before anything starts.
    let stdout_filter = Directives::parse(&config.stdout_filter)?;
    let export_filter = Directives::parse(&format!("{},{TRANSPORT_OFF}", config.export_filter))?;
    let policy = Arc::new(config.redaction.clone());
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
                config.size_limits.max_request_bytes,
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
        use crate::http::red_metrics::names;
        for name in [
            names::HTTP_SERVER_DURATION,
            names::RPC_SERVER_DURATION,
            names::HTTP_CLIENT_DURATION,
        ] {
            metrics_config = metrics_config.buckets_for_prefix(name, buckets.clone());
        }
    }
    for threshold in &config.slo_latency_thresholds {
        metrics_config = metrics_config.slo_threshold(
            crate::http::red_metrics::names::HTTP_SERVER_DURATION,
            *threshold,
        );
    }
    if config.exemplar_filter == crate::config::ExemplarFilter::AlwaysOff {
        metrics_config = metrics_config.trace_context(None);
    }
    if let Some(mp) = &meter_provider {
        use opentelemetry::metrics::MeterProvider as _;
        metrics_config = metrics_config.otel_meter(mp.meter("telemetry-init"));
    }
    let recorder = telemetry_init_metrics::TelemetryRecorder::new(metrics_config)
        .map_err(|e| Error::InvalidConfig(e.to_string()))?;
    metrics::with_local_recorder(&recorder, crate::http::red_metrics::describe);
    let metrics = recorder.handle();
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
    // The one set of pipeline counters: the self-health metrics and the
    // shutdown report both read it.
    let counters = pipeline::counters::PipelineCounters::new(&health);
    let _ = metric_recorder.set(metrics_export::Recorder {
        counters: counters.metrics.clone(),
        metrics: metrics.clone(),
    });

    // Traces: a provider always exists, so trace ids are created (and logs
    // correlated, context propagated) even when nothing is exported.
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
        Arc::clone(&policy),
    )? {
        tracer_builder = tracer_builder.with_span_processor(QueueSpanProcessor::start(
            config.span_batch,
            sizes.span_queue_bytes,
            limits.attribute_value_length,
            counters.traces.clone(),
            export,
        )?);
    }
    let tracer_provider = tracer_builder.build();

    let logger_provider = match pipeline::log_export(
        &config.logs,
        &resource,
        handle.as_ref(),
        sizes.max_request_bytes,
        Arc::clone(&policy),
    )? {
        Some(export) => Some(
            SdkLoggerProvider::builder()
                .with_resource(resource.clone())
                .with_log_processor(QueueLogProcessor::start(
                    config.log_batch,
                    sizes.log_queue_bytes,
                    config.log_limits,
                    counters.logs.clone(),
                    export,
                )?)
                .build(),
        ),
        None => None,
    };

    let (stdout, stdout_guard) = BufferedStdout::start()?;
    let config = Arc::new(config);
    let parts = Parts {
        tracer_provider: tracer_provider.clone(),
        logger_provider: logger_provider.clone(),
        meter_provider: meter_provider.clone(),
        counters,
        runtime,
        stdout: Some(stdout_guard),
        metrics_server,
        drop_timeout: config.shutdown_timeout,
    };
    let handle = TelemetryHandle { config, metrics };
    Ok(Telemetry {
        guard: TelemetryGuard::new(parts, handle),
        recorder,
        layer: LayerParts {
            stdout,
            stdout_filter,
            export_filter,
            policy,
        },
        instance_id,
        tracer_provider,
        logger_provider,
        meter_provider,
    })
}
