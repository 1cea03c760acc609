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
    assert!(c.trust_incoming_context);
}

#[test]
fn propagators_and_trust() {
    use telemetry_init_propagation::Propagators;
    for (value, set) in [
        ("none", Propagators::NONE),
        ("tracecontext", Propagators::TRACE_CONTEXT),
        ("baggage", Propagators::BAGGAGE),
        ("baggage,tracecontext,none", Propagators::W3C),
    ] {
        let c = resolve_with(&[("OTEL_PROPAGATORS", value)]).unwrap();
        assert_eq!(c.propagator_set(), set, "{value}");
    }
    let c = resolve_with(&[("TELEMETRY_TRUST_INCOMING_CONTEXT", "false")]).unwrap();
    assert!(!c.trust_incoming_context);
    // The variable wins over code.
    let c = crate::builder()
        .trust_incoming_context(false)
        .env_lookup(|k| (k == "TELEMETRY_TRUST_INCOMING_CONTEXT").then(|| "true".to_string()))
        .resolve()
        .unwrap();
    assert!(c.trust_incoming_context);
    let c = crate::builder()
        .trust_incoming_context(false)
        .env_lookup(|_| None)
        .resolve()
        .unwrap();
    assert!(!c.trust_incoming_context);
}

#[test]
fn request_id_header() {
    assert_eq!(resolve_with(&[]).unwrap().request_id_header, "x-request-id");
    let c = resolve_with(&[("TELEMETRY_REQUEST_ID_HEADER", "X-Correlation-ID")]).unwrap();
    assert_eq!(c.request_id_header, "x-correlation-id");
    // The variable wins over code.
    let c = crate::builder()
        .request_id_header("x-trace-ref")
        .env_lookup(|k| (k == "TELEMETRY_REQUEST_ID_HEADER").then(|| "x-req".to_string()))
        .resolve()
        .unwrap();
    assert_eq!(c.request_id_header, "x-req");
    for bad in [
        "has space",
        "a:b",
        "traceparent",
        "Cookie",
        "content-length",
        "grpc-status",
    ] {
        let e = err_text(&[("TELEMETRY_REQUEST_ID_HEADER", bad)]);
        assert!(e.contains("TELEMETRY_REQUEST_ID_HEADER"), "{bad}: {e}");
    }
    let e = crate::builder()
        .request_id_header("authorization")
        .env_lookup(|_| None)
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("request_id_header") && e.contains("another meaning"),
        "{e}"
    );
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
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ],
            &[
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "\"localhost:4318\"",
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
            &["OTEL_EXPORTER_OTLP_HEADERS", "not a valid header name"],
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
            &[
                "OTEL_PROPAGATORS",
                "\"b3\"",
                "no maintained B3 propagator",
                "tracecontext, baggage, none",
            ],
        ),
        (
            &[("OTEL_PROPAGATORS", "tracecontext,jaeger")],
            &["OTEL_PROPAGATORS", "\"jaeger\"", "0.32"],
        ),
        (
            &[("OTEL_PROPAGATORS", "b3multi")],
            &["OTEL_PROPAGATORS", "\"b3multi\""],
        ),
        (
            &[("TELEMETRY_TRUST_INCOMING_CONTEXT", "no")],
            &["TELEMETRY_TRUST_INCOMING_CONTEXT", "true, false"],
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

fn traces(c: &Config) -> &OtlpSettings {
    match &c.traces {
        ExporterSetting::Otlp(s) => s,
        other => panic!("expected otlp, got {other:?}"),
    }
}

#[test]
fn a_grpc_endpoint_without_scheme_follows_insecure() {
    let c = resolve_with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]).unwrap();
    assert_eq!(traces(&c).endpoint, "https://collector:4317");
    assert!(!traces(&c).insecure);
    let c = resolve_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true"),
    ])
    .unwrap();
    assert_eq!(traces(&c).endpoint, "http://collector:4317");
    // An explicit scheme always decides.
    let c = resolve_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
    ])
    .unwrap();
    assert_eq!(traces(&c).endpoint, "https://collector:4317");
    // The builder setting, overridden by the variable.
    let c = Builder::default()
        .otlp_endpoint("collector:4317")
        .otlp_insecure(true)
        .env_lookup(|_| None)
        .resolve()
        .unwrap();
    assert_eq!(traces(&c).endpoint, "http://collector:4317");
}

