//! Acceptance 1 of issue 11: TLS, mutual TLS and auth headers on every
//! transport (gRPC, HTTP/protobuf, HTTP/JSON) and every signal, over real
//! sockets against the test kit's TLS receiver.
//!
//! Each case builds its own telemetry and makes it its thread's default
//! (`Telemetry::set_default`, the scoped mode), on a current-thread runtime
//! so the instrumented server runs on that thread too; two cases run side
//! by side. A case configures everything through `env_lookup` (the process
//! environment is never read), exports one span, one log record and one
//! metric, and reports what was delivered and what the self-health metrics
//! counted.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use telemetry_init::config::BatchSettings;
use telemetry_init_testing::{OtlpReceiver, PkiOptions, ReceiverTls, TestPki};

const PROTOCOLS: [&str; 3] = ["grpc", "http/protobuf", "http/json"];

/// The cases, with what each must observe.
const CASES: [&str; 9] = [
    // A private CA given by OTEL_EXPORTER_OTLP_CERTIFICATE.
    "private_ca",
    // The receiver requires a client certificate; we present one.
    "client_cert_present",
    // The receiver requires a client certificate; we have none.
    "client_cert_absent",
    // The receiver requires `authorization`; we send the right one.
    "auth_right",
    // The receiver requires `authorization`; we send a wrong one.
    "auth_wrong",
    // The receiver's CA is not trusted (system roots only).
    "untrusted",
    // The certificate is for another host.
    "wrong_host",
    // The certificate expired.
    "expired",
    // Credentials in the endpoint URL (a managed gateway's
    // `https://instance:token@host` form) become `Authorization: Basic`.
    "basic_userinfo",
];

/// `Basic` + base64("12345:glc_t0ken=="), what the receiver demands in
/// the `basic_userinfo` case.
const BASIC: &str = "Basic MTIzNDU6Z2xjX3Qwa2VuPT0=";

const SECRET: &str = "Bearer s3cret-token";

