//! The embedded default's fan-out: one loopback OTLP/gRPC endpoint that
//! forwards every export to the viewer (the browser UI, the SQLite store)
//! and to the in-memory receiver behind `GET /debug/telemetry`.
//!
//! The service exports to one endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` has one
//! value), and both documented ways to look at the demo's telemetry must
//! keep working, so the demo puts this small relay in front of them. The
//! relay answers with the first target's answer (the viewer: its
//! back-pressure reaches the exporter); the others are best effort.

use std::net::SocketAddr;

use futures_util::future::join_all;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

// Largest export accepted and forwarded: the receiver's and the viewer's
// own limit (16 MiB, compressed or not).
use telemetry_init_testing::codec::MAX_MESSAGE_BYTES;

#[derive(Clone)]
struct Targets(Vec<Channel>);

/// Sends `msg` to every target at once; the first target's answer is the answer.
macro_rules! fan_out {
    ($targets:expr, $client:ident, $msg:expr) => {{
        let msg = $msg;
        let calls = $targets.0.iter().map(|channel| {
            let mut client = $client::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
            let msg = msg.clone();
            async move { client.export(msg).await }
        });
        let mut answers = join_all(calls).await.into_iter();
        match answers.next() {
            Some(first) => first,
            None => Err(Status::unavailable("no export target")),
        }
    }};
}

#[tonic::async_trait]
impl TraceService for Targets {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        fan_out!(self, TraceServiceClient, request.into_inner())
    }
}

#[tonic::async_trait]
impl LogsService for Targets {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        fan_out!(self, LogsServiceClient, request.into_inner())
    }
}

#[tonic::async_trait]
impl MetricsService for Targets {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        fan_out!(self, MetricsServiceClient, request.into_inner())
    }
}

/// A running relay; dropping it (or [`Tee::shutdown`]) stops it.
pub(crate) struct Tee {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Tee {
    /// Listens on an ephemeral loopback port and forwards to `targets`
    /// (gRPC endpoints such as `http://127.0.0.1:4317`), the first one first.
    pub(crate) async fn start(targets: &[String]) -> Result<Tee, Box<dyn std::error::Error>> {
        let mut channels = Vec::with_capacity(targets.len());
        for t in targets {
            // Lazy: a target that is not up yet is dialled on first export.
            channels.push(Endpoint::from_shared(t.clone())?.connect_lazy());
        }
        let targets = Targets(channels);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let router = Server::builder()
            .add_service(
                TraceServiceServer::new(targets.clone())
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                LogsServiceServer::new(targets.clone())
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                MetricsServiceServer::new(targets).max_decoding_message_size(MAX_MESSAGE_BYTES),
            );
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let _ = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Tee {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The endpoint to export to.
    pub(crate) fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and waits for in-flight exports to be forwarded.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
