//! The RED metrics the middleware records are the entries of the one list
//! of metric names (`telemetry_init::metrics::semconv::metric`): the same
//! names, help texts and types, and no label the entry does not list.
//! Checked on the real `/metrics` text after real requests over loopback.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::routing::get;
use telemetry_init::http::client::TracedRequest;
use telemetry_init::metrics::prometheus_names;
use telemetry_init::metrics::semconv::metric::{self, Source};

/// Labels every series may carry besides the entry's own attributes: the
/// constant `service.name` and the histogram bucket bound.
const ALWAYS: &[&str] = &["service_name", "le"];

/// Label keys of a sample line `name{a="x",b="y"} 1`.
fn label_keys(line: &str) -> BTreeSet<String> {
    let Some(start) = line.find('{') else {
        return BTreeSet::new();
    };
    let mut keys = BTreeSet::new();
    let mut rest = &line[start + 1..];
    while let Some(eq) = rest.find("=\"") {
        keys.insert(rest[..eq].trim_start_matches(',').to_owned());
        // Skip the quoted value (escaped quotes included).
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    end = Some(eq + 2 + i + 1);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        rest = &rest[end..];
        if rest.starts_with('}') {
            break;
        }
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_metrics_are_the_entries_of_the_one_list() {
    let _env = common::env("red-metrics-test");
    let app = Router::new()
        .route("/ok/{id}", get(|| async { "ok" }))
        .route(
            "/boom",
            get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .layer(telemetry_init::layer());
    let addr = common::serve_at(app).await;
    let client = reqwest::Client::new();
    for path in ["/ok/1", "/ok/2", "/boom", "/nowhere"] {
        client
            .get(format!("http://{addr}{path}"))
            .send_traced()
            .await
            .unwrap();
    }

    let text = telemetry_init::handle()
        .expect("installed")
        .render_metrics(None)
        .1;
    // Sample name -> the entry it belongs to.
    let mut samples = BTreeMap::new();
    for m in metric::ALL
        .iter()
        .filter(|m| m.source == Source::Middleware)
    {
        for s in prometheus_names(m).samples {
            samples.insert(s, m);
        }
    }
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = &line[..line.find(['{', ' ']).unwrap_or(line.len())];
        let Some(m) = samples.get(name) else {
            continue;
        };
        seen.insert(m.name);
        let allowed = prometheus_names(m).labels;
        for key in label_keys(line) {
            if !allowed.contains(&key) && !ALWAYS.contains(&key.as_str()) {
                failures.push(format!("{key} is not an attribute of {}: {line}", m.name));
            }
        }
    }
    // What these requests record: server duration and active requests,
    // client duration (gRPC has its own tests).
    for m in [
        metric::HTTP_SERVER_REQUEST_DURATION,
        metric::HTTP_SERVER_ACTIVE_REQUESTS,
        metric::HTTP_CLIENT_REQUEST_DURATION,
    ] {
        assert!(seen.contains(m.name), "{} not recorded:\n{text}", m.name);
        let p = prometheus_names(&m);
        let type_name = if m.instrument == metric::Instrument::Histogram {
            p.family.clone()
        } else {
            p.samples[0].clone()
        };
        let help = format!("# HELP {type_name} {}\n", m.help);
        assert!(text.contains(&help), "{help:?} not in\n{text}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The 5xx carries error.type, the label only the entry's list allows.
    assert!(
        text.lines().any(
            |l| l.starts_with("http_server_request_duration_seconds_count{")
                && l.contains("error_type=\"500\"")
        ),
        "{text}"
    );
}

#[test]
fn label_keys_reads_escaped_values() {
    assert_eq!(
        label_keys(r#"m_count{a="x",b="q\"uo,te=\"",c="}"} 1"#),
        ["a", "b", "c"].map(String::from).into()
    );
    assert!(label_keys("m 1").is_empty());
}
