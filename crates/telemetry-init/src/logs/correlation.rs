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

use arrayvec::ArrayString;
use opentelemetry::trace::TraceContextExt;
use tracing::Subscriber;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// The ids of a span, cached as the JSON line's fragment
/// `,"trace_id":"<32 hex>","span_id":"<16 hex>"`: made once per span, so
/// every line under it writes its ids in one piece, with no hex encoding
/// and no UTF-8 check.
#[derive(Clone, Debug)]
pub(crate) struct TraceIds {
    json: ArrayString<{ TraceIds::JSON_LEN }>,
}

impl TraceIds {
    const JSON_LEN: usize = r#","trace_id":"","span_id":"""#.len() + 32 + 16;

    fn new(trace_id: [u8; 16], span_id: [u8; 8]) -> Self {
        let mut json = ArrayString::new();
        // Sized above to fit exactly: no push can fail.
        let _ = json.try_push_str(r#","trace_id":""#);
        push_hex(&mut json, &trace_id);
        let _ = json.try_push_str(r#"","span_id":""#);
        push_hex(&mut json, &span_id);
        let _ = json.try_push('"');
        Self { json }
    }

    /// `,"trace_id":"…","span_id":"…"`, to follow a JSON member.
    pub(crate) fn json_fields(&self) -> &str {
        &self.json
    }
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
            let ids = TraceIds::new(sc.trace_id().to_bytes(), sc.span_id().to_bytes());
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

fn push_hex<const N: usize>(out: &mut ArrayString<N>, bytes: &[u8]) {
    for b in bytes {
        let _ = out.try_push(char::from(HEX[usize::from(b >> 4)]));
        let _ = out.try_push(char::from(HEX[usize::from(b & 0xf)]));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ids_fragment_is_lowercase_hex_in_json() {
        let ids = TraceIds::new(
            0x0af7651916cd43dd8448eb211c80319c_u128.to_be_bytes(),
            0x00f067aa0ba902b7_u64.to_be_bytes(),
        );
        assert_eq!(
            ids.json_fields(),
            r#","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"00f067aa0ba902b7""#
        );
    }
}
