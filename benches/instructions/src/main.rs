//! The instruction-count gate of the request path.
//!
//! ```text
//! instruction-gate check  [--baseline FILE] [--requests N]   # CI: measure, compare, exit 1 on a regression
//! instruction-gate update [--baseline FILE] [--requests N]   # measure and rewrite the baseline
//! instruction-gate run VARIANT REQUESTS WARMUP              # one workload (what `check` runs under valgrind)
//! ```
//!
//! Wall-clock benchmarks do not travel between machines; instruction counts
//! do (same compiler, same dependencies). `check` runs each variant in its own
//! process under `valgrind --tool=callgrind` and counts the instructions that
//! the request thread executes inside [`measured`], which sends `REQUESTS`
//! requests through an axum `Router` in-process (`tower::ServiceExt::oneshot`,
//! response bodies drained), after `WARMUP` requests that are not counted (the
//! first requests fill caches: route names, callsite interest, thread-locals).
//!
//! Variants (the same two routes as `benches/overhead`, `GET /users/42` with
//! a sampled `traceparent`):
//! * `bare`: the router alone.
//! * `tracelayer`: tower-http's `TraceLayer` (span and response event at INFO)
//!   and tracing-subscriber's JSON formatter on a non-blocking stdout writer:
//!   one access-log line per request.
//! * `telemetry-init`: `telemetry_init::layer()` with telemetry installed and
//!   exporting over OTLP/gRPC to the in-process `OtlpReceiver` of
//!   telemetry-init-testing (always_on sampler): access log, SERVER span,
//!   RED metrics, propagation.
//! * `telemetry-init-warn`: the same with one `tracing::warn!` instead, which
//!   also becomes a span event of the SERVER span (`TELEMETRY_SPAN_EVENTS_LEVEL`,
//!   `warn` by default) - the price of an event on the span.
//! * `telemetry-init-event`: the same, with the handler emitting one `tracing`
//!   event (a JSON line and an OTLP log record) - the price of one more event.
//!
//! Only the request thread is counted: callgrind's collection state is per
//! thread and only that thread enters [`measured`]. The work the request hands
//! to background threads (span encoding, export, the stdout writer) is not in
//! the count; `check` verifies that the other threads' counts are zero and
//! that the work happened (every span and log line delivered).
//!
//! The gate is the ratio `telemetry-init / bare` per request: a ratio of two
//! counts from the same build cancels most of what a compiler or libc update
//! moves. It fails when the ratio exceeds the committed baseline by more than
//! the baseline's margin.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const PATH_UNDER_TEST: &str = "/users/42";
/// Requests counted per variant (enough that one-off costs, such as the span
/// batch thread's wake-up every few hundred spans, are averaged out).
const DEFAULT_REQUESTS: u64 = 2_000;
const WARMUP: u64 = 300;
/// The function whose instructions are counted (callgrind `--toggle-collect`).
const TOGGLE: &str = "instruction_gate::measured*";
const VARIANTS: [&str; 5] = [
    "bare",
    "tracelayer",
    "telemetry-init",
    "telemetry-init-event",
    "telemetry-init-warn",
];
const DEFAULT_BASELINE: &str = "benches/instructions/baseline.json";

/// The committed baseline (`benches/instructions/baseline.json`).
#[derive(Debug, Serialize, Deserialize)]
struct Baseline {
    /// The gated ratio: instructions per request, telemetry-init / bare.
    full_over_bare: f64,
    /// Allowed growth of the ratio before the gate fails (0.10 = 10%).
    margin: f64,
    /// What was measured when the baseline was written (for reading only).
    measured: Measurement,
}

