//! `telemetry-init smoke run`: passes against the real demo, and fails with a
//! message naming the missing property against a deliberately broken service.

mod support;

use support::{Run, broken_service, demo, run_json};

const ALL_CHECKS: &[&str] = &[
    "service started",
    "responses",
    "exit on SIGTERM",
    "trace: incoming traceparent respected",
    "propagation downstream",
    "logs: OTLP log records correlated",
    "stdout: JSON lines",
    "metrics: http.server.request.duration",
    "no secrets",
];

fn smoke_demo(extra: &[&str]) -> Run {
    let demo = demo();
    let demo = demo.to_str().expect("utf-8 path");
    let mut args = vec!["smoke", "run", "--json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", demo]);
    run_json(&args, &[("DEMO_EMBEDDED_RECEIVER", "false")])
}

fn smoke_broken(mode: &str) -> Run {
    let bin = broken_service();
    run_json(
        &[
            "smoke",
            "run",
            "--json",
            "--downstream-env",
            "DOWNSTREAM_URL",
            "--deadline",
            "2s",
            "--",
            bin.to_str().expect("utf-8 path"),
        ],
        &[("BROKEN_MODE", mode)],
    )
}

fn assert_only_failed(run: &Run, expected: &[&str]) {
    assert_eq!(run.code, 1, "exit code; report: {:#}", run.report);
    assert_eq!(run.report["passed"], false);
    let failed = run.failed();
    for name in ALL_CHECKS {
        let should_fail = expected.iter().any(|e| name.starts_with(e));
        let did_fail = failed.iter().any(|f| f.starts_with(name));
        assert_eq!(
            did_fail, should_fail,
            "check `{name}` failed: {did_fail}, expected {should_fail}; report: {:#}",
            run.report
        );
    }
}

#[test]
fn demo_passes_with_a_recording_downstream() {
    let run = smoke_demo(&["--downstream-env", "DOWNSTREAM_URL", "--service", "demo"]);
    assert_eq!(run.code, 0, "report: {:#}\n{}", run.report, run.stderr);
    assert_eq!(run.report["passed"], true);
    for name in ALL_CHECKS {
        assert_eq!(run.status(name), "pass", "{name}: {:#}", run.report);
    }
    // The downstream saw all four headers of every request (3 + the secret one).
    let detail = run.check("propagation downstream")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("4 downstream call(s) seen by the recording downstream"),
        "{detail}"
    );
    assert_eq!(run.report["facts"]["path"], "/chain");
}

/// A service configured with `TELEMETRY_REQUEST_ID_HEADER` reads, echoes
/// and forwards the request id under that header: the smoke test (whose
/// environment the service inherits) sends and checks it there, and every
/// check passes, the request id ones included.
#[test]
fn a_custom_request_id_header_is_sent_and_checked_under_its_name() {
    let demo = demo();
    let demo = demo.to_str().expect("utf-8 path");
    let run = run_json(
        &[
            "smoke",
            "run",
            "--json",
            "--downstream-env",
            "DOWNSTREAM_URL",
            "--service",
            "demo",
            "--requests",
            "2",
            "--",
            demo,
        ],
        &[
            ("DEMO_EMBEDDED_RECEIVER", "false"),
            ("TELEMETRY_REQUEST_ID_HEADER", "x-correlation-id"),
        ],
    );
    assert_eq!(run.code, 0, "report: {:#}\n{}", run.report, run.stderr);
    for name in ALL_CHECKS {
        assert_eq!(run.status(name), "pass", "{name}: {:#}", run.report);
    }
}

#[test]
fn demo_calling_itself_passes_through_its_own_server_spans() {
    // Without a recording downstream, /chain calls the demo's own /hello: both
    // SERVER spans are in one trace, linked through the CLIENT span.
    let run = smoke_demo(&["--requests", "2"]);
    assert_eq!(run.code, 0, "report: {:#}\n{}", run.report, run.stderr);
    let detail = run.check("propagation downstream")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("downstream SERVER span(s) child of a CLIENT span with the tracestate"),
        "{detail}"
    );
}

#[test]
fn wrong_service_name_is_reported() {
    let run = smoke_demo(&["--requests", "1", "--service", "checkout"]);
    assert_only_failed(&run, &["trace: incoming traceparent respected"]);
    let p = run.problems("trace: incoming traceparent respected");
    assert!(
        p.contains("has service.name `demo`, expected `checkout`"),
        "{p}"
    );
}

