//! The global install path (its own test binary: the global recorder can be
//! set once per process).

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
