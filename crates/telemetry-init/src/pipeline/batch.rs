//! A bounded batch queue with exact accounting, shared by spans and logs.
//!
//! Why not the SDK's `BatchSpanProcessor`: we need to *report* what was
//! dropped and what could not be delivered (per signal, live and at
//! shutdown), bound every wait by the caller's deadline, and run the export
//! on our own runtime whatever runtime the service uses. The request thread
//! only pushes into a bounded lock-free queue; a worker thread per signal
//! drains it in batches and hands each batch to the export runtime, with at
//! most [`MAX_IN_FLIGHT`] exports on the wire.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use crossbeam_queue::SegQueue;

use telemetry_init_metrics::PipelineHealth;

use crate::config::{BatchSettings, Signal};

/// Counts for one signal, readable at any time.
#[derive(Debug, Default)]
pub(crate) struct SignalStats {
    pub(crate) enqueued: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) exported: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// The last export error's message, for the shutdown report.
    pub(crate) last_error: std::sync::Mutex<Option<String>>,
}

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

    pub(crate) fn timeout(timeout: Duration) -> Self {
        Self {
            error_type: "timeout",
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

/// An export still running, to be driven on the export runtime.
pub(crate) type ExportFuture = Pin<Box<dyn Future<Output = ExportResult> + Send>>;

/// A started export: finished already (console), or a future for the
/// export runtime, which the worker does not wait for.
pub(crate) enum Export {
    Done(ExportResult),
    Spawn(Handle, ExportFuture),
}

/// The export side: called on the worker thread with a batch and the longest
/// time it may take.
pub(crate) type ExportFn<T> = Box<dyn FnMut(Vec<T>, Duration) -> Export + Send>;

/// How many exports of one signal may be on the wire at once.
///
/// Why more than one: while an export waits for the collector's answer
/// (and for HTTP/2 flow-control window updates on large batches), the
/// queue keeps filling; with one export at a time, a collector a few
/// milliseconds away made a 2048-span queue overflow at ~50 k spans/s.
/// Two keeps encoding and sending overlapped; memory stays bounded by the
/// queue plus two batches.
pub(crate) const MAX_IN_FLIGHT: usize = 2;

enum Control {
    /// The queue holds a full batch: export it now rather than at the timer.
    Wake,
    Flush(Sender<()>),
    Shutdown(Instant, Sender<()>),
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

/// A bounded lock-free queue whose memory follows what it holds.
///
/// Why not `ArrayQueue`: it allocates and touches every slot up front, and
/// slots are as large as the item: 2048 `SpanData` plus 2048 log records
/// were ~2 MiB resident in an idle service. `SegQueue` allocates blocks of
/// slots as items arrive and frees them as they leave; the count bounds it.
///
/// Bounded in bytes too: each item comes with its approximate size, and
/// the bytes stay counted until its export has ended (not merely left the
/// queue), so the budget covers everything the pipeline holds: queue,
/// batch being filled, and exports on the wire.
struct Bounded<T> {
    queue: SegQueue<(T, usize)>,
    len: AtomicUsize,
    capacity: usize,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl<T> Bounded<T> {
    fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            queue: SegQueue::new(),
            len: AtomicUsize::new(0),
            capacity,
            bytes: Arc::new(AtomicUsize::new(0)),
            max_bytes,
        }
    }

    /// Enqueues, or gives the item back when the queue is full (in items or
    /// in bytes).
    fn push(&self, item: T, size: usize) -> Result<(), T> {
        if self.len.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(item);
        }
        if self.bytes.fetch_add(size, Ordering::AcqRel) + size > self.max_bytes {
            self.bytes.fetch_sub(size, Ordering::AcqRel);
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(item);
        }
        self.queue.push((item, size));
        Ok(())
    }

    /// The next item and its size; its bytes stay counted until released.
    fn pop(&self) -> Option<(T, usize)> {
        let item = self.queue.pop()?;
        self.len.fetch_sub(1, Ordering::AcqRel);
        Some(item)
    }

    /// Items queued (an item being pushed may already count).
    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

/// The producer half; cheap to call from any thread.
///
/// Items go into a lock-free bounded queue that the worker drains on its
/// timer. Producers do not wake the worker per item (a futex wake and a
/// context switch cost more than the rest of a request's telemetry): only
/// when a full batch is waiting, at most once per batch.
pub(crate) struct BatchQueue<T> {
    items: Arc<Bounded<T>>,
    control: Sender<Control>,
    wake_pending: Arc<AtomicBool>,
    batch_size: usize,
    stats: Arc<SignalStats>,
    signal: Signal,
    health: PipelineHealth,
    worker: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl<T> std::fmt::Debug for BatchQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue")
            .field("signal", &self.signal)
            .field("queued", &self.items.len())
            .finish()
    }
}

impl<T: Send + 'static> BatchQueue<T> {
    pub(crate) fn start(
        signal: Signal,
        settings: BatchSettings,
        max_bytes: usize,
        stats: Arc<SignalStats>,
        export: ExportFn<T>,
        health: PipelineHealth,
    ) -> std::io::Result<Self> {
        let items = Arc::new(Bounded::new(settings.max_queue_size.max(1), max_bytes));
        let (control_tx, control_rx) = unbounded();
        let wake_pending = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            items: Arc::clone(&items),
            control: control_rx,
            wake_pending: Arc::clone(&wake_pending),
            settings,
            export,
            accounting: Arc::new(Accounting {
                stats: stats.clone(),
                signal,
                health: health.clone(),
            }),
            in_flight: Arc::default(),
            batch_bytes: 0,
        };
        let handle = std::thread::Builder::new()
            .name(format!("telemetry-{}", signal.as_str()))
            .spawn(move || worker.run())?;
        health.queue_capacity(signal, settings.max_queue_size as u64);
        Ok(Self {
            items,
            control: control_tx,
            wake_pending,
            batch_size: settings.max_export_batch_size.max(1),
            stats,
            signal,
            health,
            worker: std::sync::Mutex::new(Some(handle)),
        })
    }

    /// Enqueues without blocking; a full queue (in items, or in bytes with
    /// this item's approximate `size`) drops the item and counts it.
    pub(crate) fn push(&self, item: T, size: usize) {
        match self.items.push(item, size) {
            Ok(()) => {
                self.stats.enqueued.fetch_add(1, Ordering::Relaxed);
                if self.items.len() >= self.batch_size
                    && !self.wake_pending.swap(true, Ordering::AcqRel)
                {
                    let _ = self.control.send(Control::Wake);
                }
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                self.health.dropped(self.signal, 1);
            }
        }
    }

    /// Exports everything queued so far; waits at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), String> {
        let (tx, rx) = bounded(1);
        self.control
            .send(Control::Flush(tx))
            .map_err(|_| "export worker already stopped".to_string())?;
        rx.recv_timeout(timeout)
            .map_err(|_| format!("{} flush did not finish within {timeout:?}", self.signal))
    }

    /// Exports what it can before `timeout`, then stops the worker.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = bounded(1);
        if self.control.send(Control::Shutdown(deadline, tx)).is_err() {
            return Ok(()); // already shut down
        }
        match rx.recv_timeout(timeout) {
            Ok(()) => {
                if let Some(h) = self.worker.lock().ok().and_then(|mut w| w.take()) {
                    let _ = h.join();
                }
                Ok(())
            }
            // The worker is stuck in an export that ignores its deadline; it
            // is detached, and whatever it holds is reported as undelivered.
            Err(_) => Err(format!(
                "{} shutdown did not finish within {timeout:?}",
                self.signal
            )),
        }
    }
}

