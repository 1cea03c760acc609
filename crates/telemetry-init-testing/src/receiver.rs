//! [`OtlpReceiver`], its builder and its cloneable [`ReceiverHandle`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::model::{ReceivedLog, ReceivedMetric, ReceivedSpan, Signal, Transport};
use crate::server::{serve_grpc, serve_http};
use crate::store::{Answer, Behavior, DEFAULT_MEMORY_BUDGET_BYTES, ReceiverStats, Shared, State};
use crate::tls::{ReceiverTls, RequiredHeaders};
use tokio_rustls::TlsAcceptor;

/// Starting a receiver failed.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// A listener could not be bound.
    #[error("cannot bind the OTLP {protocol} listener on {addr}: {source}")]
    Bind {
        /// `"gRPC"` or `"HTTP"`.
        protocol: &'static str,
        /// The requested address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The receiver's runtime or thread could not be created.
    #[error("cannot start the OTLP receiver's runtime thread: {0}")]
    Runtime(#[source] std::io::Error),
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A required header's name or value is not a valid HTTP header.
    #[error("invalid required header {0:?}")]
    InvalidHeader(String),
}

/// A wait timed out before its condition held.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WaitError {
    /// Fewer spans than wanted arrived.
    #[error("timed out after {timeout:?} waiting for {wanted} spans: only {got} arrived")]
    Spans {
        /// Number of spans waited for.
        wanted: usize,
        /// Number of spans stored when the wait gave up.
        got: usize,
        /// The timeout.
        timeout: Duration,
    },
    /// Fewer log records than wanted arrived.
    #[error("timed out after {timeout:?} waiting for {wanted} log records: only {got} arrived")]
    Logs {
        /// Number of log records waited for.
        wanted: usize,
        /// Number of log records stored when the wait gave up.
        got: usize,
        /// The timeout.
        timeout: Duration,
    },
    /// The metric never arrived.
    #[error(
        "timed out after {timeout:?} waiting for metric `{name}`: it did not arrive; metrics received: {received:?}"
    )]
    Metric {
        /// The metric name waited for.
        name: String,
        /// Distinct names of the metrics that did arrive.
        received: Vec<String>,
        /// The timeout.
        timeout: Duration,
    },
    /// A custom condition never held.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Condition {
        /// What was waited for.
        what: String,
        /// The timeout.
        timeout: Duration,
    },
}

/// Configures and starts an [`OtlpReceiver`].
#[derive(Debug, Clone)]
pub struct ReceiverBuilder {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    memory_budget_bytes: usize,
    tls: Option<ReceiverTls>,
    required_headers: Vec<(String, String)>,
    max_request_bytes: Option<usize>,
    max_body_bytes: usize,
    allow_remote: bool,
}

impl Default for ReceiverBuilder {
    fn default() -> Self {
        ReceiverBuilder {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            memory_budget_bytes: DEFAULT_MEMORY_BUDGET_BYTES,
            tls: None,
            required_headers: Vec::new(),
            max_request_bytes: None,
            max_body_bytes: crate::access::DEFAULT_MAX_BODY_BYTES,
            allow_remote: false,
        }
    }
}

impl ReceiverBuilder {
    /// Address of the gRPC listener (default `127.0.0.1:0`, an ephemeral port).
    #[must_use]
    pub fn grpc_addr(mut self, addr: SocketAddr) -> Self {
        self.grpc_addr = addr;
        self
    }

    /// Address of the HTTP listener (default `127.0.0.1:0`, an ephemeral port).
    #[must_use]
    pub fn http_addr(mut self, addr: SocketAddr) -> Self {
        self.http_addr = addr;
        self
    }

    /// Memory budget in bytes of decoded protobuf (default 256 MiB). When
    /// stored telemetry exceeds it, the oldest items (of any signal) are
    /// evicted and counted in [`ReceiverStats`].
    #[must_use]
    pub fn memory_budget_bytes(mut self, bytes: usize) -> Self {
        self.memory_budget_bytes = bytes;
        self
    }

