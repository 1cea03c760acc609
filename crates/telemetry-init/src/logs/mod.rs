//! stdout logs: one JSON object per line, correlated with the current trace.

mod correlation;
mod json;
mod text;
mod writer;

pub(crate) use correlation::current_request_id;
pub use correlation::current_trace_ids;
pub(crate) use correlation::{CorrelationLayer, DispatchSlot};
pub(crate) use json::{JsonFormat, NoSpanFields};
pub(crate) use text::text_fields;
pub(crate) use writer::{BufferedStdout, StdoutGuard};
