//! Cardinality guard: bounded series, one overflow series, overflow counter.

use metrics::{counter, gauge, histogram};
use telemetry_init_metrics::{DEFAULT_CARDINALITY_LIMIT, MetricsConfig, TelemetryRecorder};

#[test]
fn ten_thousand_label_values_stay_at_limit_plus_one() {
    let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    let handle = r.handle();
    metrics::with_local_recorder(&r, || {
        for i in 0..10_000 {
            histogram!("http.server.request.duration", "http.route" => format!("/raw/{i}"))
                .record(0.01);
        }
    });
    assert_eq!(DEFAULT_CARDINALITY_LIMIT, 1000);
    assert_eq!(handle.series_count("http.server.request.duration"), 1001);
    assert_eq!(
        handle.overflowed_records("http.server.request.duration"),
        9000
    );

    // More distinct values do not grow anything.
    metrics::with_local_recorder(&r, || {
        for i in 10_000..20_000 {
            histogram!("http.server.request.duration", "http.route" => format!("/raw/{i}"))
                .record(0.01);
        }
        // Existing series keep working after the limit is reached.
        histogram!("http.server.request.duration", "http.route" => "/raw/5").record(0.01);
    });
    assert_eq!(handle.series_count("http.server.request.duration"), 1001);

    let text = handle.render_prometheus();
    assert!(
        text.contains(
            "http_server_request_duration_seconds_count{otel_metric_overflow=\"true\"} 19000\n"
        ),
        "overflow series missing"
    );
    assert!(text.contains("http_server_request_duration_seconds_count{http_route=\"/raw/5\"} 2\n"));
    assert!(
        !text.contains("/raw/1000\""),
        "label set beyond the limit leaked"
    );
    assert!(text.contains(
        "telemetry_init_metrics_overflowed_records_total{metric_name=\"http.server.request.duration\"} 19000\n"
    ));
    let samples = text
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count"))
        .count();
    assert_eq!(samples, 1001);
}

#[test]
fn specific_lower_limit_and_all_kinds() {
    let r = TelemetryRecorder::new(
        MetricsConfig::new()
            .cardinality_limit(50)
            .cardinality_limit_for("user.", 3)
            .constant_label("service.name", "demo"),
    )
    .unwrap();
    metrics::with_local_recorder(&r, || {
        for i in 0..10 {
            counter!("user.logins", "user.id" => i.to_string()).increment(2);
            gauge!("user.sessions", "user.id" => i.to_string()).increment(1.0);
            counter!("other", "id" => i.to_string()).increment(1);
        }
    });
    let h = r.handle();
    assert_eq!(h.series_count("user.logins"), 4);
    assert_eq!(h.series_count("user.sessions"), 4);
    assert_eq!(h.series_count("other"), 10);
    assert_eq!(h.overflowed_records("user.logins"), 7);
    assert_eq!(h.overflowed_records("other"), 0);
    let text = h.render_prometheus();
    // The overflow series carries only the overflow label.
    assert!(
        text.contains("user_logins_total{otel_metric_overflow=\"true\"} 14\n"),
        "{text}"
    );
    assert!(
        text.contains("user_sessions{otel_metric_overflow=\"true\"} 7\n"),
        "{text}"
    );
    assert!(text.contains("user_logins_total{user_id=\"0\",service_name=\"demo\"} 2\n"));
}

#[test]
fn label_values_are_bounded_in_length_and_scrape_size() {
    use telemetry_init_metrics::DEFAULT_LABEL_LENGTH_LIMIT;
    let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    let handle = r.handle();
    // 2000 distinct 64 KiB values (multi-byte characters, so a byte cut
    // would split one) and 64 KiB keys.
    metrics::with_local_recorder(&r, || {
        for i in 0..2000 {
            let value = format!("{i:05}{}", "é".repeat(32 * 1024));
            counter!("rpc.server.calls", "rpc.method" => value).increment(1);
        }
        counter!("odd.keys", "k".repeat(64 * 1024) => "v").increment(1);
    });
    assert_eq!(DEFAULT_LABEL_LENGTH_LIMIT, 256);
    assert_eq!(handle.series_count("rpc.server.calls"), 1001);
    let text = handle.render_prometheus();
    // 1000 series of at most ~256 bytes of label each, plus the overhead.
    assert!(text.len() < 400 * 1024, "scrape is {} bytes", text.len());
    let line = text
        .lines()
        .find(|l| l.starts_with("rpc_server_calls_total{rpc_method=\"00007"))
        .expect("series 7");
    let value = line
        .split_once("rpc_method=\"")
        .unwrap()
        .1
        .split_once('"')
        .unwrap()
        .0;
    // Cut on a character boundary: 5 digits + 125 two-byte characters.
    assert_eq!(value.len(), 255, "{value}");
    assert!(value.ends_with('é'));
    let key_line = text
        .lines()
        .find(|l| l.starts_with("odd_keys_total"))
        .unwrap();
    assert!(key_line.len() < 400, "{key_line}");

    // Values that agree up to the limit are one series.
    let r = TelemetryRecorder::new(MetricsConfig::new().label_length_limit(10)).unwrap();
    metrics::with_local_recorder(&r, || {
        for i in 0..100 {
            counter!("m", "v" => format!("0123456789{i}")).increment(1);
        }
    });
    assert_eq!(r.handle().series_count("m"), 1);
    assert!(
        r.handle()
            .render_prometheus()
            .contains("m_total{v=\"0123456789\"} 100\n")
    );
}
