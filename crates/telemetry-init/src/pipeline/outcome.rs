//! How one export attempt ended: delivered (perhaps partly rejected) or
//! failed with a small fixed `error.type`. Its own module because both the
//! batch queue (which produces outcomes) and the counters (which record
//! them) read it, and neither may import the other back.

use std::time::Duration;

/// Why an export attempt failed: a small fixed `error.type` and a message.
#[derive(Debug)]
pub(crate) struct ExportError {
    pub(crate) error_type: &'static str,
    pub(crate) message: String,
}

impl ExportError {
    /// The `error.type` of items dropped because no export request could
    /// hold them (the collector's size limit, or ours).
    pub(crate) const TOO_LARGE: &'static str = "too_large";

    /// The collector refused the request as too large (HTTP 413, gRPC
    /// `RESOURCE_EXHAUSTED`).
    pub(crate) fn too_large(message: impl ToString) -> Self {
        Self {
            error_type: Self::TOO_LARGE,
            message: message.to_string(),
        }
    }

    /// The `error.type` of an export that ran out of time.
    pub(crate) const TIMEOUT: &'static str = "timeout";

    pub(crate) fn timeout(timeout: Duration) -> Self {
        Self {
            error_type: Self::TIMEOUT,
            message: format!("export timed out after {timeout:?}"),
        }
    }

    #[cfg(test)]
    pub(crate) fn failed(message: impl ToString) -> Self {
        Self {
            error_type: "export_failed",
            message: message.to_string(),
        }
    }
}

/// A request the collector accepted, perhaps rejecting part of it (OTLP's
/// `partial_success`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Items the collector said it rejected.
    pub(crate) rejected: u64,
    /// The collector's (bounded) message, when it sent a partial success.
    pub(crate) message: Option<String>,
    /// The `error.type` of the rejected items (default `rejected`; e.g.
    /// `too_large` for items no request could hold).
    pub(crate) reason: Option<&'static str>,
}

/// How one export attempt went.
pub(crate) type ExportResult = Result<Delivered, ExportError>;
