//! OTLP/HTTP request decoding shared by the receiver and other in-process
//! collectors (the `telemetry-init-viewer` store uses it).
//!
//! ```
//! use axum::http::{HeaderMap, header};
//! use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
//! use telemetry_init_testing::Signal;
//! use telemetry_init_testing::codec::{HttpEncoding, decode_http};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
//! let decoded = decode_http::<ExportTraceServiceRequest>(&headers, br#"{"resourceSpans":[]}"#, Signal::Traces)
//!     .expect("valid OTLP/JSON");
//! assert_eq!(decoded.encoding, HttpEncoding::Json);
//! assert!(decoded.request.resource_spans.is_empty());
//! ```

use std::io::Read;

use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{Signal, Transport};

/// Largest accepted request body, compressed or decompressed, on every
/// transport (gRPC messages included), for servers built on this codec (the
/// viewer, the demo's relay): 16 MiB, four times the 4 MiB request limit of
/// the OpenTelemetry Collector and Alloy that exporters stay under, so a
/// gzip bomb costs at most this much memory. The receiver's default
/// ([`DEFAULT_MAX_BODY_BYTES`](crate::access::DEFAULT_MAX_BODY_BYTES)).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The body encoding of an OTLP/HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpEncoding {
    /// `application/x-protobuf` (or `application/protobuf`).
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl HttpEncoding {
    /// The `Content-Type` of an answer in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            HttpEncoding::Protobuf => "application/x-protobuf",
            HttpEncoding::Json => "application/json",
        }
    }

    /// The [`Transport`] a request in this encoding arrived on.
    pub fn transport(self) -> Transport {
        match self {
            HttpEncoding::Protobuf => Transport::HttpProtobuf,
            HttpEncoding::Json => Transport::HttpJson,
        }
    }

    /// Encodes an export response (or any OTLP message) in this encoding.
    pub fn encode<M: prost::Message + Serialize>(self, message: &M) -> Vec<u8> {
        match self {
            HttpEncoding::Protobuf => message.encode_to_vec(),
            HttpEncoding::Json => serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }
}

/// A decoded OTLP/HTTP export request.
#[derive(Debug)]
pub struct Decoded<R> {
    /// The request.
    pub request: R,
    /// Its body encoding.
    pub encoding: HttpEncoding,
    /// Whether the body was gzip-compressed.
    pub gzip: bool,
}

/// Why an OTLP/HTTP request body was refused, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// `400`, `413` or `415`.
    pub status: StatusCode,
    /// A message for the client (plain text, bounded).
    pub message: String,
}

fn refuse(status: StatusCode, message: String) -> DecodeError {
    DecodeError { status, message }
}

/// Decodes an OTLP/HTTP export body: checks `Content-Type` (protobuf or
/// JSON), undoes `Content-Encoding: gzip` within [`MAX_MESSAGE_BYTES`], and
/// decodes the message.
pub fn decode_http<R>(
    headers: &HeaderMap,
    body: &[u8],
    signal: Signal,
) -> Result<Decoded<R>, DecodeError>
where
    R: prost::Message + Default + DeserializeOwned,
{
    decode_http_within(headers, body, signal, MAX_MESSAGE_BYTES)
}

/// Like [`decode_http`], with a body (as sent and after decompression) of
/// at most `max_bytes`: inflating stops one byte past it (`413`), so a gzip
/// bomb costs at most that much memory.
pub fn decode_http_within<R>(
    headers: &HeaderMap,
    body: &[u8],
    signal: Signal,
    max_bytes: usize,
) -> Result<Decoded<R>, DecodeError>
where
    R: prost::Message + Default + DeserializeOwned,
{
    if body.len() > max_bytes {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body exceeds {max_bytes} bytes"),
        ));
    }
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    let content_type = header_str(header::CONTENT_TYPE)
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let encoding = match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => HttpEncoding::Protobuf,
        "application/json" => HttpEncoding::Json,
        other => {
            let other: String = other.chars().take(100).collect();
            return Err(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported content type {other:?}: use application/x-protobuf or application/json"
                ),
            ));
        }
    };
    let content_encoding = header_str(header::CONTENT_ENCODING)
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let inflated;
    let (raw, gzip): (&[u8], bool) = match content_encoding.as_str() {
        "" | "identity" => (body, false),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            let read = flate2::read::GzDecoder::new(body)
                .take(max_bytes as u64 + 1)
                .read_to_end(&mut out);
            if let Err(e) = read {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!("bad gzip body: {e}"),
                ));
            }
            if out.len() > max_bytes {
                return Err(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("decompressed body exceeds {max_bytes} bytes"),
                ));
            }
            inflated = out;
            (&inflated[..], true)
        }
        other => {
            let other: String = other.chars().take(100).collect();
            return Err(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content encoding {other:?}: use gzip or identity"),
            ));
        }
    };
    let decoded: Result<R, String> = match encoding {
        HttpEncoding::Protobuf => R::decode(raw).map_err(|e| e.to_string()),
        HttpEncoding::Json => serde_json::from_slice(raw).map_err(|e| e.to_string()),
    };
    match decoded {
        Ok(request) => Ok(Decoded {
            request,
            encoding,
            gzip,
        }),
        Err(e) => Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("cannot decode {content_type} {signal} request: {e}"),
        )),
    }
}
