//! [`TelemetryGuard`]: flushes everything on shutdown, never hangs.

use std::fmt;
use std::time::{Duration, Instant};

use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::pipeline::counters::{PipelineCounters, SignalCounters};
use crate::pipeline::runtime::ExportRuntime;

/// What happened to one signal's items since the telemetry was built.
///
/// Computed from the same counters as the pipeline's self-health metrics
/// (`otel_sdk_*`, see `docs/metrics.md`), so the two always agree:
///
/// | field | metric (spans; `log` for log records) |
/// |---|---|
/// | `exported` | `otel_sdk_exporter_span_exported_total` without `error_type` |
/// | `dropped` | `otel_sdk_processor_span_processed_total{error_type="queue_full"}` |
/// | `failed` | `otel_sdk_exporter_span_exported_total` with any `error_type`, plus `otel_sdk_processor_span_processed_total{error_type="shutdown_timeout"}` |
/// | `pending` | accepted into the queue and in none of the above |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalReport {
    /// Items the collector accepted.
    pub exported: u64,
    /// Items dropped because the bounded queue was full.
    pub dropped: u64,
    /// Items whose export failed or timed out, that the collector rejected,
    /// or that were still queued when the shutdown deadline passed.
    pub failed: u64,
    /// Items still queued, or in an export that had not ended, when the
    /// report was taken.
    pub pending: u64,
}

impl SignalReport {
    /// Items that did not reach the collector (dropped, failed or pending).
    pub fn undelivered(&self) -> u64 {
        self.dropped + self.failed + self.pending
    }

    fn from_counters(c: &SignalCounters) -> Self {
        let t = c.totals();
        Self {
            exported: t.exported,
            dropped: t.dropped,
            failed: t.failed + t.discarded,
            pending: t.pending(),
        }
    }
}

/// The outcome of [`TelemetryGuard::shutdown`].
#[derive(Debug, Clone, Default)]
pub struct ShutdownReport {
    /// Spans.
    pub traces: SignalReport,
    /// Log records.
    pub logs: SignalReport,
    /// Metric data points pushed over OTLP (all zero when metrics are not
    /// pushed). Points are not queued: `dropped` and `pending` stay zero.
    pub metrics: SignalReport,
    /// Errors met while flushing, e.g. a timed-out export or metric push.
    pub errors: Vec<String>,
    /// Whether the deadline passed before every signal was flushed.
    pub timed_out: bool,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

impl ShutdownReport {
    /// True when every item reached the collector and nothing failed.
    pub fn is_complete(&self) -> bool {
        !self.timed_out
            && self.errors.is_empty()
            && self.traces.undelivered() == 0
            && self.logs.undelivered() == 0
            && self.metrics.undelivered() == 0
    }

    fn from_counters(c: &PipelineCounters) -> Self {
        Self {
            traces: SignalReport::from_counters(&c.traces),
            logs: SignalReport::from_counters(&c.logs),
            metrics: SignalReport::from_counters(&c.metrics),
            ..Default::default()
        }
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spans: {} exported, {} not delivered; log records: {} exported, {} not delivered",
            self.traces.exported,
            self.traces.undelivered(),
            self.logs.exported,
            self.logs.undelivered()
        )?;
        if self.metrics != SignalReport::default() {
            write!(
                f,
                "; metric data points: {} exported, {} not delivered",
                self.metrics.exported,
                self.metrics.undelivered()
            )?;
        }
        if self.timed_out {
            f.write_str("; shutdown deadline reached")?;
        }
        for e in &self.errors {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

pub(crate) struct Parts {
    pub(crate) tracer_provider: SdkTracerProvider,
    pub(crate) logger_provider: Option<SdkLoggerProvider>,
    pub(crate) meter_provider: Option<SdkMeterProvider>,
    /// The pipeline's one set of counters, which the self-health metrics
    /// show too.
    pub(crate) counters: PipelineCounters,
    pub(crate) runtime: Option<ExportRuntime>,
    pub(crate) stdout: Option<crate::logs::StdoutGuard>,
    pub(crate) drop_timeout: Duration,
    pub(crate) metrics_server: Option<telemetry_init_metrics::MetricsServer>,
}

/// Keeps telemetry running; flushes and stops it on
/// [`shutdown`](Self::shutdown) or, as a fallback, on drop.
///
/// Shutdown runs on a thread of its own with a deadline, so it cannot
/// deadlock whatever runtime (multi-thread, `current_thread`, one worker,
/// none) it is called from, and a collector that hangs only costs the
/// deadline.
///
/// ```no_run
/// # async fn run() {}
/// #[tokio::main]
/// async fn main() -> Result<(), telemetry_init::Error> {
///     let telemetry = telemetry_init::install()?;
///     run().await;
///     let report = telemetry.shutdown(std::time::Duration::from_secs(5)).await;
///     if !report.is_complete() {
///         eprintln!("telemetry not fully delivered: {report}");
///     }
///     Ok(())
/// }
/// ```
#[must_use = "telemetry stops when the guard is dropped: bind it, e.g. `let _telemetry = …`"]
pub struct TelemetryGuard {
    parts: Option<Parts>,
    handle: crate::TelemetryHandle,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("active", &self.parts.is_some())
            .finish()
    }
}

impl TelemetryGuard {
    pub(crate) fn new(parts: Parts, handle: crate::TelemetryHandle) -> Self {
        Self {
            parts: Some(parts),
            handle,
        }
    }

