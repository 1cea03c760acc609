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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use crossbeam_queue::SegQueue;

use super::counters::SignalCounters;
use crate::config::BatchSettings;

pub(crate) use super::outcome::{Delivered, ExportError, ExportResult};

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

/// How long [`BatchQueue::shutdown`] waits past its deadline for the worker
/// to say it is done: the worker stops at the deadline and then records
/// what it cut off, and the report taken next must include that.
const SHUTDOWN_ACK_GRACE: Duration = Duration::from_millis(50);

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
    counters: SignalCounters,
    in_flight: Arc<InFlight>,
    worker: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl<T> std::fmt::Debug for BatchQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchQueue")
            .field("signal", &self.counters.signal())
            .field("queued", &self.items.len())
            .finish()
    }
}

impl<T: Send + 'static> BatchQueue<T> {
    /// Starts the worker of one signal; every outcome of its items is
    /// recorded in `counters`.
    pub(crate) fn start(
        settings: BatchSettings,
        max_bytes: usize,
        counters: SignalCounters,
        export: ExportFn<T>,
    ) -> std::io::Result<Self> {
        let items = Arc::new(Bounded::new(settings.max_queue_size.max(1), max_bytes));
        let (control_tx, control_rx) = unbounded();
        let wake_pending = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(InFlight::default());
        let worker = Worker {
            items: Arc::clone(&items),
            control: control_rx,
            wake_pending: Arc::clone(&wake_pending),
            settings,
            export,
            counters: counters.clone(),
            in_flight: Arc::clone(&in_flight),
            batch_bytes: 0,
        };
        let handle = std::thread::Builder::new()
            .name(format!("telemetry-{}", counters.signal().as_str()))
            .spawn(move || worker.run())?;
        counters.queue_capacity(settings.max_queue_size as u64);
        Ok(Self {
            items,
            control: control_tx,
            wake_pending,
            batch_size: settings.max_export_batch_size.max(1),
            counters,
            in_flight,
            worker: std::sync::Mutex::new(Some(handle)),
        })
    }

    /// Enqueues without blocking; a full queue (in items, or in bytes with
    /// this item's approximate `size`) drops the item and counts it.
    pub(crate) fn push(&self, item: T, size: usize) {
        match self.items.push(item, size) {
            Ok(()) => {
                self.counters.enqueued();
                if self.items.len() >= self.batch_size
                    && !self.wake_pending.swap(true, Ordering::AcqRel)
                {
                    let _ = self.control.send(Control::Wake);
                }
            }
            Err(_) => self.counters.dropped(),
        }
    }

    /// Exports everything queued so far; waits at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), String> {
        let (tx, rx) = bounded(1);
        self.control
            .send(Control::Flush(tx))
            .map_err(|_| "export worker already stopped".to_string())?;
        rx.recv_timeout(timeout).map_err(|_| {
            format!(
                "{} flush did not finish within {timeout:?}",
                self.counters.signal()
            )
        })
    }

    /// Exports what it can before `timeout`, then stops the worker. Once
    /// it returns `Ok`, every item is counted as exported, failed, cut off
    /// by the deadline, or (in an export the deadline cut short) pending.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = bounded(1);
        // A worker waiting for an export slot (on a slow collector, for up
        // to the export timeout) stops waiting and reads this at once.
        self.in_flight.interrupt();
        if self.control.send(Control::Shutdown(deadline, tx)).is_err() {
            return Ok(()); // already shut down
        }
        match rx.recv_timeout(timeout + SHUTDOWN_ACK_GRACE) {
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
                self.counters.signal()
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
    counters: SignalCounters,
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

/// Counts exports running on the runtime, so the worker can cap them and
/// wait for them at flush and shutdown. A shutdown request interrupts the
/// waits that are not part of the shutdown itself, so the worker turns to
/// its shutdown drain at once even when a slow collector holds every slot.
#[derive(Default)]
struct InFlight {
    state: Mutex<Slots>,
    changed: Condvar,
}

#[derive(Default)]
struct Slots {
    running: usize,
    stopping: bool,
}

/// Whether a wait gives way to a shutdown request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Outside the shutdown drain: a shutdown request ends the wait.
    Interruptible,
    /// The shutdown drain's own waits: bounded by its deadline only.
    ToTheDeadline,
}

