//! The gRPC (tonic) and HTTP (axum) OTLP servers.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

use crate::codec::{Decoded, decode_http_within};
use crate::model::{Signal, Transport, logs_from, metrics_from, spans_from};
use crate::store::{Answer, Behavior, Failure, Shared};
use crate::tls::{AuthLayer, RequiredHeaders};
use tokio_rustls::TlsAcceptor;

pub(crate) enum Admission {
    Accept,
    Scripted(Answer),
    Unavailable,
    ShuttingDown,
}

/// Counts the request, then applies the current [`Behavior`]: waits while it
/// is `Hang`.
pub(crate) async fn admit(
    shared: &Shared,
    transport: Transport,
    signal: Signal,
    gzip: bool,
    user_agent: Option<&str>,
) -> Admission {
    shared.count_request(transport, signal, gzip, user_agent);
    if let Some(answer) = shared.next_scripted(signal) {
        return Admission::Scripted(answer);
    }
    let mut behavior_rx = shared.behavior.subscribe();
    let mut shutdown_rx = shared.shutdown.subscribe();
    let mut counted = false;
    loop {
        if *shutdown_rx.borrow_and_update() {
            return Admission::ShuttingDown;
        }
        let behavior = *behavior_rx.borrow_and_update();
        if !counted {
            shared.count_behavior(behavior);
            counted = true;
        }
        match behavior {
            Behavior::Accept => return Admission::Accept,
            Behavior::Unavailable => return Admission::Unavailable,
            Behavior::Hang => {
                tokio::select! {
                    r = behavior_rx.changed() => if r.is_err() { return Admission::ShuttingDown },
                    r = shutdown_rx.changed() => if r.is_err() { return Admission::ShuttingDown },
                }
            }
        }
    }
}

/// One OTLP signal's request/response types.
trait Kind: Send + 'static {
    type Req: prost::Message + Default + DeserializeOwned + Send + 'static;
    type Resp: prost::Message + Default + Serialize;
    const SIGNAL: Signal;
    fn store(shared: &Shared, req: &Self::Req, transport: Transport);
    /// The success answer with a `partial_success`.
    fn partial(rejected: i64, message: String) -> Self::Resp;
}

/// The answer to a request that was admitted: stored or not, and what
/// `partial_success` or failure to send.
enum Outcome<R> {
    Ok(R),
    Fail(Failure),
}

fn outcome<K: Kind>(
    shared: &Shared,
    req: &K::Req,
    transport: Transport,
    answer: Answer,
) -> Outcome<K::Resp> {
    match answer {
        Answer::Accept => {
            K::store(shared, req, transport);
            Outcome::Ok(K::Resp::default())
        }
        Answer::PartialSuccess { rejected, message } => {
            K::store(shared, req, transport);
            Outcome::Ok(K::partial(rejected, message))
        }
        Answer::Fail(f) => Outcome::Fail(f),
    }
}

/// `google.rpc.Status`, `google.protobuf.Any`, `google.rpc.RetryInfo` and
/// `google.protobuf.Duration`: the gRPC status details a throttling
/// collector sends.
mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Status {
        #[prost(int32, tag = "1")]
        pub(super) code: i32,
        #[prost(string, tag = "2")]
        pub(super) message: String,
        #[prost(message, repeated, tag = "3")]
        pub(super) details: Vec<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Any {
        #[prost(string, tag = "1")]
        pub(super) type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub(super) value: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub(super) retry_delay: Option<Duration>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Duration {
        #[prost(int64, tag = "1")]
        pub(super) seconds: i64,
        #[prost(int32, tag = "2")]
        pub(super) nanos: i32,
    }
}

/// The gRPC status of a scripted failure (with `RetryInfo` when throttled).
fn grpc_failure(f: Failure) -> tonic::Status {
    use prost::Message as _;
    if f == Failure::Throttled {
        let retry = rpc::RetryInfo {
            retry_delay: Some(rpc::Duration {
                seconds: 1,
                nanos: 0,
            }),
        };
        let details = rpc::Status {
            code: f.grpc_code() as i32,
            message: f.message().to_string(),
            details: vec![rpc::Any {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".to_string(),
                value: retry.encode_to_vec(),
            }],
        };
        return tonic::Status::with_details(
            f.grpc_code(),
            f.message(),
            details.encode_to_vec().into(),
        );
    }
    tonic::Status::new(f.grpc_code(), f.message())
}

/// The HTTP answer of a scripted failure (with `Retry-After` when throttled).
fn http_failure(f: Failure) -> Response {
    let status = StatusCode::from_u16(f.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    if f == Failure::Throttled {
        return (status, [(header::RETRY_AFTER, "1")], f.message()).into_response();
    }
    (status, f.message()).into_response()
}

struct Traces;
struct Logs;
struct Metrics;

impl Kind for Traces {
    type Req = ExportTraceServiceRequest;
    type Resp = ExportTraceServiceResponse;
    const SIGNAL: Signal = Signal::Traces;
    fn store(shared: &Shared, req: &Self::Req, transport: Transport) {
        shared.store_spans(spans_from(req, transport));
    }
    fn partial(rejected: i64, message: String) -> Self::Resp {
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message,
            }),
        }
    }
}

