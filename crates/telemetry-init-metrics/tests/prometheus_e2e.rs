//! End to end against a real Prometheus server (loopback only): it scrapes
//! our listener, negotiates OpenMetrics, stores our samples under the
//! translated names and ingests the exemplar with the real trace id.
//!
//! Needs the `prometheus` binary on `PATH` (Debian package `prometheus`):
//! without it the test fails in CI (`CI` set) or with `REQUIRE_PROMETHEUS=1`,
//! and skips elsewhere.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metrics::histogram;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use telemetry_init_metrics::{MetricsConfig, TelemetryRecorder};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Kills the Prometheus child this test started.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a missing tool fails the test instead of skipping it: in CI (`CI`
/// set, as scripts/test.sh does) or with `{var}=1`.
fn tool_required(var: &str) -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set(var)
}

fn binary() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !tool_required("REQUIRE_PROMETHEUS"),
            "prometheus is not on PATH (apt-get install prometheus), and CI or REQUIRE_PROMETHEUS=1 requires it"
        );
        eprintln!(
            "prometheus not on PATH: skipping (CI=1 or REQUIRE_PROMETHEUS=1 makes this fail)"
        );
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(addr: SocketAddr, path_and_query: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path_and_query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.split_once("\r\n\r\n")?.1.to_string())
}

fn wait_for(addr: SocketAddr, path: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(body) = http_get(addr, path) {
            if pred(&body) {
                return body;
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out waiting for {path}; last body: {last}");
}

#[test]
fn real_prometheus_scrapes_names_and_exemplars() {
    let Some(bin) = binary() else {
        return;
    };
    let r = TelemetryRecorder::new(MetricsConfig::new().constant_label("service.name", "demo"))
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("e2e")));
    let trace_id = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("GET /users/{id}");
        let _e = span.enter();
        metrics::with_local_recorder(&r, || {
            histogram!("http.server.request.duration",
                "http.request.method" => "GET", "http.route" => "/users/{id}",
                "http.response.status_code" => "200")
            .record(0.2);
        });
        span.context().span().span_context().trace_id()
    });
    let server = r.handle().serve("127.0.0.1:0".parse().unwrap()).unwrap();

    let dir = std::env::temp_dir().join(format!("tim-prom-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tim\n    static_configs:\n      - targets: ['{}']\n",
            server.local_addr()
        ),
    )
    .unwrap();
    let port = free_port();
    let prom_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _prom = Server(
        Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .arg("--enable-feature=exemplar-storage")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    let body = wait_for(
        prom_addr,
        "/api/v1/query?query=http_server_request_duration_seconds_count",
        |b| b.contains("\"result\":[{"),
    );
    for label in [
        "\"http_request_method\":\"GET\"",
        "\"http_route\":\"/users/{id}\"",
        "\"http_response_status_code\":\"200\"",
        "\"service_name\":\"demo\"",
        "\"value\":[",
    ] {
        assert!(body.contains(label), "{label} missing in {body}");
    }
    assert!(body.contains(",\"1\"]"), "count is not 1: {body}");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exemplars = wait_for(
        prom_addr,
        &format!(
            "/api/v1/query_exemplars?query=http_server_request_duration_seconds_bucket&start={}&end={}",
            now - 3600,
            now + 3600
        ),
        |b| b.contains("trace_id"),
    );
    assert!(
        exemplars.contains(&format!("\"trace_id\":\"{trace_id}\"")),
        "exemplar with trace id {trace_id} missing: {exemplars}"
    );
    assert!(exemplars.contains("\"le\":\"0.25\""), "{exemplars}");

    // Scrape health: no failed scrapes.
    let up = wait_for(prom_addr, "/api/v1/query?query=up", |b| {
        b.contains("\"result\":[{")
    });
    assert!(up.contains(",\"1\"]"), "target not up: {up}");
    drop(_prom);
    let _ = std::fs::remove_dir_all(&dir);
}
