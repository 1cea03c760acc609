//! The checks of `smoke run`, over what the embedded receiver got, what the
//! service printed and what the recording downstream saw. Each check names
//! the missing property in its problems.

use std::collections::{HashMap, HashSet};
use std::time::UNIX_EPOCH;

use telemetry_init_testing::{ReceivedLog, ReceivedMetric, ReceivedSpan, SpanKind, assert};

use super::backends::truncate;
use super::child::Line;
use super::context::{SmokeContext, baggage_has, tracestate_has};
use super::downstream::Received;
use super::report::Check;

/// Metric attributes allowed on the SLO metrics: the bounded HTTP server
/// semantic-convention attributes.
pub(super) const ALLOWED_METRIC_LABELS: &[&str] = &[
    "service.name",
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "error.type",
    "url.scheme",
    "network.protocol.name",
    "network.protocol.version",
];

/// The SLO metric every instrumented HTTP service must export
/// (`http.server.request.duration`, from the one list of metric names).
pub(super) const SLO_METRIC: &str =
    telemetry_init_semconv::metric::HTTP_SERVER_REQUEST_DURATION.name;

/// Everything a `smoke run` observed.
#[derive(Debug, Default)]
pub(super) struct Observed<'a> {
    /// Requests sent (each with its own trace).
    pub sent: &'a [SmokeContext],
    /// Whether the requested path is the chain path (it calls downstream).
    pub chained: bool,
    /// Name of the variable that pointed the service at the recorder.
    pub downstream_env: Option<&'a str>,
    /// Requests the recording downstream got.
    pub downstream: &'a [Received],
    /// Exported spans.
    pub spans: &'a [ReceivedSpan],
    /// Exported log records.
    pub logs: &'a [ReceivedLog],
    /// Exported metrics.
    pub metrics: &'a [ReceivedMetric],
    /// The service's stdout.
    pub stdout: &'a [Line],
    /// The service's stderr.
    pub stderr: &'a [Line],
    /// Expected `service.name`, if given.
    pub service: Option<&'a str>,
    /// The secret values sent (Authorization header, `token=` parameter).
    pub secrets: &'a [String],
}

impl Observed<'_> {
    fn in_trace<'s>(&'s self, trace_id: &'s str) -> impl Iterator<Item = &'s ReceivedSpan> + 's {
        self.spans.iter().filter(move |s| s.trace_id == trace_id)
    }

    fn trace_ids(&self) -> HashSet<&str> {
        self.sent.iter().map(|c| c.trace_id.as_str()).collect()
    }
}

fn describe(s: &ReceivedSpan) -> String {
    format!(
        "{} span `{}` of `{}`",
        s.kind,
        s.name,
        s.service_name().unwrap_or("<no service.name>")
    )
}