impl Kind for Logs {
    type Req = ExportLogsServiceRequest;
    type Resp = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;
    fn store(shared: &Shared, req: &Self::Req, transport: Transport) {
        shared.store_logs(logs_from(req, transport));
    }
    fn partial(rejected: i64, message: String) -> Self::Resp {
        ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message,
            }),
        }
    }
}

impl Kind for Metrics {
    type Req = ExportMetricsServiceRequest;
    type Resp = ExportMetricsServiceResponse;
    const SIGNAL: Signal = Signal::Metrics;
    fn store(shared: &Shared, req: &Self::Req, transport: Transport) {
        shared.store_metrics(metrics_from(req, transport));
    }
    fn partial(rejected: i64, message: String) -> Self::Resp {
        ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: message,
            }),
        }
    }
}

// ---------------------------------------------------------------- gRPC

#[derive(Clone)]
struct GrpcSvc(Arc<Shared>);

async fn grpc_export<K: Kind>(
    shared: &Shared,
    req: tonic::Request<K::Req>,
) -> Result<tonic::Response<K::Resp>, tonic::Status> {
    let peer = req.remote_addr().map(|a| a.ip());
    if !peer.is_some_and(|p| crate::access::peer_allowed(p, shared.allow_remote)) {
        shared.count_rejected();
        return Err(tonic::Status::permission_denied(
            crate::access::REMOTE_REFUSED,
        ));
    }
    let gzip = req
        .metadata()
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let user_agent = req
        .metadata()
        .get("user-agent")
        .and_then(|v| v.to_str().ok());
    if let Err(message) = shared
        .size_limit
        .check(K::SIGNAL, prost::Message::encoded_len(req.get_ref()))
    {
        return Err(tonic::Status::resource_exhausted(message));
    }
    match admit(shared, Transport::Grpc, K::SIGNAL, gzip, user_agent).await {
        Admission::Accept => {
            K::store(shared, req.get_ref(), Transport::Grpc);
            Ok(tonic::Response::new(K::Resp::default()))
        }
        Admission::Scripted(answer) => {
            match outcome::<K>(shared, req.get_ref(), Transport::Grpc, answer) {
                Outcome::Ok(resp) => Ok(tonic::Response::new(resp)),
                Outcome::Fail(f) => Err(grpc_failure(f)),
            }
        }
        Admission::Unavailable => Err(tonic::Status::unavailable(
            "telemetry-init-testing receiver: behavior is Unavailable",
        )),
        Admission::ShuttingDown => Err(tonic::Status::unavailable(
            "telemetry-init-testing receiver: shutting down",
        )),
    }
}

#[tonic::async_trait]
impl TraceService for GrpcSvc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        grpc_export::<Traces>(&self.0, request).await
    }
}

#[tonic::async_trait]
impl LogsService for GrpcSvc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        grpc_export::<Logs>(&self.0, request).await
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcSvc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        grpc_export::<Metrics>(&self.0, request).await
    }
}

