//! The scoped mode (`Telemetry::set_default`): each test builds its own
//! telemetry, exporting to its own receiver, and makes it the test thread's
//! default. These tests used to be one test binary each, because
//! `install()` is process-global.

mod common;

use std::time::Duration;

use telemetry_init::config::BatchSettings;
use telemetry_init_testing::{Behavior, OtlpReceiver, Signal, SpanKind, Transport};

/// Our own OTLP/gRPC trace path (hand-encoded protobuf on a tonic client)
/// honours the exporter options: gzip, headers, resource, and the shutdown
/// flush. A real receiver decodes what arrives.
#[test]
fn gzip_spans_arrive_decoded_with_their_resource() {
    let receiver = OtlpReceiver::start_blocking().expect("receiver");
    let telemetry = telemetry_init::builder()
        .service_name("grpc-export-test")
        .otlp_endpoint(receiver.grpc_endpoint())
        .stdout_filter("off")
        .env_lookup(|k| match k {
            "OTEL_EXPORTER_OTLP_COMPRESSION" => Some("gzip".into()),
            "OTEL_EXPORTER_OTLP_HEADERS" => Some("x-tenant=acme".into()),
            "OTEL_RESOURCE_ATTRIBUTES" => Some("deployment.environment.name=test".into()),
            _ => None,
        })
        .build()
        .expect("build");
    let scope = telemetry.set_default();
    for i in 0..700_i64 {
        let span = tracing::info_span!("work", otel.kind = "server", i, note = "é\"quoted\"");
        span.in_scope(|| tracing::info!("inside"));
    }
    drop(scope);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(telemetry.shutdown(Duration::from_secs(10)));
    assert_eq!(report.traces.exported, 700, "{report:?}");
    assert_eq!(report.traces.undelivered(), 0, "{report:?}");

    let handle = receiver.handle();
    let spans = handle.spans();
    let work: Vec<_> = spans.iter().filter(|s| s.name == "work").collect();
    assert_eq!(work.len(), 700);
    let s = work
        .iter()
        .find(|s| s.attr("i").and_then(|v| v.as_i64()) == Some(699));
    let s = s.expect("the last span, with its integer attribute");
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!(s.attr("note").and_then(|v| v.as_str()), Some("é\"quoted\""));
    assert_eq!(
        s.resource.get("service.name").and_then(|v| v.as_str()),
        Some("grpc-export-test")
    );
    assert_eq!(
        s.resource
            .get("deployment.environment.name")
            .and_then(|v| v.as_str()),
        Some("test")
    );
    assert!(s.end_unix_nanos >= s.start_unix_nanos);
    assert!(handle.export_requests(Transport::Grpc, Signal::Traces) >= 2);
    assert!(handle.stats().gzip_requests >= 2, "{:?}", handle.stats());
    // The exporter names itself, as OTLP asks.
    let ua = handle.last_user_agent(Signal::Traces).unwrap_or_default();
    assert!(
        ua.starts_with("OTel-OTLP-Exporter-Rust telemetry-init/"),
        "{ua}"
    );
}

