//! The one OTLP client every signal uses on every transport: it sends a
//! request body already encoded for its protocol, over gRPC or HTTP, in
//! plain text or TLS, with one retry policy, one naming of failures and one
//! reading of `partial_success` answers.
//!
//! Why not opentelemetry-otlp's exporters: each transport there has its own
//! retry, error and partial-success handling (and takes `SpanData`, which
//! costs a conversion our span encoder avoids), so behaviour depended on the
//! protocol a user picked. Here only the framing differs.

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::batch::{Delivered, ExportError};
use crate::Error;
use crate::config::{Compression, OtlpSettings, Protocol, Signal};

/// The retry policy opentelemetry-otlp recommends, for every transport.
const MAX_RETRIES: u32 = 3;
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);

/// Most bytes of a collector's answer that are read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Most characters of a collector's message kept for logs and reports.
const MAX_MESSAGE_CHARS: usize = 256;

const USER_AGENT_VALUE: &str = concat!(
    "OTel-OTLP-Exporter-Rust telemetry-init/",
    env!("CARGO_PKG_VERSION")
);

type Connector = HttpsConnector<HttpConnector>;

/// A cheap-to-clone OTLP client for one signal.
#[derive(Debug, Clone)]
pub(crate) struct OtlpClient {
    signal: Signal,
    sender: Sender,
    attempt_timeout: Duration,
    /// For `https://` endpoints: names TLS failures the transport hides.
    probe: Option<std::sync::Arc<super::tls::Probe>>,
}

#[derive(Debug, Clone)]
enum Sender {
    Grpc {
        grpc: tonic::client::Grpc<Channel>,
        path: PathAndQuery,
        metadata: MetadataMap,
    },
    Http {
        client: Box<Client<Connector, Full<Bytes>>>,
        uri: Uri,
        headers: HeaderMap,
        json: bool,
        gzip: bool,
    },
}

fn header_map(signal: Signal, headers: &[(String, String)]) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        // Both were validated when the configuration was resolved; the
        // message names the header only, never its value.
        let name = HeaderName::from_bytes(k.as_bytes());
        let value = HeaderValue::from_str(v);
        match (name, value) {
            (Ok(name), Ok(mut value)) => {
                value.set_sensitive(true);
                map.append(name, value);
            }
            _ => {
                return Err(Error::Exporter {
                    signal: signal.as_str(),
                    message: format!("invalid header {k:?}"),
                });
            }
        }
    }
    Ok(map)
}

/// The TCP + (optional) TLS connector, speaking HTTP/2 only (gRPC) or
/// HTTP/1.1 only (OTLP/HTTP); ALPN follows.
fn connector(
    s: &OtlpSettings,
    signal: Signal,
    tls: Option<rustls::ClientConfig>,
    h2: bool,
) -> Result<Connector, Error> {
    // A plain-text endpoint never touches TLS, so it needs no roots: an
    // empty trust store stands in and is never used.
    let config = if let Some(config) = tls {
        config
    } else {
        rustls::ClientConfig::builder_with_provider(super::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Exporter {
                signal: signal.as_str(),
                message: format!("TLS: {e}"),
            })?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(s.timeout));
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    Ok(if h2 {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    })
}

