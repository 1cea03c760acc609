//! Configuration: the builder for code, the environment for operators.
//!
//! **Precedence:** an environment variable always wins over the same setting
//! made in code, and code wins over the built-in default. Operators can
//! therefore change any deployed service's telemetry without a rebuild, and
//! the OTLP exporters (which read `OTEL_EXPORTER_OTLP_*` themselves) can
//! never disagree with what the start-up line reports.

pub(crate) mod env;
mod otlp;
mod sampler;
pub mod tls;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use otlp::{Compression, OtlpSettings, Protocol, Signal};
pub use sampler::SamplerSetting;
pub use tls::TlsSettings;

use crate::Error;
use env::{Env, parse_name_list};
use otlp::OtlpDefaults;

/// Where one signal goes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExporterSetting {
    /// Exported over OTLP.
    Otlp(OtlpSettings),
    /// Printed to stderr (`OTEL_*_EXPORTER=console`), for local debugging.
    Console,
    /// Not exported, with the reason shown in the start-up line.
    Off(String),
}

impl ExporterSetting {
    /// Whether anything is exported for this signal.
    pub fn is_on(&self) -> bool {
        !matches!(self, ExporterSetting::Off(_))
    }
}

/// A context propagation format named in `OTEL_PROPAGATORS`.
///
/// `b3`, `b3multi` and `jaeger` are refused at start-up with the reason (no
/// maintained implementation for `opentelemetry` 0.33), never ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagator {
    /// W3C Trace Context (`traceparent`, `tracestate`).
    TraceContext,
    /// W3C Baggage (`baggage`).
    Baggage,
}

/// Batch processor settings (`OTEL_BSP_*` for spans, `OTEL_BLRP_*` for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Most items waiting for export; beyond it new items are dropped and counted.
    pub max_queue_size: usize,
    /// Most items in one export request.
    pub max_export_batch_size: usize,
    /// Longest wait before a partial batch is sent.
    pub schedule_delay: Duration,
    /// Longest time one export may take, retries included.
    pub export_timeout: Duration,
}

impl BatchSettings {
    const SPANS: Self = Self {
        max_queue_size: 2048,
        max_export_batch_size: 512,
        schedule_delay: Duration::from_millis(5000),
        export_timeout: Duration::from_millis(30000),
    };
    const LOGS: Self = Self {
        max_queue_size: 2048,
        max_export_batch_size: 512,
        schedule_delay: Duration::from_millis(1000),
        export_timeout: Duration::from_millis(30000),
    };
}

/// Span limits (`OTEL_SPAN_*_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`,
/// `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`, `OTEL_ATTRIBUTE_*_LIMIT`), as the
/// OpenTelemetry SDK specification defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpanLimits {
    /// Most attributes per span.
    pub attributes: u32,
    /// Most events per span.
    pub events: u32,
    /// Most links per span.
    pub links: u32,
    /// Most attributes per span event.
    pub event_attributes: u32,
    /// Most attributes per span link.
    pub link_attributes: u32,
    /// Longest string attribute value, in characters (each element of a
    /// string array on its own); `None`: no limit beyond the built-in
    /// bounds on request values.
    pub attribute_value_length: Option<usize>,
}

/// Log record limits (`OTEL_LOGRECORD_ATTRIBUTE_*_LIMIT`, falling back to
/// `OTEL_ATTRIBUTE_*_LIMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLimits {
    /// Most attributes per log record.
    pub attributes: u32,
    /// Longest string attribute value, in characters (strings nested in
    /// arrays and maps on their own); `None`: no limit.
    pub attribute_value_length: Option<usize>,
}

/// Limits on the size of what is queued and exported
/// (`TELEMETRY_EXPORT_MAX_REQUEST_BYTES`, `TELEMETRY_BSP_MAX_QUEUE_BYTES`,
/// `TELEMETRY_BLRP_MAX_QUEUE_BYTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SizeLimits {
    /// Largest export request, in bytes (default 4 MiB, the OpenTelemetry
    /// Collector's and Alloy's default receive limit).
    pub max_request_bytes: usize,
    /// Most bytes of spans waiting in the queue (an estimate of their
    /// encoded size; default 64 MiB).
    pub span_queue_bytes: usize,
    /// Most bytes of log records waiting in the queue (default 64 MiB).
    pub log_queue_bytes: usize,
}

impl SizeLimits {
    /// The defaults.
    pub const DEFAULT: Self = Self {
        max_request_bytes: 4 * 1024 * 1024,
        span_queue_bytes: 64 * 1024 * 1024,
        log_queue_bytes: 64 * 1024 * 1024,
    };
}

