use std::collections::HashMap;

use super::*;

fn resolve_with(vars: &[(&str, &str)]) -> Result<Config, Error> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Builder::default()
        .env_lookup(move |k| map.get(k).cloned())
        .resolve()
}

fn err_text(vars: &[(&str, &str)]) -> String {
    resolve_with(vars).unwrap_err().to_string()
}

#[test]
fn defaults_export_nothing_without_an_endpoint() {
    let c = resolve_with(&[]).unwrap();
    for s in [&c.traces, &c.logs, &c.metrics] {
        match s {
            ExporterSetting::Off(why) => assert!(why.contains("OTEL_EXPORTER_OTLP_ENDPOINT")),
            other => panic!("expected off, got {other:?}"),
        }
    }
    assert_eq!(c.sampler, SamplerSetting::ParentBasedAlwaysOn);
    assert_eq!(
        c.propagators,
        vec![Propagator::TraceContext, Propagator::Baggage]
    );
    assert_ne!(c.service_name, "");
    assert!(!c.service_name.starts_with("unknown_service"));
    assert_eq!(c.shutdown_timeout, Duration::from_secs(5));
}

#[test]
fn endpoint_per_protocol_and_signal() {
    let c = resolve_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "http://logs:9999/custom",
        ),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-tenant=a,authorization=Bearer%20abc",
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=b"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ])
    .unwrap();
    let ExporterSetting::Otlp(t) = &c.traces else {
        panic!("{:?}", c.traces)
    };
    assert_eq!(t.endpoint, "http://collector:4318/v1/traces");
    assert_eq!(t.protocol, Protocol::HttpProtobuf);
    assert_eq!(t.timeout, Duration::from_millis(2500));
    assert_eq!(t.compression, Compression::Gzip);
    assert!(t.headers.contains(&("x-tenant".into(), "b".into())));
    assert!(
        t.headers
            .contains(&("authorization".into(), "Bearer abc".into()))
    );
    let ExporterSetting::Otlp(l) = &c.logs else {
        panic!()
    };
    assert_eq!(l.endpoint, "http://logs:9999/custom");
    let ExporterSetting::Otlp(m) = &c.metrics else {
        panic!()
    };
    assert_eq!(m.protocol, Protocol::Grpc);
    assert_eq!(m.endpoint, "http://collector:4318/");
    // Debug output never shows header values.
    assert!(!format!("{c:?}").contains("Bearer"));
}

#[test]
fn env_wins_over_code() {
    let c = Builder::default()
        .service_name("from-code")
        .otlp_endpoint("http://code:4317")
        .env_lookup(|k| match k {
            "OTEL_SERVICE_NAME" => Some("from-env".into()),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://env:4317".into()),
            _ => None,
        })
        .resolve()
        .unwrap();
    assert_eq!(c.service_name, "from-env");
    let ExporterSetting::Otlp(t) = &c.traces else {
        panic!()
    };
    assert_eq!(t.endpoint, "http://env:4317");

    let c = Builder::default()
        .service_name("from-code")
        .env_lookup(|_| None)
        .resolve()
        .unwrap();
    assert_eq!(c.service_name, "from-code");
}

#[test]
fn resource_attributes_and_service_name() {
    let c = resolve_with(&[(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=svc,service.version=1.2,deployment.environment.name=prod,team=core",
    )])
    .unwrap();
    assert_eq!(c.service_name, "svc");
    assert_eq!(c.service_version.as_deref(), Some("1.2"));
    assert_eq!(c.environment.as_deref(), Some("prod"));
    assert_eq!(c.resource_attributes, vec![("team".into(), "core".into())]);
    let c = resolve_with(&[
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=svc"),
        ("OTEL_SERVICE_NAME", "wins"),
    ])
    .unwrap();
    assert_eq!(c.service_name, "wins");
}

#[test]
fn sdk_disabled_and_exporter_none() {
    let c = resolve_with(&[
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
    ])
    .unwrap();
    assert!(c.sdk_disabled);
    assert!(!c.traces.is_on() && !c.logs.is_on() && !c.metrics.is_on());
    let c = resolve_with(&[
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_LOGS_EXPORTER", "console"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
    ])
    .unwrap();
    assert!(!c.traces.is_on());
    assert_eq!(c.logs, ExporterSetting::Console);
    assert!(matches!(c.metrics, ExporterSetting::Otlp(_)));
}

#[test]
fn samplers() {
    let c = resolve_with(&[
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
    ])
    .unwrap();
    assert_eq!(c.sampler, SamplerSetting::ParentBasedTraceIdRatio(0.25));
    let c = resolve_with(&[("OTEL_TRACES_SAMPLER", "always_off")]).unwrap();
    assert_eq!(c.sampler, SamplerSetting::AlwaysOff);
}

