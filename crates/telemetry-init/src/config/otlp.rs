//! Per-signal OTLP exporter settings, resolved the way the OpenTelemetry SDK
//! specification describes: `OTEL_EXPORTER_OTLP_{SIGNAL}_X` beats
//! `OTEL_EXPORTER_OTLP_X`, which beats code, which beats the default.

use std::time::Duration;

use super::env::Env;
use super::tls::{Sourced, TlsDefaults, TlsSettings};
use crate::Error;

/// A telemetry signal: the one type of every telemetry-init crate (see
/// [`telemetry_init_semconv::Signal`]), here for the per-signal variables
/// (`OTEL_EXPORTER_OTLP_{TRACES,LOGS,METRICS}_*`) and OTLP/HTTP paths.
pub use telemetry_init_semconv::Signal;

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
    /// `OTEL_EXPORTER_OTLP_INSECURE`: for a gRPC endpoint given without a
    /// scheme, whether it was taken as `http://` (plain text) rather than
    /// `https://`. An explicit scheme always wins, as the spec says.
    pub insecure: bool,
    /// The private CA and client identity used for `https://` endpoints.
    pub tls: TlsSettings,
}

/// Code-level OTLP defaults set on the builder; the environment overrides them.
#[derive(Debug, Clone, Default)]
pub(crate) struct OtlpDefaults {
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) insecure: Option<bool>,
    pub(crate) tls: TlsDefaults,
}

/// Resolves one signal's settings; `Ok(None)` means no endpoint is configured
/// anywhere, so nothing must go over the network for this signal.
pub(crate) fn resolve(
    env: &Env<'_>,
    signal: Signal,
    defaults: &OtlpDefaults,
) -> Result<Option<OtlpSettings>, Error> {
    let s = signal.env_segment();
    let specific = |name: &str| format!("OTEL_EXPORTER_OTLP_{s}_{name}");
    let generic = |name: &str| format!("OTEL_EXPORTER_OTLP_{name}");

    let protocol = match env.first(&[&specific("PROTOCOL"), &generic("PROTOCOL")]) {
        Some((var, v)) => Protocol::parse(&var, &v)?,
        None => defaults.protocol.unwrap_or_default(),
    };

    let insecure = match env.first(&[&specific("INSECURE"), &generic("INSECURE")]) {
        Some((var, v)) => super::env::parse_bool(&var, &v)?,
        None => defaults.insecure.unwrap_or(false),
    };

    // A signal-specific endpoint is used as is; a generic one is a base URL to
    // which OTLP/HTTP appends the signal's path.
    let endpoint = if let Some(v) = env.get(&specific("ENDPOINT")) {
        Some(normalize_endpoint(
            &specific("ENDPOINT"),
            &v,
            protocol,
            insecure,
        )?)
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
                let Endpoint { url, basic_auth } =
                    normalize_endpoint(&var, &base, protocol, insecure)?;
                Some(Endpoint {
                    url: match protocol {
                        Protocol::Grpc => url,
                        Protocol::HttpProtobuf | Protocol::HttpJson => {
                            format!("{}{}", url.trim_end_matches('/'), signal.http_path())
                        }
                    },
                    basic_auth,
                })
            }
        }
    };

    let mut headers = Vec::with_capacity(defaults.headers.len());
    for (k, v) in &defaults.headers {
        let valid = http::HeaderName::from_bytes(k.as_bytes()).is_ok()
            && http::HeaderValue::from_str(v).is_ok();
        if !valid {
            return Err(Error::InvalidConfig(format!(
                "otlp_header({k:?}, <redacted>): not a valid header name and value"
            )));
        }
        headers.push((k.to_ascii_lowercase(), v.clone()));
    }
    for var in [generic("HEADERS"), specific("HEADERS")] {
        if let Some(v) = env.get(&var) {
            for (k, val) in parse_headers(&var, &v)? {
                headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(&k));
                headers.push((k, val));
            }
        }
    }
    // Credentials in the URL become the Basic authorization header (as curl
    // does), unless one is set explicitly; the URL keeps no trace of them.
    let endpoint = endpoint.map(|e| {
        if let Some(auth) = e.basic_auth
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            headers.push(("authorization".to_string(), auth));
        }
        e.url
    });

    let pick = |name: &str, code: &Option<std::path::PathBuf>| match env
        .first(&[&specific(name), &generic(name)])
    {
        Some((var, path)) => Some(Sourced {
            var,
            path: path.into(),
        }),
        None => code.clone().map(|path| Sourced {
            var: format!("{} (set in code)", name.to_ascii_lowercase()),
            path,
        }),
    };
    let tls = super::tls::resolve(
        pick("CERTIFICATE", &defaults.tls.ca),
        pick("CLIENT_CERTIFICATE", &defaults.tls.client_cert),
        pick("CLIENT_KEY", &defaults.tls.client_key),
    )?;

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

    // Everything above is validated even without an endpoint, so a typo is
    // reported the day it is made, not the day an endpoint is added.
    Ok(endpoint.map(|endpoint| OtlpSettings {
        endpoint,
        protocol,
        headers,
        timeout,
        compression,
        insecure,
        tls,
    }))
}

