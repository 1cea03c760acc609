//! The server middleware: one SERVER span per request with the stable HTTP
//! (or gRPC) semantic conventions, W3C Trace Context and Baggage extraction
//! (as `OTEL_PROPAGATORS` says, see [`super::propagation`]),
//! a request id, and the RED metrics.
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let _telemetry = telemetry_init::install()?;
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "jane" }))
//!     // `Router::layer` runs after routing, so `http.route` is the template.
//!     .layer(telemetry_init::layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Requests to the skip list (by default `/healthz`, `/readyz`, `/livez`,
//! `/health`, `/metrics` and the gRPC health service) create no span and no
//! metrics. `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie`
//! are never recorded, and secret query values and path parameters
//! (`;jsessionid=`) become `REDACTED` (the policy of [`crate::redact`]).
//! Values taken from the request are cut to the [built-in bounds](super::limits).
//!
//! The request id is read from the [request-id header](super::request_id)
//! (`x-request-id` unless configured otherwise), or generated when absent
//! or not sane; it is echoed on the response under the same header, is the
//! span's and the log lines' `request_id`, is in the request's extensions
//! as [`RequestId`], and outgoing calls made inside the request forward it.
//!
//! A request is recorded as a gRPC call only when the service's own stack
//! says so, never because of a header the client chose: by default, when
//! tonic's server delivered it (see [`GrpcDetection`]).

mod body;
mod future;
mod pending;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, Request, Response};
use opentelemetry::baggage::Baggage;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use body::ResponseBody;
pub use future::ResponseFuture;

use super::Propagators;
use super::attributes;
use super::call::Protocol;
use super::grpc;
use super::limits::{self, truncate};
use super::red_metrics;
use super::request_id;
use pending::Pending;

/// The request id of the current request, in the request's extensions.
pub use super::request_id::RequestId;

/// The W3C Baggage received with the request, in the request's extensions
/// (properties are not carried over; the propagated context keeps them).
///
/// ```
/// use axum::Extension;
/// use telemetry_init::http::RequestBaggage;
///
/// async fn handler(baggage: Option<Extension<RequestBaggage>>) -> String {
///     baggage
///         .and_then(|Extension(b)| b.get("tenant").map(str::to_string))
///         .unwrap_or_default()
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestBaggage(pub std::sync::Arc<Baggage>);

impl RequestBaggage {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }
}

const DEFAULT_SKIP: &[&str] = &[
    "/healthz",
    "/readyz",
    "/livez",
    "/health",
    "/metrics",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
];

/// Which requests the [`ServerLayer`] records as gRPC calls (`rpc.*`
/// attributes, `rpc.server.duration`) rather than HTTP requests.
///
/// A request must always say `content-type: application/grpc`; what a
/// variant adds is whether that header is believed. A client chooses its
/// headers, so on an HTTP route that header alone must not turn the raw
/// path into `rpc.service`/`rpc.method` values or take the request out of
/// the HTTP metrics.
///
/// ```
/// use telemetry_init::http::GrpcDetection;
///
/// // tonic services mounted in an axum router (`Routes::into_axum_router`):
/// // the router is the gRPC stack, so the header is believed.
/// let layer = telemetry_init::layer().grpc(GrpcDetection::ContentType);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GrpcDetection {
    /// The default: gRPC when tonic's own server delivered the request
    /// (`tonic::transport::Server`, which marks each request with its
    /// connection info) and the content type is gRPC. Every request an
    /// axum or hyper server delivers is HTTP.
    #[default]
    TonicServer,
    /// gRPC whenever the content type is gRPC: for a service that routes
    /// gRPC itself (tonic routes inside axum, a gRPC-only service on
    /// another server).
    ContentType,
    /// Every request is HTTP.
    Never,
}

#[derive(Debug)]
struct Settings {
    routes: red_metrics::RouteCache,
    grpc: GrpcDetection,
    skip_paths: Vec<String>,
    baggage_allowlist: Vec<String>,
    /// This layer's own request-id header; `None`: [`request_id::header`].
    request_id_header: Option<HeaderName>,
    propagation: super::propagation::Overrides,
}

