//! Per-signal OTLP exporter settings, resolved the way the OpenTelemetry SDK
//! specification describes: `OTEL_EXPORTER_OTLP_{SIGNAL}_X` beats
//! `OTEL_EXPORTER_OTLP_X`, which beats code, which beats the default.

use std::fmt;
use std::time::Duration;

use super::env::{Env, parse_kv_list};
use crate::Error;

/// A telemetry signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Log records.
    Logs,
    /// Metric points.
    Metrics,
}

impl Signal {
    /// The lower-case name used in variables' values and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    fn env_infix(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Logs => "LOGS",
            Signal::Metrics => "METRICS",
        }
    }

    /// The path OTLP/HTTP appends to a base endpoint for this signal.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// OTLP over gRPC (the default).
    #[default]
    Grpc,
    /// OTLP over HTTP with protobuf bodies.
    HttpProtobuf,
    /// OTLP over HTTP with JSON bodies.
    HttpJson,
}

impl Protocol {
    /// The spec's name for the protocol (`grpc`, `http/protobuf`, `http/json`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }

    pub(crate) fn parse(var: &str, value: &str) -> Result<Self, Error> {
        match value.to_ascii_lowercase().as_str() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Ok(Protocol::HttpJson),
            _ => Err(Error::invalid_env(
                var,
                value,
                "unknown OTLP protocol",
                "grpc, http/protobuf, http/json",
            )),
        }
    }
}

/// Body compression for OTLP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression (the default).
    #[default]
    None,
    /// gzip.
    Gzip,
}

/// Everything needed to build one signal's OTLP exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSettings {
    /// The full URL requests go to (for HTTP, including `/v1/{signal}`).
    pub endpoint: String,
    /// The transport.
    pub protocol: Protocol,
    /// Extra request headers / gRPC metadata (e.g. tenant or auth headers).
    pub headers: Vec<(String, String)>,
    /// The timeout of one export request.
    pub timeout: Duration,
    /// Body compression.
    pub compression: Compression,
    /// Whether plain-text gRPC is allowed for `https`-less endpoints.
    pub insecure: bool,
}

/// Code-level OTLP defaults set on the builder; the environment overrides them.
#[derive(Debug, Clone, Default)]
pub(crate) struct OtlpDefaults {
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) headers: Vec<(String, String)>,
}

/// Resolves one signal's settings; `Ok(None)` means no endpoint is configured
/// anywhere, so nothing must go over the network for this signal.
pub(crate) fn resolve(
    env: &Env<'_>,
    signal: Signal,
    defaults: &OtlpDefaults,
) -> Result<Option<OtlpSettings>, Error> {
    let s = signal.env_infix();
    let specific = |name: &str| format!("OTEL_EXPORTER_OTLP_{s}_{name}");
    let generic = |name: &str| format!("OTEL_EXPORTER_OTLP_{name}");

    let protocol = match env.first(&[&specific("PROTOCOL"), &generic("PROTOCOL")]) {
        Some((var, v)) => Protocol::parse(&var, &v)?,
        None => defaults.protocol.unwrap_or_default(),
    };

    // A signal-specific endpoint is used as is; a generic one is a base URL to
    // which OTLP/HTTP appends the signal's path.
    let endpoint = if let Some(v) = env.get(&specific("ENDPOINT")) {
        validate_endpoint(&specific("ENDPOINT"), &v)?;
        Some(v)
    } else {
        let base = match env.get(&generic("ENDPOINT")) {
            Some(v) => Some((generic("ENDPOINT"), v)),
            None => defaults
                .endpoint
                .clone()
                .map(|v| ("endpoint (set in code)".to_string(), v)),
        };
        match base {
            None => None,
            Some((var, base)) => {
                validate_endpoint(&var, &base)?;
                Some(match protocol {
                    Protocol::Grpc => base,
                    Protocol::HttpProtobuf | Protocol::HttpJson => {
                        format!("{}{}", base.trim_end_matches('/'), signal.http_path())
                    }
                })
            }
        }
    };

    let mut headers = defaults.headers.clone();
    for var in [generic("HEADERS"), specific("HEADERS")] {
        if let Some(v) = env.get(&var) {
            // Header values are credentials more often than not: a parse error
            // names the variable but never echoes its value.
            let pairs = parse_kv_list(&var, &v).map_err(|_| {
                Error::invalid_env(
                    &var,
                    "<redacted>",
                    "malformed header list",
                    "a comma-separated list of key=value pairs, e.g. api-key=secret,tenant=a",
                )
            })?;
            for (k, val) in pairs {
                validate_header(&var, &k, &val)?;
                headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(&k));
                headers.push((k, val));
            }
        }
    }

    let timeout = match env.first(&[&specific("TIMEOUT"), &generic("TIMEOUT")]) {
        Some((var, v)) => super::env::parse_millis(&var, &v)?,
        None => Duration::from_secs(10),
    };

    let compression = match env.first(&[&specific("COMPRESSION"), &generic("COMPRESSION")]) {
        Some((var, v)) => match v.to_ascii_lowercase().as_str() {
            "gzip" => Compression::Gzip,
            "none" => Compression::None,
            _ => {
                return Err(Error::invalid_env(
                    &var,
                    &v,
                    "unsupported compression",
                    "gzip, none",
                ));
            }
        },
        None => Compression::None,
    };

    let insecure = match env.first(&[&specific("INSECURE"), &generic("INSECURE")]) {
        Some((var, v)) => super::env::parse_bool(&var, &v)?,
        None => false,
    };

    // Everything above is validated even without an endpoint, so a typo is
    // reported the day it is made, not the day an endpoint is added.
    Ok(endpoint.map(|endpoint| OtlpSettings {
        endpoint,
        protocol,
        headers,
        timeout,
        compression,
        insecure,
    }))
}

fn validate_endpoint(var: &str, value: &str) -> Result<(), Error> {
    let accepted = "an absolute http:// or https:// URL, e.g. http://localhost:4317";
    let uri: http::Uri = value
        .parse()
        .map_err(|e| Error::invalid_env(var, value, format!("not a URL ({e})"), accepted))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => {
            return Err(Error::invalid_env(
                var,
                value,
                format!("unsupported scheme {other:?}"),
                accepted,
            ));
        }
        // opentelemetry-otlp would silently assume https here, which never
        // reaches a plain-text local collector: say so instead.
        None => {
            return Err(Error::invalid_env(var, value, "missing scheme", accepted));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(Error::invalid_env(var, value, "missing host", accepted));
    }
    Ok(())
}

fn validate_header(var: &str, key: &str, value: &str) -> Result<(), Error> {
    let accepted = "key=value pairs with valid HTTP header names and values";
    http::HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
        Error::invalid_env(
            var,
            "<redacted>",
            format!("invalid header name {key:?}"),
            accepted,
        )
    })?;
    // The value itself is a credential more often than not: never echo it.
    http::HeaderValue::from_str(value).map_err(|_| {
        Error::invalid_env(
            var,
            "<redacted>",
            format!("invalid value for header {key:?}"),
            accepted,
        )
    })?;
    Ok(())
}
