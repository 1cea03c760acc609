//! [`Telemetry`]: everything [`Builder::build`](crate::Builder::build) made,
//! not yet installed anywhere; [`install`](Telemetry::install) it, compose
//! its layer with your own, or make it the current thread's default for a
//! test.
//!
//! # Composing with your own layers
//!
//! ```no_run
//! use tracing_subscriber::filter::LevelFilter;
//! use tracing_subscriber::prelude::*;
//!
//! # fn main() -> Result<(), telemetry_init::Error> {
//! let telemetry = telemetry_init::builder().service_name("checkout").build()?;
//! let debug_file = tracing_subscriber::fmt::layer()
//!     .with_ansi(false)
//!     .with_writer(std::sync::Mutex::new(std::fs::File::create("/tmp/debug.log").unwrap()))
//!     .with_filter(LevelFilter::DEBUG);
//! let subscriber = tracing_subscriber::registry()
//!     .with(telemetry.layer())
//!     .with(debug_file);
//! // Sets `subscriber` as the global default, then everything else
//! // `install()` sets (see below).
//! let _guard = telemetry.install_with(subscriber)?;
//! # Ok(()) }
//! ```
//!
//! Our layer carries its own per-layer filters (`RUST_LOG` for stdout,
//! `TELEMETRY_EXPORT_FILTER` for export), so your layers' filters and ours
//! never change what the other receives. Add it to the subscriber once.
//!
//! # What is global
//!
//! [`install`](Telemetry::install) and [`install_with`](Telemetry::install_with)
//! set, for the whole process and once:
//!
//! 1. the redaction policy ([`crate::redact::current`]);
//! 2. the `metrics` facade's global recorder (HTTP/RPC metrics, `/metrics`);
//! 3. the global `tracing` subscriber, and the `log` crate's logger
//!    (forwarded to `tracing`, unless another logger is set);
//! 4. the propagation settings of the layers ([`crate::http::Propagation::set_global`])
//!    and their request-id header ([`crate::http::request_id::header`]);
//! 5. OpenTelemetry's global text-map propagator, tracer provider and (when
//!    metrics are pushed) meter provider (`opentelemetry::global`);
//! 6. [`crate::handle`].
//!
//! [`build`](crate::Builder::build) sets none of them; it starts the export
//! threads, the stdout writer thread and (when configured) the `/metrics`
//! listener, which stop with the guard.
//!
//! # The scoped mode (tests)
//!
//! [`set_default`](Telemetry::set_default) is the counterpart of
//! `tracing::subscriber::set_default`: until its guard is dropped, **on the
//! current thread only**,
//!
//! * `tracing` spans and events go to a subscriber made of this telemetry's
//!   layer (stdout, export, span events, correlation);
//! * the `metrics` facade records into this telemetry's recorder
//!   (`metrics::set_default_local_recorder`), so the server layer's request
//!   metrics land in [`Telemetry::handle`]'s registry.
//!
//! Its own exporters, stdout lines and redaction policy apply to what it
//! receives. It does **not** scope (they stay process-wide, as before):
//! OpenTelemetry's globals (code calling `opentelemetry::global::tracer`
//! gets the process's provider: use [`Telemetry::tracer_provider`]); the
//! propagation settings the layers fall back to (set them on the layers in
//! code, e.g. [`ServerLayer::propagators`](crate::http::ServerLayer::propagators));
//! the redaction policy the HTTP middleware applies to `url.query` and
//! `url.path` while a request runs (the process's, the default list unless
//! something was installed; the export still applies this telemetry's
//! policy); the `log` crate's logger; [`crate::handle`].
//!
//! Other threads do not see a scoped telemetry: run async tests on a
//! current-thread runtime (`#[tokio::test]`'s default), where spawned tasks
//! run on the test's thread; `spawn_blocking` and multi-thread runtime
//! workers are outside the scope.
//!
//! Make the server and client layers inside the scope, one set per
//! telemetry: a layer registers its request metrics (per route and method)
//! with the recorder that is current when it first sees that route, and
//! keeps those handles.
//!
//! ```
//! # fn main() -> Result<(), telemetry_init::Error> {
//! let telemetry = telemetry_init::builder()
//!     .service_name("unit-test")
//!     .stdout_filter("off")
//!     .env_lookup(|_| None)
//!     .build()?;
//! {
//!     let _scope = telemetry.set_default();
//!     let span = tracing::info_span!("work");
//!     let _entered = span.enter();
//!     // Inside the scope, spans have OpenTelemetry ids.
//!     assert!(telemetry_init::current_trace_ids().is_some());
//! }
//! // Outside it, the thread's previous default (here: none) is back.
//! assert!(telemetry_init::current_trace_ids().is_none());
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use telemetry_init_metrics::TelemetryRecorder;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{Config, ExporterSummary, LogFormat};
use crate::guard::{ShutdownReport, TelemetryGuard};
use crate::logs::{
    BufferedStdout, CorrelationLayer, DispatchSlot, JsonFormat, NoSpanFields, text_fields,
};
use crate::redact::Redaction;
use crate::span_activity::WithoutSpanActivity;
use crate::span_events::{EventExport, SpanEvents};
use crate::{Error, TelemetryHandle};

