//! Service level objectives for services instrumented with `telemetry-init`, and a
//! generator of multiwindow multi-burn-rate Prometheus/Mimir rules for them.
//!
//! An SLO spec (YAML) lists services and their objectives: availability (share of
//! requests without a 5xx) or latency (share of requests faster than a histogram bucket
//! boundary), optionally restricted to one route, over a period (default 30 days).
//! [`generate`] turns it into a Prometheus rule file: error-ratio recording rules over
//! the windows 5m, 30m, 1h, 2h, 6h, 1d and 3d, error-budget bookkeeping series, and the
//! four burn-rate alerts of the Google SRE workbook (page at 14.4× over 1h and 5m and
//! 6× over 6h and 30m; ticket at 3× over 1d and 2h and 1× over 3d and 6h, for a 30-day
//! period; see [`BurnRateAlert`] for how the factors scale with other periods).
//!
//! The SLIs read `http_server_request_duration_seconds_{bucket,count}`, the name that
//! the OTel metric `http.server.request.duration` gets in Prometheus (and in Mimir with
//! `otel_metric_suffixes_enabled`), with the labels `service_name`, `http_route` and
//! `http_response_status_code`.
//!
//! ```
//! use telemetry_init_slo::{generate, SloSpec};
//!
//! let spec = SloSpec::from_yaml_str(r#"
//! services:
//!   - name: demo
//!     objectives:
//!       - name: availability
//!         kind: availability
//!         target: 99.9
//!       - name: users-latency
//!         route: /users/{id}
//!         kind: latency
//!         target: 99
//!         threshold: 0.25
//! "#)?;
//! let yaml = generate(&spec).to_yaml()?;
//! assert!(yaml.starts_with("groups:"));
//! # Ok::<(), telemetry_init_slo::SloError>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod rules;
mod spec;
mod window;

use std::path::Path;

pub use rules::{
    BURN_RATE_ALERTS, BurnRateAlert, HTTP_DURATION_METRIC, Rule, RuleFile, RuleGroup, SLI_WINDOWS,
    Severity, error_ratio_expr, fmt_num, generate,
};
pub use spec::{
    DEFAULT_BUCKETS, DEFAULT_RUNBOOK_BASE_URL, Kind, MIN_PERIOD, Objective, Service, SloSpec,
};
pub use window::Window;

/// Everything that can go wrong reading a spec or rendering rules.
#[derive(Debug, thiserror::Error)]
pub enum SloError {
    /// The spec file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed or does not have the spec's shape.
    #[error("invalid SLO spec: {0}")]
    Parse(#[source] serde_yaml_ng::Error),
    /// The spec is well-formed but breaks a rule.
    #[error("invalid SLO spec: {context}: {message}")]
    Invalid {
        /// Which service / objective.
        context: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A window such as `30d` could not be parsed.
    #[error("invalid window {window:?}: {reason}")]
    InvalidWindow {
        /// The text given.
        window: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The rules could not be rendered as YAML.
    #[error("cannot render rules as YAML: {0}")]
    Render(#[source] serde_yaml_ng::Error),
    /// An error in a given file.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: String,
        /// The error.
        source: Box<SloError>,
    },
}

impl SloError {
    fn in_file(self, path: &Path) -> Self {
        SloError::InFile {
            path: path.display().to_string(),
            source: Box::new(self),
        }
    }
}