impl OtlpClient {
    /// Builds the client; must run inside the export runtime (tonic spawns
    /// its connection task there). Connects lazily, on the first export.
    pub(crate) fn new(s: &OtlpSettings, signal: Signal) -> Result<Self, Error> {
        let err = |message: String| Error::Exporter {
            signal: signal.as_str(),
            message,
        };
        let headers = header_map(signal, &s.headers)?;
        let tls = if s.endpoint.starts_with("https://") {
            Some(super::tls::client_config(signal, &s.tls)?)
        } else {
            None
        };
        let probe = match (&tls, s.endpoint.parse::<Uri>()) {
            (Some(config), Ok(uri)) => {
                super::tls::Probe::new(config.clone(), &uri, s.timeout).map(std::sync::Arc::new)
            }
            _ => None,
        };
        let sender = match s.protocol {
            Protocol::Grpc => {
                let endpoint = tonic::transport::Endpoint::from_shared(s.endpoint.clone())
                    .map_err(|e| err(format!("invalid endpoint {}: {e}", s.endpoint)))?
                    // OTLP asks exporters to identify themselves; tonic appends its own.
                    .user_agent(USER_AGENT_VALUE)
                    .map_err(|e| err(format!("user agent: {e}")))?
                    .timeout(s.timeout);
                let channel =
                    endpoint.connect_with_connector_lazy(connector(s, signal, tls, true)?);
                let mut grpc = tonic::client::Grpc::new(channel);
                if s.compression == Compression::Gzip {
                    grpc = grpc
                        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                Sender::Grpc {
                    grpc,
                    path: PathAndQuery::from_static(signal.grpc_path()),
                    metadata: MetadataMap::from_headers(headers),
                }
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                let uri: Uri = s
                    .endpoint
                    .parse()
                    .map_err(|e| err(format!("invalid endpoint {}: {e}", s.endpoint)))?;
                let client =
                    Client::builder(TokioExecutor::new()).build(connector(s, signal, tls, false)?);
                Sender::Http {
                    client: Box::new(client),
                    uri,
                    headers,
                    json: s.protocol == Protocol::HttpJson,
                    gzip: s.compression == Compression::Gzip,
                }
            }
        };
        Ok(Self {
            signal,
            sender,
            attempt_timeout: s.timeout,
            probe,
        })
    }

    /// Sends one encoded export request, retrying retryable failures while
    /// `budget` allows.
    pub(crate) async fn export(
        &self,
        body: Bytes,
        budget: Duration,
    ) -> Result<Delivered, ExportError> {
        let started = Instant::now();
        let mut delay = INITIAL_DELAY;
        let mut attempt = 0;
        loop {
            let failure = match self.send(body.clone()).await {
                // Logged (once per message) with the final outcome, in
                // `counters::SignalCounters::finished`.
                Ok(delivered) => return Ok(delivered),
                Err(f) => f,
            };
            let mut failure = failure;
            if failure.unexplained
                && let Some(probe) = &self.probe
                && let Some((error_type, message)) = probe.diagnose().await
            {
                failure = Failure::fatal(
                    error_type,
                    format!("{} export failed: {message}", self.signal),
                );
            }
            let remaining = budget.saturating_sub(started.elapsed());
            let wait = failure.retry_after.unwrap_or(delay + jitter());
            if attempt >= MAX_RETRIES || !failure.retryable || wait >= remaining {
                // Logged with the final outcome (a request refused as too
                // large may still be delivered in halves).
                return Err(failure.error);
            }
            attempt += 1;
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(MAX_DELAY);
        }
    }

    async fn send(&self, body: Bytes) -> Result<Delivered, Failure> {
        match &self.sender {
            Sender::Grpc {
                grpc,
                path,
                metadata,
            } => {
                let mut grpc = grpc.clone();
                grpc.ready().await.map_err(|e| {
                    Failure::from_status(
                        &Status::unavailable(format!("collector not ready: {e}")),
                        self.signal,
                    )
                })?;
                let mut request = tonic::Request::new(body);
                *request.metadata_mut() = metadata.clone();
                let response = grpc
                    .unary(request, path.clone(), RawCodec)
                    .await
                    .map_err(|status| Failure::from_status(&status, self.signal))?;
                Ok(response.into_inner().delivered())
            }
            Sender::Http {
                client,
                uri,
                headers,
                json,
                gzip,
            } => {
                let body = if *gzip { gzip_body(&body) } else { body };
                let mut request = Request::post(uri.clone())
                    .body(Full::new(body))
                    .map_err(|e| Failure::fatal("export_failed", e.to_string()))?;
                let h = request.headers_mut();
                h.extend(headers.clone());
                h.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(if *json {
                        "application/json"
                    } else {
                        "application/x-protobuf"
                    }),
                );
                h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
                if *gzip {
                    h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                let attempt = async {
                    let response = client
                        .request(request)
                        .await
                        .map_err(|e| Failure::transport(&e, self.signal))?;
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    if status.is_success() {
                        Ok(if *json {
                            json_partial_success(&body)
                        } else {
                            ExportResponse::decode_bounded(body).delivered()
                        })
                    } else {
                        Err(Failure::from_http(status, retry_after, &body, self.signal))
                    }
                };
                match tokio::time::timeout(self.attempt_timeout, attempt).await {
                    Ok(r) => r,
                    Err(_) => Err(Failure {
                        error: ExportError::timeout(self.attempt_timeout),
                        retryable: true,
                        retry_after: None,
                        unexplained: true,
                    }),
                }
            }
        }
    }
}

/// One failed attempt: how to count it and whether to try again.
struct Failure {
    error: ExportError,
    retryable: bool,
    retry_after: Option<Duration>,
    /// The connection broke without an answer or a named cause.
    unexplained: bool,
}

impl Failure {
    fn fatal(error_type: &'static str, message: String) -> Self {
        Self {
            error: ExportError {
                error_type,
                message,
            },
            retryable: false,
            retry_after: None,
            unexplained: false,
        }
    }