/// [`tower::Layer`] that adds telemetry to a server; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ServerLayer {
    settings: Arc<Settings>,
}

impl Default for ServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerLayer {
    /// The defaults: the standard skip list, no baggage attributes, the
    /// process-wide request-id header ([`request_id::header`]).
    pub fn new() -> Self {
        red_metrics::describe();
        Self {
            settings: Arc::new(Settings {
                routes: red_metrics::RouteCache::default(),
                grpc: GrpcDetection::default(),
                skip_paths: DEFAULT_SKIP.iter().map(|s| s.to_string()).collect(),
                baggage_allowlist: Vec::new(),
                request_id_header: None,
                propagation: Default::default(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut s = Settings {
            routes: red_metrics::RouteCache::default(),
            grpc: self.settings.grpc,
            skip_paths: self.settings.skip_paths.clone(),
            baggage_allowlist: self.settings.baggage_allowlist.clone(),
            request_id_header: self.settings.request_id_header.clone(),
            propagation: self.settings.propagation,
        };
        f(&mut s);
        self.settings = Arc::new(s);
        self
    }

    /// Replaces the skip list (exact paths).
    #[must_use]
    pub fn skip_paths<I, P>(self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        let paths = paths.into_iter().map(Into::into).collect();
        self.edit(|s| s.skip_paths = paths)
    }

    /// Baggage keys copied into span attributes as `baggage.<key>`. Empty by
    /// default: baggage often carries personal data.
    #[must_use]
    pub fn baggage_allowlist<I, K>(self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        let keys = keys.into_iter().map(Into::into).collect();
        self.edit(|s| s.baggage_allowlist = keys)
    }

    /// Which requests are recorded as gRPC calls; see [`GrpcDetection`]
    /// (default: those tonic's server delivered).
    #[must_use]
    pub fn grpc(self, detection: GrpcDetection) -> Self {
        self.edit(|s| s.grpc = detection)
    }

    /// The header this layer reads the request id from and echoes it on
    /// the response under, instead of the process-wide one
    /// ([`request_id::header`]: `TELEMETRY_REQUEST_ID_HEADER`,
    /// [`Builder::request_id_header`](crate::Builder::request_id_header),
    /// else `x-request-id`). Outgoing calls forward the id under the
    /// process-wide name, or [`ClientLayer::request_id_header`](super::ClientLayer::request_id_header).
    /// Do not name a header with another meaning (`traceparent`,
    /// `authorization`, `content-length`, …): the configured settings refuse
    /// those, this option trusts your code.
    ///
    /// ```
    /// use http::HeaderName;
    /// use telemetry_init::http::ServerLayer;
    ///
    /// let layer = ServerLayer::new().request_id_header(HeaderName::from_static("x-correlation-id"));
    /// ```
    #[must_use]
    pub fn request_id_header(self, name: HeaderName) -> Self {
        self.edit(|s| s.request_id_header = Some(name))
    }

    /// The formats this layer extracts, instead of the process-wide
    /// `OTEL_PROPAGATORS` setting (see [`Propagation::global`]).
    /// [`Propagators::NONE`] continues no caller's trace and reads no baggage.
    ///
    /// ```
    /// use telemetry_init::http::{Propagators, ServerLayer};
    ///
    /// let layer = ServerLayer::new().propagators(Propagators::TRACE_CONTEXT);
    /// ```
    ///
    /// [`Propagation::global`]: super::Propagation::global
    #[must_use]
    pub fn propagators(self, propagators: Propagators) -> Self {
        self.edit(|s| s.propagation.propagators = Some(propagators))
    }

    /// Whether to continue the caller's trace (`true`, the default unless
    /// `TELEMETRY_TRUST_INCOMING_CONTEXT=false`). For a public edge, `false`:
    /// every request starts a new trace (the caller cannot choose the
    /// trace-id or force sampling), the caller's valid context is kept as a
    /// span link so the two traces can still be joined, and incoming baggage
    /// is ignored.
    ///
    /// ```
    /// use telemetry_init::http::ServerLayer;
    ///
    /// let gateway = ServerLayer::new().trust_incoming_context(false);
    /// ```
    #[must_use]
    pub fn trust_incoming_context(self, trust: bool) -> Self {
        self.edit(|s| s.propagation.trust_incoming_context = Some(trust))
    }
}

impl<S> tower::Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// The [`tower::Service`] made by [`ServerLayer`].
#[derive(Debug, Clone)]
pub struct ServerService<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for ServerService<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: http_body::Body,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let path = req.uri().path();
        if self.settings.skip_paths.iter().any(|p| p == path) {
            return ResponseFuture::skipped(self.inner.call(req));
        }

        let (method, method_original) = attributes::method(req.method());
        let method_original = method_original.map(|m| truncate(m, limits::MAX_METHOD));
        let grpc_call = is_grpc(&req, self.settings.grpc)
            .then(|| grpc::Call::new(path, req.headers()))
            .flatten();
        let path = truncate(path, limits::MAX_PATH);
        let route = matched_route(&req);

        let request_id_header = match &self.settings.request_id_header {
            Some(h) => h,
            None => request_id::header(),
        };
        let request_id = req
            .headers()
            .get(request_id_header)
            .and_then(RequestId::sanitize)
            .unwrap_or_else(RequestId::generate);

        let redaction = crate::redact::current();
        let opt = Optional::read(&req, redaction);
        // Path parameters (`;jsessionid=…`) are secrets; borrowed unless one is there.
        let path = redaction.redact_path(path);
        let (span, kind) = if let Some(call) = grpc_call {
            let (service, rpc_method) = (&call.service, &call.method);
            let span = tracing::info_span!(
                target: "telemetry_init::http",
                "grpc request",
                otel.name = %format_args!("{service}/{rpc_method}"),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = service.as_str(),
                rpc.method = rpc_method.as_str(),
                rpc.grpc.status_code = tracing::field::Empty,
                url.path = &*path,
                server.address = opt.server_address,
                server.port = opt.server_port,
                client.address = opt.client_address.map(tracing::field::display),
                network.protocol.version = attributes::protocol_version(req.version()),
                user_agent.original = opt.user_agent,
                error.type = tracing::field::Empty,
                request_id = request_id.as_str(),
            );
            (span, Protocol::Grpc(call))
        } else {
            let metrics = self.settings.routes.get(method, route);
            let span = tracing::info_span!(
                target: "telemetry_init::http",
                "http request",
                otel.name = &*metrics.span_name,
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                http.request.method = method,
                http.request.method_original = method_original,
                http.route = route,
                http.response.status_code = tracing::field::Empty,
                url.path = &*path,
                url.scheme = req.uri().scheme_str().unwrap_or("http"),
                url.query = opt.query.as_deref(),
                server.address = opt.server_address,
                server.port = opt.server_port,
                client.address = opt.client_address.map(tracing::field::display),
                network.protocol.version = attributes::protocol_version(req.version()),
                user_agent.original = opt.user_agent,
                error.type = tracing::field::Empty,
                request_id = request_id.as_str(),
            );
            (span, Protocol::Http(metrics))
        };

        drop(opt);
        let propagation = self.settings.propagation.resolve();
        let trusted = propagation.trusts_incoming_context();
        let mut formats = propagation.propagators();
        if !trusted {
            // An edge never takes a caller's baggage.
            formats = Propagators::from_bits(formats.bits() & !Propagators::BAGGAGE.bits());
        }
        let extracted = telemetry_init_propagation::extract_with(req.headers(), formats);
        if let Some(b) = &extracted.baggage {
            for key in &self.settings.baggage_allowlist {
                if let Some(v) = b.get(key.as_str()) {
                    span.set_attribute(
                        format!("baggage.{key}"),
                        truncate(v.as_str(), limits::MAX_BAGGAGE_VALUE).to_string(),
                    );
                }
            }
            let copy: Baggage = b
                .iter()
                .map(|(k, (v, _))| opentelemetry::KeyValue::new(k.clone(), v.clone()))
                .collect();
            req.extensions_mut()
                .insert(RequestBaggage(std::sync::Arc::new(copy)));
        }
        if trusted {
            let parent = extracted.into_context(&opentelemetry::Context::new());
            if let Err(tracing_opentelemetry::SetParentError::LayerNotFound) =
                span.set_parent(parent)
            {
                // No OpenTelemetry layer (`OTEL_SDK_DISABLED=true`): outgoing
                // calls forward the caller's context unchanged. Extracted
                // again: `set_parent` consumed it, and this path is rare.
                let parent = telemetry_init_propagation::extract_with(req.headers(), formats)
                    .into_context(&opentelemetry::Context::new());
                super::passthrough::keep(&span, parent);
            }
        } else {
            // WHY a link and an empty parent: the caller's ids, sampling flag
            // and tracestate are not trusted, so the SDK starts a new root
            // (new trace-id, our sampler's own decision); the link keeps the
            // way back to the caller's trace for whoever reads the span.
            let _ = span.set_parent(opentelemetry::Context::new());
            if let Some(sc) = extracted.span_context {
                span.add_link(sc);
            }
        }
        req.extensions_mut().insert(request_id.clone());

        let fut = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        ResponseFuture::traced(
            fut,
            Pending::start(
                method,
                kind,
                request_id,
                self.settings.request_id_header.clone(),
                span,
            ),
        )
    }
}

/// Attributes read from the request before its span is created: every
/// field set at creation costs one visit, every later `record` one more
/// dispatch through all layers.
struct Optional<'a> {
    query: Option<std::borrow::Cow<'a, str>>,
    server_address: Option<&'a str>,
    server_port: Option<i64>,
    user_agent: Option<&'a str>,
    client_address: Option<std::net::IpAddr>,
}

impl<'a> Optional<'a> {
    fn read<B>(req: &'a Request<B>, redaction: &crate::redact::Redaction) -> Self {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .map(attributes::host_and_port)
            .map(|(h, p)| (truncate(h, limits::MAX_HOST), p));
        #[cfg(feature = "axum")]
        let client_address = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|ci| ci.0.ip());
        #[cfg(not(feature = "axum"))]
        let client_address = None;
        // tonic's own server puts the peer address here (axum's is above).
        #[cfg(feature = "tonic")]
        let client_address = client_address.or_else(|| {
            req.extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|ci| ci.remote_addr())
                .map(|a| a.ip())
        });
        Self {
            query: req
                .uri()
                .query()
                .map(|q| redaction.redact_query(truncate(q, limits::MAX_QUERY))),
            server_address: host.map(|(a, _)| a),
            server_port: host.and_then(|(_, p)| p).map(i64::from),
            user_agent: req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|h| h.to_str().ok())
                .map(|ua| truncate(ua, limits::MAX_USER_AGENT)),
            client_address,
        }
    }
}

