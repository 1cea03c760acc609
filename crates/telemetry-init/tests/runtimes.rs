//! Shutdown flushes and never deadlocks, whatever runtime it is called from.
//!
//! `install()` sets process-wide state, so each scenario runs in a child
//! process: this test binary re-executes itself with `SCENARIO` set.

use std::process::Command;
use std::time::{Duration, Instant};

use telemetry_init_testing::{Behavior, OtlpReceiver, SpanKind};

const SPANS: usize = 10;

/// What the child does: install, make spans, shut down the way `how` says.
fn child(how: &str) {
    let guard = telemetry_init::builder()
        .service_name("runtime-test")
        .shutdown_timeout(Duration::from_secs(2))
        .install()
        .expect("install");
    for i in 0..SPANS {
        let span = tracing::info_span!("work", otel.kind = "server", i);
        let _e = span.enter();
        tracing::info!(i, "working");
    }
    let timeout = Duration::from_secs(2);
    let report = match how {
        "multi_thread" => tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(guard.shutdown(timeout)),
        "current_thread" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(guard.shutdown(timeout)),
        "one_worker" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
            .block_on(guard.shutdown(timeout)),
        "drop_in_current_thread" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let before = guard.report();
            rt.block_on(async move { drop(guard) });
            println!("DROPPED pending={}", before.traces.pending);
            return;
        }
        "drop_outside_runtime" => {
            drop(guard);
            println!("DROPPED");
            return;
        }
        other => panic!("unknown scenario {other}"),
    };
    println!(
        "REPORT exported={} undelivered={} timed_out={}",
        report.traces.exported,
        report.traces.undelivered(),
        report.timed_out
    );
}

fn run_child(name: &str, endpoint: &str) -> (String, String, Duration) {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SCENARIO", name)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env_remove("RUST_LOG")
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "child {name} failed: {stdout}\n{stderr}"
    );
    (stdout, stderr, started.elapsed())
}

fn scenario(name: &str) {
    if let Ok(s) = std::env::var("SCENARIO") {
        if s == name {
            child(name);
        }
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();

    // A working collector: everything arrives.
    let receiver = rt.block_on(OtlpReceiver::start()).unwrap();
    let (stdout, _, _) = run_child(name, &receiver.grpc_endpoint());
    let handle = receiver.handle();
    let got = handle
        .spans()
        .iter()
        .filter(|s| s.kind == SpanKind::Server && s.name == "work")
        .count();
    assert_eq!(got, SPANS, "{name}: spans received; child said {stdout}");
    if stdout.contains("REPORT") {
        assert!(
            stdout.contains(&format!(
                "REPORT exported={SPANS} undelivered=0 timed_out=false"
            )),
            "{name}: {stdout}"
        );
    }

    // A collector that never answers: bounded, and the loss is reported.
    handle.clear();
    handle.set_behavior(Behavior::Hang);
    let (stdout, stderr, took) = run_child(name, &receiver.grpc_endpoint());
    assert!(took < Duration::from_secs(8), "{name}: took {took:?}");
    if stdout.contains("REPORT") {
        assert!(
            stdout.contains(&format!("undelivered={SPANS}")),
            "{name}: {stdout}"
        );
    } else {
        assert!(stderr.contains("not delivered"), "{name}: {stderr}");
    }
    handle.set_behavior(Behavior::Accept);
    rt.block_on(receiver.shutdown());
}

#[test]
fn multi_thread() {
    scenario("multi_thread");
}

#[test]
fn current_thread() {
    scenario("current_thread");
}

#[test]
fn one_worker() {
    scenario("one_worker");
}

#[test]
fn drop_in_current_thread() {
    scenario("drop_in_current_thread");
}

#[test]
fn drop_outside_runtime() {
    scenario("drop_outside_runtime");
}