/// The fully resolved configuration `install()` acts on.
///
/// Build it with [`Builder::resolve`] to inspect what would be installed.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// `OTEL_SDK_DISABLED=true`: logs still go to stdout, nothing is exported.
    pub sdk_disabled: bool,
    /// `service.name`.
    pub service_name: String,
    /// `service.version`, if known.
    pub service_version: Option<String>,
    /// `deployment.environment.name`, if known.
    pub environment: Option<String>,
    /// Extra resource attributes (code first, then `OTEL_RESOURCE_ATTRIBUTES`).
    pub resource_attributes: Vec<(String, String)>,
    /// Span export.
    pub traces: ExporterSetting,
    /// Log record export.
    pub logs: ExporterSetting,
    /// Metric push.
    pub metrics: ExporterSetting,
    /// The trace sampler.
    pub sampler: SamplerSetting,
    /// The propagation formats, in order.
    pub propagators: Vec<Propagator>,
    /// `TELEMETRY_TRUST_INCOMING_CONTEXT`: whether servers continue the
    /// caller's trace and read its baggage (`true`), or start a new trace with
    /// a link to the caller's context and ignore its baggage (`false`).
    pub trust_incoming_context: bool,
    /// Span batching.
    pub span_batch: BatchSettings,
    /// Log record batching.
    pub log_batch: BatchSettings,
    /// Span limits.
    pub span_limits: SpanLimits,
    /// Log record limits.
    pub log_limits: LogLimits,
    /// Queue and export request size limits.
    pub size_limits: SizeLimits,
    /// `OTEL_METRIC_EXPORT_INTERVAL`.
    pub metric_export_interval: Duration,
    /// `RUST_LOG`: what is printed on stdout.
    pub stdout_filter: String,
    /// `TELEMETRY_EXPORT_FILTER`: what is exported as spans and log records.
    pub export_filter: String,
    /// `TELEMETRY_PROMETHEUS_ADDR`: an optional standalone `/metrics` listener.
    pub prometheus_addr: Option<SocketAddr>,
    /// `TELEMETRY_SHUTDOWN_TIMEOUT`: what `Drop` of the guard waits at most.
    pub shutdown_timeout: Duration,
    /// Latency SLO thresholds (seconds) that must be bucket boundaries of
    /// `http.server.request.duration`.
    pub slo_latency_thresholds: Vec<f64>,
    /// Bucket boundaries (seconds) of the request-duration histograms, when
    /// not the OpenTelemetry HTTP advice.
    pub duration_buckets: Option<Vec<f64>>,
    /// `OTEL_METRICS_EXEMPLAR_FILTER`: which histogram measurements keep an
    /// exemplar.
    pub exemplar_filter: ExemplarFilter,
    /// Whether stdout gets JSON lines (`TELEMETRY_LOG_FORMAT=json`, the default)
    /// or human-readable text (`text`).
    pub log_format: LogFormat,
    /// The redaction policy: the default keys, then the builder's
    /// additions and removals, then `TELEMETRY_REDACT_KEYS`.
    pub redaction: crate::redact::Redaction,
    /// `TELEMETRY_SPAN_EVENTS_LEVEL`: events at or above this level inside
    /// an exported span are also recorded as span events (`exception`
    /// events when they carry an error value); `OFF` turns it off.
    pub span_events_level: tracing::level_filters::LevelFilter,
    /// `TELEMETRY_REQUEST_ID_HEADER`: the header the layers read the request
    /// id from, echo it on responses under and forward it under on outgoing
    /// calls (see [`crate::http::request_id`]).
    pub request_id_header: http::HeaderName,
}

impl Config {
    /// The propagation formats as the set the layers use.
    ///
    /// ```
    /// use telemetry_init::http::Propagators;
    ///
    /// let config = telemetry_init::builder().env_lookup(|_| None).resolve().unwrap();
    /// assert_eq!(config.propagator_set(), Propagators::W3C);
    /// ```
    pub fn propagator_set(&self) -> telemetry_init_propagation::Propagators {
        use telemetry_init_propagation::Propagators;
        self.propagators.iter().fold(Propagators::NONE, |set, p| {
            set | match p {
                Propagator::TraceContext => Propagators::TRACE_CONTEXT,
                Propagator::Baggage => Propagators::BAGGAGE,
            }
        })
    }
}

/// Which histogram measurements keep an exemplar
/// (`OTEL_METRICS_EXEMPLAR_FILTER`).
///
/// ```
/// use telemetry_init::config::ExemplarFilter;
///
/// let config = telemetry_init::builder()
///     .env_lookup(|k| (k == "OTEL_METRICS_EXEMPLAR_FILTER").then(|| "always_off".into()))
///     .resolve()
///     .unwrap();
/// assert_eq!(config.exemplar_filter, ExemplarFilter::AlwaysOff);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExemplarFilter {
    /// `trace_based` (the default): measurements recorded inside a sampled
    /// span, with its trace and span id, on the scrape and the OTLP push.
    #[default]
    TraceBased,
    /// `always_off`: no exemplars, and no trace lookup on the request path.
    AlwaysOff,
}

