//! What the server and the client layers know about gRPC: telling a gRPC
//! call from its content type, its names from its path, its deadline from
//! `grpc-timeout`, its status from `grpc-status`, and which status codes are
//! errors on which side.

use std::time::{Duration, Instant};

use http::HeaderMap;

use super::limits::{self, truncate};

/// The gRPC status codes the layers set themselves.
pub(crate) mod code {
    /// The call was cancelled (by the client: a dropped stream).
    pub(crate) const CANCELLED: i32 = 1;
    /// The call failed without a status.
    pub(crate) const UNKNOWN: i32 = 2;
    /// The deadline the client sent in `grpc-timeout` passed.
    pub(crate) const DEADLINE_EXCEEDED: i32 = 4;
    /// No response: the transport failed.
    pub(crate) const UNAVAILABLE: i32 = 14;
}

/// Whether the request says `content-type: application/grpc` (or a
/// `application/grpc+…` subtype). A client chooses its headers: the server
/// believes this only as [`GrpcDetection`](super::GrpcDetection) says.
pub(crate) fn says_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

/// `rpc.service` and `rpc.method` from a gRPC path `/pkg.Service/Method`.
pub(crate) fn service_method(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// The `grpc-timeout` request header: 1 to 8 digits and a unit.
pub(crate) fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at_checked(v.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The `grpc-status` of response headers or trailers.
pub(crate) fn status(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Whether a server that answered `code` failed (the RPC semantic
/// conventions): UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
/// UNAVAILABLE, DATA_LOSS. The other codes are the client's problem.
pub(crate) fn is_server_error(code: i32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// One gRPC call: its names (cut to [`limits::MAX_RPC_NAME`]) and the
/// deadline its client sent.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) service: String,
    pub(crate) method: String,
    /// From `grpc-timeout`.
    deadline: Option<Duration>,
}

impl Call {
    /// The call `path` names, when it is a gRPC path, with the deadline
    /// of `headers`.
    pub(crate) fn new(path: &str, headers: &HeaderMap) -> Option<Self> {
        let (service, method) = service_method(path)?;
        Some(Self {
            service: truncate(service, limits::MAX_RPC_NAME).to_string(),
            method: truncate(method, limits::MAX_RPC_NAME).to_string(),
            deadline: timeout(headers),
        })
    }

    /// The status of a call that ended without one (dropped, or no
    /// response): DEADLINE_EXCEEDED once its deadline has passed, else
    /// `otherwise`.
    pub(crate) fn ended_without_status(&self, started: Instant, otherwise: i32) -> i32 {
        if self.deadline.is_some_and(|d| started.elapsed() >= d) {
            code::DEADLINE_EXCEEDED
        } else {
            otherwise
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            service_method("/helloworld.Greeter/SayHello"),
            Some(("helloworld.Greeter", "SayHello"))
        );
        assert_eq!(service_method("/nope"), None);
        assert_eq!(service_method("/a/b/c"), None);
    }

    #[test]
    fn names_are_bounded() {
        let long = "s".repeat(limits::MAX_RPC_NAME + 10);
        let call = Call::new(&format!("/{long}/M"), &HeaderMap::new()).unwrap();
        assert_eq!(call.service.len(), limits::MAX_RPC_NAME);
        assert_eq!(call.method, "M");
    }

    #[test]
    fn deadlines() {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", "250m".parse().unwrap());
        assert_eq!(timeout(&h), Some(Duration::from_millis(250)));
        h.insert("grpc-timeout", "123456789S".parse().unwrap());
        assert_eq!(timeout(&h), None, "more than 8 digits");
        h.insert("grpc-timeout", "0n".parse().unwrap());
        let call = Call::new("/s/m", &h).unwrap();
        assert_eq!(
            call.ended_without_status(Instant::now(), code::CANCELLED),
            code::DEADLINE_EXCEEDED
        );
        let call = Call::new("/s/m", &HeaderMap::new()).unwrap();
        assert_eq!(
            call.ended_without_status(Instant::now(), code::UNAVAILABLE),
            code::UNAVAILABLE
        );
    }
}