/// Crates whose own logs and spans must never be exported: they are the
/// exporters' transport, and exporting them feeds telemetry back into itself
/// (opentelemetry-rust #2877).
pub(crate) const TRANSPORT_OFF: &str = "hyper=off,hyper_util=off,h2=off,tonic=off,tower=off,reqwest=off,\
                             opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,\
                             rustls=off,hyper_rustls=off,tokio_rustls=off";

/// Directives (`EnvFilter` syntax), validated once, for per-layer filters.
///
/// Why not always `EnvFilter`: it takes a lock on every span enter, exit and
/// close to serve span-scoped directives (`[span]`, `{field=…}`) even when
/// there are none, which is a measurable part of a request's telemetry cost.
/// `Targets` applies static `target=level` directives with the same
/// most-specific-wins rules and no span hooks, so it serves every filter
/// without span-scoped parts; `EnvFilter` serves the rest.
#[derive(Clone, Debug)]
pub(crate) enum Directives {
    Targets(Targets),
    Env(String),
}

impl Directives {
    pub(crate) fn parse(directives: &str) -> Result<Self, Error> {
        let d = directives.trim();
        if !d.is_empty()
            && !d.contains(['[', '{'])
            && let Ok(targets) = d.parse::<Targets>()
        {
            return Ok(Self::Targets(targets));
        }
        EnvFilter::builder()
            .parse(d)
            .map(|_| Self::Env(d.to_owned()))
            .map_err(|e| Error::InvalidConfig(e.to_string()))
    }

    /// Whether the filter follows span activity (enters, exits, closes):
    /// only an `EnvFilter`, for span-scoped directives. A layer behind any
    /// other filter can be wrapped in [`WithoutSpanActivity`].
    fn needs_span_activity(&self) -> bool {
        matches!(self, Self::Env(_))
    }

    fn filter<S>(&self) -> Box<dyn Filter<S> + Send + Sync>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        match self {
            Self::Targets(t) => Box::new(t.clone()),
            // Parsed without error in `parse`: lossy parsing keeps all of it.
            Self::Env(d) => Box::new(EnvFilter::builder().parse_lossy(d)),
        }
    }
}

/// Our layers on a registry of their own, as [`Telemetry::install`] and
/// [`Telemetry::set_default`] use them: the same layers as
/// [`Telemetry::layer`], statically typed, so a request pays no dynamic
/// dispatch or `Vec` walk per span callback for them. (A macro: the
/// subscriber's type is unnameable.)
macro_rules! own_subscriber {
    ($telemetry:expr) => {{
        let t: &Telemetry = &$telemetry;
        let dispatch = DispatchSlot::default();
        tracing_subscriber::registry()
            .with(Telemetry::correlation_layer(dispatch.clone()))
            .with(t.otel_layer())
            .with(t.event_export(&dispatch))
            .with(t.fmt_layer(&dispatch))
    }};
}

