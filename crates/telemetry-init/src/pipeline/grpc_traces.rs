//! OTLP/gRPC trace export of requests the [`SpanEncoder`] already encoded.
//!
//! Why not opentelemetry-otlp's `TonicTracesClient`: it takes `SpanData`
//! and does its own (costly) conversion; see `span_encoder.rs`. This client
//! sends our bytes on the same tonic `Channel` type with the same options:
//! lazy connection, per-call timeout, gzip, metadata headers, and the SDK's
//! recommended retry policy for retryable codes.
//!
//! [`SpanEncoder`]: super::span_encoder::SpanEncoder

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::batch::ExportError;
use crate::Error;
use crate::config::{Compression, OtlpSettings};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The retry policy opentelemetry-otlp recommends (and uses by default).
const MAX_RETRIES: u32 = 3;
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);

/// A cheap-to-clone OTLP/gRPC trace client (tonic clients clone per call).
#[derive(Debug, Clone)]
pub(crate) struct GrpcTraceClient {
    grpc: tonic::client::Grpc<Channel>,
    metadata: MetadataMap,
}

impl GrpcTraceClient {
    /// Builds the client; must run inside the export runtime (tonic spawns
    /// the connection task there). Connects lazily, on the first export.
    pub(crate) fn new(s: &OtlpSettings, metadata: MetadataMap) -> Result<Self, Error> {
        let endpoint =
            tonic::transport::Endpoint::from_shared(s.endpoint.clone()).map_err(|e| {
                Error::Exporter {
                    signal: "traces",
                    message: format!("invalid endpoint {}: {e}", s.endpoint),
                }
            })?;
        // OTLP asks exporters to identify themselves; tonic appends its own.
        let endpoint = endpoint
            .user_agent(concat!(
                "OTel-OTLP-Exporter-Rust telemetry-init/",
                env!("CARGO_PKG_VERSION")
            ))
            .map_err(|e| Error::Exporter {
                signal: "traces",
                message: format!("user agent: {e}"),
            })?;
        let channel = endpoint.timeout(s.timeout).connect_lazy();
        let mut grpc = tonic::client::Grpc::new(channel);
        if s.compression == Compression::Gzip {
            grpc = grpc
                .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        Ok(Self { grpc, metadata })
    }

    /// Sends one encoded `ExportTraceServiceRequest`, retrying retryable
    /// failures while `budget` allows.
    pub(crate) async fn export(&self, body: Bytes, budget: Duration) -> Result<(), ExportError> {
        let started = Instant::now();
        let mut delay = INITIAL_DELAY;
        let mut attempt = 0;
        loop {
            let status = match self.send(body.clone()).await {
                Ok(()) => return Ok(()),
                Err(status) => status,
            };
            let remaining = budget.saturating_sub(started.elapsed());
            let wait = delay + jitter();
            if attempt >= MAX_RETRIES || !retryable(status.code()) || wait >= remaining {
                return Err(ExportError::failed(describe(&status)));
            }
            attempt += 1;
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(MAX_DELAY);
        }
    }

    async fn send(&self, body: Bytes) -> Result<(), Status> {
        let mut grpc = self.grpc.clone();
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("collector not ready: {e}")))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        let response = grpc
            .unary(request, PathAndQuery::from_static(EXPORT_PATH), RawCodec)
            .await?;
        // A partial success (some spans rejected) is still a delivered
        // request, as in the SDK; the collector's message is not actionable here.
        let _ = response.into_inner();
        Ok(())
    }
}

/// OTLP's retryable gRPC codes (RESOURCE_EXHAUSTED only with RetryInfo,
/// which a plain status check cannot see, so it is not retried).
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// Up to 100 ms, from the clock: enough to spread retries of many processes.
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Duration::from_millis(u64::from(nanos % 100))
}

/// The code and the transport cause, never the collector's full message
/// (it may echo our headers).
fn describe(status: &Status) -> String {
    let mut msg = format!("trace export failed with gRPC code {:?}", status.code());
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        msg.push_str(": ");
        msg.push_str(&e.to_string());
        source = e.source();
    }
    msg
}

/// Passes pre-encoded request bytes through; decodes the response.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        ExportTraceServiceResponse::decode(bytes)
            .map(Some)
            .map_err(|e| Status::internal(format!("undecodable export response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;

    #[test]
    fn a_refused_connection_says_why() {
        // A port nothing listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let settings = OtlpSettings {
            endpoint: format!("http://127.0.0.1:{port}"),
            protocol: Protocol::Grpc,
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            compression: Compression::None,
            insecure: true,
        };
        let err = rt
            .block_on(async {
                let client = GrpcTraceClient::new(&settings, MetadataMap::new()).unwrap();
                client.export(Bytes::new(), Duration::from_millis(50)).await
            })
            .unwrap_err();
        assert_eq!(err.error_type, "export_failed");
        assert!(err.message.contains("Unavailable"), "{}", err.message);
        assert!(
            err.message.to_ascii_lowercase().contains("connect"),
            "the transport error is in the message: {}",
            err.message
        );
    }
}
