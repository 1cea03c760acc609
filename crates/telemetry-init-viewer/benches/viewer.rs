//! Viewer benchmark: OTLP/gRPC ingest throughput (spans with logs and metric
//! points in the same run) compared with the test kit's in-memory receiver,
//! then query latency over the resulting store, bytes per span and RSS.
//!
//! ```sh
//! cargo bench -p telemetry-init-viewer --bench viewer            # 1 000 000 spans + 1 000 000 logs at 50 000 spans/s
//! SPANS=200000 RATE=80000 cargo bench -p telemetry-init-viewer --bench viewer
//! ```
//!
//! Each server under test runs in a child process of its own pinned to CPU 0
//! (the viewer: one current-thread tokio runtime for network and decoding
//! plus its writer thread, so "one core" is literal); the load generator is
//! this process, pinned to CPU 1. The server's CPU time and RSS are read
//! from its own `/proc/<pid>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

const SERVICES: u64 = 8;
const ROUTES: [&str; 6] = [
    "/users/{id}",
    "/orders",
    "/orders/{id}",
    "/health",
    "/cart",
    "/search",
];
/// Spans per export request (the SDK batch processor's default).
const BATCH: u64 = 512;
/// Concurrent export streams.
const STREAMS: u64 = 4;

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}
fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn resource(svc: u64) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", s(&format!("svc-{svc}"))),
            kv("service.version", s("1.4.2")),
            kv("deployment.environment.name", s("dev")),
            kv("telemetry.sdk.language", s("rust")),
        ],
        ..Default::default()
    })
}

fn trace_id(n: u64) -> Vec<u8> {
    let mut v = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(&n.to_be_bytes());
    v
}

fn span_id(n: u64) -> Vec<u8> {
    (n.wrapping_mul(0xD6E8_FEB8_6659_FD93) | 1)
        .to_be_bytes()
        .to_vec()
}

/// A typical HTTP server span (the attributes `telemetry-init`'s HTTP layer
/// records) or, for every other span, a CLIENT/INTERNAL child.
fn span(n: u64, start_ns: u64) -> Span {
    let trace = n / 3;
    let route = ROUTES[(trace % ROUTES.len() as u64) as usize];
    let status = if trace.is_multiple_of(50) { 500 } else { 200 };
    let dur_us = 200 + (n * 7919) % 20_000;
    if n.is_multiple_of(3) {
        Span {
            trace_id: trace_id(trace),
            span_id: span_id(n),
            name: format!("GET {route}"),
            kind: 2,
            start_time_unix_nano: start_ns,
            end_time_unix_nano: start_ns + dur_us * 1000,
            attributes: vec![
                kv("http.request.method", s("GET")),
                kv("http.route", s(route)),
                kv(
                    "url.path",
                    s(&route.replace("{id}", &(n % 1000).to_string())),
                ),
                kv("url.scheme", s("http")),
                kv(
                    "http.response.status_code",
                    any_value::Value::IntValue(status),
                ),
                kv("network.protocol.version", s("1.1")),
                kv("server.address", s("localhost")),
            ],
            status: Some(Status {
                code: if status >= 500 { 2 } else { 0 },
                message: String::new(),
            }),
            ..Default::default()
        }
    } else {
        Span {
            trace_id: trace_id(trace),
            span_id: span_id(n),
            parent_span_id: span_id(trace * 3),
            name: if n % 3 == 1 {
                "SELECT users".into()
            } else {
                "render".into()
            },
            kind: if n % 3 == 1 { 3 } else { 1 },
            start_time_unix_nano: start_ns + 50_000,
            end_time_unix_nano: start_ns + 50_000 + dur_us * 300,
            attributes: if n % 3 == 1 {
                vec![
                    kv("db.system.name", s("postgresql")),
                    kv("db.operation.name", s("SELECT")),
                ]
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }
}

/// Batch `b` of spans (all from one service), its log records (one per
/// span, carrying its ids) and, every 16th batch, a histogram point per route.
fn requests(
    b: u64,
    now_ns: u64,
    spread_ns: u64,
    total: u64,
) -> (
    ExportTraceServiceRequest,
    ExportLogsServiceRequest,
    Option<ExportMetricsServiceRequest>,
) {
    let svc = b % SERVICES;
    let first = b * BATCH;
    let start = now_ns - spread_ns + spread_ns * first / total.max(1);
    let spans: Vec<Span> = (first..first + BATCH)
        .map(|n| span(n, start + (n - first) * 1000))
        .collect();
    let logs: Vec<LogRecord> = spans
        .iter()
        .enumerate()
        .map(|(i, sp)| LogRecord {
            time_unix_nano: sp.start_time_unix_nano + 10_000,
            severity_number: if i % 20 == 0 { 17 } else { 9 },
            severity_text: if i % 20 == 0 {
                "ERROR".into()
            } else {
                "INFO".into()
            },
            body: Some(AnyValue {
                value: Some(s(&format!(
                    "handled request {} in {}us",
                    first + i as u64,
                    (sp.end_time_unix_nano - sp.start_time_unix_nano) / 1000
                ))),
            }),
            attributes: vec![kv("code.namespace", s("demo::handlers"))],
            trace_id: sp.trace_id.clone(),
            span_id: sp.span_id.clone(),
            ..Default::default()
        })
        .collect();
    let traces = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(svc),
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(svc),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: logs,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let metrics = b.is_multiple_of(16).then(|| ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(svc),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics: vec![Metric {
                    name: "http.server.request.duration".into(),
                    unit: "s".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: ROUTES
                            .iter()
                            .map(|r| HistogramDataPoint {
                                attributes: vec![kv("http.route", s(r))],
                                time_unix_nano: start,
                                count: 100,
                                sum: Some(1.5),
                                bucket_counts: vec![10, 50, 30, 10],
                                explicit_bounds: vec![0.005, 0.025, 0.1],
                                ..Default::default()
                            })
                            .collect(),
                        aggregation_temporality: 2,
                    })),
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    });
    (traces, logs, metrics)
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    status_kib(std::process::id(), "VmRSS:")
}