/// What [`Telemetry::layer`] is made from.
pub(crate) struct LayerParts {
    pub(crate) stdout: BufferedStdout,
    pub(crate) stdout_filter: Directives,
    pub(crate) export_filter: Directives,
    pub(crate) policy: Arc<Redaction>,
}

/// Everything [`Builder::build`](crate::Builder::build) made: the tracing
/// layer, the providers, the metrics recorder, and what becomes the guard.
/// Nothing of it is installed anywhere yet; see the [module docs](self).
///
/// Dropping it without [`install`](Self::install),
/// [`install_with`](Self::install_with) or [`into_guard`](Self::into_guard)
/// flushes and stops it, as dropping the guard does.
#[must_use = "telemetry stops when this is dropped: install it or keep it"]
pub struct Telemetry {
    pub(crate) guard: TelemetryGuard,
    pub(crate) recorder: TelemetryRecorder,
    pub(crate) layer: LayerParts,
    pub(crate) instance_id: String,
    // Shared with the guard (the providers are handles).
    pub(crate) tracer_provider: SdkTracerProvider,
    pub(crate) logger_provider: Option<SdkLoggerProvider>,
    pub(crate) meter_provider: Option<SdkMeterProvider>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("config", self.config())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    fn config(&self) -> &Config {
        self.guard.handle().config()
    }