    /// Serves both listeners over TLS (see [`crate::tls`]): the endpoints
    /// become `https://`, and a client certificate may be required.
    #[must_use]
    pub fn tls(mut self, tls: ReceiverTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Answers export requests that lack `name: value` with HTTP 401 or
    /// gRPC `UNAUTHENTICATED` (counted in
    /// [`OtlpReceiver::unauthenticated_requests`]). Repeatable: every
    /// required header must be present.
    ///
    /// ```
    /// use telemetry_init_testing::OtlpReceiver;
    ///
    /// let receiver = OtlpReceiver::builder()
    ///     .require_header("authorization", "Basic dXNlcjpwYXNz")
    ///     .start_blocking()
    ///     .unwrap();
    /// assert_eq!(receiver.unauthenticated_requests(), 0);
    /// ```
    #[must_use]
    pub fn require_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.required_headers.push((name.into(), value.into()));
        self
    }

    /// Refuses export requests larger than `bytes` (uncompressed) as the
    /// OpenTelemetry Collector does (`max_recv_msg_size_mib`, 4 MiB by
    /// default there): gRPC `RESOURCE_EXHAUSTED`, HTTP `413`. Off by default;
    /// see also [`ReceiverHandle::set_max_request_bytes`].
    ///
    /// ```
    /// let receiver = telemetry_init_testing::OtlpReceiver::builder()
    ///     .max_request_bytes(4 * 1024 * 1024)
    ///     .start_blocking()
    ///     .unwrap();
    /// assert_eq!(receiver.handle().too_large_requests(), 0);
    /// ```
    #[must_use]
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// Hard bound on one export request body, in bytes, both as sent and after
    /// gzip decompression (default
    /// [`DEFAULT_MAX_BODY_BYTES`](crate::access::DEFAULT_MAX_BODY_BYTES)).
    /// A larger one is refused (HTTP 413, gRPC `RESOURCE_EXHAUSTED` /
    /// `OUT_OF_RANGE`) without being decompressed further, so a gzip bomb
    /// costs at most this much memory. This protects the receiver itself;
    /// [`max_request_bytes`](Self::max_request_bytes) emulates a collector's
    /// limit (counted, adjustable at run time) and raises this bound if larger.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Serves clients that are not on loopback too (default `false`: a
    /// non-loopback peer gets HTTP 403 / gRPC `PERMISSION_DENIED`, whatever
    /// address the listeners are bound to). See [`crate::access`].
    #[must_use]
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    /// Binds both listeners and starts the servers on the receiver's own
    /// runtime thread; see [`OtlpReceiver`].
    pub async fn start(self) -> Result<OtlpReceiver, ReceiverError> {
        self.start_blocking()
    }

    /// Like [`ReceiverBuilder::start`], for code that is not async (binding
    /// is immediate; nothing here blocks for long).
    pub fn start_blocking(self) -> Result<OtlpReceiver, ReceiverError> {
        let bind = |protocol: &'static str, addr: SocketAddr| {
            let err = |source| ReceiverError::Bind {
                protocol,
                addr,
                source,
            };
            let listener = std::net::TcpListener::bind(addr).map_err(err)?;
            listener.set_nonblocking(true).map_err(err)?;
            let local = listener.local_addr().map_err(err)?;
            Ok::<_, ReceiverError>((listener, local))
        };
        let mut required = Vec::new();
        for (name, value) in &self.required_headers {
            let n = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ReceiverError::InvalidHeader(name.clone()))?;
            let v = http::HeaderValue::from_str(value)
                .map_err(|_| ReceiverError::InvalidHeader(name.clone()))?;
            required.push((n, v));
        }
        let auth = RequiredHeaders {
            headers: Arc::new(required),
            refused: Arc::default(),
        };
        let acceptors = self.tls.as_ref().map(ReceiverTls::acceptors).transpose()?;
        let (grpc, grpc_addr) = bind("gRPC", self.grpc_addr)?;
        let (http, http_addr) = bind("HTTP", self.http_addr)?;
        let mut shared = Shared::new(self.memory_budget_bytes);
        // The hard bound never refuses what the Collector-style limit lets in.
        shared.max_body_bytes = self.max_body_bytes.max(self.max_request_bytes.unwrap_or(0));
        shared.allow_remote = self.allow_remote;
        let shared = Arc::new(shared);
        shared.size_limit.set(self.max_request_bytes);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ReceiverError::Runtime)?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let thread_shared = shared.clone();
        let thread_auth = auth.clone();
        std::thread::Builder::new()
            .name(format!("otlp-receiver-{}", grpc_addr.port()))
            .spawn(move || {
                run_servers(runtime, thread_shared, grpc, http, acceptors, thread_auth);
                let _ = done_tx.send(());
            })
            .map_err(ReceiverError::Runtime)?;
        Ok(OtlpReceiver {
            handle: ReceiverHandle { shared },
            grpc_addr,
            http_addr,
            scheme: if self.tls.is_some() { "https" } else { "http" },
            refused: auth.refused,
            done: Some(done_rx),
        })
    }
}

