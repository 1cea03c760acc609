//! Exactness of the Prometheus and OpenMetrics expositions.

use metrics::{Unit, counter, describe_counter, describe_histogram, gauge, histogram};
use telemetry_init_metrics::{DEFAULT_BUCKETS, MetricsConfig, TelemetryRecorder};

fn recorder(config: MetricsConfig) -> TelemetryRecorder {
    TelemetryRecorder::new(config).expect("valid config")
}

const LABELS: &str = r#"http_request_method="GET",http_route="/users/{id}",http_response_status_code="200",service_name="demo""#;

#[test]
fn prometheus_document_is_exact() {
    let r = recorder(MetricsConfig::new().constant_label("service.name", "demo"));
    let values = [0.003, 0.005, 0.2, 0.25, 0.3, 11.0];
    metrics::with_local_recorder(&r, || {
        describe_histogram!(
            "http.server.request.duration",
            Unit::Seconds,
            "Duration of HTTP server requests."
        );
        describe_counter!(
            "otel.sdk.exporter.span.exported",
            "Spans exported.\nSecond line with a \\ backslash."
        );
        let h = histogram!("http.server.request.duration",
            "http.request.method" => "GET",
            "http.route" => "/users/{id}",
            "http.response.status_code" => "200");
        for v in values {
            h.record(v);
        }
        let active = gauge!("http.server.active_requests", "http.request.method" => "GET");
        active.increment(3.0);
        active.decrement(1.5);
        counter!("otel.sdk.exporter.span.exported", "otel.component.type" => "otlp_grpc_span_exporter")
            .increment(5);
        counter!("otel.sdk.exporter.span.exported",
            "otel.component.type" => "otlp_grpc_span_exporter", "error.type" => "timeout")
        .increment(2);
    });

    let mut sum = 0.0;
    for v in values {
        sum += v;
    }
    let cumulative = [2, 2, 2, 2, 2, 2, 4, 5, 5, 5, 5, 5, 5, 5, 6];
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5",
        "7.5", "10", "+Inf",
    ];
    let mut expected = String::new();
    expected
        .push_str("# HELP http_server_active_requests Number of active HTTP server requests.\n");
    expected.push_str("# TYPE http_server_active_requests gauge\n");
    expected.push_str(
        "http_server_active_requests{http_request_method=\"GET\",service_name=\"demo\"} 1.5\n",
    );
    expected.push_str(
        "# HELP http_server_request_duration_seconds Duration of HTTP server requests.\n",
    );
    expected.push_str("# TYPE http_server_request_duration_seconds histogram\n");
    for (le, c) in les.iter().zip(cumulative) {
        expected.push_str(&format!(
            "http_server_request_duration_seconds_bucket{{{LABELS},le=\"{le}\"}} {c}\n"
        ));
    }
    expected.push_str(&format!(
        "http_server_request_duration_seconds_sum{{{LABELS}}} {sum}\n"
    ));
    expected.push_str(&format!(
        "http_server_request_duration_seconds_count{{{LABELS}}} 6\n"
    ));
    expected.push_str(
        "# HELP otel_sdk_exporter_span_exported_total Spans exported.\\nSecond line with a \\\\ backslash.\n",
    );
    expected.push_str("# TYPE otel_sdk_exporter_span_exported_total counter\n");
    expected.push_str("otel_sdk_exporter_span_exported_total{otel_component_type=\"otlp_grpc_span_exporter\",error_type=\"timeout\",service_name=\"demo\"} 2\n");
    expected.push_str("otel_sdk_exporter_span_exported_total{otel_component_type=\"otlp_grpc_span_exporter\",service_name=\"demo\"} 5\n");

    assert_eq!(r.handle().render_prometheus(), expected);
}