    /// A connection that failed before any answer: TLS failures are named
    /// and not retried (they do not heal in a second), others are.
    fn transport(e: &(dyn std::error::Error + 'static), signal: Signal) -> Self {
        if let Some((error_type, message)) = super::tls::classify(e) {
            return Self::fatal(error_type, format!("{signal} export failed: {message}"));
        }
        Self {
            error: ExportError {
                error_type: "unavailable",
                message: format!("{signal} export failed: {}", chain(e)),
            },
            retryable: true,
            retry_after: None,
            unexplained: true,
        }
    }

    fn from_status(status: &Status, signal: Signal) -> Self {
        if let Some((error_type, message)) = super::tls::classify(status) {
            return Self::fatal(error_type, format!("{signal} export failed: {message}"));
        }
        let code = status.code();
        // OTLP's retryable gRPC codes; RESOURCE_EXHAUSTED only with a
        // `RetryInfo` (throttling, as HTTP 429). Without one it is what the
        // Collector answers to a message over its size limit (HTTP 413's
        // twin): split, not retried (see `fit.rs`).
        let retry_info = (code == Code::ResourceExhausted)
            .then(|| retry_delay(status.details()))
            .flatten();
        let retryable = retry_info.is_some()
            || matches!(
                code,
                Code::Cancelled
                    | Code::DeadlineExceeded
                    | Code::Aborted
                    | Code::OutOfRange
                    | Code::Unavailable
                    | Code::DataLoss
            );
        // The same names as `from_http`'s, for the answers OTLP pairs.
        let error_type = match code {
            Code::Unauthenticated => "unauthenticated",
            Code::PermissionDenied => "permission_denied",
            Code::Unavailable => "unavailable",
            Code::DeadlineExceeded => "timeout",
            Code::InvalidArgument => "invalid_argument",
            Code::ResourceExhausted if retry_info.is_some() => "resource_exhausted",
            Code::ResourceExhausted => ExportError::TOO_LARGE,
            _ => "export_failed",
        };
        // The code and the transport cause; the collector's own message is
        // cut short (it may be long, or echo what we sent).
        let mut message = format!("{signal} export failed with gRPC code {code:?}");
        let own = bounded(status.message());
        if !own.is_empty() {
            message.push_str(": ");
            message.push_str(&own);
        }
        let source = std::error::Error::source(status);
        if let Some(source) = source {
            message.push_str(": ");
            message.push_str(&chain(source));
        }
        Self {
            error: ExportError {
                error_type,
                message,
            },
            retryable,
            retry_after: retry_info,
            // A transport error under the status: no server answered.
            unexplained: source.is_some(),
        }
    }

    fn from_http(
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
        signal: Signal,
    ) -> Self {
        // OTLP/HTTP's retryable answers.
        let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
        let error_type = match status.as_u16() {
            400 => "invalid_argument",
            401 => "unauthenticated",
            // The request is over the collector's size limit: split, not
            // retried as is (see `fit.rs`).
            413 => "too_large",
            403 => "permission_denied",
            429 => "resource_exhausted",
            502..=504 => "unavailable",
            _ => "export_failed",
        };
        let text = bounded(&String::from_utf8_lossy(body));
        let mut message = format!("{signal} export failed with HTTP {status}");
        if !text.is_empty() {
            message.push_str(": ");
            message.push_str(&text);
        }
        Self {
            error: ExportError {
                error_type,
                message,
            },
            retryable,
            retry_after: retry_after.filter(|_| retryable),
            unexplained: false,
        }
    }
}

/// The delay of a `google.rpc.RetryInfo` in a gRPC status' details (the
/// encoded `google.rpc.Status`), bounded to [`MAX_RETRY_INFO_DELAY`].
fn retry_delay(details: &[u8]) -> Option<Duration> {
    let status = <RpcStatus as prost::Message>::decode(details).ok()?;
    status
        .details
        .iter()
        .find(|any| any.type_url.ends_with("/google.rpc.RetryInfo"))
        .and_then(|any| <RetryInfo as prost::Message>::decode(any.value.as_slice()).ok())
        .and_then(|info| info.retry_delay)
        .map(|d| {
            let secs = u64::try_from(d.seconds).unwrap_or(0);
            let nanos = u32::try_from(d.nanos).unwrap_or(0).min(999_999_999);
            Duration::new(secs.min(MAX_RETRY_INFO_DELAY.as_secs()), nanos).min(MAX_RETRY_INFO_DELAY)
        })
}

/// Longest delay a collector's `RetryInfo` can impose (the export budget
/// caps it further).
const MAX_RETRY_INFO_DELAY: Duration = Duration::from_secs(60);

/// `google.rpc.Status`, as gRPC sends it in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The error and its sources, `: `-joined.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// At most [`MAX_MESSAGE_CHARS`] characters, control characters replaced.
fn bounded(s: &str) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.trim().chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

fn gzip_body(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}

/// Up to 100 ms, from the clock: enough to spread retries of many processes.
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Duration::from_millis(u64::from(nanos % 100))
}

/// Any of the three `Export*ServiceResponse`s: they share field numbers
/// (`partial_success` = 1, its `rejected_*` = 1 and `error_message` = 2).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

impl ExportResponse {
    /// An undecodable success answer counts as delivered: the collector
    /// said 200/OK, and its body is advisory.
    fn decode_bounded(body: Bytes) -> Self {
        <Self as prost::Message>::decode(body).unwrap_or_default()
    }

