//! Memory-bounded storage shared by the servers and the receiver handle.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::watch;

use crate::model::{ReceivedLog, ReceivedMetric, ReceivedSpan, Signal, Transport};

/// Default memory budget: 256 MiB of decoded protobuf.
pub const DEFAULT_MEMORY_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// How the receiver answers export requests; see
/// [`ReceiverHandle::set_behavior`](crate::ReceiverHandle::set_behavior).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behavior {
    /// Store the telemetry and answer success at once (the default).
    #[default]
    Accept,
    /// Store nothing and answer gRPC `UNAVAILABLE` / HTTP `503 Service Unavailable`.
    Unavailable,
    /// Read the request, then never answer until the behavior changes (the
    /// request is then handled under the new behavior) or the receiver shuts
    /// down (it is then answered `UNAVAILABLE` / `503`). A request whose
    /// client gave up meanwhile may still be handled (and stored) on release
    /// if the server did not notice the disconnect.
    Hang,
}

impl Behavior {
    fn index(self) -> usize {
        match self {
            Behavior::Accept => 0,
            Behavior::Unavailable => 1,
            Behavior::Hang => 2,
        }
    }
}

/// One scripted answer to an export request of one signal; see
/// [`ReceiverHandle::script`](crate::ReceiverHandle::script). Scripted
/// answers are used up one per request, before the [`Behavior`] applies.
///
/// ```
/// use telemetry_init_testing::{Answer, Failure};
///
/// // A collector that is down twice, then rejects two items of the next request.
/// let script = [
///     Answer::Fail(Failure::Unavailable),
///     Answer::Fail(Failure::Unavailable),
///     Answer::partial_success(2, "timestamps too old"),
/// ];
/// # let _ = script;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Answer {
    /// Store the telemetry and answer success, as [`Behavior::Accept`].
    Accept,
    /// Store the telemetry and answer success with an OTLP
    /// `partial_success`: `rejected` spans, log records or data points
    /// (`rejected_spans` / `rejected_log_records` / `rejected_data_points`)
    /// and the collector's `error_message`.
    PartialSuccess {
        /// The rejected count.
        rejected: i64,
        /// The message.
        message: String,
    },
    /// Store nothing and answer this failure.
    Fail(Failure),
}

impl Answer {
    /// [`Answer::PartialSuccess`].
    pub fn partial_success(rejected: i64, message: impl Into<String>) -> Self {
        Answer::PartialSuccess {
            rejected,
            message: message.into(),
        }
    }
}

/// A failure answer, the same on every transport: each is a gRPC status
/// and the HTTP status the OTLP specification pairs with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Failure {
    /// gRPC `UNAVAILABLE` / HTTP `503 Service Unavailable`: retryable.
    Unavailable,
    /// gRPC `INVALID_ARGUMENT` / HTTP `400 Bad Request`: permanent.
    InvalidArgument,
    /// gRPC `RESOURCE_EXHAUSTED` without `RetryInfo` / HTTP `413 Payload Too
    /// Large`: the request is over the collector's size limit (what the
    /// Collector answers then); a client should split it.
    TooLarge,
    /// gRPC `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` of one
    /// second / HTTP `429 Too Many Requests` with `Retry-After: 1`:
    /// throttled, retryable after the delay.
    Throttled,
    /// gRPC `UNAUTHENTICATED` / HTTP `401 Unauthorized`: permanent.
    Unauthenticated,
}

impl Failure {
    /// The gRPC status code.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Failure::Unavailable => tonic::Code::Unavailable,
            Failure::InvalidArgument => tonic::Code::InvalidArgument,
            Failure::TooLarge | Failure::Throttled => tonic::Code::ResourceExhausted,
            Failure::Unauthenticated => tonic::Code::Unauthenticated,
        }
    }

    /// The HTTP status code.
    pub fn http_status(self) -> u16 {
        match self {
            Failure::Unavailable => 503,
            Failure::InvalidArgument => 400,
            Failure::TooLarge => 413,
            Failure::Throttled => 429,
            Failure::Unauthenticated => 401,
        }
    }

    /// The message sent with the failure.
    pub fn message(self) -> &'static str {
        match self {
            Failure::Unavailable => "telemetry-init-testing receiver: scripted unavailable",
            Failure::InvalidArgument => {
                "telemetry-init-testing receiver: scripted invalid argument"
            }
            Failure::TooLarge => "telemetry-init-testing receiver: scripted request too large",
            Failure::Throttled => "telemetry-init-testing receiver: scripted throttling",
            Failure::Unauthenticated => "telemetry-init-testing receiver: scripted unauthenticated",
        }
    }
}

fn t_index(t: Transport) -> usize {
    match t {
        Transport::Grpc => 0,
        Transport::HttpProtobuf => 1,
        Transport::HttpJson => 2,
    }
}

