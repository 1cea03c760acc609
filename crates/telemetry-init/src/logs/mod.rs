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

/// For the tests of the log formats: a writer that keeps everything written
/// in memory (clones share it), for `with_writer(move || out.clone())`.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl Captured {
    /// Everything written so far, as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[cfg(test)]
impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
