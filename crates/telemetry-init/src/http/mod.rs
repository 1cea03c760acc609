//! HTTP and gRPC middleware: server spans, propagation both ways, request
//! ids, redaction and RED metrics.

mod attributes;
pub mod client;
mod grpc;
pub mod limits;
pub mod propagation;
pub mod server;
pub mod slo;

pub use client::{ClientLayer, ClientService};
pub use propagation::{Propagation, Propagators};
pub use server::{GrpcDetection, RequestBaggage, RequestId, ServerLayer, ServerService};