    fn delivered(self) -> Delivered {
        partial(self.partial_success.map(|p| (p.rejected, p.error_message)))
    }
}

/// `partial_success` as OTLP/JSON spells it (`rejectedSpans` etc., the
/// count as a string or a number).
fn json_partial_success(body: &[u8]) -> Delivered {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Delivered::default();
    };
    let Some(p) = value
        .get("partialSuccess")
        .or_else(|| value.get("partial_success"))
    else {
        return Delivered::default();
    };
    let rejected = [
        "rejectedSpans",
        "rejectedLogRecords",
        "rejectedDataPoints",
        "rejected_spans",
        "rejected_log_records",
        "rejected_data_points",
    ]
    .iter()
    .find_map(|k| p.get(*k))
    .and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
    .unwrap_or(0);
    let message = p
        .get("errorMessage")
        .or_else(|| p.get("error_message"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    partial(Some((rejected, message)))
}

fn partial(p: Option<(i64, String)>) -> Delivered {
    match p {
        // The spec: a partial_success with nothing rejected and no message
        // is a full success.
        Some((rejected, message)) if rejected > 0 || !message.is_empty() => Delivered {
            rejected: u64::try_from(rejected).unwrap_or(0),
            message: Some(if message.is_empty() {
                "(no message)".to_string()
            } else {
                bounded(&message)
            }),
            reason: None,
        },
        _ => Delivered::default(),
    }
}

/// Passes pre-encoded request bytes through; decodes the response.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportResponse;
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
    type Item = ExportResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(ExportResponse::decode_bounded(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_says_why() {
        // A port nothing listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let rt = tokio::runtime::Runtime::new().unwrap();
        for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
            let settings = OtlpSettings {
                endpoint: format!("http://127.0.0.1:{port}/v1/traces"),
                protocol,
                headers: Vec::new(),
                timeout: Duration::from_secs(1),
                compression: Compression::None,
                insecure: true,
                tls: Default::default(),
            };
            let err = rt
                .block_on(async {
                    let client = OtlpClient::new(&settings, Signal::Traces).unwrap();
                    client.export(Bytes::new(), Duration::from_millis(50)).await
                })
                .unwrap_err();
            assert_eq!(err.error_type, "unavailable", "{protocol:?}");
            assert!(
                err.message.to_ascii_lowercase().contains("connect"),
                "the transport error is in the message: {}",
                err.message
            );
        }
    }

    /// A one-shot HTTP/1.1 server on loopback answering each connection with
    /// the next of `answers` (status line, body); returns its address.
    fn http_server(answers: Vec<(&'static str, Vec<u8>)>) -> std::net::SocketAddr {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                // Read the request head and body (small; one read is enough on loopback).
                let mut buf = [0u8; 65536];
                let _ = conn.read(&mut buf);
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            }
        });
        addr
    }