/// How waiting for an export slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Taken,
    TimedOut,
    Interrupted,
}

impl InFlight {
    /// The state, once fewer than `limit` exports run, `deadline` has
    /// passed, or (when `wait` allows) a shutdown was requested.
    fn wait_below(
        &self,
        limit: usize,
        deadline: Instant,
        wait: Wait,
    ) -> std::sync::MutexGuard<'_, Slots> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let left = deadline.saturating_duration_since(Instant::now());
        self.changed
            .wait_timeout_while(state, left, |s| {
                s.running >= limit && !(wait == Wait::Interruptible && s.stopping)
            })
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    /// Waits for the count to drop to `max - 1` or below, then takes a slot.
    fn acquire(&self, max: usize, deadline: Instant, wait: Wait) -> Slot {
        let mut state = self.wait_below(max, deadline, wait);
        if state.running < max {
            state.running += 1;
            Slot::Taken
        } else if wait == Wait::Interruptible && state.stopping {
            Slot::Interrupted
        } else {
            Slot::TimedOut
        }
    }

    fn release(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.running = state.running.saturating_sub(1);
        self.changed.notify_all();
    }

    /// A shutdown was requested: interruptible waits end now and from now on.
    fn interrupt(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.stopping = true;
        self.changed.notify_all();
    }

    /// Waits until no export is running or `deadline` passes.
    fn wait_idle(&self, deadline: Instant, wait: Wait) {
        drop(self.wait_below(1, deadline, wait));
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
                        if !self.export_batch(&mut batch, None) {
                            break;
                        }
                    }
                }
                Ok(Control::Flush(done)) => {
                    self.drain(&mut batch, None);
                    self.in_flight
                        .wait_idle(Instant::now() + self.bound(), Wait::Interruptible);
                    let _ = done.send(());
                }
                Ok(Control::Shutdown(deadline, done)) => {
                    self.drain(&mut batch, Some(deadline));
                    self.in_flight.wait_idle(deadline, Wait::ToTheDeadline);
                    let _ = done.send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.drain(&mut batch, None);
                    next_flush = Instant::now() + self.settings.schedule_delay;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.drain(&mut batch, None);
                    self.in_flight
                        .wait_idle(Instant::now() + self.bound(), Wait::Interruptible);
                    return;
                }
            }
            self.counters.queue_size(self.items.len() as u64);
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
    /// deadline passes (what is left is counted as not delivered), or
    /// (without a deadline) a shutdown interrupts it.
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
                self.counters.cut_at_deadline(left);
                return;
            }
            if !self.export_batch(batch, deadline) {
                return;
            }
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

    /// Exports `batch` (the shutdown drain passes its deadline). `false`
    /// when a shutdown request interrupted the wait for an export slot: the
    /// batch and its bytes are kept, for the shutdown's drain.
    fn export_batch(&mut self, batch: &mut Vec<T>, deadline: Option<Instant>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let n = batch.len() as u64;
        // A free export slot first: this is where a slow collector holds the
        // worker back, while the queue in front of it absorbs (then drops).
        let slot_deadline = Instant::now() + self.bound();
        let (slot_deadline, wait) = match deadline {
            Some(d) => (d.min(slot_deadline), Wait::ToTheDeadline),
            None => (slot_deadline, Wait::Interruptible),
        };
        let slot = self.in_flight.acquire(MAX_IN_FLIGHT, slot_deadline, wait);
        if slot == Slot::Interrupted {
            return false;
        }
        let bytes = self.take_bytes();
        // Handed to the export stage, where each item is then counted as
        // exported or failed (drops are counted with error.type=queue_full
        // where they happen, items cut off by the shutdown deadline with
        // shutdown_timeout).
        self.counters.processed(n);
        if slot == Slot::TimedOut {
            let error = ExportError {
                error_type: ExportError::TIMEOUT,
                message: format!(
                    "{} export timed out waiting for one of the {MAX_IN_FLIGHT} exports on the wire to end",
                    self.counters.signal()
                ),
            };
            self.counters.finished(n, Instant::now(), &Err(error));
            batch.clear();
            drop(bytes);
            return true;
        }
        let mut timeout = self.settings.export_timeout;
        if let Some(d) = deadline {
            timeout = timeout.min(d.saturating_duration_since(Instant::now()));
        }
        let items = std::mem::replace(
            batch,
            Vec::with_capacity(self.settings.max_export_batch_size),
        );
        let started = Instant::now();
        match (self.export)(items, timeout) {
            Export::Done(result) => {
                self.counters.finished(n, started, &result);
                self.in_flight.release();
                drop(bytes);
            }
            Export::Spawn(handle, future) => {
                let counters = self.counters.clone();
                let in_flight = Arc::clone(&self.in_flight);
                // Released even if the runtime drops the task unfinished.
                let slot = SlotGuard(in_flight);
                handle.spawn(async move {
                    let result = match tokio::time::timeout(timeout, future).await {
                        Ok(r) => r,
                        Err(_) => Err(ExportError::timeout(timeout)),
                    };
                    counters.finished(n, started, &result);
                    drop(slot);
                    drop(bytes);
                });
            }
        }
        true
    }
}

