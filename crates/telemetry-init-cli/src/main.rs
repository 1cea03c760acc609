//! `telemetry-init`: the command line of the telemetry-init project.
//!
//! One module per subcommand; `main` only parses arguments and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod dev;
mod query;
mod retention;
mod rules;
mod smoke;

/// Tools for services instrumented with telemetry-init.
#[derive(Debug, Parser)]
#[command(name = "telemetry-init", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate Prometheus/Mimir SLO recording and burn-rate alert rules from an SLO spec.
    Rules(rules::RulesArgs),
    /// Smoke-test a service's telemetry: against a running stack (`live`) or an embedded receiver (`run`).
    Smoke(smoke::SmokeArgs),
    /// Run a local collector with a store and a browser UI (OTLP on 4317/4318, UI on 18888).
    Dev(dev::DevArgs),
    /// Ask a running viewer (`telemetry-init dev`) for traces, one trace as a tree, or logs.
    Query(query::QueryArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Rules(args) => rules::run(&args),
        Command::Smoke(args) => smoke::run(&args),
        Command::Dev(args) => dev::run(&args),
        Command::Query(args) => query::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("telemetry-init: {message}");
            ExitCode::from(2)
        }
    }
}