/// The entry SERVER span of each request has the injected span id as
/// parent (the incoming `traceparent` was respected).
pub(super) fn incoming_traceparent(o: &Observed<'_>) -> Check {
    const NAME: &str = "trace: incoming traceparent respected (entry SERVER span is a child of the injected span id, with the tracestate)";
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    for ctx in o.sent {
        let (tid, pid) = (&ctx.trace_id, &ctx.parent_span_id);
        let spans: Vec<&ReceivedSpan> = o.in_trace(tid).collect();
        let entry = spans.iter().find(|s| {
            s.kind == SpanKind::Server && s.parent_span_id.as_deref() == Some(pid.as_str())
        });
        match entry {
            Some(s) => {
                if let Some(want) = o.service
                    && s.service_name() != Some(want)
                {
                    problems.push(format!(
                        "the entry {} of trace {tid} has service.name `{}`, expected `{want}`",
                        describe(s),
                        s.service_name().unwrap_or("<none>")
                    ));
                }
                if !tracestate_has(&s.trace_state, ctx) {
                    problems.push(format!(
                        "the entry {} of trace {tid} lacks the incoming tracestate entry `{}` (its trace state is `{}`): the incoming tracestate was dropped",
                        describe(s),
                        ctx.tracestate(),
                        s.trace_state
                    ));
                }
                entries.push(*s);
            }
            None if spans.is_empty() => {
                let others: Vec<String> = o
                    .spans
                    .iter()
                    .filter(|s| {
                        s.kind == SpanKind::Server && !o.trace_ids().contains(s.trace_id.as_str())
                    })
                    .take(3)
                    .map(|s| {
                        format!(
                            "{} in trace {} with parent {}",
                            describe(s),
                            s.trace_id,
                            s.parent_span_id.as_deref().unwrap_or("none")
                        )
                    })
                    .collect();
                problems.push(if others.is_empty() {
                    format!(
                        "no span of trace {tid} was exported, and no SERVER span at all: is the service instrumented and exporting to OTEL_EXPORTER_OTLP_ENDPOINT?"
                    )
                } else {
                    format!(
                        "no span of trace {tid} was exported: the service ignored the incoming traceparent `00-{tid}-{pid}-01` and started new traces (e.g. {})",
                        others.join("; ")
                    )
                });
            }
            None => {
                let servers: Vec<String> = spans
                    .iter()
                    .filter(|s| s.kind == SpanKind::Server)
                    .map(|s| {
                        format!(
                            "{} with parent {}",
                            describe(s),
                            s.parent_span_id.as_deref().unwrap_or("none")
                        )
                    })
                    .collect();
                problems.push(format!(
                    "trace {tid} has {} span(s) but no SERVER span whose parent is the injected span id {pid} from the incoming traceparent (SERVER spans: {})",
                    spans.len(),
                    if servers.is_empty() { "none".into() } else { servers.join("; ") }
                ));
            }
        }
    }
    let names: HashSet<String> = entries.iter().map(|s| format!("`{}`", s.name)).collect();
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    Check::from_problems(
        NAME,
        problems,
        format!(
            "{} trace(s), entry span {}",
            entries.len(),
            names.join(", ")
        ),
    )
}

/// Trace context, tracestate, baggage and request id reached the downstream.
pub(super) fn downstream_propagation(o: &Observed<'_>) -> Check {
    const NAME: &str =
        "propagation downstream: traceparent, tracestate, baggage and X-Request-ID forwarded";
    if !o.chained {
        return Check::skip(
            NAME,
            "the chain path did not answer, so no downstream call was exercised",
        );
    }
    let ours = o.trace_ids();
    let recorded: HashMap<String, &Received> = o
        .downstream
        .iter()
        .filter_map(|r| {
            let (t, _) = r.trace_and_parent()?;
            ours.contains(t.as_str()).then_some((t, r))
        })
        .collect();
    let mut problems = Vec::new();
    let mut via_recorder = 0;
    let mut via_spans = 0;
    for ctx in o.sent {
        let tid = &ctx.trace_id;
        if let Some(r) = recorded.get(tid) {
            via_recorder += 1;
            let (_, parent) = r.trace_and_parent().unwrap_or_default();
            if parent == ctx.parent_span_id {
                problems.push(format!(
                    "the downstream call of trace {tid} forwarded the incoming traceparent unchanged (parent {parent}): the service's own span is not the parent"
                ));
            } else if !o.in_trace(tid).any(|s| s.span_id == parent) {
                problems.push(format!(
                    "the downstream call of trace {tid} carried parent span id {parent}, which is not an exported span of that trace (traceparent `{}`)",
                    r.traceparent.as_deref().unwrap_or("")
                ));
            }
            match r.tracestate.as_deref() {
                Some(ts) if tracestate_has(ts, ctx) => {}
                got => problems.push(format!(
                    "tracestate `{}` did not arrive downstream in trace {tid} (downstream got tracestate: {})",
                    ctx.tracestate(),
                    got.map(|g| format!("`{g}`")).unwrap_or_else(|| "none".into())
                )),
            }
            match r.baggage.as_deref() {
                Some(b) if baggage_has(b, ctx) => {}
                got => problems.push(format!(
                    "baggage `{}` did not arrive downstream in trace {tid} (downstream got baggage: {})",
                    ctx.baggage(),
                    got.map(|g| format!("`{g}`")).unwrap_or_else(|| "none".into())
                )),
            }
            if r.request_id.as_deref() != Some(ctx.request_id.as_str()) {
                problems.push(format!(
                    "{} `{}` was not forwarded downstream in trace {tid} (downstream got: {})",
                    super::context::request_id_header_name(),
                    ctx.request_id,
                    r.request_id
                        .as_deref()
                        .map(|g| format!("`{g}`"))
                        .unwrap_or_else(|| "none".into())
                ));
            }
            continue;
        }
        // No recorded call: the service may call itself (the demo's default).
        let spans: Vec<ReceivedSpan> = o.in_trace(tid).cloned().collect();
        let inner: Vec<&ReceivedSpan> = spans
            .iter()
            .filter(|s| {
                s.kind == SpanKind::Server
                    && s.parent_span_id.as_deref() != Some(ctx.parent_span_id.as_str())
            })
            .collect();
        if inner.is_empty() {
            let recorder = match o.downstream_env {
                Some(var) => format!(
                    "the recording downstream given as {var} got {} request(s), none in this trace",
                    o.downstream.len()
                ),
                None => "no recording downstream was given (--downstream-env)".to_owned(),
            };
            let with_traceparent = o
                .downstream
                .iter()
                .filter(|r| r.traceparent.is_some())
                .count();
            problems.push(format!(
                "the chain path made no downstream call carrying trace {tid}: {recorder}{} and no second SERVER span of the trace was exported",
                if o.downstream_env.is_some() && with_traceparent < o.downstream.len() {
                    format!(" ({} without any traceparent)", o.downstream.len() - with_traceparent)
                } else {
                    String::new()
                }
            ));
            continue;
        }
        via_spans += 1;
        let service = inner[0].service_name().unwrap_or("").to_owned();
        if let Err(e) = assert::trace_propagated(&spans, &service, &service) {
            problems.extend(e.problems);
        }
        if !inner.iter().any(|s| tracestate_has(&s.trace_state, ctx)) {
            problems.push(format!(
                "tracestate `{}` did not arrive downstream in trace {tid} (the downstream SERVER span's trace state is `{}`)",
                ctx.tracestate(),
                inner[0].trace_state
            ));
        }
    }
    let mut detail = String::new();
    if via_recorder > 0 {
        detail.push_str(&format!(
            "{via_recorder} downstream call(s) seen by the recording downstream with all four headers"
        ));
    }
    if via_spans > 0 {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(&format!(
            "{via_spans} downstream SERVER span(s) child of a CLIENT span with the tracestate (baggage and X-Request-ID not observable without --downstream-env)"
        ));
    }
    Check::from_problems(NAME, problems, detail)
}