/// Our OTLP/gRPC trace client retries a collector answering `UNAVAILABLE`
/// within the export's time budget (the SDK's recommended policy), so a
/// short outage loses nothing. (A collector that stays down fails the batch
/// after the retries, counted: `examples/demo/tests/faults.rs`.)
#[test]
fn a_short_unavailable_spell_is_retried_and_loses_nothing() {
    let receiver = OtlpReceiver::start_blocking().expect("receiver");
    let handle = receiver.handle();
    handle.set_behavior(Behavior::Unavailable);
    let telemetry = telemetry_init::builder()
        .service_name("grpc-retry-test")
        .otlp_endpoint(receiver.grpc_endpoint())
        .stdout_filter("off")
        .span_batch(BatchSettings {
            max_queue_size: 1000,
            max_export_batch_size: 100,
            schedule_delay: Duration::from_millis(20),
            export_timeout: Duration::from_secs(10),
        })
        .env_lookup(|_| None)
        .build()
        .expect("build");
    {
        let _scope = telemetry.set_default();
        for i in 0..10_i64 {
            tracing::info_span!("work", otel.kind = "server", i).in_scope(|| {});
        }
    }
    // The first export is refused; the collector is back before the retries
    // (100 ms, 200 ms, 400 ms plus jitter) run out.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        handle
            .wait_for_stats("a refused export", Duration::from_secs(5), |s| {
                s.unavailable_requests >= 1
            })
            .await
            .expect("the first export reached the receiver");
    });
    std::thread::sleep(Duration::from_millis(150));
    handle.set_behavior(Behavior::Accept);

    let report = rt.block_on(telemetry.shutdown(Duration::from_secs(10)));
    assert_eq!(report.traces.exported, 10, "{report:?}");
    assert_eq!(report.traces.failed, 0, "{report:?}");
    let spans = handle.spans();
    assert_eq!(spans.iter().filter(|s| s.name == "work").count(), 10);
    assert!(handle.stats().unavailable_requests >= 1);
    assert!(handle.export_requests(Transport::Grpc, Signal::Traces) >= 2);
}

/// Two scoped telemetries on two threads at once: each receiver gets only
/// its own thread's spans and log records, and once a scope ends its
/// thread's spans go to the previous default (here: nowhere).
#[test]
fn scopes_on_two_threads_do_not_mix() {
    let run = |name: &'static str| {
        std::thread::spawn(move || {
            let receiver = OtlpReceiver::start_blocking().expect("receiver");
            let telemetry = telemetry_init::builder()
                .service_name(name)
                .otlp_endpoint(receiver.grpc_endpoint())
                .stdout_filter("off")
                .export_filter("info")
                .env_lookup(|_| None)
                .build()
                .expect("build");
            {
                let _scope = telemetry.set_default();
                for i in 0..20_i64 {
                    tracing::info_span!("scoped", otel.kind = "server", i, thread = name)
                        .in_scope(|| tracing::info!(thread = name, "inside"));
                }
                metrics::counter!("scoped.work", "thread" => name).increment(20);
            }
            // Outside the scope: not exported by anyone.
            tracing::info_span!("after", thread = name).in_scope(|| tracing::info!("after"));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let metrics_text = telemetry.handle().metrics().render_prometheus();
            let report = rt.block_on(telemetry.shutdown(Duration::from_secs(10)));
            (receiver, report, metrics_text)
        })
    };
    let (a, b) = (run("thread-a"), run("thread-b"));
    for (name, joined) in [("thread-a", a), ("thread-b", b)] {
        let (receiver, report, metrics_text) = joined.join().expect("thread");
        assert_eq!(report.traces.exported, 20, "{name}: {report:?}");
        let spans = receiver.handle().spans();
        assert_eq!(spans.len(), 20, "{name}: {spans:#?}");
        assert!(spans.iter().all(|s| s.name == "scoped"
            && s.attr("thread").and_then(|v| v.as_str()) == Some(name)
            && s.service_name() == Some(name)));
        let logs = receiver.handle().logs();
        let inside: Vec<_> = logs
            .iter()
            .filter(|l| l.body_str() == Some("inside"))
            .collect();
        assert_eq!(inside.len(), 20, "{name}");
        assert!(
            inside
                .iter()
                .all(|l| l.attr("thread").and_then(|v| v.as_str()) == Some(name))
        );
        assert!(logs.iter().all(|l| l.body_str() != Some("after")), "{name}");
        // The thread's metrics went to its own recorder only.
        assert!(
            metrics_text.contains(&format!("scoped_work_total{{thread=\"{name}\"")),
            "{name}: {metrics_text}"
        );
        let other = if name == "thread-a" {
            "thread-b"
        } else {
            "thread-a"
        };
        assert!(!metrics_text.contains(other), "{name}: {metrics_text}");
    }
}

