//! An optional limit on the size of one export request, answered as the
//! OpenTelemetry Collector does: gRPC `RESOURCE_EXHAUSTED`, HTTP `413`.
//! Lets tests prove an exporter splits its requests to fit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::model::Signal;

/// The limit (off by default) and what it saw.
#[derive(Debug)]
pub(crate) struct SizeLimit {
    max: AtomicUsize,
    refused: AtomicU64,
    largest: [AtomicU64; 3],
}

impl Default for SizeLimit {
    fn default() -> Self {
        Self {
            max: AtomicUsize::new(usize::MAX),
            refused: AtomicU64::new(0),
            largest: Default::default(),
        }
    }
}

impl SizeLimit {
    pub(crate) fn set(&self, max: Option<usize>) {
        self.max.store(max.unwrap_or(usize::MAX), Ordering::Relaxed);
    }

    /// `Err(message)` when a request of `len` bytes (uncompressed protobuf
    /// or JSON) is over the limit; counts it either way.
    pub(crate) fn check(&self, signal: Signal, len: usize) -> Result<(), String> {
        let max = self.max.load(Ordering::Relaxed);
        if len > max {
            self.refused.fetch_add(1, Ordering::Relaxed);
            // grpc-go's wording, which the Collector answers with.
            return Err(format!(
                "grpc: received message larger than max ({len} vs. {max})"
            ));
        }
        self.largest[signal.index()].fetch_max(len as u64, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    pub(crate) fn largest(&self, signal: Signal) -> u64 {
        self.largest[signal.index()].load(Ordering::Relaxed)
    }
}