#[test]
fn openmetrics_document_is_exact() {
    let r = recorder(
        MetricsConfig::new()
            .trace_context(None)
            .buckets_for_prefix("rpc.", vec![0.1, 1.0]),
    );
    metrics::with_local_recorder(&r, || {
        histogram!("rpc.server.duration", "rpc.system" => "grpc").record(0.5);
        counter!("jobs.done").increment(7);
        gauge!("queue.depth").set(-2.5);
    });
    let expected = concat!(
        "# HELP jobs_done jobs.done\n",
        "# TYPE jobs_done counter\n",
        "jobs_done_total 7\n",
        "# HELP queue_depth queue.depth\n",
        "# TYPE queue_depth gauge\n",
        "queue_depth -2.5\n",
        "# HELP rpc_server_duration_seconds Measures the duration of inbound RPC.\n",
        "# TYPE rpc_server_duration_seconds histogram\n",
        "# UNIT rpc_server_duration_seconds seconds\n",
        "rpc_server_duration_seconds_bucket{rpc_system=\"grpc\",le=\"0.1\"} 0\n",
        "rpc_server_duration_seconds_bucket{rpc_system=\"grpc\",le=\"1.0\"} 1\n",
        "rpc_server_duration_seconds_bucket{rpc_system=\"grpc\",le=\"+Inf\"} 1\n",
        "rpc_server_duration_seconds_sum{rpc_system=\"grpc\"} 0.5\n",
        "rpc_server_duration_seconds_count{rpc_system=\"grpc\"} 1\n",
        "# EOF\n",
    );
    assert_eq!(r.handle().render_openmetrics(), expected);
    let (ct, body) = r.handle().render(Some(
        "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
    ));
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(body, expected);
}

