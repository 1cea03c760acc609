//! Which formats are read and written: the `OTEL_PROPAGATORS` list as a set
//! of flags, and extraction and injection that honour it.
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use opentelemetry::Context;
//! use telemetry_init_propagation::{Propagators, extract_with, inject_with};
//!
//! let mut incoming = HeaderMap::new();
//! incoming.insert("traceparent", HeaderValue::from_static(
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
//! incoming.insert("baggage", HeaderValue::from_static("user=jane"));
//!
//! // `OTEL_PROPAGATORS=tracecontext`: the trace continues, baggage is not read.
//! let only_tc = Propagators::parse("tracecontext").unwrap();
//! let extracted = extract_with(&incoming, only_tc);
//! assert!(extracted.span_context.is_some());
//! assert!(extracted.baggage.is_none());
//!
//! // `OTEL_PROPAGATORS=none`: nothing is read, nothing is written.
//! let none = Propagators::parse("none").unwrap();
//! let extracted = extract_with(&incoming, none);
//! assert!(extracted.span_context.is_none() && extracted.baggage.is_none());
//! let mut outgoing = HeaderMap::new();
//! inject_with(&extract_with(&incoming, Propagators::W3C).into_context(&Context::new()), &mut outgoing, none);
//! assert!(outgoing.is_empty());
//! ```
//!
//! The set is one byte: checking it on a request is a bit test, with no
//! allocation and no lock.

use std::fmt;

use http::{HeaderMap, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};

use crate::headers::{
    BAGGAGE, Extracted, TRACEPARENT, TRACESTATE, extract_from_values, inject_baggage,
    inject_trace_context,
};
use crate::propagator::{W3cBaggagePropagator, W3cTraceContextPropagator};

/// A set of propagation formats, as named in `OTEL_PROPAGATORS`.
///
/// ```
/// use telemetry_init_propagation::Propagators;
///
/// let set = Propagators::parse("tracecontext, baggage").unwrap();
/// assert_eq!(set, Propagators::W3C);
/// assert!(set.contains(Propagators::BAGGAGE));
/// assert_eq!(set.to_string(), "tracecontext,baggage");
/// assert_eq!(Propagators::parse("none").unwrap(), Propagators::NONE);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Propagators(u8);

impl Propagators {
    /// No format: nothing is extracted or injected (`none`).
    pub const NONE: Self = Self(0);
    /// W3C Trace Context, `traceparent` and `tracestate` (`tracecontext`).
    pub const TRACE_CONTEXT: Self = Self(1);
    /// W3C Baggage, `baggage` (`baggage`).
    pub const BAGGAGE: Self = Self(1 << 1);
    /// The default: `tracecontext,baggage`.
    pub const W3C: Self = Self(Self::TRACE_CONTEXT.0 | Self::BAGGAGE.0);

    const ALL: [(Self, &'static str); 2] = [
        (Self::TRACE_CONTEXT, "tracecontext"),
        (Self::BAGGAGE, "baggage"),
    ];

    /// The names accepted by [`Propagators::parse`] in this build.
    ///
    /// ```
    /// use telemetry_init_propagation::Propagators;
    ///
    /// assert!(Propagators::accepted().contains(&"tracecontext"));
    /// assert!(Propagators::accepted().contains(&"none"));
    /// ```
    pub fn accepted() -> &'static [&'static str] {
        &["tracecontext", "baggage", "none"]
    }