struct Worker<T> {
    items: Arc<Bounded<T>>,
    control: Receiver<Control>,
    wake_pending: Arc<AtomicBool>,
    settings: BatchSettings,
    export: ExportFn<T>,
    accounting: Arc<Accounting>,
    in_flight: Arc<InFlight>,
    /// The byte budget held by the items in the batch being filled.
    batch_bytes: usize,
}

/// Gives an export's bytes back to the queue's budget when dropped: when
/// the export has ended, whatever way.
struct BytesGuard(Arc<AtomicUsize>, usize);

impl Drop for BytesGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::AcqRel);
    }
}

/// Records how exports ended; shared with exports still on the runtime.
struct Accounting {
    stats: Arc<SignalStats>,
    signal: Signal,
    health: PipelineHealth,
}

impl Accounting {
    fn finished(&self, n: u64, started: Instant, result: ExportResult) {
        let (ok, failed) = record_outcome(&self.health, self.signal, n, started, &result);
        self.stats.exported.fetch_add(ok, Ordering::Relaxed);
        self.stats.failed.fetch_add(failed, Ordering::Relaxed);
        let last = match result {
            Ok(Delivered {
                message: Some(m), ..
            }) if failed > 0 => Some(format!("collector rejected {failed}: {m}")),
            Err(e) => Some(e.message),
            Ok(_) => None,
        };
        if let Some(last) = last {
            *self
                .stats
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(last);
        }
    }
}