    /// The layer to add to your own `tracing_subscriber::registry()`: stdout
    /// lines, span and log record export, span events and log correlation,
    /// each behind its own per-layer filter. Each call makes a new layer
    /// (sharing the exporters and stdout writer); add one per subscriber.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    ///
    /// # fn main() -> Result<(), telemetry_init::Error> {
    /// let telemetry = telemetry_init::builder().env_lookup(|_| None).build()?;
    /// let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    /// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
    /// # Ok(()) }
    /// ```
    pub fn layer<S>(&self) -> Box<dyn Layer<S> + Send + Sync + 'static>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let dispatch = DispatchSlot::default();
        // A `Vec` (every member has a per-layer filter, so the stack counts
        // as filtered and a member's `off` turns nothing off for the
        // others), behind the correlation layer, which must be outside
        // it: a `Vec` does not tell its members their dispatcher.
        let mut layers: Vec<Box<dyn Layer<S> + Send + Sync>> = Vec::with_capacity(3);
        layers.extend(self.otel_layer().map(Layer::boxed));
        layers.extend(self.event_export(&dispatch).map(Layer::boxed));
        layers.push(self.fmt_layer(&dispatch));
        Self::correlation_layer(dispatch).and_then(layers).boxed()
    }

    /// Filtered to its spans: an unfiltered layer is "always interested",
    /// which would switch on every `trace!` callsite of hyper, h2 and tonic
    /// (request path and export runtime) just to be ignored.
    fn correlation_layer<S>(
        dispatch: DispatchSlot,
    ) -> impl Layer<S> + Send + Sync + 'static + use<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // It reads span creation and records only (its filter has no span
        // hooks): enters, exits and closes would be registry lookups for nothing.
        WithoutSpanActivity(CorrelationLayer { dispatch }.with_filter(filter_fn(|meta| {
            meta.is_span() && meta.fields().field("request_id").is_some()
        })))
    }

    fn otel_layer<S>(&self) -> Option<impl Layer<S> + Send + Sync + 'static + use<S>>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        (!self.config().sdk_disabled).then(|| {
            tracing_opentelemetry::layer()
                .with_tracer(self.tracer_provider.tracer("telemetry-init"))
                .with_error_records_to_exceptions(true)
                .with_threads(false)
                .with_location(false)
                .with_target(false)
                .with_level(false)
                .with_tracked_inactivity(false)
                // Events reach the collector as OTLP log records carrying
                // the span's ids, and (at or above the span-events level)
                // as span events through `EventExport`: this layer only
                // sees spans.
                .with_filter(
                    self.layer
                        .export_filter
                        .filter()
                        .and(filter_fn(|meta| meta.is_span())),
                )
        })
    }

    fn event_export<S>(
        &self,
        dispatch: &DispatchSlot,
    ) -> Option<impl Layer<S> + Send + Sync + 'static>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let config = self.config();
        let level = config.span_events_level;
        let span_events = (!config.sdk_disabled && level != LevelFilter::OFF).then(|| SpanEvents {
            dispatch: dispatch.clone(),
            level,
            value_length: config.span_limits.attribute_value_length,
        });
        let logs = self
            .logger_provider
            .as_ref()
            .map(opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new);
        (logs.is_some() || span_events.is_some()).then(|| {
            let layer = EventExport { logs, span_events }
                .with_filter(self.layer.export_filter.filter::<S>());
            // Events only; the filter may need span activity (see `Directives::needs_span_activity`).
            if self.layer.export_filter.needs_span_activity() {
                layer.boxed()
            } else {
                WithoutSpanActivity(layer).boxed()
            }
        })
    }

    fn fmt_layer<S>(&self, dispatch: &DispatchSlot) -> Box<dyn Layer<S> + Send + Sync + 'static>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let lp = &self.layer;
        // The writer uses span creation, records and events only: no span
        // timings or span events are configured.
        let activity = lp.stdout_filter.needs_span_activity();
        let layer = match self.config().log_format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .fmt_fields(NoSpanFields)
                .event_format(JsonFormat::new(
                    &self.config().service_name,
                    Arc::clone(&lp.policy),
                    dispatch.clone(),
                ))
                .with_writer(lp.stdout.clone())
                .with_filter(lp.stdout_filter.filter())
                .boxed(),
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .fmt_fields(text_fields(Arc::clone(&lp.policy)))
                .with_writer(lp.stdout.clone())
                .with_filter(lp.stdout_filter.filter())
                .boxed(),
        };
        if activity {
            layer
        } else {
            WithoutSpanActivity(layer).boxed()
        }
    }

    /// The tracer provider (always present: trace ids exist even when
    /// nothing is exported).
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// The logger provider, when log records are exported.
    pub fn logger_provider(&self) -> Option<&SdkLoggerProvider> {
        self.logger_provider.as_ref()
    }

    /// The meter provider, when metrics are pushed over OTLP.
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }

    /// The `metrics` recorder behind [`TelemetryHandle::metrics`], not
    /// installed: [`install`](Self::install) makes it the global recorder,
    /// [`set_default`](Self::set_default) the thread's.
    pub fn metrics_recorder(&self) -> &TelemetryRecorder {
        &self.recorder
    }

    /// The configuration and the metrics registry.
    pub fn handle(&self) -> &TelemetryHandle {
        self.guard.handle()
    }

    /// Makes this telemetry the current thread's default until the returned
    /// guard is dropped; see [the scoped mode](self#the-scoped-mode-tests)
    /// for what that covers and what it does not.
    ///
    /// ```
    /// # fn main() -> Result<(), telemetry_init::Error> {
    /// let telemetry = telemetry_init::builder().stdout_filter("off").env_lookup(|_| None).build()?;
    /// let scope = telemetry.set_default();
    /// metrics::counter!("jobs.done").increment(1);
    /// drop(scope);
    /// assert_eq!(telemetry.handle().metrics().series_count("jobs.done"), 1);
    /// # Ok(()) }
    /// ```
    pub fn set_default(&self) -> ScopedTelemetry<'_> {
        let subscriber = own_subscriber!(self);
        let tracing = tracing::subscriber::set_default(subscriber);
        let metrics = metrics::set_default_local_recorder(&self.recorder);
        log_effective_config(self.config(), &self.instance_id);
        ScopedTelemetry {
            _tracing: tracing,
            _metrics: metrics,
        }
    }

    /// Installs it: our layer alone as the global `tracing` subscriber, and
    /// every other process-wide setting (see [what is global](self#what-is-global)).
    /// What [`crate::install`] does.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyInstalled`] when a global `tracing` subscriber or
    /// `metrics` recorder exists.
    pub fn install(self) -> Result<TelemetryGuard, Error> {
        let subscriber = own_subscriber!(self);
        self.install_with(subscriber)
    }

    /// Installs `subscriber` (which should include [`layer`](Self::layer))
    /// as the global `tracing` subscriber, and every other process-wide
    /// setting as [`install`](Self::install) does. See the
    /// [module docs](self#composing-with-your-own-layers).
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyInstalled`] when a global `tracing` subscriber or
    /// `metrics` recorder exists.
    pub fn install_with<S>(self, subscriber: S) -> Result<TelemetryGuard, Error>
    where
        S: Subscriber + Send + Sync + 'static,
    {
        let Telemetry {
            guard,
            recorder,
            layer,
            instance_id,
            tracer_provider,
            meter_provider,
            ..
        } = self;
        let config = Arc::clone(&guard.handle().config);
        // First, so every line printed from here on (the start-up line too)
        // uses the configured policy.
        crate::redact::set_current(Redaction::clone(&layer.policy));
        metrics::set_global_recorder(recorder)
            .map_err(|_| Error::AlreadyInstalled("a global metrics recorder"))?;
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| Error::AlreadyInstalled("a global tracing subscriber"))?;
        // Forward `log` records from dependencies that use the `log` crate; an
        // existing logger is not an error worth failing start-up for.
        let _ = tracing_log::LogTracer::init();

        // The layers and `send_traced()` read these on every request (one byte,
        // one atomic load), so layers made before `install()` follow them too.
        let propagators = config.propagator_set();
        crate::http::Propagation::new(propagators, config.trust_incoming_context).set_global();
        crate::http::request_id::set_global(config.request_id_header.clone());

        if !config.sdk_disabled {
            // Ours, not the SDK's: the stock propagator fails 9-12 of the 41 W3C
            // conformance tests (see telemetry-init-propagation). The same set as
            // the layers, so code using the global propagator agrees with them.
            opentelemetry::global::set_text_map_propagator(propagators.text_map_propagator());
            opentelemetry::global::set_tracer_provider(tracer_provider);
            if let Some(mp) = meter_provider {
                opentelemetry::global::set_meter_provider(mp);
            }
        }
        log_effective_config(&config, &instance_id);
        let _ = crate::GLOBAL_HANDLE.set(guard.handle().clone());
        Ok(guard)
    }

    /// The guard alone, installing nothing: for a subscriber you set up
    /// yourself with [`layer`](Self::layer) (and the providers wired where
    /// you want them). Dropping it flushes and stops the exporters.
    pub fn into_guard(self) -> TelemetryGuard {
        self.guard
    }

    /// Flushes and stops everything; see [`TelemetryGuard::shutdown`].
    pub async fn shutdown(self, timeout: std::time::Duration) -> ShutdownReport {
        self.guard.shutdown(timeout).await
    }
}

/// The scope of [`Telemetry::set_default`]: dropping it gives the thread
/// back its previous `tracing` dispatcher and `metrics` recorder.
#[must_use = "the scope ends when this is dropped"]
pub struct ScopedTelemetry<'a> {
    _tracing: tracing::subscriber::DefaultGuard,
    _metrics: metrics::LocalRecorderGuard<'a>,
}

impl fmt::Debug for ScopedTelemetry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedTelemetry").finish_non_exhaustive()
    }
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
        request_id_header = config.request_id_header.as_str(),
        stdout_filter = %config.stdout_filter,
        export_filter = %config.export_filter,
        span_events_level = %config.span_events_level,
        "telemetry installed"
    );
}
