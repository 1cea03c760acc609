//! End-to-end: `telemetry-init dev` collects the demo's telemetry over real
//! OTLP/gRPC, then `telemetry-init query` answers from its store (text and
//! `--json`), and the data survives a restart of `dev`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Proc, cli, demo};

/// `telemetry-init dev` on ephemeral loopback ports with its store at `db`
/// (more flags may follow).
fn dev_on_loopback(db: &Path) -> Command {
    let mut cmd = Command::new(cli());
    cmd.args([
        "dev",
        "--ui-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--db",
    ])
    .arg(db);
    cmd
}

/// Starts `telemetry-init dev` on ephemeral loopback ports; returns it with
/// its UI URL and gRPC endpoint as printed.
fn start_dev(db: &Path) -> (Proc, String, String) {
    let mut child = dev_on_loopback(db)
        .arg("--slo")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../slo/demo.yaml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn telemetry-init dev");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let proc = Proc(child);
    let (mut ui, mut grpc) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while ui.is_none() || grpc.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("telemetry-init dev prints its UI URL and OTLP endpoint");
        if let Some(u) = line.trim().strip_prefix("UI:") {
            ui = Some(u.trim().trim_end_matches('/').to_owned());
        }
        if grpc.is_none()
            && let Some(e) = line
                .trim()
                .strip_prefix("export OTEL_EXPORTER_OTLP_ENDPOINT=")
        {
            grpc = Some(e.trim().to_owned());
        }
    }
    (proc, ui.unwrap(), grpc.unwrap())
}

