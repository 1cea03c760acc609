//! The `assert` module on telemetry produced by the real SDK and received
//! over real sockets: each assertion passes on good telemetry and fails on
//! bad telemetry with a message that names the problem.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use common::{InRuntime, Route, TIMEOUT, log_exporter, metric_exporter, resource, span_exporter};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, TraceContextExt as _, TraceId, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use telemetry_init_testing::{OtlpReceiver, SpanKind as Kind, Transport, assert};

const ROUTE: Route = Route {
    transport: Transport::Grpc,
    gzip: true,
};

struct Services {
    rx: OtlpReceiver,
    tracers: HashMap<&'static str, SdkTracerProvider>,
    loggers: HashMap<&'static str, SdkLoggerProvider>,
}

async fn services(names: &[&'static str]) -> Services {
    let rx = OtlpReceiver::start().await.unwrap();
    let mut tracers = HashMap::new();
    let mut loggers = HashMap::new();
    for name in names {
        tracers.insert(
            *name,
            SdkTracerProvider::builder()
                .with_simple_exporter(span_exporter(&rx, ROUTE, TIMEOUT))
                .with_resource(resource(name))
                .build(),
        );
        loggers.insert(
            *name,
            SdkLoggerProvider::builder()
                .with_simple_exporter(log_exporter(&rx, ROUTE))
                .with_resource(resource(name))
                .build(),
        );
    }
    Services {
        rx,
        tracers,
        loggers,
    }
}

/// `frontend` serves GET /checkout and calls `backend` (POST /pay) with W3C
/// headers; `orphan` is called the same way but ignores the headers.
fn run_calls(
    tracers: &HashMap<&str, SdkTracerProvider>,
    loggers: &HashMap<&str, SdkLoggerProvider>,
) {
    let propagator = TraceContextPropagator::new();
    let front = tracers["frontend"].tracer("frontend");
    let back = tracers["backend"].tracer("backend");
    let orphan = tracers["orphan"].tracer("orphan");
    let back_logger = loggers["backend"].logger("backend");
    let server = front
        .span_builder("GET /checkout")
        .with_kind(SpanKind::Server)
        .start(&front);
    let server_cx = Context::current_with_span(server);
    for (callee, callee_name) in [(&back, "backend"), (&orphan, "orphan")] {
        let client = front
            .span_builder("POST /pay")
            .with_kind(SpanKind::Client)
            .start_with_context(&front, &server_cx);
        let client_cx = server_cx.with_span(client);
        let mut headers = HashMap::new();
        propagator.inject_context(&client_cx, &mut headers);
        assert!(headers["traceparent"].starts_with("00-"));
        // The callee side.
        let parent = if callee_name == "backend" {
            propagator.extract(&headers)
        } else {
            Context::new()
        };
        let span = callee
            .span_builder("POST /pay")
            .with_kind(SpanKind::Server)
            .start_with_context(callee, &parent);
        let cx = parent.with_span(span);
        if callee_name == "backend" {
            let _guard = cx.clone().attach();
            let mut rec = back_logger.create_log_record();
            rec.set_body(AnyValue::from("payment accepted"));
            rec.set_severity_number(Severity::Info);
            back_logger.emit(rec);
        }
        cx.span().end();
        client_cx.span().end();
    }
    server_cx.span().end();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_propagated_passes_and_fails_with_reasons() {
    let s = services(&["frontend", "backend", "orphan"]).await;
    let (tracers, loggers) = (s.tracers.clone(), s.loggers.clone());
    tokio::task::spawn_blocking(move || run_calls(&tracers, &loggers))
        .await
        .unwrap();
    let spans = s.rx.wait_for_spans(5, TIMEOUT).await.unwrap();
    let logs = s.rx.wait_for_logs(1, TIMEOUT).await.unwrap();

    assert::trace_propagated(&spans, "frontend", "backend").unwrap();

    let err = assert::trace_propagated(&spans, "frontend", "orphan").unwrap_err();
    assert_eq!(err.assertion, "trace_propagated");
    let msg = err.to_string();
    assert!(msg.contains("SERVER span `POST /pay`"), "{msg}");
    assert!(
        msg.contains("of `orphan` has no parent: it started a new trace"),
        "{msg}"
    );

    let err = assert::trace_propagated(&spans, "frontend", "nobody").unwrap_err();
    assert!(
        err.to_string().contains("no SERVER span from service `nobody` was received (no span at all from `nobody`; services seen: [backend, frontend, orphan])"),
        "{err}"
    );
    // Reversed roles: backend has no CLIENT span.
    let err = assert::trace_propagated(&spans, "backend", "frontend").unwrap_err();
    assert!(
        err.to_string().contains(
            "no CLIENT span from service `backend` was received (`backend` sent only SERVER spans"
        ),
        "{err}"
    );

    // The log emitted inside backend's span is correlated.
    assert::logs_correlated(&logs, &spans).unwrap();

    // The snapshot nests frontend SERVER > frontend CLIENT > backend SERVER (+ its log).
    let snap = s.rx.snapshot_json();
    let backend_span = spans
        .iter()
        .find(|x| x.service_name() == Some("backend"))
        .unwrap();
    let trace = snap["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trace_id"] == backend_span.trace_id.as_str())
        .unwrap();
    assert_eq!(
        trace["span_count"], 4,
        "checkout, 2 client calls, backend server"
    );
    let root = &trace["root_spans"][0];
    assert_eq!(root["name"], "GET /checkout");
    assert_eq!(root["kind"], "SERVER");
    let calls = root["children"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    let served: Vec<&serde_json::Value> = calls
        .iter()
        .flat_map(|c| c["children"].as_array().unwrap())
        .collect();
    assert_eq!(served.len(), 1, "only backend joined the trace");
    assert_eq!(served[0]["resource"]["service.name"], "backend");
    assert_eq!(served[0]["logs"][0]["body"], "payment accepted");
    // The orphan's span is its own trace.
    let orphan_span = spans
        .iter()
        .find(|x| x.service_name() == Some("orphan"))
        .unwrap();
    assert_ne!(orphan_span.trace_id, backend_span.trace_id);
    assert_eq!(orphan_span.kind, Kind::Server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_correlated_fails_on_dangling_and_missing_ids() {
    let s = services(&["svc"]).await;
    let (tp, lp) = (s.tracers["svc"].clone(), s.loggers["svc"].clone());
    tokio::task::spawn_blocking(move || {
        let tracer = tp.tracer("svc");
        let logger = lp.logger("svc");
        // A record pointing at a trace that was never exported.
        let mut dangling = logger.create_log_record();
        dangling.set_body(AnyValue::from("dangling"));
        dangling.set_trace_context(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            None,
        );
        logger.emit(dangling);
        // A record emitted while a span is open, without its context.
        let mut span = tracer.start("busy");
        std::thread::sleep(Duration::from_millis(5));
        let mut lost = logger.create_log_record();
        lost.set_body(AnyValue::from("lost context"));
        lost.set_timestamp(SystemTime::now());
        logger.emit(lost);
        std::thread::sleep(Duration::from_millis(5));
        span.end();
    })
    .await
    .unwrap();
    let spans = s.rx.wait_for_spans(1, TIMEOUT).await.unwrap();
    let logs = s.rx.wait_for_logs(2, TIMEOUT).await.unwrap();
    let err = assert::logs_correlated(&logs, &spans).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("log record `dangling` (service `svc`) refers to trace 0af7651916cd43dd8448eb211c80319c (span b7ad6b7169203331), but no span of that trace was received"),
        "{msg}"
    );
    assert!(
        msg.contains(
            "log record `lost context` (service `svc`) was emitted during INTERNAL span `busy`"
        ),
        "{msg}"
    );
    assert!(msg.contains("carries no trace id"), "{msg}");
    // The reference-only check does not use the time heuristic.
    let err = assert::logs_reference_received_spans(&logs, &spans).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    let only_lost: Vec<_> = logs
        .iter()
        .filter(|l| l.body_str() == Some("lost context"))
        .cloned()
        .collect();
    assert::logs_reference_received_spans(&only_lost, &spans).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn slo_metrics_present_flags_missing_metrics_and_unbounded_labels() {
    let rx = OtlpReceiver::start().await.unwrap();
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(InRuntime {
        inner: metric_exporter(
            &rx,
            Route {
                transport: Transport::HttpProtobuf,
                gzip: false,
            },
        ),
        handle: tokio::runtime::Handle::current(),
    })
    .with_interval(Duration::from_secs(3600))
    .build();
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource("slo"))
        .build();
    let meter = provider.meter("slo");
    let good = meter.u64_counter("http.server.request.count").build();
    good.add(
        1,
        &[
            KeyValue::new("http.route", "/users/{id}"),
            KeyValue::new("http.response.status_code", 200),
        ],
    );
    let bad = meter.f64_histogram("http.server.request.duration").build();
    bad.record(
        0.1,
        &[
            KeyValue::new("http.route", "/users/48213"),
            KeyValue::new("user.id", "u-1"),
        ],
    );
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.force_flush())
        .await
        .unwrap()
        .unwrap();
    rx.wait_for_metric("http.server.request.duration", TIMEOUT)
        .await
        .unwrap();
    let metrics = rx.metrics();
    let allowed = ["http.route", "http.response.status_code"];

    assert::slo_metrics_present(&metrics, &["http.server.request.count"], &allowed).unwrap();

    let err = assert::slo_metrics_present(
        &metrics,
        &[
            "http.server.request.count",
            "http.server.request.duration",
            "slo.error_budget.remaining",
        ],
        &allowed,
    )
    .unwrap_err();
    assert_eq!(err.problems.len(), 3, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("metric `slo.error_budget.remaining` was not received (received: [http.server.request.count, http.server.request.duration])"),
        "{msg}"
    );
    assert!(
        msg.contains("metric `http.server.request.duration` has label `user.id` (e.g. `u-1`), which is not in the allowlist [http.route, http.response.status_code]"),
        "{msg}"
    );
    assert!(
        msg.contains("metric `http.server.request.duration` label `http.route` has value `/users/48213`, which looks like a raw path with ids"),
        "{msg}"
    );
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secrets_passes_redacted_and_flags_leaks() {
    let s = services(&["clean", "leaky"]).await;
    let (tracers, loggers) = (s.tracers.clone(), s.loggers.clone());
    tokio::task::spawn_blocking(move || {
        let clean = tracers["clean"].tracer("clean");
        let mut span = clean.start("GET /login");
        span.set_attribute(KeyValue::new(
            "url.full",
            "https://shop.test/login?user=bob&token=REDACTED",
        ));
        span.set_attribute(KeyValue::new(
            "http.request.header.authorization",
            "REDACTED",
        ));
        span.set_attribute(KeyValue::new("note", "Basic authentication is enabled"));
        span.end();
        let clean_logger = loggers["clean"].logger("clean");
        let mut rec = clean_logger.create_log_record();
        rec.set_body(AnyValue::from("login with Bearer REDACTED ok"));
        clean_logger.emit(rec);

        let leaky = tracers["leaky"].tracer("leaky");
        let mut span = leaky.start("GET /account");
        span.set_attribute(KeyValue::new(
            "http.request.header.authorization",
            "Bearer eyJhbGciOi.sig",
        ));
        span.set_attribute(KeyValue::new(
            "url.full",
            "https://shop.test/account?api_key=k-77f1e9&page=2",
        ));
        span.end();
        let leaky_logger = loggers["leaky"].logger("leaky");
        let mut rec = leaky_logger.create_log_record();
        rec.set_body(AnyValue::from("retrying POST /login password=hunter22"));
        rec.add_attribute("cookie.raw", "sessionid=8f2a9c1d77; Path=/; HttpOnly");
        leaky_logger.emit(rec);
    })
    .await
    .unwrap();
    let spans = s.rx.wait_for_spans(2, TIMEOUT).await.unwrap();
    let logs = s.rx.wait_for_logs(2, TIMEOUT).await.unwrap();
    let (clean_spans, leaky_spans): (Vec<_>, Vec<_>) = spans
        .into_iter()
        .partition(|x| x.service_name() == Some("clean"));
    let (clean_logs, leaky_logs): (Vec<_>, Vec<_>) = logs
        .into_iter()
        .partition(|x| x.service_name() == Some("clean"));

    assert::no_secrets(&clean_spans, &clean_logs).unwrap();

    let err = assert::no_secrets(&leaky_spans, &leaky_logs).unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.problems.len(), 4, "{msg}");
    assert!(
        msg.contains("has attribute `http.request.header.authorization`, which names a credential"),
        "{msg}"
    );
    assert!(
        msg.contains("attribute `url.full` contains parameter `api_key=` with an unredacted value"),
        "{msg}"
    );
    assert!(
        msg.contains("log record #0 (service `leaky`, severity 0"),
        "{msg}"
    );
    assert!(
        msg.contains(
            "body contains parameter `password=` with an unredacted value (`hun… (8 chars)`)"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("attribute `cookie.raw` contains parameter `sessionid=`"),
        "{msg}"
    );
    // Leaked values are masked in the message.
    assert!(!msg.contains("hunter22"), "{msg}");
    assert!(!msg.contains("k-77f1e9"), "{msg}");
    assert!(!msg.contains("eyJhbGciOi"), "{msg}");
}