/// The stdout log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// tracing-subscriber's human-readable format.
    Text,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers may carry credentials: Debug never prints their values.
        f.debug_struct("Config")
            .field("service_name", &self.service_name)
            .field("sdk_disabled", &self.sdk_disabled)
            .field("traces", &ExporterSummary(&self.traces))
            .field("logs", &ExporterSummary(&self.logs))
            .field("metrics", &ExporterSummary(&self.metrics))
            .field("sampler", &self.sampler)
            .field("propagators", &self.propagators)
            .field("trust_incoming_context", &self.trust_incoming_context)
            .field("request_id_header", &self.request_id_header)
            .finish_non_exhaustive()
    }
}

/// One signal's exporter, described without header values.
pub(crate) struct ExporterSummary<'a>(pub(crate) &'a ExporterSetting);

impl fmt::Debug for ExporterSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ExporterSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ExporterSetting::Otlp(s) => {
                // userinfo in the endpoint is a credential: never printed.
                let endpoint = crate::redact::current().redact_url(&s.endpoint);
                write!(f, "otlp {} {}", s.protocol.as_str(), endpoint)
            }
            ExporterSetting::Console => f.write_str("console"),
            ExporterSetting::Off(why) => write!(f, "off ({why})"),
        }
    }
}

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Code configuration for [`install`](crate::install); start from
/// [`builder()`](crate::builder).
///
/// Every setting here is a default that the matching environment variable
/// overrides (see the [module docs](self)).
///
/// ```no_run
/// # fn main() -> Result<(), telemetry_init::Error> {
/// let _telemetry = telemetry_init::builder()
///     .service_name("checkout")
///     .service_version(env!("CARGO_PKG_VERSION"))
///     .resource_attribute("team", "payments")
///     .install()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Builder {
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) resource_attributes: Vec<(String, String)>,
    pub(crate) otlp: OtlpDefaults,
    pub(crate) stdout_filter: Option<String>,
    pub(crate) export_filter: Option<String>,
    pub(crate) sampler: Option<SamplerSetting>,
    pub(crate) span_batch: Option<BatchSettings>,
    pub(crate) log_batch: Option<BatchSettings>,
    pub(crate) prometheus_addr: Option<SocketAddr>,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) disabled_signals: Vec<Signal>,
    pub(crate) log_format: Option<LogFormat>,
    pub(crate) trust_incoming_context: Option<bool>,
    pub(crate) lookup: Option<Lookup>,
    pub(crate) slo_latency_thresholds: Vec<f64>,
    pub(crate) duration_buckets: Option<Vec<f64>>,
    pub(crate) redact_edits: Vec<(bool, String)>,
    pub(crate) span_events_level: Option<tracing::level_filters::LevelFilter>,
    pub(crate) request_id_header: Option<String>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// `service.name` (overridden by `OTEL_SERVICE_NAME`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// `service.version`, e.g. `env!("CARGO_PKG_VERSION")`.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// `deployment.environment.name`, e.g. `production`.
    pub fn environment(mut self, env: impl Into<String>) -> Self {
        self.environment = Some(env.into());
        self
    }

    /// Adds a resource attribute (`OTEL_RESOURCE_ATTRIBUTES` wins on conflict).
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resource_attributes.push((key.into(), value.into()));
        self
    }

    /// The OTLP base endpoint for all signals (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.otlp.endpoint = Some(endpoint.into());
        self
    }

    /// The OTLP protocol for all signals (`OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub fn otlp_protocol(mut self, protocol: Protocol) -> Self {
        self.otlp.protocol = Some(protocol);
        self
    }

    /// Adds an OTLP request header (`OTEL_EXPORTER_OTLP_HEADERS`).
    pub fn otlp_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.otlp.headers.push((key.into(), value.into()));
        self
    }

    /// Trusts only the CA certificates in this PEM file (instead of the
    /// system's roots) for `https://` OTLP endpoints
    /// (`OTEL_EXPORTER_OTLP_CERTIFICATE` and its per-signal variants win).
    ///
    /// ```
    /// let err = telemetry_init::builder()
    ///     .otlp_endpoint("https://alloy.observability.svc:4317")
    ///     .otlp_certificate("/etc/otel/missing-ca.pem")
    ///     .env_lookup(|_| None)
    ///     .resolve()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("/etc/otel/missing-ca.pem"));
    /// ```
    pub fn otlp_certificate(mut self, ca_pem: impl Into<std::path::PathBuf>) -> Self {
        self.otlp.tls.ca = Some(ca_pem.into());
        self
    }

    /// Presents this client certificate (PEM chain) and private key (PEM)
    /// to `https://` OTLP endpoints that ask for one, i.e. mutual TLS
    /// (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` / `_CLIENT_KEY` win).
    pub fn otlp_client_identity(
        mut self,
        cert_pem: impl Into<std::path::PathBuf>,
        key_pem: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.otlp.tls.client_cert = Some(cert_pem.into());
        self.otlp.tls.client_key = Some(key_pem.into());
        self
    }

    /// For a gRPC endpoint given without a scheme (`collector:4317`): `true`
    /// connects in plain text, `false` (the default) with TLS
    /// (`OTEL_EXPORTER_OTLP_INSECURE` wins). An endpoint's explicit
    /// `http://` or `https://` always decides.
    pub fn otlp_insecure(mut self, insecure: bool) -> Self {
        self.otlp.insecure = Some(insecure);
        self
    }

    /// The stdout filter in `EnvFilter` syntax (`RUST_LOG` wins).
    pub fn stdout_filter(mut self, directives: impl Into<String>) -> Self {
        self.stdout_filter = Some(directives.into());
        self
    }

    /// The export filter in `EnvFilter` syntax (`TELEMETRY_EXPORT_FILTER` wins).
    pub fn export_filter(mut self, directives: impl Into<String>) -> Self {
        self.export_filter = Some(directives.into());
        self
    }

    /// The trace sampler (`OTEL_TRACES_SAMPLER` wins).
    pub fn sampler(mut self, sampler: SamplerSetting) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Span batching (`OTEL_BSP_*` win, field by field).
    pub fn span_batch(mut self, settings: BatchSettings) -> Self {
        self.span_batch = Some(settings);
        self
    }

    /// Log record batching (`OTEL_BLRP_*` win, field by field).
    pub fn log_batch(mut self, settings: BatchSettings) -> Self {
        self.log_batch = Some(settings);
        self
    }

    /// Serves `/metrics` on its own listener (`TELEMETRY_PROMETHEUS_ADDR` wins).
    pub fn prometheus_addr(mut self, addr: SocketAddr) -> Self {
        self.prometheus_addr = Some(addr);
        self
    }

    /// How long dropping the guard may wait for the final flush (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Turns one signal's export off (as `OTEL_{SIGNAL}_EXPORTER=none` does).
    pub fn disable(mut self, signal: Signal) -> Self {
        self.disabled_signals.push(signal);
        self
    }

    /// The stdout line format (`TELEMETRY_LOG_FORMAT` wins).
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.log_format = Some(format);
        self
    }

    /// Whether servers continue the caller's trace (default `true`;
    /// `TELEMETRY_TRUST_INCOMING_CONTEXT` wins). `false` is for public edges:
    /// every request starts a new trace, linked to the caller's context, and
    /// incoming baggage is ignored. One layer can differ with
    /// [`ServerLayer::trust_incoming_context`](crate::http::ServerLayer::trust_incoming_context).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), telemetry_init::Error> {
    /// let _telemetry = telemetry_init::builder()
    ///     .trust_incoming_context(false)
    ///     .install()?;
    /// # Ok(()) }
    /// ```
    pub fn trust_incoming_context(mut self, trust: bool) -> Self {
        self.trust_incoming_context = Some(trust);
        self
    }

    /// Makes `seconds` a bucket boundary of `http.server.request.duration`,
    /// so a latency SLO with that threshold can be computed exactly.
    pub fn slo_latency_threshold(mut self, seconds: f64) -> Self {
        self.slo_latency_thresholds.push(seconds);
        self
    }

    /// Replaces the bucket boundaries (seconds) of the request-duration
    /// histograms (`http.server.request.duration`, `rpc.server.duration`,
    /// `http.client.request.duration`). The default is the OpenTelemetry HTTP
    /// advice, 5 ms to 10 s; SLO thresholds are added to whichever is used.
    ///
    /// ```
    /// let config = telemetry_init::builder()
    ///     .duration_buckets(vec![0.01, 0.1, 0.3, 1.0])
    ///     .slo_latency_threshold(0.25)
    ///     .env_lookup(|_| None)
    ///     .resolve()?;
    /// assert_eq!(config.duration_buckets.as_deref(), Some(&[0.01, 0.1, 0.3, 1.0][..]));
    /// # Ok::<(), telemetry_init::Error>(())
    /// ```
    pub fn duration_buckets(mut self, seconds: Vec<f64>) -> Self {
        self.duration_buckets = Some(seconds);
        self
    }

    /// Adds a key to the redaction policy: values of attributes, log fields
    /// and query or path parameters whose name ends with `key` (compared
    /// without case and separators) become `REDACTED`. Write `=key` to match
    /// whole names only. `TELEMETRY_REDACT_KEYS` is applied after this; see
    /// [`crate::redact`].
    ///
    /// ```
    /// let config = telemetry_init::builder()
    ///     .redact_key("customer_email")
    ///     .keep_key("=code")
    ///     .env_lookup(|_| None)
    ///     .resolve()?;
    /// assert!(config.redaction.is_secret_name("order.customerEmail"));
    /// assert!(!config.redaction.is_secret_name("code"));
    /// # Ok::<(), telemetry_init::Error>(())
    /// ```
    pub fn redact_key(mut self, key: impl Into<String>) -> Self {
        self.redact_edits.push((true, key.into()));
        self
    }

    /// Removes a key from the redaction policy, written as listed in
    /// [`crate::redact::DEFAULT_KEYS`] (e.g. `=code` to record OAuth `code`
    /// parameters). `TELEMETRY_REDACT_KEYS` is applied after this.
    pub fn keep_key(mut self, key: impl Into<String>) -> Self {
        self.redact_edits.push((false, key.into()));
        self
    }

    /// Events at or above `level` inside an exported span are also recorded
    /// on that span as span events, and an event carrying an error value
    /// (`error!(error = &err as &dyn std::error::Error, "…")`) as an
    /// `exception` event with `exception.type` and `exception.message`
    /// (default `WARN`; `LevelFilter::OFF` turns it off;
    /// `TELEMETRY_SPAN_EVENTS_LEVEL` wins). The events are still exported
    /// once as log records.
    ///
    /// ```
    /// use tracing::level_filters::LevelFilter;
    ///
    /// let config = telemetry_init::builder()
    ///     .span_events_level(LevelFilter::ERROR)
    ///     .env_lookup(|_| None)
    ///     .resolve()?;
    /// assert_eq!(config.span_events_level, LevelFilter::ERROR);
    ///
    /// let config = telemetry_init::builder()
    ///     .span_events_level(LevelFilter::ERROR)
    ///     .env_lookup(|k| (k == "TELEMETRY_SPAN_EVENTS_LEVEL").then(|| "off".into()))
    ///     .resolve()?;
    /// assert_eq!(config.span_events_level, LevelFilter::OFF);
    /// # Ok::<(), telemetry_init::Error>(())
    /// ```
    pub fn span_events_level(
        mut self,
        level: impl Into<tracing::level_filters::LevelFilter>,
    ) -> Self {
        self.span_events_level = Some(level.into());
        self
    }

    /// The header that carries the request id (default `x-request-id`;
    /// `TELEMETRY_REQUEST_ID_HEADER` wins): the server layer reads it from
    /// requests and echoes it on responses, `ClientLayer` and
    /// `send_traced()` forward it to downstream calls; the log field and
    /// span attribute stay `request_id`. A name that is not a valid header,
    /// or names a header with another meaning (`traceparent`,
    /// `authorization`, `cookie`, `content-length`, …), is an error.
    ///
    /// ```
    /// let config = telemetry_init::builder()
    ///     .request_id_header("X-Correlation-ID")
    ///     .env_lookup(|_| None)
    ///     .resolve()?;
    /// assert_eq!(config.request_id_header, "x-correlation-id");
    ///
    /// let refused = telemetry_init::builder()
    ///     .request_id_header("authorization")
    ///     .env_lookup(|_| None)
    ///     .resolve();
    /// assert!(refused.is_err());
    /// # Ok::<(), telemetry_init::Error>(())
    /// ```
    pub fn request_id_header(mut self, name: impl Into<String>) -> Self {
        self.request_id_header = Some(name.into());
        self
    }

    /// Reads configuration variables through `lookup` instead of the process
    /// environment (every variable, the `OTEL_EXPORTER_OTLP_*` ones included).
    /// Meant for tests.
    pub fn env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Some(Arc::new(lookup));
        self
    }

    /// Resolves code settings and the environment into the [`Config`] that
    /// [`install`](Self::install) would act on, validating every value.
    pub fn resolve(&self) -> Result<Config, Error> {
        let process_env = |k: &str| std::env::var(k).ok();
        let lookup: &dyn Fn(&str) -> Option<String> = match &self.lookup {
            Some(l) => l.as_ref(),
            None => &process_env,
        };
        resolve(self, &Env::new(lookup))
    }
}

