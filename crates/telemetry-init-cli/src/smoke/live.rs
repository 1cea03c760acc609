//! `smoke live`: checks a running stack end to end — collector ready, the
//! service answers, and one request's trace, logs and metrics arrive in
//! Tempo, Loki and Prometheus/Mimir before a deadline.

use std::time::Duration;

use clap::Args;
use tokio::time::Instant;

use super::context::{SmokeContext, parse_duration};
use super::probes::{
    LokiMatch, now_secs, poll_until, probe_alloy, probe_exemplars, probe_loki, probe_prometheus,
    probe_tempo,
};
use super::report::{Check, Report};
use super::traffic;

/// Arguments of `smoke live`.
#[derive(Debug, Args)]
pub(super) struct LiveArgs {
    /// Base URL of the instrumented service.
    #[arg(long)]
    pub target: String,
    /// Base URL of Grafana Alloy (its `/-/ready` is checked); omitted: not checked.
    #[arg(long)]
    pub alloy: Option<String>,
    /// Base URL of Tempo (`/api/traces/{id}`); omitted: not checked.
    #[arg(long)]
    pub tempo: Option<String>,
    /// Base URL of Loki (`/loki/api/v1/query_range`); omitted: not checked.
    #[arg(long)]
    pub loki: Option<String>,
    /// Prometheus API base URL (`…/api/v1/query` is appended), e.g.
    /// `http://mimir:9009/prometheus`; omitted: not checked.
    #[arg(long)]
    pub prometheus: Option<String>,
    /// How long to wait for the collector and for the data to arrive.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub deadline: Duration,
    /// Pause between two polls of a backend.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
    /// A service the trace must also have spans of (e.g. the downstream of
    /// `--path`); repeatable.
    #[arg(long, value_name = "SERVICE")]
    pub expect_service: Vec<String>,
    /// Path requested on the target.
    #[arg(long, default_value = "/chain")]
    pub path: String,
    /// Number of requests (each with its own trace) to send and find.
    #[arg(long, default_value_t = 1)]
    pub requests: usize,
    /// `service.name` of the target (the `service_name` label in Loki and Prometheus).
    #[arg(long, default_value = "demo")]
    pub service: String,
    /// How the Loki query matches the trace id.
    #[arg(long, value_enum, default_value_t = LokiMatch::Metadata)]
    pub loki_match: LokiMatch,
    /// Also require an exemplar of the latency histogram pointing at one of the traces.
    #[arg(long)]
    pub exemplars: bool,
    /// Header sent to Alloy, Tempo, Loki and Prometheus (not to the target), as
    /// `Name: value`; repeatable (e.g. `--backend-header 'X-Scope-OrgID: team-a'`).
    #[arg(long, value_name = "HEADER")]
    pub backend_header: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `smoke live` and fills the report.
pub(super) async fn run(args: &LiveArgs) -> Result<Report, String> {
    let client = traffic::client()?;
    let backend = traffic::client_with_headers(&args.backend_header)?;
    let mut report = Report::new("live");
    report.fact("target", traffic::join(&args.target, &args.path));
    report.fact("service", &args.service);
    let begun = Instant::now();
    let deadline = begun + args.deadline;
    let start_secs = now_secs();

    match &args.alloy {
        Some(alloy) => {
            let check = poll_until(
                "collector ready (Alloy /-/ready)",
                deadline,
                args.interval,
                begun,
                || probe_alloy(&backend, alloy),
            )
            .await;
            report.push(check);
        }
        None => report.push(Check::skip(
            "collector ready (Alloy /-/ready)",
            "no --alloy given",
        )),
    }

    let mut sent = Vec::new();
    for _ in 0..args.requests.max(1) {
        let ctx = SmokeContext::fresh();
        sent.push(traffic::send(&client, &args.target, &args.path, ctx, &[]).await);
    }
    for (i, s) in sent.iter().enumerate() {
        let n = if sent.len() == 1 {
            String::new()
        } else {
            format!(" #{}", i + 1)
        };
        report.fact(&format!("trace_id{n}"), &s.ctx.trace_id);
        report.fact(
            &format!("injected parent span id{n}"),
            &s.ctx.parent_span_id,
        );
        report.fact(&format!("request id{n}"), &s.ctx.request_id);
    }
    report.push(traffic::check_responses(&args.target, &sent));

    let sent_at = Instant::now();
    let tempo = async {
        match &args.tempo {
            Some(t) => {
                poll_until(
                    "tempo: trace received, entry span child of the injected parent",
                    deadline,
                    args.interval,
                    sent_at,
                    || probe_tempo(&backend, t, &sent, &args.expect_service),
                )
                .await
            }
            None => Check::skip("tempo: trace received", "no --tempo given"),
        }
    };
    let loki = async {
        match &args.loki {
            Some(l) => {
                poll_until(
                    "loki: log lines carrying the trace id",
                    deadline,
                    args.interval,
                    sent_at,
                    || {
                        probe_loki(
                            &backend,
                            l,
                            &args.service,
                            args.loki_match,
                            &sent,
                            start_secs,
                        )
                    },
                )
                .await
            }
            None => Check::skip("loki: log lines carrying the trace id", "no --loki given"),
        }
    };
    let prom = async {
        match &args.prometheus {
            Some(p) => {
                poll_until(
                    "prometheus: http_server_request_duration_seconds_count",
                    deadline,
                    args.interval,
                    sent_at,
                    || probe_prometheus(&backend, p, &args.service),
                )
                .await
            }
            None => Check::skip(
                "prometheus: http_server_request_duration_seconds_count",
                "no --prometheus given",
            ),
        }
    };
    let exemplars = async {
        match (&args.prometheus, args.exemplars) {
            (Some(p), true) => Some(
                poll_until(
                    "prometheus: exemplar links the histogram to a smoke trace",
                    deadline,
                    args.interval,
                    sent_at,
                    || probe_exemplars(&backend, p, &args.service, &sent, start_secs),
                )
                .await,
            ),
            _ => None,
        }
    };
    let (t, l, p, e) = tokio::join!(tempo, loki, prom, exemplars);
    report.push(t);
    report.push(l);
    report.push(p);
    if let Some(e) = e {
        report.push(e);
    }
    Ok(report)
}
