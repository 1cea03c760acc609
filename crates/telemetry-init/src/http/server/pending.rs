//! A request in flight: its span, timing and metric handles until the
//! response future or the response body completes it (or it is dropped).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::RequestId;
use crate::http::call::{self, Protocol};
use crate::http::grpc::{self, code};
use crate::http::{red_metrics, request_id};

/// What the server keeps of a request until it completes: an HTTP request's
/// route metric handles (gRPC has no in-flight gauge), a gRPC call's names
/// and deadline.
pub(crate) type Kind = Protocol<Arc<red_metrics::RouteMetrics>>;

/// One access log line, inside the request's span (so it carries the trace,
/// span and request ids), as operators expect from an access log: INFO
/// "request completed", or WARN "request failed" with `error.type` when
/// `$error` is `Some`.
macro_rules! access_log {
    ($error:expr, $($field:tt)+) => {
        match $error {
            Some(error) => tracing::warn!(
                target: "telemetry_init::access",
                $($field)+,
                error.type = error,
                "request failed"
            ),
            None => tracing::info!(
                target: "telemetry_init::access",
                $($field)+,
                "request completed"
            ),
        }
    };
}

/// What is known about a request until it completes. Dropping it before
/// completion means the request was cancelled (client gone, timeout): the
/// span and the metrics say so instead of leaking an in-flight count.
#[derive(Debug)]
pub(crate) struct Pending {
    started: Instant,
    method: &'static str,
    pub(super) kind: Kind,
    request_id: RequestId,
    /// The layer's own request-id header, if it has one (else the
    /// process-wide one): where the id was read from and is echoed under.
    request_id_header: Option<HeaderName>,
    pub(super) span: tracing::Span,
    done: bool,
}

impl Pending {
    pub(crate) fn start(
        method: &'static str,
        kind: Kind,
        request_id: RequestId,
        request_id_header: Option<HeaderName>,
        span: tracing::Span,
    ) -> Self {
        if let Protocol::Http(m) = &kind {
            m.active.increment(1.0);
        }
        Self {
            started: Instant::now(),
            method,
            kind,
            request_id,
            request_id_header,
            span,
            done: false,
        }
    }

    /// Echoes the request id on the response, under the header it came in.
    /// A [`RequestId`] is valid as a header value by construction.
    pub(super) fn echo_request_id(&self, headers: &mut HeaderMap) {
        let name = match &self.request_id_header {
            Some(h) => h,
            None => request_id::header(),
        };
        if let Ok(v) = HeaderValue::from_str(self.request_id.as_str()) {
            headers.insert(name.clone(), v);
        }
    }

    /// Enters the span unless the caller already did (the response future
    /// does; the body and a cancellation do not).
    fn enter_unless_current(&self) -> Option<tracing::span::EnteredSpan> {
        if tracing::Span::current().id() == self.span.id() {
            return None;
        }
        // An owned guard: the callers go on to mutate `self`.
        Some(self.span.clone().entered())
    }

    /// Completes an HTTP request with its status.
    /// Called from `ResponseFuture::poll` with the span entered, so the
    /// access log line carries its ids and the histogram takes the trace id
    /// as its exemplar (no `Span::current()` check: it costs a registry
    /// lookup and a clone per request).
    pub(super) fn finish_http(&mut self, status: u16) {
        self.done = true;
        self.span
            .record("http.response.status_code", i64::from(status));
        let label = red_metrics::status_label(status);
        let error = (status >= 500).then(|| label.to_string());
        if let Some(e) = &error {
            call::record_error(&self.span, e);
        }
        let elapsed = self.started.elapsed();
        if let Protocol::Http(m) = &self.kind {
            m.record(status, elapsed);
            self.http_access_log(m, Some(status), error.as_deref(), elapsed);
        }
    }

    fn http_access_log(
        &self,
        metrics: &red_metrics::RouteMetrics,
        status: Option<u16>,
        error: Option<&str>,
        elapsed: Duration,
    ) {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        access_log!(
            error,
            duration_ms,
            http.request.method = self.method,
            http.route = &*metrics.route,
            http.response.status_code = status
        );
    }

    /// The access log line of a gRPC call: its RPC names and status, not
    /// the HTTP method and route (always `POST` and `unmatched`).
    fn grpc_access_log(call: &grpc::Call, code: i32, error: Option<&str>, elapsed: Duration) {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        access_log!(
            error,
            duration_ms,
            rpc.service = call.service.as_str(),
            rpc.method = call.method.as_str(),
            rpc.grpc.status_code = code
        );
    }

    /// Completes a gRPC call with its `grpc-status`.
    pub(crate) fn finish_grpc(&mut self, code: i32) {
        self.done = true;
        let _entered = self.enter_unless_current();
        // The RPC conventions: on the server only some codes are errors, the
        // others are the client's problem.
        let error = call::record_grpc_status(&self.span, code, grpc::is_server_error(code));
        let elapsed = self.started.elapsed();
        if let Protocol::Grpc(c) = &self.kind {
            red_metrics::rpc_server(&c.service, &c.method, code, elapsed);
            Self::grpc_access_log(c, code, error.as_deref(), elapsed);
        }
    }

    /// Completes a request whose service returned an error (or that was
    /// cancelled) instead of a response.
    pub(super) fn finish_error(&mut self, error_type: &'static str) {
        self.done = true;
        let _entered = self.enter_unless_current();
        call::record_error(&self.span, error_type);
        let elapsed = self.started.elapsed();
        match &self.kind {
            Protocol::Grpc(c) => {
                Self::grpc_access_log(c, code::UNKNOWN, Some(error_type), elapsed);
                // The service failed without a status: UNKNOWN, on the span too.
                self.span
                    .record("rpc.grpc.status_code", i64::from(code::UNKNOWN));
                red_metrics::rpc_server(&c.service, &c.method, code::UNKNOWN, elapsed);
            }
            Protocol::Http(m) => {
                self.http_access_log(m, None, Some(error_type), elapsed);
                red_metrics::http_server_failed(self.method, &m.route, error_type, elapsed);
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Protocol::Http(m) = &self.kind {
            m.active.decrement(1.0);
        }
        if self.done {
            return;
        }
        match &self.kind {
            // Dropped before its status was sent: the client went away
            // (RST_STREAM), or the deadline it sent in `grpc-timeout`
            // passed. DEADLINE_EXCEEDED is a server error for the RPC
            // conventions, CANCELLED is not: recording UNKNOWN would count
            // every client that stops watching a stream against the
            // server's error budget.
            Protocol::Grpc(c) => {
                let code = c.ended_without_status(self.started, code::CANCELLED);
                self.finish_grpc(code);
            }
            Protocol::Http(_) => self.finish_error("cancelled"),
        }
    }
}
