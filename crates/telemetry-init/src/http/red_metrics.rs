//! The RED metrics (Rate, Errors, Duration) of the HTTP/gRPC middleware,
//! recorded through the `metrics` facade.
//!
//! ```
//! use telemetry_init::http::red_metrics::names;
//! // What a dashboard queries: the Prometheus exposition of this histogram
//! // is `http_server_request_duration_seconds_{bucket,sum,count}`.
//! assert_eq!(names::HTTP_SERVER_DURATION, "http.server.request.duration");
//! ```
//!
//! Only bounded values become labels: the normalised method, the route
//! *template* (or `unmatched`), the status code and `error.type`. Never the
//! raw path, never the Host header. (The SLOs computed from these metrics
//! are the `telemetry-init-slo` crate's business.)

use std::time::Duration;

/// The route label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Metric names, as OpenTelemetry spells them (the Prometheus exposition
/// maps them to `http_server_request_duration_seconds` and so on). Each one
/// is the name of an entry of [`telemetry_init_semconv::metric`],
/// where its unit, help text and attributes are written.
pub mod names {
    use telemetry_init_semconv::metric;

    /// Histogram of server request durations, in seconds.
    pub const HTTP_SERVER_DURATION: &str = metric::HTTP_SERVER_REQUEST_DURATION.name;
    /// Gauge of requests in flight.
    pub const HTTP_SERVER_ACTIVE: &str = metric::HTTP_SERVER_ACTIVE_REQUESTS.name;
    /// Histogram of gRPC server call durations, in seconds.
    pub const RPC_SERVER_DURATION: &str = metric::RPC_SERVER_DURATION.name;
    /// Histogram of client request durations, in seconds.
    pub const HTTP_CLIENT_DURATION: &str = metric::HTTP_CLIENT_REQUEST_DURATION.name;
    /// Histogram of gRPC client call durations, in seconds.
    pub const RPC_CLIENT_DURATION: &str = metric::RPC_CLIENT_DURATION.name;
}

/// Describes the middleware's instruments once, so the exposition of any
/// `metrics` recorder has their units and help texts (telemetry-init's own
/// recorder knows them already, from the same entries).
pub(crate) fn describe() {
    use telemetry_init_semconv::metric::{self, Instrument, Source};
    metrics::with_recorder(|recorder| {
        for m in metric::ALL
            .iter()
            .filter(|m| m.source == Source::Middleware)
        {
            let key = metrics::KeyName::from_const_str(m.name);
            let unit = match m.unit {
                "s" => Some(metrics::Unit::Seconds),
                "By" => Some(metrics::Unit::Bytes),
                _ => None,
            };
            let help = metrics::SharedString::const_str(m.help);
            match m.instrument {
                Instrument::Counter => recorder.describe_counter(key, unit, help),
                Instrument::Gauge => recorder.describe_gauge(key, unit, help),
                Instrument::Histogram => recorder.describe_histogram(key, unit, help),
            }
        }
    });
}

pub(crate) fn active(method: &'static str, route: &str) -> metrics::Gauge {
    metrics::gauge!(
        names::HTTP_SERVER_ACTIVE,
        "http.request.method" => method,
        "http.route" => route.to_string()
    )
}

/// A request that ended without a status (cancelled, service error): rare,
/// so it takes the facade's uncached path.
pub(crate) fn http_server_failed(
    method: &'static str,
    route: &str,
    error_type: &str,
    elapsed: Duration,
) {
    metrics::histogram!(
        names::HTTP_SERVER_DURATION,
        "http.request.method" => method,
        "http.route" => route.to_string(),
        "http.response.status_code" => "",
        "error.type" => error_type.to_string()
    )
    .record(elapsed.as_secs_f64());
}

pub(crate) fn rpc_server(service: &str, method: &str, code: i32, elapsed: Duration) {
    metrics::histogram!(
        names::RPC_SERVER_DURATION,
        "rpc.system" => "grpc",
        "rpc.service" => service.to_string(),
        "rpc.method" => method.to_string(),
        "rpc.grpc.status_code" => code.to_string()
    )
    .record(elapsed.as_secs_f64());
}

pub(crate) fn rpc_client(service: &str, method: &str, code: i32, elapsed: Duration) {
    metrics::histogram!(
        names::RPC_CLIENT_DURATION,
        "rpc.system" => "grpc",
        "rpc.service" => service.to_string(),
        "rpc.method" => method.to_string(),
        "rpc.grpc.status_code" => code.to_string()
    )
    .record(elapsed.as_secs_f64());
}

