//! `opentelemetry` [`TextMapPropagator`]s built on the exact parsers, so they
//! can be installed as the global propagator.

use std::sync::OnceLock;

use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::TraceContextExt;

use crate::baggage::{BaggageLimits, W3cBaggage};
use crate::headers::{extract_from_values, raw_tracestate_for, traceparent_for};
use crate::tracestate::Tracestate;

fn trace_fields() -> &'static [String] {
    static FIELDS: OnceLock<[String; 2]> = OnceLock::new();
    FIELDS.get_or_init(|| ["traceparent".to_owned(), "tracestate".to_owned()])
}

fn baggage_fields() -> &'static [String] {
    static FIELDS: OnceLock<[String; 1]> = OnceLock::new();
    FIELDS.get_or_init(|| ["baggage".to_owned()])
}

/// W3C Trace Context propagator (`traceparent` + `tracestate`).
///
/// WHY not the stock `TraceContextPropagator`: it fails 9 of the W3C suite's
/// tests (wrong-length fields accepted, over-long `tracestate` trimmed,
/// current-grammar keys rejected, invalid members forwarded, random flag
/// cleared). This one reads every header value through
/// [`Extractor::get_all`], so a repeated `traceparent` is detected when the
/// carrier exposes repeats (e.g. `opentelemetry-http`'s `HeaderExtractor`).
/// That extractor drops values that are not UTF-8, so a repeated non-UTF-8
/// value goes unseen there; [`crate::extract`] on the `HeaderMap` sees it.
///
/// ```
/// use std::collections::HashMap;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
/// use opentelemetry::Context;
/// use telemetry_init_propagation::W3cTraceContextPropagator;
///
/// let propagator = W3cTraceContextPropagator::new();
/// let mut carrier = HashMap::new();
/// carrier.insert(
///     "traceparent".to_string(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".to_string(),
/// );
/// let cx = propagator.extract_with_context(&Context::new(), &carrier);
/// assert_eq!(cx.span().span_context().trace_flags().to_u8(), 0x03);
///
/// let mut out: HashMap<String, String> = HashMap::new();
/// propagator.inject_context(&cx, &mut out);
/// assert_eq!(out["traceparent"], carrier["traceparent"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct W3cTraceContextPropagator {
    _private: (),
}

impl W3cTraceContextPropagator {
    /// A new propagator.
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use telemetry_init_propagation::W3cTraceContextPropagator;
    ///
    /// let p = W3cTraceContextPropagator::new();
    /// assert_eq!(p.fields().collect::<Vec<_>>(), ["traceparent", "tracestate"]);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

fn values<'a>(extractor: &'a dyn Extractor, key: &str) -> Vec<&'a [u8]> {
    extractor
        .get_all(key)
        .unwrap_or_default()
        .into_iter()
        .map(str::as_bytes)
        .collect()
}

impl TextMapPropagator for W3cTraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        let Some(tp) = traceparent_for(cx, sc) else {
            return;
        };
        injector.set("traceparent", tp.to_string());
        let ts = Tracestate::from_trace_state(sc.trace_state())
            .or_else(|| raw_tracestate_for(cx, sc).cloned());
        if let Some(ts) = ts {
            injector.set("tracestate", ts.as_str().to_owned());
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let tp = values(extractor, "traceparent");
        let ts = values(extractor, "tracestate");
        let extracted = extract_from_values(tp, ts, []);
        if extracted.span_context.is_none() {
            return cx.clone();
        }
        extracted.into_context(cx)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(trace_fields())
    }
}

/// W3C Baggage propagator with the spec's limits (8192 bytes, 180 members;
/// `opentelemetry`'s `Baggage` then holds at most 64 of them).
///
/// ```
/// use std::collections::HashMap;
/// use opentelemetry::baggage::BaggageExt;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::Context;
/// use telemetry_init_propagation::W3cBaggagePropagator;
///
/// let propagator = W3cBaggagePropagator::new();
/// let mut carrier = HashMap::new();
/// carrier.insert("baggage".to_string(), "user=jane%20doe;pii".to_string());
/// let cx = propagator.extract_with_context(&Context::new(), &carrier);
/// assert_eq!(cx.baggage().get("user").unwrap().as_str(), "jane doe");
///
/// let mut out: HashMap<String, String> = HashMap::new();
/// propagator.inject_context(&cx, &mut out);
/// assert_eq!(out["baggage"], "user=jane%20doe;pii");
/// ```
#[derive(Debug, Clone, Default)]
pub struct W3cBaggagePropagator {
    _private: (),
}