/// Body of the receiver thread: serves until shutdown is signalled, gives
/// the servers a second to close gracefully, then drops the runtime (which
/// cancels whatever is left and closes the listeners).
fn run_servers(
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    grpc: std::net::TcpListener,
    http: std::net::TcpListener,
    tls: Option<(TlsAcceptor, TlsAcceptor)>,
    auth: RequiredHeaders,
) {
    let mut shutdown = shared.shutdown.subscribe();
    runtime.block_on(async move {
        let servers = async {
            let grpc = TcpListener::from_std(grpc);
            let http = TcpListener::from_std(http);
            match (grpc, http) {
                (Ok(grpc), Ok(http)) => {
                    let (grpc_tls, http_tls) = tls.unzip();
                    let g = tokio::spawn(serve_grpc(shared.clone(), grpc, grpc_tls, auth.clone()));
                    let h = tokio::spawn(serve_http(shared.clone(), http, http_tls, auth));
                    Some((g, h))
                }
                _ => None,
            }
        };
        let tasks = servers.await;
        let _ = shutdown.wait_for(|down| *down).await;
        if let Some((g, h)) = tasks {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                let _ = g.await;
                let _ = h.await;
            })
            .await;
        }
    });
    drop(runtime);
}

/// An in-process OTLP receiver: a gRPC and an HTTP listener on loopback that
/// store what they receive.
///
/// The servers run on a dedicated thread with its own single-threaded tokio
/// runtime, so the receiver works the same from a current-thread or
/// multi-thread runtime (or none, with [`OtlpReceiver::start_blocking`]),
/// keeps answering while the caller's runtime is busy, and may outlive the
/// runtime that started it.
///
/// Reading, waiting and fault-injection methods live on [`ReceiverHandle`]
/// (reached through `Deref`, or cloned out with [`OtlpReceiver::handle`]).
/// Dropping the receiver (or calling [`OtlpReceiver::shutdown`]) stops its
/// servers; handles then still read what was stored.
#[derive(Debug)]
pub struct OtlpReceiver {
    handle: ReceiverHandle,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    scheme: &'static str,
    refused: Arc<std::sync::atomic::AtomicU64>,
    done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl OtlpReceiver {
    /// Starts a receiver on two ephemeral loopback ports with default settings.
    pub async fn start() -> Result<OtlpReceiver, ReceiverError> {
        ReceiverBuilder::default().start().await
    }

    /// Starts a receiver with default settings, from non-async code.
    pub fn start_blocking() -> Result<OtlpReceiver, ReceiverError> {
        ReceiverBuilder::default().start_blocking()
    }

    /// Starts a receiver on the given addresses (port 0 picks a free port).
    pub async fn start_on(
        grpc_addr: SocketAddr,
        http_addr: SocketAddr,
    ) -> Result<OtlpReceiver, ReceiverError> {
        ReceiverBuilder::default()
            .grpc_addr(grpc_addr)
            .http_addr(http_addr)
            .start()
            .await
    }

    /// A builder, for a memory budget or fixed addresses.
    pub fn builder() -> ReceiverBuilder {
        ReceiverBuilder::default()
    }

    /// The gRPC endpoint, e.g. `http://127.0.0.1:4317` (`https://` with TLS).
    pub fn grpc_endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.grpc_addr)
    }

    /// The HTTP base endpoint, e.g. `http://127.0.0.1:4318` (`https://`
    /// with TLS; append `/v1/traces` etc.).
    pub fn http_endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.http_addr)
    }

    /// Requests answered 401 / `UNAUTHENTICATED` for lacking a header set
    /// with [`ReceiverBuilder::require_header`].
    pub fn unauthenticated_requests(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// A cloneable handle to the stored telemetry and the behavior switch.
    pub fn handle(&self) -> ReceiverHandle {
        self.handle.clone()
    }

    /// Stops both servers and waits (at most a few seconds) until they are
    /// gone: hung requests are answered `UNAVAILABLE`/503, connections are
    /// closed, and the listening ports are released before this returns.
    pub async fn shutdown(mut self) {
        self.handle.shared.shutdown.send_replace(true);
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
    }
}

