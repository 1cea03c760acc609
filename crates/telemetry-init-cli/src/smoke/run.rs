//! `smoke run`: no stack needed. Starts the embedded OTLP receiver, runs the
//! service pointed at it, drives traffic with fresh trace context, stops it
//! with SIGTERM, then checks what was exported and printed.

use std::time::Duration;

use clap::Args;
use telemetry_init_testing::OtlpReceiver;

use super::child::{self, Service};
use super::context::{SmokeContext, parse_duration};
use super::downstream::Downstream;
use super::report::{Check, Report};
use super::traffic::{self, Sent};
use super::verify::{self, Observed};

/// The OTLP transport the service is told to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Protocol {
    /// OTLP/gRPC (the default of every SDK).
    #[value(name = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    #[value(name = "http/json")]
    HttpJson,
}

impl Protocol {
    fn env_value(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }
}

/// Arguments of `smoke run`.
#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// Number of requests (each with its own trace) besides the secret-carrying one.
    #[arg(long, default_value_t = 3)]
    pub requests: usize,
    /// Base URL of the service; by default `LISTEN_ADDR=127.0.0.1:0` is set and
    /// the address is read from the `"listen"` field of a stdout JSON line.
    #[arg(long)]
    pub target: Option<String>,
    /// Path that calls a downstream service; if it answers 404, `--fallback-path` is used.
    #[arg(long, default_value = "/chain")]
    pub chain_path: String,
    /// Path requested when the chain path does not exist.
    #[arg(long, default_value = "/")]
    pub fallback_path: String,
    /// Environment variable through which the service takes its downstream URL
    /// (e.g. `DOWNSTREAM_URL` for the demo): set to a recording downstream so
    /// tracestate, baggage and X-Request-ID forwarding are checked too.
    #[arg(long)]
    pub downstream_env: Option<String>,
    /// Expected `service.name` of the service's spans.
    #[arg(long)]
    pub service: Option<String>,
    /// How long the service may take to start listening.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub startup_timeout: Duration,
    /// How long the service may take to exit after SIGTERM.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub exit_timeout: Duration,
    /// How long to wait for telemetry that has not arrived when the service exited.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub deadline: Duration,
    /// OTLP protocol the service is told to use (`OTEL_EXPORTER_OTLP_PROTOCOL`);
    /// the embedded receiver accepts all three.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The service command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The last `n` lines, indented, with the smoke secrets masked.