/// The one failure accounting of every signal on every transport: records
/// how an export of `n` items ended in the health metrics and returns
/// `(exported, failed)`. Items a collector rejected in a `partial_success`
/// are failed items with `error.type="rejected"`. Logs the outcome when it
/// is not a plain success, once per `error.type` (failures) or per
/// collector message (`partial_success`), so a failing collector costs one
/// line per cause, not one per batch.
pub(crate) fn record_outcome(
    health: &PipelineHealth,
    signal: Signal,
    n: u64,
    started: Instant,
    result: &ExportResult,
) -> (u64, u64) {
    log_outcome(signal, n, result);
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(delivered) => {
            let rejected = delivered.rejected.min(n);
            health.exported(signal, n - rejected);
            if rejected > 0 {
                health.failed(signal, rejected, delivered.reason.unwrap_or("rejected"));
            }
            health.export_duration(signal, seconds, None);
            (n - rejected, rejected)
        }
        Err(e) => {
            health.failed(signal, n, e.error_type);
            health.export_duration(signal, seconds, Some(e.error_type));
            (0, n)
        }
    }
}

/// The log line of an export that did not simply succeed: one per cause.
fn log_outcome(signal: Signal, n: u64, result: &ExportResult) {
    match result {
        Ok(Delivered {
            message: Some(message),
            rejected,
            reason: None,
        }) => log_once(
            signal,
            "partial_success",
            message,
            format_args!(
                "the collector rejected {} of {n} {signal} items in one export: {message}",
                rejected.min(&n)
            ),
        ),
        Ok(Delivered {
            message: Some(message),
            rejected,
            reason: Some(reason),
        }) => log_once(
            signal,
            reason,
            reason,
            format_args!(
                "{} of {n} {signal} items not delivered ({reason}): {message}",
                rejected.min(&n)
            ),
        ),
        Ok(_) => {}
        Err(e) => {
            // Transport messages already say "<signal> export failed…".
            let prefix = format!("{signal} export");
            if e.message.starts_with(&prefix) {
                log_once(
                    signal,
                    e.error_type,
                    e.error_type,
                    format_args!("{}", e.message),
                );
            } else {
                log_once(
                    signal,
                    e.error_type,
                    e.error_type,
                    format_args!("{prefix} failed: {}", e.message),
                );
            }
        }
    }
}

/// Counts exports running on the runtime, so the worker can cap them and
/// wait for them at flush and shutdown.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    changed: Condvar,
}

