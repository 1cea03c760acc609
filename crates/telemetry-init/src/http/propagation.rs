//! What the layers read from requests and write on outgoing calls:
//! `OTEL_PROPAGATORS` and the edge option `TELEMETRY_TRUST_INCOMING_CONTEXT`.
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use telemetry_init::http::{Propagators, ServerLayer};
//!
//! # fn app() -> Result<Router, telemetry_init::Error> {
//! // `install()` resolves OTEL_PROPAGATORS and TELEMETRY_TRUST_INCOMING_CONTEXT
//! // once; every layer and `send_traced()` follow them.
//! let _telemetry = telemetry_init::install()?;
//!
//! // A public gateway: never continue a caller's trace or read its baggage;
//! // start a new trace and keep the caller's context as a span link.
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hi" }))
//!     .layer(ServerLayer::new().trust_incoming_context(false));
//!
//! // Or choose the formats of one layer in code.
//! let internal = ServerLayer::new().propagators(Propagators::TRACE_CONTEXT);
//! # let _ = internal; Ok(app) }
//! ```
//!
//! The settings are one byte, read with one relaxed atomic load per request
//! (none when a layer sets both in code): no allocation, no lock.

use std::sync::atomic::{AtomicU8, Ordering};

pub use telemetry_init_propagation::Propagators;

/// Bit set once [`Propagation::set_global`] ran.
const SET: u8 = 0x80;
/// Bit set when incoming context is not trusted.
const UNTRUSTED: u8 = 0x40;

static GLOBAL: AtomicU8 = AtomicU8::new(0);

/// The propagation settings of the layers: which formats are extracted and
/// injected, and whether a server continues the caller's trace.
///
/// ```
/// use telemetry_init::http::{Propagation, Propagators};
///
/// let p = Propagation::default();
/// assert_eq!(p.propagators(), Propagators::W3C);
/// assert!(p.trusts_incoming_context());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    propagators: Propagators,
    trust_incoming_context: bool,
}

impl Default for Propagation {
    /// `tracecontext,baggage`, incoming context trusted.
    fn default() -> Self {
        Self {
            propagators: Propagators::W3C,
            trust_incoming_context: true,
        }
    }
}

impl Propagation {
    /// Settings with these formats and this trust.
    ///
    /// ```
    /// use telemetry_init::http::{Propagation, Propagators};
    ///
    /// let edge = Propagation::new(Propagators::W3C, false);
    /// assert!(!edge.trusts_incoming_context());
    /// ```
    pub const fn new(propagators: Propagators, trust_incoming_context: bool) -> Self {
        Self {
            propagators,
            trust_incoming_context,
        }
    }

    /// The formats extracted and injected.
    pub const fn propagators(self) -> Propagators {
        self.propagators
    }

    /// Whether a server continues the caller's trace and reads its baggage
    /// (`true`), or starts a new trace linked to the caller's context and
    /// ignores its baggage (`false`, for public edges).
    pub const fn trusts_incoming_context(self) -> bool {
        self.trust_incoming_context
    }

    /// The process-wide settings the layers and `send_traced()` use when not
    /// told otherwise: what [`install`](crate::install) resolved from
    /// `OTEL_PROPAGATORS` and `TELEMETRY_TRUST_INCOMING_CONTEXT`, or the
    /// [default](Propagation::default) before that.
    ///
    /// ```
    /// use telemetry_init::http::Propagation;
    ///
    /// let _now = Propagation::global();
    /// ```
    pub fn global() -> Self {
        Self::from_bits(GLOBAL.load(Ordering::Relaxed))
    }

    /// Sets the process-wide settings. [`install`](crate::install) calls it;
    /// call it yourself only when you build the tracing stack without
    /// `install()`. Layers read it on every request, so it also applies to
    /// layers made before.
    ///
    /// ```
    /// use telemetry_init::http::{Propagation, Propagators};
    ///
    /// Propagation::new(Propagators::TRACE_CONTEXT, true).set_global();
    /// assert_eq!(Propagation::global().propagators(), Propagators::TRACE_CONTEXT);
    /// # Propagation::default().set_global();
    /// ```
    pub fn set_global(self) {
        GLOBAL.store(self.to_bits(), Ordering::Relaxed);
    }

    fn to_bits(self) -> u8 {
        SET | self.propagators.bits()
            | if self.trust_incoming_context {
                0
            } else {
                UNTRUSTED
            }
    }

    fn from_bits(bits: u8) -> Self {
        if bits & SET == 0 {
            return Self::default();
        }
        Self {
            propagators: Propagators::from_bits(bits),
            trust_incoming_context: bits & UNTRUSTED == 0,
        }
    }
}

/// A layer's own choices, each falling back to [`Propagation::global`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Overrides {
    pub(crate) propagators: Option<Propagators>,
    pub(crate) trust_incoming_context: Option<bool>,
}

impl Overrides {
    #[inline]
    pub(crate) fn resolve(self) -> Propagation {
        match (self.propagators, self.trust_incoming_context) {
            (Some(p), Some(t)) => Propagation::new(p, t),
            (p, t) => {
                let g = Propagation::global();
                Propagation::new(
                    p.unwrap_or(g.propagators),
                    t.unwrap_or(g.trust_incoming_context),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        for bits in 0u8..=0x0f {
            for trust in [true, false] {
                let p = Propagation::new(Propagators::from_bits(bits), trust);
                assert_eq!(Propagation::from_bits(p.to_bits()), p);
            }
        }
        assert_eq!(Propagation::from_bits(0), Propagation::default());
    }

    #[test]
    fn overrides_win_over_the_global() {
        let o = Overrides {
            propagators: Some(Propagators::NONE),
            trust_incoming_context: Some(false),
        };
        assert_eq!(o.resolve(), Propagation::new(Propagators::NONE, false));
        let only_trust = Overrides {
            propagators: None,
            trust_incoming_context: Some(false),
        };
        assert_eq!(
            only_trust.resolve().propagators(),
            Propagation::global().propagators()
        );
        assert!(!only_trust.resolve().trusts_incoming_context());
    }
}