    /// Parses an `OTEL_PROPAGATORS` value: comma-separated names, case and
    /// surrounding spaces ignored, repeats allowed. `none` adds nothing (the
    /// specification: "no automatically configured propagator"), so `none`
    /// alone, or an empty list, is [`Propagators::NONE`].
    ///
    /// A name this crate cannot honour is an error that names it, never
    /// silently ignored. `b3`, `b3multi` and `jaeger` are refused with the
    /// reason: no maintained implementation supports `opentelemetry` 0.33
    /// (`opentelemetry-zipkin` 0.33 deprecates its B3 propagator with the
    /// exporter; `opentelemetry-jaeger-propagator` stops at 0.32).
    ///
    /// ```
    /// use telemetry_init_propagation::Propagators;
    ///
    /// let set = Propagators::parse(" TraceContext ,baggage").unwrap();
    /// assert_eq!(set, Propagators::W3C);
    /// let err = Propagators::parse("tracecontext,jaeger").unwrap_err();
    /// assert_eq!(err.name(), "jaeger");
    /// assert!(err.to_string().contains("jaeger"));
    /// ```
    pub fn parse(value: &str) -> Result<Self, UnsupportedPropagator> {
        let mut set = Self::NONE;
        for name in value.split(',') {
            let name = name.trim();
            if name.is_empty() || name.eq_ignore_ascii_case("none") {
                continue;
            }
            let found = Self::ALL
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(name))
                .map(|(p, _)| *p);
            match found {
                Some(p) => set = set | p,
                None => {
                    return Err(UnsupportedPropagator {
                        name: name.chars().take(64).collect(),
                    });
                }
            }
        }
        Ok(set)
    }

    /// Whether every format of `other` is in this set.
    ///
    /// ```
    /// use telemetry_init_propagation::Propagators;
    ///
    /// assert!(Propagators::W3C.contains(Propagators::TRACE_CONTEXT));
    /// assert!(!Propagators::TRACE_CONTEXT.contains(Propagators::W3C));
    /// ```
    #[inline]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any format of `other` is in this set.
    ///
    /// ```
    /// use telemetry_init_propagation::Propagators;
    ///
    /// assert!(Propagators::W3C.intersects(Propagators::BAGGAGE));
    /// assert!(!Propagators::NONE.intersects(Propagators::W3C));
    /// ```
    #[inline]
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether the set is empty (`none`).
    ///
    /// ```
    /// use telemetry_init_propagation::Propagators;
    ///
    /// assert!(Propagators::NONE.is_empty());
    /// ```
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set as one byte (bits as the constants), e.g. to keep it in an
    /// atomic.
    ///
    /// ```
    /// use telemetry_init_propagation::Propagators;
    ///
    /// let set = Propagators::W3C;
    /// assert_eq!(Propagators::from_bits(set.bits()), set);
    /// ```
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set from [`Propagators::bits`]; unknown bits are dropped.
    ///
    /// ```
    /// use telemetry_init_propagation::Propagators;
    ///
    /// assert_eq!(Propagators::from_bits(0xff), Propagators::W3C);
    /// ```
    #[inline]
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits & Self::W3C.0)
    }

    /// One `opentelemetry` propagator doing the same, for
    /// `opentelemetry::global::set_text_map_propagator` (so that code using
    /// the global propagator agrees with the layers).
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use telemetry_init_propagation::Propagators;
    ///
    /// let p = Propagators::TRACE_CONTEXT.text_map_propagator();
    /// // The composite's fields come out of a hash set: in no fixed order.
    /// let mut fields: Vec<_> = p.fields().collect();
    /// fields.sort();
    /// assert_eq!(fields, ["traceparent", "tracestate"]);
    /// ```
    pub fn text_map_propagator(self) -> TextMapCompositePropagator {
        let mut out: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
        if self.contains(Self::TRACE_CONTEXT) {
            out.push(Box::new(W3cTraceContextPropagator::new()));
        }
        if self.contains(Self::BAGGAGE) {
            out.push(Box::new(W3cBaggagePropagator::new()));
        }
        TextMapCompositePropagator::new(out)
    }
}

impl Default for Propagators {
    /// [`Propagators::W3C`], the `OTEL_PROPAGATORS` default.
    fn default() -> Self {
        Self::W3C
    }
}

impl std::ops::BitOr for Propagators {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Display for Propagators {
    /// The `OTEL_PROPAGATORS` form: names joined with `,`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (p, name) in Self::ALL {
            if self.contains(p) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Propagators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Propagators({self})")
    }
}

/// A name in `OTEL_PROPAGATORS` that this build cannot honour.
///
/// ```
/// use telemetry_init_propagation::Propagators;
///
/// let e = Propagators::parse("xray").unwrap_err();
/// assert_eq!(e.name(), "xray");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported propagator {name:?}{}", why(name))]
pub struct UnsupportedPropagator {
    name: String,
}

impl UnsupportedPropagator {
    /// The name as given (at most 64 characters of it).
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn why(name: &str) -> &'static str {
    match name.to_ascii_lowercase().as_str() {
        "jaeger" => {
            ": no maintained Jaeger propagator supports opentelemetry 0.33 (opentelemetry-jaeger-propagator stops at 0.32)"
        }
        "b3" | "b3multi" => {
            ": no maintained B3 propagator supports opentelemetry 0.33 (opentelemetry-zipkin 0.33 deprecates its propagator with the Zipkin exporter)"
        }
        "xray" | "ottrace" => ": no maintained implementation supports opentelemetry 0.33",
        _ => "",
    }
}

/// [`crate::extract`] limited to the formats in `set`: `traceparent` and
/// `tracestate` only with [`Propagators::TRACE_CONTEXT`], `baggage` only with
/// [`Propagators::BAGGAGE`]. With [`Propagators::NONE`] nothing is read: no
/// trace is continued and no baggage is taken.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use telemetry_init_propagation::{Propagators, extract_with};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("baggage", HeaderValue::from_static("user=jane"));
/// assert!(extract_with(&headers, Propagators::BAGGAGE).baggage.is_some());
/// assert!(extract_with(&headers, Propagators::TRACE_CONTEXT).baggage.is_none());
/// ```
pub fn extract_with(headers: &HeaderMap, set: Propagators) -> Extracted {
    let tc = set.contains(Propagators::TRACE_CONTEXT);
    let bg = set.contains(Propagators::BAGGAGE);
    let values = |name, on: bool| {
        headers
            .get_all(name)
            .iter()
            .filter(move |_| on)
            .map(HeaderValue::as_bytes)
    };
    extract_from_values(
        values(TRACEPARENT, tc),
        values(TRACESTATE, tc),
        values(BAGGAGE, bg),
    )
}

