//! The OTLP bridge pushes the same names, units, attributes and counts as
//! the scrape.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics::{Unit, counter, describe_histogram, gauge, histogram};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, InMemoryMetricExporterBuilder, PeriodicReader, SdkMeterProvider,
    Temporality,
};
use telemetry_init_metrics::{MetricsConfig, MetricsError, Signal, TelemetryRecorder};

type Labels = BTreeMap<String, String>;

/// Parses Prometheus text into `(sample name, labels) -> value`.
fn parse(text: &str) -> BTreeMap<(String, Labels), f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap();
        let name = line[..name_end].to_string();
        let mut labels = Labels::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let eq = rest.find("=\"").unwrap();
                let key = rest[..eq].to_string();
                rest = &rest[eq + 2..];
                let mut value = String::new();
                let mut chars = rest.char_indices();
                let end = loop {
                    let (i, c) = chars.next().unwrap();
                    match c {
                        '\\' => value.push(chars.next().unwrap().1),
                        '"' => break i,
                        c => value.push(c),
                    }
                };
                labels.insert(key, value);
                rest = &rest[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
        }
        out.insert((name, labels), rest.trim().parse().unwrap());
    }
    out
}

fn prom_labels(attrs: &[&KeyValue]) -> Labels {
    attrs
        .iter()
        .map(|kv| {
            let v = match &kv.value {
                Value::Bool(b) => b.to_string(),
                Value::I64(i) => i.to_string(),
                Value::String(s) => s.to_string(),
                other => other.to_string(),
            };
            (kv.key.as_str().replace('.', "_"), v)
        })
        .collect()
}

fn setup(config: MetricsConfig) -> (SdkMeterProvider, InMemoryMetricExporter, TelemetryRecorder) {
    let exporter = InMemoryMetricExporterBuilder::new()
        .with_temporality(Temporality::Cumulative)
        .build();
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let meter = provider.meter("telemetry-init");
    let recorder = TelemetryRecorder::new(config.otel_meter(meter)).unwrap();
    (provider, exporter, recorder)
}

fn collect(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> ResourceMetrics {
    provider.force_flush().unwrap();
    exporter
        .get_finished_metrics()
        .unwrap()
        .pop()
        .expect("an export happened")
}

fn find<'a>(rm: &'a ResourceMetrics, name: &str) -> &'a Metric {
    rm.scope_metrics()
        .flat_map(|s| s.metrics())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("metric {name} not pushed"))
}

