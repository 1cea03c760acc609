//! The global install path (its own test binary: the global recorder can be
//! set once per process).

// `std::env::set_var` is `unsafe` since edition 2024.
#![allow(unsafe_code)]

use telemetry_init_metrics::{MetricsConfig, MetricsError, install_recorder};

#[test]
fn install_once_then_error() {
    assert!(matches!(
        install_recorder(MetricsConfig::new().default_buckets(vec![f64::NAN])),
        Err(MetricsError::InvalidBuckets(_))
    ));
    let handle = install_recorder(MetricsConfig::new()).unwrap();
    metrics::histogram!("http.server.request.duration", "http.route" => "/").record(0.1);
    metrics::counter!("app.user.metric").increment(1);
    assert_eq!(handle.series_count("http.server.request.duration"), 1);
    assert!(
        handle
            .render_prometheus()
            .contains("app_user_metric_total 1\n")
    );
    assert!(matches!(
        install_recorder(MetricsConfig::new()),
        Err(MetricsError::AlreadyInstalled)
    ));
}

#[test]
fn serve_from_env() {
    use telemetry_init_metrics::{PROMETHEUS_ADDR_ENV, TelemetryRecorder};
    let handle = TelemetryRecorder::new(MetricsConfig::new())
        .unwrap()
        .handle();
    // SAFETY: the only test in this binary touching the environment.
    unsafe { std::env::set_var(PROMETHEUS_ADDR_ENV, "not-an-address") };
    assert!(matches!(
        handle.serve_from_env(),
        Err(MetricsError::InvalidAddress(v)) if v == "not-an-address"
    ));
    unsafe { std::env::set_var(PROMETHEUS_ADDR_ENV, "127.0.0.1:0") };
    let server = handle.serve_from_env().unwrap().expect("started");
    assert!(server.local_addr().ip().is_loopback());
    unsafe { std::env::set_var(PROMETHEUS_ADDR_ENV, "") };
    assert!(handle.serve_from_env().unwrap().is_none());
}
