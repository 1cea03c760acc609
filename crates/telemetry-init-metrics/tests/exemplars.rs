//! OpenMetrics exemplars carry the real trace context of a sampled
//! `tracing` span bridged by `tracing-opentelemetry`.

use metrics::histogram;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use telemetry_init_metrics::{
    MetricsConfig, TelemetryRecorder, active_otel_trace_context, current_trace_context,
};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

fn subscriber(
    sampler: Sampler,
    context_activation: bool,
) -> impl tracing::Subscriber + Send + Sync {
    let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
    let tracer = provider.tracer("exemplar-test");
    tracing_subscriber::registry().with(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_context_activation(context_activation),
    )
}

const LABELS: &str = r#"http_request_method="GET",http_route="/users/{id}""#;

fn record(r: &TelemetryRecorder, v: f64) {
    metrics::with_local_recorder(r, || {
        histogram!("http.server.request.duration",
            "http.request.method" => "GET", "http.route" => "/users/{id}")
        .record(v);
    });
}

fn bucket_line<'a>(text: &'a str, le: &str) -> &'a str {
    let prefix = format!("http_server_request_duration_seconds_bucket{{{LABELS},le=\"{le}\"}} ");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no bucket le={le} in\n{text}"))
}

fn sampled_exemplar(context_activation: bool) {
    let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    let (trace_id, span_id) = tracing::subscriber::with_default(
        subscriber(Sampler::AlwaysOn, context_activation),
        || {
            let span = tracing::info_span!("GET /users/{id}");
            let _entered = span.enter();
            let cx = span.context();
            let sc = cx.span().span_context().clone();
            assert!(sc.is_sampled() && sc.is_valid());
            assert_eq!(current_trace_context(), Some((sc.trace_id(), sc.span_id())));
            // The OTel-context-only hook sees the span only with activation.
            assert_eq!(
                active_otel_trace_context(),
                context_activation.then(|| (sc.trace_id(), sc.span_id()))
            );
            record(&r, 0.2);
            (sc.trace_id(), sc.span_id())
        },
    );
    // Outside of the span: counted, but the exemplar of le=0.25 stays.
    record(&r, 0.21);
    // A value in another bucket without a span: no exemplar there.
    record(&r, 3.0);

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let text = r.handle().render_openmetrics();
    let line = bucket_line(&text, "0.25");
    let (sample, exemplar) = line.split_once(" # ").expect("exemplar present");
    assert!(sample.ends_with("} 2"), "{line}");
    let expected = format!("{{trace_id=\"{trace_id}\",span_id=\"{span_id}\"}} 0.2 ");
    assert!(exemplar.starts_with(&expected), "{exemplar} vs {expected}");
    assert_eq!(trace_id.to_string().len(), 32);
    assert_eq!(span_id.to_string().len(), 16);
    let ts: f64 = exemplar[expected.len()..].parse().unwrap();
    assert!((before - ts).abs() < 60.0, "timestamp {ts} vs now {before}");

    // Other buckets carry no exemplars, and the Prometheus format never does.
    assert!(!bucket_line(&text, "0.1").contains('#'));
    assert!(!bucket_line(&text, "5.0").contains('#'));
    assert!(!r.handle().render_prometheus().contains("trace_id"));
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn sampled_span_exemplar_with_context_activation() {
    sampled_exemplar(true);
}

#[test]
fn sampled_span_exemplar_without_context_activation_uses_tracing_fallback() {
    sampled_exemplar(false);
}

#[test]
fn unsampled_span_gives_no_exemplar() {
    let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    tracing::subscriber::with_default(subscriber(Sampler::AlwaysOff, true), || {
        let span = tracing::info_span!("unsampled");
        let _entered = span.enter();
        assert_eq!(current_trace_context(), None);
        record(&r, 0.2);
    });
    let text = r.handle().render_openmetrics();
    assert!(bucket_line(&text, "0.25").ends_with("} 1"), "{text}");
    assert!(!text.contains("trace_id"), "{text}");
}

#[test]
fn exemplars_can_be_disabled_or_custom() {
    fn fixed() -> Option<(opentelemetry::trace::TraceId, opentelemetry::trace::SpanId)> {
        Some((
            opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        ))
    }
    let off = TelemetryRecorder::new(MetricsConfig::new().trace_context(None)).unwrap();
    let custom = TelemetryRecorder::new(MetricsConfig::new().trace_context(Some(fixed))).unwrap();
    tracing::subscriber::with_default(subscriber(Sampler::AlwaysOn, true), || {
        let span = tracing::info_span!("sampled");
        let _entered = span.enter();
        record(&off, 0.2);
        record(&custom, 0.2);
    });
    assert!(!off.handle().render_openmetrics().contains("trace_id"));
    let text = custom.handle().render_openmetrics();
    assert!(
        bucket_line(&text, "0.25").contains(
            "} 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 0.2 "
        ),
        "{text}"
    );
}
