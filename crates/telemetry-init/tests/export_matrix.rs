//! Acceptance 3 of issue 11: retries, `partial_success` and failure
//! counting behave the same on every transport, for every signal.
//!
//! One matrix: transports (gRPC, HTTP/protobuf, HTTP/JSON) × signals
//! (traces, logs, metrics) × collector answers, over real sockets against
//! the test kit's receiver, which answers each request from a script
//! ([`Answer`]): down twice then up (retried, then delivered and counted
//! as a success), throttled with a retry delay (the same), a permanent
//! refusal (counted once with the same `error.type` everywhere, logged in
//! one line naming the cause), `partial_success` (the rejected items
//! counted as failed `rejected`, the rest exported, one log line per
//! distinct collector message), and "too large" (the request split in two
//! and delivered).
//!
//! `install()` sets process-wide state, so each transport runs in a child
//! process (this binary re-executed with `MATRIX_TRANSPORT` set), which
//! prints one `OUTCOME` line per scenario and signal, then its export log
//! lines. The parent checks each against the expected table, and that the
//! three transports' tables are identical.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use telemetry_init::config::{BatchSettings, LogFormat};
use telemetry_init_testing::{Answer, Failure, OtlpReceiver, ReceiverHandle, Signal};

const SIGNALS: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];
const SECRET: &str = "matrix-s3cret";

/// Scenarios, in the order they run, with the answers scripted for every
/// signal.
fn scenarios() -> Vec<(&'static str, Vec<Answer>)> {
    let partial = |m: &str| vec![Answer::partial_success(1, m)];
    vec![
        (
            "retried",
            vec![
                Answer::Fail(Failure::Unavailable),
                Answer::Fail(Failure::Unavailable),
            ],
        ),
        ("throttled", vec![Answer::Fail(Failure::Throttled)]),
        ("permanent", vec![Answer::Fail(Failure::InvalidArgument)]),
        (
            "permanent_again",
            vec![Answer::Fail(Failure::InvalidArgument)],
        ),
        ("partial_a", partial("matrix says no (a)")),
        ("partial_a_again", partial("matrix says no (a)")),
        ("partial_b", partial("matrix says no (b)")),
        ("too_large", vec![Answer::Fail(Failure::TooLarge)]),
    ]
}

fn metric_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "otel_sdk_exporter_span_exported_total",
        Signal::Logs => "otel_sdk_exporter_log_exported_total",
        Signal::Metrics => "otel_sdk_exporter_metric_data_point_exported_total",
    }
}

/// The self-health counters of one signal: successes and failures by
/// `error_type`, from the Prometheus exposition.
fn counters(text: &str, signal: Signal) -> (u64, BTreeMap<String, u64>) {
    let name = metric_name(signal);
    let mut ok = 0;
    let mut failed = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !rest.starts_with(['{', ' ']) {
            continue;
        }
        let value: u64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        match rest.split_once("error_type=\"") {
            Some((_, t)) => {
                let t = t.split('"').next().unwrap_or_default().to_string();
                *failed.entry(t).or_insert(0) += value;
            }
            None => ok += value,
        }
    }
    (ok, failed)
}

fn total(c: &(u64, BTreeMap<String, u64>)) -> u64 {
    c.0 + c.1.values().sum::<u64>()
}

