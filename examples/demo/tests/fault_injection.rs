//! Fault injection, short form (the long form is
//! `scripts/fault-injection-long.sh`; both are described in
//! `docs/fault-injection.md`).
//!
//! The real `demo` binary runs under load against a collector that is
//! killed and restarted, one that takes seconds per export, and one that is
//! dead while the queues are small. In every case: no request fails, the
//! request latency does not depend on the collector, memory is bounded by the
//! queues, drops and failures are counted on `/metrics`, shutdown is bounded
//! and the guard's report adds up.
//!
//! The tests take a lock so they run one at a time: they compare latencies
//! and memory, which a neighbour test would disturb.

mod support;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::Demo;
use telemetry_init_testing::{Behavior, OtlpReceiver, ReceiverHandle, Value};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The demo's shutdown deadline is 5 s; this is what the process may take
/// from SIGTERM to exit.
const SHUTDOWN_BOUND: Duration = Duration::from_millis(6500);

/// With a collector that takes 2 s or more per export, a request that
/// waited on an export would take that long; no request may come near it.
const REQUEST_BOUND: Duration = Duration::from_millis(1500);

/// Where the collector fails fast (refused connections), a request stuck
/// behind the exporter is a stall: generous, because these tests load a
/// 2-core machine that other work shares.
const STALL_BOUND: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- helpers

/// An HTTP client whose requests cannot hang the test: a request that took
/// 30 s fails it.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One GET that must answer 200 with a body; returns its latency.
async fn get(client: &reqwest::Client, url: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let res = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = res.status();
    res.bytes().await.map_err(|e| format!("{url}: body: {e}"))?;
    if status != 200 {
        return Err(format!("{url}: status {status}"));
    }
    Ok(started.elapsed())
}

/// Latencies of successful requests and the errors of failed ones.
#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    failures: Vec<String>,
}

impl Outcome {
    fn record(&mut self, r: Result<Duration, String>) {
        match r {
            Ok(d) => self.latencies.push(d),
            Err(e) => self.failures.push(e),
        }
    }

    fn sent(&self) -> usize {
        self.latencies.len() + self.failures.len()
    }

    fn assert_all_ok(&self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} requests failed, first: {:?}",
            self.failures.len(),
            self.sent(),
            self.failures.first()
        );
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        assert!(!l.is_empty(), "no latencies");
        let i = ((l.len() as f64 * q).ceil() as usize).clamp(1, l.len()) - 1;
        l[i]
    }

    fn max(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }
}