    #[test]
    fn http_retries_a_503_then_reads_the_partial_success() {
        let answer = prost::Message::encode_to_vec(&ExportResponse {
            partial_success: Some(PartialSuccess {
                rejected: 2,
                error_message: "spans too old".into(),
            }),
        });
        let addr = http_server(vec![
            ("503 Service Unavailable", b"busy".to_vec()),
            ("200 OK", answer),
        ]);
        let settings = OtlpSettings {
            endpoint: format!("http://{addr}/v1/traces"),
            protocol: Protocol::HttpProtobuf,
            headers: vec![("authorization".into(), "Bearer x".into())],
            timeout: Duration::from_secs(2),
            compression: Compression::None,
            insecure: false,
            tls: Default::default(),
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        let delivered = rt
            .block_on(async {
                let client = OtlpClient::new(&settings, Signal::Traces).unwrap();
                client
                    .export(Bytes::from_static(b"\x0a\x00"), Duration::from_secs(5))
                    .await
            })
            .unwrap();
        assert_eq!(delivered.rejected, 2);
        assert_eq!(delivered.message.as_deref(), Some("spans too old"));
    }

    #[test]
    fn http_401_is_unauthenticated_and_not_retried() {
        let addr = http_server(vec![
            ("401 Unauthorized", b"no".to_vec()),
            ("200 OK", Vec::new()),
        ]);
        let settings = OtlpSettings {
            endpoint: format!("http://{addr}/v1/logs"),
            protocol: Protocol::HttpJson,
            headers: Vec::new(),
            timeout: Duration::from_secs(2),
            compression: Compression::Gzip,
            insecure: false,
            tls: Default::default(),
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        let err = rt
            .block_on(async {
                let client = OtlpClient::new(&settings, Signal::Logs).unwrap();
                client
                    .export(Bytes::from_static(b"{}"), Duration::from_secs(5))
                    .await
            })
            .unwrap_err();
        assert_eq!(err.error_type, "unauthenticated", "{}", err.message);
        assert!(err.message.contains("401"), "{}", err.message);
    }

    #[test]
    fn partial_success_is_read_from_every_encoding() {
        let proto = prost::Message::encode_to_vec(&ExportResponse {
            partial_success: Some(PartialSuccess {
                rejected: 3,
                error_message: "too old".into(),
            }),
        });
        let d = ExportResponse::decode_bounded(proto.into()).delivered();
        assert_eq!((d.rejected, d.message.as_deref()), (3, Some("too old")));
        let d = json_partial_success(
            br#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"bad"}}"#,
        );
        assert_eq!((d.rejected, d.message.as_deref()), (2, Some("bad")));
        let d = json_partial_success(br#"{"partialSuccess":{}}"#);
        assert_eq!((d.rejected, d.message), (0, None));
        let d = json_partial_success(b"not json");
        assert_eq!((d.rejected, d.message), (0, None));
        let long = "x".repeat(10_000);
        let d = partial(Some((1, long)));
        assert!(d.message.unwrap().chars().count() <= MAX_MESSAGE_CHARS + 1);
    }
}
