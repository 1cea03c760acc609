//! Logs and metrics from the OpenTelemetry SDK over every transport, and
//! hand-built metric requests carrying exemplars.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{
    ALL_ROUTES, InRuntime, Route, TIMEOUT, log_exporter, metric_exporter, resource, span_exporter,
};
use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue as PAny, KeyValue as PKv, any_value};
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource as PResource;
use prost::Message as _;
use telemetry_init_testing::{
    MetricKind, OtlpReceiver, PointValue, Signal, Temporality, Transport, Value, assert,
};

/// Logs emitted inside and outside a span, through the SDK logger with a
/// simple processor, arrive with severity, body, attributes and trace ids.
async fn logs_over(route: Route) {
    let rx = OtlpReceiver::start().await.unwrap();
    let tracer_provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(span_exporter(&rx, route, TIMEOUT))
        .with_resource(resource("logger-svc"))
        .build();
    let logger_provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_simple_exporter(log_exporter(&rx, route))
        .with_resource(resource("logger-svc"))
        .build();
    let (tp, lp) = (tracer_provider.clone(), logger_provider.clone());
    let span_ctx = tokio::task::spawn_blocking(move || {
        let tracer = tp.tracer("log-tests");
        let logger = lp.logger("log-tests");
        let mut outside = logger.create_log_record();
        outside.set_body(AnyValue::from("starting up"));
        outside.set_severity_number(Severity::Info);
        outside.set_severity_text("INFO");
        logger.emit(outside);
        tracer.in_span("handle-request", |cx| {
            let mut inside = logger.create_log_record();
            inside.set_body(AnyValue::from("user looked up"));
            inside.set_severity_number(Severity::Warn);
            inside.set_severity_text("WARN");
            inside.add_attribute("user.id", 42_i64);
            inside.add_attribute("cache", "miss");
            logger.emit(inside);
            cx.span().span_context().clone()
        })
    })
    .await
    .unwrap();
    let logs = rx.wait_for_logs(2, TIMEOUT).await.unwrap();
    let spans = rx.wait_for_spans(1, TIMEOUT).await.unwrap();
    assert_eq!(logs.len(), 2, "{route:?}");
    let outside = logs
        .iter()
        .find(|l| l.body_str() == Some("starting up"))
        .unwrap();
    assert_eq!(outside.trace_id, None);
    assert_eq!(outside.span_id, None);
    assert_eq!(outside.severity_number, 9);
    assert_eq!(outside.severity_text, "INFO");
    let inside = logs
        .iter()
        .find(|l| l.body_str() == Some("user looked up"))
        .unwrap();
    assert_eq!(
        inside.trace_id,
        Some(span_ctx.trace_id().to_string()),
        "{route:?}"
    );
    assert_eq!(
        inside.span_id,
        Some(span_ctx.span_id().to_string()),
        "{route:?}"
    );
    assert_eq!(inside.severity_number, 13);
    assert_eq!(inside.severity_text, "WARN");
    assert_eq!(inside.attr("user.id").and_then(Value::as_i64), Some(42));
    assert_eq!(inside.attr("cache").and_then(Value::as_str), Some("miss"));
    assert_eq!(inside.service_name(), Some("logger-svc"));
    assert_eq!(inside.scope_name, "log-tests");
    assert_eq!(inside.transport, route.transport);
    assert!(inside.effective_time_unix_nanos() > 0);
    assert_eq!(rx.export_requests(route.transport, Signal::Logs), 2);
    // The real pipeline's output is correlated.
    assert::logs_correlated(&logs, &spans).unwrap();
    // And the debug snapshot nests the log under its span.
    let snap = rx.snapshot_json();
    let root = &snap["traces"][0]["root_spans"][0];
    assert_eq!(root["name"], "handle-request");
    assert_eq!(root["logs"][0]["body"], "user looked up");
    assert_eq!(snap["uncorrelated_logs"][0]["body"], "starting up");
    tokio::task::spawn_blocking(move || {
        logger_provider.shutdown().unwrap();
        tracer_provider.shutdown().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn logs_over_every_transport_current_thread() {
    for route in ALL_ROUTES {
        logs_over(route).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_over_every_transport_multi_thread() {
    for route in ALL_ROUTES {
        logs_over(route).await;
    }
}

/// Counter, up-down counter, gauge and histogram through the SDK's
/// `PeriodicReader` and the OTLP metric exporter.
async fn metrics_over(route: Route) {
    let rx = OtlpReceiver::start().await.unwrap();
    let exporter = InRuntime {
        inner: metric_exporter(&rx, route),
        handle: tokio::runtime::Handle::current(),
    };
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource("metrics-svc"))
        .build();
    let meter = provider.meter("metric-tests");
    let counter = meter
        .u64_counter("http.server.requests")
        .with_unit("{request}")
        .build();
    let updown = meter.i64_up_down_counter("queue.depth").build();
    let gauge = meter
        .f64_gauge("cpu.ratio")
        .with_description("CPU use")
        .build();
    let histogram = meter
        .f64_histogram("http.server.duration")
        .with_unit("s")
        .build();
    let ok = [
        KeyValue::new("http.route", "/users/{id}"),
        KeyValue::new("http.response.status_code", 200),
    ];
    let err = [
        KeyValue::new("http.route", "/users/{id}"),
        KeyValue::new("http.response.status_code", 500),
    ];
    counter.add(3, &ok);
    counter.add(4, &ok);
    counter.add(1, &err);
    updown.add(10, &[]);
    updown.add(-3, &[]);
    gauge.record(0.75, &[]);
    for v in [0.002, 0.02, 0.2, 2.0] {
        histogram.record(v, &ok);
    }
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.force_flush())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{route:?}: {e}"));

    let requests = rx
        .wait_for_metric("http.server.requests", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        requests.kind,
        MetricKind::Sum {
            monotonic: true,
            temporality: Temporality::Cumulative
        }
    );
    assert_eq!(requests.unit, "{request}");
    assert_eq!(requests.transport, route.transport);
    assert_eq!(requests.service_name(), Some("metrics-svc"));
    assert_eq!(requests.scope_name, "metric-tests");
    assert_eq!(requests.points.len(), 2);
    let ok_point = requests
        .points
        .iter()
        .find(|p| p.attributes.get("http.response.status_code") == Some(&Value::Int(200)))
        .unwrap();
    assert_eq!(ok_point.value, PointValue::Int(7));
    assert_eq!(
        ok_point.attributes.get("http.route"),
        Some(&Value::from("/users/{id}"))
    );
    let err_point = requests
        .points
        .iter()
        .find(|p| p.attributes.get("http.response.status_code") == Some(&Value::Int(500)))
        .unwrap();
    assert_eq!(err_point.value.as_i64(), Some(1));

    let depth = rx.wait_for_metric("queue.depth", TIMEOUT).await.unwrap();
    assert_eq!(
        depth.kind,
        MetricKind::Sum {
            monotonic: false,
            temporality: Temporality::Cumulative
        }
    );
    assert_eq!(depth.points[0].value, PointValue::Int(7));

    let cpu = rx.wait_for_metric("cpu.ratio", TIMEOUT).await.unwrap();
    assert_eq!(cpu.kind, MetricKind::Gauge);
    assert_eq!(cpu.description, "CPU use");
    assert_eq!(cpu.points[0].value.as_f64(), Some(0.75));

    let duration = rx
        .wait_for_metric("http.server.duration", TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        duration.kind,
        MetricKind::Histogram {
            temporality: Temporality::Cumulative
        }
    );
    let h = duration.points[0]
        .value
        .as_histogram()
        .expect("histogram point");
    assert_eq!(h.count, 4);
    assert!((h.sum.unwrap() - 2.222).abs() < 1e-9, "{:?}", h.sum);
    assert_eq!(h.min, Some(0.002));
    assert_eq!(h.max, Some(2.0));
    assert!(!h.explicit_bounds.is_empty());
    assert_eq!(h.bucket_counts.len(), h.explicit_bounds.len() + 1);
    assert_eq!(h.bucket_counts.iter().sum::<u64>(), 4);
    // The SDK sends no exemplars: the field is parsed, and empty.
    assert!(h.exemplars.is_empty());

    assert_eq!(rx.export_requests(route.transport, Signal::Metrics), 1);
    assert::slo_metrics_present(
        &rx.metrics(),
        &["http.server.requests", "http.server.duration"],
        &["http.route", "http.response.status_code"],
    )
    .unwrap();
    // The snapshot lists the latest point of each metric.
    let snap = rx.snapshot_json();
    let names: Vec<&str> = snap["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cpu.ratio",
            "http.server.duration",
            "http.server.requests",
            "queue.depth"
        ]
    );
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn metrics_over_every_transport_current_thread() {
    for route in ALL_ROUTES {
        metrics_over(route).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_every_transport_multi_thread() {
    for route in ALL_ROUTES {
        metrics_over(route).await;
    }
}

const EX_TRACE: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
const EX_SPAN: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];

fn kv(key: &str, value: &str) -> PKv {
    PKv {
        key: key.into(),
        value: Some(PAny {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// A histogram point with one exemplar, as a collector would send it.
fn exemplar_request(name: &str) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![pm::ResourceMetrics {
            resource: Some(PResource {
                attributes: vec![kv("service.name", "exemplar-svc")],
                ..Default::default()
            }),
            scope_metrics: vec![pm::ScopeMetrics {
                metrics: vec![pm::Metric {
                    name: name.into(),
                    unit: "s".into(),
                    data: Some(pm::metric::Data::Histogram(pm::Histogram {
                        aggregation_temporality: pm::AggregationTemporality::Delta as i32,
                        data_points: vec![pm::HistogramDataPoint {
                            attributes: vec![kv("http.route", "/checkout")],
                            count: 3,
                            sum: Some(1.5),
                            explicit_bounds: vec![0.1, 1.0],
                            bucket_counts: vec![1, 1, 1],
                            exemplars: vec![pm::Exemplar {
                                trace_id: EX_TRACE.to_vec(),
                                span_id: EX_SPAN.to_vec(),
                                value: Some(pm::exemplar::Value::AsDouble(1.2)),
                                time_unix_nano: 1_700_000_000_000_000_000,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The same request written by hand in OTLP/JSON (hex ids, string int64s).
fn exemplar_json(name: &str) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"exemplar-svc"}}}}]}},
        "scopeMetrics":[{{"scope":{{"name":"hand"}},"metrics":[{{"name":"{name}","unit":"s","histogram":{{"aggregationTemporality":1,
        "dataPoints":[{{"attributes":[{{"key":"http.route","value":{{"stringValue":"/checkout"}}}}],"count":"3","sum":1.5,
        "explicitBounds":[0.1,1.0],"bucketCounts":["1","1","1"],"timeUnixNano":"1700000000000000000",
        "exemplars":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","asDouble":1.2,"timeUnixNano":"1700000000000000000"}}]}}]}}}}]}}]}}]}}"#
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn exemplars_are_parsed_on_every_transport() {
    let rx = OtlpReceiver::start().await.unwrap();
    // gRPC, gzip-compressed, with the generated tonic client.
    let mut client = MetricsServiceClient::connect(rx.grpc_endpoint())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    client
        .export(exemplar_request("grpc.latency"))
        .await
        .unwrap();
    // HTTP protobuf and HTTP JSON, each gzip-compressed.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/metrics", rx.http_endpoint());
    let resp = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gzip(&exemplar_request("proto.latency").encode_to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let body = resp.bytes().await.unwrap();
    opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse::decode(body)
        .expect("a protobuf ExportMetricsServiceResponse");
    let resp = http
        .post(&url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(exemplar_json("json.latency").as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.expect("a JSON response");
    assert!(body.is_object(), "{body}");

    for (name, transport) in [
        ("grpc.latency", Transport::Grpc),
        ("proto.latency", Transport::HttpProtobuf),
        ("json.latency", Transport::HttpJson),
    ] {
        let m = rx.wait_for_metric(name, TIMEOUT).await.unwrap();
        assert_eq!(m.transport, transport);
        assert_eq!(
            m.kind,
            MetricKind::Histogram {
                temporality: Temporality::Delta
            }
        );
        assert_eq!(m.service_name(), Some("exemplar-svc"));
        let point = m.point_with(&[("http.route", "/checkout")]).expect("point");
        let h = point.value.as_histogram().unwrap();
        assert_eq!((h.count, h.sum), (3, Some(1.5)), "{name}");
        assert_eq!(h.explicit_bounds, [0.1, 1.0]);
        assert_eq!(h.bucket_counts, [1, 1, 1]);
        assert_eq!(h.exemplars.len(), 1, "{name}");
        let ex = &h.exemplars[0];
        assert_eq!(
            ex.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c"),
            "{name}"
        );
        assert_eq!(ex.span_id.as_deref(), Some("eee19b7ec3c1b174"), "{name}");
        assert_eq!(ex.value, 1.2);
        assert_eq!(ex.time_unix_nanos, 1_700_000_000_000_000_000);
        assert_eq!(point.exemplars, h.exemplars);
    }
    assert_eq!(rx.stats().gzip_requests, 3);
}

#[tokio::test]
async fn malformed_http_requests_are_rejected_and_not_stored() {
    let rx = OtlpReceiver::start().await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/traces", rx.http_endpoint());
    let cases: [(&str, Option<&str>, Vec<u8>, u16); 4] = [
        ("text/plain", None, b"hello".to_vec(), 415),
        ("application/json", None, b"{not json".to_vec(), 400),
        (
            "application/x-protobuf",
            Some("gzip"),
            b"not gzip".to_vec(),
            400,
        ),
        ("application/x-protobuf", Some("br"), vec![], 415),
    ];
    for (ct, enc, body, status) in cases {
        let mut req = http.post(&url).header("content-type", ct).body(body);
        if let Some(enc) = enc {
            req = req.header("content-encoding", enc);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{ct} {enc:?}");
    }
    assert_eq!(rx.stats().rejected_requests, 4);
    assert!(rx.spans().is_empty());
    // An unknown path is a plain 404.
    let resp = http
        .post(format!("{}/v1/profiles", rx.http_endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