/// The three OTLP gRPC services.
fn grpc_routes(shared: Arc<Shared>) -> tonic::service::Routes {
    // Bounds the message as sent and after gzip decompression.
    let max = shared.max_body_bytes;
    let svc = GrpcSvc(shared);
    tonic::service::Routes::new(
        TraceServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max),
    )
    .add_service(
        LogsServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max),
    )
    .add_service(
        MetricsServiceServer::new(svc)
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max),
    )
    .prepare()
}

pub(crate) async fn serve_grpc(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    auth: RequiredHeaders,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let routes = grpc_routes(shared.clone());
    if let Some(acceptor) = tls {
        let service = tower::ServiceBuilder::new()
            .layer(AuthLayer(auth))
            .service(routes);
        crate::tls::serve(listener, acceptor, service, shutdown).await;
        return;
    }
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let router = tonic::transport::Server::builder()
        .layer(AuthLayer(auth))
        .add_routes(routes);
    let signal = async move {
        let _ = shutdown.wait_for(|down| *down).await;
    };
    // Errors here mean the listener failed; there is nobody to report to.
    let _ = router.serve_with_incoming_shutdown(incoming, signal).await;
}

// ---------------------------------------------------------------- HTTP

fn reject(shared: &Shared, status: StatusCode, message: String) -> Response {
    shared.count_rejected();
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn http_export<K: Kind>(
    shared: Arc<Shared>,
    peer: std::net::SocketAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !crate::access::peer_allowed(peer.ip(), shared.allow_remote) {
        return reject(
            &shared,
            StatusCode::FORBIDDEN,
            crate::access::REMOTE_REFUSED.to_owned(),
        );
    }
    let Decoded {
        request: req,
        encoding,
        gzip,
    } = match decode_http_within::<K::Req>(&headers, &body, K::SIGNAL, shared.max_body_bytes) {
        Ok(d) => d,
        Err(e) => return reject(&shared, e.status, e.message),
    };
    // Measured as protobuf, whatever the body's encoding: the Collector's
    // limit is on the decoded message.
    if let Err(message) = shared
        .size_limit
        .check(K::SIGNAL, prost::Message::encoded_len(&req))
    {
        return (StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
    }
    let transport = encoding.transport();
    let user_agent = header_str(&headers, header::USER_AGENT);
    match admit(&shared, transport, K::SIGNAL, gzip, user_agent).await {
        Admission::Accept => {
            K::store(&shared, &req, transport);
            let body = encoding.encode(&K::Resp::default());
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, encoding.content_type())],
                body,
            )
                .into_response()
        }
        Admission::Scripted(answer) => match outcome::<K>(&shared, &req, transport, answer) {
            Outcome::Ok(resp) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, encoding.content_type())],
                encoding.encode(&resp),
            )
                .into_response(),
            Outcome::Fail(f) => http_failure(f),
        },
        Admission::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "telemetry-init-testing receiver: behavior is Unavailable",
        )
            .into_response(),
        Admission::ShuttingDown => (
            StatusCode::SERVICE_UNAVAILABLE,
            "telemetry-init-testing receiver: shutting down",
        )
            .into_response(),
    }
}

type Peer = ConnectInfo<std::net::SocketAddr>;

async fn http_traces(
    State(s): State<Arc<Shared>>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    http_export::<Traces>(s, p, h, b).await
}

async fn http_logs(
    State(s): State<Arc<Shared>>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    http_export::<Logs>(s, p, h, b).await
}

async fn http_metrics(
    State(s): State<Arc<Shared>>,
    ConnectInfo(p): Peer,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    http_export::<Metrics>(s, p, h, b).await
}

pub(crate) async fn serve_http(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    auth: RequiredHeaders,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let app = Router::new()
        .route(Signal::Traces.http_path(), post(http_traces))
        .route(Signal::Logs.http_path(), post(http_logs))
        .route(Signal::Metrics.http_path(), post(http_metrics))
        .layer(DefaultBodyLimit::max(shared.max_body_bytes))
        .layer(AuthLayer(auth))
        .with_state(shared);
    if let Some(acceptor) = tls {
        crate::tls::serve(listener, acceptor, app, shutdown).await;
        return;
    }
    let signal = async move {
        let _ = shutdown.wait_for(|down| *down).await;
    };
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await;
}