fn tail(lines: &[child::Line], n: usize, secrets: &[String]) -> String {
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| {
            let text = secrets.iter().fold(l.text.clone(), |t, s| {
                t.replace(s.as_str(), "<smoke secret>")
            });
            format!("  {text}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn diagnostics(report: &mut Report, service: &Service, secrets: &[String]) {
    let err = service.stderr();
    if !err.is_empty() {
        report.diagnostics.push(format!(
            "service stderr (last 20 lines):\n{}",
            tail(&err, 20, secrets)
        ));
    }
    let out = service.stdout();
    if !out.is_empty() {
        report.diagnostics.push(format!(
            "service stdout (last 10 lines):\n{}",
            tail(&out, 10, secrets)
        ));
    }
}

/// Waits until a TCP connection to the target succeeds.
async fn wait_answering(
    service: &mut Service,
    base: &str,
    timeout: Duration,
) -> Result<(), String> {
    let addr = child::host_port(base);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = service.exited() {
            return Err(format!(
                "the service exited ({status}) before accepting connections on {addr}"
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "nothing accepted connections on {addr} within {timeout:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `smoke run` and fills the report.
pub(super) async fn run(args: &RunArgs) -> Result<Report, String> {
    let mut report = Report::new("run");
    let receiver = OtlpReceiver::start()
        .await
        .map_err(|e| format!("cannot start the embedded OTLP receiver: {e}"))?;
    let downstream = Downstream::start().await?;
    report.fact("command", args.command.join(" "));
    let endpoint = match args.protocol {
        Protocol::Grpc => receiver.grpc_endpoint(),
        Protocol::HttpProtobuf | Protocol::HttpJson => receiver.http_endpoint(),
    };
    report.fact(
        "OTLP receiver",
        format!("{endpoint} ({})", args.protocol.env_value()),
    );

    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
            args.protocol.env_value().to_owned(),
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL".to_owned(), "1000".to_owned()),
    ];
    if args.target.is_none() {
        env.push(("LISTEN_ADDR".to_owned(), "127.0.0.1:0".to_owned()));
    }
    if let Some(var) = &args.downstream_env {
        env.push((var.clone(), downstream.url()));
        report.fact(
            "recording downstream",
            format!("{var}={}", downstream.url()),
        );
    }
    let mut service = Service::spawn(&args.command, &env)?;

    // 1. Started and answering.
    let started = match &args.target {
        Some(t) => Ok(t.trim_end_matches('/').to_owned()),
        None => service.discover(args.startup_timeout).await,
    };
    let base = match started {
        Ok(base) => match wait_answering(&mut service, &base, args.startup_timeout).await {
            Ok(()) => {
                report.push(Check::pass(
                    "service started",
                    format!("listening at {base}"),
                ));
                base
            }
            Err(e) => {
                report.push(Check::fail("service started", vec![e]));
                service.kill().await;
                diagnostics(&mut report, &service, &[]);
                return Ok(report);
            }
        },
        Err(e) => {
            report.push(Check::fail("service started", vec![e]));
            service.kill().await;
            diagnostics(&mut report, &service, &[]);
            return Ok(report);
        }
    };
    report.fact("target", &base);

    // 2. Traffic.
    let client = traffic::client()?;
    let probe = traffic::send(&client, &base, &args.chain_path, SmokeContext::fresh(), &[]).await;
    let chained = probe.status.is_some_and(|s| s != 404 && s != 405);
    let path = if chained {
        args.chain_path.clone()
    } else {
        args.fallback_path.clone()
    };
    report.fact("path", &path);
    let mut sent: Vec<Sent> = Vec::new();
    if chained {
        sent.push(probe);
    }
    while sent.len() < args.requests.max(1) {
        sent.push(traffic::send(&client, &base, &path, SmokeContext::fresh(), &[]).await);
    }
    let secret_ctx = SmokeContext::fresh();
    let header_secret = format!("smoke-secret-{}", &secret_ctx.trace_id[..16]);
    let query_secret = format!("smoke-secret-{}", &secret_ctx.trace_id[16..]);
    let sep = if path.contains('?') { '&' } else { '?' };
    sent.push(
        traffic::send(
            &client,
            &base,
            &format!("{path}{sep}token={query_secret}"),
            secret_ctx,
            &[("authorization", format!("Bearer {header_secret}"))],
        )
        .await,
    );
    report.push(traffic::check_responses(&base, &sent));
    report.fact(
        "trace ids",
        sent.iter()
            .map(|s| s.ctx.trace_id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    );

    // Give the 1 s metric export a chance before the shutdown flush.
    let handle = receiver.handle();
    let _ = handle
        .wait_for_metric(verify::SLO_METRIC, Duration::from_secs(3))
        .await;

    // 3. SIGTERM.
    match service.terminate(args.exit_timeout).await {
        Ok(0) => report.push(Check::pass("exit on SIGTERM", "exit code 0")),
        Ok(code) => report.push(Check::fail(
            "exit on SIGTERM",
            vec![format!(
                "the service exited with code {code} after SIGTERM, expected 0"
            )],
        )),
        Err(e) => report.push(Check::fail("exit on SIGTERM", vec![e])),
    }

    // 4. Verify.
    let ctxs: Vec<SmokeContext> = sent.iter().map(|s| s.ctx.clone()).collect();
    let ids: Vec<String> = ctxs.iter().map(|c| c.trace_id.clone()).collect();
    let _ = handle
        .wait_for_spans_where(ctxs.len(), args.deadline, |s| ids.contains(&s.trace_id))
        .await;
    let _ = handle
        .wait_for_metric(verify::SLO_METRIC, Duration::from_millis(500))
        .await;
    let (spans, logs, metrics) = (handle.spans(), handle.logs(), handle.metrics());
    let (stdout, stderr) = (service.stdout(), service.stderr());
    let received = downstream.received();
    let secrets = [header_secret, query_secret];
    let observed = Observed {
        sent: &ctxs,
        chained,
        downstream_env: args.downstream_env.as_deref(),
        downstream: &received,
        spans: &spans,
        logs: &logs,
        metrics: &metrics,
        stdout: &stdout,
        stderr: &stderr,
        service: args.service.as_deref(),
        secrets: &secrets,
    };
    report.fact(
        "received",
        format!(
            "{} spans, {} log records, {} metrics, {} downstream calls",
            spans.len(),
            logs.len(),
            metrics.len(),
            received.len()
        ),
    );
    report.push(verify::incoming_traceparent(&observed));
    report.push(verify::downstream_propagation(&observed));
    report.push(verify::otlp_logs(&observed));
    report.push(verify::stdout_lines(&observed));
    report.push(verify::slo_metrics(&observed));
    report.push(verify::no_secrets(&observed));
    diagnostics(&mut report, &service, &secrets);
    receiver.shutdown().await;
    Ok(report)
}
