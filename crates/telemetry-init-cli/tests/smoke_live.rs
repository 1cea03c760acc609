//! `telemetry-init smoke live` against local servers answering like Alloy,
//! Tempo, Loki and Mimir (their documented response shapes, slow and empty
//! answers included), and against a real Prometheus scraping the demo.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::json;
use support::{Run, run_json};

/// How the fake stack behaves.
#[derive(Default, Clone)]
struct Behaviour {
    /// `/-/ready` answers 503 this many times first (`usize::MAX`: never ready).
    alloy_not_ready: usize,
    /// Tempo answers 404 this many times first.
    tempo_missing: usize,
    /// Tempo answers the v2 shape `{"trace":{"resourceSpans":…}}`.
    tempo_v2: bool,
    /// The entry span's parent is not the injected span id.
    tempo_wrong_parent: bool,
    /// Loki answers no stream this many times first (`usize::MAX`: never).
    loki_empty: usize,
    /// The first Prometheus answer takes this long.
    prom_first_delay: Duration,
    /// The target does not echo `X-Request-ID`.
    no_echo: bool,
}

#[derive(Default)]
struct Fake {
    b: Behaviour,
    alloy_polls: AtomicUsize,
    tempo_polls: AtomicUsize,
    loki_polls: AtomicUsize,
    prom_polls: AtomicUsize,
    traceparents: Mutex<Vec<String>>,
    loki_queries: Mutex<Vec<String>>,
    /// `X-Scope-OrgID` of each Loki query; whether the target ever got one.
    loki_tenants: Mutex<Vec<String>>,
    target_got_tenant: AtomicUsize,
}

type S = State<Arc<Fake>>;

fn b64(hex: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn chain(State(f): S, headers: HeaderMap) -> Response {
    let tp = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    f.traceparents.lock().unwrap().push(tp);
    if headers.contains_key("x-scope-orgid") {
        f.target_got_tenant.fetch_add(1, Ordering::SeqCst);
    }
    let mut res = "ok\n".into_response();
    if !f.b.no_echo
        && let Some(rid) = headers.get("x-request-id")
    {
        res.headers_mut().insert("x-request-id", rid.clone());
    }
    res
}

async fn ready(State(f): S) -> (StatusCode, &'static str) {
    let n = f.alloy_polls.fetch_add(1, Ordering::SeqCst);
    if n < f.b.alloy_not_ready {
        (StatusCode::SERVICE_UNAVAILABLE, "Alloy is not ready.")
    } else {
        (StatusCode::OK, "Alloy is ready.")
    }
}

async fn tempo(State(f): S, Path(id): Path<String>) -> Response {
    let n = f.tempo_polls.fetch_add(1, Ordering::SeqCst);
    let parent = f.traceparents.lock().unwrap().iter().find_map(|tp| {
        let parts: Vec<&str> = tp.split('-').collect();
        (parts.len() == 4 && parts[1] == id).then(|| parts[2].to_owned())
    });
    let (true, Some(parent)) = (n >= f.b.tempo_missing, parent) else {
        // Not there yet: v1 answers 404, the v2 fake an empty trace.
        return if f.b.tempo_v2 {
            Json(json!({"trace": {}, "status": "COMPLETE"})).into_response()
        } else {
            (StatusCode::NOT_FOUND, "trace not found\n").into_response()
        };
    };
    let parent = if f.b.tempo_wrong_parent {
        "00000000000000aa".to_owned()
    } else {
        parent
    };
    let batch = json!({
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "demo"}}]},
        "scopeSpans": [{"scope": {"name": "telemetry-init"}, "spans": [
            {"traceId": b64(&id), "spanId": b64("1111111111111111"), "parentSpanId": b64(&parent),
             "kind": "SPAN_KIND_SERVER", "name": "GET /chain", "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
            {"traceId": b64(&id), "spanId": b64("2222222222222222"), "parentSpanId": b64("1111111111111111"),
             "kind": "SPAN_KIND_CLIENT", "name": "GET", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
        ]}]
    });
    if f.b.tempo_v2 {
        Json(json!({"trace": {"resourceSpans": [batch]}, "status": "COMPLETE"})).into_response()
    } else {
        Json(json!({"batches": [batch]})).into_response()
    }
}

async fn loki(
    State(f): S,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    let n = f.loki_polls.fetch_add(1, Ordering::SeqCst);
    let tenant = headers
        .get("x-scope-orgid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>");
    f.loki_tenants.lock().unwrap().push(tenant.to_owned());
    let query = q.get("query").cloned().unwrap_or_default();
    f.loki_queries.lock().unwrap().push(query.clone());
    let result = if n < f.b.loki_empty {
        json!([])
    } else {
        let tid = query
            .split('"')
            .find(|s| s.len() == 32)
            .unwrap_or("")
            .to_owned();
        json!([{
            "stream": {"service_name": "demo", "level": "INFO", "trace_id": tid},
            "values": [["1700000000000000000", format!("{{\"message\":\"calling downstream\",\"trace_id\":\"{tid}\"}}")]]
        }])
    };
    Json(
        json!({"status": "success", "data": {"resultType": "streams", "result": result, "stats": {}}}),
    )
}

