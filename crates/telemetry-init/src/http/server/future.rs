//! The response future: finishes the span and records the metrics.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::{RequestId, route_label};
use crate::http::slo;

/// What is known about a request until it completes. Dropping it before
/// completion means the request was cancelled (client gone, timeout): the
/// span and the metrics say so instead of leaking an in-flight count.
#[derive(Debug)]
pub(crate) struct Pending {
    started: Instant,
    method: &'static str,
    grpc: Option<(String, String)>,
    request_id: RequestId,
    /// The route's metric handles (HTTP only: gRPC has no in-flight gauge).
    metrics: Option<std::sync::Arc<slo::RouteMetrics>>,
    span: tracing::Span,
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
        metrics: Option<std::sync::Arc<slo::RouteMetrics>>,
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
    fn finish_http(&mut self, status: u16) {
        self.done = true;
        self.span
            .record("http.response.status_code", i64::from(status));
        let label = slo::status_label(status);
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
            slo::rpc_server(service, method, code, elapsed);
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

    fn finish_error(&mut self, error_type: &'static str) {
        self.done = true;
        let _entered = self.enter_unless_current();
        self.fail(error_type);
        if self.grpc.is_some() {
            self.grpc_access_log(2, Some(error_type), self.started.elapsed());
            // The service failed without a status: UNKNOWN, on the span too.
            self.span.record("rpc.grpc.status_code", 2_i64);
            if let Some((service, method)) = &self.grpc {
                slo::rpc_server(service, method, 2, self.started.elapsed());
            }
        } else {
            self.access_log(None, Some(error_type), self.started.elapsed());
            slo::http_server_failed(
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

pin_project! {
    /// The future returned by [`ServerService`](super::ServerService).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn skipped(inner: F) -> Self {
        Self {
            inner,
            pending: None,
        }
    }

    pub(crate) fn traced(inner: F, pending: Pending) -> Self {
        Self {
            inner,
            pending: Some(pending),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(pending) = this.pending.as_mut() else {
            return this
                .inner
                .poll(cx)
                .map(|r| r.map(|res| res.map(ResponseBody::passthrough)));
        };
        // One enter for the handler's poll and, when it completes, for the
        // span's final attributes, metrics and access log: every enter/exit
        // goes through all layers (and context activation).
        let span = pending.span.clone();
        let _entered = span.enter();
        let result = std::task::ready!(this.inner.poll(cx));
        let mut pending = this.pending.take().expect("checked above");
        Poll::Ready(match result {
            Ok(mut res) => {
                if let Ok(v) = HeaderValue::from_str(pending.request_id.as_str()) {
                    res.headers_mut().insert(X_REQUEST_ID, v);
                }
                if pending.grpc.is_some() {
                    let span = span.clone();
                    // Trailers-only responses carry the status in the headers.
                    if let Some(code) = grpc_status(res.headers()) {
                        pending.finish_grpc(code);
                        Ok(res.map(|b| ResponseBody::traced(b, span, None)))
                    } else {
                        Ok(res.map(|b| ResponseBody::traced(b, span, Some(pending))))
                    }
                } else {
                    pending.finish_http(res.status().as_u16());
                    // The finished `Pending` no longer needs its span: the
                    // body takes it (one clone fewer per request).
                    let span = std::mem::replace(&mut pending.span, tracing::Span::none());
                    Ok(res.map(|b| ResponseBody::traced(b, span, None)))
                }
            }
            Err(e) => {
                pending.finish_error(short_type_name::<E>());
                Err(e)
            }
        })
    }
}

/// The `grpc-timeout` request header: 1 to 8 digits and a unit.
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

pub(crate) fn grpc_timeout(headers: &http::HeaderMap) -> Option<std::time::Duration> {
    use std::time::Duration;
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

pub(crate) fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// `error.type` for a service error: its type's name (bounded, unlike the
/// error message).
fn short_type_name<E>() -> &'static str {
    let full = std::any::type_name::<E>();
    full.rsplit("::").next().unwrap_or(full)
}