fn resolve(b: &Builder, env: &Env<'_>) -> Result<Config, Error> {
    let sdk_disabled = env.bool("OTEL_SDK_DISABLED")?.unwrap_or(false);

    let mut resource_attributes = b.resource_attributes.clone();
    if let Some(v) = env.get("OTEL_RESOURCE_ATTRIBUTES") {
        for (k, v) in env::parse_kv_list("OTEL_RESOURCE_ATTRIBUTES", &v)? {
            resource_attributes.retain(|(existing, _)| existing != &k);
            resource_attributes.push((k, v));
        }
    }
    let take_attr = |attrs: &mut Vec<(String, String)>, key: &str| {
        let pos = attrs.iter().position(|(k, _)| k == key)?;
        Some(attrs.remove(pos).1)
    };
    let attr_service_name = take_attr(&mut resource_attributes, "service.name");
    let attr_version = take_attr(&mut resource_attributes, "service.version");
    let attr_environment = take_attr(&mut resource_attributes, "deployment.environment.name")
        .or_else(|| take_attr(&mut resource_attributes, "deployment.environment"));

    let service_name = env
        .get("OTEL_SERVICE_NAME")
        .or(attr_service_name)
        .or_else(|| b.service_name.clone())
        .unwrap_or_else(executable_name);
    let service_version = attr_version.or_else(|| b.service_version.clone());
    let environment = attr_environment.or_else(|| b.environment.clone());

    let sampler = match env.get("OTEL_TRACES_SAMPLER") {
        Some(name) => SamplerSetting::parse(&name, env.get("OTEL_TRACES_SAMPLER_ARG"))?,
        None => match (&b.sampler, env.get("OTEL_TRACES_SAMPLER_ARG")) {
            (Some(s), _) => s.clone(),
            // An argument without a sampler name is a configuration mistake
            // worth reporting rather than ignoring.
            (None, Some(arg)) => SamplerSetting::parse("parentbased_traceidratio", Some(arg))?,
            (None, None) => SamplerSetting::ParentBasedAlwaysOn,
        },
    };

    let propagators = match env.get("OTEL_PROPAGATORS") {
        None => vec![Propagator::TraceContext, Propagator::Baggage],
        Some(v) => parse_propagators(&v)?,
    };

    let traces = exporter(env, b, Signal::Traces, sdk_disabled)?;
    let logs = exporter(env, b, Signal::Logs, sdk_disabled)?;
    let metrics = exporter(env, b, Signal::Metrics, sdk_disabled)?;

    let span_batch = batch(
        env,
        "OTEL_BSP",
        b.span_batch.unwrap_or(BatchSettings::SPANS),
    )?;
    let log_batch = batch(env, "OTEL_BLRP", b.log_batch.unwrap_or(BatchSettings::LOGS))?;

    let attribute_limit = env.count("OTEL_ATTRIBUTE_COUNT_LIMIT")?;
    let limit = |var: &str, fallback: usize| -> Result<u32, Error> {
        let n = env.count(var)?.or(attribute_limit).unwrap_or(fallback);
        u32::try_from(n).map_err(|_| {
            Error::invalid_env(
                var,
                &n.to_string(),
                "too large",
                "an integer up to 4294967295",
            )
        })
    };
    let span_limits = SpanLimits {
        attributes: limit("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", 128)?,
        events: u32::try_from(env.count("OTEL_SPAN_EVENT_COUNT_LIMIT")?.unwrap_or(128))
            .unwrap_or(u32::MAX),
        links: u32::try_from(env.count("OTEL_SPAN_LINK_COUNT_LIMIT")?.unwrap_or(128))
            .unwrap_or(u32::MAX),
        event_attributes: limit("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", 128)?,
        link_attributes: limit("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", 128)?,
        attribute_value_length: value_length(env, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT")?,
    };
    let log_limits = LogLimits {
        attributes: limit("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", 128)?,
        attribute_value_length: value_length(env, "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT")?,
    };
    let bytes = |var: &str, fallback: usize, min: usize| -> Result<usize, Error> {
        match env.count(var)? {
            None => Ok(fallback),
            Some(n) if n >= min => Ok(n),
            Some(n) => Err(Error::invalid_env(
                var,
                &n.to_string(),
                "too small",
                format!("a number of bytes >= {min}"),
            )),
        }
    };
    let size_limits = SizeLimits {
        max_request_bytes: bytes(
            "TELEMETRY_EXPORT_MAX_REQUEST_BYTES",
            SizeLimits::DEFAULT.max_request_bytes,
            64 * 1024,
        )?,
        span_queue_bytes: bytes(
            "TELEMETRY_BSP_MAX_QUEUE_BYTES",
            SizeLimits::DEFAULT.span_queue_bytes,
            64 * 1024,
        )?,
        log_queue_bytes: bytes(
            "TELEMETRY_BLRP_MAX_QUEUE_BYTES",
            SizeLimits::DEFAULT.log_queue_bytes,
            64 * 1024,
        )?,
    };

    let metric_export_interval = env
        .millis("OTEL_METRIC_EXPORT_INTERVAL")?
        .unwrap_or(Duration::from_secs(60));
    if metric_export_interval.is_zero() {
        return Err(Error::invalid_env(
            "OTEL_METRIC_EXPORT_INTERVAL",
            "0",
            "must be positive",
            "milliseconds >= 1, e.g. 60000",
        ));
    }

    let stdout_filter = env
        .get("RUST_LOG")
        .or_else(|| b.stdout_filter.clone())
        .unwrap_or_else(|| "info".to_string());
    // By default the access log (target `telemetry_init::access`) is printed
    // but not exported: the SERVER span carries the same method, route,
    // status and duration, and exporting it would double the export volume
    // (the largest cost of a request's telemetry). Any filter set in env or
    // code replaces this default.
    let export_filter = env
        .get("TELEMETRY_EXPORT_FILTER")
        .or_else(|| b.export_filter.clone())
        .unwrap_or_else(|| "info,telemetry_init::access=off".to_string());
    for (var, directives) in [
        ("RUST_LOG", &stdout_filter),
        ("TELEMETRY_EXPORT_FILTER", &export_filter),
    ] {
        tracing_subscriber::EnvFilter::builder()
            .parse(directives)
            .map_err(|e| {
                Error::invalid_env(
                    var,
                    directives,
                    e,
                    "EnvFilter directives, e.g. info,my_crate=debug",
                )
            })?;
    }

    let prometheus_addr = match env.get("TELEMETRY_PROMETHEUS_ADDR") {
        Some(v) => Some(v.parse().map_err(|_| {
            Error::invalid_env(
                "TELEMETRY_PROMETHEUS_ADDR",
                &v,
                "not a socket address",
                "ip:port, e.g. 0.0.0.0:9464",
            )
        })?),
        None => b.prometheus_addr,
    };

    let shutdown_timeout = env
        .millis("TELEMETRY_SHUTDOWN_TIMEOUT")?
        .or(b.shutdown_timeout)
        .unwrap_or(Duration::from_secs(5));

    let log_format = match env.get("TELEMETRY_LOG_FORMAT") {
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            _ => {
                return Err(Error::invalid_env(
                    "TELEMETRY_LOG_FORMAT",
                    &v,
                    "unknown format",
                    "json, text",
                ));
            }
        },
        None => b.log_format.unwrap_or(LogFormat::Json),
    };

    let exemplar_filter = match env.get("OTEL_METRICS_EXEMPLAR_FILTER") {
        None => ExemplarFilter::TraceBased,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "trace_based" => ExemplarFilter::TraceBased,
            "always_off" => ExemplarFilter::AlwaysOff,
            // An exemplar outside a sampled trace links to nothing the
            // tracing backend has; refused rather than silently narrowed.
            "always_on" => {
                return Err(Error::invalid_env(
                    "OTEL_METRICS_EXEMPLAR_FILTER",
                    &v,
                    "unsupported (exemplars come from sampled spans only)",
                    "trace_based, always_off",
                ));
            }
            _ => {
                return Err(Error::invalid_env(
                    "OTEL_METRICS_EXEMPLAR_FILTER",
                    &v,
                    "unknown filter",
                    "trace_based, always_off",
                ));
            }
        },
    };

    let trust_incoming_context = env
        .bool("TELEMETRY_TRUST_INCOMING_CONTEXT")?
        .or(b.trust_incoming_context)
        .unwrap_or(true);

    let mut redaction = crate::redact::Redaction::new();
    for (add, key) in &b.redact_edits {
        redaction = if *add {
            redaction.with_key(key)
        } else {
            redaction.without_key(key)
        };
    }
    if let Some(list) = env.get(crate::redact::ENV_KEYS) {
        redaction = redaction.apply_list(&list).map_err(|entry| {
            Error::invalid_env(
                crate::redact::ENV_KEYS,
                &list,
                format!("entry {entry:?} has no letter or digit"),
                "comma-separated keys: name (suffix), =name (whole name), -name (remove)",
            )
        })?;
    }

    let span_events_level = match env.get(SPAN_EVENTS_LEVEL) {
        Some(v) => parse_level(&v)?,
        None => b
            .span_events_level
            .unwrap_or(tracing::level_filters::LevelFilter::WARN),
    };

    let request_id_header = match (env.get(REQUEST_ID_HEADER), &b.request_id_header) {
        (Some(v), _) => crate::http::request_id::parse(&v).map_err(|reason| {
            Error::invalid_env(
                REQUEST_ID_HEADER,
                &v,
                reason,
                "an HTTP header name such as x-request-id or x-correlation-id",
            )
        })?,
        (None, Some(name)) => crate::http::request_id::parse(name).map_err(|reason| {
            Error::InvalidConfig(format!("request_id_header {name:?}: {reason}"))
        })?,
        (None, None) => crate::http::request_id::X_REQUEST_ID,
    };

    Ok(Config {
        request_id_header,
        span_events_level,
        trust_incoming_context,
        sdk_disabled,
        service_name,
        service_version,
        environment,
        resource_attributes,
        traces,
        logs,
        metrics,
        sampler,
        propagators,
        span_batch,
        log_batch,
        span_limits,
        log_limits,
        size_limits,
        metric_export_interval,
        stdout_filter,
        export_filter,
        prometheus_addr,
        shutdown_timeout,
        log_format,
        exemplar_filter,
        slo_latency_thresholds: b.slo_latency_thresholds.clone(),
        duration_buckets: b.duration_buckets.clone(),
        redaction,
    })
}

