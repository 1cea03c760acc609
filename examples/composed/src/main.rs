//! The composed-layers example service; see the crate docs (`src/lib.rs`).
//!
//! Environment: `COMPOSED_ADDR` (default `127.0.0.1:3001`; port `0` picks
//! one), `COMPOSED_DEBUG_LOG` (default `debug.log`), and every variable of
//! telemetry-init (`OTEL_EXPORTER_OTLP_ENDPOINT`, `RUST_LOG`, …). Prints
//! `listening on ADDR` on stderr; stops on SIGTERM or Ctrl-C, flushing the
//! file and the telemetry.

use std::path::PathBuf;
use std::time::Duration;

use composed_layers::{ErrorCounter, app, subscriber};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("COMPOSED_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let log =
        PathBuf::from(std::env::var("COMPOSED_DEBUG_LOG").unwrap_or_else(|_| "debug.log".into()));
    let name = log
        .file_name()
        .ok_or("COMPOSED_DEBUG_LOG names no file")?
        .to_owned();
    let dir = match log.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };

    // Build, then install our layer *beside* the service's own.
    let telemetry = telemetry_init::builder()
        .service_name("composed-layers")
        .build()?;
    let (file, flush_file) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(dir, name));
    let errors = ErrorCounter::default();
    let subscriber = subscriber(&telemetry, file, errors.clone());
    let guard = telemetry.install_with(subscriber)?;

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    axum::serve(
        listener,
        app(errors).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stop())
    .await?;

    let report = guard.shutdown(Duration::from_secs(5)).await;
    if !report.is_complete() {
        eprintln!("telemetry not fully delivered: {report}");
    }
    // Last: the file writer flushes what it still holds.
    drop(flush_file);
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
