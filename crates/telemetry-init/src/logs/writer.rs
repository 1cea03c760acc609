//! stdout without a wake-up per line.
//!
//! Why not tracing-appender's non-blocking writer: it hands every line to
//! its writer thread through a channel, and each hand-off wakes that thread
//! (a futex wake and a context switch, measured as the largest single cost
//! of a request's telemetry under load). Here lines are appended to a shared
//! buffer under a short lock, and the writer thread wakes on a timer (or
//! when a lot is waiting) to write everything in one `write(2)`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Lines reach stdout at most this long after they were logged.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Past this much waiting output the writer is woken early.
const WAKE_AT: usize = 256 * 1024;
/// Past this much waiting output (stdout blocked) lines are dropped and
/// counted: memory stays bounded whatever the reader of stdout does.
const MAX_BUFFERED: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
struct Shared {
    buf: Mutex<Vec<u8>>,
    wake_pending: AtomicBool,
    stop: AtomicBool,
    dropped_lines: AtomicU64,
}

/// The `MakeWriter` for the fmt layer.
#[derive(Debug, Clone)]
pub(crate) struct BufferedStdout {
    shared: Arc<Shared>,
    thread: Arc<std::thread::Thread>,
}

/// Stops the writer thread after a last write; see [`BufferedStdout::start`].
#[derive(Debug)]
pub(crate) struct StdoutGuard {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

impl BufferedStdout {
    pub(crate) fn start() -> std::io::Result<(Self, StdoutGuard)> {
        Self::start_with(std::io::stdout())
    }

    fn start_with(mut out: impl Write + Send + 'static) -> std::io::Result<(Self, StdoutGuard)> {
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("telemetry-stdout".into())
            .spawn(move || {
                let mut spare = Vec::new();
                loop {
                    let stopping = s.stop.load(Ordering::Acquire);
                    {
                        let mut buf = s.buf.lock().unwrap_or_else(|p| p.into_inner());
                        std::mem::swap(&mut *buf, &mut spare);
                    }
                    s.wake_pending.store(false, Ordering::Release);
                    if !spare.is_empty() {
                        // A failing stdout (closed pipe) must not take the
                        // service down: the bytes are dropped.
                        let _ = out.write_all(&spare).and_then(|()| out.flush());
                        spare.clear();
                        if spare.capacity() > 4 * WAKE_AT {
                            spare.shrink_to(WAKE_AT);
                        }
                    }
                    if stopping {
                        return;
                    }
                    std::thread::park_timeout(FLUSH_EVERY);
                }
            })?;
        let writer = Self {
            shared: Arc::clone(&shared),
            thread: Arc::new(handle.thread().clone()),
        };
        Ok((
            writer,
            StdoutGuard {
                shared,
                handle: Some(handle),
            },
        ))
    }
}

impl StdoutGuard {
    /// Lines dropped because stdout could not keep up.
    #[cfg(test)]
    fn dropped_lines(&self) -> u64 {
        self.shared.dropped_lines.load(Ordering::Relaxed)
    }
}

impl Drop for StdoutGuard {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        let dropped = self.shared.dropped_lines.load(Ordering::Relaxed);
        if dropped > 0 {
            eprintln!("telemetry-init: {dropped} log lines dropped (stdout could not keep up)");
        }
    }
}

/// One event's line, written in one call by the fmt layer.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    writer: &'a BufferedStdout,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let shared = &self.writer.shared;
        let len = {
            let mut buf = shared.buf.lock().unwrap_or_else(|p| p.into_inner());
            if buf.len() + bytes.len() > MAX_BUFFERED {
                shared.dropped_lines.fetch_add(1, Ordering::Relaxed);
                return Ok(bytes.len());
            }
            buf.extend_from_slice(bytes);
            buf.len()
        };
        if len >= WAKE_AT && !shared.wake_pending.swap(true, Ordering::AcqRel) {
            self.writer.thread.unpark();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedStdout {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line { writer: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::logs::Captured as Sink;

    #[test]
    fn lines_arrive_in_order_and_all_are_written_at_stop() {
        let sink = Sink::default();
        let (w, guard) = BufferedStdout::start_with(sink.clone()).unwrap();
        for i in 0..1000 {
            w.make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let out = sink.text();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[0], "line 0");
        assert_eq!(lines[999], "line 999");
    }

    #[test]
    fn lines_show_up_without_a_stop() {
        let sink = Sink::default();
        let (w, guard) = BufferedStdout::start_with(sink.clone()).unwrap();
        w.make_writer().write_all(b"hello\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while sink.text().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never flushed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.text(), "hello\n");
        drop(guard);
    }

    #[test]
    fn a_blocked_stdout_bounds_memory_and_counts_drops() {
        struct Stuck;
        impl Write for Stuck {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(0)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (w, guard) = BufferedStdout::start_with(Stuck).unwrap();
        // Let the writer take the first line and get stuck on it.
        w.make_writer().write_all(b"first\n").unwrap();
        std::thread::sleep(FLUSH_EVERY * 3);
        let line = vec![b'x'; 1024];
        for _ in 0..(MAX_BUFFERED / 1024 + 100) {
            w.make_writer().write_all(&line).unwrap();
        }
        assert!(w.shared.buf.lock().unwrap().len() <= MAX_BUFFERED);
        assert!(guard.dropped_lines() >= 100, "{}", guard.dropped_lines());
        // The guard would wait for the stuck writer: leak it in this test.
        #[allow(clippy::mem_forget, reason = "dropping it would block the test")]
        std::mem::forget(guard);
    }
}