/// Runs one case and returns its report: `SLOWEST`, `RESULT`, `REPORT` and
/// `FAILURE` lines.
fn run(protocol: &str, case: &str) -> String {
    let mut out = String::new();
    let options = match case {
        "wrong_host" => PkiOptions::default().server_names(["collector.example"]),
        "expired" => PkiOptions::default().expired(true),
        _ => PkiOptions::default(),
    };
    let pki = TestPki::generate_with(options).expect("pki");
    let mut builder = OtlpReceiver::builder()
        .tls(ReceiverTls::new(pki.clone()).require_client_cert(case.starts_with("client_cert")));
    if case.starts_with("auth") {
        builder = builder.require_header("authorization", SECRET);
    }
    if case == "basic_userinfo" {
        builder = builder.require_header("authorization", BASIC);
    }
    let receiver = builder.start_blocking().expect("receiver");
    // Per protocol too: the three protocols' cases run at the same time.
    let dir = std::env::temp_dir().join(format!(
        "tls-matrix-{}-{}-{case}",
        std::process::id(),
        protocol.replace('/', "-")
    ));
    let files = pki.write_files(&dir).expect("pem files");

    let endpoint = if protocol == "grpc" {
        receiver.grpc_endpoint()
    } else {
        receiver.http_endpoint()
    };
    let endpoint = if case == "basic_userinfo" {
        // The token's `=` percent-encoded, as in a URL.
        endpoint.replace("https://", "https://12345:glc_t0ken%3D%3D@")
    } else {
        endpoint
    };
    let mut vars: HashMap<&str, String> = HashMap::new();
    vars.insert("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    vars.insert("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into());
    vars.insert("OTEL_METRIC_EXPORT_INTERVAL", "300".into());
    vars.insert("OTEL_EXPORTER_OTLP_TIMEOUT", "3000".into());
    if !matches!(case, "untrusted" | "wrong_host" | "expired") {
        vars.insert("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&files.ca));
    } else {
        // The receiver's CA is trusted by nobody, but the other two
        // failures must be about the name or the date, not the issuer.
        if case != "untrusted" {
            vars.insert("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&files.ca));
        }
    }
    if case == "client_cert_present" {
        vars.insert(
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            path(&files.client_cert),
        );
        vars.insert("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(&files.client_key));
    }
    match case {
        "auth_right" => {
            vars.insert(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("authorization={}", SECRET.replace(' ', "%20")),
            );
        }
        "auth_wrong" => {
            vars.insert(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20wrong".into(),
            );
        }
        _ => {}
    }
    let fast = BatchSettings {
        max_queue_size: 256,
        max_export_batch_size: 64,
        schedule_delay: Duration::from_millis(50),
        export_timeout: Duration::from_secs(5),
    };
    let telemetry = telemetry_init::builder()
        .service_name("tls-matrix")
        .stdout_filter("off")
        .export_filter("info")
        .span_batch(fast)
        .log_batch(fast)
        .env_lookup(move |k| vars.get(k).cloned())
        .build()
        .expect("build");

    // Current-thread: the server's tasks run on this thread, in the scope.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    {
        let _scope = telemetry.set_default();
        // Requests to a service whose export is failing: all answered, none
        // waiting on the exporter (a handshake, a retry or a timeout).
        let slowest = rt.block_on(serve_requests(40));
        let _ = writeln!(out, "SLOWEST {}", slowest.as_millis());

        let span = tracing::info_span!("tls-work", otel.kind = "server", case);
        span.in_scope(|| tracing::info!(case, "exported over tls"));
        drop(span);
        metrics::counter!("tls_matrix_total").increment(1);
    }

    let delivered = rt.block_on(async {
        let spans = receiver
            .wait_for_spans_where(1, Duration::from_secs(4), |s| s.name == "tls-work")
            .await
            .is_ok();
        let logs = receiver
            .wait_for_logs_where(1, Duration::from_secs(1), |l| {
                l.body.as_ref().and_then(|b| b.as_str()) == Some("exported over tls")
            })
            .await
            .is_ok();
        let metrics = receiver
            .wait_for_metric("tls_matrix_total", Duration::from_secs(2))
            .await
            .is_ok();
        (spans, logs, metrics)
    });
    // Let at least one metric export finish on the failing cases too.
    std::thread::sleep(Duration::from_millis(700));
    let (_, text) = telemetry.handle().render_metrics(None);
    let report = rt.block_on(telemetry.shutdown(Duration::from_secs(5)));
    let failures: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("_exported_total{") && l.contains("error_type="))
        .collect();
    let _ = writeln!(
        out,
        "RESULT spans={} logs={} metrics={} unauthenticated={}",
        delivered.0,
        delivered.1,
        delivered.2,
        receiver.unauthenticated_requests()
    );
    let _ = writeln!(out, "REPORT {report:?}");
    for f in failures {
        let _ = writeln!(out, "FAILURE {f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Serves an instrumented axum app on a loopback socket, sends `n`
/// requests one after the other, checks each is answered 200, and returns
/// the slowest one's latency.
async fn serve_requests(n: usize) -> Duration {
    let app = axum::Router::new()
        .route("/work", axum::routing::get(|| async { "done" }))
        .layer(telemetry_init::layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    // The first request pays for lazy set-up (connection, first span);
    // it is checked but not timed.
    for i in 0..=n {
        let started = Instant::now();
        let r = client
            .get(format!("http://{addr}/work"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "done");
        if i > 0 {
            slowest = slowest.max(started.elapsed());
        }
    }
    slowest
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn check(protocol: &str, case: &str, out: &str) {
    let ctx = format!("{protocol} {case}:\n{out}");
    let delivered = out.contains("RESULT spans=true logs=true metrics=true");
    let nothing = out.contains("RESULT spans=false logs=false metrics=false");
    let failure_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("FAILURE ")).collect();
    let counted = |error_type: &str| {
        ["span", "log", "metric_data_point"].iter().all(|signal| {
            failure_lines.iter().any(|l| {
                l.contains(&format!("otel_sdk_exporter_{signal}_exported"))
                    && l.contains(&format!("error_type=\"{error_type}\""))
            })
        })
    };
    match case {
        "private_ca" | "client_cert_present" | "auth_right" | "basic_userinfo" => {
            assert!(delivered, "every signal delivered: {ctx}");
            assert!(failure_lines.is_empty(), "no failure counted: {ctx}");
        }
        "client_cert_absent" => {
            assert!(nothing, "nothing delivered: {ctx}");
            assert!(
                counted("tls_client_certificate_required"),
                "each signal's failure counted with its cause: {ctx}"
            );
        }
        "auth_wrong" => {
            assert!(nothing, "nothing delivered: {ctx}");
            assert!(counted("unauthenticated"), "counted: {ctx}");
            assert!(
                !out.contains("unauthenticated=0"),
                "the receiver refused: {ctx}"
            );
        }
        "untrusted" => {
            assert!(nothing, "{ctx}");
            assert!(counted("tls_unknown_ca"), "{ctx}");
        }
        "wrong_host" => {
            assert!(nothing, "{ctx}");
            assert!(counted("tls_wrong_host"), "{ctx}");
        }
        "expired" => {
            assert!(nothing, "{ctx}");
            assert!(counted("tls_certificate_expired"), "{ctx}");
        }
        other => panic!("unknown case {other}"),
    }
    // Every request was answered (checked in `run`); none waited for
    // the failing exporter, whose handshakes and retries take far longer
    // than a loopback request. The bound is loose for a loaded CI machine.
    let slowest: u64 = out
        .lines()
        .find_map(|l| l.split_once("SLOWEST ").map(|(_, v)| v))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no latency: {ctx}"));
    assert!(slowest < 500, "a request took {slowest} ms: {ctx}");
    // Secrets never reach the report (stdout is off, but the metrics and
    // the shutdown report are in it).
    assert!(
        !out.contains("s3cret") && !out.contains("glc_t0ken"),
        "{ctx}"
    );
}

fn matrix(protocol: &str) {
    let started = Instant::now();
    // Two cases at a time, each on its own thread with its own runtime.
    for pair in CASES.chunks(2) {
        let outs: Vec<(String, &str)> = std::thread::scope(|s| {
            let handles: Vec<_> = pair
                .iter()
                .map(|case| (s.spawn(move || run(protocol, case)), *case))
                .collect();
            handles
                .into_iter()
                .map(|(h, c)| (h.join().expect("case thread"), c))
                .collect()
        });
        for (out, case) in outs {
            check(protocol, case, &out);
        }
    }
    eprintln!(
        "{protocol}: {} cases in {:?}",
        CASES.len(),
        started.elapsed()
    );
}

#[test]
fn grpc() {
    matrix(PROTOCOLS[0]);
}

#[test]
fn http_protobuf() {
    matrix(PROTOCOLS[1]);
}

#[test]
fn http_json() {
    matrix(PROTOCOLS[2]);
}