impl Deref for OtlpReceiver {
    type Target = ReceiverHandle;

    fn deref(&self) -> &ReceiverHandle {
        &self.handle
    }
}

impl Drop for OtlpReceiver {
    /// Signals the servers to stop, without waiting for them.
    fn drop(&mut self) {
        self.handle.shared.shutdown.send_replace(true);
    }
}

/// A cheap, cloneable handle on a receiver's stored telemetry, counters and
/// behavior. Methods are callable from any thread; the `wait_for_*` ones
/// need a tokio runtime (for their timers).
#[derive(Clone)]
pub struct ReceiverHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ReceiverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverHandle")
            .field("stats", &self.stats())
            .finish()
    }
}

impl ReceiverHandle {
    /// Changes the export request size limit (see
    /// [`ReceiverBuilder::max_request_bytes`]); `None` lifts it.
    pub fn set_max_request_bytes(&self, bytes: Option<usize>) {
        self.shared.size_limit.set(bytes);
    }

    /// Export requests refused as over the size limit.
    pub fn too_large_requests(&self) -> u64 {
        self.shared.size_limit.refused()
    }

    /// The largest export request of `signal` accepted so far, in bytes
    /// (uncompressed).
    pub fn largest_request_bytes(&self, signal: Signal) -> u64 {
        self.shared.size_limit.largest(signal)
    }