fn is_grpc<B>(req: &Request<B>, detection: GrpcDetection) -> bool {
    let says_grpc = || grpc::says_grpc(req.headers());
    match detection {
        GrpcDetection::Never => false,
        GrpcDetection::ContentType => says_grpc(),
        GrpcDetection::TonicServer => delivered_by_tonic(req) && says_grpc(),
    }
}

/// Whether tonic's server delivered `req`: it inserts the connection info
/// of its listener (TCP, or a Unix socket) into every request before any
/// layer runs; axum and hyper servers never do.
fn delivered_by_tonic<B>(req: &Request<B>) -> bool {
    #[cfg(feature = "tonic")]
    {
        let ext = req.extensions();
        #[cfg(unix)]
        if ext
            .get::<tonic::transport::server::UdsConnectInfo>()
            .is_some()
        {
            return true;
        }
        ext.get::<tonic::transport::server::TcpConnectInfo>()
            .is_some()
    }
    #[cfg(not(feature = "tonic"))]
    {
        let _ = req;
        false
    }
}

/// The route template, from axum's `MatchedPath` (set by the router before
/// route layers run). Never the raw path: that would be unbounded.
fn matched_route<B>(req: &Request<B>) -> Option<&str> {
    #[cfg(feature = "axum")]
    {
        req.extensions()
            .get::<axum::extract::MatchedPath>()
            .map(|m| m.as_str())
    }
    #[cfg(not(feature = "axum"))]
    {
        let _ = req;
        None
    }
}
