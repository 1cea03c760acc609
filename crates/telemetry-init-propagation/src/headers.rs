//! Header-level extraction and injection over [`http::HeaderMap`].

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceId, TraceState};

use crate::baggage::{BaggageLimits, BaggageReport, W3cBaggage};
use crate::traceparent::{FLAG_RANDOM, KNOWN_FLAGS, Traceparent, TraceparentError};
use crate::tracestate::{Tracestate, TracestateError};

/// The `traceparent` header name.
///
/// ```
/// assert_eq!(telemetry_init_propagation::TRACEPARENT.as_str(), "traceparent");
/// ```
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header name.
///
/// ```
/// assert_eq!(telemetry_init_propagation::TRACESTATE.as_str(), "tracestate");
/// ```
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// The `baggage` header name.
///
/// ```
/// assert_eq!(telemetry_init_propagation::BAGGAGE.as_str(), "baggage");
/// ```
pub const BAGGAGE: HeaderName = HeaderName::from_static("baggage");
/// The `x-request-id` header name.
///
/// ```
/// assert_eq!(telemetry_init_propagation::X_REQUEST_ID.as_str(), "x-request-id");
/// ```
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What [`extract`] found in a request's headers, with the reasons anything
/// was ignored.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use telemetry_init_propagation::extract;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("traceparent", HeaderValue::from_static(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
/// headers.insert("tracestate", HeaderValue::from_static("congo=t61rcWkgMzE"));
/// headers.insert("baggage", HeaderValue::from_static("user=jane%20doe"));
///
/// let extracted = extract(&headers);
/// let sc = extracted.span_context.as_ref().unwrap();
/// assert!(sc.is_remote() && sc.is_sampled());
/// assert_eq!(sc.trace_state().get("congo"), Some("t61rcWkgMzE"));
/// assert_eq!(extracted.baggage.as_ref().unwrap().get("user").unwrap().as_str(), "jane doe");
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Extracted {
    /// The remote parent, if `traceparent` was valid. Its trace state holds the
    /// validated `tracestate` when `opentelemetry`'s `TraceState` can
    /// represent it.
    pub span_context: Option<SpanContext>,
    /// The incoming baggage, if any valid member was found.
    pub baggage: Option<Baggage>,
    /// The validated `tracestate` list (only when `traceparent` was valid). It
    /// is kept even when `TraceState` cannot represent it, so that
    /// [`Extracted::into_context`] + [`inject_context`] still forward it.
    pub tracestate: Option<Tracestate>,
    /// Why `traceparent` was ignored (`Missing` when absent).
    pub traceparent_error: Option<TraceparentError>,
    /// Why `tracestate` was dropped.
    pub tracestate_error: Option<TracestateError>,
    /// What was dropped from `baggage`.
    pub baggage_report: BaggageReport,
}

/// What the remote parent sent that an SDK span context may lose, carried in
/// the [`Context`] next to it. Only stored when needed: the incoming
/// `tracestate` is valid but not representable as an `opentelemetry`
/// `TraceState`, or the random flag is set.
///
/// WHY the random flag: `opentelemetry_sdk` 0.33 gives a span its sampler
/// dropped `TraceFlags::default()`, so a `-02` caller would otherwise be
/// continued as `-00`. The flag describes the trace-id, so every outgoing
/// `traceparent` with the same trace-id must keep it (W3C level 2).
#[derive(Debug, Clone)]
pub(crate) struct RemoteParent {
    pub(crate) trace_id: TraceId,
    pub(crate) random: bool,
    pub(crate) tracestate: Option<Tracestate>,
}

impl Extracted {
    /// `parent` plus the remote span context and the baggage.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue};
    /// use opentelemetry::Context;
    /// use opentelemetry::trace::TraceContextExt;
    /// use telemetry_init_propagation::extract;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("traceparent", HeaderValue::from_static(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    /// let cx = extract(&headers).into_context(&Context::new());
    /// assert!(cx.has_active_span());
    /// ```
    pub fn into_context(self, parent: &Context) -> Context {
        let mut cx = parent.clone();
        if let Some(sc) = self.span_context {
            let raw = self
                .tracestate
                .filter(|_| *sc.trace_state() == TraceState::NONE);
            let random = sc.trace_flags().to_u8() & FLAG_RANDOM != 0;
            if raw.is_some() || random {
                cx = cx.with_value(RemoteParent {
                    trace_id: sc.trace_id(),
                    random,
                    tracestate: raw,
                });
            }
            cx = cx.with_remote_span_context(sc);
        }
        if let Some(b) = self.baggage {
            cx = cx.with_baggage(b);
        }
        cx
    }
}