/// The variable of [`Builder::request_id_header`].
const REQUEST_ID_HEADER: &str = "TELEMETRY_REQUEST_ID_HEADER";

/// The variable of [`Builder::span_events_level`].
const SPAN_EVENTS_LEVEL: &str = "TELEMETRY_SPAN_EVENTS_LEVEL";

fn parse_level(value: &str) -> Result<tracing::level_filters::LevelFilter, Error> {
    use tracing::level_filters::LevelFilter;
    Ok(match value.trim().to_ascii_lowercase().as_str() {
        "off" | "none" => LevelFilter::OFF,
        "error" => LevelFilter::ERROR,
        "warn" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => {
            return Err(Error::invalid_env(
                SPAN_EVENTS_LEVEL,
                value,
                "unknown level",
                "off, error, warn, info, debug, trace",
            ));
        }
    })
}

/// A signal's attribute value length limit: its own variable, else
/// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else none.
fn value_length(env: &Env<'_>, var: &str) -> Result<Option<usize>, Error> {
    Ok(env
        .count(var)?
        .or(env.count("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")?))
}

fn exporter(
    env: &Env<'_>,
    b: &Builder,
    signal: Signal,
    sdk_disabled: bool,
) -> Result<ExporterSetting, Error> {
    let var = format!("OTEL_{}_EXPORTER", signal.as_str().to_ascii_uppercase());
    let names = env.get(&var).map(|v| (parse_name_list(&v), v));
    // Validate first, so a typo is reported even when the SDK is disabled.
    let mut choice = None;
    if let Some((names, raw)) = &names {
        let accepted = if signal == Signal::Metrics {
            "otlp, prometheus, console, none"
        } else {
            "otlp, console, none"
        };
        for name in names {
            match name.as_str() {
                "otlp" | "console" | "none" => {}
                // The Prometheus exposition is always served in-process; the
                // name is accepted so the standard value does not fail start-up.
                "prometheus" if signal == Signal::Metrics => {}
                _ => {
                    return Err(Error::invalid_env(
                        &var,
                        raw,
                        format!("unknown exporter {name:?}"),
                        accepted,
                    ));
                }
            }
        }
        choice = Some(names.clone());
    }
    let otlp = otlp::resolve(env, signal, &b.otlp)?;
    if sdk_disabled {
        return Ok(ExporterSetting::Off("OTEL_SDK_DISABLED=true".into()));
    }
    if b.disabled_signals.contains(&signal) {
        return Ok(ExporterSetting::Off("disabled in code".into()));
    }
    let names = choice.unwrap_or_else(|| vec!["otlp".to_string()]);
    if names.iter().any(|n| n == "none") || names.is_empty() {
        return Ok(ExporterSetting::Off(format!("{var}=none")));
    }
    if names.iter().any(|n| n == "otlp") {
        return Ok(match otlp {
            Some(settings) => ExporterSetting::Otlp(settings),
            None if names.iter().any(|n| n == "console") => ExporterSetting::Console,
            None => ExporterSetting::Off(
                "no OTLP endpoint configured (set OTEL_EXPORTER_OTLP_ENDPOINT)".into(),
            ),
        });
    }
    if names.iter().any(|n| n == "console") {
        return Ok(ExporterSetting::Console);
    }
    Ok(ExporterSetting::Off(format!(
        "{var}=prometheus (scrape only)"
    )))
}