impl W3cBaggagePropagator {
    /// A new propagator.
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use telemetry_init_propagation::W3cBaggagePropagator;
    ///
    /// assert_eq!(W3cBaggagePropagator::new().fields().collect::<Vec<_>>(), ["baggage"]);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl TextMapPropagator for W3cBaggagePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let baggage = cx.baggage();
        if baggage.is_empty() {
            return;
        }
        let header = W3cBaggage::from_opentelemetry(baggage).to_header();
        if !header.is_empty() {
            injector.set("baggage", header);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let (parsed, _report) =
            W3cBaggage::from_values_lossy(values(extractor, "baggage"), BaggageLimits::default());
        if parsed.is_empty() {
            return cx.clone();
        }
        cx.with_baggage(parsed.to_opentelemetry().0)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(baggage_fields())
    }
}

/// Both propagators combined, ready for
/// `opentelemetry::global::set_text_map_propagator`.
///
/// ```
/// opentelemetry::global::set_text_map_propagator(telemetry_init_propagation::propagator());
/// ```
pub fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(W3cTraceContextPropagator::new()),
        Box::new(W3cBaggagePropagator::new()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A carrier exposing repeated values, like `HeaderExtractor`.
    struct Multi(Vec<(&'static str, &'static str)>);

    impl Extractor for Multi {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        }
        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(k, _)| *k).collect()
        }
        fn get_all(&self, key: &str) -> Option<Vec<&str>> {
            let v: Vec<&str> = self
                .0
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .collect();
            (!v.is_empty()).then_some(v)
        }
    }

    const TP: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    #[test]
    fn repeated_traceparent_is_rejected() {
        let carrier = Multi(vec![("traceparent", TP), ("traceparent", TP)]);
        let cx = W3cTraceContextPropagator::new().extract_with_context(&Context::new(), &carrier);
        assert!(!cx.has_active_span());
    }

    #[test]
    fn repeated_tracestate_is_joined_and_forwarded() {
        let carrier = Multi(vec![
            ("traceparent", TP),
            ("tracestate", "a=1"),
            ("tracestate", "b@c=2"),
        ]);
        let p = W3cTraceContextPropagator::new();
        let cx = p.extract_with_context(&Context::new(), &carrier);
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert_eq!(out["tracestate"], "a=1,b@c=2");
        assert_eq!(out["traceparent"], TP);
    }

    #[test]
    fn thirty_three_members_drop_the_whole_tracestate() {
        let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), TP.to_owned());
        carrier.insert("tracestate".to_owned(), members.join(","));
        let p = W3cTraceContextPropagator::new();
        let cx = p.extract_with_context(&Context::new(), &carrier);
        assert!(cx.has_active_span());
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert!(!out.contains_key("tracestate"));
    }

    #[test]
    fn invalid_traceparent_leaves_context_untouched() {
        let mut carrier = HashMap::new();
        carrier.insert(
            "traceparent".to_owned(),
            "00-12345678901234567890123456789012-1234567890123456-001".to_owned(),
        );
        let cx = W3cTraceContextPropagator::new().extract_with_context(&Context::new(), &carrier);
        assert!(!cx.has_active_span());
        let mut out: HashMap<String, String> = HashMap::new();
        W3cTraceContextPropagator::new().inject_context(&cx, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn fields_are_listed() {
        let p = W3cTraceContextPropagator::new();
        assert_eq!(
            p.fields().collect::<Vec<_>>(),
            ["traceparent", "tracestate"]
        );
        let b = W3cBaggagePropagator::new();
        assert_eq!(b.fields().collect::<Vec<_>>(), ["baggage"]);
        // The composite deduplicates through a set: order is unspecified.
        let composite = propagator();
        let mut all = composite.fields().collect::<Vec<_>>();
        all.sort_unstable();
        assert_eq!(all, ["baggage", "traceparent", "tracestate"]);
    }

    #[test]
    fn composite_round_trip() {
        let carrier = Multi(vec![
            ("traceparent", TP),
            ("tracestate", "a=1"),
            ("baggage", "k=v%2C1"),
        ]);
        let p = propagator();
        let cx = p.extract_with_context(&Context::new(), &carrier);
        assert_eq!(cx.baggage().get("k").unwrap().as_str(), "v,1");
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert_eq!(out["traceparent"], TP);
        assert_eq!(out["tracestate"], "a=1");
        assert_eq!(out["baggage"], "k=v%2C1");
    }

    #[test]
    fn invalid_baggage_leaves_context_untouched() {
        let carrier = Multi(vec![("baggage", "not a baggage")]);
        let cx = W3cBaggagePropagator::new().extract_with_context(&Context::new(), &carrier);
        assert!(cx.baggage().is_empty());
    }
}
