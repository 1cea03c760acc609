//! `telemetry-init dev`: a local collector with a store and a browser UI.
//!
//! Starts [`telemetry_init_viewer::Viewer`]: OTLP over gRPC and HTTP, the
//! SQLite store, the query API and the UI, all on loopback unless an address
//! flag says otherwise. Prints where to point `OTEL_EXPORTER_OTLP_ENDPOINT`
//! and the UI's URL, then runs until Ctrl-C or SIGTERM and flushes the store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

/// Arguments of `telemetry-init dev`.
#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// The database file (created if missing; kept across restarts).
    #[arg(long, value_name = "PATH", default_value = "telemetry-init.db")]
    db: PathBuf,
    /// An SLO spec to report burn rates for (repeatable). Default: every
    /// `slo/*.yaml` under the working directory, if any.
    #[arg(long, value_name = "FILE")]
    slo: Vec<PathBuf>,
    /// Address of the UI and the query API (loopback unless `--allow-remote`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:18888")]
    ui_addr: SocketAddr,
    /// Address of the OTLP/gRPC receiver.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4317")]
    grpc_addr: SocketAddr,
    /// Address of the OTLP/HTTP receiver (protobuf and JSON) and the raw
    /// event endpoints (`POST /v1/events`, `GET /v1/events/ws`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4318")]
    http_addr: SocketAddr,
    /// Allow non-loopback addresses. There is no authentication and no TLS:
    /// whoever reaches the UI port reads every stored span, log and metric,
    /// and whoever reaches the OTLP ports can write telemetry.
    #[arg(long)]
    allow_remote: bool,
    /// Delete what is older than AGE (`7d`, `24h`): for every signal, or
    /// `SIGNAL=AGE` for one of spans, logs, metrics, events. Repeatable.
    /// Default 7d.
    #[arg(long, value_name = "[SIGNAL=]AGE")]
    max_age: Vec<String>,
    /// Keep at most N rows (oldest deleted first), `SIGNAL=N` for one
    /// signal. Repeatable. Default 2000000 (events 1000000).
    #[arg(long, value_name = "[SIGNAL=]N")]
    max_rows: Vec<String>,
    /// Keep a signal's tables and indexes within SIZE on disk (`500MiB`,
    /// `2GB`), `SIGNAL=SIZE` for one signal. Repeatable. Default: none.
    #[arg(long, value_name = "[SIGNAL=]SIZE")]
    max_size: Vec<String>,
}

/// `slo/*.yaml` and `slo/*.yml` under `dir`, sorted; none if there is no such directory.
fn default_slo_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("slo")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| {
                    e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml")
                })
        })
        .collect();
    files.sort();
    files
}

/// Runs the viewer until a shutdown signal; `Err` (exit 2) if it cannot start.
pub(crate) fn run(args: &DevArgs) -> Result<ExitCode, String> {
    let slo_files = if args.slo.is_empty() {
        default_slo_files(Path::new("."))
    } else {
        args.slo.clone()
    };
    let retention = crate::retention::config(&args.max_age, &args.max_rows, &args.max_size)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let viewer = telemetry_init_viewer::Viewer::builder()
            .db_path(&args.db)
            .ui_addr(args.ui_addr)
            .grpc_addr(args.grpc_addr)
            .http_addr(args.http_addr)
            .slo_files(slo_files.clone())
            .allow_remote(args.allow_remote)
            .retention(retention)
            .start()
            .await
            .map_err(|e| format!("cannot start the viewer: {e}"))?;
        for addr in [args.ui_addr, args.grpc_addr, args.http_addr] {
            if !addr.ip().is_loopback() {
                eprintln!(
                    "warning: listening on {addr}, not loopback (--allow-remote): anyone who can \
                     reach it can send telemetry and read everything stored (no authentication, no TLS)"
                );
            }
        }
        let slos = if slo_files.is_empty() {
            "none (add --slo FILE)".to_owned()
        } else {
            slo_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "telemetry-init dev: storing telemetry in {db}\n\
             \n  UI:    {ui}\n\
             \n  Point a service at it (OTLP/gRPC):\n    export OTEL_EXPORTER_OTLP_ENDPOINT={grpc}\n\
             \n  or over OTLP/HTTP:\n    export OTEL_EXPORTER_OTLP_ENDPOINT={http} OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\n\
             \n  SLOs:  {slos}\n  Keep:  {keep}\n  Query: telemetry-init query traces --url {ui_base}\n\
             \nCtrl-C stops it (the store is flushed and kept).",
            db = args.db.display(),
            ui = viewer.ui_url(),
            grpc = viewer.grpc_endpoint(),
            http = viewer.http_endpoint(),
            ui_base = viewer.ui_url().trim_end_matches('/'),
            keep = crate::retention::describe(&retention),
        );
        shutdown_signal().await;
        eprintln!("telemetry-init dev: stopping, flushing the store");
        viewer.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_slo_files_are_the_yaml_files_under_slo() {
        let dir = std::env::temp_dir().join(format!("ti-dev-slo-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("slo/nested.yaml")).unwrap();
        std::fs::write(dir.join("slo/b.yml"), "").unwrap();
        std::fs::write(dir.join("slo/a.yaml"), "").unwrap();
        std::fs::write(dir.join("slo/notes.md"), "").unwrap();
        let found = default_slo_files(&dir);
        assert_eq!(found, vec![dir.join("slo/a.yaml"), dir.join("slo/b.yml")]);
        assert!(default_slo_files(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