impl InFlight {
    /// The count, once it is below `limit` or `deadline` has passed.
    fn wait_below(&self, limit: usize, deadline: Instant) -> std::sync::MutexGuard<'_, usize> {
        let n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let left = deadline.saturating_duration_since(Instant::now());
        self.changed
            .wait_timeout_while(n, left, |n| *n >= limit)
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    /// Waits for the count to drop to `max - 1` or below, then takes a slot;
    /// `false` if `deadline` passed first.
    fn acquire(&self, max: usize, deadline: Instant) -> bool {
        let mut n = self.wait_below(max, deadline);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self) {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Waits until no export is running or `deadline` passes.
    fn wait_idle(&self, deadline: Instant) {
        drop(self.wait_below(1, deadline));
    }
}

impl<T> Worker<T> {
    fn run(mut self) {
        let max = self.settings.max_export_batch_size.max(1);
        let mut batch: Vec<T> = Vec::with_capacity(max);
        let mut next_flush = Instant::now() + self.settings.schedule_delay;
        loop {
            let wait = next_flush.saturating_duration_since(Instant::now());
            match self.control.recv_timeout(wait) {
                Ok(Control::Wake) => {
                    self.wake_pending.store(false, Ordering::Release);
                    // Full batches only; a partial one waits for the timer.
                    while self.items.len() >= max {
                        self.fill(&mut batch);
                        self.export_batch(&mut batch, None);
                    }
                }
                Ok(Control::Flush(done)) => {
                    self.drain(&mut batch, None);
                    self.in_flight.wait_idle(Instant::now() + self.bound());
                    let _ = done.send(());
                }
                Ok(Control::Shutdown(deadline, done)) => {
                    self.drain(&mut batch, Some(deadline));
                    self.in_flight.wait_idle(deadline);
                    let _ = done.send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.drain(&mut batch, None);
                    next_flush = Instant::now() + self.settings.schedule_delay;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.drain(&mut batch, None);
                    self.in_flight.wait_idle(Instant::now() + self.bound());
                    return;
                }
            }
            self.accounting
                .health
                .queue_size(self.accounting.signal, self.items.len() as u64);
        }
    }

    /// Moves up to one batch from the queue into `batch`.
    fn fill(&mut self, batch: &mut Vec<T>) {
        while batch.len() < self.settings.max_export_batch_size.max(1) {
            match self.items.pop() {
                Some((item, size)) => {
                    self.batch_bytes += size;
                    batch.push(item);
                }
                None => break,
            }
        }
    }

    /// Exports everything queued, in batches, until the queue is empty or the
    /// deadline passes (what is left is counted as not delivered).
    fn drain(&mut self, batch: &mut Vec<T>, deadline: Option<Instant>) {
        loop {
            self.fill(batch);
            if batch.is_empty() {
                return;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let mut left = batch.len() as u64;
                batch.clear();
                drop(self.take_bytes());
                while let Some((_, size)) = self.items.pop() {
                    drop(BytesGuard(Arc::clone(&self.items.bytes), size));
                    left += 1;
                }
                self.accounting
                    .stats
                    .failed
                    .fetch_add(left, Ordering::Relaxed);
                return;
            }
            self.export_batch(batch, deadline);
        }
    }

    /// The longest any one export can run: its own timeout, plus slack for
    /// a runtime too busy to notice the timer at once.
    fn bound(&self) -> Duration {
        self.settings.export_timeout + Duration::from_secs(1)
    }

    /// The batch's bytes, to be given back when its export has ended.
    fn take_bytes(&mut self) -> BytesGuard {
        BytesGuard(
            Arc::clone(&self.items.bytes),
            std::mem::take(&mut self.batch_bytes),
        )
    }

