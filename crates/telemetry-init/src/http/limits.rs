//! Built-in bounds on the values the middleware takes from a request.
//!
//! Every value a client chooses (path, query, `Host`, `User-Agent`, a
//! non-standard method, gRPC names, baggage copied into attributes) is cut
//! to at most these many bytes, on a UTF-8 character boundary, before it
//! becomes a span attribute, a log field or a metric label. They hold even
//! when no `OTEL_*_ATTRIBUTE_VALUE_LENGTH_LIMIT` is set; a smaller
//! configured limit cuts further at export. The request id is bounded by
//! [`MAX_REQUEST_ID_LEN`](telemetry_init_propagation::request_id::MAX_REQUEST_ID_LEN)
//! (a longer one is replaced by a generated id).
//!
//! Cutting borrows a prefix of the request's own text: a request within
//! the bounds (nearly all of them) costs a length comparison, nothing more.
//!
//! ```
//! use telemetry_init::http::limits;
//!
//! assert_eq!(limits::truncate("héllo", 2), "h");
//! assert_eq!(limits::truncate("short", limits::MAX_PATH), "short");
//! ```

/// `url.path`.
pub const MAX_PATH: usize = 2048;
/// `url.query` (cut before secret values are redacted, so a cut never
/// exposes part of a secret value: a cut inside a key drops its value).
pub const MAX_QUERY: usize = 2048;
/// `user_agent.original`.
pub const MAX_USER_AGENT: usize = 1024;
/// `server.address` (from `Host`; a DNS name has at most 253 bytes).
pub const MAX_HOST: usize = 255;
/// `http.request.method_original` (a method outside the standard nine).
pub const MAX_METHOD: usize = 64;
/// `rpc.service` and `rpc.method` (and so the gRPC span name and labels).
pub const MAX_RPC_NAME: usize = 256;
/// A `baggage.<key>` attribute value copied from the request's baggage.
pub const MAX_BAGGAGE_VALUE: usize = 1024;

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary; `s` itself when it fits. Never allocates.
#[inline]
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_char_boundaries() {
        assert_eq!(truncate("", 0), "");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abc", 2), "ab");
        // 'é' is two bytes, '😀' four.
        assert_eq!(truncate("é", 1), "");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("a😀b", 4), "a");
        assert_eq!(truncate("a😀b", 5), "a😀");
    }
}
