//! Memory under hostile requests with a hung collector, on the real `demo`
//! binary: a collector that accepts connections and never answers, and
//! 10 000 requests of about 100 KB of path and headers each, whose values
//! the handler also logs. Every request answers 200, the drops are counted
//! on `/metrics`, and the demo's peak resident memory stays within what
//! `docs/security.md` documents: its baseline plus the two queue byte
//! budgets plus a fixed margin, never a function of what clients send
//! (unbounded, the logged values alone would be 300 MB).

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::Demo;

const REQUESTS: usize = 10_000;
const CONCURRENCY: usize = 8;
/// The queue byte budgets of this run (`TELEMETRY_BSP_MAX_QUEUE_BYTES`,
/// `TELEMETRY_BLRP_MAX_QUEUE_BYTES`).
const BUDGET_MIB: u64 = 8;
/// What the process may hold beyond its baseline and the budgets:
/// allocator slack, connection buffers of the requests in flight, the
/// export runtime (documented in docs/security.md).
const MARGIN_MIB: u64 = 40;
const MIB: u64 = 1024 * 1024;

/// `field` of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        * 1024
}

/// A collector that accepts every connection, reads whatever it is sent
/// and never answers.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = tokio::io::sink();
                let _ = tokio::io::copy(&mut conn, &mut sink).await;
            });
        }
    });
    (format!("http://{addr}"), task)
}

async fn hostile_get(client: &reqwest::Client, demo: &Demo, i: usize) -> Result<(), String> {
    // 30 KB of path (a user id the handler logs), 70 KB of headers.
    let id = format!("{i}-{}", "p".repeat(30_000));
    let res = client
        .get(demo.url(&format!("/users/{id}")))
        .header("user-agent", "u".repeat(30_000))
        .header("x-filler", "f".repeat(40_000))
        .send()
        .await
        .map_err(|e| format!("request {i}: {e}"))?;
    let status = res.status();
    res.bytes().await.map_err(|e| format!("request {i}: {e}"))?;
    if status != 200 {
        return Err(format!("request {i}: status {status}"));
    }
    Ok(())
}

async fn run(client: &reqwest::Client, demo: &Demo, range: std::ops::Range<usize>) {
    let failures: Vec<String> = futures_util::stream::iter(range)
        .map(|i| hostile_get(client, demo, i))
        .buffer_unordered(CONCURRENCY)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

/// Sum of the samples of `metric` whose labels contain `label`.
fn sum(text: &str, metric: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_with_a_hung_collector_stay_within_the_memory_bound() {
    let (endpoint, collector) = black_hole().await;
    let budget = (BUDGET_MIB * MIB).to_string();
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("TELEMETRY_BSP_MAX_QUEUE_BYTES", &budget),
        ("TELEMETRY_BLRP_MAX_QUEUE_BYTES", &budget),
        // Stdout keeps the start-up line only: the handler's log line (with
        // its 30 KB value) and the access log are still exported, which is
        // what this measures, but not printed into this test's memory.
        (
            "RUST_LOG",
            "info,demo::routes=warn,telemetry_init::access=warn",
        ),
    ]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = Instant::now();

    // Warm-up: connections, runtime threads and allocator arenas exist.
    run(&client, &demo, 0..200).await;
    let baseline = status_bytes(demo.pid(), "VmRSS");
    run(&client, &demo, 200..REQUESTS).await;
    let peak = status_bytes(demo.pid(), "VmHWM");
    let took = started.elapsed();

    let bound = baseline + (2 * BUDGET_MIB + MARGIN_MIB) * MIB;
    eprintln!(
        "{REQUESTS} hostile requests in {took:?}: RSS after warm-up {} MiB, peak {} MiB, bound {} MiB",
        baseline / MIB,
        peak / MIB,
        bound / MIB
    );
    assert!(
        peak <= bound,
        "peak RSS {} MiB over the bound {} MiB (baseline {} MiB)",
        peak / MIB,
        bound / MIB,
        baseline / MIB
    );

    // The queues were full: what did not fit was dropped and counted.
    let text = client
        .get(demo.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped_logs = sum(
        &text,
        "otel_sdk_processor_log_processed_total",
        "queue_full",
    );
    assert!(dropped_logs > 0.0, "no log record dropped:\n{text}");
    // Nothing a client sent reached /metrics as a label.
    assert!(!text.contains("ppppp") && !text.contains("uuuuu"));

    let _ = demo.terminate(Duration::from_secs(15));
    collector.abort();
}