    /// Every stored span, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.shared
            .lock()
            .spans
            .iter()
            .map(|s| s.item.clone())
            .collect()
    }

    /// Every stored log record, in arrival order.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        self.shared
            .lock()
            .logs
            .iter()
            .map(|s| s.item.clone())
            .collect()
    }

    /// Every stored metric (one entry per metric per export), in arrival order.
    pub fn metrics(&self) -> Vec<ReceivedMetric> {
        self.shared
            .lock()
            .metrics
            .iter()
            .map(|s| s.item.clone())
            .collect()
    }

    /// The most recently received metric with this name.
    pub fn latest_metric(&self, name: &str) -> Option<ReceivedMetric> {
        latest_metric(&self.shared.lock(), name)
    }

    /// Drops all stored telemetry (counters are kept).
    pub fn clear(&self) {
        self.shared.clear();
    }

    /// Sets how export requests are answered from now on. Requests hung by
    /// [`Behavior::Hang`] are released and handled under the new behavior.
    pub fn set_behavior(&self, behavior: Behavior) {
        self.shared.behavior.send_replace(behavior);
    }

    /// Queues answers for the next export requests of `signal` (on any
    /// transport), one each, in order; once they are used up the
    /// [`Behavior`] applies again. Lets a test make a collector fail and
    /// recover, or answer `partial_success`, request by request, the same
    /// way on gRPC, HTTP/protobuf and HTTP/JSON.
    ///
    /// ```
    /// use telemetry_init_testing::{Answer, Failure, OtlpReceiver, Signal};
    ///
    /// let receiver = OtlpReceiver::start_blocking().unwrap();
    /// receiver.script(Signal::Traces, [Answer::Fail(Failure::Unavailable)]);
    /// receiver.script(Signal::Logs, [Answer::partial_success(1, "too old")]);
    /// assert_eq!(receiver.scripted_answers_left(Signal::Traces), 1);
    /// assert_eq!(receiver.scripted_answers_left(Signal::Metrics), 0);
    /// ```
    pub fn script(&self, signal: Signal, answers: impl IntoIterator<Item = Answer>) {
        self.shared.script(signal, answers);
    }

    /// Scripted answers of `signal` not used yet (see [`script`](Self::script)).
    pub fn scripted_answers_left(&self, signal: Signal) -> usize {
        self.shared.scripted_left(signal)
    }

    /// The current behavior.
    pub fn behavior(&self) -> Behavior {
        *self.shared.behavior.borrow()
    }

    /// Number of export requests received on this transport for this signal,
    /// whatever the behavior (malformed HTTP requests are not counted).
    pub fn export_requests(&self, transport: Transport, signal: Signal) -> u64 {
        self.shared.requests(transport, signal)
    }

    /// Number of export requests that arrived while `behavior` was in effect.
    pub fn requests_in_mode(&self, behavior: Behavior) -> u64 {
        self.shared.requests_in_mode(behavior)
    }

    /// The `User-Agent` of the latest export request of `signal` (gRPC or
    /// HTTP), if it had one: which exporter is talking to the receiver.
    ///
    /// ```
    /// use telemetry_init_testing::{OtlpReceiver, Signal};
    ///
    /// let receiver = OtlpReceiver::start_blocking().unwrap();
    /// assert_eq!(receiver.handle().last_user_agent(Signal::Traces), None);
    /// ```
    pub fn last_user_agent(&self, signal: Signal) -> Option<String> {
        self.shared.last_user_agent(signal)
    }

    /// All counters.
    pub fn stats(&self) -> ReceiverStats {
        self.shared.stats()
    }

    /// Waits until at least `n` spans are stored, then returns all stored spans.
    pub async fn wait_for_spans(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedSpan>, WaitError> {
        self.wait(timeout, |sh| {
            let st = sh.lock();
            (st.spans.len() >= n).then(|| st.spans.iter().map(|s| s.item.clone()).collect())
        })
        .await
        .map_err(|()| WaitError::Spans {
            wanted: n,
            got: self.shared.lock().spans.len(),
            timeout,
        })
    }

    /// Waits until at least `n` stored spans satisfy `predicate`, then
    /// returns those spans (e.g. the spans of one trace, or of one service).
    pub async fn wait_for_spans_where(
        &self,
        n: usize,
        timeout: Duration,
        predicate: impl Fn(&ReceivedSpan) -> bool,
    ) -> Result<Vec<ReceivedSpan>, WaitError> {
        let matching = |sh: &Shared| -> Vec<ReceivedSpan> {
            sh.lock()
                .spans
                .iter()
                .filter(|s| predicate(&s.item))
                .map(|s| s.item.clone())
                .collect()
        };
        self.wait(timeout, |sh| {
            let found = matching(sh);
            (found.len() >= n).then_some(found)
        })
        .await
        .map_err(|()| WaitError::Spans {
            wanted: n,
            got: matching(&self.shared).len(),
            timeout,
        })
    }

    /// Waits until at least `n` stored log records satisfy `predicate`, then
    /// returns those records.
    pub async fn wait_for_logs_where(
        &self,
        n: usize,
        timeout: Duration,
        predicate: impl Fn(&ReceivedLog) -> bool,
    ) -> Result<Vec<ReceivedLog>, WaitError> {
        let matching = |sh: &Shared| -> Vec<ReceivedLog> {
            sh.lock()
                .logs
                .iter()
                .filter(|l| predicate(&l.item))
                .map(|l| l.item.clone())
                .collect()
        };
        self.wait(timeout, |sh| {
            let found = matching(sh);
            (found.len() >= n).then_some(found)
        })
        .await
        .map_err(|()| WaitError::Logs {
            wanted: n,
            got: matching(&self.shared).len(),
            timeout,
        })
    }

    /// Waits until at least `n` log records are stored, then returns them all.
    pub async fn wait_for_logs(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedLog>, WaitError> {
        self.wait(timeout, |sh| {
            let st = sh.lock();
            (st.logs.len() >= n).then(|| st.logs.iter().map(|s| s.item.clone()).collect())
        })
        .await
        .map_err(|()| WaitError::Logs {
            wanted: n,
            got: self.shared.lock().logs.len(),
            timeout,
        })
    }

    /// Waits until a metric named `name` is stored, then returns the latest one.
    pub async fn wait_for_metric(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<ReceivedMetric, WaitError> {
        self.wait(timeout, |sh| latest_metric(&sh.lock(), name))
            .await
            .map_err(|()| {
                let mut received: Vec<String> = self
                    .shared
                    .lock()
                    .metrics
                    .iter()
                    .map(|m| m.item.name.clone())
                    .collect();
                received.sort();
                received.dedup();
                WaitError::Metric {
                    name: name.to_owned(),
                    received,
                    timeout,
                }
            })
    }

    /// Waits until `condition` holds for the counters (e.g. a request was
    /// hung), then returns them. `what` describes the condition in the error.
    pub async fn wait_for_stats(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&ReceiverStats) -> bool,
    ) -> Result<ReceiverStats, WaitError> {
        self.wait(timeout, |sh| {
            let stats = sh.stats();
            condition(&stats).then_some(stats)
        })
        .await
        .map_err(|()| WaitError::Condition {
            what: what.to_owned(),
            timeout,
        })
    }

    /// Waits (without polling: woken on every change) until `check` returns `Some`.
    async fn wait<R>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&Shared) -> Option<R>,
    ) -> Result<R, ()> {
        let mut rx = self.shared.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(r) = check(&self.shared) {
                return Ok(r);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return check(&self.shared).ok_or(()),
            }
        }
    }

    /// A JSON snapshot for a debug endpoint; see [`crate::snapshot`].
    pub fn snapshot_json(&self) -> serde_json::Value {
        self.snapshot_json_with_limit(crate::snapshot::DEFAULT_MAX_TRACES)
    }

    /// Like [`ReceiverHandle::snapshot_json`], with at most `max_traces` traces.
    pub fn snapshot_json_with_limit(&self, max_traces: usize) -> serde_json::Value {
        use crate::snapshot::{MAX_LOGS_PER_TRACE, MAX_SPANS_PER_TRACE, MAX_UNCORRELATED_LOGS};
        let stats = self.stats();
        // Copy out only what the snapshot can show: at most
        // MAX_SPANS_PER_TRACE spans and MAX_LOGS_PER_TRACE logs (the latest)
        // of each of the `max_traces` most recent traces, the latest
        // uncorrelated logs and the latest entry of each metric. The lock
        // is held for one scan of the store and a bounded number of clones,
        // however large one trace grew.
        let (spans, logs, metrics, totals) = {
            let st = self.shared.lock();
            let mut traces: HashSet<&str> = HashSet::new();
            for s in st.spans.iter().rev() {
                if traces.len() >= max_traces {
                    break;
                }
                traces.insert(s.item.trace_id.as_str());
            }
            let mut totals: HashMap<&str, (usize, usize)> = HashMap::new();
            let mut spans: Vec<ReceivedSpan> = Vec::new();
            for s in st.spans.iter().rev() {
                let id = s.item.trace_id.as_str();
                if !traces.contains(id) {
                    continue;
                }
                let t = totals.entry(id).or_default();
                t.0 += 1;
                if t.0 <= MAX_SPANS_PER_TRACE {
                    spans.push(s.item.clone());
                }
            }
            spans.reverse();
            let mut logs: Vec<ReceivedLog> = Vec::new();
            let mut uncorrelated = 0;
            for l in st.logs.iter().rev() {
                match l.item.trace_id.as_deref() {
                    Some(id) if traces.contains(id) => {
                        let t = totals.entry(id).or_default();
                        t.1 += 1;
                        if t.1 <= MAX_LOGS_PER_TRACE {
                            logs.push(l.item.clone());
                        }
                    }
                    None if uncorrelated < MAX_UNCORRELATED_LOGS => {
                        uncorrelated += 1;
                        logs.push(l.item.clone());
                    }
                    _ => {}
                }
            }
            logs.reverse();
            let mut seen: HashSet<(&str, Option<&str>)> = HashSet::new();
            let mut metrics: Vec<ReceivedMetric> = st
                .metrics
                .iter()
                .rev()
                .filter(|m| seen.insert((m.item.name.as_str(), m.item.service_name())))
                .map(|m| m.item.clone())
                .collect();
            metrics.reverse();
            let totals: crate::snapshot::Totals =
                totals.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            (spans, logs, metrics, totals)
        };
        crate::snapshot::snapshot(&spans, &logs, &metrics, &stats, max_traces, &totals)
    }
}

fn latest_metric(st: &State, name: &str) -> Option<ReceivedMetric> {
    st.metrics
        .iter()
        .rev()
        .find(|m| m.item.name == name)
        .map(|m| m.item.clone())
}
