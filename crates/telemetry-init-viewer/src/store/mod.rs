//! The SQLite store: one file, one writer thread behind a bounded queue,
//! a small pool of read-only connections for the query API.
//!
//! Ingestion hands decoded requests to `Store::submit`, which only checks
//! the queue's bounds (count and bytes) and returns: a full queue is
//! [`QueueFull`], which the transports answer with gRPC `UNAVAILABLE` /
//! HTTP `503` and `Retry-After`. The writer folds everything queued (up to
//! [`StoreConfig::batch_interval`]) into one transaction, so a crash loses at
//! most what was queued plus one batch interval of data.

pub(crate) mod encode;
pub mod query;
pub(crate) mod retention;
pub(crate) mod schema;
pub(crate) mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::broadcast;

pub use retention::{RetentionConfig, RetentionPolicy, SIZE_MEASURE_INTERVAL};
pub use writer::BatchSummary;
pub(crate) use writer::Op;

/// Store settings; see the [`ViewerBuilder`](crate::ViewerBuilder) options.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The database file.
    pub db_path: PathBuf,
    /// Most export requests waiting for the writer.
    pub queue_len: usize,
    /// Most bytes (encoded request size) waiting for the writer.
    pub queue_bytes: usize,
    /// Longest the writer keeps folding queued requests into one transaction.
    pub batch_interval: Duration,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Retention per signal.
    pub retention: RetentionConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            db_path: PathBuf::from("telemetry-init.db"),
            queue_len: 4096,
            queue_bytes: 64 * 1024 * 1024,
            batch_interval: Duration::from_millis(100),
            retention_interval: Duration::from_secs(1),
            retention: RetentionConfig::default(),
        }
    }
}

/// The store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("SQLite error on {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by an incompatible version.
    #[error(
        "{path} has schema version {found}, this build reads version {expected}; move it away or pass another db path"
    )]
    SchemaVersion {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The version this build writes.
        expected: i64,
    },
    /// The writer thread could not be started, or is gone.
    #[error("the store's writer thread is not running: {0}")]
    Writer(String),
}

/// The bounded ingest queue is full: answer `UNAVAILABLE` / `503` and let
/// the exporter retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the viewer's write queue is full; retry later")]
pub struct QueueFull;

/// Metadata of one raw event stream (an HTTP request or a WebSocket
/// connection), stored once in `streams`.
#[derive(Debug)]
pub(crate) struct StreamMeta {
    /// Process-unique key of the connection/request.
    pub(crate) key: u64,
    pub(crate) name: String,
    pub(crate) transport: &'static str,
    pub(crate) remote_addr: Option<String>,
    /// JSON object of the request headers, secrets redacted.
    pub(crate) headers: String,
    pub(crate) opened_us: i64,
}

pub(crate) struct Shared {
    pub(crate) config: StoreConfig,
    pub(crate) queued_bytes: AtomicUsize,
    pub(crate) live: broadcast::Sender<Arc<BatchSummary>>,
    last_error: Mutex<Option<String>>,
    errors: AtomicU64,
}

impl Shared {
    pub(crate) fn record_error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(e);
        }
    }
}

/// The store; cheap to share behind an `Arc`.
pub struct Store {
    shared: Arc<Shared>,
    tx: SyncSender<(Op, usize)>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    event_counts: Mutex<HashMap<String, u64>>,
    stream_keys: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db_path", &self.shared.config.db_path)
            .finish_non_exhaustive()
    }
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

