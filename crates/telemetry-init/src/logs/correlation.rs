//! Which trace, span and request a log line belongs to.
//!
//! tracing-opentelemetry keeps the OpenTelemetry ids inside its own span
//! extension; reading them takes a lock and a context clone. We read them
//! once per span, the first time a line is logged in it, and cache the hex
//! strings in our own extension, so every further line costs a lookup.
//!
//! Reading them needs the dispatcher the span lives in. Inside a layer's
//! callback `tracing::dispatcher::get_default` cannot be used for that: when
//! a thread-local default is set (`set_default`, the scoped mode) a nested
//! call sees no dispatcher at all. So the layers remember the dispatcher
//! they were registered with ([`DispatchSlot`]), as a weak reference (the
//! dispatcher owns the layers).

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use tracing::Subscriber;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// The hex ids of a span, cached.
#[derive(Clone, Debug)]
pub(crate) struct TraceIds {
    pub(crate) trace_id: [u8; 32],
    pub(crate) span_id: [u8; 16],
}

/// The request id recorded on a span by the request middleware (field
/// `request_id`).
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub(crate) Arc<str>);

/// The dispatcher a layer stack was registered with, shared by its layers.
#[derive(Clone, Debug, Default)]
pub(crate) struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

impl DispatchSlot {
    /// The dispatcher, while it exists.
    pub(crate) fn get(&self) -> Option<tracing::Dispatch> {
        self.0.get().and_then(WeakDispatch::upgrade)
    }
}

/// Captures `request_id` fields of new spans, and the dispatcher for the
/// other layers of the stack.
#[derive(Debug, Default)]
pub(crate) struct CorrelationLayer {
    pub(crate) dispatch: DispatchSlot,
}

struct RequestIdVisitor(Option<Arc<str>>);

impl Visit for RequestIdVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "request_id" {
            self.0 = Some(Arc::from(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "request_id" {
            // `%id` arrives here as Display-through-Debug.
            self.0 = Some(Arc::from(format!("{value:?}")));
        }
    }
}

impl<S> Layer<S> for CorrelationLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, dispatch: &tracing::Dispatch) {
        // One layer stack, one dispatcher: a second registration (not
        // possible through this crate's API) keeps the first.
        let _ = self.dispatch.0.set(dispatch.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().fields().field("request_id").is_none() {
            return;
        }
        let mut v = RequestIdVisitor(None);
        attrs.record(&mut v);
        if let (Some(rid), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(rid));
        }
    }

    fn on_record(&self, id: &Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        // Most records (status codes, errors) are not the request id: skip
        // the visit unless this span has such a field and it is being set.
        let Some(span) = ctx.span(id) else { return };
        match span.metadata().fields().field("request_id") {
            Some(f) if values.contains(&f) => {}
            _ => return,
        }
        let mut v = RequestIdVisitor(None);
        values.record(&mut v);
        if let (Some(rid), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(rid));
        }
    }
}

/// The ids of `span` (or its closest ancestor known to OpenTelemetry).
pub(crate) fn ids_of<S>(span: &SpanRef<'_, S>, dispatch: &DispatchSlot) -> Option<TraceIds>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut dispatch_now = None;
    for s in span.scope() {
        if let Some(ids) = s.extensions().get::<TraceIds>() {
            return Some(ids.clone());
        }
        // Upgraded once per line at most, and only when no ids are cached.
        let d = match &dispatch_now {
            Some(d) => d,
            None => dispatch_now.insert(dispatch.get()?),
        };
        let found = tracing_opentelemetry::get_otel_context(&s.id(), d)
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid());
        if let Some(sc) = found {
            let ids = TraceIds {
                trace_id: hex32(sc.trace_id().to_bytes()),
                span_id: hex16(sc.span_id().to_bytes()),
            };
            s.extensions_mut().insert(ids.clone());
            return Some(ids);
        }
    }
    None
}

/// The request id of `span` or its closest ancestor that has one.
pub(crate) fn request_id_of<S>(span: &SpanRef<'_, S>) -> Option<Arc<str>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    span.scope()
        .find_map(|s| s.extensions().get::<RequestId>().map(|r| r.0.clone()))
}

/// The `(trace_id, span_id)` of the current tracing span as hex strings, when
/// it belongs to a trace. Handy for error pages and response headers.
///
/// ```
/// // Outside any span there is no trace.
/// assert!(telemetry_init::current_trace_ids().is_none());
/// ```
pub fn current_trace_ids() -> Option<(String, String)> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span = tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex32(bytes: [u8; 16]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
    out
}

fn hex16(bytes: [u8; 8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
    out
}

/// The request id of the current span or its closest ancestor, when the
/// request middleware set one.
pub(crate) fn current_request_id() -> Option<Arc<str>> {
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
            let span = registry.span(id)?;
            request_id_of(&span)
        })
        .flatten()
}