/// Counters of a receiver, see [`ReceiverHandle::stats`](crate::ReceiverHandle::stats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiverStats {
    /// Export requests received, per transport and signal (only non-zero
    /// entries), whatever the behavior was.
    pub requests: Vec<RequestCount>,
    /// Requests that arrived under [`Behavior::Accept`].
    pub accepted_requests: u64,
    /// Requests that arrived under [`Behavior::Unavailable`].
    pub unavailable_requests: u64,
    /// Requests that arrived under [`Behavior::Hang`].
    pub hung_requests: u64,
    /// Requests answered from a script ([`Answer`]), whatever the behavior.
    pub scripted_requests: u64,
    /// HTTP requests rejected as malformed (bad body, encoding or content type).
    pub rejected_requests: u64,
    /// Export requests that arrived gzip-compressed (gRPC `grpc-encoding: gzip`
    /// or HTTP `Content-Encoding: gzip`).
    pub gzip_requests: u64,
    /// Spans currently stored.
    pub stored_spans: usize,
    /// Log records currently stored.
    pub stored_logs: usize,
    /// Metrics currently stored.
    pub stored_metrics: usize,
    /// Decoded protobuf bytes currently stored.
    pub stored_bytes: usize,
    /// The memory budget in bytes.
    pub memory_budget_bytes: usize,
    /// Spans evicted to stay within the memory budget.
    pub evicted_spans: u64,
    /// Log records evicted to stay within the memory budget.
    pub evicted_logs: u64,
    /// Metrics evicted to stay within the memory budget.
    pub evicted_metrics: u64,
}

/// Number of export requests for one transport and signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestCount {
    /// Transport.
    pub transport: Transport,
    /// Signal.
    #[serde(serialize_with = "crate::model::serialize_signal")]
    pub signal: Signal,
    /// Requests received.
    pub count: u64,
}

pub(crate) struct Stored<T> {
    pub(crate) seq: u64,
    pub(crate) size: usize,
    pub(crate) item: T,
}

pub(crate) struct State {
    pub(crate) spans: VecDeque<Stored<ReceivedSpan>>,
    pub(crate) logs: VecDeque<Stored<ReceivedLog>>,
    pub(crate) metrics: VecDeque<Stored<ReceivedMetric>>,
    seq: u64,
    bytes: usize,
    budget: usize,
    evicted: [u64; 3],
    requests: [[u64; 3]; 3],
    by_behavior: [u64; 3],
    rejected: u64,
    gzip: u64,
    last_user_agent: [Option<String>; 3],
    scripts: [VecDeque<Answer>; 3],
    scripted: u64,
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn evict(&mut self) {
        while self.bytes > self.budget {
            let fronts = [
                self.spans.front().map(|s| s.seq),
                self.logs.front().map(|s| s.seq),
                self.metrics.front().map(|s| s.seq),
            ];
            let Some((idx, _)) = fronts
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.map(|s| (i, s)))
                .min_by_key(|(_, s)| *s)
            else {
                break;
            };
            let size = match idx {
                0 => self.spans.pop_front().map(|s| s.size),
                1 => self.logs.pop_front().map(|s| s.size),
                _ => self.metrics.pop_front().map(|s| s.size),
            }
            .unwrap_or(0);
            self.bytes -= size;
            self.evicted[idx] += 1;
        }
    }
}

/// State shared by the servers and every handle.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Bumped after every change of the stored data.
    generation: watch::Sender<u64>,
    pub(crate) behavior: watch::Sender<Behavior>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) size_limit: crate::size_limit::SizeLimit,
    /// Largest request body accepted, compressed or after decompression.
    pub(crate) max_body_bytes: usize,
    /// Whether clients other than loopback ones are served.
    pub(crate) allow_remote: bool,
}