fn child(transport: &str) {
    let receiver = OtlpReceiver::start_blocking().expect("receiver");
    let endpoint = if transport == "grpc" {
        receiver.grpc_endpoint()
    } else {
        receiver.http_endpoint()
    };
    let mut vars: HashMap<&str, String> = HashMap::new();
    vars.insert("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    vars.insert("OTEL_EXPORTER_OTLP_PROTOCOL", transport.into());
    vars.insert("OTEL_METRIC_EXPORT_INTERVAL", "250".into());
    vars.insert("OTEL_EXPORTER_OTLP_TIMEOUT", "5000".into());
    vars.insert(
        "OTEL_EXPORTER_OTLP_HEADERS",
        format!("authorization=Bearer%20{SECRET}"),
    );
    // Two items per batch, exported as soon as both are queued.
    let batch = BatchSettings {
        max_queue_size: 64,
        max_export_batch_size: 2,
        schedule_delay: Duration::from_millis(300),
        export_timeout: Duration::from_secs(5),
    };
    let guard = telemetry_init::builder()
        .service_name("matrix")
        .log_format(LogFormat::Json)
        .stdout_filter("telemetry_init::export=warn")
        .export_filter("matrix=info")
        .span_batch(batch)
        .log_batch(batch)
        .env_lookup(move |k| vars.get(k).cloned())
        .install()
        .expect("install");
    let handle = guard.handle().clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let text = || handle.render_metrics(None).1;

    for (scenario, answers) in scenarios() {
        let before: Vec<_> = SIGNALS.iter().map(|s| counters(&text(), *s)).collect();
        let requests_before: Vec<u64> = SIGNALS.iter().map(|s| requests(&receiver, *s)).collect();
        for signal in SIGNALS {
            receiver.script(signal, answers.clone());
        }
        // Two spans and two log records (one batch each); metrics are
        // pushed every 250 ms anyway.
        for i in 0..2 {
            let span = tracing::info_span!(target: "matrix", "matrix-span", scenario, i);
            drop(span);
            tracing::info!(target: "matrix", scenario, i, "matrix-log");
        }
        // Done when every scripted answer was used and every span and log
        // record handed over was counted, one way or the other; metrics
        // when an export finished after the last scripted answer was used.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut metrics_mark = None;
        loop {
            let left: usize = SIGNALS
                .iter()
                .map(|s| receiver.scripted_answers_left(*s))
                .sum();
            let now: Vec<_> = SIGNALS.iter().map(|s| counters(&text(), *s)).collect();
            let items_done = (0..2).all(|i| total(&now[i]) >= total(&before[i]) + 2);
            if receiver.scripted_answers_left(Signal::Metrics) == 0 && metrics_mark.is_none() {
                metrics_mark = Some(total(&now[2]));
            }
            let metrics_done = metrics_mark.is_some_and(|m| total(&now[2]) > m);
            if left == 0 && items_done && metrics_done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{transport} {scenario}: not finished: {left} answers left, {now:?} (before {before:?})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let after: Vec<_> = SIGNALS.iter().map(|s| counters(&text(), *s)).collect();
        for (i, signal) in SIGNALS.iter().enumerate() {
            let exported = after[i].0 - before[i].0;
            let mut failed = BTreeMap::new();
            for (t, n) in &after[i].1 {
                let delta = n - before[i].1.get(t).copied().unwrap_or(0);
                if delta > 0 {
                    failed.insert(t.clone(), delta);
                }
            }
            let attempts = requests(&receiver, *signal) - requests_before[i];
            let delivered = match signal {
                Signal::Traces => rt.block_on(async {
                    receiver
                        .wait_for_spans_where(2, Duration::from_millis(200), |s| {
                            s.attr("scenario").and_then(|v| v.as_str()) == Some(scenario)
                        })
                        .await
                        .map(|s| {
                            s.iter()
                                .filter(|s| {
                                    s.attr("scenario").and_then(|v| v.as_str()) == Some(scenario)
                                })
                                .count()
                        })
                        .unwrap_or(0)
                }),
                Signal::Logs => receiver
                    .logs()
                    .iter()
                    .filter(|l| l.attr("scenario").and_then(|v| v.as_str()) == Some(scenario))
                    .count(),
                Signal::Metrics => 0,
            };
            println!(
                "OUTCOME {}",
                serde_json::json!({
                    "scenario": scenario,
                    "signal": format!("{signal:?}"),
                    "exported": exported,
                    "failed": failed,
                    "attempts": attempts,
                    "delivered": delivered,
                })
            );
        }
    }
    let _ = rt.block_on(guard.shutdown(Duration::from_secs(5)));
}

fn requests(receiver: &ReceiverHandle, signal: Signal) -> u64 {
    receiver
        .stats()
        .requests
        .iter()
        .filter(|r| r.signal == signal)
        .map(|r| r.count)
        .sum()
}

/// The entry point children run; a no-op in the parent.
#[test]
fn child_entry() {
    if let Ok(transport) = std::env::var("MATRIX_TRANSPORT") {
        child(&transport);
    }
}

fn run(transport: &str) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env("MATRIX_TRANSPORT", transport)
        .env_remove("RUST_LOG")
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{transport} child failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// What every transport must show, per scenario and signal, normalized:
/// `(delivered items, attempts, failures by error.type)`. Metrics export
/// many data points per push, so their failure counts are "some" (`1`)
/// except `rejected`, which is exact; their attempts and delivery are not
/// compared (pushes go on in the background).
fn normalize(outcome: &serde_json::Value) -> (usize, u64, BTreeMap<String, u64>) {
    let metrics = outcome["signal"] == "Metrics";
    let failed: BTreeMap<String, u64> = outcome["failed"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, n)| {
            let n = n.as_u64().unwrap();
            (t.clone(), if metrics && t != "rejected" { 1 } else { n })
        })
        .collect();
    if metrics {
        (0, 0, failed)
    } else {
        (
            outcome["delivered"].as_u64().unwrap() as usize,
            outcome["attempts"].as_u64().unwrap(),
            failed,
        )
    }
}

#[allow(
    clippy::match_same_arms,
    reason = "one arm per scenario, each saying why"
)]
fn expected(scenario: &str, signal: &str) -> (usize, u64, BTreeMap<String, u64>) {
    let metrics = signal == "Metrics";
    let failed = |t: &str, n: u64| BTreeMap::from([(t.to_string(), n)]);
    let none = BTreeMap::new;
    let (delivered, attempts, failed) = match scenario {
        // Down twice, then up: the third attempt delivers; nothing failed.
        "retried" => (2, 3, none()),
        // Throttled with a retry delay: retried once after it; delivered.
        "throttled" => (2, 2, none()),
        // Refused for good: not retried, counted under one name.
        "permanent" | "permanent_again" => (0, 1, failed("invalid_argument", 2)),
        // One item rejected in a partial success: the other exported.
        "partial_a" | "partial_a_again" | "partial_b" => (2, 1, failed("rejected", 1)),
        // Too large: split in two requests, both delivered.
        "too_large" => (2, 3, none()),
        other => panic!("unknown scenario {other}"),
    };
    if metrics {
        let failed = failed
            .into_iter()
            .map(|(t, n)| {
                let n = if t == "rejected" { n } else { 1 };
                (t, n)
            })
            .collect();
        (0, 0, failed)
    } else {
        (delivered, attempts, failed)
    }
}

