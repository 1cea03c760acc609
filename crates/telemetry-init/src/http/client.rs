//! Client-side propagation: a CLIENT span per outgoing request, with
//! `traceparent`, `tracestate`, `baggage` and the current request id
//! injected (under the [request-id header](super::request_id)), for
//! tower/hyper clients ([`ClientLayer`]) and reqwest
//! ([`TracedRequest::send_traced`]).
//!
//! # Example
//!
//! ```no_run
//! use telemetry_init::http::client::TracedRequest;
//!
//! # async fn call() -> Result<(), reqwest::Error> {
//! let client = reqwest::Client::new();
//! // Inside a request handled by `telemetry_init::layer()`, this call is a
//! // child span of the request and carries its trace context downstream.
//! let res = client.get("http://inventory:3000/items").send_traced().await?;
//! # let _ = res; Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, HeaderName, Method, Request, Response};
use opentelemetry::trace::TraceContextExt;
use pin_project_lite::pin_project;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::call::{self, Protocol};
use super::grpc::{self, code};
use super::{Propagators, attributes, red_metrics, request_id};

/// A CLIENT span, started, with its context injected into `headers`.
#[derive(Debug)]
struct ClientCall {
    span: tracing::Span,
    started: Instant,
    method: &'static str,
    /// An HTTP request keeps the host it called (its metrics' label).
    kind: Protocol<String>,
    done: bool,
}

/// How a client tells a gRPC call from an HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detect {
    /// By its content type (the tower layer, which tonic's channels use).
    ContentType,
    /// Never: reqwest sends HTTP requests and reports HTTP outcomes.
    #[cfg(feature = "reqwest")]
    HttpOnly,
}

/// What a client injects into an outgoing request's headers.
#[derive(Debug, Clone, Copy)]
struct Inject<'a> {
    propagators: Propagators,
    request_id_header: &'a HeaderName,
}

impl ClientCall {
    fn start(
        method: &Method,
        uri: &http::Uri,
        headers: &mut HeaderMap,
        inject: Inject<'_>,
        detect: Detect,
    ) -> Self {
        let (method, original) = attributes::method(method);
        // A URI without authority (tonic clients made with `new` rather
        // than `with_origin` get theirs inside the `Channel`) has no server
        // address to record: better none than an empty one on port 80.
        let host = uri.host().unwrap_or("").to_string();
        let port = (!host.is_empty())
            .then(|| {
                uri.port_u16().unwrap_or(match uri.scheme_str() {
                    Some("https") => 443,
                    _ => 80,
                })
            })
            .map(i64::from);
        let grpc_call = (detect == Detect::ContentType && grpc::says_grpc(headers))
            .then(|| grpc::Call::new(uri.path(), headers))
            .flatten();
        let span = if let Some(call) = &grpc_call {
            let (service, rpc_method) = (&call.service, &call.method);
            tracing::info_span!(
                target: "telemetry_init::http",
                "grpc client request",
                otel.name = %format_args!("{service}/{rpc_method}"),
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = service.as_str(),
                rpc.method = rpc_method.as_str(),
                rpc.grpc.status_code = tracing::field::Empty,
                server.address = tracing::field::Empty,
                server.port = port,
                error.type = tracing::field::Empty,
            )
        } else {
            let full = uri.authority().is_some().then(|| redact_url(uri));
            tracing::info_span!(
                target: "telemetry_init::http",
                "http client request",
                otel.name = method,
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
                http.request.method = method,
                http.request.method_original = original,
                http.response.status_code = tracing::field::Empty,
                server.address = tracing::field::Empty,
                server.port = port,
                url.full = full.as_deref(),
                error.type = tracing::field::Empty,
            )
        };
        if !host.is_empty() {
            span.record("server.address", host.as_str());
        }
        if !inject.propagators.is_empty() {
            let mut cx = span.context();
            if !cx.has_active_span() {
                // No OpenTelemetry layer: the caller's context, if a server
                // layer kept one for this request (see `passthrough`).
                if let Some(remote) = super::passthrough::find(&span)
                    .or_else(|| super::passthrough::find(&tracing::Span::current()))
                {
                    cx = remote;
                }
            }
            telemetry_init_propagation::inject_with(&cx, headers, inject.propagators);
        }
        if let Some(rid) = crate::logs::current_request_id() {
            request_id::insert(headers, inject.request_id_header, &rid);
        }
        Self {
            span,
            started: Instant::now(),
            method,
            kind: match grpc_call {
                Some(call) => Protocol::Grpc(call),
                None => Protocol::Http(host),
            },
            done: false,
        }
    }