/// Extracts trace context and baggage from raw header values (each iterator
/// yields every value of that header, in order).
///
/// ```
/// use telemetry_init_propagation::extract_from_values;
///
/// let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let e = extract_from_values([&tp[..], &tp[..]], [], []);
/// // Repeated traceparent: invalid, start a new trace.
/// assert!(e.span_context.is_none());
/// ```
pub fn extract_from_values<'a, P, S, B>(traceparent: P, tracestate: S, baggage: B) -> Extracted
where
    P: IntoIterator<Item = &'a [u8]>,
    S: IntoIterator<Item = &'a [u8]>,
    B: IntoIterator<Item = &'a [u8]>,
{
    let mut out = Extracted::default();
    match Traceparent::from_values(traceparent) {
        Ok(tp) => {
            // The spec: tracestate is only meaningful with a valid traceparent.
            let (ts, trace_state) = match Tracestate::from_values(tracestate) {
                Ok(Some(ts)) => {
                    let otel = ts.to_trace_state().unwrap_or(TraceState::NONE);
                    (Some(ts), otel)
                }
                Ok(None) => (None, TraceState::NONE),
                Err(e) => {
                    out.tracestate_error = Some(e);
                    (None, TraceState::NONE)
                }
            };
            out.tracestate = ts;
            out.span_context = Some(tp.to_span_context(trace_state));
        }
        Err(e) => out.traceparent_error = Some(e),
    }
    let (parsed, report) = W3cBaggage::from_values_lossy(baggage, BaggageLimits::default());
    out.baggage_report = report;
    if !parsed.is_empty() {
        let (b, _refused) = parsed.to_opentelemetry();
        out.baggage = Some(b);
    }
    out
}

/// Extracts `traceparent`, `tracestate` and `baggage` from all values of
/// those headers.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use telemetry_init_propagation::{extract, TraceparentError};
///
/// let mut headers = HeaderMap::new();
/// let tp = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// headers.append("traceparent", tp.clone());
/// headers.append("traceparent", tp);
/// let e = extract(&headers);
/// assert!(e.span_context.is_none());
/// assert_eq!(e.traceparent_error, Some(TraceparentError::Repeated));
/// ```
pub fn extract(headers: &HeaderMap) -> Extracted {
    extract_from_values(
        headers
            .get_all(TRACEPARENT)
            .iter()
            .map(HeaderValue::as_bytes),
        headers
            .get_all(TRACESTATE)
            .iter()
            .map(HeaderValue::as_bytes),
        headers.get_all(BAGGAGE).iter().map(HeaderValue::as_bytes),
    )
}

/// Writes `traceparent` (version 00, the sampled and random flags kept, no
/// other bit), `tracestate` (if
/// the span context carries one that is valid on the wire) and `baggage`
/// (if given and non-empty), replacing earlier values of those headers.
/// Nothing is written for an invalid span context.
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
/// use telemetry_init_propagation::inject;
///
/// let sc = SpanContext::new(
///     TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736u128),
///     SpanId::from(0x00f067aa0ba902b7u64),
///     TraceFlags::new(0x03),
///     false,
///     TraceState::from_key_value([("congo", "t61rcWkgMzE")]).unwrap(),
/// );
/// let mut headers = HeaderMap::new();
/// inject(&sc, None, &mut headers);
/// assert_eq!(headers["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
/// assert_eq!(headers["tracestate"], "congo=t61rcWkgMzE");
/// ```
pub fn inject(span_context: &SpanContext, baggage: Option<&Baggage>, headers: &mut HeaderMap) {
    if let Some(tp) = Traceparent::from_span_context(span_context) {
        headers.insert(TRACEPARENT, tp.to_header_value());
        // WHY re-validate: `TraceState` accepts some values the wire grammar
        // does not (non-ASCII, tabs, empty); sending those would make the
        // next hop drop the list.
        match Tracestate::from_trace_state(span_context.trace_state())
            .and_then(|ts| ts.to_header_value())
        {
            Some(v) => {
                headers.insert(TRACESTATE, v);
            }
            None => {
                headers.remove(TRACESTATE);
            }
        }
    }
    if let Some(b) = baggage.filter(|b| !b.is_empty()) {
        let header = W3cBaggage::from_opentelemetry(b).to_header();
        if !header.is_empty()
            && let Ok(v) = HeaderValue::from_str(&header)
        {
            headers.insert(BAGGAGE, v);
        }
    }
}