    /// Shared access to what `install()` set up (metrics, configuration).
    pub fn handle(&self) -> &crate::TelemetryHandle {
        &self.handle
    }

    /// The counts so far, without stopping anything.
    pub fn report(&self) -> ShutdownReport {
        match &self.parts {
            Some(p) => ShutdownReport::from_counters(&p.counters),
            None => ShutdownReport::default(),
        }
    }

    /// Flushes traces, then logs, then metrics, and stops exporting; returns
    /// within `timeout` (plus a few milliseconds) whatever the collector does.
    pub async fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        let Some(parts) = self.parts.take() else {
            return ShutdownReport::default();
        };
        let counters = parts.counters.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("telemetry-shutdown".into())
            .spawn(move || {
                let _ = tx.send(shutdown_blocking(parts, timeout));
            });
        if let Err(e) = spawned {
            return ShutdownReport {
                errors: vec![format!("could not start the shutdown thread: {e}")],
                ..Default::default()
            };
        }
        let started = Instant::now();
        let grace = timeout + Duration::from_millis(250);
        match tokio::time::timeout(grace, rx).await {
            Ok(Ok(report)) => report,
            _ => timed_out_report(&counters, timeout, started),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let Some(parts) = self.parts.take() else {
            return;
        };
        let timeout = parts.drop_timeout;
        let counters = parts.counters.clone();
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("telemetry-shutdown".into())
            .spawn(move || {
                let _ = tx.send(shutdown_blocking(parts, timeout));
            });
        if spawned.is_ok() {
            // A bounded wait: Drop is the fallback for code that never calls
            // `shutdown`, and must not hang the process on a dead collector.
            let report = rx
                .recv_timeout(timeout + Duration::from_millis(250))
                .unwrap_or_else(|_| timed_out_report(&counters, timeout, started));
            if !report.is_complete() {
                eprintln!("telemetry-init: {report}");
            }
        }
    }
}

/// The report when the flush is still running at the deadline: everything
/// not yet exported counts as not delivered.
fn timed_out_report(
    counters: &PipelineCounters,
    timeout: Duration,
    started: Instant,
) -> ShutdownReport {
    let mut errors = vec![format!("shutdown did not finish within {timeout:?}")];
    errors.extend(last_errors(counters));
    ShutdownReport {
        timed_out: true,
        errors,
        elapsed: started.elapsed(),
        ..ShutdownReport::from_counters(counters)
    }
}

/// The last export error of each signal, so a report says *why*.
fn last_errors(counters: &PipelineCounters) -> Vec<String> {
    [&counters.traces, &counters.logs, &counters.metrics]
        .into_iter()
        .filter_map(|c| {
            let last = c.last_error()?;
            Some(format!("{}: last export error: {last}", c.signal()))
        })
        .collect()
}

fn shutdown_blocking(parts: Parts, timeout: Duration) -> ShutdownReport {
    let started = Instant::now();
    let deadline = started + timeout;
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let mut errors = Vec::new();

    // Traces and logs flush side by side, each with the whole budget, so one
    // hanging signal does not starve the other; metrics go last because the
    // two flushes above record self-metrics.
    let (traces, logs) = std::thread::scope(|s| {
        let t = s.spawn(|| parts.tracer_provider.shutdown_with_timeout(remaining()));
        let l = s.spawn(|| {
            parts
                .logger_provider
                .as_ref()
                .map(|lp| lp.shutdown_with_timeout(remaining()))
        });
        (t.join(), l.join())
    });
    if let Ok(Err(e)) = traces {
        errors.push(format!("traces: {e}"));
    }
    if let Ok(Some(Err(e))) = logs {
        errors.push(format!("logs: {e}"));
    }
    if let Some(mp) = &parts.meter_provider
        && let Err(e) = mp.shutdown_with_timeout(remaining())
    {
        errors.push(format!("metrics: {e}"));
    }
    errors.extend(last_errors(&parts.counters));
    let report = ShutdownReport {
        timed_out: Instant::now() >= deadline,
        errors,
        elapsed: started.elapsed(),
        ..ShutdownReport::from_counters(&parts.counters)
    };
    tracing::info!(
        target: "telemetry_init",
        spans_exported = report.traces.exported,
        spans_undelivered = report.traces.undelivered(),
        logs_exported = report.logs.exported,
        logs_undelivered = report.logs.undelivered(),
        metric_data_points_exported = report.metrics.exported,
        metric_data_points_undelivered = report.metrics.undelivered(),
        elapsed_ms = report.elapsed.as_millis() as u64,
        "telemetry shut down"
    );
    if let Some(server) = parts.metrics_server {
        server.shutdown();
    }
    // The stdout writer goes last so the line above is printed.
    drop(parts.stdout);
    drop(parts.runtime);
    report
}