async fn prom(State(f): S, Query(q): Query<HashMap<String, String>>) -> Json<serde_json::Value> {
    if f.prom_polls.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::time::sleep(f.b.prom_first_delay).await;
    }
    let query = q.get("query").cloned().unwrap_or_default();
    let result = if query.contains("service_name=\"demo\"") {
        json!([{
            "metric": {"__name__": "http_server_request_duration_seconds_count", "service_name": "demo",
                       "http_request_method": "GET", "http_route": "/chain", "http_response_status_code": "200"},
            "value": [1700000000.0, "3"]
        }])
    } else {
        json!([])
    };
    Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
}

async fn exemplars(State(f): S) -> Json<serde_json::Value> {
    let tid = f
        .traceparents
        .lock()
        .unwrap()
        .first()
        .and_then(|tp| tp.split('-').nth(1).map(str::to_owned))
        .unwrap_or_default();
    Json(json!({"status": "success", "data": [{
        "seriesLabels": {"__name__": "http_server_request_duration_seconds_bucket", "service_name": "demo", "le": "0.005"},
        "exemplars": [{"labels": {"trace_id": tid}, "value": "0.002", "timestamp": 1700000000.0}]
    }]}))
}

async fn start_fake(b: Behaviour) -> (Arc<Fake>, SocketAddr) {
    let fake = Arc::new(Fake {
        b,
        ..Fake::default()
    });
    let app = Router::new()
        .route("/chain", get(chain))
        .route("/-/ready", get(ready))
        .route("/api/traces/{id}", get(tempo))
        .route("/loki/api/v1/query_range", get(loki))
        .route("/prometheus/api/v1/query", get(prom))
        .route("/prometheus/api/v1/query_exemplars", get(exemplars))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, addr)
}