/// A tiny deterministic generator so the test needs no extra dependency.
struct Lcg(u64);
impl Lcg {
    fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn parse_sample(text: &str, prefix: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in\n{text}"));
    line[prefix.len()..].trim().parse().unwrap()
}

#[test]
fn cumulative_bucket_counts_match_recorded_values() {
    let r = recorder(MetricsConfig::new().slo_threshold("http.server.request.duration", 0.3));
    let bounds = r
        .handle()
        .config()
        .buckets_for("http.server.request.duration", Some("s"));
    assert!(bounds.contains(&0.3));
    let mut rng = Lcg(7);
    let routes = ["/a", "/b", "/c"];
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
    metrics::with_local_recorder(&r, || {
        for i in 0..5000 {
            let route = i % routes.len();
            // Spread over 0..12.5 s with many values exactly on boundaries.
            let v = if i % 7 == 0 {
                bounds[i % bounds.len()]
            } else {
                rng.next_f64() * 12.5
            };
            values[route].push(v);
            histogram!("http.server.request.duration", "http.route" => routes[route]).record(v);
        }
    });
    let text = r.handle().render_prometheus();
    for (route, vals) in routes.iter().zip(&values) {
        for b in bounds.iter().map(|b| Some(*b)).chain([None]) {
            let expected = vals.iter().filter(|v| b.is_none_or(|b| **v <= b)).count();
            let le = b.map_or("+Inf".to_string(), |b| b.to_string());
            let got = parse_sample(
                &text,
                &format!(
                    "http_server_request_duration_seconds_bucket{{http_route=\"{route}\",le=\"{le}\"}} "
                ),
            );
            assert_eq!(got as usize, expected, "route {route} le {le}");
        }
        let count = parse_sample(
            &text,
            &format!("http_server_request_duration_seconds_count{{http_route=\"{route}\"}} "),
        );
        assert_eq!(count as usize, vals.len());
        let sum = parse_sample(
            &text,
            &format!("http_server_request_duration_seconds_sum{{http_route=\"{route}\"}} "),
        );
        let expected_sum: f64 = vals.iter().sum();
        assert!(
            (sum - expected_sum).abs() < 1e-6 * expected_sum,
            "{sum} vs {expected_sum}"
        );
    }
    // The SLO threshold sits between 0.25 and 0.5.
    assert!(text.contains("le=\"0.25\"} "));
    assert!(text.contains("le=\"0.3\"} "));
    assert_eq!(bounds.len(), DEFAULT_BUCKETS.len() + 1);
}

#[test]
fn label_order_does_not_create_new_series() {
    let r = recorder(MetricsConfig::new());
    metrics::with_local_recorder(&r, || {
        counter!("c", "a" => "1", "b" => "2").increment(1);
        counter!("c", "b" => "2", "a" => "1").increment(1);
        counter!("c", "a" => "1").increment(1);
    });
    assert_eq!(r.handle().series_count("c"), 2);
    let text = r.handle().render_prometheus();
    assert!(text.contains("c_total{a=\"1\",b=\"2\"} 2\n"), "{text}");
    assert!(text.contains("c_total{a=\"1\"} 1\n"), "{text}");
}

#[test]
fn kind_conflicts_are_ignored_and_values_escaped() {
    let r = recorder(MetricsConfig::new());
    metrics::with_local_recorder(&r, || {
        counter!("x").increment(1);
        gauge!("x").set(5.0); // conflicting kind: no-op
        histogram!("x").record(1.0); // conflicting kind: no-op
        counter!("y", "path" => "a\"b\\c\nd").absolute(10);
        counter!("y", "path" => "a\"b\\c\nd").absolute(4); // never goes down
        histogram!("h").record(f64::NAN); // dropped
        histogram!("h").record(1.0);
    });
    let text = r.handle().render_prometheus();
    assert!(text.contains("\nx_total 1\n"), "{text}");
    assert!(!text.contains("# TYPE x gauge"));
    assert!(
        text.contains("y_total{path=\"a\\\"b\\\\c\\nd\"} 10\n"),
        "{text}"
    );
    assert!(text.contains("h_count 1\n"), "{text}");
    assert!(text.contains("h_sum 1\n"), "{text}");
}

#[test]
fn concurrent_records_are_all_counted() {
    let r = recorder(MetricsConfig::new().trace_context(None));
    let h = metrics::with_local_recorder(&r, || histogram!("lat", "k" => "v"));
    let c = metrics::with_local_recorder(&r, || counter!("n"));
    std::thread::scope(|s| {
        for t in 0..4 {
            let (h, c) = (h.clone(), c.clone());
            s.spawn(move || {
                for i in 0..25_000 {
                    h.record(if (i + t) % 2 == 0 { 0.001 } else { 3.0 });
                    c.increment(1);
                }
            });
        }
    });
    let text = r.handle().render_prometheus();
    assert!(text.contains("lat_count{k=\"v\"} 100000\n"), "{text}");
    assert!(
        text.contains("lat_bucket{k=\"v\",le=\"0.005\"} 50000\n"),
        "{text}"
    );
    let sum = parse_sample(&text, "lat_sum{k=\"v\"} ");
    assert!((sum - 150_050.0).abs() < 1e-6, "{sum}");
    assert!(text.contains("n_total 100000\n"));
}

#[test]
fn units_from_describe_config_and_catalogue() {
    let r = recorder(
        MetricsConfig::new()
            .unit("payload", "By")
            .unit("ratio.thing", "1"),
    );
    metrics::with_local_recorder(&r, || {
        describe_histogram!("resp.time", Unit::Milliseconds, "ms latency");
        histogram!("resp.time").record(1.0);
        histogram!("payload").record(1.0);
        gauge!("ratio.thing").set(0.5);
        counter!("otel.sdk.exporter.log.exported").increment(1);
        histogram!("otel.sdk.exporter.operation.duration").record(0.1);
    });
    let text = r.handle().render_prometheus();
    for name in [
        "# TYPE resp_time_milliseconds histogram",
        "# TYPE payload_bytes histogram",
        "# TYPE ratio_thing_ratio gauge",
        "# TYPE otel_sdk_exporter_log_exported_total counter",
        "# TYPE otel_sdk_exporter_operation_duration_seconds histogram",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
}

#[test]
fn colliding_prometheus_names_are_exposed_once() {
    let r = recorder(MetricsConfig::new());
    metrics::with_local_recorder(&r, || {
        counter!("a_b").increment(1);
        counter!("a.b").increment(2);
    });
    let text = r.handle().render_prometheus();
    assert_eq!(
        text.matches("# TYPE a_b_total counter").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("\na_b_total 2\n"),
        "first OpenTelemetry name wins: {text}"
    );
}
