//! Events inside a request become span events of its SERVER span; an error
//! event carrying an error value becomes an `exception` event. Over real
//! sockets: an axum server with the layer, a reqwest client, and the test
//! kit's OTLP receiver decoding what the exporter sent. Each test has its
//! own telemetry in the scoped mode (`Telemetry::set_default`) on the
//! test's current-thread runtime, where the server and client tasks run.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use telemetry_init::config::BatchSettings;
use telemetry_init_testing::{OtlpReceiver, ReceivedLog, ReceivedSpan, SpanKind, StatusCode};

#[derive(Debug)]
struct Unreachable;

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("issuer unreachable")
    }
}

impl std::error::Error for Unreachable {}

#[derive(Debug)]
struct CardDeclined {
    source: Unreachable,
}

impl std::fmt::Display for CardDeclined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for CardDeclined {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn app() -> Router {
    Router::new()
        .route(
            "/pay",
            get(|| async {
                tracing::info!("charging the card");
                let err = CardDeclined {
                    source: Unreachable,
                };
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    order = 42,
                    "payment failed"
                );
                "declined, retry later"
            }),
        )
        .route(
            "/noisy",
            get(|| async {
                for i in 0..10_i64 {
                    tracing::warn!(
                        i,
                        password = "Sx-secret-1",
                        detail = "0123456789abcdefghijklmnopqrstuvwxyz",
                        "slow downstream"
                    );
                }
                "ok"
            }),
        )
        .layer(telemetry_init::layer())
}

/// A telemetry exporting fast to `receiver`, with `vars` as its environment.
fn telemetry(receiver: &OtlpReceiver, vars: &[(&str, &str)]) -> telemetry_init::Telemetry {
    let fast = BatchSettings {
        max_queue_size: 4096,
        max_export_batch_size: 256,
        schedule_delay: Duration::from_millis(50),
        export_timeout: Duration::from_secs(5),
    };
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    telemetry_init::builder()
        .service_name("span-events-test")
        .stdout_filter("off")
        .otlp_endpoint(receiver.grpc_endpoint())
        .span_batch(fast)
        .log_batch(fast)
        .env_lookup(move |k| vars.get(k).cloned())
        .build()
        .expect("build")
}

async fn serve() -> String {
    common::serve(app()).await
}

async fn get_with(base: &str, path: &str, rid: &str) {
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("x-request-id", rid)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Requests `path`, shuts the telemetry down (everything flushed), and
/// returns the SERVER span of the request and every log record received.
async fn request(
    receiver: &OtlpReceiver,
    telemetry: telemetry_init::Telemetry,
    path: &str,
) -> (ReceivedSpan, Vec<ReceivedLog>) {
    {
        let _scope = telemetry.set_default();
        let base = serve().await;
        get_with(&base, path, "rid-events").await;
    }
    let report = telemetry.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_complete(), "{report}");
    let handle = receiver.handle();
    let mut spans: Vec<_> = handle
        .spans()
        .into_iter()
        .filter(|s| s.kind == SpanKind::Server)
        .collect();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    (spans.remove(0), handle.logs())
}

fn attr<'a>(
    attrs: &'a std::collections::BTreeMap<String, telemetry_init_testing::Value>,
    k: &str,
) -> Option<&'a str> {
    attrs.get(k).and_then(|v| v.as_str())
}

/// Acceptance 2 of issue 12: an `error!` with an error value inside a
/// request is an `exception` event on the exported SERVER span and exactly
/// one exported log record; the INFO event before it is a log record only.
#[tokio::test]
async fn an_error_in_a_request_is_an_exception_event_and_one_log_record() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let t = telemetry(&receiver, &[]);
    let (server, logs) = request(&receiver, t, "/pay").await;

    assert_eq!(server.events.len(), 1, "{:#?}", server.events);
    let e = &server.events[0];
    assert_eq!(e.name, "exception");
    assert_eq!(attr(&e.attributes, "exception.type"), Some("CardDeclined"));
    assert_eq!(
        attr(&e.attributes, "exception.message"),
        Some("card declined: issuer unreachable")
    );
    assert!(
        !e.attributes.contains_key("exception.stacktrace"),
        "no backtrace is available from a dyn Error: {e:?}"
    );
    assert_eq!(attr(&e.attributes, "message"), Some("payment failed"));
    assert_eq!(attr(&e.attributes, "level"), Some("ERROR"));
    assert_eq!(e.attributes.get("order").and_then(|v| v.as_i64()), Some(42));
    assert!(
        e.time_unix_nanos >= server.start_unix_nanos && e.time_unix_nanos <= server.end_unix_nanos
    );
    // The response was a 200: an error log does not make the span an error.
    assert_ne!(server.status_code, StatusCode::Error);

    let failed: Vec<_> = logs
        .iter()
        .filter(|l| l.body_str() == Some("payment failed"))
        .collect();
    assert_eq!(failed.len(), 1, "exactly one log record: {logs:#?}");
    assert_eq!(
        failed[0].trace_id.as_deref(),
        Some(server.trace_id.as_str())
    );
    assert_eq!(failed[0].span_id.as_deref(), Some(server.span_id.as_str()));
    assert_eq!(failed[0].severity_text, "ERROR");
    let charging = logs
        .iter()
        .filter(|l| l.body_str() == Some("charging the card"))
        .count();
    assert_eq!(
        charging, 1,
        "the INFO event is a log record, not a span event"
    );
}

/// Span events follow the span limits (`OTEL_SPAN_EVENT_COUNT_LIMIT`, the
/// attribute value length) and the redaction policy; the log records are
/// all exported, once each.
#[tokio::test]
async fn span_events_are_bounded_and_redacted() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let t = telemetry(
        &receiver,
        &[
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "4"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16"),
        ],
    );
    let (server, logs) = request(&receiver, t, "/noisy").await;

    assert_eq!(server.events.len(), 4, "{:#?}", server.events);
    for e in &server.events {
        assert_eq!(e.name, "slow downstream");
        assert_eq!(attr(&e.attributes, "level"), Some("WARN"));
        assert_eq!(attr(&e.attributes, "password"), Some("REDACTED"));
        assert_eq!(attr(&e.attributes, "detail"), Some("0123456789abcdef"));
    }
    let everything = serde_json::to_string(&server).unwrap();
    assert!(!everything.contains("Sx-secret-1"), "{everything}");
    let slow = logs
        .iter()
        .filter(|l| l.body_str() == Some("slow downstream"))
        .count();
    assert_eq!(slow, 10, "every event is still one log record");
}

/// `TELEMETRY_SPAN_EVENTS_LEVEL=off` turns span events off (the log records
/// stay); `info` adds INFO events.
#[tokio::test]
async fn the_level_is_configurable() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let t = telemetry(&receiver, &[("TELEMETRY_SPAN_EVENTS_LEVEL", "off")]);
    let (server, logs) = request(&receiver, t, "/pay").await;
    assert!(server.events.is_empty(), "{:#?}", server.events);
    assert_eq!(
        logs.iter()
            .filter(|l| l.body_str() == Some("payment failed"))
            .count(),
        1
    );

    let receiver = OtlpReceiver::start().await.unwrap();
    let t = telemetry(&receiver, &[("TELEMETRY_SPAN_EVENTS_LEVEL", "info")]);
    let (server, _) = request(&receiver, t, "/pay").await;
    let names: Vec<_> = server.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["charging the card", "exception"]);
}