/// [`crate::inject_context`] limited to the formats in `set`.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use opentelemetry::Context;
/// use telemetry_init_propagation::{Propagators, extract, inject_with};
///
/// let mut incoming = HeaderMap::new();
/// incoming.insert("traceparent", HeaderValue::from_static(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
/// incoming.insert("baggage", HeaderValue::from_static("user=jane"));
/// let cx = extract(&incoming).into_context(&Context::new());
///
/// let mut outgoing = HeaderMap::new();
/// inject_with(&cx, &mut outgoing, Propagators::BAGGAGE);
/// assert_eq!(outgoing["baggage"], "user=jane");
/// assert!(outgoing.get("traceparent").is_none());
/// ```
pub fn inject_with(cx: &Context, headers: &mut HeaderMap, set: Propagators) {
    if set.contains(Propagators::TRACE_CONTEXT) {
        inject_trace_context(cx, headers);
    }
    if set.contains(Propagators::BAGGAGE) {
        inject_baggage(cx, headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        for (text, set, shown) in [
            ("", Propagators::NONE, "none"),
            ("none", Propagators::NONE, "none"),
            ("tracecontext", Propagators::TRACE_CONTEXT, "tracecontext"),
            ("baggage", Propagators::BAGGAGE, "baggage"),
            (
                "tracecontext,baggage",
                Propagators::W3C,
                "tracecontext,baggage",
            ),
            (
                "baggage , TRACECONTEXT,none",
                Propagators::W3C,
                "tracecontext,baggage",
            ),
            (
                "tracecontext,tracecontext",
                Propagators::TRACE_CONTEXT,
                "tracecontext",
            ),
        ] {
            let got = Propagators::parse(text).unwrap();
            assert_eq!(got, set, "{text:?}");
            assert_eq!(got.to_string(), shown, "{text:?}");
        }
        for name in [
            "jaeger", "b3", "b3multi", "xray", "ottrace", "w3c", "b3 multi",
        ] {
            let e = Propagators::parse(&format!("tracecontext,{name}")).unwrap_err();
            assert_eq!(e.name(), name);
            assert!(e.to_string().contains(name), "{e}");
        }
        assert!(
            Propagators::parse("Jaeger")
                .unwrap_err()
                .to_string()
                .contains("0.32")
        );
        assert!(
            Propagators::parse("b3multi")
                .unwrap_err()
                .to_string()
                .contains("deprecates")
        );
        // A huge value is not echoed whole.
        let long = "x".repeat(10_000);
        assert_eq!(Propagators::parse(&long).unwrap_err().name().len(), 64);
    }

    fn incoming() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-12345678901234567890123456789012-1234567890123456-03"),
        );
        h.insert(TRACESTATE, HeaderValue::from_static("foo=1"));
        h.insert(BAGGAGE, HeaderValue::from_static("user=jane"));
        h
    }

    #[test]
    fn extract_reads_only_the_chosen_formats() {
        let h = incoming();
        for (set, trace, baggage) in [
            (Propagators::NONE, false, false),
            (Propagators::TRACE_CONTEXT, true, false),
            (Propagators::BAGGAGE, false, true),
            (Propagators::W3C, true, true),
        ] {
            let e = extract_with(&h, set);
            assert_eq!(e.span_context.is_some(), trace, "{set}");
            assert_eq!(e.tracestate.is_some(), trace, "{set}");
            assert_eq!(e.baggage.is_some(), baggage, "{set}");
            // Nothing of an unread format reaches the context either.
            let cx = e.into_context(&Context::new());
            use opentelemetry::baggage::BaggageExt;
            use opentelemetry::trace::TraceContextExt;
            assert_eq!(cx.has_active_span(), trace, "{set}");
            assert_eq!(cx.baggage().is_empty(), !baggage, "{set}");
        }
    }

    #[test]
    fn inject_writes_only_the_chosen_formats() {
        let cx = extract_with(&incoming(), Propagators::W3C).into_context(&Context::new());
        for (set, names) in [
            (Propagators::NONE, &[][..]),
            (
                Propagators::TRACE_CONTEXT,
                &["traceparent", "tracestate"][..],
            ),
            (Propagators::BAGGAGE, &["baggage"][..]),
            (
                Propagators::W3C,
                &["baggage", "traceparent", "tracestate"][..],
            ),
        ] {
            let mut out = HeaderMap::new();
            inject_with(&cx, &mut out, set);
            let mut got: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
            got.sort_unstable();
            assert_eq!(got, names, "{set}");
        }
    }

    #[test]
    fn bits_round_trip() {
        for bits in 0u8..=0x03 {
            let set = Propagators::from_bits(bits);
            assert_eq!(set.bits(), bits);
            assert_eq!(Propagators::parse(&set.to_string()), Ok(set));
        }
    }
}