    fn finish(&mut self, status: Option<u16>, error: Option<&str>) {
        self.done = true;
        let span = self.span.clone();
        let _entered = span.enter();
        if let Some(s) = status {
            self.span.record("http.response.status_code", i64::from(s));
        }
        // For clients, 4xx are errors too (the semantic conventions).
        let status_error = status.filter(|s| *s >= 400).map(red_metrics::status_label);
        let error = error
            .map(str::to_string)
            .or(status_error.map(|s| s.to_string()));
        if let Some(e) = &error {
            call::record_error(&self.span, e);
        }
        // Only HTTP requests end here (gRPC calls end with a status).
        let host = match &self.kind {
            Protocol::Http(host) => host.as_str(),
            Protocol::Grpc(_) => "",
        };
        let status = status
            .map(red_metrics::status_label)
            .unwrap_or(metrics::SharedString::const_str(""));
        match error {
            None => metrics::histogram!(
                red_metrics::names::HTTP_CLIENT_DURATION,
                "http.request.method" => self.method,
                "server.address" => host.to_owned(),
                "http.response.status_code" => status
            ),
            Some(e) => metrics::histogram!(
                red_metrics::names::HTTP_CLIENT_DURATION,
                "http.request.method" => self.method,
                "server.address" => host.to_owned(),
                "http.response.status_code" => status,
                "error.type" => e
            ),
        }
        .record(self.started.elapsed().as_secs_f64());
    }

    /// Completes a gRPC call with the status the client saw. On the client
    /// every code but OK is an error (the RPC semantic conventions).
    fn finish_grpc(&mut self, code: i32) {
        self.done = true;
        // tracing-opentelemetry ends a span at its last exit: entering it
        // here makes a streaming call's span last until its trailers (and
        // gives the histogram its exemplar).
        let span = self.span.clone();
        let _entered = span.enter();
        call::record_grpc_status(&self.span, code, code != 0);
        if let Protocol::Grpc(c) = &self.kind {
            red_metrics::rpc_client(&c.service, &c.method, code, self.started.elapsed());
        }
    }

    /// The status of a gRPC call that ended without one: DEADLINE_EXCEEDED
    /// once its `grpc-timeout` has passed, else `otherwise`.
    fn ended_without_status(&self, otherwise: i32) -> i32 {
        match &self.kind {
            Protocol::Grpc(c) => c.ended_without_status(self.started, otherwise),
            Protocol::Http(_) => otherwise,
        }
    }
}

impl Drop for ClientCall {
    fn drop(&mut self) {
        // A gRPC call dropped before its status arrived was cancelled by
        // this client (a stream it stopped reading, a timeout around it).
        if !self.done && self.kind.is_grpc() {
            let code = self.ended_without_status(code::CANCELLED);
            self.finish_grpc(code);
        }
    }
}

