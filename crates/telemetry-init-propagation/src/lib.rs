//! Exact W3C Trace Context, W3C Baggage and request-id handling for
//! telemetry-init.
//!
//! Everything here is pure, bounded in work and memory, and never panics on
//! any input. Where behaviour differs from `opentelemetry`'s stock
//! `TraceContextPropagator`, a comment at that spot says why; in short, the
//! stock propagator fails 9 of the 41 tests of the W3C Trace Context suite
//! (12 when only the first header value is read), and this crate passes all
//! of them (see `CONFORMANCE.md`).
//!
//! * [`Traceparent`]: exact `traceparent` parsing (version `00` is exactly 55
//!   characters, future versions accepted, repeated headers invalid, every
//!   defined flag bit kept, including the level-2 random flag, and no other).
//! * [`Tracestate`]: `tracestate` validated with the current key grammar;
//!   repeated headers joined; a repeated key keeps its first member; more
//!   than 32 members or any invalid member drops the whole list.
//! * [`W3cBaggage`]: baggage with limits, percent-decoding and properties.
//! * [`RequestId`]: `x-request-id` sanitizing and generation.
//! * [`extract`] / [`inject`] / [`inject_context`]: the header-level API.
//! * [`Propagators`] / [`extract_with`] / [`inject_with`]: the same, limited
//!   to the formats named in `OTEL_PROPAGATORS` (`tracecontext`, `baggage`,
//!   `none`).
//! * [`W3cTraceContextPropagator`] / [`W3cBaggagePropagator`] /
//!   [`propagator()`]: for `opentelemetry::global::set_text_map_propagator`.
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use opentelemetry::Context;
//! use telemetry_init_propagation::{extract, inject_context};
//!
//! let mut incoming = HeaderMap::new();
//! incoming.insert("traceparent", HeaderValue::from_static(
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
//! let cx = extract(&incoming).into_context(&Context::new());
//!
//! let mut outgoing = HeaderMap::new();
//! inject_context(&cx, &mut outgoing);
//! assert_eq!(outgoing["traceparent"], incoming["traceparent"]);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod baggage;
mod headers;
mod propagator;
pub mod propagators;
pub mod request_id;
pub mod traceparent;
pub mod tracestate;

pub use baggage::{
    BaggageError, BaggageLimits, BaggageMember, BaggageProperty, BaggageReport, W3cBaggage,
};
pub use headers::{
    BAGGAGE, Extracted, TRACEPARENT, TRACESTATE, X_REQUEST_ID, extract, extract_from_values,
    inject, inject_baggage, inject_context, inject_trace_context,
};
pub use propagator::{W3cBaggagePropagator, W3cTraceContextPropagator, propagator};
pub use propagators::{Propagators, UnsupportedPropagator, extract_with, inject_with};
pub use request_id::{RequestId, sanitize};
pub use traceparent::{Traceparent, TraceparentError};
pub use tracestate::{Tracestate, TracestateError};
