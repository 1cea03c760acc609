//! HTTP and gRPC middleware: server spans, propagation both ways, request
//! ids, redaction and RED metrics.

mod attributes;
mod call;
pub mod client;
mod grpc;
pub mod limits;
mod passthrough;
pub mod propagation;
pub mod red_metrics;
pub mod request_id;
pub mod server;

/// The RED metrics' names under their old module path (the module records
/// Rate, Errors, Duration; it was renamed so as not to collide with the
/// `telemetry-init-slo` crate).
#[deprecated(
    since = "0.1.0",
    note = "renamed to `telemetry_init::http::red_metrics`"
)]
#[doc(hidden)]
pub mod slo {
    pub use super::red_metrics::{UNMATCHED_ROUTE, names};
}

pub use client::{ClientLayer, ClientService};
pub use propagation::{Propagation, Propagators};
pub use request_id::RequestId;
pub use server::{GrpcDetection, RequestBaggage, ServerLayer, ServerService};