async fn live(addr: SocketAddr, extra: &[&str]) -> Run {
    let base = format!("http://{addr}");
    let mut args: Vec<String> = [
        "smoke",
        "live",
        "--json",
        "--target",
        &base,
        "--alloy",
        &base,
        "--tempo",
        &base,
        "--loki",
        &base,
        "--prometheus",
        &format!("{base}/prometheus"),
        "--interval",
        "200ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_json(&args, &[])
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_once_slow_and_empty_backends_have_the_data() {
    let (fake, addr) = start_fake(Behaviour {
        alloy_not_ready: 2,
        tempo_missing: 2,
        loki_empty: 3,
        prom_first_delay: Duration::from_millis(1500),
        ..Behaviour::default()
    })
    .await;
    let run = live(
        addr,
        &[
            "--deadline",
            "20s",
            "--exemplars",
            "--backend-header",
            "X-Scope-OrgID: team-a",
            "--expect-service",
            "demo",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    for name in [
        "collector ready",
        "responses",
        "tempo:",
        "loki:",
        "prometheus: http_server",
        "prometheus: exemplar",
    ] {
        assert_eq!(run.status(name), "pass", "{name}: {:#}", run.report);
    }
    // It really polled through the empty answers.
    assert_eq!(fake.alloy_polls.load(Ordering::SeqCst), 3);
    assert_eq!(fake.tempo_polls.load(Ordering::SeqCst), 3);
    assert_eq!(fake.loki_polls.load(Ordering::SeqCst), 4);
    let loki_detail = run.check("loki:")["detail"].as_str().unwrap().to_owned();
    assert!(loki_detail.contains("4 polls"), "{loki_detail}");
    // The trace id sent is the one looked up, as structured metadata.
    let tid = run.report["facts"]["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(tid.len(), 32);
    let queries = fake.loki_queries.lock().unwrap().clone();
    assert!(
        queries
            .iter()
            .all(|q| *q == format!("{{service_name=\"demo\"}} | trace_id=\"{tid}\"")),
        "{queries:?}"
    );
    // The backend header went to the backends only.
    assert_eq!(fake.loki_tenants.lock().unwrap()[0], "team-a");
    assert_eq!(fake.target_got_tenant.load(Ordering::SeqCst), 0);
    let tp = fake.traceparents.lock().unwrap()[0].clone();
    let parent = run.report["facts"]["injected parent span id"]
        .as_str()
        .unwrap();
    assert_eq!(tp, format!("00-{tid}-{parent}-01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_clearly_when_loki_never_has_the_logs() {
    let (fake, addr) = start_fake(Behaviour {
        loki_empty: usize::MAX,
        tempo_v2: true,
        tempo_missing: 2,
        ..Behaviour::default()
    })
    .await;
    let run = live(addr, &["--deadline", "2s"]).await;
    assert_eq!(run.code, 1, "{:#}", run.report);
    assert_eq!(run.failed().len(), 1, "{:#}", run.report);
    assert_eq!(run.status("loki:"), "fail");
    // Tempo's v2 shape is read too, empty traces meaning "not yet".
    assert_eq!(run.status("tempo:"), "pass", "{:#}", run.report);
    assert!(fake.tempo_polls.load(Ordering::SeqCst) >= 3);
    let tid = run.report["facts"]["trace_id"].as_str().unwrap().to_owned();
    let p = run.problems("loki:");
    assert!(
        p.contains(&format!(
            "Loki returned no log line for `{{service_name=\"demo\"}} | trace_id=\"{tid}\"` (no stream matched yet)"
        )),
        "{p}"
    );
    assert!(p.contains("still missing at the deadline"), "{p}");
    assert!(fake.loki_polls.load(Ordering::SeqCst) >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_every_missing_property() {
    let (_fake, addr) = start_fake(Behaviour {
        alloy_not_ready: usize::MAX,
        tempo_wrong_parent: true,
        no_echo: true,
        ..Behaviour::default()
    })
    .await;
    let run = live(
        addr,
        &[
            "--deadline",
            "1s",
            "--service",
            "checkout",
            "--loki-match",
            "line",
            "--expect-service",
            "demo-downstream",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{:#}", run.report);
    let p = run.problems("collector ready");
    assert!(
        p.contains("/-/ready answered 503 Service Unavailable: Alloy is not ready."),
        "{p}"
    );
    let p = run.problems("responses");
    assert!(p.contains("did not echo the X-Request-ID header"), "{p}");
    let p = run.problems("tempo:");
    assert!(
        p.contains("but no SERVER span whose parent is the injected span id")
            && p.contains("`GET /chain` (parent 00000000000000aa)"),
        "{p}"
    );
    assert!(
        p.contains("has no span of service `demo-downstream` yet (services: demo)"),
        "{p}"
    );
    let p = run.problems("prometheus: http_server");
    assert!(
        p.contains(
            "`http_server_request_duration_seconds_count{service_name=\"checkout\"}` returned no series yet"
        ),
        "{p}"
    );
    // The line-filter form of the Loki query: the fake Loki has the line,
    // so this check passes.
    assert_eq!(run.status("loki:"), "pass", "{:#}", run.report);
    assert!(
        run.check("loki:")["detail"]
            .as_str()
            .unwrap()
            .contains("line filter")
    );
}

#[test]
fn only_the_given_backends_are_checked() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(start_fake(Behaviour::default())).1;
    let base = format!("http://{addr}");
    let run = run_json(
        &[
            "smoke",
            "live",
            "--json",
            "--target",
            &base,
            "--deadline",
            "1s",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{:#}", run.report);
    assert_eq!(run.status("responses"), "pass");
    for name in ["collector ready", "tempo:", "loki:", "prometheus:"] {
        assert_eq!(run.status(name), "skip", "{name}");
    }
}

/// Whether a missing tool fails the test instead of skipping it: in CI (`CI`
/// set, as scripts/test.sh does) or with `{var}=1`.
fn tool_required(var: &str) -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set(var)
}

/// The metrics part against a real Prometheus scraping the real demo every
/// second. Without `/usr/bin/prometheus` (or `prometheus` on PATH) the test
/// fails in CI (`CI` set) or with `REQUIRE_PROMETHEUS=1`, and skips elsewhere.
#[test]
fn real_prometheus_scraping_the_demo() {
    let prometheus = ["/usr/bin/prometheus", "prometheus"].into_iter().find(|p| {
        std::process::Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(prometheus) = prometheus else {
        assert!(
            !tool_required("REQUIRE_PROMETHEUS"),
            "no prometheus binary was found (apt-get install prometheus), and CI or REQUIRE_PROMETHEUS=1 requires it"
        );
        eprintln!("note: prometheus not installed; skipping the real-Prometheus smoke test");
        return;
    };
    let (_demo, demo_url) = support::start_demo();
    let dir = std::env::temp_dir().join(format!("smoke-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: [\"{}\"]\n",
            demo_url.trim_start_matches("http://")
        ),
    )
    .unwrap();
    let port = support::free_port();
    let prom = support::Proc(
        std::process::Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let prom_url = format!("http://127.0.0.1:{port}");
    assert!(
        support::wait_http(&format!("{prom_url}/-/ready"), Duration::from_secs(60)),
        "prometheus did not become ready"
    );
    // The smoke request itself lands in the histogram; Prometheus finds the
    // target a few seconds after start, which the polling absorbs.
    let run = run_json(
        &[
            "smoke",
            "live",
            "--json",
            "--target",
            &demo_url,
            "--prometheus",
            &prom_url,
            "--deadline",
            "60s",
            "--interval",
            "500ms",
        ],
        &[],
    );
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, 0, "{:#}", run.report);
    let detail = run.check("prometheus: http_server")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(run.status("prometheus: http_server"), "pass", "{detail}");
    assert!(detail.contains("/chain"), "{detail}");
}