#[derive(Debug, Serialize, Deserialize)]
struct Measurement {
    date_utc: String,
    commit: String,
    valgrind: String,
    rustc: String,
    requests: u64,
    /// Instructions per request on the request thread, per variant.
    instructions_per_request: BTreeMap<String, f64>,
    full_over_bare: f64,
    tracelayer_over_bare: f64,
    /// (telemetry-init − bare) / (tracelayer − bare): the full stack's
    /// overhead in units of the access-log-only overhead (issue 13, goal 1).
    overhead_vs_tracelayer: f64,
    /// (telemetry-init-event − telemetry-init) / (telemetry-init − bare): one
    /// more event, as a share of the request's telemetry overhead (goal 3).
    event_over_overhead: f64,
    /// (telemetry-init-warn − telemetry-init) / (telemetry-init − bare): one
    /// WARN event, which is also a span event (not gated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warn_event_over_overhead: Option<f64>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run_cmd(&args[1..]),
        Some("check") => gate(&args[1..], false),
        Some("update") => gate(&args[1..], true),
        _ => Err(format!(
            "usage: instruction-gate check|update [--baseline FILE] [--requests N]\n       \
             instruction-gate run VARIANT REQUESTS WARMUP   (VARIANT: {})",
            VARIANTS.join(", ")
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("instruction-gate: {e}");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------
// The workload (runs under valgrind).
// ---------------------------------------------------------------------------

/// What the handler emits.
#[derive(Clone, Copy, PartialEq)]
enum Event {
    None,
    Info,
    Warn,
}

fn app(event: Event) -> Router {
    let router = Router::new().route("/hello", get(|| async { "Hello, World!" }));
    match event {
        Event::None => router.route("/users/{id}", get(user)),
        Event::Info => router.route("/users/{id}", get(user_logged)),
        Event::Warn => router.route("/users/{id}", get(user_warned)),
    }
}

async fn user(Path(id): Path<u64>) -> String {
    format!("user {id}")
}

async fn user_logged(Path(id): Path<u64>) -> String {
    tracing::info!(user.id = id, "user fetched");
    format!("user {id}")
}

async fn user_warned(Path(id): Path<u64>) -> String {
    tracing::warn!(user.id = id, "user fetched slowly");
    format!("user {id}")
}

fn request() -> Request<Body> {
    Request::get(PATH_UNDER_TEST)
        .header("host", "127.0.0.1:3000")
        .header("user-agent", "wrk")
        .header("traceparent", TRACEPARENT)
        .body(Body::empty())
        .expect("static request is valid")
}

/// Sends `n` requests through `app`, one after the other, and returns how
/// many answered 200 with the expected body.
async fn drive(app: &Router, n: u64) -> u64 {
    let mut ok = 0;
    for _ in 0..n {
        let Ok(res) = app.clone().oneshot(request()).await;
        let status = res.status();
        let body = res.into_body().collect().await.map(|b| b.to_bytes());
        if status == StatusCode::OK && body.is_ok_and(|b| b.as_ref() == b"user 42") {
            ok += 1;
        }
    }
    ok
}

/// The counted part: callgrind collects only while this function is on the
/// stack of the thread that runs it (`--toggle-collect`).
#[inline(never)]
fn measured(rt: &tokio::runtime::Runtime, app: &Router, n: u64) -> u64 {
    rt.block_on(drive(app, n))
}

fn run_cmd(args: &[String]) -> Result<ExitCode, String> {
    let [variant, requests, warmup] = args else {
        return Err("usage: instruction-gate run VARIANT REQUESTS WARMUP".into());
    };
    let requests: u64 = requests
        .parse()
        .map_err(|_| format!("REQUESTS must be a number, got {requests:?}"))?;
    let warmup: u64 = warmup
        .parse()
        .map_err(|_| format!("WARMUP must be a number, got {warmup:?}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let total = requests + warmup;

    // The tracelayer variant's non-blocking writer: dropped (flushed) after the
    // requests, so that every line reaches stdout.
    let mut flush_guard = None;
    let (app, telemetry) = match variant.as_str() {
        "bare" => (app(Event::None), None),
        "tracelayer" => {
            use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
            let (writer, flush) = tracing_appender::non_blocking(std::io::stdout());
            tracing_subscriber::fmt()
                .json()
                .with_writer(writer)
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .init();
            let layer = TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(tracing::Level::INFO))
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));
            flush_guard = Some(flush);
            (app(Event::None).layer(layer), None)
        }
        "telemetry-init" | "telemetry-init-event" | "telemetry-init-warn" => {
            let receiver = telemetry_init_testing::OtlpReceiver::start_blocking()
                .map_err(|e| format!("OTLP receiver: {e}"))?;
            let guard = telemetry_init::builder()
                .service_name("instruction-gate")
                .otlp_endpoint(receiver.grpc_endpoint())
                .sampler(telemetry_init::config::SamplerSetting::AlwaysOn)
                .install()
                .map_err(|e| format!("install: {e}"))?;
            let event = match variant.as_str() {
                "telemetry-init-event" => Event::Info,
                "telemetry-init-warn" => Event::Warn,
                _ => Event::None,
            };
            let app = app(event).layer(telemetry_init::layer());
            (app, Some((receiver, guard)))
        }
        other => {
            return Err(format!(
                "unknown variant {other:?} (one of {})",
                VARIANTS.join(", ")
            ));
        }
    };

    let mut ok = rt.block_on(drive(&app, warmup));
    ok += measured(&rt, &app, requests);
    if ok != total {
        return Err(format!(
            "{variant}: {} of {total} requests failed",
            total - ok
        ));
    }

    // Not counted: flush and prove the telemetry was produced, so that a
    // variant that silently stopped exporting cannot pass for a fast one.
    drop(flush_guard);
    let mut report = serde_json::json!({ "variant": variant, "requests": total });
    if let Some((receiver, guard)) = telemetry {
        let shutdown = rt.block_on(guard.shutdown(Duration::from_secs(60)));
        if !shutdown.is_complete() {
            return Err(format!(
                "{variant}: telemetry not fully delivered: {shutdown}"
            ));
        }
        let spans = receiver.spans();
        let server_spans = spans
            .iter()
            .filter(|s| s.attr("http.route").is_some())
            .count();
        let logs = receiver.logs().len();
        report["server_spans"] = server_spans.into();
        report["log_records"] = logs.into();
        if server_spans as u64 != total {
            return Err(format!(
                "{variant}: the receiver got {server_spans} request spans for {total} requests"
            ));
        }
        let with_event = variant == "telemetry-init-event" || variant == "telemetry-init-warn";
        if with_event && (logs as u64) < total {
            return Err(format!(
                "{variant}: the receiver got {logs} log records for {total} requests"
            ));
        }
        let with_span_event = spans
            .iter()
            .filter(|s| s.attr("http.route").is_some() && s.events.len() == 1)
            .count();
        report["server_spans_with_an_event"] = with_span_event.into();
        let expected = if variant == "telemetry-init-warn" {
            total
        } else {
            0
        };
        if with_span_event as u64 != expected {
            return Err(format!(
                "{variant}: {with_span_event} request spans carry a span event, expected {expected}"
            ));
        }
    }
    eprintln!("workload {report}");
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// The gate (runs the workloads under valgrind).
// ---------------------------------------------------------------------------

struct Options {
    baseline: PathBuf,
    requests: u64,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        baseline: PathBuf::from(DEFAULT_BASELINE),
        requests: DEFAULT_REQUESTS,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--baseline" => {
                opts.baseline = it.next().ok_or("--baseline needs a file")?.into();
            }
            "--requests" => {
                let n = it.next().ok_or("--requests needs a number")?;
                opts.requests = n
                    .parse()
                    .ok()
                    .filter(|n| (100..=1_000_000).contains(n))
                    .ok_or_else(|| format!("--requests must be 100..1000000, got {n:?}"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

fn tool_version(cmd: &str, arg: &str) -> Result<String, String> {
    let out = Command::new(cmd).arg(arg).output().map_err(|e| {
        format!(
            "cannot run `{cmd} {arg}`: {e} (valgrind comes from Debian: apt-get install valgrind)"
        )
    })?;
    if !out.status.success() {
        return Err(format!("`{cmd} {arg}` failed: {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs one variant under callgrind and returns the request thread's
/// instructions per counted request.
fn count(exe: &FsPath, work: &FsPath, variant: &str, requests: u64) -> Result<f64, String> {
    let out_base = work.join(format!("{variant}.callgrind"));
    let stdout_path = work.join(format!("{variant}.stdout"));
    let stderr_path = work.join(format!("{variant}.stderr"));
    let stdout = fs::File::create(&stdout_path).map_err(|e| e.to_string())?;
    let stderr = fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
    let status = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--collect-atstart=no",
            &format!("--toggle-collect={TOGGLE}"),
            "--separate-threads=yes",
            "--dump-instr=no",
            "--dump-line=no",
            &format!("--callgrind-out-file={}", out_base.display()),
        ])
        .arg(exe)
        .args(["run", variant, &requests.to_string(), &WARMUP.to_string()])
        // A clean environment: none of the caller's OTEL_* or RUST_LOG.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // Under valgrind on a busy machine the export threads run ~50x
        // slower: long timeouts and deep queues so that nothing is dropped
        // (the check below wants every span and record). The request path
        // runs the same code either way (a queue bound is a counter).
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "120000")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "1000000")
        .env("OTEL_BLRP_MAX_QUEUE_SIZE", "1000000")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .map_err(|e| format!("cannot run valgrind: {e} (apt-get install valgrind)"))?;
    let log = fs::read_to_string(&stderr_path).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{variant}: the workload failed ({status}):\n{}",
            tail.join("\n")
        ));
    }
    if let Some(line) = log.lines().find(|l| l.starts_with("workload ")) {
        eprintln!("   {line}");
    }
    // The access log: one line per request (the variants that write one).
    if variant != "bare" {
        let lines = fs::read_to_string(&stdout_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("/users/"))
            .count() as u64;
        if lines < requests + WARMUP {
            return Err(format!(
                "{variant}: {lines} access-log lines on stdout for {} requests",
                requests + WARMUP
            ));
        }
    }

    // `--separate-threads=yes` writes one file per thread: OUT-01 is the main
    // thread (the request thread). Every other thread must have counted
    // nothing, or the toggle did not work as this gate assumes.
    let prefix = format!("{variant}.callgrind-");
    let mut main_thread = None;
    let mut others = 0u64;
    for entry in fs::read_dir(work).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(thread) = name.strip_prefix(&prefix) else {
            continue;
        };
        let text = fs::read_to_string(entry.path()).map_err(|e| e.to_string())?;
        let total = totals(&text).ok_or_else(|| format!("no totals line in {name}"))?;
        if thread == "01" {
            main_thread = Some(total);
        } else {
            others += total;
        }
    }
    let main_thread =
        main_thread.ok_or_else(|| format!("{variant}: no callgrind output for the main thread"))?;
    if main_thread == 0 || others != 0 {
        return Err(format!(
            "{variant}: expected instructions on the request thread only, got {main_thread} on it \
             and {others} elsewhere (is `{TOGGLE}` still the measured function's name?)"
        ));
    }
    Ok(main_thread as f64 / requests as f64)
}

/// The `totals:` line of a callgrind output file (or, failing that, the
/// `summary:` line older versions write): its first event is `Ir`,
/// instructions executed.
fn totals(text: &str) -> Option<u64> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    field("totals:").or_else(|| field("summary:"))
}

fn gate(args: &[String], update: bool) -> Result<ExitCode, String> {
    let opts = parse_options(args)?;
    let valgrind = tool_version("valgrind", "--version")?;
    let rustc = tool_version("rustc", "--version").unwrap_or_else(|_| "unknown".into());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let work = std::env::temp_dir().join(format!("instruction-gate.{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    eprintln!(
        "== instruction counts of the request path ({valgrind}, {} requests per variant after {WARMUP} uncounted)",
        opts.requests
    );
    let mut per_request = Vec::new();
    for v in VARIANTS {
        let ir = count(&exe, &work, v, opts.requests)?;
        eprintln!("   {v:<22} {ir:>10.0} instructions/request");
        per_request.push((v.to_string(), ir));
    }
    let per_request: BTreeMap<String, f64> = per_request.into_iter().collect();
    let get = |v: &str| per_request.get(v).copied().unwrap_or(f64::NAN);
    let (bare, tl, full, event, warn) = (
        get("bare"),
        get("tracelayer"),
        get("telemetry-init"),
        get("telemetry-init-event"),
        get("telemetry-init-warn"),
    );
    let m = Measurement {
        date_utc: utc_now(),
        commit,
        valgrind,
        rustc,
        requests: opts.requests,
        full_over_bare: round4(full / bare),
        tracelayer_over_bare: round4(tl / bare),
        overhead_vs_tracelayer: round4((full - bare) / (tl - bare)),
        event_over_overhead: round4((event - full) / (full - bare)),
        warn_event_over_overhead: Some(round4((warn - full) / (full - bare))),
        instructions_per_request: per_request
            .iter()
            .map(|(k, v)| (k.clone(), (v * 10.0).round() / 10.0))
            .collect(),
    };
    println!("telemetry-init / bare:          {:.3}", m.full_over_bare);
    println!(
        "tracelayer / bare:              {:.3}",
        m.tracelayer_over_bare
    );
    println!(
        "overhead vs tracelayer's:       {:.3}  ((telemetry-init - bare) / (tracelayer - bare))",
        m.overhead_vs_tracelayer
    );
    println!(
        "one more event / overhead:      {:.3}  ((telemetry-init-event - telemetry-init) / (telemetry-init - bare))",
        m.event_over_overhead
    );
    println!(
        "one warn event (+ span event):  {:.3}  ((telemetry-init-warn - telemetry-init) / (telemetry-init - bare))",
        m.warn_event_over_overhead.unwrap_or(f64::NAN)
    );

    if update {
        let _ = fs::remove_dir_all(&work);
        let margin = read_baseline(&opts.baseline)
            .map(|b| b.margin)
            .unwrap_or(0.10);
        let b = Baseline {
            full_over_bare: m.full_over_bare,
            margin,
            measured: m,
        };
        let text = serde_json::to_string_pretty(&b).map_err(|e| e.to_string())? + "\n";
        fs::write(&opts.baseline, text).map_err(|e| format!("{}: {e}", opts.baseline.display()))?;
        println!(
            "baseline written to {} (commit it)",
            opts.baseline.display()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let b = read_baseline(&opts.baseline)?;
    let limit = b.full_over_bare * (1.0 + b.margin);
    let change = m.full_over_bare / b.full_over_bare - 1.0;
    println!(
        "baseline: {:.3} (commit {}, {}); limit {:.3} (+{:.0}%); measured {:.3} ({:+.1}%)",
        b.full_over_bare,
        b.measured.commit,
        b.measured.date_utc,
        limit,
        b.margin * 100.0,
        m.full_over_bare,
        change * 100.0
    );
    if m.full_over_bare > limit {
        println!(
            "FAIL: the request path of telemetry-init costs {:+.1}% instructions relative to bare \
             over the committed baseline (allowed +{:.0}%).\n\
             If the cost is deliberate (a feature worth it), update the baseline in the same commit \
             and say why in its message:\n    bash benches/instructions/gate.sh --update\n\
             Otherwise find the new work in the callgrind profiles kept in {} \
             (`callgrind_annotate --inclusive=yes <file>-01`; docs/performance.md, \
             \"The instruction-count gate\").",
            change * 100.0,
            b.margin * 100.0,
            work.display()
        );
        return Ok(ExitCode::from(1));
    }
    let _ = fs::remove_dir_all(&work);
    if change < -b.margin {
        println!(
            "ok, and {:.1}% cheaper than the baseline: lock the gain in with \
             `bash benches/instructions/gate.sh --update` (commit the baseline).",
            -change * 100.0
        );
    } else {
        println!("ok");
    }
    Ok(ExitCode::SUCCESS)
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn read_baseline(path: &FsPath) -> Result<Baseline, String> {
    let text = fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e} (create it with `bash benches/instructions/gate.sh --update`)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_reads_the_instruction_count_of_a_callgrind_file() {
        let file = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\n\
                    events: Ir\nsummary: 7\n\nfn=(1) main\n3 7\ntotals: 28715377\n";
        assert_eq!(totals(file), Some(28_715_377));
        assert_eq!(totals("events: Ir\nsummary: 12\n"), Some(12));
        assert_eq!(totals("events: Ir\n"), None);
        assert_eq!(totals("totals: lots\n"), None);
    }

    #[test]
    fn options_are_bounded() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = parse_options(&args(&["--requests", "500", "--baseline", "/tmp/b.json"])).unwrap();
        assert_eq!(
            (o.requests, o.baseline),
            (500, PathBuf::from("/tmp/b.json"))
        );
        assert!(parse_options(&args(&["--requests", "5"])).is_err());
        assert!(parse_options(&args(&["--requests", "x"])).is_err());
        assert!(parse_options(&args(&["--baseline"])).is_err());
        assert!(parse_options(&args(&["--frobnicate"])).is_err());
    }
}