/// An endpoint as exporters use it: no credentials in the URL.
struct Endpoint {
    url: String,
    /// `Basic …` from the URL's `user:password@`, if it had one.
    basic_auth: Option<String>,
}

/// The endpoint without its userinfo, for error messages.
pub(crate) fn redact_userinfo(value: &str) -> String {
    let (scheme, rest) = match value.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, value),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        None => value.to_string(),
        Some(at) => {
            let tail = &rest[at + 1..];
            match scheme {
                Some(s) => format!("{s}://<redacted>@{tail}"),
                None => format!("<redacted>@{tail}"),
            }
        }
    }
}

/// Checks an endpoint and gives it a scheme and no userinfo. A gRPC
/// endpoint without a scheme is `https://`, or `http://` when
/// `OTEL_EXPORTER_OTLP_INSECURE=true` (the spec's only use of that variable).
fn normalize_endpoint(
    var: &str,
    value: &str,
    protocol: Protocol,
    insecure: bool,
) -> Result<Endpoint, Error> {
    let shown = redact_userinfo(value);
    let accepted = "an absolute http:// or https:// URL, e.g. http://localhost:4317";
    let (with_scheme, had_scheme) = if value.contains("://") {
        (value.to_string(), true)
    } else if protocol == Protocol::Grpc {
        let scheme = if insecure { "http" } else { "https" };
        (format!("{scheme}://{value}"), false)
    } else {
        // opentelemetry-otlp would silently assume https here, which never
        // reaches a plain-text local collector: say so instead.
        return Err(Error::invalid_env(var, &shown, "missing scheme", accepted));
    };
    let uri: http::Uri = with_scheme
        .parse()
        .map_err(|e| Error::invalid_env(var, &shown, format!("not a URL ({e})"), accepted))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) if had_scheme => {
            return Err(Error::invalid_env(
                var,
                &shown,
                format!("unsupported scheme {other:?}"),
                accepted,
            ));
        }
        _ => return Err(Error::invalid_env(var, &shown, "missing scheme", accepted)),
    }
    let Some(authority) = uri.authority() else {
        return Err(Error::invalid_env(var, &shown, "missing host", accepted));
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(Error::invalid_env(var, &shown, "missing host", accepted));
    }
    let (basic_auth, url) = match authority.as_str().rsplit_once('@') {
        None => (None, with_scheme),
        Some((userinfo, host)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let decode = |s: &str| {
                super::env::percent_decode(s).ok_or_else(|| {
                    Error::invalid_env(
                        var,
                        &shown,
                        "bad percent-encoding in the URL's credentials",
                        accepted,
                    )
                })
            };
            let credentials = format!("{}:{}", decode(user)?, decode(password)?);
            let scheme = uri.scheme_str().unwrap_or("https");
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
            let path = if path == "/" && !with_scheme.ends_with('/') {
                ""
            } else {
                path
            };
            (
                Some(format!("Basic {}", base64_encode(credentials.as_bytes()))),
                format!("{scheme}://{host}{path}"),
            )
        }
    };
    Ok(Endpoint { url, basic_auth })
}

/// Standard base64 with padding (RFC 4648), for Basic credentials.
fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes `OTEL_EXPORTER_OTLP_HEADERS` as the spec says: comma-separated
/// `key=value` members, whitespace around keys and values trimmed, values
/// percent-decoded (keys too: a valid header name is unchanged by it).
/// Errors name the variable, the member's position and the header name,
/// never a value: values are credentials more often than not.
pub(crate) fn parse_headers(var: &str, value: &str) -> Result<Vec<(String, String)>, Error> {
    let accepted = "comma-separated key=value pairs with percent-encoded values, \
                    e.g. authorization=Basic%20dXNlcjpwYXNz,x-scope-orgid=tenant-a";
    let mut out = Vec::new();
    for (i, member) in value.split(',').enumerate() {
        let n = i + 1;
        let member = member.trim();
        if member.is_empty() {
            continue;
        }
        let Some((k, v)) = member.split_once('=') else {
            return Err(Error::invalid_env(
                var,
                "<redacted>",
                format!("member {n} has no '=' (expected key=value)"),
                accepted,
            ));
        };
        let key = super::env::percent_decode(k.trim())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::invalid_env(
                    var,
                    "<redacted>",
                    format!("member {n} has an empty or badly percent-encoded key"),
                    accepted,
                )
            })?;
        if http::HeaderName::from_bytes(key.as_bytes()).is_err() {
            return Err(Error::invalid_env(
                var,
                "<redacted>",
                format!("member {n}: {key:?} is not a valid header name"),
                accepted,
            ));
        }
        let val = super::env::percent_decode(v.trim()).ok_or_else(|| {
            Error::invalid_env(
                var,
                "<redacted>",
                format!("the value of header {key:?} is badly percent-encoded"),
                accepted,
            )
        })?;
        if http::HeaderValue::from_str(&val).is_err() {
            return Err(Error::invalid_env(
                var,
                "<redacted>",
                format!("the value of header {key:?} has characters a header cannot carry"),
                accepted,
            ));
        }
        out.push((key.to_ascii_lowercase(), val));
    }
    Ok(out)
}