impl Shared {
    pub(crate) fn new(budget: usize) -> Self {
        Shared {
            state: Mutex::new(State {
                spans: VecDeque::new(),
                logs: VecDeque::new(),
                metrics: VecDeque::new(),
                seq: 0,
                bytes: 0,
                budget,
                evicted: [0; 3],
                requests: [[0; 3]; 3],
                by_behavior: [0; 3],
                rejected: 0,
                gzip: 0,
                last_user_agent: Default::default(),
                scripts: Default::default(),
                scripted: 0,
            }),
            generation: watch::Sender::new(0),
            behavior: watch::Sender::new(Behavior::Accept),
            shutdown: watch::Sender::new(false),
            size_limit: Default::default(),
            max_body_bytes: crate::access::DEFAULT_MAX_BODY_BYTES,
            allow_remote: false,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent
        // in a way that matters for a test receiver: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    pub(crate) fn count_request(
        &self,
        transport: Transport,
        signal: Signal,
        gzip: bool,
        user_agent: Option<&str>,
    ) {
        {
            let mut st = self.lock();
            st.requests[t_index(transport)][signal.index()] += 1;
            if gzip {
                st.gzip += 1;
            }
            let last = &mut st.last_user_agent[signal.index()];
            if last.as_deref() != user_agent {
                *last = user_agent.map(str::to_owned);
            }
        }
        self.bump();
    }

    pub(crate) fn count_behavior(&self, behavior: Behavior) {
        self.lock().by_behavior[behavior.index()] += 1;
        self.bump();
    }

    /// Appends scripted answers for `signal`.
    pub(crate) fn script(&self, signal: Signal, answers: impl IntoIterator<Item = Answer>) {
        self.lock().scripts[signal.index()].extend(answers);
        self.bump();
    }

    /// Scripted answers of `signal` not used yet.
    pub(crate) fn scripted_left(&self, signal: Signal) -> usize {
        self.lock().scripts[signal.index()].len()
    }

    /// Takes the next scripted answer of `signal`, counting it.
    pub(crate) fn next_scripted(&self, signal: Signal) -> Option<Answer> {
        let answer = {
            let mut st = self.lock();
            let answer = st.scripts[signal.index()].pop_front();
            if answer.is_some() {
                st.scripted += 1;
            }
            answer
        };
        if answer.is_some() {
            self.bump();
        }
        answer
    }

    pub(crate) fn count_rejected(&self) {
        self.lock().rejected += 1;
        self.bump();
    }

    pub(crate) fn store_spans(&self, items: Vec<(ReceivedSpan, usize)>) {
        {
            let mut st = self.lock();
            for (item, size) in items {
                let seq = st.next_seq();
                st.bytes += size;
                st.spans.push_back(Stored { seq, size, item });
            }
            st.evict();
        }
        self.bump();
    }

    pub(crate) fn store_logs(&self, items: Vec<(ReceivedLog, usize)>) {
        {
            let mut st = self.lock();
            for (item, size) in items {
                let seq = st.next_seq();
                st.bytes += size;
                st.logs.push_back(Stored { seq, size, item });
            }
            st.evict();
        }
        self.bump();
    }

    pub(crate) fn store_metrics(&self, items: Vec<(ReceivedMetric, usize)>) {
        {
            let mut st = self.lock();
            for (item, size) in items {
                let seq = st.next_seq();
                st.bytes += size;
                st.metrics.push_back(Stored { seq, size, item });
            }
            st.evict();
        }
        self.bump();
    }

    pub(crate) fn clear(&self) {
        {
            let mut st = self.lock();
            st.spans.clear();
            st.logs.clear();
            st.metrics.clear();
            st.bytes = 0;
        }
        self.bump();
    }

    pub(crate) fn requests(&self, transport: Transport, signal: Signal) -> u64 {
        self.lock().requests[t_index(transport)][signal.index()]
    }

    pub(crate) fn requests_in_mode(&self, behavior: Behavior) -> u64 {
        self.lock().by_behavior[behavior.index()]
    }

    pub(crate) fn last_user_agent(&self, signal: Signal) -> Option<String> {
        self.lock().last_user_agent[signal.index()].clone()
    }

    pub(crate) fn stats(&self) -> ReceiverStats {
        let st = self.lock();
        let mut requests = Vec::new();
        for t in Transport::ALL {
            for s in Signal::ALL {
                let count = st.requests[t_index(t)][s.index()];
                if count > 0 {
                    requests.push(RequestCount {
                        transport: t,
                        signal: s,
                        count,
                    });
                }
            }
        }
        ReceiverStats {
            requests,
            accepted_requests: st.by_behavior[0],
            unavailable_requests: st.by_behavior[1],
            hung_requests: st.by_behavior[2],
            scripted_requests: st.scripted,
            rejected_requests: st.rejected,
            gzip_requests: st.gzip,
            stored_spans: st.spans.len(),
            stored_logs: st.logs.len(),
            stored_metrics: st.metrics.len(),
            stored_bytes: st.bytes,
            memory_budget_bytes: st.budget,
            evicted_spans: st.evicted[0],
            evicted_logs: st.evicted[1],
            evicted_metrics: st.evicted[2],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ReceivedLog, Transport};
    use std::collections::BTreeMap;

    fn log(n: i64) -> ReceivedLog {
        ReceivedLog {
            trace_id: None,
            span_id: None,
            severity_number: 9,
            severity_text: String::new(),
            body: Some(crate::Value::Int(n)),
            attributes: BTreeMap::new(),
            resource: BTreeMap::new(),
            time_unix_nanos: 0,
            observed_time_unix_nanos: 0,
            event_name: String::new(),
            scope_name: String::new(),
            transport: Transport::Grpc,
        }
    }

    #[test]
    fn eviction_is_oldest_first_across_signals() {
        let shared = Shared::new(100);
        shared.store_logs((0..5).map(|n| (log(n), 20)).collect());
        assert_eq!(shared.stats().stored_bytes, 100);
        // 30 more bytes: the two oldest records go.
        shared.store_logs(vec![(log(5), 30)]);
        let st = shared.lock();
        let kept: Vec<i64> = st
            .logs
            .iter()
            .filter_map(|l| l.item.body.as_ref().and_then(crate::Value::as_i64))
            .collect();
        assert_eq!(kept, [2, 3, 4, 5]);
        drop(st);
        let stats = shared.stats();
        assert_eq!((stats.stored_bytes, stats.evicted_logs), (90, 2));
        // An item larger than the whole budget is evicted at once, and counted.
        shared.store_logs(vec![(log(6), 500)]);
        let stats = shared.stats();
        assert_eq!(stats.stored_logs, 0);
        assert_eq!(stats.evicted_logs, 7);
        assert_eq!(stats.stored_bytes, 0);
    }
}
