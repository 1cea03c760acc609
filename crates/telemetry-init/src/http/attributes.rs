//! Semantic-convention values computed from a request, with the cardinality
//! and secrecy rules applied.

use std::borrow::Cow;

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

/// Query-parameter names whose values are credentials or personal data.
/// Matched case-insensitively on the whole name and on `_`/`-` separated
/// suffixes, so `x_api_key` and `refresh-token` are caught too.
const SECRET_KEYS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "key",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "auth",
    "authorization",
    "session",
    "sessionid",
    "session_id",
    "code",
    "credential",
    "credentials",
    "jwt",
];

pub(crate) fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    if SECRET_KEYS.contains(&lower.as_str()) {
        return true;
    }
    // Suffix after the last separator: `x_api_key` -> `key`, `user-token` -> `token`.
    lower
        .rsplit(['_', '-', '.'])
        .next()
        .is_some_and(|last| last != lower && SECRET_KEYS.contains(&last))
}

/// `url.query` with the value of every secret-looking parameter replaced by
/// `REDACTED`. Borrowed unchanged when nothing needs redaction.
pub(crate) fn redact_query(query: &str) -> Cow<'_, str> {
    let needs = query.split('&').any(|pair| {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        is_secret_key(&percent_decode_lossy(key))
    });
    if !needs {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((k, _)) if is_secret_key(&percent_decode_lossy(k)) => {
                out.push_str(k);
                out.push_str("=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    Cow::Owned(out)
}

fn percent_decode_lossy(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
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

/// `rpc.service` and `rpc.method` from a gRPC path `/pkg.Service/Method`.
pub(crate) fn grpc_service_method(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
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
    fn secret_query_values_are_redacted() {
        assert_eq!(redact_query("a=1&b=2"), "a=1&b=2");
        assert!(matches!(redact_query("a=1"), Cow::Borrowed(_)));
        assert_eq!(
            redact_query("q=shoes&access_token=abc&API_KEY=k&x_api_key=z&page=2&sig=s&code=c"),
            "q=shoes&access_token=REDACTED&API_KEY=REDACTED&x_api_key=REDACTED&page=2&sig=REDACTED&code=REDACTED"
        );
        assert_eq!(
            redact_query("pass%77ord=x&token"),
            "pass%77ord=REDACTED&token"
        );
        assert_eq!(redact_query("monkey=banana"), "monkey=banana");
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

    #[test]
    fn grpc_paths() {
        assert_eq!(
            grpc_service_method("/helloworld.Greeter/SayHello"),
            Some(("helloworld.Greeter", "SayHello"))
        );
        assert_eq!(grpc_service_method("/nope"), None);
    }
}
