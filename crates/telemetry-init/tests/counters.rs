//! One set of pipeline counters: the shutdown report and the `otel_sdk_*`
//! self-health metrics are computed from the same counts, so they agree
//! whatever happened to the items, over real sockets against the test
//! kit's receiver (a collector that holds requests without answering,
//! that refuses, or that answers `partial_success`).
//!
//! Each test builds its own telemetry (the scoped mode) and reads the
//! metrics the way a scrape does, from the Prometheus text.

use std::time::Duration;

use telemetry_init::config::BatchSettings;
use telemetry_init::{ShutdownReport, SignalReport, TelemetryHandle};
use telemetry_init_testing::{
    Answer, Behavior, Failure, OtlpReceiver, ReceiverHandle, Signal, Transport,
};

/// One series of the Prometheus text: its `error_type` label (if any) and
/// its value.
fn series(text: &str, name: &str) -> Vec<(Option<String>, u64)> {
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| {
            let error_type = l.split("error_type=\"").nth(1).map(|rest| {
                rest.split('"')
                    .next()
                    .expect("a closed label value")
                    .to_string()
            });
            let value = l
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("not an integer counter: {l}"));
            (error_type, value)
        })
        .collect()
}

/// The sum of the series of `name` whose `error_type` passes `keep`.
fn sum(text: &str, name: &str, keep: impl Fn(Option<&str>) -> bool) -> u64 {
    series(text, name)
        .into_iter()
        .filter(|(e, _)| keep(e.as_deref()))
        .map(|(_, v)| v)
        .sum()
}

/// What the self-health metrics say about one signal (`span`, `log`,
/// `metric_data_point`), in the shutdown report's terms.
#[derive(Debug, PartialEq, Eq)]
struct FromMetrics {
    /// The report's fields, computed from the metrics alone.
    report: SignalReport,
    /// `processed` without `error_type`: handed to the exporter.
    handed_to_exporter: u64,
    /// `processed{error_type="shutdown_timeout"}`.
    cut_at_deadline: u64,
    /// Every `error_type` of the exporter counter, with its value.
    export_errors: Vec<(String, u64)>,
}

