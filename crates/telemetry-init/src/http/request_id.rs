//! The request-id header: the one header name the layers read a request id
//! from, echo it on the response under, and forward it under on outgoing
//! calls (the stdout JSON field and the span attribute are always
//! `request_id`).
//!
//! # Example
//!
//! ```no_run
//! # fn main() -> Result<(), telemetry_init::Error> {
//! // Or TELEMETRY_REQUEST_ID_HEADER=x-correlation-id, which wins.
//! let _telemetry = telemetry_init::builder()
//!     .request_id_header("x-correlation-id")
//!     .install()?;
//! assert_eq!(telemetry_init::http::request_id::header(), "x-correlation-id");
//! # Ok(()) }
//! ```
//!
//! The value is untrusted: a request id longer than
//! [`MAX_REQUEST_ID_LEN`]
//! bytes, or with anything but visible ASCII, is replaced by a generated id
//! ([`RequestId::sanitize`]), and that is what is echoed, forwarded and
//! logged.
//!
//! The name is one process-wide setting read with one atomic load (none when
//! a layer is given its own name in code): no allocation, no lock.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};

use telemetry_init_propagation::request_id::MAX_REQUEST_ID_LEN;
pub use telemetry_init_propagation::{RequestId, X_REQUEST_ID};

static GLOBAL: OnceLock<HeaderName> = OnceLock::new();
static DEFAULT: HeaderName = X_REQUEST_ID;

/// The request-id header the layers and `send_traced()` use when not told
/// otherwise: what [`install`](crate::install) resolved from
/// `TELEMETRY_REQUEST_ID_HEADER` or
/// [`Builder::request_id_header`](crate::Builder::request_id_header), or
/// [`X_REQUEST_ID`] (`x-request-id`) before that.
///
/// ```
/// // Nothing installed in this doctest: the default.
/// assert_eq!(telemetry_init::http::request_id::header(), "x-request-id");
/// ```
pub fn header() -> &'static HeaderName {
    GLOBAL.get().unwrap_or(&DEFAULT)
}

/// Makes `name` the one [`header`] returns; like the redaction policy, only
/// the first call (the one `install()` makes) counts.
pub(crate) fn set_global(name: HeaderName) {
    let _ = GLOBAL.set(name);
}

/// Headers that must never carry a request id: the propagation formats
/// (an outgoing call would overwrite its own trace context), credentials
/// (they would be logged and exported), and headers that frame or route
/// the message (echoing into them would corrupt the response).
const RESERVED: &[&str] = &[
    "traceparent",
    "tracestate",
    "baggage",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "host",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

/// Prefixes of reserved families: `content-length`, `content-type`, …;
/// `grpc-timeout`, `grpc-status`, ….
const RESERVED_PREFIXES: &[&str] = &["content-", "grpc-"];

/// Parses a configured header name: a valid HTTP header name (compared
/// lowercased) that is not reserved.
pub(crate) fn parse(name: &str) -> Result<HeaderName, &'static str> {
    let header = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| "not a valid HTTP header name")?;
    let n = header.as_str();
    if RESERVED.contains(&n) || RESERVED_PREFIXES.iter().any(|p| n.starts_with(p)) {
        return Err("a header with another meaning");
    }
    Ok(header)
}

/// Sets `name: id` on `headers`, replacing what was there, when `id` is a
/// request id [`RequestId::sanitize`] would accept (one of ours always is;
/// the `request_id` field of a span of your own might not be, and is then
/// not sent).
pub(crate) fn insert(headers: &mut HeaderMap, name: &HeaderName, id: &str) {
    if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert(name.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_names() {
        assert_eq!(parse("X-Correlation-ID").unwrap(), "x-correlation-id");
        assert_eq!(parse(" x-request-id ").unwrap(), X_REQUEST_ID);
        assert!(parse("has space").is_err());
        assert!(parse("").is_err());
        for reserved in [
            "traceparent",
            "Authorization",
            "cookie",
            "content-length",
            "Content-Type",
            "grpc-timeout",
            "host",
        ] {
            assert!(parse(reserved).is_err(), "{reserved}");
        }
    }

    #[test]
    fn only_valid_ids_are_sent() {
        let name = HeaderName::from_static("x-correlation-id");
        let mut h = HeaderMap::new();
        insert(&mut h, &name, &"a".repeat(MAX_REQUEST_ID_LEN + 1));
        insert(&mut h, &name, "two words");
        insert(&mut h, &name, "");
        assert!(h.is_empty(), "{h:?}");
        insert(&mut h, &name, "corr-1");
        assert_eq!(h[&name], "corr-1");
        assert_eq!(h.len(), 1);
    }
}
