//! What the server and the client layers share about one call: whether it
//! is an HTTP request or a gRPC call ([`Protocol`]), and how its outcome is
//! recorded on its span.

use super::grpc;

/// An HTTP request or a gRPC call, with what each side keeps of it: the
/// server keeps an HTTP request's route metrics, the client the host it
/// called (`H`); both keep a gRPC call's names and deadline.
#[derive(Debug)]
pub(crate) enum Protocol<H> {
    /// An HTTP request.
    Http(H),
    /// A gRPC call.
    Grpc(grpc::Call),
}

impl<H> Protocol<H> {
    /// Whether this is a gRPC call.
    pub(crate) fn is_grpc(&self) -> bool {
        matches!(self, Self::Grpc(_))
    }
}

/// Marks the span failed: `error.type` and `otel.status_code = ERROR`.
pub(crate) fn record_error(span: &tracing::Span, error_type: &str) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "ERROR");
}

/// Records a gRPC status on the span; a `failed` call also gets the code as
/// its `error.type`. Returns that `error.type`, for the access log.
pub(crate) fn record_grpc_status(span: &tracing::Span, code: i32, failed: bool) -> Option<String> {
    span.record("rpc.grpc.status_code", i64::from(code));
    let error = failed.then(|| code.to_string());
    if let Some(e) = &error {
        record_error(span, e);
    }
    error
}