/// OTLP log records are correlated, and some carry a smoke trace id.
pub(super) fn otlp_logs(o: &Observed<'_>) -> Check {
    const NAME: &str = "logs: OTLP log records correlated with exported spans";
    let mut problems = Vec::new();
    if let Err(e) = assert::logs_correlated(o.logs, o.spans) {
        problems.extend(e.problems);
    }
    let ours = o.trace_ids();
    let in_ours = o
        .logs
        .iter()
        .filter(|l| l.trace_id.as_deref().is_some_and(|t| ours.contains(t)))
        .count();
    if in_ours == 0 {
        problems.push(format!(
            "no OTLP log record carries a smoke trace id ({} log record(s) received in all): the service logs nothing inside requests, or its log records lack trace ids",
            o.logs.len()
        ));
    }
    Check::from_problems(
        NAME,
        problems,
        format!("{in_ours} record(s) in the smoke traces, all referring to exported spans"),
    )
}

fn field<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v str> {
    v.get(key)
        .or_else(|| v.get("fields").and_then(|f| f.get(key)))
        .and_then(serde_json::Value::as_str)
}

fn unix_nanos(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Every JSON stdout line written during a smoke request carries the
/// `trace_id`/`span_id` of an exported span.
pub(super) fn stdout_lines(o: &Observed<'_>) -> Check {
    const NAME: &str =
        "stdout: JSON lines written during requests carry trace_id/span_id of exported spans";
    let ours = o.trace_ids();
    let request_ids: HashSet<&str> = o.sent.iter().map(|c| c.request_id.as_str()).collect();
    let exported: HashSet<(&str, &str)> = o
        .spans
        .iter()
        .map(|s| (s.trace_id.as_str(), s.span_id.as_str()))
        .collect();
    let windows: Vec<(u64, u64)> = o
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server && ours.contains(s.trace_id.as_str()))
        .map(|s| (s.start_unix_nanos, s.end_unix_nanos))
        .collect();
    let mut json_lines = 0;
    let mut inside = 0;
    let mut problems = Vec::new();
    for line in o.stdout {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.text.trim()) else {
            continue;
        };
        if !v.is_object() {
            continue;
        }
        json_lines += 1;
        let trace = field(&v, "trace_id");
        let span = field(&v, "span_id");
        let time = field(&v, "timestamp")
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .map(unix_nanos)
            // No readable timestamp: when the line was read (slightly late).
            .or(Some(unix_nanos(line.at)));
        let during = time.is_some_and(|t| windows.iter().any(|(a, b)| *a <= t && t <= *b));
        let is_ours = field(&v, "request_id").is_some_and(|r| request_ids.contains(r))
            || trace.is_some_and(|t| ours.contains(t))
            || during;
        if !is_ours {
            continue;
        }
        inside += 1;
        let message = truncate(field(&v, "message").unwrap_or("<no message>"), 60);
        match (trace, span) {
            (Some(t), Some(s)) if exported.contains(&(t, s)) => {}
            (Some(t), Some(s)) => problems.push(format!(
                "stdout line `{message}` has trace_id {t} span_id {s}, which is not an exported span"
            )),
            _ => problems.push(format!(
                "stdout line `{message}` was written during a smoke request but has no trace_id/span_id (it has: {})",
                v.as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            )),
        }
    }
    if inside == 0 {
        problems.push(format!(
            "no JSON line on stdout was written during a smoke request ({} stdout line(s), {json_lines} JSON): expected request logs with trace_id, span_id and request_id",
            o.stdout.len()
        ));
    }
    Check::from_problems(
        NAME,
        problems,
        format!("{inside} line(s) during requests, all with ids of exported spans"),
    )
}