/// The export log lines (JSON) of a child's stdout.
fn export_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "telemetry_init::export")
        .collect()
}

fn check(transport: &str, stdout: &str, stderr: &str) -> Vec<(String, String, String)> {
    let ctx = format!("{transport}:\n{stdout}\n{stderr}");
    let outcomes: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| l.split_once("OUTCOME ").map(|(_, j)| j))
        .map(|j| serde_json::from_str(j).expect("outcome json"))
        .collect();
    assert_eq!(outcomes.len(), scenarios().len() * 3, "{ctx}");
    let mut table = Vec::new();
    for o in &outcomes {
        let scenario = o["scenario"].as_str().unwrap();
        let signal = o["signal"].as_str().unwrap();
        let got = normalize(o);
        assert_eq!(
            got,
            expected(scenario, signal),
            "{transport} {scenario} {signal}: {o}\n{ctx}"
        );
        // Every span and log record handed over is accounted for.
        if signal != "Metrics" {
            let failed: u64 = o["failed"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum();
            assert_eq!(o["exported"].as_u64().unwrap() + failed, 2, "{o}\n{ctx}");
        }
        table.push((scenario.to_string(), signal.to_string(), format!("{got:?}")));
    }

    // The log: per signal, one line for the permanent failure (not one per
    // failed export) naming its cause, and one per distinct
    // partial_success message.
    let lines = export_lines(stdout);
    for signal in ["traces", "logs", "metrics"] {
        let of = |pred: &dyn Fn(&serde_json::Value) -> bool| -> Vec<&serde_json::Value> {
            lines
                .iter()
                .filter(|l| l["signal"] == signal && pred(l))
                .collect()
        };
        let refused = of(&|l| l["error.type"] == "invalid_argument");
        assert_eq!(refused.len(), 1, "{signal}: {refused:?}\n{ctx}");
        let message = refused[0]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{signal} export failed"))
                && message.contains("scripted invalid argument"),
            "the line names the signal and the collector's cause: {message}"
        );
        for m in ["matrix says no (a)", "matrix says no (b)"] {
            let partial = of(&|l| {
                l["error.type"] == "partial_success"
                    && l["message"].as_str().is_some_and(|s| s.contains(m))
            });
            assert_eq!(partial.len(), 1, "{signal} {m}: {partial:?}\n{ctx}");
        }
        // Retried, throttled and split exports that ended delivered log
        // nothing; the only other lines are none.
        assert_eq!(of(&|_| true).len(), 3, "{signal}: {lines:?}\n{ctx}");
    }
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the header value never appears: {ctx}"
    );
    table
}

#[test]
fn every_transport_retries_counts_and_logs_alike() {
    if std::env::var("MATRIX_TRANSPORT").is_ok() {
        return;
    }
    let transports = ["grpc", "http/protobuf", "http/json"];
    let outs: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = transports.iter().map(|t| s.spawn(move || run(t))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let tables: Vec<_> = transports
        .iter()
        .zip(&outs)
        .map(|(t, (o, e))| check(t, o, e))
        .collect();
    assert_eq!(tables[0], tables[1], "grpc vs http/protobuf");
    assert_eq!(tables[0], tables[2], "grpc vs http/json");
}