#[test]
fn pushed_metrics_match_the_scrape() {
    let (provider, exporter, r) = setup(
        MetricsConfig::new()
            .constant_label("service.name", "demo")
            .cardinality_limit_for("user.", 2)
            .slo_threshold("http.server.request.duration", 0.3),
    );
    let health = r.handle().pipeline_health();
    metrics::with_local_recorder(&r, || {
        describe_histogram!(
            "http.server.request.duration",
            Unit::Seconds,
            "Duration of HTTP server requests."
        );
        for (i, v) in [0.004, 0.02, 0.2, 0.3, 0.31, 0.9, 4.0, 30.0]
            .iter()
            .enumerate()
        {
            let status = if i % 3 == 0 { "500" } else { "200" };
            histogram!("http.server.request.duration",
                "http.request.method" => "GET",
                "http.route" => "/users/{id}",
                "http.response.status_code" => status)
            .record(*v);
        }
        gauge!("http.server.active_requests", "http.request.method" => "GET").set(4.0);
        for i in 0..5 {
            counter!("user.logins", "user.id" => i.to_string()).increment(3);
        }
    });
    health.exported(Signal::Traces, 10);
    health.failed(Signal::Logs, 2, "timeout");

    let rm = collect(&provider, &exporter);
    let scrape = parse(&r.handle().render_prometheus());

    // Histogram: same boundaries, unit, description, per-bucket counts.
    let m = find(&rm, "http.server.request.duration");
    assert_eq!(m.unit(), "s");
    assert_eq!(m.description(), "Duration of HTTP server requests.");
    let AggregatedMetrics::F64(MetricData::Histogram(h)) = m.data() else {
        panic!("not an f64 histogram: {:?}", m.data());
    };
    let expected_bounds = r
        .handle()
        .config()
        .buckets_for("http.server.request.duration", Some("s"));
    let mut points = 0;
    for dp in h.data_points() {
        points += 1;
        let attrs: Vec<&KeyValue> = dp.attributes().collect();
        assert!(
            attrs
                .iter()
                .any(|kv| kv.key.as_str() == "http.response.status_code"
                    && matches!(kv.value, Value::I64(200 | 500)))
        );
        assert!(attrs.iter().any(|kv| kv.key.as_str() == "service.name"));
        let labels = prom_labels(&attrs);
        let bounds: Vec<f64> = dp.bounds().collect();
        assert_eq!(bounds, expected_bounds);
        let mut cumulative = 0;
        let name = "http_server_request_duration_seconds";
        for (i, c) in dp.bucket_counts().enumerate() {
            cumulative += c;
            let mut l = labels.clone();
            l.insert(
                "le".into(),
                bounds.get(i).map_or("+Inf".into(), |b| b.to_string()),
            );
            assert_eq!(scrape[&(format!("{name}_bucket"), l)], cumulative as f64);
        }
        assert_eq!(
            scrape[&(format!("{name}_count"), labels.clone())],
            dp.count() as f64
        );
        let sum = scrape[&(format!("{name}_sum"), labels.clone())];
        assert!((sum - dp.sum()).abs() < 1e-9);
    }
    assert_eq!(points, 2);

    // Gauge.
    let m = find(&rm, "http.server.active_requests");
    assert_eq!(m.unit(), "{request}");
    let AggregatedMetrics::F64(MetricData::Gauge(g)) = m.data() else {
        panic!("not a gauge");
    };
    let dp = g.data_points().next().unwrap();
    let labels = prom_labels(&dp.attributes().collect::<Vec<_>>());
    assert_eq!(scrape[&("http_server_active_requests".into(), labels)], 4.0);
    assert_eq!(dp.value(), 4.0);

    // Counters, including the overflow series and the health metrics.
    for (otel_name, prom_name, expected_points) in [
        ("user.logins", "user_logins_total", 3),
        (
            "otel.sdk.exporter.span.exported",
            "otel_sdk_exporter_span_exported_total",
            1,
        ),
        (
            "otel.sdk.exporter.log.exported",
            "otel_sdk_exporter_log_exported_total",
            2,
        ),
        (
            "telemetry_init.metrics.overflowed_records",
            "telemetry_init_metrics_overflowed_records_total",
            1,
        ),
    ] {
        let m = find(&rm, otel_name);
        let AggregatedMetrics::U64(MetricData::Sum(s)) = m.data() else {
            panic!("{otel_name} is not a u64 sum");
        };
        assert!(s.is_monotonic());
        assert_eq!(s.temporality(), Temporality::Cumulative);
        let mut n = 0;
        for dp in s.data_points() {
            n += 1;
            let labels = prom_labels(&dp.attributes().collect::<Vec<_>>());
            assert_eq!(
                scrape
                    .get(&(prom_name.to_string(), labels.clone()))
                    .copied(),
                Some(dp.value() as f64),
                "{otel_name} {labels:?}"
            );
        }
        assert_eq!(n, expected_points, "{otel_name}");
    }
    let m = find(&rm, "user.logins");
    let AggregatedMetrics::U64(MetricData::Sum(s)) = m.data() else {
        unreachable!()
    };
    let overflow = s
        .data_points()
        .find(|dp| {
            dp.attributes().any(|kv| {
                kv.key.as_str() == "otel.metric.overflow" && kv.value == Value::Bool(true)
            })
        })
        .expect("overflow data point");
    assert_eq!(overflow.value(), 9);
    assert_eq!(
        find(&rm, "otel.sdk.exporter.span.exported").unit(),
        "{span}"
    );
    assert!(
        rm.scope_metrics()
            .flat_map(|s| s.metrics())
            .all(|m| m.data_points_have_no_exemplars())
    );
}

trait NoExemplars {
    fn data_points_have_no_exemplars(&self) -> bool;
}

impl NoExemplars for Metric {
    /// Documents the SDK 0.33 limitation: pushed data never has exemplars.
    fn data_points_have_no_exemplars(&self) -> bool {
        match self.data() {
            AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                h.data_points().all(|d| d.exemplars().next().is_none())
            }
            _ => true,
        }
    }
}

#[test]
fn late_attach_mirrors_existing_counters_and_gauges() {
    let exporter = InMemoryMetricExporterBuilder::new()
        .with_temporality(Temporality::Cumulative)
        .build();
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    metrics::with_local_recorder(&r, || {
        counter!("jobs.done", "queue" => "a").increment(41);
        gauge!("queue.depth").set(7.0);
    });
    r.handle().attach_meter(provider.meter("late")).unwrap();
    assert!(matches!(
        r.handle().attach_meter(provider.meter("again")),
        Err(MetricsError::MeterAlreadyAttached)
    ));
    metrics::with_local_recorder(&r, || {
        counter!("jobs.done", "queue" => "a").increment(1);
        histogram!("lat").record(0.5);
    });
    let rm = collect(&provider, &exporter);
    let AggregatedMetrics::U64(MetricData::Sum(s)) = find(&rm, "jobs.done").data() else {
        panic!()
    };
    assert_eq!(s.data_points().next().unwrap().value(), 42);
    let AggregatedMetrics::F64(MetricData::Gauge(g)) = find(&rm, "queue.depth").data() else {
        panic!()
    };
    assert_eq!(g.data_points().next().unwrap().value(), 7.0);
    let AggregatedMetrics::F64(MetricData::Histogram(h)) = find(&rm, "lat").data() else {
        panic!()
    };
    assert_eq!(h.data_points().next().unwrap().count(), 1);
}
