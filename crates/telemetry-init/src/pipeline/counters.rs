//! The one record of what happened to each signal's items, read by the
//! shutdown report and exposed as the `otel.sdk.*` self-health metrics.
//!
//! ```text
//! request thread ─ push ─▶ enqueued | dropped (queue_full)
//! batch worker ──────────▶ processed | discarded (shutdown_timeout)
//! export end ────────────▶ exported | failed (error.type)
//!                              │
//!             PipelineHealth: series + totals, in one call
//!                 │                         │
//!         /metrics, OTLP push        ShutdownReport (totals)
//! ```
//!
//! Why one record: the report used to keep counters of its own beside the
//! metrics, and the two drifted apart (items cut off by the shutdown
//! deadline were counted as failed in the report and nowhere in the
//! metrics). Now every outcome is recorded once, through
//! [`SignalCounters`], into [`PipelineHealth`], whose every call adds to a
//! series and to the signal's totals together; the report is computed from
//! those totals ([`SignalCounters::totals`]). Nothing else in the pipeline
//! holds a count.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use telemetry_init_metrics::{PipelineHealth, PipelineTotals};

use super::outcome::{Delivered, ExportResult};
use crate::config::Signal;

/// The `error.type` of items still queued when the shutdown deadline
/// passed (`otel.sdk.processor.{span,log}.processed{error.type=…}`).
pub(crate) const SHUTDOWN_TIMEOUT: &str = "shutdown_timeout";

/// The counters of one signal: a handle on its part of [`PipelineHealth`]
/// plus the last export error (for the report's "why"). Cheap to clone;
/// clones share everything.
#[derive(Debug, Clone)]
pub(crate) struct SignalCounters {
    health: PipelineHealth,
    signal: Signal,
    last_error: Arc<Mutex<Option<String>>>,
}

/// The counters of every signal of one pipeline.
#[derive(Debug, Clone)]
pub(crate) struct PipelineCounters {
    pub(crate) traces: SignalCounters,
    pub(crate) logs: SignalCounters,
    pub(crate) metrics: SignalCounters,
}

impl PipelineCounters {
    pub(crate) fn new(health: &PipelineHealth) -> Self {
        Self {
            traces: SignalCounters::new(health, Signal::Traces),
            logs: SignalCounters::new(health, Signal::Logs),
            metrics: SignalCounters::new(health, Signal::Metrics),
        }
    }
}

impl SignalCounters {
    pub(crate) fn new(health: &PipelineHealth, signal: Signal) -> Self {
        Self {
            health: health.clone(),
            signal,
            last_error: Arc::default(),
        }
    }

    pub(crate) fn signal(&self) -> Signal {
        self.signal
    }

    /// One item accepted into the queue: the request thread's only count
    /// (one relaxed atomic increment).
    #[inline]
    pub(crate) fn enqueued(&self) {
        self.health.enqueued(self.signal);
    }

    /// One item refused by a full queue (`queue_full`).
    pub(crate) fn dropped(&self) {
        self.health.dropped(self.signal, 1);
    }

    /// `n` items handed from the queue to the exporter.
    pub(crate) fn processed(&self, n: u64) {
        self.health.processed(self.signal, n);
    }

    /// `n` queued items given up on because the shutdown deadline passed.
    pub(crate) fn cut_at_deadline(&self, n: u64) {
        self.health.discarded(self.signal, n, SHUTDOWN_TIMEOUT);
    }

    pub(crate) fn queue_size(&self, n: u64) {
        self.health.queue_size(self.signal, n);
    }

    pub(crate) fn queue_capacity(&self, n: u64) {
        self.health.queue_capacity(self.signal, n);
    }

    /// Records how an export of `n` items started at `started` ended; the
    /// one failure accounting of every signal on every transport. Items a
    /// collector rejected in a `partial_success` are failed items with
    /// `error.type="rejected"` (or the reason the result names). Logs the
    /// outcome when it is not a plain success, once per `error.type`
    /// (failures) or per collector message (`partial_success`), so a
    /// failing collector costs one line per cause, not one per batch.
    pub(crate) fn finished(&self, n: u64, started: Instant, result: &ExportResult) {
        log_outcome(self.signal, n, result);
        let hs = self.signal;
        let seconds = started.elapsed().as_secs_f64();
        let last = match result {
            Ok(delivered) => {
                let rejected = delivered.rejected.min(n);
                self.health.exported(hs, n - rejected);
                if rejected > 0 {
                    self.health
                        .failed(hs, rejected, delivered.reason.unwrap_or("rejected"));
                }
                self.health.export_duration(hs, seconds, None);
                match &delivered.message {
                    Some(m) if rejected > 0 => Some(format!("collector rejected {rejected}: {m}")),
                    _ => None,
                }
            }
            Err(e) => {
                self.health.failed(hs, n, e.error_type);
                self.health.export_duration(hs, seconds, Some(e.error_type));
                Some(e.message.clone())
            }
        };
        if let Some(last) = last {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(last);
        }
    }

    /// Everything recorded for this signal so far.
    pub(crate) fn totals(&self) -> PipelineTotals {
        self.health.totals(self.signal)
    }

    /// The last export error's message, if any.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The log line of an export that did not simply succeed: one per cause.
fn log_outcome(signal: Signal, n: u64, result: &ExportResult) {
    match result {
        Ok(Delivered {
            message: Some(message),
            rejected,
            reason: None,
        }) => log_once(
            signal,
            "partial_success",
            message,
            format_args!(
                "the collector rejected {} of {n} {signal} items in one export: {message}",
                rejected.min(&n)
            ),
        ),
        Ok(Delivered {
            message: Some(message),
            rejected,
            reason: Some(reason),
        }) => log_once(
            signal,
            reason,
            reason,
            format_args!(
                "{} of {n} {signal} items not delivered ({reason}): {message}",
                rejected.min(&n)
            ),
        ),
        Ok(_) => {}
        Err(e) => {
            // Transport messages already say "<signal> export failed…".
            let prefix = format!("{signal} export");
            if e.message.starts_with(&prefix) {
                log_once(
                    signal,
                    e.error_type,
                    e.error_type,
                    format_args!("{}", e.message),
                );
            } else {
                log_once(
                    signal,
                    e.error_type,
                    e.error_type,
                    format_args!("{prefix} failed: {}", e.message),
                );
            }
        }
    }
}

/// Logs `line` the first time `(signal, kind, key)` is seen, so a collector
/// that keeps failing or rejecting is reported once per distinct cause,
/// not once per batch. The set is bounded; past it nothing more is logged.
pub(crate) fn log_once(signal: Signal, kind: &str, key: &str, line: std::fmt::Arguments<'_>) {
    const MAX_KEYS: usize = 256;
    static SEEN: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashSet<(Signal, String, String)>>,
    > = std::sync::OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if seen.len() >= MAX_KEYS {
        return;
    }
    if seen.insert((signal, kind.to_string(), key.to_string())) {
        drop(seen);
        tracing::warn!(
            target: "telemetry_init::export",
            signal = signal.as_str(),
            error.type = kind,
            "{line}"
        );
    }
}