/// `url.full` without userinfo, with secret query values and path
/// parameters redacted.
fn redact_url(uri: &http::Uri) -> String {
    let policy = crate::redact::current();
    let mut out = String::new();
    if let Some(s) = uri.scheme_str() {
        out.push_str(s);
        out.push_str("://");
    }
    if let Some(a) = uri.authority() {
        // userinfo (`user:pass@`) is a credential.
        let a = a.as_str();
        out.push_str(a.rsplit_once('@').map_or(a, |(_, host)| host));
    }
    out.push_str(&policy.redact_path(uri.path()));
    if let Some(q) = uri.query() {
        out.push('?');
        out.push_str(&policy.redact_query(q));
    }
    out
}

/// [`tower::Layer`] for HTTP clients (hyper-util's legacy client, tower
/// stacks): one CLIENT span per request, context and request id injected.
///
/// ```
/// use tower::ServiceBuilder;
/// use telemetry_init::http::ClientLayer;
///
/// let svc = ServiceBuilder::new()
///     .layer(ClientLayer::new())
///     .service_fn(|req: http::Request<String>| async move {
///         assert!(req.headers().contains_key("traceparent") || true);
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     });
/// # let _ = svc;
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientLayer {
    propagators: Option<Propagators>,
    request_id_header: Option<HeaderName>,
}

impl ClientLayer {
    /// A client layer that injects the formats of `OTEL_PROPAGATORS` (see
    /// [`Propagation::global`](super::Propagation::global)).
    pub fn new() -> Self {
        Self::default()
    }

    /// The formats this layer injects, instead of the process-wide setting.
    /// [`Propagators::NONE`] sends no trace context and no baggage (the
    /// CLIENT span and the request id are still recorded and sent).
    ///
    /// ```
    /// use telemetry_init::http::{ClientLayer, Propagators};
    ///
    /// let to_a_third_party = ClientLayer::new().propagators(Propagators::NONE);
    /// ```
    #[must_use]
    pub fn propagators(mut self, propagators: Propagators) -> Self {
        self.propagators = Some(propagators);
        self
    }

    /// The header the current request id is sent under, instead of the
    /// process-wide one ([`request_id::header`]:
    /// `TELEMETRY_REQUEST_ID_HEADER`, else `x-request-id`). For a downstream
    /// that expects another name than this service.
    ///
    /// ```
    /// use http::HeaderName;
    /// use telemetry_init::http::ClientLayer;
    ///
    /// let layer = ClientLayer::new().request_id_header(HeaderName::from_static("x-correlation-id"));
    /// ```
    #[must_use]
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.request_id_header = Some(name);
        self
    }
}

impl<S> tower::Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientService {
            inner,
            propagators: self.propagators,
            request_id_header: self.request_id_header.clone(),
        }
    }
}

/// The [`tower::Service`] made by [`ClientLayer`].
#[derive(Debug, Clone)]
pub struct ClientService<S> {
    inner: S,
    propagators: Option<Propagators>,
    request_id_header: Option<HeaderName>,
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for ClientService<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ClientBody<ResB>>;
    type Error = S::Error;
    type Future = ClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let propagators = self
            .propagators
            .unwrap_or_else(|| super::Propagation::global().propagators());
        let inject = Inject {
            propagators,
            request_id_header: match &self.request_id_header {
                Some(h) => h,
                None => request_id::header(),
            },
        };
        let call = ClientCall::start(
            &method,
            &uri,
            req.headers_mut(),
            inject,
            Detect::ContentType,
        );
        let inner = {
            let _e = call.span.enter();
            self.inner.call(req)
        };
        ClientFuture {
            inner,
            call: Some(call),
        }
    }
}

pin_project! {
    /// The future of [`ClientService`].
    pub struct ClientFuture<F> {
        #[pin]
        inner: F,
        call: Option<ClientCall>,
    }
}