/// Sends `GET {base}/users/{prefix}{i}` for `i` in `range`, `concurrency` at a time.
async fn load(
    client: &reqwest::Client,
    demo: &Demo,
    prefix: &str,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> Outcome {
    let urls: Vec<String> = range
        .map(|i| demo.url(&format!("/users/{prefix}{i}")))
        .collect();
    let mut results = futures_util::stream::iter(urls.iter().map(|u| get(client, u)))
        .buffer_unordered(concurrency);
    let mut out = Outcome::default();
    while let Some(r) = results.next().await {
        out.record(r);
    }
    out
}

/// A loopback port nothing listens on: connections are refused.
fn refusing_endpoint() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// The demo's `/metrics` text.
async fn scrape(client: &reqwest::Client, demo: &Demo) -> String {
    let res = client.get(demo.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// Sum of the samples of `name` whose `error_type` label (`None`: absent)
/// satisfies `wanted`; 0 when there is none.
fn sample(text: &str, name: &str, wanted: impl Fn(Option<&str>) -> bool) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let error_type = labels
                .split(',')
                .find_map(|kv| kv.strip_prefix("error_type=\""))
                .map(|v| v.trim_end_matches('"'));
            wanted(error_type).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// The pipeline's span accounting as `/metrics` shows it.
#[derive(Debug, Clone, Copy)]
struct SpanHealth {
    /// Handed to the exporter (`processed_total` without `error_type`).
    processed: f64,
    /// Dropped because the queue was full.
    dropped: f64,
    /// Exports that succeeded / failed, in spans.
    exported: f64,
    failed: f64,
    queue_size: f64,
    capacity: f64,
}

const PROCESSED: &str = "otel_sdk_processor_span_processed_total";
const EXPORTED: &str = "otel_sdk_exporter_span_exported_total";

impl SpanHealth {
    fn parse(text: &str) -> Self {
        Self {
            processed: sample(text, PROCESSED, |e| e.is_none()),
            dropped: sample(text, PROCESSED, |e| e == Some("queue_full")),
            exported: sample(text, EXPORTED, |e| e.is_none()),
            // `export_failed`, `timeout`…
            failed: sample(text, EXPORTED, |e| e.is_some()),
            queue_size: sample(text, "otel_sdk_processor_span_queue_size", |_| true),
            capacity: sample(text, "otel_sdk_processor_span_queue_capacity", |_| true),
        }
    }
}

/// Polls `/metrics` (at most `within`) until every one of `spans` spans is
/// accounted for: handed to the exporter or dropped, and every handed one
/// exported or failed. Fails the test otherwise.
async fn settled_health(
    client: &reqwest::Client,
    demo: &Demo,
    spans: usize,
    within: Duration,
) -> SpanHealth {
    let deadline = Instant::now() + within;
    loop {
        let h = SpanHealth::parse(&scrape(client, demo).await);
        if h.processed + h.dropped == spans as f64 && h.exported + h.failed == h.processed {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "span accounting on /metrics did not settle to {spans} spans: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The guard's shutdown report, as the demo prints it: the `telemetry shut
/// down` JSON line on stdout (written when the flush finished, in time or
/// not) and the `telemetry not fully delivered` line on stderr (whenever
/// something was not delivered). When the deadline cut the flush short, the
/// stderr line is the only one and says so; when both are there they agree.
#[derive(Debug)]
struct Report {
    spans_exported: u64,
    spans_undelivered: u64,
    logs_exported: u64,
    logs_undelivered: u64,
    deadline_reached: bool,
}

fn report(demo: &Demo) -> Report {
    let stderr = demo.stderr().join("\n");
    let printed = stderr
        .lines()
        .find(|l| l.contains("telemetry not fully delivered"))
        .map(|l| {
            let n: Vec<u64> = l
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .take(4)
                .collect();
            assert_eq!(n.len(), 4, "unexpected report: {l}");
            Report {
                spans_exported: n[0],
                spans_undelivered: n[1],
                logs_exported: n[2],
                logs_undelivered: n[3],
                deadline_reached: l.contains("shutdown deadline reached"),
            }
        });
    let lines = demo.json_lines();
    let logged = lines
        .iter()
        .find(|v| v["message"] == "telemetry shut down")
        .map(|line| {
            let n = |k: &str| {
                line[k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{k} missing: {line}"))
            };
            Report {
                spans_exported: n("spans_exported"),
                spans_undelivered: n("spans_undelivered"),
                logs_exported: n("logs_exported"),
                logs_undelivered: n("logs_undelivered"),
                deadline_reached: false,
            }
        });
    match (logged, printed) {
        (Some(r), None) => {
            assert_eq!(
                r.spans_undelivered + r.logs_undelivered,
                0,
                "{r:?} but no report on stderr: {stderr}"
            );
            r
        }
        // The deadline passed, and the flush finished just after: the
        // stdout line is a later snapshot of the same spans.
        (Some(r), Some(p)) if p.deadline_reached => {
            assert_eq!(
                r.spans_exported + r.spans_undelivered,
                p.spans_exported + p.spans_undelivered,
                "stdout and stderr reports disagree: {r:?} {stderr}"
            );
            assert!(r.spans_exported >= p.spans_exported, "{r:?} {stderr}");
            p
        }
        (Some(r), Some(p)) => {
            assert_eq!(
                (
                    r.spans_exported,
                    r.spans_undelivered,
                    r.logs_exported,
                    r.logs_undelivered
                ),
                (
                    p.spans_exported,
                    p.spans_undelivered,
                    p.logs_exported,
                    p.logs_undelivered
                ),
                "stdout and stderr reports disagree: {stderr}"
            );
            p
        }
        (None, Some(p)) => {
            assert!(
                p.deadline_reached,
                "no `telemetry shut down` line although the flush finished: {stderr}"
            );
            p
        }
        (None, None) => panic!("no shutdown report at all; stderr: {stderr}"),
    }
}

/// Every span of `requests` requests is either exported or reported
/// undelivered; each request exports one log record (the handler's; the
/// access log is printed, not exported), plus a few start-up and shutdown lines.
fn assert_report_adds_up(r: &Report, requests: usize) {
    assert_eq!(
        r.spans_exported + r.spans_undelivered,
        requests as u64,
        "{r:?}"
    );
    let logs = r.logs_exported + r.logs_undelivered;
    let requests = requests as u64;
    assert!(
        (requests..=requests + 10).contains(&logs),
        "{logs} log records for {requests} requests: {r:?}"
    );
}

/// Spans stored by a receiver that the demo sent for `/users/{prefix}…`.
fn spans_with_prefix(h: &ReceiverHandle, prefix: &str) -> usize {
    let path = format!("/users/{prefix}");
    h.spans()
        .iter()
        .filter(|s| matches!(s.attr("url.path"), Some(Value::String(p)) if p.starts_with(&path)))
        .count()
}

/// `/proc/<pid>/status` of the demo, found as the child process holding the
/// listening socket on `port`.
fn demo_status(port: u16) -> String {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inode = tcp
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let p = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            // 0A: LISTEN
            (p == port && f.get(3) == Some(&"0A")).then(|| f.get(9).map(|s| s.to_string()))?
        })
        .unwrap_or_else(|| panic!("no listening socket on port {port}"));
    let needle = format!("socket:[{inode}]");
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces.
        let ppid = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid != Some(Some(me.as_str())) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy() == needle));
        if holds {
            return std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        }
    }
    panic!("no child process holds {needle}");
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_bytes(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        * 1024
}

const MIB: f64 = 1024.0 * 1024.0;

// ---------------------------------------------------------------- scenarios

/// A number from the environment (the long form sets these), else `default`.
fn param(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?}")))
        .unwrap_or(default)
}

/// The collector is shut down while requests flow, stays down for `down`,
/// then comes back on the same ports, `cycles` times. No request fails or
/// slows down; the spans of requests made during each outage are counted as
/// failed on `/metrics`; after each restart the exporter reconnects by
/// itself and the spans of requests made after the restart arrive; the
/// report adds up. Returns a summary line.
async fn killed_and_restarted(cycles: usize, up: Duration, down: Duration) -> String {
    let first = OtlpReceiver::start().await.unwrap();
    let (grpc_addr, http_addr) = (first.grpc_addr(), first.http_addr());
    let mut handles = vec![first.handle()];
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &first.grpc_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
    ]);
    let client = client();

    // Load in the background, tagged with the phase it was sent in: even
    // phases with a collector up, odd ones with it down.
    let phases = 2 * cycles + 1;
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let loader = {
        let (client, phase, stop) = (client.clone(), phase.clone(), stop.clone());
        let base = demo.url("/users/");
        tokio::spawn(async move {
            let mut out: Vec<Outcome> = (0..phases).map(|_| Outcome::default()).collect();
            let mut i = 0usize;
            // Bounded: stops when told, or after a million requests.
            while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
                let p = phase.load(Ordering::Relaxed);
                let round: Vec<String> = (i..i + 4).map(|j| format!("{base}p{p}-{j}")).collect();
                let results =
                    futures_util::future::join_all(round.iter().map(|u| get(&client, u))).await;
                for r in results {
                    out[p].record(r);
                }
                i += 4;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            out
        })
    };

    let mut receiver = first;
    for cycle in 0..=cycles {
        let p = 2 * cycle;
        // Export works (again): spans of requests made since this
        // collector started arrive.
        let handle = receiver.handle();
        let prefix = format!("p{p}-");
        let deadline = Instant::now() + Duration::from_secs(15);
        while spans_with_prefix(&handle, &prefix) < 20 {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: export did not resume: {} spans of phase {p}",
                spans_with_prefix(&handle, &prefix)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if cycle == cycles {
            break;
        }
        tokio::time::sleep(up).await;

        // Kill it; the outage is counted as failed exports.
        let failed_before = SpanHealth::parse(&scrape(&client, &demo).await).failed;
        receiver.shutdown().await;
        phase.store(p + 1, Ordering::Relaxed);
        tokio::time::sleep(down).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let h = SpanHealth::parse(&scrape(&client, &demo).await);
            if h.failed > failed_before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: outage not counted as failed exports: {h:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Back on the same ports (a few tries: the old sockets may linger).
        let mut tries = 0;
        receiver = loop {
            match OtlpReceiver::start_on(grpc_addr, http_addr).await {
                Ok(r) => break r,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 50, "cannot restart on {grpc_addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        handles.push(receiver.handle());
        phase.store(p + 2, Ordering::Relaxed);
    }
    stop.store(true, Ordering::Relaxed);
    let out = loader.await.unwrap();
    for (p, o) in out.iter().enumerate() {
        o.assert_all_ok(&format!("phase {p}"));
        assert!(o.sent() > 0, "no requests in phase {p}");
        assert!(o.max() < STALL_BOUND, "phase {p}: slowest {:?}", o.max());
    }
    let sent: usize = out.iter().map(Outcome::sent).sum();

    // Every span is accounted for on /metrics.
    let health = settled_health(&client, &demo, sent, Duration::from_secs(15)).await;
    assert!(health.exported > 0.0, "{health:?}");

    let (code, took) = demo.terminate(Duration::from_secs(15));
    assert_eq!(code, 0, "stderr: {:?}", demo.stderr());
    assert!(took < SHUTDOWN_BOUND, "shutdown took {took:?}");
    let r = report(&demo);
    assert_report_adds_up(&r, sent);
    assert!(
        r.spans_undelivered >= health.failed as u64,
        "{r:?} {health:?}"
    );
    // Nothing counted as exported was lost (a receiver may also hold a batch
    // whose answer never reached the demo, hence ≥).
    let received: usize = handles.iter().map(|h| h.spans().len()).sum();
    assert!(
        received as u64 >= r.spans_exported,
        "{received} received, {r:?}"
    );
    receiver.shutdown().await;

    let all = Outcome {
        latencies: out.iter().flat_map(|o| o.latencies.clone()).collect(),
        failures: Vec::new(),
    };
    let outage = Outcome {
        latencies: out
            .iter()
            .skip(1)
            .step_by(2)
            .flat_map(|o| o.latencies.clone())
            .collect(),
        failures: Vec::new(),
    };
    format!(
        "killed/restarted: {cycles} cycles, {sent} requests, 0 failed, {} during outages; \
         latency p99 {:?} max {:?} (during outages p99 {:?} max {:?}); \
         /metrics spans processed {} exported {} failed {} dropped {}; \
         spans received {received}; shutdown {took:?}; report {r:?}",
        outage.sent(),
        all.quantile(0.99),
        all.max(),
        outage.quantile(0.99),
        outage.max(),
        health.processed,
        health.exported,
        health.failed,
        health.dropped,
    )
}

/// The collector takes `hang` per export (it hangs, then accepts, over and
/// over) for `run`. Requests to the demo are compared with those to a
/// second demo that exports nothing, sent alternately so both see the same
/// machine load: p99 within 5× + 20 ms, nothing near an export's duration.
/// The exporter did see slow exports, spans still arrive, and shutdown
/// during a hang is bounded. Returns a summary line.
async fn slow_collector(run: Duration, hang: Duration) -> String {
    let receiver = OtlpReceiver::start().await.unwrap();
    let handle = receiver.handle();
    let mut slow = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
    ]);
    let mut quiet = Demo::start(&[("DEMO_EMBEDDED_RECEIVER", "false")]);

    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let (handle, stop) = (handle.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                handle.set_behavior(Behavior::Hang);
                tokio::time::sleep(hang).await;
                handle.set_behavior(Behavior::Accept);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let client = client();
    let (mut with_export, mut without) = (Outcome::default(), Outcome::default());
    let started = Instant::now();
    let mut i = 0;
    // Bounded by time and by count.
    while started.elapsed() < run && i < 1_000_000 {
        with_export.record(get(&client, &slow.url(&format!("/users/{i}"))).await);
        without.record(get(&client, &quiet.url(&format!("/users/{i}"))).await);
        i += 1;
    }
    with_export.assert_all_ok("slow collector");
    without.assert_all_ok("no export");
    let (p99, base_p99) = (with_export.quantile(0.99), without.quantile(0.99));
    assert!(
        p99 <= base_p99 * 5 + Duration::from_millis(20),
        "p99 {p99:?} with a slow collector, {base_p99:?} without export"
    );
    // A stall is excused only when the no-export demo stalled as long: the
    // machine, not the exporter.
    assert!(
        with_export.max() < REQUEST_BOUND || with_export.max() <= without.max() * 2,
        "slowest request {:?} with a slow collector, {:?} without export",
        with_export.max(),
        without.max()
    );

    // The collector really was slow for the exporter: requests hung, and
    // some span export took over a second.
    let stats = handle.stats();
    assert!(stats.hung_requests >= 2, "{stats:?}");
    let text = scrape(&client, &slow).await;
    let duration = |suffix: &str, le: Option<&str>| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "otel_sdk_exporter_operation_duration_seconds_{suffix}{{"
                ))
                    // `otlp_span_exporter`, `otlp_grpc_span_exporter`…
                    && l.contains("span_exporter\"")
                    && le.is_none_or(|le| l.contains(&format!("le=\"{le}\"")))
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let exports = duration("count", None);
    let over_a_second = exports - duration("bucket", Some("1"));
    assert!(
        over_a_second >= 1.0,
        "no span export took over 1 s: {}",
        text.lines()
            .filter(|l| l.contains("span_exporter"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let health = SpanHealth::parse(&text);
    // Slow is not lost: spans keep arriving.
    assert!(spans_with_prefix(&handle, "") > 0, "{stats:?}");

    // Shut down while the collector is still slow.
    let (code, took) = slow.terminate(Duration::from_secs(15));
    assert_eq!(code, 0, "stderr: {:?}", slow.stderr());
    assert!(took < SHUTDOWN_BOUND, "shutdown took {took:?}");
    let r = report(&slow);
    assert_report_adds_up(&r, with_export.sent());
    let received = handle.spans().len();
    assert!(
        received as u64 >= r.spans_exported,
        "{received} received, {r:?}"
    );
    let (code, _) = quiet.terminate(Duration::from_secs(15));
    assert_eq!(code, 0, "stderr: {:?}", quiet.stderr());

    stop.store(true, Ordering::Relaxed);
    toggler.await.unwrap();
    receiver.shutdown().await;
    format!(
        "slow collector: {:?} hang per export for {run:?}, {} requests, 0 failed; \
         latency p99 {p99:?} max {:?} (no-export demo p99 {base_p99:?} max {:?}); \
         {} hung export requests, {exports} span exports of which {over_a_second} over 1 s; \
         /metrics spans dropped {}; spans received {received}; shutdown {took:?}; report {r:?}",
        hang,
        with_export.sent(),
        with_export.max(),
        without.max(),
        stats.hung_requests,
        health.dropped,
    )
}

/// A dead collector and queues of 256: `total` requests all succeed, the
/// demo's resident memory (current and peak) barely moves after the first
/// 2,000 requests (sampled every `every` requests), and the spans that did
/// not fit are counted as `queue_full` drops. Returns a summary line.
async fn memory_bounded(total: usize, every: usize) -> String {
    const QUEUE: usize = 256;
    const WARMUP: usize = 2_000;
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &refusing_endpoint()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "256"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "256"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
    ]);
    let client = client();
    let port = demo.addr.port();

    let warm = load(&client, &demo, "", 0..WARMUP, 4).await;
    warm.assert_all_ok("warm-up");
    let base = demo_status(port);
    let base_rss = status_bytes(&base, "VmRSS");
    let base_hwm = status_bytes(&base, "VmHWM");
    let mid = SpanHealth::parse(&scrape(&client, &demo).await);
    assert_eq!(mid.capacity, QUEUE as f64, "{mid:?}");
    assert!(mid.queue_size <= QUEUE as f64, "{mid:?}");

    let mut slowest = warm.max();
    let (mut max_rss, mut last_hwm) = (base_rss, base_hwm);
    let mut done = WARMUP;
    while done < total {
        let next = (done + every).min(total);
        let part = load(&client, &demo, "", done..next, 4).await;
        part.assert_all_ok("load");
        slowest = slowest.max(part.max());
        done = next;
        let status = demo_status(port);
        max_rss = max_rss.max(status_bytes(&status, "VmRSS"));
        last_hwm = status_bytes(&status, "VmHWM");
        let h = SpanHealth::parse(&scrape(&client, &demo).await);
        assert!(h.queue_size <= QUEUE as f64, "{h:?}");
    }
    let rss_growth = (max_rss as f64 - base_rss as f64) / MIB;
    let hwm_growth = (last_hwm as f64 - base_hwm as f64) / MIB;
    assert!(
        rss_growth < 20.0 && hwm_growth < 20.0,
        "memory grew by {rss_growth:.1} MiB (RSS) / {hwm_growth:.1} MiB (peak) over {} requests",
        total - WARMUP
    );
    assert!(slowest < STALL_BOUND, "slowest request {slowest:?}");

    // Every span is accounted for; those that did not fit were dropped and
    // counted.
    let h = settled_health(&client, &demo, total, Duration::from_secs(15)).await;
    assert!(
        h.dropped > 0.0,
        "a dead collector, {total} spans, no drop: {h:?}"
    );
    assert!(
        h.dropped >= total as f64 - QUEUE as f64 - h.processed,
        "{h:?}"
    );
    assert_eq!(h.exported, 0.0, "{h:?}");

    let (code, took) = demo.terminate(Duration::from_secs(15));
    assert_eq!(code, 0, "stderr: {:?}", demo.stderr());
    assert!(took < SHUTDOWN_BOUND, "shutdown took {took:?}");
    let r = report(&demo);
    assert_report_adds_up(&r, total);
    assert_eq!(r.spans_exported, 0, "{r:?}");
    assert_eq!(r.logs_exported, 0, "{r:?}");
    format!(
        "dead collector, queues {QUEUE}: {total} requests, 0 failed, slowest {slowest:?}; \
         RSS after {WARMUP} {:.1} MiB, highest after {:.1} MiB (+{rss_growth:.1}); \
         peak {:.1} → {:.1} MiB (+{hwm_growth:.1}); /metrics spans processed {} dropped {} \
         failed {}; shutdown {took:?}; report {r:?}",
        base_rss as f64 / MIB,
        max_rss as f64 / MIB,
        base_hwm as f64 / MIB,
        last_hwm as f64 / MIB,
        h.processed,
        h.dropped,
        h.failed,
    )
}

// ---------------------------------------------------------------- short form (CI)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_killed_and_restarted_mid_load() {
    let _serial = SERIAL.lock().await;
    let summary = killed_and_restarted(1, Duration::from_millis(500), Duration::from_secs(2)).await;
    eprintln!("SUMMARY {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_collector_is_never_on_the_request_path() {
    let _serial = SERIAL.lock().await;
    let summary = slow_collector(Duration::from_secs(6), Duration::from_secs(2)).await;
    eprintln!("SUMMARY {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_bounded_by_the_queue_when_the_collector_is_dead() {
    let _serial = SERIAL.lock().await;
    let summary = memory_bounded(20_000, 18_000).await;
    eprintln!("SUMMARY {summary}");
}

// ---------------------------------------------------------------- long form
//
// `scripts/fault-injection-long.sh` runs these (`--ignored`) with the sizes
// below, or those of its environment.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long form: scripts/fault-injection-long.sh"]
async fn long_collector_killed_and_restarted_repeatedly() {
    let _serial = SERIAL.lock().await;
    let cycles = param("FAULT_LONG_CYCLES", 10) as usize;
    let up = Duration::from_secs(param("FAULT_LONG_UP_SECS", 5));
    let down = Duration::from_secs(param("FAULT_LONG_DOWN_SECS", 5));
    let summary = killed_and_restarted(cycles, up, down).await;
    eprintln!("SUMMARY {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long form: scripts/fault-injection-long.sh"]
async fn long_slow_collector() {
    let _serial = SERIAL.lock().await;
    let run = Duration::from_secs(param("FAULT_LONG_SLOW_SECS", 180));
    let hang = Duration::from_secs(param("FAULT_LONG_HANG_SECS", 4));
    let summary = slow_collector(run, hang).await;
    eprintln!("SUMMARY {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long form: scripts/fault-injection-long.sh"]
async fn long_memory_bounded() {
    let _serial = SERIAL.lock().await;
    let total = param("FAULT_LONG_REQUESTS", 200_000) as usize;
    let summary = memory_bounded(total, 20_000).await;
    eprintln!("SUMMARY {summary}");
}