/// An export filter with a span-scoped directive (`[checkout]=debug`) still
/// sees which span is entered: the event export is given span activity
/// behind an `EnvFilter` (it is not behind `Targets`, which needs none). A
/// static filter keeps its plain target/level meaning.
#[test]
fn span_scoped_export_directives_follow_the_entered_span() {
    let run = |directives: &str| {
        let receiver = OtlpReceiver::start_blocking().expect("receiver");
        let telemetry = telemetry_init::builder()
            .service_name("span-scoped-filter-test")
            .otlp_endpoint(receiver.grpc_endpoint())
            .stdout_filter("off")
            .export_filter(directives)
            .env_lookup(|_| None)
            .build()
            .expect("build");
        let scope = telemetry.set_default();
        tracing::info_span!("checkout").in_scope(|| tracing::debug!("inside checkout"));
        tracing::info_span!("browse").in_scope(|| tracing::debug!("inside browse"));
        tracing::debug!("outside");
        tracing::info!("info outside");
        drop(scope);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(telemetry.shutdown(Duration::from_secs(10)));
        let mut bodies: Vec<String> = receiver
            .handle()
            .logs()
            .iter()
            .filter_map(|l| l.body_str().map(str::to_string))
            // The start-up line is not this test's.
            .filter(|b| b.contains("inside") || b.contains("outside"))
            .collect();
        bodies.sort();
        bodies
    };
    assert_eq!(
        run("info,[checkout]=debug"),
        ["info outside", "inside checkout"]
    );
    assert_eq!(run("info"), ["info outside"]);
    assert_eq!(
        run("debug"),
        [
            "info outside",
            "inside browse",
            "inside checkout",
            "outside"
        ]
    );
}

/// `OTEL_SDK_DISABLED=true`: no span is recorded, and the caller's context
/// passes through to outgoing calls unchanged (`traceparent` with the
/// caller's own parent-id, `tracestate`, baggage), as the OpenTelemetry API
/// does without an SDK; and a request without a caller's context forwards
/// none. The service and the downstream run on this test's thread (a
/// current-thread runtime), where the scoped telemetry is the default.
#[test]
fn with_the_sdk_disabled_the_callers_context_passes_through() {
    use axum::Router;
    use axum::routing::get;
    use telemetry_init::http::client::TracedRequest;

    let telemetry = telemetry_init::builder()
        .service_name("sdk-disabled-test")
        .stdout_filter("off")
        .env_lookup(|k| (k == "OTEL_SDK_DISABLED").then(|| "true".to_string()))
        .build()
        .expect("build");
    let scope = telemetry.set_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (downstream, seen) = common::recording_downstream().await;
        let service = common::serve(
            Router::new()
                .route(
                    "/",
                    get(move || async move {
                        reqwest::Client::new()
                            .get(&downstream)
                            .send_traced()
                            .await
                            .unwrap();
                        "done"
                    }),
                )
                .layer(telemetry_init::layer()),
        )
        .await;
        common::call(&service, "rid-sdk-off", "01").await;
        let traceparent = format!("00-{}-{}-01", common::TID, common::PID);
        reqwest::Client::new().get(&service).send().await.unwrap();

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let h = |i: usize, name: &str| seen[i].get(name).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(h(0, "traceparent"), Some(traceparent));
        assert_eq!(h(0, "tracestate").as_deref(), Some("congo=t61rcWkgMzE"));
        assert_eq!(h(0, "baggage").as_deref(), Some("tenant=acme"));
        // No caller's context, no SDK: nothing to forward (but the request id).
        assert_eq!(h(1, "traceparent"), None);
        assert!(h(1, "x-request-id").is_some());
    });
    drop(scope);
    let report = rt.block_on(telemetry.shutdown(Duration::from_secs(5)));
    assert_eq!(report.traces.exported, 0, "{report:?}");
}
