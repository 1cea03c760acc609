//! Building the OTLP exporters from resolved settings.

use std::collections::HashMap;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use tokio::runtime::Handle;

use crate::Error;
use crate::config::{Compression, OtlpSettings, Protocol, Signal};

fn metadata(headers: &[(String, String)]) -> Result<tonic::metadata::MetadataMap, String> {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
        let value = http::HeaderValue::from_str(v).map_err(|e| e.to_string())?;
        map.append(name, value);
    }
    Ok(tonic::metadata::MetadataMap::from_headers(map))
}

fn check_tls(signal: Signal, s: &OtlpSettings) -> Result<(), Error> {
    if s.endpoint.starts_with("https://") {
        return Err(Error::Exporter {
            signal: signal.as_str(),
            message: format!(
                "{} is an https endpoint, but this build has no TLS support; \
                 use an http:// endpoint (e.g. a local Alloy agent) or terminate TLS in the collector",
                s.endpoint
            ),
        });
    }
    Ok(())
}

/// The trace client of our own OTLP/gRPC path (see `grpc_traces.rs`).
pub(crate) fn grpc_trace_client(
    s: &OtlpSettings,
    handle: &Handle,
) -> Result<super::grpc_traces::GrpcTraceClient, Error> {
    check_tls(Signal::Traces, s)?;
    let metadata = metadata(&s.headers).map_err(|message| Error::Exporter {
        signal: Signal::Traces.as_str(),
        message,
    })?;
    let _entered = handle.enter();
    super::grpc_traces::GrpcTraceClient::new(s, metadata)
}

/// Generates one builder function per signal: the three OTLP exporter
/// builders share their configuration traits but not a common type.
macro_rules! exporter_fn {
    ($fn_name:ident, $builder:expr, $out:ty, $signal:expr) => {
        pub(crate) fn $fn_name(s: &OtlpSettings, handle: &Handle) -> Result<$out, Error> {
            let signal: Signal = $signal;
            check_tls(signal, s)?;
            let err = |e: &dyn std::fmt::Display| Error::Exporter {
                signal: signal.as_str(),
                message: e.to_string(),
            };
            // tonic spawns its connection tasks onto the current runtime at
            // build time: make that our export runtime.
            let _entered = handle.enter();
            let built = match s.protocol {
                Protocol::Grpc => {
                    let mut b = $builder
                        .with_tonic()
                        .with_endpoint(s.endpoint.clone())
                        .with_timeout(s.timeout)
                        .with_metadata(metadata(&s.headers).map_err(|e| err(&e))?);
                    if s.compression == Compression::Gzip {
                        b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                    }
                    b.build()
                }
                Protocol::HttpProtobuf | Protocol::HttpJson => {
                    let protocol = if s.protocol == Protocol::HttpJson {
                        opentelemetry_otlp::Protocol::HttpJson
                    } else {
                        opentelemetry_otlp::Protocol::HttpBinary
                    };
                    let headers: HashMap<String, String> = s.headers.iter().cloned().collect();
                    let mut b = $builder
                        .with_http()
                        .with_endpoint(s.endpoint.clone())
                        .with_protocol(protocol)
                        .with_timeout(s.timeout)
                        .with_headers(headers);
                    if s.compression == Compression::Gzip {
                        b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                    }
                    b.build()
                }
            };
            built.map_err(|e| err(&e))
        }
    };
}

exporter_fn!(
    span_exporter,
    opentelemetry_otlp::SpanExporter::builder(),
    opentelemetry_otlp::SpanExporter,
    Signal::Traces
);
exporter_fn!(
    log_exporter,
    opentelemetry_otlp::LogExporter::builder(),
    opentelemetry_otlp::LogExporter,
    Signal::Logs
);
exporter_fn!(
    metric_exporter,
    opentelemetry_otlp::MetricExporter::builder(),
    opentelemetry_otlp::MetricExporter,
    Signal::Metrics
);
