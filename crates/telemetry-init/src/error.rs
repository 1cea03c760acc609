//! The one error type `install()` and the builder return.

use std::fmt;

/// Why telemetry could not be installed.
///
/// Every variant says what to change: an invalid environment value names the
/// variable, the value and what is accepted.
///
/// ```
/// let err = telemetry_init::builder()
///     .env_lookup(|k| (k == "OTEL_TRACES_SAMPLER").then(|| "bogus".to_string()))
///     .resolve()
///     .unwrap_err();
/// assert!(err.to_string().contains("OTEL_TRACES_SAMPLER"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable holds a value that cannot be used.
    #[error("invalid value for {var}: {value:?} ({reason}; accepted: {accepted})")]
    InvalidEnv {
        /// The variable's name.
        var: String,
        /// The value found.
        value: String,
        /// What is wrong with it.
        reason: String,
        /// The accepted values or form.
        accepted: String,
    },
    /// A value given in code cannot be used.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A global (tracing subscriber, metrics recorder) was already installed.
    #[error("{0} is already installed in this process; install() may run once")]
    AlreadyInstalled(&'static str),
    /// An exporter could not be built.
    #[error("could not build the {signal} exporter: {message}")]
    Exporter {
        /// `traces`, `logs` or `metrics`.
        signal: &'static str,
        /// The underlying error.
        message: String,
    },
    /// An I/O error, e.g. while starting the export runtime.
    #[error("i/o error while installing telemetry: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn invalid_env(
        var: &str,
        value: &str,
        reason: impl fmt::Display,
        accepted: impl fmt::Display,
    ) -> Self {
        Error::InvalidEnv {
            var: var.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
            accepted: accepted.to_string(),
        }
    }
}
