//! `telemetry-init smoke`: end-to-end telemetry smoke tests for CI.
//!
//! * `smoke live` checks a running stack (Alloy, Tempo, Loki,
//!   Prometheus/Mimir) after sending traced requests to a service;
//! * `smoke run -- <command…>` needs no stack: it runs the service against
//!   an in-process OTLP receiver and checks propagation, log correlation,
//!   SLO metrics and the absence of secrets.
//!
//! Both print a report (✓ / ✗ per check, with what is missing) or JSON
//! (`--json`), and exit 1 when a check fails.
//!
//! The request id is sent and checked under `TELEMETRY_REQUEST_ID_HEADER`
//! when it is set (the service under `smoke run` inherits it), else under
//! `x-request-id`; the checks keep their names either way.

use std::process::ExitCode;

use clap::{Args, Subcommand};

mod backends;
mod child;
mod context;
mod downstream;
mod live;
mod probes;
mod report;
mod run;
mod traffic;
mod verify;

/// Arguments of `telemetry-init smoke`.
#[derive(Debug, Args)]
pub(crate) struct SmokeArgs {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Check a running stack: collector ready, traced requests answered, the trace in Tempo,
    /// its logs in Loki and the SLO histogram in Prometheus/Mimir before a deadline.
    Live(Box<live::LiveArgs>),
    /// No stack needed: run a service against an embedded OTLP receiver, drive traced
    /// traffic, stop it with SIGTERM and check what it exported and printed.
    Run(Box<run::RunArgs>),
}

/// Runs `smoke`: exit code 0 when every check passed, 1 when one failed;
/// `Err` (exit 2) when the smoke test itself could not run.
pub(crate) fn run(args: &SmokeArgs) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let (report, json) = runtime.block_on(async {
        match &args.mode {
            Mode::Live(a) => live::run(a).await.map(|r| (r, a.json)),
            Mode::Run(a) => run::run(a).await.map(|r| (r, a.json)),
        }
    })?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        );
    } else {
        print!("{}", report.render_text());
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
