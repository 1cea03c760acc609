//! The caller's trace context when no OpenTelemetry layer records spans
//! (`OTEL_SDK_DISABLED=true`, or a subscriber stack without our
//! OpenTelemetry layer).
//!
//! WHY: without an SDK, the OpenTelemetry API still passes a remote parent
//! through: the service creates no span, and outgoing calls carry the
//! caller's `traceparent`, `tracestate` and baggage unchanged, so a trace
//! does not break at a service that records nothing. tracing-opentelemetry
//! keeps a span's context in its own span data, which does not exist
//! without its layer, so the server layer keeps the extracted context on
//! the request's span (a registry extension) and the client side reads it
//! from there when its own span has no context. The common case (an
//! OpenTelemetry layer present) never reaches this module.

use opentelemetry::Context;
use tracing_subscriber::registry::LookupSpan;

/// The extracted context of a request whose span has no OpenTelemetry data.
struct RemoteParent(Context);

/// Keeps `cx` on `span` (when the span exists in a `Registry`-based
/// subscriber), for [`find`] from it or any span inside it.
pub(crate) fn keep(span: &tracing::Span, cx: Context) {
    span.with_subscriber(move |(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>()
            && let Some(s) = registry.span(id)
        {
            s.extensions_mut().insert(RemoteParent(cx));
        }
    });
}

/// The context [`keep`] left on `span` or its closest ancestor.
pub(crate) fn find(span: &tracing::Span) -> Option<Context> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let s = registry.span(id)?;
        s.scope()
            .find_map(|s| s.extensions().get::<RemoteParent>().map(|r| r.0.clone()))
    })
    .flatten()
}
