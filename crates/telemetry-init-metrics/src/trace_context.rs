//! Cheap lookup of the current sampled trace context, for exemplars.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceId};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A hook returning the trace and span id of the *sampled* span active at
/// the call site, or `None`. It runs on every histogram record (only when
/// exemplars are enabled), so it must be cheap and must not allocate.
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
    let fast = opentelemetry::Context::map_current(|cx| {
        if cx.has_active_span() {
            let span = cx.span();
            let sc = span.span_context();
            if sc.is_valid() {
                return Some(sampled(sc));
            }
        }
        None
    });
    if let Some(answer) = fast {
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
