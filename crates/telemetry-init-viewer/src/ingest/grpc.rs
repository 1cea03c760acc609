//! OTLP/gRPC: the three collector services over tonic, gzip accepted.

use std::sync::Arc;

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
use prost::Message;
use telemetry_init_testing::codec::MAX_MESSAGE_BYTES;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

use super::RETRY_AFTER_SECS;
use crate::store::{Op, Store};

#[derive(Clone)]
struct Svc(Arc<Store>);

fn unavailable() -> tonic::Status {
    let mut status =
        tonic::Status::unavailable("telemetry-init viewer: write queue full, retry later");
    // gRPC has no Retry-After; exporters back off on UNAVAILABLE. Say how long anyway.
    if let Ok(v) = RETRY_AFTER_SECS.to_string().parse() {
        status.metadata_mut().insert("retry-after", v);
    }
    status
}

impl Svc {
    fn submit(&self, op: Op, size: usize) -> Result<(), tonic::Status> {
        self.0.submit(op, size).map_err(|_| unavailable())
    }
}

#[tonic::async_trait]
impl TraceService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        let size = req.encoded_len();
        self.submit(Op::Traces(req), size)?;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        let size = req.encoded_len();
        self.submit(Op::Logs(req), size)?;
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        let size = req.encoded_len();
        self.submit(Op::Metrics(req), size)?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// [`serve`], for a spawned task: a failed listener has nobody to report to
/// but the store's error slot.
pub(crate) async fn serve_logged(
    store: Arc<Store>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let s = store.clone();
    if let Err(e) = serve(store, listener, shutdown).await {
        s.record_error(format!("OTLP gRPC server: {e}"));
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    store: Arc<Store>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let svc = Svc(store);
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
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
        )
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
