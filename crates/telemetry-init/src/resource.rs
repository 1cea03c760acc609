//! The OpenTelemetry resource: who is emitting.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

use crate::config::Config;

/// Builds the resource every signal carries: `service.*`, `host.name`,
/// `process.pid`, `os.type`, `deployment.environment.name`, the SDK's
/// `telemetry.sdk.*` and the user's attributes.
pub(crate) fn build(config: &Config, instance_id: &str) -> Resource {
    let mut attrs = vec![
        KeyValue::new("service.name", config.service_name.clone()),
        KeyValue::new("service.instance.id", instance_id.to_string()),
        KeyValue::new("process.pid", i64::from(std::process::id())),
        KeyValue::new("os.type", os_type()),
        KeyValue::new("telemetry.distro.name", "telemetry-init"),
        KeyValue::new("telemetry.distro.version", env!("CARGO_PKG_VERSION")),
    ];
    if let Ok(host) = gethostname::gethostname().into_string() {
        attrs.push(KeyValue::new("host.name", host));
    }
    if let Some(v) = &config.service_version {
        attrs.push(KeyValue::new("service.version", v.clone()));
    }
    if let Some(e) = &config.environment {
        attrs.push(KeyValue::new("deployment.environment.name", e.clone()));
    }
    for (k, v) in &config.resource_attributes {
        attrs.push(KeyValue::new(k.clone(), v.clone()));
    }
    // `Resource::builder_empty` skips the SDK's env detector: we already
    // parsed (and validated) OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
    Resource::builder_empty()
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_attributes(attrs)
        .build()
}

/// `os.type` as the semantic conventions spell it.
fn os_type() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "dragonfly" => "dragonflybsd",
        other => other,
    }
}
