//! Attribute limits from the `OTEL_*_LIMIT` variables and export requests
//! that fit the collector's size limit, over real sockets: spans and log
//! records go to a real OTLP receiver that decodes the protobuf and can
//! refuse requests over a size, as the OpenTelemetry Collector does
//! (gRPC `RESOURCE_EXHAUSTED`).

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _};
use telemetry_init::config::BatchSettings;
use telemetry_init_testing::{OtlpReceiver, ReceivedSpan, Signal};
use tokio::sync::Mutex;

/// Our request size limit in this test (the variable's minimum is 64 KiB).
const MAX_REQUEST: usize = 256 * 1024;

struct Env {
    receiver: OtlpReceiver,
    _guard: telemetry_init::TelemetryGuard,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let receiver = OtlpReceiver::start_blocking().expect("receiver");
        let fast = BatchSettings {
            max_queue_size: 4096,
            max_export_batch_size: 256,
            schedule_delay: Duration::from_millis(50),
            export_timeout: Duration::from_secs(10),
        };
        let vars = [
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "30000"),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "2"),
            ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "4"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16"),
            ("TELEMETRY_EXPORT_MAX_REQUEST_BYTES", "262144"),
        ];
        let guard = telemetry_init::builder()
            .service_name("export-limits-test")
            .stdout_filter("error")
            .export_filter("info")
            .otlp_endpoint(receiver.grpc_endpoint())
            .span_batch(fast)
            .log_batch(fast)
            .env_lookup(move |k| {
                vars.iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            })
            .install()
            .expect("install");
        Env {
            receiver,
            _guard: guard,
        }
    })
}

/// Steps that change the receiver's size limit run one at a time.
static RECEIVER_LIMIT: Mutex<()> = Mutex::const_new(());

/// Ends one span named `name` with `attrs`, through the SDK tracer.
fn span(name: &str, attrs: Vec<KeyValue>) {
    let mut s = opentelemetry::global::tracer("export-limits").start(name.to_string());
    s.set_attributes(attrs);
    s.end();
}

async fn spans_named(prefix: &str, n: usize) -> Vec<ReceivedSpan> {
    let prefix = prefix.to_string();
    env()
        .receiver
        .handle()
        .wait_for_spans_where(n, Duration::from_secs(20), move |s| {
            s.name.starts_with(&prefix)
        })
        .await
        .unwrap_or_else(|e| panic!("spans: {e}"))
}

/// The value of the self-health counter of spans not exported because they
/// were too large.
fn too_large_spans() -> u64 {
    let (_, text) = telemetry_init::handle().unwrap().render_metrics(None);
    text.lines()
        .filter(|l| l.starts_with("otel_sdk_exporter_span_exported_total{"))
        .filter(|l| l.contains("error_type=\"too_large\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_and_log_attribute_limits_apply() {
    let _ = env();
    // A string over the span limit (counted in characters), an array cut
    // element by element, an event with more attributes than allowed.
    let mut s = opentelemetry::global::tracer("export-limits").start("limits-span");
    s.set_attribute(KeyValue::new("long", "é".repeat(50_000)));
    s.set_attribute(KeyValue::new(
        "list",
        opentelemetry::Value::Array(opentelemetry::Array::String(vec![
            opentelemetry::StringValue::from("x".repeat(30_001)),
            opentelemetry::StringValue::from("short"),
        ])),
    ));
    s.add_event(
        "ev",
        (0..5).map(|i| KeyValue::new(format!("e{i}"), i)).collect(),
    );
    s.end();
    let got = spans_named("limits-span", 1).await.remove(0);
    let long = got.attr("long").and_then(|v| v.as_str()).unwrap();
    assert_eq!(long.chars().count(), 30_000);
    assert!(long.chars().all(|c| c == 'é'));
    let list = format!("{:?}", got.attr("list").unwrap());
    assert!(list.contains(&"x".repeat(30_000)) && !list.contains(&"x".repeat(30_001)));
    assert!(list.contains("short"));
    assert_eq!(got.events[0].attributes.len(), 2, "{:?}", got.events);

    // Log records: at most 4 attributes, values cut to 16 characters
    // (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, as no log-specific one is set).
    let big = "ü".repeat(1000);
    tracing::info!(
        a1 = big.as_str(),
        a2 = big.as_str(),
        a3 = 3,
        a4 = big.as_str(),
        a5 = big.as_str(),
        a6 = big.as_str(),
        "limited log record"
    );
    let log = env()
        .receiver
        .handle()
        .wait_for_logs_where(1, Duration::from_secs(20), |l| {
            l.body_str() == Some("limited log record")
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(log.attributes.len(), 4, "{:?}", log.attributes);
    assert_eq!(
        log.attr("a1").and_then(|v| v.as_str()),
        Some("ü".repeat(16).as_str())
    );
    assert_eq!(log.attr("a3").and_then(|v| v.as_i64()), Some(3));
    assert_eq!(log.attr("a5"), None, "over the count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_split_to_fit_and_a_refusal_splits_again() {
    let _lock = RECEIVER_LIMIT.lock().await;
    let handle = env().receiver.handle();
    let before = too_large_spans();

    // 60 spans of ~20 KB: 1.2 MB in one batch, sent as requests that each
    // fit our 256 KiB limit.
    for i in 0..60 {
        span(
            &format!("fit-{i}"),
            vec![KeyValue::new("blob", "f".repeat(20_000))],
        );
    }
    let got = spans_named("fit-", 60).await;
    assert_eq!(got.len(), 60);
    let largest = handle.largest_request_bytes(Signal::Traces);
    assert!(largest as usize <= MAX_REQUEST, "a {largest}-byte request");
    assert!(
        largest > 100 * 1024,
        "requests were not needlessly tiny: {largest}"
    );
    assert_eq!(handle.too_large_requests(), 0);

    // A collector with a smaller limit than ours refuses them: each refused
    // request is split and sent again, and nothing is lost.
    handle.set_max_request_bytes(Some(90 * 1024));
    for i in 0..60 {
        span(
            &format!("refit-{i}"),
            vec![KeyValue::new("blob", "r".repeat(20_000))],
        );
    }
    let got = spans_named("refit-", 60).await;
    handle.set_max_request_bytes(None);
    assert_eq!(got.len(), 60);
    assert!(handle.too_large_requests() > 0, "the receiver refused some");
    assert_eq!(too_large_spans(), before, "no span was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_span_costs_no_other_span() {
    let _lock = RECEIVER_LIMIT.lock().await;
    let _ = env();
    let before = too_large_spans();
    // Over 256 KiB alone (ten values at the 30 000-character limit),
    // in the same batch as 30 ordinary spans.
    for i in 0..15 {
        span(&format!("neighbour-{i}"), vec![KeyValue::new("k", "v")]);
    }
    span(
        "neighbour-huge",
        (0..10)
            .map(|i| KeyValue::new(format!("blob{i}"), "h".repeat(30_000)))
            .collect(),
    );
    for i in 15..30 {
        span(&format!("neighbour-{i}"), vec![KeyValue::new("k", "v")]);
    }
    let got = spans_named("neighbour-", 30).await;
    assert!(got.iter().all(|s| s.name != "neighbour-huge"));
    // Counted in the self-health metrics, once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while too_large_spans() == before && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(too_large_spans() - before, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = env().receiver.handle().spans();
    assert_eq!(
        all.iter()
            .filter(|s| s.name.starts_with("neighbour-"))
            .count(),
        30,
        "each delivered once, the huge one never"
    );
}
