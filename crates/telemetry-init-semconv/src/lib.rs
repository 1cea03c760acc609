//! The vocabulary the telemetry-init crates share: the telemetry [`Signal`]
//! with the names derived from it, and the [`metric`]s telemetry-init
//! records, with their names, units and help texts.
//!
//! ```
//! use telemetry_init_semconv::{Signal, metric};
//!
//! let endpoint = format!("http://collector:4318{}", Signal::Traces.http_path());
//! assert_eq!(endpoint, "http://collector:4318/v1/traces");
//! assert_eq!(metric::exported(Signal::Traces).name, "otel.sdk.exporter.span.exported");
//! ```
//!
//! This crate has no dependencies on purpose: the core crate
//! (`telemetry-init`), its metrics recorder (`telemetry-init-metrics`) and
//! the test receiver (`telemetry-init-testing`) all name signals with this one
//! type, and the test receiver stays usable on its own, without a metrics
//! recorder or the OpenTelemetry SDK in its dependency tree. Most users
//! reach it through `telemetry_init::config::Signal`,
//! `telemetry_init_metrics::Signal` or `telemetry_init_testing::Signal`, which
//! are this type; `telemetry_init_metrics::semconv` is this crate.
#![forbid(unsafe_code)]

pub mod metric;
mod signal;

pub use signal::Signal;