#[test]
fn batch_and_limits() {
    let c = resolve_with(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("OTEL_BLRP_EXPORT_TIMEOUT", "1000"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "16"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "8"),
    ])
    .unwrap();
    assert_eq!(c.span_batch.max_queue_size, 100);
    assert_eq!(
        c.span_batch.max_export_batch_size, 100,
        "batch clamped to queue"
    );
    assert_eq!(c.span_batch.schedule_delay, Duration::from_millis(200));
    assert_eq!(c.log_batch.export_timeout, Duration::from_millis(1000));
    assert_eq!(c.span_limits.attributes, 16);
    assert_eq!(c.span_limits.events, 8);
}

/// Every invalid value names the variable, the value and what is accepted.
#[test]
fn invalid_values_are_clear_errors() {
    type Vars = &'static [(&'static str, &'static str)];
    let cases: &[(Vars, &[&str])] = &[
        (
            &[("OTEL_TRACES_SAMPLER", "bogus")],
            &[
                "OTEL_TRACES_SAMPLER",
                "\"bogus\"",
                "parentbased_traceidratio",
            ],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "ftp")],
            &[
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "\"ftp\"",
                "grpc, http/protobuf, http/json",
            ],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift")],
            &["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "\"thrift\""],
        ),
        (
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "abc"),
            ],
            &["OTEL_TRACES_SAMPLER_ARG", "\"abc\"", "0.0 to 1.0"],
        ),
        (
            &[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ],
            &["OTEL_TRACES_SAMPLER_ARG", "\"1.5\""],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")],
            &[
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "\"localhost:4317\"",
                "http://",
            ],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c:21")],
            &["OTEL_EXPORTER_OTLP_ENDPOINT", "unsupported scheme"],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://exa mple")],
            &["OTEL_EXPORTER_OTLP_ENDPOINT", "not a URL"],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")],
            &["OTEL_EXPORTER_OTLP_HEADERS", "key=value"],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_HEADERS", "bad header=x")],
            &["OTEL_EXPORTER_OTLP_HEADERS", "invalid header name"],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")],
            &["OTEL_EXPORTER_OTLP_TIMEOUT", "\"10s\"", "milliseconds"],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")],
            &["OTEL_EXPORTER_OTLP_COMPRESSION", "gzip, none"],
        ),
        (
            &[("OTEL_EXPORTER_OTLP_INSECURE", "maybe")],
            &["OTEL_EXPORTER_OTLP_INSECURE", "true, false"],
        ),
        (
            &[("OTEL_SDK_DISABLED", "yes")],
            &["OTEL_SDK_DISABLED", "true, false"],
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "jaeger")],
            &["OTEL_TRACES_EXPORTER", "otlp, console, none"],
        ),
        (
            &[("OTEL_METRICS_EXPORTER", "statsd")],
            &["OTEL_METRICS_EXPORTER", "prometheus"],
        ),
        (
            &[("OTEL_PROPAGATORS", "b3")],
            &["OTEL_PROPAGATORS", "tracecontext, baggage, none"],
        ),
        (
            &[("OTEL_BSP_MAX_QUEUE_SIZE", "-1")],
            &["OTEL_BSP_MAX_QUEUE_SIZE", "positive integer"],
        ),
        (
            &[("OTEL_BLRP_SCHEDULE_DELAY", "soon")],
            &["OTEL_BLRP_SCHEDULE_DELAY"],
        ),
        (
            &[("OTEL_RESOURCE_ATTRIBUTES", "a=1,b")],
            &["OTEL_RESOURCE_ATTRIBUTES", "key=value"],
        ),
        (
            &[("OTEL_METRIC_EXPORT_INTERVAL", "0")],
            &["OTEL_METRIC_EXPORT_INTERVAL"],
        ),
        (&[("RUST_LOG", "info,[[[")], &["RUST_LOG"]),
        (
            &[("TELEMETRY_EXPORT_FILTER", "=bad=")],
            &["TELEMETRY_EXPORT_FILTER"],
        ),
        (
            &[("TELEMETRY_PROMETHEUS_ADDR", "nowhere")],
            &["TELEMETRY_PROMETHEUS_ADDR", "ip:port"],
        ),
        (
            &[("TELEMETRY_LOG_FORMAT", "xml")],
            &["TELEMETRY_LOG_FORMAT", "json, text"],
        ),
    ];
    for (vars, needles) in cases {
        let text = err_text(vars);
        for n in *needles {
            assert!(text.contains(n), "error for {vars:?} lacks {n:?}: {text}");
        }
    }
}

#[test]
fn header_values_are_never_echoed() {
    let text = err_text(&[(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "authorization=Bearer secret123,broken",
    )]);
    assert!(!text.contains("secret123"), "{text}");
    let text = err_text(&[(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "authorization=line\u{7f}secret456",
    )]);
    assert!(text.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{text}");
    assert!(!text.contains("secret456"), "{text}");
}