    fn export_batch(&mut self, batch: &mut Vec<T>, deadline: Option<Instant>) {
        if batch.is_empty() {
            return;
        }
        let bytes = self.take_bytes();
        let n = batch.len() as u64;
        let mut timeout = self.settings.export_timeout;
        if let Some(d) = deadline {
            timeout = timeout.min(d.saturating_duration_since(Instant::now()));
        }
        // A free export slot first: this is where a slow collector holds the
        // worker back, while the queue in front of it absorbs (then drops).
        let slot_deadline = Instant::now() + self.bound();
        if !self.in_flight.acquire(
            MAX_IN_FLIGHT,
            deadline.map_or(slot_deadline, |d| d.min(slot_deadline)),
        ) {
            self.accounting
                .finished(n, Instant::now(), Err(ExportError::timeout(timeout)));
            batch.clear();
            return;
        }
        let items = std::mem::replace(
            batch,
            Vec::with_capacity(self.settings.max_export_batch_size),
        );
        // Processed without error: handed to the exporter (drops are counted
        // with error.type=queue_full where they happen).
        self.accounting.health.processed(self.accounting.signal, n);
        let started = Instant::now();
        match (self.export)(items, timeout) {
            Export::Done(result) => {
                self.accounting.finished(n, started, result);
                self.in_flight.release();
                drop(bytes);
            }
            Export::Spawn(handle, future) => {
                let accounting = Arc::clone(&self.accounting);
                let in_flight = Arc::clone(&self.in_flight);
                // Released even if the runtime drops the task unfinished.
                let slot = SlotGuard(in_flight);
                handle.spawn(async move {
                    let result = match tokio::time::timeout(timeout, future).await {
                        Ok(r) => r,
                        Err(_) => Err(ExportError::timeout(timeout)),
                    };
                    accounting.finished(n, started, result);
                    drop(slot);
                    drop(bytes);
                });
            }
        }
    }
}

/// Gives an export slot back when dropped.
struct SlotGuard(Arc<InFlight>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Logs `line` the first time `(signal, kind, key)` is seen, so a collector
/// that keeps failing or rejecting is reported once per distinct cause,
/// not once per batch. The set is bounded; past it nothing more is logged.
pub(crate) fn log_once(signal: Signal, kind: &str, key: &str, line: std::fmt::Arguments<'_>) {
    const MAX_KEYS: usize = 256;
    static SEEN: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashSet<(Signal, String, String)>>,
    > = std::sync::OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if seen.len() >= MAX_KEYS {
        return;
    }
    if seen.insert((signal, kind.to_string(), key.to_string())) {
        drop(seen);
        tracing::warn!(
            target: "telemetry_init::export",
            signal = signal.as_str(),
            error.type = kind,
            "{line}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn health() -> PipelineHealth {
        telemetry_init_metrics::TelemetryRecorder::new(telemetry_init_metrics::MetricsConfig::new())
            .unwrap()
            .handle()
            .pipeline_health()
    }

    fn settings(queue: usize, batch: usize) -> BatchSettings {
        BatchSettings {
            max_queue_size: queue,
            max_export_batch_size: batch,
            schedule_delay: Duration::from_secs(3600),
            export_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn batches_and_flushes_everything() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let stats = Arc::new(SignalStats::default());
        let q = BatchQueue::start(
            Signal::Traces,
            settings(100, 10),
            usize::MAX,
            stats.clone(),
            Box::new(move |b: Vec<u32>, _| {
                s.lock().unwrap().push(b.len());
                Export::Done(Ok(Delivered::default()))
            }),
            health(),
        )
        .unwrap();
        for i in 0..25 {
            q.push(i, 0);
        }
        q.flush(Duration::from_secs(5)).unwrap();
        let sizes = seen.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 25);
        assert!(sizes.iter().all(|&n| n <= 10), "{sizes:?}");
        q.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(stats.exported.load(Ordering::Relaxed), 25);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn full_queue_drops_and_counts_without_blocking() {
        let (block_tx, block_rx) = bounded::<()>(0);
        let stats = Arc::new(SignalStats::default());
        let q = BatchQueue::start(
            Signal::Logs,
            settings(4, 1),
            usize::MAX,
            stats.clone(),
            Box::new(move |_b: Vec<u32>, _| {
                let _ = block_rx.recv_timeout(Duration::from_secs(2));
                Export::Done(Err(ExportError::failed("collector down")))
            }),
            health(),
        )
        .unwrap();
        let started = Instant::now();
        for i in 0..1000 {
            q.push(i, 0);
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        let dropped = stats.dropped.load(Ordering::Relaxed);
        assert!(dropped >= 1000 - 6, "dropped {dropped}");
        drop(block_tx);
        q.shutdown(Duration::from_secs(5)).unwrap();
        let s = &stats;
        let accounted = s.exported.load(Ordering::Relaxed)
            + s.failed.load(Ordering::Relaxed)
            + s.dropped.load(Ordering::Relaxed);
        assert_eq!(accounted, 1000, "every item is accounted for");
    }

    #[test]
    fn the_byte_budget_covers_exports_on_the_wire() {
        let (release_tx, release_rx) = bounded::<()>(0);
        let stats = Arc::new(SignalStats::default());
        let q = BatchQueue::start(
            Signal::Traces,
            settings(1000, 2),
            1000,
            stats.clone(),
            Box::new(move |_b: Vec<u32>, _| {
                // A collector that holds the export until told.
                let _ = release_rx.recv_timeout(Duration::from_secs(5));
                Export::Done(Ok(Delivered::default()))
            }),
            health(),
        )
        .unwrap();
        // 300 bytes each: three fit in 1000, whatever the item count allows.
        for i in 0..10 {
            q.push(i, 300);
        }
        assert_eq!(stats.enqueued.load(Ordering::Relaxed), 3);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 7);
        // The worker takes a batch of two and hangs in its export: those
        // bytes are still held, so the budget is still full.
        std::thread::sleep(Duration::from_millis(200));
        q.push(100, 300);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 8);
        // Once exports end, the budget is free again.
        let flusher = std::thread::spawn(move || {
            for _ in 0..3 {
                let _ = release_tx.send_timeout((), Duration::from_secs(5));
            }
        });
        q.flush(Duration::from_secs(10)).unwrap();
        flusher.join().unwrap();
        q.push(101, 300);
        assert_eq!(stats.enqueued.load(Ordering::Relaxed), 4);
        q.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn shutdown_is_bounded_when_export_hangs() {
        let stats = Arc::new(SignalStats::default());
        let q = BatchQueue::start(
            Signal::Traces,
            settings(10, 1),
            usize::MAX,
            stats,
            Box::new(move |_b: Vec<u32>, _timeout| {
                // An exporter that ignores its timeout entirely.
                std::thread::sleep(Duration::from_secs(30));
                Export::Done(Ok(Delivered::default()))
            }),
            health(),
        )
        .unwrap();
        q.push(1, 0);
        q.push(2, 0);
        let started = Instant::now();
        assert!(q.shutdown(Duration::from_millis(300)).is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn spawned_exports_overlap_up_to_the_cap_and_flush_waits_for_them() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        let running = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let (r, p) = (running.clone(), peak.clone());
        let stats = Arc::new(SignalStats::default());
        let q = BatchQueue::start(
            Signal::Traces,
            BatchSettings {
                max_queue_size: 1000,
                max_export_batch_size: 10,
                schedule_delay: Duration::from_secs(3600),
                export_timeout: Duration::from_secs(5),
            },
            usize::MAX,
            stats.clone(),
            Box::new(move |b: Vec<u32>, _| {
                let (r, p) = (r.clone(), p.clone());
                Export::Spawn(
                    handle.clone(),
                    Box::pin(async move {
                        let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                        p.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        r.fetch_sub(1, Ordering::SeqCst);
                        assert_eq!(b.len(), 10);
                        Ok(Delivered::default())
                    }),
                )
            }),
            health(),
        )
        .unwrap();
        for i in 0..100 {
            q.push(i, 0);
        }
        q.flush(Duration::from_secs(10)).unwrap();
        // Flush returned only once every spawned export had finished.
        assert_eq!(stats.exported.load(Ordering::Relaxed), 100);
        assert_eq!(running.load(Ordering::SeqCst), 0);
        assert_eq!(peak.load(Ordering::SeqCst), MAX_IN_FLIGHT as u64);
        q.shutdown(Duration::from_secs(5)).unwrap();
    }
}