#[test]
fn endpoint_credentials_become_a_header_and_never_show() {
    let c = resolve_with(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://12345:glc_s%40cret@otlp.example.net/otlp",
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ])
    .unwrap();
    let t = traces(&c);
    assert_eq!(t.endpoint, "https://otlp.example.net/otlp/v1/traces");
    // base64("12345:glc_s@cret")
    assert!(
        t.headers.contains(&(
            "authorization".into(),
            "Basic MTIzNDU6Z2xjX3NAY3JldA==".into()
        )),
        "{:?}",
        t.headers.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("glc_") && !shown.contains("MTIz"),
        "{shown}"
    );
    // An explicit authorization header wins over the URL's credentials.
    let c = resolve_with(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://u:p@otlp.example.net",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20t"),
    ])
    .unwrap();
    let auth: Vec<_> = traces(&c)
        .headers
        .iter()
        .filter(|(k, _)| k == "authorization")
        .collect();
    assert_eq!(
        auth,
        [&("authorization".to_string(), "Bearer t".to_string())]
    );
    // A bad URL with credentials: the error never echoes them.
    let err = err_text(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://user:hunter2@host")]);
    assert!(err.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{err}");
    assert!(!err.contains("hunter2") && !err.contains("user"), "{err}");
}

#[test]
fn headers_decode_as_the_spec_says() {
    let c = resolve_with(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            " api-key = a%2Cb%3Dc ,, Authorization=Basic%20dXNlcjpwYXNz==,x-empty=",
        ),
    ])
    .unwrap();
    let h = &traces(&c).headers;
    assert!(h.contains(&("api-key".into(), "a,b=c".into())), "{h:?}");
    // '=' after the first one belongs to the value (base64 padding).
    assert!(h.contains(&("authorization".into(), "Basic dXNlcjpwYXNz==".into())));
    assert!(h.contains(&("x-empty".into(), String::new())));
    for (value, says) in [
        ("tenant", "member 1 has no '='"),
        ("a=1,=secret", "member 2 has an empty"),
        ("bad key=secret", "not a valid header name"),
        ("k=%zzsecret", "badly percent-encoded"),
        ("k=line%0Abreak-secret", "characters a header cannot carry"),
    ] {
        let err = err_text(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", value),
        ]);
        assert!(err.contains("OTEL_EXPORTER_OTLP_LOGS_HEADERS"), "{err}");
        assert!(err.contains(says), "{value}: {err}");
        assert!(!err.contains("secret"), "a value leaked: {err}");
    }
}

#[test]
fn tls_files_are_checked_at_resolve() {
    let dir = std::env::temp_dir().join(format!("tls-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing = dir.join("missing.pem");
    for (var, path, says) in [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &missing, "cannot open"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            &not_pem,
            "no certificate",
        ),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &dir, "cannot read"),
    ] {
        let p = path.display().to_string();
        let err = err_text(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"),
            (var, p.as_str()),
        ]);
        assert!(err.contains(var) && err.contains(&p), "{err}");
        assert!(err.contains(says), "{err}");
    }
    // A certificate without its key (and the other way round).
    let p = not_pem.display().to_string();
    let err = err_text(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", p.as_str())]);
    assert!(err.contains("needs its key"), "{err}");
    let err = err_text(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", p.as_str())]);
    assert!(err.contains("needs its certificate"), "{err}");
    // A key file that holds no key names the key variable.
    let err = Builder::default()
        .otlp_client_identity(&missing, &not_pem)
        .env_lookup(|_| None)
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("set in code") && err.contains("missing.pem"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn redaction_keys_from_code_and_environment() {
    let config = Builder::default()
        .redact_key("customer_email")
        .keep_key("token")
        .env_lookup(|k| (k == "TELEMETRY_REDACT_KEYS").then(|| "=ref,-cookie".to_string()))
        .resolve()
        .unwrap();
    let p = &config.redaction;
    assert!(p.is_secret_name("customer-email"));
    assert!(!p.is_secret_name("access_token"));
    assert!(p.is_secret_name("ref"));
    assert!(!p.is_secret_name("set-cookie"));
    assert!(p.is_secret_name("password"));

    let text = err_text(&[("TELEMETRY_REDACT_KEYS", "ok,--")]);
    assert!(text.contains("TELEMETRY_REDACT_KEYS"), "{text}");
    assert!(text.contains("\"--\""), "{text}");
}

#[test]
fn span_events_level() {
    use tracing::level_filters::LevelFilter;
    assert_eq!(
        resolve_with(&[]).unwrap().span_events_level,
        LevelFilter::WARN
    );
    for (value, level) in [
        ("off", LevelFilter::OFF),
        ("ERROR", LevelFilter::ERROR),
        (" info ", LevelFilter::INFO),
        ("trace", LevelFilter::TRACE),
    ] {
        let config = resolve_with(&[("TELEMETRY_SPAN_EVENTS_LEVEL", value)]).unwrap();
        assert_eq!(config.span_events_level, level, "{value}");
    }
    let e = err_text(&[("TELEMETRY_SPAN_EVENTS_LEVEL", "loud")]);
    assert!(e.contains("TELEMETRY_SPAN_EVENTS_LEVEL"), "{e}");
    assert!(e.contains("\"loud\""), "{e}");
    assert!(e.contains("off, error, warn, info, debug, trace"), "{e}");
}

#[test]
fn exemplar_filter() {
    assert_eq!(
        resolve_with(&[]).unwrap().exemplar_filter,
        ExemplarFilter::TraceBased
    );
    for (value, filter) in [
        ("trace_based", ExemplarFilter::TraceBased),
        ("ALWAYS_OFF", ExemplarFilter::AlwaysOff),
    ] {
        let c = resolve_with(&[("OTEL_METRICS_EXEMPLAR_FILTER", value)]).unwrap();
        assert_eq!(c.exemplar_filter, filter, "{value}");
    }
    let e = err_text(&[("OTEL_METRICS_EXEMPLAR_FILTER", "always_on")]);
    assert!(
        e.contains("OTEL_METRICS_EXEMPLAR_FILTER") && e.contains("sampled spans only"),
        "{e}"
    );
    let e = err_text(&[("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes")]);
    assert!(e.contains("trace_based, always_off"), "{e}");
}
