//! The trace context a smoke request carries: a fresh random trace id and
//! parent span id (sampled), a `tracestate` entry, a baggage entry and a
//! request id (`X-Request-ID` unless `TELEMETRY_REQUEST_ID_HEADER` names another header), all unique to the request so the telemetry it causes can
//! be found again.

use reqwest::RequestBuilder;
use reqwest::header::HeaderName;
use telemetry_init_propagation::X_REQUEST_ID;

/// The header the service reads, echoes and forwards the request id under:
/// `TELEMETRY_REQUEST_ID_HEADER` (which the service under test inherits from
/// this process), else `x-request-id`. A value the library would refuse
/// stops the service at start-up with its own error, so it is not judged
/// here; one that is not a header name at all falls back to the default.
pub(super) fn request_id_header() -> &'static HeaderName {
    static HEADER: std::sync::OnceLock<HeaderName> = std::sync::OnceLock::new();
    HEADER.get_or_init(|| {
        std::env::var("TELEMETRY_REQUEST_ID_HEADER")
            .ok()
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .and_then(|v| HeaderName::from_bytes(v.as_bytes()).ok())
            .unwrap_or(X_REQUEST_ID)
    })
}

/// How reports name the request-id header: `X-Request-ID` as users write
/// it when it is the default, else the configured name.
pub(super) fn request_id_header_name() -> &'static str {
    let h = request_id_header();
    if *h == X_REQUEST_ID {
        "X-Request-ID"
    } else {
        h.as_str()
    }
}

/// `tracestate` key the smoke test adds (a valid W3C simple key).
pub(super) const TRACESTATE_KEY: &str = "smoke";
/// Baggage key the smoke test adds.
pub(super) const BAGGAGE_KEY: &str = "smoke.run";

/// One request's injected context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SmokeContext {
    /// 32 lowercase hex digits, never all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits: the span id the service must use as parent.
    pub parent_span_id: String,
    /// The value of our `tracestate` entry.
    pub tracestate_value: String,
    /// The value of our baggage entry.
    pub baggage_value: String,
    /// The request id sent (under [`request_id_header`]).
    pub request_id: String,
}

fn random_hex(len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(len);
    out
}

impl SmokeContext {
    /// A fresh random context.
    pub(super) fn fresh() -> SmokeContext {
        let nonzero = |len| loop {
            let h = random_hex(len);
            if h.chars().any(|c| c != '0') {
                break h;
            }
        };
        let run = random_hex(12);
        SmokeContext {
            trace_id: nonzero(32),
            parent_span_id: nonzero(16),
            tracestate_value: format!("t{run}"),
            baggage_value: format!("b{run}"),
            request_id: format!("smoke-{}", random_hex(20)),
        }
    }

    /// The `traceparent` header: version 00, sampled.
    pub(super) fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.parent_span_id)
    }

    /// The `tracestate` entry `smoke=…`.
    pub(super) fn tracestate(&self) -> String {
        format!("{TRACESTATE_KEY}={}", self.tracestate_value)
    }

    /// The `baggage` entry `smoke.run=…`.
    pub(super) fn baggage(&self) -> String {
        format!("{BAGGAGE_KEY}={}", self.baggage_value)
    }

    /// Adds the four headers to a request.
    pub(super) fn apply(&self, req: RequestBuilder) -> RequestBuilder {
        req.header("traceparent", self.traceparent())
            .header("tracestate", self.tracestate())
            .header("baggage", self.baggage())
            .header(request_id_header(), &self.request_id)
    }
}

/// Whether a `tracestate` header value holds our entry for `ctx`.
pub(super) fn tracestate_has(header: &str, ctx: &SmokeContext) -> bool {
    header
        .split(',')
        .any(|m| m.trim() == ctx.tracestate().as_str())
}

/// Whether a `baggage` header value holds our entry for `ctx` (properties
/// after `;` and whitespace around members are allowed).
pub(super) fn baggage_has(header: &str, ctx: &SmokeContext) -> bool {
    header.split(',').any(|m| {
        let kv = m.split(';').next().unwrap_or("");
        match kv.split_once('=') {
            Some((k, v)) => k.trim() == BAGGAGE_KEY && v.trim() == ctx.baggage_value,
            None => false,
        }
    })
}

/// Percent-encodes a query-string value (RFC 3986 unreserved kept).
pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses a duration such as `120s`, `2m`, `500ms` (humantime syntax; a bare
/// number is seconds).
pub(super) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration {s:?} ({e}); use e.g. 120s, 2m, 500ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_contexts_are_valid_and_distinct() {
        let a = SmokeContext::fresh();
        let b = SmokeContext::fresh();
        assert_ne!(a, b);
        let tp = a.traceparent();
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[1].len(), 32);
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
        assert!(tp[3..].chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert!(tracestate_has(&format!("other=1, {}", a.tracestate()), &a));
        assert!(!tracestate_has(&b.tracestate(), &a));
        assert!(baggage_has(
            &format!("k=v,{} ;prop=1", a.baggage()).replace(';', " ;"),
            &a
        ));
        assert!(!baggage_has("k=v", &a));
    }

    #[test]
    fn helpers() {
        assert_eq!(url_encode("{a=\"b\"} |"), "%7Ba%3D%22b%22%7D%20%7C");
        assert_eq!(parse_duration("120s").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("7").unwrap().as_secs(), 7);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }
}