/// [`inject`] for the active span and baggage of `cx`, also forwarding an
/// incoming `tracestate` that `TraceState` could not represent (see
/// [`Extracted::tracestate`]) and the caller's random flag when the span
/// continues the caller's trace (the SDK clears every flag of a span its
/// sampler dropped).
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use opentelemetry::Context;
/// use telemetry_init_propagation::{extract, inject_context};
///
/// let mut incoming = HeaderMap::new();
/// incoming.insert("traceparent", HeaderValue::from_static(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
/// // Valid (system-id of 14 characters), but not representable by TraceState 0.33.
/// incoming.insert("tracestate", HeaderValue::from_static("t@vvvvvvvvvvvvvv=1"));
/// let cx = extract(&incoming).into_context(&Context::new());
///
/// let mut outgoing = HeaderMap::new();
/// inject_context(&cx, &mut outgoing);
/// assert_eq!(outgoing["tracestate"], "t@vvvvvvvvvvvvvv=1");
/// ```
pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    inject_trace_context(cx, headers);
    inject_baggage(cx, headers);
}

/// The `traceparent` and `tracestate` half of [`inject_context`] (no
/// `baggage`), for `OTEL_PROPAGATORS=tracecontext`.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use opentelemetry::Context;
/// use telemetry_init_propagation::{extract, inject_trace_context};
///
/// let mut incoming = HeaderMap::new();
/// incoming.insert("traceparent", HeaderValue::from_static(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02"));
/// incoming.insert("baggage", HeaderValue::from_static("user=jane"));
/// let cx = extract(&incoming).into_context(&Context::new());
///
/// let mut outgoing = HeaderMap::new();
/// inject_trace_context(&cx, &mut outgoing);
/// assert_eq!(outgoing["traceparent"], incoming["traceparent"]);
/// assert!(outgoing.get("baggage").is_none());
/// ```
pub fn inject_trace_context(cx: &Context, headers: &mut HeaderMap) {
    let span = cx.span();
    let sc = span.span_context();
    inject(sc, None, headers);
    if let Some(tp) = traceparent_for(cx, sc) {
        headers.insert(TRACEPARENT, tp.to_header_value());
    }
    if let Some(v) = raw_tracestate_for(cx, sc).and_then(Tracestate::to_header_value) {
        headers.insert(TRACESTATE, v);
    }
}

/// The `baggage` half of [`inject_context`], for `OTEL_PROPAGATORS=baggage`.
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::{baggage::BaggageExt, Context, KeyValue};
/// use telemetry_init_propagation::inject_baggage;
///
/// let cx = Context::new().with_baggage([KeyValue::new("user", "jane doe")]);
/// let mut outgoing = HeaderMap::new();
/// inject_baggage(&cx, &mut outgoing);
/// assert_eq!(outgoing["baggage"], "user=jane%20doe");
/// assert!(outgoing.get("traceparent").is_none());
/// ```
pub fn inject_baggage(cx: &Context, headers: &mut HeaderMap) {
    inject(&SpanContext::empty_context(), Some(cx.baggage()), headers);
}

