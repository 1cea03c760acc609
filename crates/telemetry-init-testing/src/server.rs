//! The gRPC (tonic) and HTTP (axum) OTLP servers.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

use crate::model::{Signal, Transport, logs_from, metrics_from, spans_from};
use crate::store::{Behavior, Shared};

/// Largest accepted request body, compressed or decompressed.
pub(crate) const MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

pub(crate) enum Admission {
    Accept,
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
}

impl Kind for Logs {
    type Req = ExportLogsServiceRequest;
    type Resp = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;
    fn store(shared: &Shared, req: &Self::Req, transport: Transport) {
        shared.store_logs(logs_from(req, transport));
    }
}

impl Kind for Metrics {
    type Req = ExportMetricsServiceRequest;
    type Resp = ExportMetricsServiceResponse;
    const SIGNAL: Signal = Signal::Metrics;
    fn store(shared: &Shared, req: &Self::Req, transport: Transport) {
        shared.store_metrics(metrics_from(req, transport));
    }
}

// ---------------------------------------------------------------- gRPC

#[derive(Clone)]
struct GrpcSvc(Arc<Shared>);

async fn grpc_export<K: Kind>(
    shared: &Shared,
    req: tonic::Request<K::Req>,
) -> Result<tonic::Response<K::Resp>, tonic::Status> {
    let gzip = req
        .metadata()
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let user_agent = req
        .metadata()
        .get("user-agent")
        .and_then(|v| v.to_str().ok());
    match admit(shared, Transport::Grpc, K::SIGNAL, gzip, user_agent).await {
        Admission::Accept => {
            K::store(shared, req.get_ref(), Transport::Grpc);
            Ok(tonic::Response::new(K::Resp::default()))
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

pub(crate) async fn serve_grpc(shared: Arc<Shared>, listener: TcpListener) {
    let svc = GrpcSvc(shared.clone());
    let mut shutdown = shared.shutdown.subscribe();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let router = tonic::transport::Server::builder()
        .add_service(
            TraceServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            LogsServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            MetricsServiceServer::new(svc)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        );
    let signal = async move {
        let _ = shutdown.wait_for(|down| *down).await;
    };
    // Errors here mean the listener failed; there is nobody to report to.
    let _ = router.serve_with_incoming_shutdown(incoming, signal).await;
}

// ---------------------------------------------------------------- HTTP

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

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

async fn http_export<K: Kind>(shared: Arc<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = header_str(&headers, header::CONTENT_TYPE)
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let encoding = match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            return reject(
                &shared,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported content type {other:?}: use application/x-protobuf or application/json"
                ),
            );
        }
    };
    let content_encoding = header_str(&headers, header::CONTENT_ENCODING)
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let raw: Vec<u8> = match content_encoding.as_str() {
        "" | "identity" => body.to_vec(),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            let read = flate2::read::GzDecoder::new(&body[..])
                .take(MAX_MESSAGE_BYTES as u64 + 1)
                .read_to_end(&mut out);
            if let Err(e) = read {
                return reject(
                    &shared,
                    StatusCode::BAD_REQUEST,
                    format!("bad gzip body: {e}"),
                );
            }
            if out.len() > MAX_MESSAGE_BYTES {
                return reject(
                    &shared,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("decompressed body exceeds {MAX_MESSAGE_BYTES} bytes"),
                );
            }
            out
        }
        other => {
            return reject(
                &shared,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content encoding {other:?}: use gzip or identity"),
            );
        }
    };
    let decoded: Result<K::Req, String> = match encoding {
        Encoding::Protobuf => {
            <K::Req as prost::Message>::decode(&raw[..]).map_err(|e| e.to_string())
        }
        Encoding::Json => serde_json::from_slice(&raw).map_err(|e| e.to_string()),
    };
    let req = match decoded {
        Ok(r) => r,
        Err(e) => {
            return reject(
                &shared,
                StatusCode::BAD_REQUEST,
                format!("cannot decode {} {} request: {e}", content_type, K::SIGNAL),
            );
        }
    };
    let transport = match encoding {
        Encoding::Protobuf => Transport::HttpProtobuf,
        Encoding::Json => Transport::HttpJson,
    };
    let gzip = matches!(content_encoding.as_str(), "gzip" | "x-gzip");
    let user_agent = header_str(&headers, header::USER_AGENT);
    match admit(&shared, transport, K::SIGNAL, gzip, user_agent).await {
        Admission::Accept => {
            K::store(&shared, &req, transport);
            let resp = K::Resp::default();
            let body = match encoding {
                Encoding::Protobuf => prost::Message::encode_to_vec(&resp),
                Encoding::Json => serde_json::to_vec(&resp).unwrap_or_else(|_| b"{}".to_vec()),
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, encoding.content_type())],
                body,
            )
                .into_response()
        }
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

async fn http_traces(State(s): State<Arc<Shared>>, h: HeaderMap, b: Bytes) -> Response {
    http_export::<Traces>(s, h, b).await
}

async fn http_logs(State(s): State<Arc<Shared>>, h: HeaderMap, b: Bytes) -> Response {
    http_export::<Logs>(s, h, b).await
}

async fn http_metrics(State(s): State<Arc<Shared>>, h: HeaderMap, b: Bytes) -> Response {
    http_export::<Metrics>(s, h, b).await
}

pub(crate) async fn serve_http(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    let app = Router::new()
        .route("/v1/traces", post(http_traces))
        .route("/v1/logs", post(http_logs))
        .route("/v1/metrics", post(http_metrics))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(shared);
    let signal = async move {
        let _ = shutdown.wait_for(|down| *down).await;
    };
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await;
}