/// The SLO histogram arrived over OTLP with bounded labels.
pub(super) fn slo_metrics(o: &Observed<'_>) -> Check {
    const NAME: &str = "metrics: http.server.request.duration over OTLP with bounded labels";
    match assert::slo_metrics_present(o.metrics, &[SLO_METRIC], ALLOWED_METRIC_LABELS) {
        Ok(()) => {
            let mut routes: Vec<String> = o
                .metrics
                .iter()
                .filter(|m| m.name == SLO_METRIC)
                .flat_map(|m| m.points.iter())
                .filter_map(|p| p.attributes.get("http.route").map(|v| v.to_string()))
                .collect();
            routes.sort();
            routes.dedup();
            Check::pass(NAME, format!("routes: {}", routes.join(", ")))
        }
        Err(e) => Check::fail(NAME, e.problems),
    }
}

/// No credential leaked into spans, log records or the service's output.
pub(super) fn no_secrets(o: &Observed<'_>) -> Check {
    const NAME: &str = "no secrets: the Authorization header and ?token= never recorded";
    let mut problems = Vec::new();
    if let Err(e) = assert::no_secrets(o.spans, o.logs) {
        problems.extend(e.problems);
    }
    for secret in o.secrets {
        for s in o.spans {
            if serde_json::to_string(s).is_ok_and(|j| j.contains(secret.as_str())) {
                problems.push(format!(
                    "the secret sent with the request appears in exported {} (trace {})",
                    describe(s),
                    s.trace_id
                ));
            }
        }
        for (i, l) in o.logs.iter().enumerate() {
            if serde_json::to_string(l).is_ok_and(|j| j.contains(secret.as_str())) {
                problems.push(format!(
                    "the secret sent with the request appears in exported log record #{i}"
                ));
            }
        }
        for (what, lines) in [("stdout", o.stdout), ("stderr", o.stderr)] {
            let n = lines
                .iter()
                .filter(|l| l.text.contains(secret.as_str()))
                .count();
            if n > 0 {
                problems.push(format!(
                    "the secret sent with the request appears in {n} {what} line(s)"
                ));
            }
        }
    }
    problems.dedup();
    Check::from_problems(
        NAME,
        problems,
        format!(
            "{} span(s), {} log record(s), {} output line(s) checked",
            o.spans.len(),
            o.logs.len(),
            o.stdout.len() + o.stderr.len()
        ),
    )
}
