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
//! off). Beside it runs the telemetry-init viewer (`DEMO_VIEWER=false` turns
//! it off): a browser UI at `DEMO_VIEWER_ADDR` (default
//! <http://127.0.0.1:18888/>) over a SQLite store (`DEMO_VIEWER_DB`, default
//! `./telemetry-init.db`). Setting the endpoint sends everything to a real
//! collector instead. `/debug/telemetry` answers loopback clients only,
//! unless `DEMO_DEBUG_ALLOW_REMOTE=true`.
//!
//! On SIGTERM or Ctrl-C it stops accepting, gives in-flight requests
//! `TELEMETRY_DRAIN_TIMEOUT` (default 10 s), closes what is left, then
//! flushes telemetry within `TELEMETRY_SHUTDOWN_TIMEOUT` (default 5 s).

mod routes;
mod tee;

use std::net::SocketAddr;
use std::time::Duration;

use telemetry_init_testing::{OtlpReceiver, ReceiverHandle};
use telemetry_init_viewer::Viewer;

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
    let debug_allow_remote = env_flag("DEMO_DEBUG_ALLOW_REMOTE", false)?;
    let drain = telemetry_init::shutdown::drain_timeout()?;
    let receiver = if embedded {
        Some(OtlpReceiver::start().await?)
    } else {
        None
    };
    // The viewer runs beside the receiver; a relay (`tee`) hands every export
    // to both, so the UI and `/debug/telemetry` see the same telemetry.
    let viewer = match &receiver {
        Some(r) if env_flag("DEMO_VIEWER", true)? => start_viewer(r).await?,
        _ => None,
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
    if let Some((_, tee, _)) = &viewer {
        builder = builder.otlp_endpoint(tee.grpc_endpoint());
    } else if let Some(r) = &receiver {
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
        debug_allow_remote,
    };
    let app = routes::router(state).merge(telemetry.handle().metrics_router());

    let viewer_ui = viewer.as_ref().map(|(v, _, _)| v.ui_url());
    tracing::info!(
        listen = %local,
        embedded_receiver = embedded,
        viewer_ui,
        "demo listening"
    );
    if let Some(ui) = &viewer_ui {
        eprintln!("demo: listening on http://{local} · telemetry UI at {ui}");
    }
    let drained =
        telemetry_init::shutdown::serve_with_drain(listener, app, shutdown_signal(), drain).await?;
    tracing::info!(
        open_at_signal = drained.open_at_signal,
        closed_at_deadline = drained.closed_at_deadline,
        drain_ms = drained.elapsed.as_millis() as u64,
        "server stopped"
    );

    let flush_timeout = telemetry.handle().config().shutdown_timeout;
    let report = telemetry.shutdown(flush_timeout).await;
    if let Some((v, tee, slo_file)) = viewer {
        tee.shutdown().await;
        v.shutdown().await;
        let _ = std::fs::remove_file(slo_file);
    }
    if let Some(r) = receiver {
        r.shutdown().await;
    }
    if !report.is_complete() {
        eprintln!("demo: telemetry not fully delivered: {report}");
    }
    Ok(())
}

/// Starts the viewer (`DEMO_VIEWER_ADDR`, `DEMO_VIEWER_DB`) and the relay
/// that feeds it and `receiver`. `None` (with a warning) when the viewer
/// cannot start, e.g. its database is locked: the demo then runs as before,
/// exporting to the receiver alone.
async fn start_viewer(
    receiver: &OtlpReceiver,
) -> Result<Option<(Viewer, tee::Tee, std::path::PathBuf)>, Box<dyn std::error::Error>> {
    let explicit_addr = std::env::var("DEMO_VIEWER_ADDR").ok();
    let ui_addr: SocketAddr = explicit_addr
        .as_deref()
        .unwrap_or("127.0.0.1:18888")
        .parse()
        .map_err(|e| format!("invalid DEMO_VIEWER_ADDR: {e}"))?;
    let db = std::env::var("DEMO_VIEWER_DB").unwrap_or_else(|_| "telemetry-init.db".into());
    // The viewer reads SLO specs from files: the demo's own, as compiled in.
    let slo_file = std::env::temp_dir().join(format!(
        "telemetry-init-demo-{}.slo.yaml",
        std::process::id()
    ));
    std::fs::write(&slo_file, include_str!("../slo/demo.yaml"))
        .map_err(|e| format!("cannot write {}: {e}", slo_file.display()))?;
    let start = |addr: SocketAddr| {
        Viewer::builder()
            .db_path(&db)
            .ui_addr(addr)
            .grpc_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .http_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .slo_files(vec![slo_file.clone()])
            .start()
    };
    let mut started = start(ui_addr).await;
    if started.is_err() && explicit_addr.is_none() {
        // The default port is taken (another demo, `telemetry-init dev`):
        // any free port will do, the URL is printed.
        started = start(SocketAddr::from(([127, 0, 0, 1], 0))).await;
    }
    let viewer = match started {
        Ok(v) => v,
        Err(e) if explicit_addr.is_none() => {
            eprintln!("demo: the viewer did not start ({e}); /debug/telemetry still works");
            let _ = std::fs::remove_file(&slo_file);
            return Ok(None);
        }
        Err(e) => {
            return Err(
                format!("cannot start the viewer on DEMO_VIEWER_ADDR={ui_addr}: {e}").into(),
            );
        }
    };
    let tee = tee::Tee::start(&[viewer.grpc_endpoint(), receiver.grpc_endpoint()]).await?;
    Ok(Some((viewer, tee, slo_file)))
}

async fn shutdown_signal() {
    telemetry_init::shutdown::signal().await;
    tracing::info!("shutdown signal received");
}

/// Kept so the type is named in one place for `routes`.
pub(crate) type Receiver = Option<ReceiverHandle>;