/// Status codes as static strings, so the common ones cost no allocation.
pub(crate) fn status_label(code: u16) -> metrics::SharedString {
    const CODES: &[(u16, &str)] = &[
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (206, "206"),
        (301, "301"),
        (302, "302"),
        (303, "303"),
        (304, "304"),
        (307, "307"),
        (308, "308"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (406, "406"),
        (408, "408"),
        (409, "409"),
        (410, "410"),
        (412, "412"),
        (413, "413"),
        (415, "415"),
        (422, "422"),
        (429, "429"),
        (499, "499"),
        (500, "500"),
        (501, "501"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    match CODES.binary_search_by_key(&code, |(c, _)| *c) {
        Ok(i) => metrics::SharedString::const_str(CODES[i].1),
        // Any other code is still bounded (100..=999).
        Err(_) => metrics::SharedString::from(code.to_string()),
    }
}

/// Metric handles registered once per route, so a request costs atomic
/// updates instead of building a label set and looking it up in the
/// registry (the facade's per-call path).
#[derive(Debug, Default)]
pub(crate) struct RouteCache {
    /// Keyed by the matched route (`""` when none matched), then by method:
    /// a lookup borrows the route and allocates nothing.
    routes:
        std::sync::RwLock<std::collections::HashMap<Box<str>, Vec<std::sync::Arc<RouteMetrics>>>>,
}

const MAX_CACHED_ROUTES: usize = 4096;
const MAX_CACHED_STATUSES: usize = 32;

impl RouteCache {
    /// The metric handles and span name of `method` on `route`.
    pub(crate) fn get(
        &self,
        method: &'static str,
        route: Option<&str>,
    ) -> std::sync::Arc<RouteMetrics> {
        let key = route.unwrap_or("");
        let find =
            |v: &Vec<std::sync::Arc<RouteMetrics>>| v.iter().find(|m| m.method == method).cloned();
        if let Some(m) = self
            .routes
            .read()
            .ok()
            .and_then(|r| r.get(key).and_then(find))
        {
            return m;
        }
        let fresh = std::sync::Arc::new(RouteMetrics::new(method, route));
        match self.routes.write() {
            Ok(mut w) if w.len() < MAX_CACHED_ROUTES => {
                let v = w.entry(key.into()).or_default();
                match find(v) {
                    Some(m) => m,
                    None => {
                        v.push(fresh.clone());
                        fresh
                    }
                }
            }
            _ => fresh,
        }
    }
}

#[derive(Debug)]
pub(crate) struct RouteMetrics {
    method: &'static str,
    /// The `http.route` label: the template, or `unmatched`.
    pub(crate) route: Box<str>,
    /// The SERVER span's name: `{method} {route}`, or the method alone.
    pub(crate) span_name: Box<str>,
    pub(crate) active: metrics::Gauge,
    durations: std::sync::RwLock<Vec<(u16, metrics::Histogram)>>,
}

impl RouteMetrics {
    fn new(method: &'static str, route: Option<&str>) -> Self {
        let label = route.unwrap_or(UNMATCHED_ROUTE);
        Self {
            method,
            route: label.into(),
            span_name: match route {
                Some(r) => format!("{method} {r}").into(),
                None => method.into(),
            },
            active: active(method, label),
            durations: std::sync::RwLock::default(),
        }
    }

    /// Records one completed request with its status.
    pub(crate) fn record(&self, status: u16, elapsed: Duration) {
        let cached = self
            .durations
            .read()
            .ok()
            .and_then(|d| d.iter().find(|(s, _)| *s == status).map(|(_, h)| h.clone()));
        let h = cached.unwrap_or_else(|| {
            let h = duration_handle(self.method, &self.route, status);
            if let Ok(mut d) = self.durations.write()
                && d.len() < MAX_CACHED_STATUSES
            {
                d.push((status, h.clone()));
            }
            h
        });
        h.record(elapsed.as_secs_f64());
    }
}

fn duration_handle(method: &'static str, route: &str, status: u16) -> metrics::Histogram {
    let label = status_label(status);
    if status >= 500 {
        let error = label.to_string();
        metrics::histogram!(
            names::HTTP_SERVER_DURATION,
            "http.request.method" => method,
            "http.route" => route.to_string(),
            "http.response.status_code" => label,
            "error.type" => error
        )
    } else {
        metrics::histogram!(
            names::HTTP_SERVER_DURATION,
            "http.request.method" => method,
            "http.route" => route.to_string(),
            "http.response.status_code" => label
        )
    }
}