impl Store {
    /// Opens (creating if needed) the database and starts the writer thread.
    pub fn open(config: StoreConfig) -> Result<Arc<Store>, StoreError> {
        let path = config.db_path.clone();
        let err_path = path.clone();
        let err = sqlite(&err_path);
        let conn = Connection::open(&path).map_err(&err)?;
        conn.execute_batch(schema::PRAGMAS).map_err(&err)?;
        // The writer's page cache: random trace-id index inserts stay in
        // memory up to this (it only grows as used; RSS stays bounded by it).
        // Checkpoints are where `synchronous=NORMAL` fsyncs: at SQLite's
        // default (every 1 000 pages, 4 MiB of WAL) a sustained ingest of
        // ~40 MB/s fsynced ten times a second and the writer waited on the
        // disk a third of the time. Every 65 536 pages (256 MiB of WAL,
        // truncated on a clean shutdown) instead: pages rewritten between
        // checkpoints (the random trace-id index inserts) are written back
        // once. Measured in docs/performance.md (viewer, runs C and D).
        conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 65536;")
            .map_err(&err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&err)?;
        if version != 0 && version != schema::SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion {
                path,
                found: version,
                expected: schema::SCHEMA_VERSION,
            });
        }
        conn.execute_batch(schema::SCHEMA).map_err(&err)?;
        conn.execute_batch(&format!("PRAGMA user_version = {}", schema::SCHEMA_VERSION))
            .map_err(&err)?;
        let retention = retention::Retention::load(&conn, config.retention).map_err(&err)?;
        let mut counts = HashMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT s.name, count(*) FROM events e JOIN streams s ON s.id = e.stream_id GROUP BY s.name")
                .map_err(&err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(&err)?;
            for row in rows {
                let (name, n) = row.map_err(&err)?;
                counts.insert(name, n.max(0) as u64);
            }
        }
        let (live, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            config: config.clone(),
            queued_bytes: AtomicUsize::new(0),
            live,
            last_error: Mutex::new(None),
            errors: AtomicU64::new(0),
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(config.queue_len.max(1));
        let w = writer::Writer::new(conn, shared.clone(), retention);
        let handle = std::thread::Builder::new()
            .name("telemetry-init-viewer-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| StoreError::Writer(e.to_string()))?;
        Ok(Arc::new(Store {
            shared,
            tx,
            writer: Mutex::new(Some(handle)),
            readers: Mutex::new(Vec::new()),
            event_counts: Mutex::new(counts),
            stream_keys: AtomicU64::new(1),
        }))
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.shared.config.db_path
    }

    /// Queues `op` for the writer, or refuses at once when the queue is full.
    /// `size` is the request's encoded size, counted against `queue_bytes`
    /// (a request alone in the queue is always accepted).
    pub(crate) fn submit(&self, op: Op, size: usize) -> Result<(), QueueFull> {
        let before = self.shared.queued_bytes.fetch_add(size, Ordering::AcqRel);
        if before > 0 && before + size > self.shared.config.queue_bytes {
            self.shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            return Err(QueueFull);
        }
        match self.tx.try_send((op, size)) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
                Err(QueueFull)
            }
        }
    }

    /// Waits until everything queued before the call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        // Flush must not be refused for a full queue: block (off the runtime).
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            tx.send((Op::Flush(done_tx), 0))
                .map_err(|_| StoreError::Writer("gone".into()))?;
            done_rx
                .recv()
                .map_err(|_| StoreError::Writer("gone".into()))
        })
        .await
        .map_err(|e| StoreError::Writer(e.to_string()))?
    }

    /// Commits what is queued and stops the writer thread (idempotent).
    pub async fn shutdown(&self) {
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let tx = self.tx.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let _ = tx.send((Op::Shutdown, 0));
                let _ = handle.join();
            })
            .await;
        }
    }

    /// Notifications of committed batches (for `/api/live`).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BatchSummary>> {
        self.shared.live.subscribe()
    }

    /// Bytes currently queued for the writer.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Acquire)
    }

    /// The last error the writer hit, if any (writes are acknowledged before
    /// they are committed, so errors surface here and in the log).
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().ok().and_then(|e| e.clone())
    }

    pub(crate) fn record_error(&self, e: String) {
        self.shared.record_error(e);
    }

    pub(crate) fn new_stream_key(&self) -> u64 {
        self.stream_keys.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds `n` accepted events to stream `name`; returns the new total.
    pub(crate) fn count_events(&self, name: &str, n: u64) -> u64 {
        let Ok(mut counts) = self.event_counts.lock() else {
            return 0;
        };
        if let Some(c) = counts.get_mut(name) {
            *c += n;
            return *c;
        }
        counts.insert(name.to_owned(), n);
        n
    }

    /// Runs `f` on a pooled read-only connection, off the async runtime.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| StoreError::Writer(e.to_string()))?
    }

    /// Like [`Store::read`], on the calling thread.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let path = &self.shared.config.db_path;
        let pooled = self.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(sqlite(path))?;
                c.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;")
                    .map_err(sqlite(path))?;
                c
            }
        };
        let out = f(&conn).map_err(sqlite(path));
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < 4
        {
            pool.push(conn);
        }
        out
    }
}