/// Gives an export slot back when dropped.
struct SlotGuard(Arc<InFlight>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Signal;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    fn counters(signal: Signal) -> SignalCounters {
        let health = telemetry_init_metrics::TelemetryRecorder::new(
            telemetry_init_metrics::MetricsConfig::new(),
        )
        .unwrap()
        .handle()
        .pipeline_health();
        SignalCounters::new(&health, signal)
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
        let stats = counters(Signal::Traces);
        let q = BatchQueue::start(
            settings(100, 10),
            usize::MAX,
            stats.clone(),
            Box::new(move |b: Vec<u32>, _| {
                s.lock().unwrap().push(b.len());
                Export::Done(Ok(Delivered::default()))
            }),
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
        assert_eq!(stats.totals().exported, 25);
        assert_eq!(stats.totals().dropped, 0);
    }

    #[test]
    fn full_queue_drops_and_counts_without_blocking() {
        let (block_tx, block_rx) = bounded::<()>(0);
        let stats = counters(Signal::Logs);
        let q = BatchQueue::start(
            settings(4, 1),
            usize::MAX,
            stats.clone(),
            Box::new(move |_b: Vec<u32>, _| {
                let _ = block_rx.recv_timeout(Duration::from_secs(2));
                Export::Done(Err(ExportError::failed("collector down")))
            }),
        )
        .unwrap();
        let started = Instant::now();
        for i in 0..1000 {
            q.push(i, 0);
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        let dropped = stats.totals().dropped;
        assert!(dropped >= 1000 - 6, "dropped {dropped}");
        drop(block_tx);
        q.shutdown(Duration::from_secs(5)).unwrap();
        let t = stats.totals();
        let accounted = t.exported + t.failed + t.discarded + t.dropped;
        assert_eq!(accounted, 1000, "every item is accounted for");
    }

    #[test]
    fn the_byte_budget_covers_exports_on_the_wire() {
        let (release_tx, release_rx) = bounded::<()>(0);
        let stats = counters(Signal::Traces);
        let q = BatchQueue::start(
            settings(1000, 2),
            1000,
            stats.clone(),
            Box::new(move |_b: Vec<u32>, _| {
                // A collector that holds the export until told.
                let _ = release_rx.recv_timeout(Duration::from_secs(5));
                Export::Done(Ok(Delivered::default()))
            }),
        )
        .unwrap();
        // 300 bytes each: three fit in 1000, whatever the item count allows.
        for i in 0..10 {
            q.push(i, 300);
        }
        assert_eq!(stats.totals().enqueued, 3);
        assert_eq!(stats.totals().dropped, 7);
        // The worker takes a batch of two and hangs in its export: those
        // bytes are still held, so the budget is still full.
        std::thread::sleep(Duration::from_millis(200));
        q.push(100, 300);
        assert_eq!(stats.totals().dropped, 8);
        // Once exports end, the budget is free again.
        let flusher = std::thread::spawn(move || {
            for _ in 0..3 {
                let _ = release_tx.send_timeout((), Duration::from_secs(5));
            }
        });
        q.flush(Duration::from_secs(10)).unwrap();
        flusher.join().unwrap();
        q.push(101, 300);
        assert_eq!(stats.totals().enqueued, 4);
        q.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn shutdown_is_bounded_when_export_hangs() {
        let stats = counters(Signal::Traces);
        let q = BatchQueue::start(
            settings(10, 1),
            usize::MAX,
            stats,
            Box::new(move |_b: Vec<u32>, _timeout| {
                // An exporter that ignores its timeout entirely.
                std::thread::sleep(Duration::from_secs(30));
                Export::Done(Ok(Delivered::default()))
            }),
        )
        .unwrap();
        q.push(1, 0);
        q.push(2, 0);
        let started = Instant::now();
        assert!(q.shutdown(Duration::from_millis(300)).is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_shutdown_reaches_a_worker_waiting_for_a_slot_and_counts_the_cut() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        let stats = counters(Signal::Traces);
        let q = BatchQueue::start(
            BatchSettings {
                max_queue_size: 1000,
                max_export_batch_size: 10,
                schedule_delay: Duration::from_secs(3600),
                // The slot wait outside a shutdown lasts up to 31 s.
                export_timeout: Duration::from_secs(30),
            },
            usize::MAX,
            stats.clone(),
            // A collector that never answers.
            Box::new(move |_b: Vec<u32>, _| {
                Export::Spawn(
                    handle.clone(),
                    Box::pin(std::future::pending::<ExportResult>()),
                )
            }),
        )
        .unwrap();
        for i in 0..100 {
            q.push(i, 0);
        }
        // Two exports on the wire, a third batch waiting for a slot.
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.totals().processed < 20 {
            assert!(Instant::now() < deadline, "{:?}", stats.totals());
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = Instant::now();
        q.shutdown(Duration::from_millis(200)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        let t = stats.totals();
        // The third batch waited for a slot until the deadline; the other
        // 70 were still queued then.
        assert_eq!(t.processed, 30, "{t:?}");
        assert_eq!(t.failed, 10, "{t:?}");
        assert_eq!(t.discarded, 70, "{t:?}");
        assert_eq!(t.exported, 0, "{t:?}");
        assert_eq!(t.pending(), 20, "{t:?}");
        assert!(
            stats
                .last_error()
                .is_some_and(|e| e.contains("waiting for one of the 2 exports")),
            "{:?}",
            stats.last_error()
        );
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
        let stats = counters(Signal::Traces);
        let q = BatchQueue::start(
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
        )
        .unwrap();
        for i in 0..100 {
            q.push(i, 0);
        }
        q.flush(Duration::from_secs(10)).unwrap();
        // Flush returned only once every spawned export had finished.
        assert_eq!(stats.totals().exported, 100);
        assert_eq!(running.load(Ordering::SeqCst), 0);
        assert_eq!(peak.load(Ordering::SeqCst), MAX_IN_FLIGHT as u64);
        q.shutdown(Duration::from_secs(5)).unwrap();
    }
}
