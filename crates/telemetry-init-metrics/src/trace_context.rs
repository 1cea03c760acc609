//! Cheap lookup of the current sampled trace context, for exemplars.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceId};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A hook returning the trace and span id of the *sampled* span active at
/// the call site, or `None`. It runs on every histogram record (only when
/// exemplars are enabled), so it must be cheap and must not allocate.
///
/// ```
/// use opentelemetry::trace::{SpanId, TraceId};
/// use telemetry_init_metrics::{MetricsConfig, TraceContextFn};
///
/// // E.g. a framework keeping its own request context in a thread-local.
/// fn from_my_framework() -> Option<(TraceId, SpanId)> {
///     None
/// }
/// let hook: TraceContextFn = from_my_framework;
/// let config = MetricsConfig::new().trace_context(Some(hook));
/// # let _ = config;
/// ```
pub type TraceContextFn = fn() -> Option<(TraceId, SpanId)>;

fn sampled(sc: &SpanContext) -> Option<(TraceId, SpanId)> {
    (sc.is_valid() && sc.is_sampled()).then(|| (sc.trace_id(), sc.span_id()))
}

/// The default [`TraceContextFn`].
///
/// 1. Fast path: the OpenTelemetry [`Context`](opentelemetry::Context) that
///    `tracing-opentelemetry` activates on span entry (its default
///    `with_context_activation(true)`), a thread-local read. If it holds a
///    valid span context, the answer is that span — if sampled.
/// 2. Fallback (context activation disabled): `tracing::Span::current()` and
///    [`OpenTelemetrySpanExt::context`], only when a `tracing` span is
///    current.
///
/// Returns `None` for unsampled spans, so exemplars always point at traces
/// that exist in the tracing backend.
///
/// ```
/// // Outside of any span there is no exemplar context.
/// assert!(telemetry_init_metrics::current_trace_context().is_none());
/// ```
pub fn current_trace_context() -> Option<(TraceId, SpanId)> {
    if let Some(answer) = active_otel_span() {
        return answer;
    }
    let span = tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    let otel_span = cx.span();
    sampled(otel_span.span_context())
}

/// `Some(answer)` when the active OpenTelemetry context holds a valid span.
#[inline]
#[allow(
    clippy::option_option,
    reason = "three answers: no OpenTelemetry span, a span that is (not) sampled"
)]
fn active_otel_span() -> Option<Option<(TraceId, SpanId)>> {
    opentelemetry::Context::map_current(|cx| {
        if cx.has_active_span() {
            let span = cx.span();
            let sc = span.span_context();
            if sc.is_valid() {
                return Some(sampled(sc));
            }
        }
        None
    })
}

/// A [`TraceContextFn`] that only reads the active OpenTelemetry
/// [`Context`](opentelemetry::Context) (a thread-local read, ~10 ns) and
/// never falls back to `tracing::Span::current()`.
///
/// Correct whenever `tracing-opentelemetry` runs with context activation
/// (its default) or spans are entered through the OpenTelemetry API; it
/// avoids the fallback's cost for records made inside `tracing` spans that
/// have no OpenTelemetry counterpart.
///
/// ```
/// use telemetry_init_metrics::{MetricsConfig, active_otel_trace_context};
/// let config = MetricsConfig::new().trace_context(Some(active_otel_trace_context));
/// # let _ = config;
/// assert!(active_otel_trace_context().is_none());
/// ```
pub fn active_otel_trace_context() -> Option<(TraceId, SpanId)> {
    active_otel_span().flatten()
}