fn from_metrics(handle: &TelemetryHandle, signal: &str) -> FromMetrics {
    let (_, text) = handle.render_metrics(None);
    let exported_name = format!("otel_sdk_exporter_{signal}_exported_total");
    let processed_name = format!("otel_sdk_processor_{signal}_processed_total");
    let exported = sum(&text, &exported_name, |e| e.is_none());
    let export_failed = sum(&text, &exported_name, |e| e.is_some());
    let dropped = sum(&text, &processed_name, |e| e == Some("queue_full"));
    let cut = sum(&text, &processed_name, |e| e == Some("shutdown_timeout"));
    let other = sum(&text, &processed_name, |e| {
        e.is_some_and(|e| e != "queue_full" && e != "shutdown_timeout")
    });
    assert_eq!(other, 0, "an unexpected processor error.type:\n{text}");
    let handed = sum(&text, &processed_name, |e| e.is_none());
    let mut export_errors: Vec<(String, u64)> = series(&text, &exported_name)
        .into_iter()
        .filter_map(|(e, v)| Some((e?, v)))
        .filter(|(_, v)| *v > 0)
        .collect();
    export_errors.sort();
    FromMetrics {
        report: SignalReport {
            exported,
            dropped,
            failed: export_failed + cut,
            // Handed to the exporter and not finished yet; items still
            // queued are not in any counter (the queue size gauge shows
            // them), and after a shutdown there are none.
            pending: handed.saturating_sub(exported + export_failed),
        },
        handed_to_exporter: handed,
        cut_at_deadline: cut,
        export_errors,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Telemetry exporting spans only (logs and metrics off unless `vars`
/// turns them on) to `receiver` over OTLP/gRPC, with `batch`.
fn telemetry(
    receiver: &OtlpReceiver,
    batch: BatchSettings,
    vars: &'static [(&'static str, &'static str)],
) -> telemetry_init::Telemetry {
    telemetry_init::builder()
        .service_name("counters-test")
        .otlp_endpoint(receiver.grpc_endpoint())
        .stdout_filter("off")
        .span_batch(batch)
        .env_lookup(move |k| {
            let set = |name: &str, default: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map_or(default, |(_, v)| v)
                    .to_string()
            };
            match k {
                "OTEL_LOGS_EXPORTER" | "OTEL_METRICS_EXPORTER" => Some(set(k, "none")),
                _ => vars
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string()),
            }
        })
        .build()
        .expect("build")
}

fn spans(telemetry: &telemetry_init::Telemetry, n: u64) {
    let _scope = telemetry.set_default();
    for i in 0..n {
        tracing::info_span!("work", i).in_scope(|| {});
    }
}

async fn wait_for_hung(handle: &ReceiverHandle, n: u64) {
    handle
        .wait_for_stats(
            "exports held by the receiver",
            Duration::from_secs(10),
            |s| s.hung_requests >= n,
        )
        .await
        .expect("the receiver holds the exports");
}

/// The case: a shutdown whose drain hits its deadline. The
/// collector holds every request without answering; two exports are on
/// the wire (the most there can be), the worker holds a third batch
/// waiting for a slot, and 70 spans are still queued when the 300 ms
/// deadline passes. Before the counters were one set, the report counted
/// those 70 as failed and the metrics nowhere.
#[test]
fn a_shutdown_cut_short_by_its_deadline_reports_what_the_metrics_show() {
    let receiver = OtlpReceiver::start_blocking().expect("receiver");
    let handle = receiver.handle();
    handle.set_behavior(Behavior::Hang);
    let telemetry = telemetry(
        &receiver,
        BatchSettings {
            max_queue_size: 1000,
            max_export_batch_size: 10,
            schedule_delay: Duration::from_secs(3600),
            // Long: nothing on the wire ends before the shutdown.
            export_timeout: Duration::from_secs(30),
        },
        &[],
    );
    let metrics = telemetry.handle().clone();
    spans(&telemetry, 100);
    let rt = runtime();
    rt.block_on(wait_for_hung(&handle, 2));

    let started = std::time::Instant::now();
    let report: ShutdownReport = rt.block_on(telemetry.shutdown(Duration::from_millis(300)));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(report.timed_out, "{report:?}");
    // 20 on the wire (pending: their exports never ended), 10 that waited
    // for a slot until the deadline (failed, timeout), 70 still queued
    // (failed, cut off).
    assert_eq!(
        report.traces,
        SignalReport {
            exported: 0,
            dropped: 0,
            failed: 80,
            pending: 20,
        },
        "{report:?}"
    );
    let seen = from_metrics(&metrics, "span");
    assert_eq!(seen.report, report.traces, "{seen:?}");
    assert_eq!(seen.cut_at_deadline, 70, "{seen:?}");
    assert_eq!(seen.handed_to_exporter, 30, "{seen:?}");
    assert_eq!(
        seen.export_errors,
        [("timeout".to_string(), 10)],
        "{seen:?}"
    );
    assert_eq!(report.traces.undelivered(), 100);
    // Nothing reached the collector.
    assert!(handle.spans().is_empty());
}

/// Queue-full drops, live and after the shutdown: a collector that holds
/// every request, a queue of 20 and 200 spans. At most 20 wait in the
/// queue, 20 are on the wire and 10 wait for a slot; the rest are
/// dropped, and both views count the same drops.
#[test]
fn queue_full_drops_are_the_same_in_the_report_and_the_metrics() {
    let receiver = OtlpReceiver::start_blocking().expect("receiver");
    let handle = receiver.handle();
    handle.set_behavior(Behavior::Hang);
    let telemetry = telemetry(
        &receiver,
        BatchSettings {
            max_queue_size: 20,
            max_export_batch_size: 10,
            schedule_delay: Duration::from_secs(3600),
            export_timeout: Duration::from_secs(30),
        },
        &[],
    );
    let metrics = telemetry.handle().clone();
    spans(&telemetry, 200);
    let rt = runtime();
    rt.block_on(wait_for_hung(&handle, 2));
    let guard = telemetry.into_guard();

    // Live: nothing has finished, so the report's pending is what the
    // metrics cannot see yet (queued); the rest agrees.
    let live = guard.report();
    let seen = from_metrics(&metrics, "span");
    assert!(live.traces.dropped >= 150, "{live:?}");
    assert!(live.traces.dropped <= 180, "{live:?}");
    assert_eq!(seen.report.dropped, live.traces.dropped, "{seen:?}");
    assert_eq!(seen.report.exported, 0);
    assert_eq!(live.traces.exported, 0);
    assert_eq!(live.traces.failed, 0, "{live:?}");
    assert_eq!(
        live.traces.dropped + live.traces.pending,
        200,
        "every span is dropped or pending: {live:?}"
    );

    let report = rt.block_on(guard.shutdown(Duration::from_millis(300)));
    let seen = from_metrics(&metrics, "span");
    assert_eq!(seen.report, report.traces, "{seen:?} vs {report:?}");
    assert_eq!(report.traces.dropped, live.traces.dropped, "{report:?}");
    assert_eq!(
        report.traces.exported
            + report.traces.dropped
            + report.traces.failed
            + report.traces.pending,
        200,
        "{report:?}"
    );
    // The two exports the collector holds are still pending; everything
    // else accepted was cut off or timed out at the deadline.
    assert_eq!(report.traces.pending, 20, "{report:?}");
}

/// Failures and `partial_success` of spans and of metric data points:
/// the report (metric data points included) and the metrics agree, with
/// the values the collector's answers imply.
#[test]
fn refusals_and_partial_success_are_the_same_in_the_report_and_the_metrics() {
    let receiver = OtlpReceiver::start_blocking().expect("receiver");
    let handle = receiver.handle();
    handle.script(
        Signal::Traces,
        [
            Answer::Fail(Failure::InvalidArgument),
            Answer::partial_success(2, "too old"),
        ],
    );
    handle.script(Signal::Metrics, [Answer::partial_success(1, "stale point")]);
    let telemetry = telemetry(
        &receiver,
        BatchSettings {
            max_queue_size: 1000,
            max_export_batch_size: 10,
            schedule_delay: Duration::from_secs(3600),
            export_timeout: Duration::from_secs(10),
        },
        // Metrics pushed at the shutdown only (the interval is long).
        &[
            ("OTEL_METRICS_EXPORTER", "otlp"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "3600000"),
        ],
    );
    let metrics = telemetry.handle().clone();
    {
        let _scope = telemetry.set_default();
        metrics::counter!("jobs.done").increment(3);
    }
    spans(&telemetry, 20);
    let rt = runtime();
    let report = rt.block_on(telemetry.shutdown(Duration::from_secs(10)));

    // Two batches of 10: one refused (10 failed), one with 2 rejected.
    assert_eq!(
        report.traces,
        SignalReport {
            exported: 8,
            dropped: 0,
            failed: 12,
            pending: 0,
        },
        "{report:?}"
    );
    let spans_seen = from_metrics(&metrics, "span");
    assert_eq!(spans_seen.report, report.traces, "{spans_seen:?}");
    assert_eq!(
        spans_seen.export_errors,
        [
            ("invalid_argument".to_string(), 10),
            ("rejected".to_string(), 2)
        ],
        "{spans_seen:?}"
    );

    // The one push, at the shutdown: one data point rejected.
    assert_eq!(handle.export_requests(Transport::Grpc, Signal::Metrics), 1);
    assert_eq!(report.metrics.failed, 1, "{report:?}");
    assert!(report.metrics.exported >= 1, "{report:?}");
    let points_seen = from_metrics(&metrics, "metric_data_point");
    assert_eq!(points_seen.report, report.metrics, "{points_seen:?}");
    assert_eq!(
        points_seen.export_errors,
        [("rejected".to_string(), 1)],
        "{points_seen:?}"
    );
    assert!(!report.is_complete());
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.starts_with("metrics: last export error: collector rejected 1")),
        "{report:?}"
    );
}
