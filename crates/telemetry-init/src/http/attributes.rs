//! HTTP semantic-convention values computed from a request, with the
//! cardinality rules applied (secrets are [`crate::redact`]'s; gRPC names are
//! [`super::grpc`]'s).

use http::{Method, Version};

/// `http.request.method`: the nine standard methods as is; anything else is
/// `_OTHER` (the original goes to `http.request.method_original`), so a
/// client inventing methods cannot create new series.
pub(crate) fn method(m: &Method) -> (&'static str, Option<&str>) {
    let known = match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => return ("_OTHER", Some(m.as_str())),
    };
    (known, None)
}

/// `network.protocol.version`.
pub(crate) fn protocol_version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Splits a `Host` header value into `server.address` and `server.port`.
pub(crate) fn host_and_port(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        if let Some((addr, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (addr, port);
        }
        return (host, None);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_normalised() {
        assert_eq!(method(&Method::GET), ("GET", None));
        let odd = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method(&odd), ("_OTHER", Some("PURGE")));
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_and_port("example.com:8080"),
            ("example.com", Some(8080))
        );
        assert_eq!(host_and_port("example.com"), ("example.com", None));
        assert_eq!(host_and_port("[::1]:3000"), ("::1", Some(3000)));
    }
}
