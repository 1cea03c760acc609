//! Cost of recording through the recorder.
//!
//! `cargo bench -p telemetry-init-metrics --bench record`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics::{Histogram, counter, histogram};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use telemetry_init_metrics::{
    MetricsConfig, TelemetryRecorder, active_otel_trace_context, current_trace_context,
};
use tracing_subscriber::layer::SubscriberExt;

fn labeled(r: &TelemetryRecorder) -> Histogram {
    metrics::with_local_recorder(r, || {
        histogram!("http.server.request.duration",
            "http.request.method" => "GET",
            "http.route" => "/users/{id}",
            "http.response.status_code" => "200")
    })
}

fn subscriber(context_activation: bool) -> impl tracing::Subscriber + Send + Sync {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .build();
    tracing_subscriber::registry().with(
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("bench"))
            .with_context_activation(context_activation),
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("record");

    let plain = TelemetryRecorder::new(MetricsConfig::new().trace_context(None)).unwrap();
    let h = labeled(&plain);
    g.bench_function("histogram_labeled_no_exemplars", |b| {
        b.iter(|| h.record(black_box(0.042)))
    });

    let with_ex = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    let h = labeled(&with_ex);
    g.bench_function("histogram_labeled_exemplar_hook_no_span", |b| {
        b.iter(|| h.record(black_box(0.042)))
    });

    for (name, activation) in [
        ("histogram_labeled_in_sampled_span", true),
        ("histogram_labeled_in_sampled_span_no_ctx_activation", false),
    ] {
        tracing::subscriber::with_default(subscriber(activation), || {
            let span = tracing::info_span!("request");
            let _e = span.enter();
            g.bench_function(name, |b| b.iter(|| h.record(black_box(0.042))));
        });
    }

    g.bench_function("trace_context_hook_no_span", |b| {
        b.iter(|| black_box(current_trace_context()))
    });
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        let span = tracing::info_span!("request");
        let _e = span.enter();
        g.bench_function("trace_context_hook_span_without_otel_layer", |b| {
            b.iter(|| black_box(current_trace_context()))
        });
        g.bench_function("active_otel_hook_span_without_otel_layer", |b| {
            b.iter(|| black_box(active_otel_trace_context()))
        });
    });
    tracing::subscriber::with_default(subscriber(true), || {
        let span = tracing::info_span!("request");
        let _e = span.enter();
        g.bench_function("active_otel_hook_sampled_span", |b| {
            b.iter(|| black_box(active_otel_trace_context()))
        });
        g.bench_function("trace_context_hook_sampled_span", |b| {
            b.iter(|| black_box(current_trace_context()))
        });
    });
    tracing::subscriber::with_default(subscriber(false), || {
        let span = tracing::info_span!("request");
        let _e = span.enter();
        g.bench_function("trace_context_hook_sampled_span_no_ctx_activation", |b| {
            b.iter(|| black_box(current_trace_context()))
        });
    });

    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(exporter)
                .with_interval(Duration::from_secs(3600))
                .build(),
        )
        .build();
    let mirrored = TelemetryRecorder::new(
        MetricsConfig::new()
            .trace_context(None)
            .otel_meter(provider.meter("bench")),
    )
    .unwrap();
    let h = labeled(&mirrored);
    g.bench_function("histogram_labeled_with_otlp_mirror", |b| {
        b.iter(|| h.record(black_box(0.042)))
    });

    g.bench_function("histogram_macro_register_and_record_4_labels", |b| {
        metrics::with_local_recorder(&plain, || {
            b.iter(|| {
                histogram!("http.server.request.duration",
                    "http.request.method" => "GET",
                    "http.route" => "/users/{id}",
                    "http.response.status_code" => "200",
                    "error.type" => "none")
                .record(black_box(0.042))
            })
        })
    });

    let c1 = metrics::with_local_recorder(&plain, || counter!("jobs", "queue" => "a"));
    g.bench_function("counter_labeled_increment", |b| {
        b.iter(|| c1.increment(black_box(1)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