/// The `traceparent` for `sc` in `cx`: the defined flags of `sc`, plus the
/// remote parent's random flag when `sc` continues that trace.
pub(crate) fn traceparent_for(cx: &Context, sc: &SpanContext) -> Option<Traceparent> {
    let mut tp = Traceparent::from_span_context(sc)?;
    if cx
        .get::<RemoteParent>()
        .is_some_and(|remote| remote.random && remote.trace_id == sc.trace_id())
    {
        tp.flags =
            opentelemetry::trace::TraceFlags::new((tp.flags.to_u8() | FLAG_RANDOM) & KNOWN_FLAGS);
    }
    Some(tp)
}

/// The raw incoming tracestate to forward for `sc`, if `sc` carries none of
/// its own and belongs to the same trace.
pub(crate) fn raw_tracestate_for<'a>(cx: &'a Context, sc: &SpanContext) -> Option<&'a Tracestate> {
    // `TraceState` normalizes an empty list to `NONE`, so this is an exact
    // emptiness test without formatting the header.
    if !sc.is_valid() || *sc.trace_state() != TraceState::NONE {
        return None;
    }
    cx.get::<RemoteParent>()
        .filter(|raw| raw.trace_id == sc.trace_id())
        .and_then(|raw| raw.tracestate.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags};

    const TP: &str = "00-12345678901234567890123456789012-1234567890123456-00";
    const TID: &str = "12345678901234567890123456789012";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn trace_id(e: &Extracted) -> Option<String> {
        e.span_context.as_ref().map(|sc| sc.trace_id().to_string())
    }

    fn tracestate(e: &Extracted) -> Option<&str> {
        e.tracestate.as_ref().map(|t| t.as_str())
    }

    // Ports of the W3C trace-context test-suite scenarios, at header level.

    #[test]
    fn both_missing() {
        let e = extract(&HeaderMap::new());
        assert!(e.span_context.is_none());
        assert_eq!(e.traceparent_error, Some(TraceparentError::Missing));
        assert!(e.baggage.is_none());
    }

    #[test]
    fn traceparent_without_tracestate() {
        let e = extract(&headers(&[("traceparent", TP)]));
        assert_eq!(trace_id(&e).as_deref(), Some(TID));
        assert!(e.span_context.unwrap().is_remote());
        assert_eq!(e.tracestate, None);
    }

    #[test]
    fn duplicated_traceparent_restarts() {
        let e = extract(&headers(&[
            (
                "traceparent",
                "00-12345678901234567890123456789011-1234567890123456-01",
            ),
            (
                "traceparent",
                "00-12345678901234567890123456789012-1234567890123456-01",
            ),
        ]));
        assert!(e.span_context.is_none());
        assert_eq!(e.traceparent_error, Some(TraceparentError::Repeated));
    }

    #[test]
    fn header_names_are_case_insensitive_and_exact() {
        // HeaderName lowercases on construction, as HTTP/1 parsers do.
        for name in ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
            let e = extract(&headers(&[(name, TP)]));
            assert_eq!(trace_id(&e).as_deref(), Some(TID));
        }
        for name in ["trace-parent", "trace.parent"] {
            assert!(extract(&headers(&[(name, TP)])).span_context.is_none());
        }
        for name in ["trace-state", "trace.state"] {
            let e = extract(&headers(&[("traceparent", TP), (name, "foo=1")]));
            assert_eq!(tracestate(&e), None);
        }
        for name in ["TraceState", "TrAcEsTaTe", "TRACESTATE"] {
            let e = extract(&headers(&[("traceparent", TP), (name, "foo=1")]));
            assert_eq!(tracestate(&e), Some("foo=1"));
        }
    }

    #[test]
    fn tracestate_without_traceparent_is_discarded() {
        let e = extract(&headers(&[("tracestate", "foo=1,bar=2")]));
        assert!(e.span_context.is_none());
        assert_eq!(e.tracestate, None);
    }

    #[test]
    fn tracestate_is_inherited_and_joined() {
        let e = extract(&headers(&[
            ("traceparent", TP),
            ("tracestate", "foo=1,bar=2"),
            ("tracestate", "rojo=1,congo=2"),
            ("tracestate", "baz=3"),
        ]));
        assert_eq!(tracestate(&e), Some("foo=1,bar=2,rojo=1,congo=2,baz=3"));
        let sc = e.span_context.unwrap();
        assert_eq!(
            sc.trace_state().header(),
            "foo=1,bar=2,rojo=1,congo=2,baz=3"
        );
    }

    #[test]
    fn empty_tracestate_headers() {
        let e = extract(&headers(&[("traceparent", TP), ("tracestate", "")]));
        assert_eq!(trace_id(&e).as_deref(), Some(TID));
        assert_eq!(tracestate(&e), None);
        for pairs in [
            [
                ("traceparent", TP),
                ("tracestate", "foo=1"),
                ("tracestate", ""),
            ],
            [
                ("traceparent", TP),
                ("tracestate", ""),
                ("tracestate", "foo=1"),
            ],
        ] {
            assert_eq!(tracestate(&extract(&headers(&pairs))), Some("foo=1"));
        }
    }

    #[test]
    fn invalid_tracestate_keeps_the_trace() {
        let e = extract(&headers(&[
            ("traceparent", TP),
            ("tracestate", "foo=1,bar="),
        ]));
        assert_eq!(trace_id(&e).as_deref(), Some(TID));
        assert_eq!(tracestate(&e), None);
        assert_eq!(e.tracestate_error, Some(TracestateError::InvalidValue(1)));
        assert_eq!(e.span_context.unwrap().trace_state().header(), "");
    }

    #[test]
    fn duplicated_tracestate_keys_keep_one_copy() {
        for pairs in [
            &[("traceparent", TP), ("tracestate", "foo=1,foo=2")][..],
            &[
                ("traceparent", TP),
                ("tracestate", "foo=1"),
                ("tracestate", "foo=2"),
            ][..],
        ] {
            let e = extract(&headers(pairs));
            assert_eq!(trace_id(&e).as_deref(), Some(TID));
            assert_eq!(tracestate(&e), Some("foo=1"));
            assert_eq!(e.tracestate_error, None);
            let mut out = HeaderMap::new();
            inject_context(&e.into_context(&Context::new()), &mut out);
            assert_eq!(out[TRACESTATE], "foo=1");
        }
    }

    #[test]
    fn invalid_traceparent_values_from_the_suite_restart() {
        for v in [
            "00-12345678901234567890123456789012-1234567890123456-01.",
            "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
            "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
            "ff-12345678901234567890123456789012-1234567890123456-01",
            ".0-12345678901234567890123456789012-1234567890123456-01",
            "0.-12345678901234567890123456789012-1234567890123456-01",
            "000-12345678901234567890123456789012-1234567890123456-01",
            "0000-12345678901234567890123456789012-1234567890123456-01",
            "0-12345678901234567890123456789012-1234567890123456-01",
            "00-00000000000000000000000000000000-1234567890123456-01",
            "00-.2345678901234567890123456789012-1234567890123456-01",
            "00-1234567890123456789012345678901.-1234567890123456-01",
            "00-123456789012345678901234567890123-1234567890123456-01",
            "00-1234567890123456789012345678901-1234567890123456-01",
            "00-12345678901234567890123456789012-0000000000000000-01",
            "00-12345678901234567890123456789012-.234567890123456-01",
            "00-12345678901234567890123456789012-123456789012345.-01",
            "00-12345678901234567890123456789012-12345678901234567-01",
            "00-12345678901234567890123456789012-123456789012345-01",
            "00-12345678901234567890123456789012-1234567890123456-.0",
            "00-12345678901234567890123456789012-1234567890123456-0.",
            "00-12345678901234567890123456789012-1234567890123456-001",
            "00-12345678901234567890123456789012-1234567890123456-1",
        ] {
            let e = extract(&headers(&[("traceparent", v), ("tracestate", "foo=1")]));
            assert!(e.span_context.is_none(), "{v}");
            assert!(e.traceparent_error.is_some(), "{v}");
            assert_eq!(e.tracestate, None, "{v}");
        }
    }

    #[test]
    fn valid_traceparent_values_from_the_suite() {
        for v in [
            "cc-12345678901234567890123456789012-1234567890123456-01",
            "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
            " 00-12345678901234567890123456789012-1234567890123456-01",
            "\t00-12345678901234567890123456789012-1234567890123456-01",
            "00-12345678901234567890123456789012-1234567890123456-01 ",
            "00-12345678901234567890123456789012-1234567890123456-01\t",
            "\t 00-12345678901234567890123456789012-1234567890123456-01 \t",
        ] {
            let e = extract(&headers(&[("traceparent", v)]));
            assert_eq!(trace_id(&e).as_deref(), Some(TID), "{v:?}");
        }
    }

    #[test]
    fn non_utf8_second_traceparent_still_counts_as_repeated() {
        let mut h = headers(&[("traceparent", TP)]);
        h.append(TRACEPARENT, HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(
            extract(&h).traceparent_error,
            Some(TraceparentError::Repeated)
        );
    }

    #[test]
    fn unrepresentable_tracestate_is_still_forwarded() {
        let key = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        let ts = format!("foo=1,{key}=1");
        let e = extract(&headers(&[("traceparent", TP), ("tracestate", &ts)]));
        assert_eq!(tracestate(&e), Some(ts.as_str()));
        let cx = e.into_context(&Context::new());
        let mut out = HeaderMap::new();
        inject_context(&cx, &mut out);
        assert_eq!(out[TRACESTATE], ts.as_str());
        assert_eq!(out[TRACEPARENT], TP);
    }

    #[test]
    fn raw_tracestate_is_not_forwarded_to_another_trace() {
        let key = format!("t@{}", "v".repeat(14));
        let e = extract(&headers(&[
            ("traceparent", TP),
            ("tracestate", &format!("{key}=1")),
        ]));
        let cx = e.into_context(&Context::new());
        let other = SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(7u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        let cx = cx.with_remote_span_context(other);
        let mut out = HeaderMap::new();
        inject_context(&cx, &mut out);
        assert!(out.get(TRACESTATE).is_none());
        assert!(out.get(TRACEPARENT).is_some());
    }

    #[test]
    fn inject_keeps_the_random_flag_and_replaces_old_values() {
        let tp =
            Traceparent::parse("00-12345678901234567890123456789012-1234567890123456-03").unwrap();
        let sc = tp.to_span_context(TraceState::NONE);
        let mut out = headers(&[("traceparent", TP), ("tracestate", "old=1")]);
        inject(&sc, None, &mut out);
        assert_eq!(out.get_all(TRACEPARENT).iter().count(), 1);
        assert_eq!(
            out[TRACEPARENT],
            "00-12345678901234567890123456789012-1234567890123456-03"
        );
        assert!(out.get(TRACESTATE).is_none());
    }

    #[test]
    fn inject_drops_trace_state_invalid_on_the_wire() {
        // TraceState accepts a non-ASCII value; the wire grammar does not.
        let ts = TraceState::from_key_value([("abc", "\u{e9}")]).unwrap();
        let sc = SpanContext::new(
            TraceId::from(1u128),
            SpanId::from(1u64),
            TraceFlags::SAMPLED,
            false,
            ts,
        );
        let mut out = HeaderMap::new();
        inject(&sc, None, &mut out);
        assert!(out.get(TRACESTATE).is_none());
    }

    #[test]
    fn inject_nothing_for_invalid_context() {
        let mut out = HeaderMap::new();
        inject(&SpanContext::empty_context(), None, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn baggage_round_trip_through_headers() {
        let e = extract(&headers(&[
            ("baggage", "user=jane%20doe;pii"),
            ("baggage", "region=eu"),
        ]));
        assert!(e.baggage_report.is_clean());
        let b = e.baggage.unwrap();
        assert_eq!(b.len(), 2);
        let mut out = HeaderMap::new();
        inject(&SpanContext::empty_context(), Some(&b), &mut out);
        let again = extract(&out).baggage.unwrap();
        assert_eq!(again.get("user").unwrap().as_str(), "jane doe");
        assert_eq!(again.get_with_metadata("user").unwrap().1.as_str(), "pii");
        assert_eq!(again.get("region").unwrap().as_str(), "eu");
    }

    #[test]
    fn empty_baggage_is_not_injected() {
        let mut out = HeaderMap::new();
        inject(
            &SpanContext::empty_context(),
            Some(&Baggage::new()),
            &mut out,
        );
        assert!(out.get(BAGGAGE).is_none());
    }
}
