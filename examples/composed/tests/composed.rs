//! Issue 12, acceptance 1: the service's own layers and ours, side by side.
//! The example binary runs as a child process (it installs globally with
//! `install_with`), exporting to the test kit's OTLP receiver; the test
//! calls it over real sockets, stops it with SIGTERM, and checks what each
//! layer received:
//!
//! * the DEBUG file (tracing-appender): this crate's DEBUG and INFO lines;
//! * the ERROR counter (a custom layer): exactly the ERROR events;
//! * stdout (ours, `RUST_LOG=info`): INFO lines with trace ids, no DEBUG;
//! * the collector (ours): the SERVER spans with their route, the span
//!   events, the INFO log record once, no DEBUG record.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use telemetry_init_testing::{OtlpReceiver, SpanKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_layers_and_ours_each_receive_what_they_should() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("composed-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("debug.log");
    let _ = std::fs::remove_file(&log);

    let mut child = Command::new(env!("CARGO_BIN_EXE_composed-layers"))
        .env_clear()
        .env("COMPOSED_ADDR", "127.0.0.1:0")
        .env("COMPOSED_DEBUG_LOG", &log)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_BLRP_SCHEDULE_DELAY", "100")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the example");
    // `listening on ADDR` is the child's first stderr line.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    let stdout = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());

    let client = reqwest::Client::new();
    for (path, rid) in [("/orders/7", "rid-order"), ("/pay", "rid-pay")] {
        let res = client
            .get(format!("http://{addr}{path}"))
            .header("x-request-id", rid)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    let errors = client
        .get(format!("http://{addr}/errors"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(errors, "1", "the custom layer saw the one ERROR event only");

    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let mut waited = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(waited < 100, "the example did not stop within 10 s");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        !stderr.contains("not fully delivered"),
        "everything delivered: {stderr}"
    );

    // The DEBUG file: this service's DEBUG and INFO lines, nobody else's.
    let file = std::fs::read_to_string(&log).unwrap();
    assert!(
        file.contains("DEBUG") && file.contains("cache lookup") && file.contains("order=7"),
        "{file}"
    );
    assert!(file.contains("order found"), "{file}");
    assert!(file.contains("payment failed"), "{file}");
    assert!(
        !file.contains("telemetry installed"),
        "only this crate's target: {file}"
    );

    // Our stdout: INFO and above, JSON with the trace ids; no DEBUG.
    let found = stdout
        .lines()
        .find(|l| l.contains("\"order found\""))
        .unwrap_or_else(|| panic!("no INFO line on stdout: {stdout}"));
    let found: serde_json::Value = serde_json::from_str(found).unwrap();
    assert_eq!(found["request_id"], "rid-order");
    assert_eq!(found["trace_id"].as_str().map(str::len), Some(32));
    assert!(!stdout.contains("cache lookup"), "{stdout}");

    // Our export: spans, span events and log records as `install()` sends them.
    let handle = receiver.handle();
    let spans = handle.spans();
    let server = |rid: &str| {
        let found: Vec<_> = spans
            .iter()
            .filter(|s| {
                s.kind == SpanKind::Server
                    && s.attr("request_id").and_then(|v| v.as_str()) == Some(rid)
            })
            .collect();
        assert_eq!(found.len(), 1, "{rid}: {spans:#?}");
        found[0]
    };
    let order = server("rid-order");
    assert_eq!(order.name, "GET /orders/{id}");
    assert_eq!(
        order.attr("http.route").and_then(|v| v.as_str()),
        Some("/orders/{id}")
    );
    assert!(
        order.events.is_empty(),
        "INFO is not a span event: {order:#?}"
    );
    assert_eq!(order.service_name(), Some("composed-layers"));
    let pay = server("rid-pay");
    let names: Vec<_> = pay.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["payment slow", "exception"], "{pay:#?}");
    let logs = handle.logs();
    let body = |b: &str| logs.iter().filter(|l| l.body_str() == Some(b)).count();
    assert_eq!(body("order found"), 1);
    assert_eq!(body("payment failed"), 1);
    assert_eq!(body("cache lookup"), 0, "DEBUG is not exported");
    let record = logs
        .iter()
        .find(|l| l.body_str() == Some("order found"))
        .unwrap();
    assert_eq!(record.trace_id.as_deref(), Some(order.trace_id.as_str()));
    let _ = std::fs::remove_dir_all(&dir);
}
