//! Encoding each signal's batch for its protocol, and building the one
//! OTLP client ([`OtlpClient`]) that sends it.
//!
//! Spans in protobuf go through our own [`SpanEncoder`] (the same bytes as
//! opentelemetry-proto's conversion, tested in `span_encoder_tests.rs`);
//! everything else through opentelemetry-proto's conversion, as
//! opentelemetry-otlp does. OTLP/JSON is that message in the spec's JSON
//! mapping (hex ids, camelCase), serialized by opentelemetry-proto's serde.
//!
//! [`SpanEncoder`]: super::span_encoder::SpanEncoder

use bytes::Bytes;
use opentelemetry::InstrumentationScope;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogBatch, SdkLogRecord};
use opentelemetry_sdk::trace::SpanData;
use prost::Message;
use tokio::runtime::Handle;

pub(crate) use super::transport::OtlpClient;
use crate::Error;
use crate::config::{OtlpSettings, Protocol, Signal};

/// Builds one signal's client on the export runtime (tonic spawns its
/// connection task on the current runtime).
pub(crate) fn client(
    s: &OtlpSettings,
    signal: Signal,
    handle: &Handle,
) -> Result<OtlpClient, Error> {
    let _entered = handle.enter();
    OtlpClient::new(s, signal)
}

/// Protobuf or JSON, by protocol.
fn serialize<M: Message + serde::Serialize>(protocol: Protocol, message: &M) -> Bytes {
    match protocol {
        Protocol::Grpc | Protocol::HttpProtobuf => Bytes::from(message.encode_to_vec()),
        // Serializing these plain data types cannot fail; an empty object
        // would be answered 400 and counted, never panicked on.
        Protocol::HttpJson => Bytes::from(serde_json::to_vec(message).unwrap_or_default()),
    }
}

/// Encodes span batches for one protocol.
pub(crate) enum SpanBody {
    /// Our direct protobuf encoder (gRPC and HTTP/protobuf).
    Proto(super::span_encoder::SpanEncoder),
    /// OTLP/JSON.
    Json(ResourceAttributesWithSchema),
}

impl SpanBody {
    pub(crate) fn new(protocol: Protocol, resource: &Resource) -> Self {
        match protocol {
            Protocol::Grpc | Protocol::HttpProtobuf => {
                SpanBody::Proto(super::span_encoder::SpanEncoder::new(resource))
            }
            Protocol::HttpJson => SpanBody::Json(resource.into()),
        }
    }

    /// Encodes a run of a batch (a JSON body needs the spans by value: it
    /// copies them; the protobuf encoder writes from the slice).
    pub(crate) fn encode_run(&mut self, run: &[SpanData]) -> Bytes {
        match self {
            SpanBody::Proto(encoder) => encoder.encode(run),
            SpanBody::Json(_) => self.encode(run.to_vec()),
        }
    }

    pub(crate) fn encode(&mut self, batch: Vec<SpanData>) -> Bytes {
        match self {
            SpanBody::Proto(encoder) => encoder.encode(&batch),
            SpanBody::Json(resource) => {
                let request = ExportTraceServiceRequest {
                    resource_spans:
                        opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(
                            batch, resource,
                        ),
                };
                serialize(Protocol::HttpJson, &request)
            }
        }
    }
}

/// Encodes a batch of log records for `protocol`.
pub(crate) fn encode_logs(
    protocol: Protocol,
    resource: &ResourceAttributesWithSchema,
    batch: &[(SdkLogRecord, InstrumentationScope)],
) -> Bytes {
    let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
        batch.iter().map(|(r, s)| (r, s)).collect();
    let logs = LogBatch::new(&refs);
    let request = ExportLogsServiceRequest {
        resource_logs:
            opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope(
                &logs, resource,
            ),
    };
    serialize(protocol, &request)
}

/// Encodes one collection of metrics (converted, exemplars added) for
/// `protocol`.
pub(crate) fn encode_metrics(protocol: Protocol, request: &ExportMetricsServiceRequest) -> Bytes {
    serialize(protocol, request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;

    #[test]
    fn json_spans_use_the_otlp_json_mapping() {
        let resource = Resource::builder_empty()
            .with_attribute(KeyValue::new("service.name", "json-test"))
            .build();
        let mut body = SpanBody::new(Protocol::HttpJson, &resource);
        let bytes = body.encode(Vec::new());
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v.get("resourceSpans").is_some(), "{v}");
    }
}
