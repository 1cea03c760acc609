//! A request in flight: its span, timing and metric handles until the
//! response future or the response body completes it (or it is dropped).

use std::time::Instant;

use super::{RequestId, route_label};
use crate::http::red_metrics;

/// What is known about a request until it completes. Dropping it before
/// completion means the request was cancelled (client gone, timeout): the
/// span and the metrics say so instead of leaking an in-flight count.
#[derive(Debug)]
pub(crate) struct Pending {
    started: Instant,
    method: &'static str,
    pub(super) grpc: Option<(String, String)>,
    pub(super) request_id: RequestId,
    /// The route's metric handles (HTTP only: gRPC has no in-flight gauge).
    metrics: Option<std::sync::Arc<red_metrics::RouteMetrics>>,
    pub(super) span: tracing::Span,
    /// The deadline a gRPC client sent in `grpc-timeout`.
    grpc_deadline: Option<std::time::Duration>,
    done: bool,
}

impl Pending {
    pub(crate) fn start(
        method: &'static str,
        grpc: Option<(String, String)>,
        request_id: RequestId,
        span: tracing::Span,
        metrics: Option<std::sync::Arc<red_metrics::RouteMetrics>>,
    ) -> Self {
        if let Some(m) = &metrics {
            m.active.increment(1.0);
        }
        Self {
            started: Instant::now(),
            method,
            grpc,
            request_id,
            metrics,
            span,
            grpc_deadline: None,
            done: false,
        }
    }

    /// Sets the deadline a gRPC client sent in `grpc-timeout`.
    pub(crate) fn with_grpc_deadline(mut self, deadline: Option<std::time::Duration>) -> Self {
        self.grpc_deadline = deadline;
        self
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

    /// The `http.route` label (gRPC calls have no route metrics: `unmatched`).
    fn route(&self) -> &str {
        self.metrics
            .as_deref()
            .map_or_else(|| route_label(None), |m| &m.route)
    }

    fn fail(&self, error_type: &str) {
        self.span.record("error.type", error_type);
        self.span.record("otel.status_code", "ERROR");
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
            self.fail(e);
        }
        let elapsed = self.started.elapsed();
        if let Some(m) = &self.metrics {
            m.record(status, elapsed);
        }
        self.access_log(Some(status), error.as_deref(), elapsed);
    }

    /// One line per request, inside the request's span (so it carries the
    /// trace, span and request ids), as operators expect from an access log.
    fn access_log(&self, status: Option<u16>, error: Option<&str>, elapsed: std::time::Duration) {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let route = self.route();
        if error.is_some() {
            tracing::warn!(
                target: "telemetry_init::access",
                duration_ms,
                http.request.method = self.method,
                http.route = route,
                http.response.status_code = status,
                error.type = error,
                "request failed"
            );
        } else {
            tracing::info!(
                target: "telemetry_init::access",
                duration_ms,
                http.request.method = self.method,
                http.route = route,
                http.response.status_code = status,
                "request completed"
            );
        }
    }

    /// The access log line of a gRPC call: its RPC names and status, not
    /// the HTTP method and route (always `POST` and `unmatched`).
    fn grpc_access_log(&self, code: i32, error: Option<&str>, elapsed: std::time::Duration) {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let (service, method) = self
            .grpc
            .as_ref()
            .map_or(("", ""), |(s, m)| (s.as_str(), m.as_str()));
        if error.is_some() {
            tracing::warn!(
                target: "telemetry_init::access",
                duration_ms,
                rpc.service = service,
                rpc.method = method,
                rpc.grpc.status_code = code,
                error.type = error,
                "request failed"
            );
        } else {
            tracing::info!(
                target: "telemetry_init::access",
                duration_ms,
                rpc.service = service,
                rpc.method = method,
                rpc.grpc.status_code = code,
                "request completed"
            );
        }
    }

    /// Completes a gRPC call with its `grpc-status`.
    pub(crate) fn finish_grpc(&mut self, code: i32) {
        self.done = true;
        let _entered = self.enter_unless_current();
        self.span.record("rpc.grpc.status_code", i64::from(code));
        // The RPC conventions: on the server these codes are errors, the
        // others are the client's problem.
        if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
            self.fail(&code.to_string());
        }
        let elapsed = self.started.elapsed();
        if let Some((service, method)) = &self.grpc {
            red_metrics::rpc_server(service, method, code, elapsed);
        }
        let error = Self::span_error_for(code);
        self.grpc_access_log(code, error.as_deref(), elapsed);
    }

    fn span_error_for(code: i32) -> Option<String> {
        matches!(code, 2 | 4 | 12 | 13 | 14 | 15).then(|| code.to_string())
    }

    /// A gRPC call dropped before its status was sent: the client went away
    /// (RST_STREAM), or the deadline it sent in `grpc-timeout` passed.
    fn finish_grpc_dropped(&mut self) {
        let expired = self
            .grpc_deadline
            .is_some_and(|d| self.started.elapsed() >= d);
        // DEADLINE_EXCEEDED is a server error for the RPC conventions,
        // CANCELLED is not: recording UNKNOWN would count every client that
        // stops watching a stream against the server's error budget.
        self.finish_grpc(if expired { 4 } else { 1 });
    }

    pub(super) fn finish_error(&mut self, error_type: &'static str) {
        self.done = true;
        let _entered = self.enter_unless_current();
        self.fail(error_type);
        if self.grpc.is_some() {
            self.grpc_access_log(2, Some(error_type), self.started.elapsed());
            // The service failed without a status: UNKNOWN, on the span too.
            self.span.record("rpc.grpc.status_code", 2_i64);
            if let Some((service, method)) = &self.grpc {
                red_metrics::rpc_server(service, method, 2, self.started.elapsed());
            }
        } else {
            self.access_log(None, Some(error_type), self.started.elapsed());
            red_metrics::http_server_failed(
                self.method,
                self.route(),
                error_type,
                self.started.elapsed(),
            );
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            m.active.decrement(1.0);
        }
        if !self.done {
            if self.grpc.is_some() {
                self.finish_grpc_dropped();
            } else {
                self.finish_error("cancelled");
            }
        }
    }
}
