//! The telemetry-init demo service.
//!
//! `cargo run -p demo` serves on `LISTEN_ADDR` (default `127.0.0.1:3000`):
//! `GET /hello`, `/users/{id}`, `/error` (500), `/slow?ms=N`, `/healthz`
//! (not traced), `/chain` (calls `DOWNSTREAM_URL` with trace context),
//! `/metrics` (Prometheus/OpenMetrics) and `/debug/telemetry`.
//!
//! With no `OTEL_EXPORTER_OTLP_ENDPOINT` it starts an OTLP receiver inside
//! the process and exports to it, so `/debug/telemetry` shows the traces,
//! logs and metrics without Docker (`DEMO_EMBEDDED_RECEIVER=false` turns that
//! off). Setting the endpoint sends everything to a real collector instead.

mod routes;

use std::net::SocketAddr;
use std::time::Duration;

use telemetry_init_testing::{OtlpReceiver, ReceiverHandle};

fn env_flag(name: &str, default: bool) -> Result<bool, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!(
                "invalid value for {name}: {v:?} (accepted: true, false)"
            )),
        },
    }
}

fn endpoint_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("demo: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()
        .map_err(|e| format!("invalid LISTEN_ADDR: {e}"))?;

    let embedded = env_flag("DEMO_EMBEDDED_RECEIVER", true)? && !endpoint_configured();
    let receiver = if embedded {
        Some(OtlpReceiver::start().await?)
    } else {
        None
    };

    let mut builder = telemetry_init::builder()
        .service_name("demo")
        .service_version(env!("CARGO_PKG_VERSION"));
    // The same SLO spec the alert rules are generated from: every latency
    // threshold becomes a histogram bucket boundary, so the SLI is exact.
    // (`examples/demo/slo/demo.yaml` is a symlink to the repository's
    // `slo/demo.yaml`, so the packaged crate carries its own copy.)
    let slos = telemetry_init_slo::SloSpec::from_yaml_str(include_str!("../slo/demo.yaml"))
        .map_err(|e| format!("slo/demo.yaml: {e}"))?;
    for threshold in slos
        .services
        .iter()
        .flat_map(|s| &s.objectives)
        .filter_map(|o| o.threshold)
    {
        builder = builder.slo_latency_threshold(threshold);
    }
    if let Some(r) = &receiver {
        builder = builder.otlp_endpoint(r.grpc_endpoint());
    }
    let telemetry = builder.install()?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr()?;
    let downstream =
        std::env::var("DOWNSTREAM_URL").unwrap_or_else(|_| format!("http://{local}/hello"));
    let state = routes::AppState {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        downstream,
        receiver: receiver.as_ref().map(OtlpReceiver::handle),
    };
    let app = routes::router(state).merge(telemetry.handle().metrics_router());

    tracing::info!(
        listen = %local,
        embedded_receiver = embedded,
        "demo listening"
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;

    let report = telemetry.shutdown(Duration::from_secs(5)).await;
    if let Some(r) = receiver {
        r.shutdown().await;
    }
    if !report.is_complete() {
        eprintln!("demo: telemetry not fully delivered: {report}");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// Kept so the type is named in one place for `routes`.
pub(crate) type Receiver = Option<ReceiverHandle>;