#[test]
fn ignoring_the_incoming_traceparent_fails() {
    let run = smoke_broken("ignore-traceparent");
    // New traces: the entry span, the downstream call and the request logs
    // are all outside the injected traces.
    assert_only_failed(
        &run,
        &[
            "trace: incoming traceparent respected",
            "propagation downstream",
            "logs: OTLP log records correlated",
        ],
    );
    let p = run.problems("trace: incoming traceparent respected");
    assert!(
        p.contains("the service ignored the incoming traceparent"),
        "{p}"
    );
    assert!(p.contains("started new traces"), "{p}");
    let p = run.problems("logs: OTLP log records correlated");
    assert!(
        p.contains("no OTLP log record carries a smoke trace id"),
        "{p}"
    );
}

#[test]
fn dropping_tracestate_and_baggage_downstream_fails() {
    let run = smoke_broken("drop-tracestate");
    assert_only_failed(&run, &["propagation downstream"]);
    let p = run.problems("propagation downstream");
    assert!(p.contains("tracestate `smoke=t"), "{p}");
    assert!(p.contains("did not arrive downstream"), "{p}");
    assert!(p.contains("baggage `smoke.run=b"), "{p}");
    assert!(p.contains("X-Request-ID `smoke-"), "{p}");
    assert!(p.contains("(downstream got tracestate: none)"), "{p}");
}

#[test]
fn stdout_lines_without_trace_ids_fail() {
    let run = smoke_broken("no-trace-ids");
    assert_only_failed(&run, &["stdout: JSON lines"]);
    let p = run.problems("stdout: JSON lines");
    assert!(
        p.contains(
            "stdout line `calling downstream` was written during a smoke request but has no trace_id/span_id"
        ),
        "{p}"
    );
}

#[test]
fn a_logged_authorization_header_fails() {
    let run = smoke_broken("leak-secret");
    assert_only_failed(&run, &["no secrets"]);
    let p = run.problems("no secrets");
    assert!(p.contains("has attribute `authorization`"), "{p}");
    assert!(
        p.contains("the secret sent with the request appears in 1 stdout line(s)"),
        "{p}"
    );
    // The report never repeats the secret itself.
    assert!(
        !run.report.to_string().contains("smoke-secret-"),
        "{:#}",
        run.report
    );
}

#[test]
fn a_service_that_never_listens_fails_clearly() {
    let run = run_json(
        &[
            "smoke",
            "run",
            "--json",
            "--",
            "sh",
            "-c",
            "echo starting; exit 3",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{:#}", run.report);
    let p = run.problems("service started");
    assert!(
        p.contains(
            "the service exited (exit status: 3) before logging a JSON line with a `listen` field"
        ),
        "{p}"
    );
}

#[test]
fn a_missing_command_is_a_usage_error() {
    let out = support::run_cli(&["smoke", "run"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("COMMAND"), "{err}");
}

#[test]
fn demo_passes_over_otlp_http_json() {
    let run = smoke_demo(&["--requests", "1", "--protocol", "http/json"]);
    assert_eq!(run.code, 0, "report: {:#}\n{}", run.report, run.stderr);
    let receiver = run.report["facts"]["OTLP receiver"].as_str().unwrap();
    assert!(receiver.ends_with("(http/json)"), "{receiver}");
}

#[test]
fn the_text_report_marks_the_failed_check_and_says_what_is_missing() {
    let bin = broken_service();
    let out = support::run_cli(
        &[
            "smoke",
            "run",
            "--requests",
            "1",
            "--downstream-env",
            "DOWNSTREAM_URL",
            "--deadline",
            "2s",
            "--",
            bin.to_str().expect("utf-8 path"),
        ],
        &[("BROKEN_MODE", "drop-tracestate")],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("✓ trace: incoming traceparent respected"),
        "{text}"
    );
    assert!(
        text.contains(
            "✗ propagation downstream: traceparent, tracestate, baggage and X-Request-ID forwarded\n    - tracestate `smoke=t"
        ),
        "{text}"
    );
    assert!(
        text.contains("FAIL: 8 passed, 1 failed, 0 skipped"),
        "{text}"
    );
}

#[test]
fn dropping_the_incoming_tracestate_fails() {
    let run = smoke_broken("ignore-tracestate");
    // The entry span lacks it, and so does everything downstream.
    assert_only_failed(
        &run,
        &[
            "trace: incoming traceparent respected",
            "propagation downstream",
        ],
    );
    let p = run.problems("trace: incoming traceparent respected");
    assert!(
        p.contains("lacks the incoming tracestate entry `smoke=t"),
        "{p}"
    );
    assert!(p.contains("the incoming tracestate was dropped"), "{p}");
    let p = run.problems("propagation downstream");
    assert!(p.contains("did not arrive downstream"), "{p}");
    assert!(!p.contains("baggage"), "baggage still arrives: {p}");
}