impl<F, B, E> Future for ClientFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ClientBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = match this.call.as_ref() {
            Some(c) => {
                let _e = c.span.enter();
                std::task::ready!(this.inner.poll(cx))
            }
            None => std::task::ready!(this.inner.poll(cx)),
        };
        let Some(mut call) = this.call.take() else {
            return Poll::Ready(out.map(|res| res.map(ClientBody::passthrough)));
        };
        Poll::Ready(match out {
            Ok(res) if call.kind.is_grpc() => {
                // Trailers-only responses (every error a tonic handler
                // returns) carry the status in the headers; otherwise it
                // comes in the trailers, and the span lasts until then.
                match grpc::status(res.headers()) {
                    Some(code) => {
                        call.finish_grpc(code);
                        Ok(res.map(ClientBody::passthrough))
                    }
                    None => Ok(res.map(|b| ClientBody {
                        inner: b,
                        call: Some(call),
                    })),
                }
            }
            Ok(res) => {
                call.finish(Some(res.status().as_u16()), None);
                Ok(res.map(ClientBody::passthrough))
            }
            Err(e) => {
                if call.kind.is_grpc() {
                    // No response: past the deadline, DEADLINE_EXCEEDED;
                    // otherwise the transport failed (UNAVAILABLE).
                    let code = call.ended_without_status(code::UNAVAILABLE);
                    call.finish_grpc(code);
                } else {
                    call.finish(None, Some("_OTHER"));
                }
                Err(e)
            }
        })
    }
}

pin_project! {
    /// The response body of [`ClientService`]: reads the `grpc-status`
    /// trailer of a gRPC call and ends its span when the call ends.
    pub struct ClientBody<B> {
        #[pin]
        inner: B,
        call: Option<ClientCall>,
    }
}

impl<B> ClientBody<B> {
    fn passthrough(inner: B) -> Self {
        Self { inner, call: None }
    }
}

impl<B: http_body::Body> http_body::Body for ClientBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(trailers) = f.trailers_ref()
                    && let Some(mut call) = this.call.take()
                {
                    // tonic reports a missing grpc-status as UNKNOWN.
                    call.finish_grpc(grpc::status(trailers).unwrap_or(code::UNKNOWN));
                }
            }
            Some(Err(_)) | None => {
                if let Some(mut call) = this.call.take() {
                    call.finish_grpc(code::UNKNOWN);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Sends a reqwest request inside a CLIENT span, with trace context, baggage
/// and the request id injected (under [`request_id::header`]). Which of trace context and baggage are sent
/// follows `OTEL_PROPAGATORS` ([`Propagation::global`](super::Propagation::global)):
/// with `none`, neither.
#[cfg(feature = "reqwest")]
pub trait TracedRequest {
    /// Like `RequestBuilder::send`, traced.
    fn send_traced(self) -> impl Future<Output = Result<reqwest::Response, reqwest::Error>> + Send;
}

#[cfg(feature = "reqwest")]
impl TracedRequest for reqwest::RequestBuilder {
    fn send_traced(self) -> impl Future<Output = Result<reqwest::Response, reqwest::Error>> + Send {
        use tracing::Instrument;
        let (client, req) = self.build_split();
        async move {
            let mut req = req?;
            let uri: http::Uri = req.url().as_str().parse().unwrap_or_default();
            let method = req.method().clone();
            let inject = Inject {
                propagators: super::Propagation::global().propagators(),
                request_id_header: request_id::header(),
            };
            let mut call =
                ClientCall::start(&method, &uri, req.headers_mut(), inject, Detect::HttpOnly);
            let span = call.span.clone();
            let result = client.execute(req).instrument(span).await;
            match &result {
                Ok(res) => call.finish(Some(res.status().as_u16()), None),
                Err(e) if e.is_timeout() => call.finish(None, Some("timeout")),
                Err(_) => call.finish(None, Some("_OTHER")),
            }
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials() {
        let uri: http::Uri = "http://user:pw@example.com:8080/a;jsessionid=s?token=t&q=1"
            .parse()
            .unwrap();
        assert_eq!(
            redact_url(&uri),
            "http://example.com:8080/a;jsessionid=REDACTED?token=REDACTED&q=1"
        );
    }
}
