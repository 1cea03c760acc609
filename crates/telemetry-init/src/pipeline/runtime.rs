//! The private runtime every exporter runs on.
//!
//! Why: opentelemetry-otlp's tonic and reqwest clients need a tokio reactor,
//! and borrowing the service's runtime is what makes the stock setup
//! deadlock on a `current_thread` or 1-worker runtime at shutdown
//! (opentelemetry-rust #2583, #3176) and panic outside any runtime. One
//! small worker thread of our own removes both failure modes.

use std::future::Future;

use tokio::runtime::{Handle, Runtime};

/// Owns the export runtime; dropping it never blocks.
#[derive(Debug)]
pub(crate) struct ExportRuntime {
    runtime: Option<Runtime>,
}

impl ExportRuntime {
    pub(crate) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("telemetry-export")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    pub(crate) fn handle(&self) -> Handle {
        self.runtime
            .as_ref()
            .map(|r| r.handle().clone())
            .expect("the export runtime lives until drop")
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        // `shutdown_background` is the one way to drop a runtime that is
        // allowed from inside another runtime's async context.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Drives `fut` to completion on the export runtime from any thread: a plain
/// thread blocks on it directly; a thread inside some tokio runtime (where
/// `block_on` would panic) hands it to a scoped helper thread.
pub(crate) fn block_on<F>(handle: &Handle, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if Handle::try_current().is_err() {
        return handle.block_on(fut);
    }
    std::thread::scope(|s| {
        s.spawn(|| handle.block_on(fut))
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