fn batch(env: &Env<'_>, prefix: &str, base: BatchSettings) -> Result<BatchSettings, Error> {
    let mut s = base;
    if let Some(n) = env.count(&format!("{prefix}_MAX_QUEUE_SIZE"))? {
        s.max_queue_size = n;
    }
    if let Some(n) = env.count(&format!("{prefix}_MAX_EXPORT_BATCH_SIZE"))? {
        s.max_export_batch_size = n;
    }
    if let Some(d) = env.millis(&format!("{prefix}_SCHEDULE_DELAY"))? {
        s.schedule_delay = d;
    }
    if let Some(d) = env.millis(&format!("{prefix}_EXPORT_TIMEOUT"))? {
        s.export_timeout = d;
    }
    // The spec: a batch larger than the queue is clamped to the queue.
    s.max_export_batch_size = s.max_export_batch_size.min(s.max_queue_size);
    Ok(s)
}

fn parse_propagators(value: &str) -> Result<Vec<Propagator>, Error> {
    // The same parser the layers' `Propagators` use, so the two never
    // disagree; its error names the value and says why it is refused.
    if let Err(e) = telemetry_init_propagation::Propagators::parse(value) {
        return Err(Error::invalid_env(
            "OTEL_PROPAGATORS",
            value,
            e.to_string(),
            telemetry_init_propagation::Propagators::accepted().join(", "),
        ));
    }
    let mut out = Vec::new();
    for name in parse_name_list(value) {
        let p = match name.as_str() {
            "tracecontext" => Propagator::TraceContext,
            "baggage" => Propagator::Baggage,
            _ => continue,
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// `service.name` when nothing sets it: the executable's name, never
/// `unknown_service`, so dashboards group by something meaningful.
fn executable_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rust-service".to_string())
}

#[cfg(test)]
mod tests;
