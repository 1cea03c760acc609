//! # telemetry-init
//!
//! One line in `main` gives a Rust service JSON logs correlated with traces,
//! OpenTelemetry traces and logs exported over OTLP, W3C propagation and SLO
//! metrics; a guard flushes everything at exit.
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), telemetry_init::Error> {
//!     let _telemetry = telemetry_init::install()?;
//!     tracing::info!(user = 42, "started");
//!     Ok(())
//! }
//! ```
//!
//! Configuration comes from the standard OpenTelemetry environment variables
//! (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_SAMPLER`,
//! …); see [`config`] for every variable and [`builder`] for code settings.
//! With no endpoint configured nothing is sent over the network, but trace
//! ids are still created, so logs stay correlated and context propagates.
//!
//! The opentelemetry crates this one is built on are re-exported: depend on
//! them through these paths so versions never disagree.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
mod error;
mod guard;
mod install;
mod logs;
mod metrics_export;
mod pipeline;
mod resource;

use std::sync::Arc;

pub use config::{Builder, Config};
pub use error::Error;
pub use guard::{ShutdownReport, SignalReport, TelemetryGuard};
pub use logs::current_trace_ids;

pub use opentelemetry;
pub use opentelemetry_otlp;
pub use opentelemetry_sdk;
pub use tracing_opentelemetry;

/// Installs telemetry configured from the environment only.
///
/// Returns an error (never panics, never exits) when a variable holds an
/// invalid value or when telemetry is already installed in this process.
///
/// ```no_run
/// let _telemetry = telemetry_init::install().expect("telemetry configuration");
/// ```
pub fn install() -> Result<TelemetryGuard, Error> {
    builder().install()
}

/// Starts code configuration; environment variables still win.
///
/// ```no_run
/// let _telemetry = telemetry_init::builder()
///     .service_name("api")
///     .install()?;
/// # Ok::<(), telemetry_init::Error>(())
/// ```
pub fn builder() -> Builder {
    Builder::default()
}

/// Shared access to what [`install`] set up; cheap to clone.
#[derive(Debug, Clone)]
pub struct TelemetryHandle {
    config: Arc<Config>,
}

impl TelemetryHandle {
    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.config
    }
}