fn query(ui: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cli())
        .args(["query", "--url", ui])
        .args(args)
        .output()
        .expect("run telemetry-init query");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn query_json(ui: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = query(ui, &all);
    assert_eq!(code, 0, "query {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("--json prints JSON ({e}): {out}"))
}

/// Polls `query --json` until `ok` accepts the answer.
fn poll(ui: &str, args: &[&str], what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = query_json(ui, args);
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn dev_collects_the_demo_and_query_answers_from_the_store() {
    let dir = std::env::temp_dir().join(format!("ti-dev-query-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("store.db");
    let (dev, ui, grpc) = start_dev(&db);
    assert!(ui.starts_with("http://127.0.0.1:"), "{ui}");
    assert!(grpc.starts_with("http://127.0.0.1:"), "{grpc}");

    // The demo exports to the viewer like any service would: the variable only.
    let mut demo_child = Command::new(demo())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &grpc)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_BLRP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");
    let stdout = demo_child.stdout.take().unwrap();
    let demo_proc = Proc(demo_child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && let Some(l) = v["listen"].as_str()
            {
                let _ = tx.send(l.to_owned());
            }
        }
    });
    let listen = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("demo listening");
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&listen).unwrap();
        write!(s, "GET /chain HTTP/1.0\r\nHost: {listen}\r\n\r\n").unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
            "{answer}"
        );
    }

    let traces = poll(
        &ui,
        &["traces", "--route", "/chain"],
        "the /chain trace",
        |v| v["traces"].as_array().is_some_and(|t| !t.is_empty()),
    );
    let trace_id = traces["traces"][0]["trace_id"].as_str().unwrap().to_owned();
    let trace = poll(&ui, &["trace", &trace_id], "3 spans and 3 logs", |v| {
        v["spans"].as_array().is_some_and(|s| s.len() >= 3)
            && v["logs"].as_array().is_some_and(|l| l.len() >= 3)
    });
    assert_eq!(trace["trace_id"], trace_id.as_str());

    // The text tree: SERVER → CLIENT → SERVER, indented, logs under their spans.
    let (code, text, err) = query(&ui, &["trace", &trace_id]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("trace {trace_id} · ")),
        "{text}"
    );
    assert!(lines[1].starts_with("GET /chain [SERVER demo] "), "{text}");
    let client = lines
        .iter()
        .position(|l| l.starts_with("  GET [CLIENT demo] "))
        .expect(&text);
    let hello = lines
        .iter()
        .position(|l| l.starts_with("    GET /hello [SERVER demo] "))
        .expect(&text);
    assert!(client < hello, "{text}");
    assert!(
        lines[hello + 1].starts_with("      · ")
            && lines[hello + 1].ends_with("INFO  saying hello"),
        "the /hello log line under its span: {text}"
    );
    assert!(
        lines[2..client]
            .iter()
            .any(|l| l.starts_with("  · ") && l.ends_with("calling downstream")),
        "{text}"
    );

    // Text list and log search.
    let (code, text, _) = query(&ui, &["traces", "--service", "demo"]);
    assert_eq!(code, 0);
    assert!(
        text.lines()
            .any(|l| l.contains(&trace_id) && l.ends_with("GET /chain")),
        "{text}"
    );
    let logs = query_json(&ui, &["logs", "--trace-id", &trace_id]);
    let bodies: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["body"].as_str())
        .collect();
    for m in ["calling downstream", "saying hello", "downstream answered"] {
        assert!(bodies.contains(&m), "{m} in {bodies:?}");
    }
    let (code, text, _) = query(&ui, &["logs", "--grep", "saying hello"]);
    assert_eq!(code, 0);
    assert!(text.contains(&format!("trace={trace_id}")), "{text}");

    // Unknown trace: exit 1; bad id: exit 2 with a message.
    let (code, _, err) = query(&ui, &["trace", "00000000000000000000000000000001"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = query(&ui, &["trace", "not-hex"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid trace id"), "{err}");

    // Restart `dev` on the same file: the trace is still there.
    drop(demo_proc);
    let status = Command::new("kill")
        .args(["-TERM", &dev.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut dev = dev;
    let deadline = Instant::now() + Duration::from_secs(20);
    while dev.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "dev did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_dev2, ui2, _) = start_dev(&db);
    let again = query_json(&ui2, &["trace", &trace_id]);
    assert!(
        again["spans"].as_array().is_some_and(|s| s.len() >= 3),
        "{again}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn query_without_a_viewer_says_so() {
    let port = support::free_port();
    let (code, _, err) = query(&format!("http://127.0.0.1:{port}"), &["traces"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot reach the viewer") && err.contains("telemetry-init dev"),
        "{err}"
    );
}

#[test]
fn dev_refuses_a_remote_address_without_allow_remote() {
    let out = Command::new(cli())
        .args([
            "dev",
            "--ui-addr",
            "0.0.0.0:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(std::env::temp_dir().join(format!("ti-dev-remote-{}.db", std::process::id())))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot start the viewer"), "{err}");
}

/// The retention flags reach the viewer (its start-up lines say what it
/// keeps), and a bad one is a clear error with exit status 2.
#[test]
fn dev_takes_retention_flags() {
    let dir = std::env::temp_dir().join(format!("ti-dev-keep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = dev_on_loopback(&dir.join("keep.db"))
        .args([
            "--max-age",
            "2d",
            "--max-rows",
            "spans=5000",
            "--max-size",
            "logs=64MiB",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn telemetry-init dev");
    let stdout = child.stdout.take().unwrap();
    let _proc = Proc(child);
    let keep = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take(40)
        .find(|l| l.trim_start().starts_with("Keep:"))
        .expect("a Keep: line");
    assert!(
        keep.contains("spans 2days, 5000 rows;")
            && keep.contains("logs 2days, 2000000 rows, 64.0 MiB;")
            && keep.contains("events 2days, 1000000 rows"),
        "{keep}"
    );
    drop(_proc);

    let out = Command::new(cli())
        .args(["dev", "--max-size", "traces=1GB", "--db"])
        .arg(dir.join("bad.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-size \"traces=1GB\": unknown signal \"traces\""),
        "{err}"
    );
    assert!(!dir.join("bad.db").exists(), "nothing started");
    let _ = std::fs::remove_dir_all(&dir);
}
