//! The demo's SLO metrics, scraped and pushed: exact names, labels, buckets
//! and counts; bounded cardinality; exemplars; the pipeline's own health.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::Demo;
use telemetry_init_testing::OtlpReceiver;

/// `name{labels} value` lines of a Prometheus text exposition.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").expect("label");
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            (name.to_string(), labels, value.parse().expect("value"))
        })
        .collect()
}

fn value(
    all: &[(String, BTreeMap<String, String>, f64)],
    name: &str,
    want: &[(&str, &str)],
) -> Option<f64> {
    all.iter()
        .find(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
                && (want.iter().any(|(k, _)| *k == "error_type") || !l.contains_key("error_type"))
        })
        .map(|(_, _, v)| *v)
}

async fn scrape(demo: &Demo) -> String {
    reqwest::get(demo.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn mixed_traffic(demo: &Demo) {
    let c = reqwest::Client::new();
    for i in 0..7 {
        assert_eq!(
            c.get(demo.url(&format!("/users/{i}")))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    for _ in 0..3 {
        assert_eq!(
            c.get(demo.url("/error")).send().await.unwrap().status(),
            500
        );
    }
    for _ in 0..2 {
        assert_eq!(
            c.get(demo.url("/slow?ms=300"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(
        c.get(demo.url("/nope/1")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        c.get(demo.url("/healthz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_matches_the_traffic_sent() {
    let demo = Demo::start(&[("DEMO_EMBEDDED_RECEIVER", "false")]);
    mixed_traffic(&demo).await;
    let text = scrape(&demo).await;
    let all = samples(&text);
    let d = "http_server_request_duration_seconds";
    let users = [
        ("http_route", "/users/{id}"),
        ("http_request_method", "GET"),
        ("http_response_status_code", "200"),
        ("service_name", "demo"),
    ];
    assert_eq!(
        value(&all, &format!("{d}_count"), &users),
        Some(7.0),
        "{text}"
    );
    let errors = [
        ("http_route", "/error"),
        ("http_response_status_code", "500"),
        ("error_type", "500"),
    ];
    assert_eq!(value(&all, &format!("{d}_count"), &errors), Some(3.0));
    let unmatched = [
        ("http_route", "unmatched"),
        ("http_response_status_code", "404"),
    ];
    assert_eq!(value(&all, &format!("{d}_count"), &unmatched), Some(1.0));
    // /healthz and /metrics are not measured.
    assert!(!text.contains("/healthz") && !text.contains("http_route=\"/metrics\""));
    // Buckets: the default boundaries, cumulative. /slow?ms=300 lands above 0.25 s.
    let slow = |le: &str| {
        value(
            &all,
            &format!("{d}_bucket"),
            &[("http_route", "/slow"), ("le", le)],
        )
        .unwrap()
    };
    assert_eq!(slow("0.25"), 0.0);
    assert_eq!(slow("0.5"), 2.0);
    assert_eq!(slow("+Inf"), 2.0);
    let bounds: Vec<String> = all
        .iter()
        .filter(|(n, l, _)| n == &format!("{d}_bucket") && l["http_route"] == "/slow")
        .map(|(_, l, _)| l["le"].clone())
        .collect();
    assert_eq!(
        bounds,
        [
            "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5",
            "5", "7.5", "10", "+Inf"
        ]
    );
    let sum = value(&all, &format!("{d}_sum"), &[("http_route", "/slow")]).unwrap();
    assert!((0.6..1.5).contains(&sum), "sum {sum}");
    assert_eq!(
        value(
            &all,
            "http_server_active_requests",
            &[("http_route", "/users/{id}")]
        ),
        Some(0.0)
    );

    // promtool (Debian's prometheus package) finds nothing to complain about.
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && report.trim().is_empty(),
                "promtool: {report}"
            );
        }
        Err(_) if !tool_required("REQUIRE_PROMTOOL") => {
            eprintln!(
                "promtool not installed: skipped (CI=1 or REQUIRE_PROMTOOL=1 makes this fail)"
            );
        }
        Err(e) => panic!(
            "promtool (apt-get install prometheus) is required in CI or with REQUIRE_PROMTOOL=1: {e}"
        ),
    }
}

/// Whether a missing tool fails the test instead of skipping it: in CI (`CI`
/// set, as scripts/test.sh does) or with `{var}=1`.
fn tool_required(var: &str) -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set(var)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanning_unknown_paths_adds_no_series() {
    let demo = Demo::start(&[
        ("DEMO_EMBEDDED_RECEIVER", "false"),
        ("RUST_LOG", "warn,demo=info"),
    ]);
    let c = reqwest::Client::new();
    c.get(demo.url("/scan/first")).send().await.unwrap();
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    let before = series(&scrape(&demo).await);
    // 10,000 distinct unknown paths, 16 at a time.
    let urls: Vec<String> = (0..10_000)
        .map(|i| demo.url(&format!("/scan/{i}/x{i}")))
        .collect();
    for chunk in urls.chunks(16) {
        let futs = chunk.iter().map(|u| c.get(u).send());
        for r in futures_util::future::join_all(futs).await {
            assert_eq!(r.unwrap().status(), 404);
        }
    }
    let text = scrape(&demo).await;
    assert_eq!(series(&text), before, "series count changed");
    let all = samples(&text);
    assert_eq!(
        value(
            &all,
            "http_server_request_duration_seconds_count",
            &[("http_route", "unmatched")]
        ),
        Some(10_001.0)
    );
    assert!(!text.contains("/scan/"), "a raw path became a label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_metrics_match_the_scrape_and_carry_exemplars() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
    ]);
    mixed_traffic(&demo).await;
    // The scrape, in OpenMetrics with exemplars.
    let om = reqwest::Client::new()
        .get(demo.url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let text = scrape(&demo).await;
    let (code, _) = demo.terminate(Duration::from_secs(10));
    assert_eq!(code, 0);

    let handle = receiver.handle();
    let metric = handle
        .latest_metric("http.server.request.duration")
        .expect("pushed over OTLP");
    assert_eq!(metric.unit, "s");
    let all = samples(&text);
    let mut checked = 0;
    for p in &metric.points {
        let attr = |k: &str| {
            p.attributes
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("point lacks {k}: {:?}", p.attributes))
        };
        let route = attr("http.route");
        // An int on OTLP, as the semantic conventions type it; a label string in the scrape.
        let status = p.attributes["http.response.status_code"]
            .as_i64()
            .expect("int status code")
            .to_string();
        let status = status.as_str();
        assert_eq!(p.attributes["service.name"].as_str(), Some("demo"));
        let h = p.value.as_histogram().expect("histogram");
        let mut want = vec![("http_route", route), ("http_response_status_code", status)];
        let error = p.attributes.get("error.type").and_then(|v| v.as_str());
        if let Some(e) = error {
            want.push(("error_type", e));
        }
        let scraped = value(&all, "http_server_request_duration_seconds_count", &want)
            .unwrap_or_else(|| panic!("{route} {status} not scraped"));
        assert_eq!(h.count as f64, scraped, "{route} {status}");
        assert_eq!(
            h.explicit_bounds,
            [
                0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
            ]
        );
        checked += 1;
    }
    assert!(checked >= 4, "routes pushed: {checked}");

    // Exemplars: a bucket of the scrape points at a real, sampled, exported trace.
    let trace_ids: Vec<String> = handle.spans().into_iter().map(|s| s.trace_id).collect();
    let exemplar = om
        .lines()
        .filter(|l| {
            l.starts_with("http_server_request_duration_seconds_bucket") && l.contains("# {")
        })
        .find_map(|l| {
            let t = l.split("trace_id=\"").nth(1)?.split('"').next()?;
            Some(t.to_string())
        })
        .unwrap_or_else(|| panic!("no exemplar in: {om}"));
    assert!(
        trace_ids.contains(&exemplar),
        "exemplar {exemplar} is not an exported trace"
    );
    assert!(om.trim_end().ends_with("# EOF"));
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_shows_on_the_health_metrics() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = receiver.grpc_endpoint();
    let demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
    ]);
    let c = reqwest::Client::new();
    for _ in 0..5 {
        c.get(demo.url("/hello")).send().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = samples(&scrape(&demo).await);
    let ok_before = value(&before, "otel_sdk_exporter_span_exported_total", &[]).unwrap_or(0.0);
    assert!(
        ok_before >= 5.0,
        "spans exported before the kill: {ok_before}"
    );

    // Kill the collector mid-run.
    receiver.shutdown().await;
    for _ in 0..20 {
        assert_eq!(
            c.get(demo.url("/hello")).send().await.unwrap().status(),
            200
        );
    }
    let mut failed = 0.0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = samples(&scrape(&demo).await);
        // Every failure type counts (a dead collector shows as `unavailable`,
        // `timeout` or a connection cause, depending on when it is noticed).
        failed = now
            .iter()
            .filter(|(n, l, _)| {
                n == "otel_sdk_exporter_span_exported_total" && l.contains_key("error_type")
            })
            .map(|(_, _, v)| v)
            .sum();
        if failed >= 20.0 {
            break;
        }
    }
    assert!(failed >= 20.0, "failed spans counted on /metrics: {failed}");
}