/// utime + stime of process `pid`, in seconds (clock ticks are 100 Hz on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// A server under test in a child process of its own, pinned to CPU 0
/// (`taskset`), so that its CPU time and memory are its own and "one core"
/// means one core: the load generator runs in this process on CPU 1.
struct Child {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    grpc: String,
    ui: String,
}

impl Child {
    fn spawn(args: &[&str]) -> Child {
        use std::io::BufRead;
        let exe = std::env::current_exe().unwrap();
        let mut cmd = if pinned() {
            let mut c = std::process::Command::new("taskset");
            c.arg("-c").arg("0").arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        };
        let mut child = cmd
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the server process");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        let grpc = parts.next().expect("the child's endpoints").to_string();
        let ui = parts.next().unwrap_or_default().to_string();
        Child {
            child,
            stdin,
            stdout,
            grpc,
            ui,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command line and returns the child's one-line answer.
    fn ask(&mut self, command: &str) -> String {
        use std::io::{BufRead, Write};
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// Whether the machine has the two CPUs the pinning needs.
fn pinned() -> bool {
    std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
        && std::process::Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok()
}

/// The child's side: serve until stdin closes. `viewer DB` runs the viewer
/// on one current-thread runtime plus its writer thread; `kit` runs the test
/// kit's in-memory receiver. Commands on stdin: `flush` (the viewer commits
/// everything received, answers `flushed` or the writer's error), `count`
/// (the kit answers the spans it stored).
fn serve(mode: &str, db: Option<&str>) {
    use std::io::{BufRead, Write};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let out = |line: String| {
            let mut o = std::io::stdout().lock();
            writeln!(o, "{line}").unwrap();
            o.flush().unwrap();
        };
        if mode == "viewer" {
            let viewer = telemetry_init_viewer::Viewer::builder()
                .db_path(db.expect("viewer DB path"))
                .ephemeral_ports()
                .retention(telemetry_init_viewer::RetentionConfig {
                    spans: telemetry_init_viewer::RetentionPolicy::unlimited(),
                    logs: telemetry_init_viewer::RetentionPolicy::unlimited(),
                    ..Default::default()
                })
                .start()
                .await
                .unwrap();
            out(format!("{} {}", viewer.grpc_endpoint(), viewer.ui_addr()));
            while let Some(cmd) = rx.recv().await {
                if cmd == "flush" {
                    viewer.store().flush().await.unwrap();
                    out(match viewer.store().last_error() {
                        Some(e) => format!("writer error: {e}"),
                        None => "flushed".into(),
                    });
                }
            }
            viewer.shutdown().await;
        } else {
            let receiver = telemetry_init_testing::OtlpReceiver::builder()
                .memory_budget_bytes(8 << 30)
                .start()
                .await
                .unwrap();
            out(format!("{} -", receiver.grpc_endpoint()));
            let r = receiver.handle();
            while let Some(cmd) = rx.recv().await {
                if cmd == "count" {
                    out(r.stats().stored_spans.to_string());
                }
            }
            receiver.shutdown().await;
        }
    });
}

struct Load {
    spans: u64,
    logs: u64,
    points: u64,
    refused: u64,
    secs: f64,
    /// CPU seconds of the server process over the load.
    cpu: f64,
    /// The server process's peak RSS while loaded (sampled every 100 ms).
    max_rss_kib: u64,
    /// How far the paced sender fell behind its schedule at worst.
    max_lag: Duration,
}

/// Sends `total` spans (+ logs + metric points) over gRPC with STREAMS
/// concurrent exporters to the server process `server`; a refused request
/// (UNAVAILABLE) is retried after 50 ms, as exporters do, and counted. With
/// `rate` (spans/s) batch `b` is sent no earlier than `b × BATCH / rate`
/// after the start, a steady load; without it, as fast as the server
/// answers. `done` runs (blocking) once every request has been answered; the
/// time counts until it returns.
async fn load(
    endpoint: String,
    server: u32,
    total: u64,
    rate: Option<f64>,
    spread_ns: u64,
    done: impl FnOnce(),
) -> Load {
    let batches = total / BATCH;
    let next = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let points = Arc::new(AtomicU64::new(0));
    let max_lag_us = Arc::new(AtomicU64::new(0));
    let max_rss = Arc::new(AtomicU64::new(status_kib(server, "VmRSS:")));
    let now = now_ns();
    let started = Instant::now();
    let cpu0 = cpu_seconds(server);
    let sampler = {
        let max_rss = max_rss.clone();
        tokio::spawn(async move {
            loop {
                max_rss.fetch_max(status_kib(server, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..STREAMS {
        let endpoint = endpoint.clone();
        let (next, refused, points) = (next.clone(), refused.clone(), points.clone());
        let max_lag_us = max_lag_us.clone();
        tasks.push(tokio::spawn(async move {
            let channel = tonic::transport::Endpoint::from_shared(endpoint)
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut t =
                TraceServiceClient::new(channel.clone()).max_encoding_message_size(usize::MAX);
            let mut l = LogsServiceClient::new(channel.clone());
            let mut m = MetricsServiceClient::new(channel);
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let (tr, lr, mr) = requests(b, now, spread_ns, total);
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64((b * BATCH) as f64 / rate);
                    let now = Instant::now();
                    if now < due {
                        tokio::time::sleep_until(due.into()).await;
                    } else {
                        let lag = (now - due).as_micros() as u64;
                        max_lag_us.fetch_max(lag, Ordering::Relaxed);
                    }
                }
                while let Err(e) = t.export(tr.clone()).await {
                    assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
                    refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                while let Err(e) = l.export(lr.clone()).await {
                    assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
                    refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if let Some(mr) = mr {
                    let n: usize = mr.resource_metrics[0].scope_metrics[0]
                        .metrics
                        .iter()
                        .map(|m| match &m.data {
                            Some(metric::Data::Histogram(h)) => h.data_points.len(),
                            _ => 0,
                        })
                        .sum();
                    while let Err(e) = m.export(mr.clone()).await {
                        assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
                        refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    points.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    tokio::task::block_in_place(done);
    let secs = started.elapsed().as_secs_f64();
    sampler.abort();
    Load {
        spans: batches * BATCH,
        logs: batches * BATCH,
        points: points.load(Ordering::Relaxed),
        refused: refused.load(Ordering::Relaxed),
        secs,
        cpu: cpu_seconds(server) - cpu0,
        max_rss_kib: max_rss
            .load(Ordering::Relaxed)
            .max(status_kib(server, "VmRSS:")),
        max_lag: Duration::from_micros(max_lag_us.load(Ordering::Relaxed)),
    }
}

fn report(name: &str, l: &Load) {
    println!(
        "{name}: {} spans + {} logs + {} metric points in {:.2} s = {:.0} spans/s ({:.0} items/s), refused-and-retried requests {}, server CPU {:.2} s ({:.2} cores), server max RSS {} MiB, sender's worst lag behind schedule {:.1} ms",
        l.spans,
        l.logs,
        l.points,
        l.secs,
        l.spans as f64 / l.secs,
        (l.spans + l.logs + l.points) as f64 / l.secs,
        l.refused,
        l.cpu,
        l.cpu / l.secs,
        l.max_rss_kib / 1024,
        l.max_lag.as_secs_f64() * 1e3
    );
}

fn percentiles(name: &str, mut d: Vec<Duration>) {
    d.sort();
    let p = |q: f64| d[((q * d.len() as f64).ceil() as usize).clamp(1, d.len()) - 1];
    println!(
        "{name}: n={} p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        d.len(),
        p(0.50).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        d.last().unwrap().as_secs_f64() * 1e3
    );
}

async fn time_get(client: &reqwest::Client, url: &str) -> (Duration, serde_json::Value) {
    let t = Instant::now();
    let resp = client.get(url).send().await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    let body: serde_json::Value = resp.json().await.unwrap();
    (t.elapsed(), body)
}

fn idle_rss() {
    // A fresh process: start a viewer on an empty store, wait, report RSS.
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let viewer = telemetry_init_viewer::Viewer::builder()
            .db_path(dir.path().join("idle.db"))
            .ephemeral_ports()
            .start()
            .await
            .unwrap();
        let _ = reqwest::get(format!("http://{}/api/services", viewer.ui_addr())).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!(
            "idle RSS (empty store, one UI request served): {} KiB",
            rss_kib()
        );
        viewer.shutdown().await;
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--idle-rss") {
        idle_rss();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        serve(
            args.get(i + 1).map_or("viewer", |s| s.as_str()),
            args.get(i + 2).map(|s| s.as_str()),
        );
        return;
    }
    let total: u64 = std::env::var("SPANS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rate: f64 = std::env::var("RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000.0);
    let commit = std::env::var("GIT_COMMIT").ok().or_else(|| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    let spread_ns: u64 = 3600 * 1_000_000_000; // spans spread over the last hour
    println!(
        "viewer bench: {} spans, {} logs, batches of {BATCH}, {STREAMS} gRPC streams; commit {}",
        total,
        total,
        commit.as_deref().unwrap_or("?")
    );
    if pinned() {
        // The load generator (this process, every thread it will start) on
        // CPU 1; each server process is started on CPU 0.
        let _ = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
            .output();
        println!(
            "servers pinned to CPU 0 (one core: the viewer's runtime thread and its writer thread share it), load generator on CPU 1"
        );
    } else {
        println!("NOT pinned (fewer than 2 CPUs or no taskset): server CPU shares the machine");
    }

    // 1. Idle RSS in a fresh process.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--idle-rss")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // 2. Side by side, as fast as each server answers, the same load (a fifth
    //    of the total: the kit keeps everything in memory): the test kit's
    //    in-memory receiver, then the viewer on a fresh store.
    let small = (total / 5).max(BATCH);
    let want = small / BATCH * BATCH;
    let mut kit = Child::spawn(&["--serve", "kit"]);
    let l = client_rt.block_on(load(
        kit.grpc.clone(),
        kit.pid(),
        small,
        None,
        spread_ns,
        || {
            while kit.ask("count").parse::<u64>().unwrap_or(0) < want {
                std::thread::sleep(Duration::from_millis(5));
            }
        },
    ));
    kit.stop();
    report("in-memory receiver (telemetry-init-testing), unpaced", &l);
    let fast_db = dir.path().join("fast.db");
    let mut fast = Child::spawn(&["--serve", "viewer", fast_db.to_str().unwrap()]);
    let l = client_rt.block_on(load(
        fast.grpc.clone(),
        fast.pid(),
        small,
        None,
        spread_ns,
        || assert_eq!(fast.ask("flush"), "flushed"),
    ));
    fast.stop();
    report("viewer (SQLite, committed), unpaced", &l);

    // 3. The viewer at a steady RATE spans/s (plus as many log records and
    //    the metric points) for the whole total: what a service exporting
    //    to it sees. Its store is the one queried below.
    let db = dir.path().join("bench.db");
    let mut viewer = Child::spawn(&["--serve", "viewer", db.to_str().unwrap()]);
    let l = client_rt.block_on(load(
        viewer.grpc.clone(),
        viewer.pid(),
        total,
        Some(rate),
        spread_ns,
        || assert_eq!(viewer.ask("flush"), "flushed"),
    ));
    report(
        &format!("viewer (SQLite, committed), paced at {rate:.0} spans/s"),
        &l,
    );
    let ui = viewer.ui.clone();

    // 4. Bytes on disk.
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let file = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(db.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let mut by_name = std::collections::BTreeMap::new();
    if let Ok(mut stmt) = conn.prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name") {
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .unwrap();
        for r in rows.flatten() {
            by_name.insert(r.0, r.1);
        }
    }
    let (n_spans, n_logs, n_server): (i64, i64, i64) = conn
        .query_row("SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM logs), (SELECT count(*) FROM spans WHERE kind = 2)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    let span_bytes: i64 = ["spans", "spans_trace", "spans_start", "spans_server"]
        .iter()
        .map(|n| by_name.get(*n).copied().unwrap_or(0))
        .sum();
    let log_bytes: i64 = ["logs", "logs_time", "logs_trace"]
        .iter()
        .map(|n| by_name.get(*n).copied().unwrap_or(0))
        .sum();
    let server_payload: f64 = conn
        .query_row(
            "SELECT avg(8 + 16 + 8 + length(name) + length(coalesce(route,'')) + length(coalesce(attributes,'')) + 20) FROM spans WHERE kind = 2",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0.0);
    println!(
        "stored: {n_spans} spans ({n_server} SERVER), {n_logs} logs; file + WAL {} MiB",
        file >> 20
    );
    println!(
        "bytes per span (table + its indexes, all kinds, from dbstat): {:.0} B; bytes per log record: {:.0} B; SERVER span row payload ≈ {:.0} B",
        span_bytes as f64 / n_spans.max(1) as f64,
        log_bytes as f64 / n_logs.max(1) as f64,
        server_payload
    );
    for (name, bytes) in &by_name {
        if *bytes > 1 << 20 {
            println!("  {name}: {} MiB", bytes >> 20);
        }
    }

    // 5. Queries over HTTP.
    client_rt.block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://{ui}");
        let traces = total / 3;
        let mut d = Vec::new();
        for i in 0..200u64 {
            let t = (i * 7_654_321) % traces;
            let id: String = trace_id(t).iter().map(|b| format!("{b:02x}")).collect();
            let (e, body) = time_get(&http, &format!("{base}/api/traces/{id}")).await;
            assert_eq!(body["spans"].as_array().map(|s| s.len()), Some(3), "{id}");
            assert_eq!(body["logs"].as_array().map(|s| s.len()), Some(3));
            d.push(e);
        }
        percentiles("trace by id with its logs (GET /api/traces/{id})", d);
        let mut d = Vec::new();
        let mut found = 0;
        for i in 0..100u64 {
            let route = ROUTES[(i % ROUTES.len() as u64) as usize];
            let url = format!(
                "{base}/api/traces?service=svc-{}&route={}&min_us=5000&limit=50",
                i % SERVICES,
                route
            );
            let (e, body) = time_get(&http, &url).await;
            found += body["traces"].as_array().map(|t| t.len()).unwrap_or(0);
            d.push(e);
        }
        percentiles(
            "filtered trace search (service + route + min duration, limit 50)",
            d,
        );
        println!("  (returned {found} traces over 100 searches)");
        let mut d = Vec::new();
        for i in 0..100u64 {
            let url = format!(
                "{base}/api/traces?error=true&service=svc-{}&limit=20",
                i % SERVICES
            );
            d.push(time_get(&http, &url).await.0);
        }
        percentiles("error trace search (service + error=true, limit 20)", d);
        let mut d = Vec::new();
        for i in 0..100u64 {
            let url = format!(
                "{base}/api/logs?service=svc-{}&level=error&limit=50",
                i % SERVICES
            );
            d.push(time_get(&http, &url).await.0);
        }
        percentiles("log search (service + level=error, limit 50)", d);
        let mut d = Vec::new();
        let mut rows = 0;
        for _ in 0..20 {
            let (e, body) = time_get(&http, &format!("{base}/api/red")).await;
            rows = body.as_array().map(|r| r.len()).unwrap_or(0);
            d.push(e);
        }
        percentiles("RED over the last hour, all services (GET /api/red)", d);
        println!("  ({rows} service/route rows)");
        let mut d = Vec::new();
        for _ in 0..20 {
            d.push(time_get(&http, &format!("{base}/api/services")).await.0);
        }
        percentiles("services", d);
    });
    println!(
        "viewer process peak RSS over the whole run (VmHWM): {} MiB",
        status_kib(viewer.pid(), "VmHWM:") / 1024
    );
    viewer.stop();
}
