//! The probes of `smoke live`: one query to Alloy, Tempo, Loki or
//! Prometheus each, judged pass / not yet, and the polling loop around them.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use telemetry_init_testing::assert::looks_like_raw_path;
use tokio::time::Instant;

use super::backends::{self, truncate};
use super::context::url_encode;
use super::report::Check;
use super::traffic::{self, Sent};

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Outcome of one poll: done (pass detail) or not yet (problems).
pub(crate) type Poll = Result<String, Vec<String>>;

/// The least time the first query of a check may take.
const FIRST_QUERY_BUDGET: Duration = Duration::from_secs(10);

/// Polls `probe` every `interval` until it passes or `deadline` passes; the
/// failure keeps the last poll's problems and says how long it waited.
pub(crate) async fn poll_until<F, Fut>(
    name: &str,
    deadline: Instant,
    interval: Duration,
    started: Instant,
    mut probe: F,
) -> Check
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll>,
{
    let mut polls = 0u32;
    loop {
        polls += 1;
        // Every check gets at least one complete query, even when an earlier
        // step (a collector slow to be ready) used up the deadline.
        let remaining = deadline.saturating_duration_since(Instant::now());
        let budget = if polls == 1 {
            remaining.max(FIRST_QUERY_BUDGET)
        } else {
            remaining.max(Duration::from_millis(1))
        };
        let outcome = match tokio::time::timeout(budget, probe()).await {
            Ok(o) => o,
            Err(_) => Err(vec![
                "the last query did not answer before the deadline".into(),
            ]),
        };
        match outcome {
            Ok(detail) => {
                return Check::pass(
                    name,
                    format!(
                        "{detail} (after {:.1}s, {polls} poll{})",
                        started.elapsed().as_secs_f64(),
                        if polls == 1 { "" } else { "s" }
                    ),
                );
            }
            Err(mut problems) => {
                if Instant::now() + interval >= deadline {
                    problems.push(format!(
                        "still missing at the deadline ({:.0}s after the requests, {polls} poll{})",
                        started.elapsed().as_secs_f64(),
                        if polls == 1 { "" } else { "s" }
                    ));
                    return Check::fail(name, problems);
                }
                tokio::time::sleep(interval).await;
            }
        }
    }
}

/// GETs a URL and parses the JSON answer; a non-2xx status is an error
/// carrying the start of the body. `Ok(None)` for a 404.
async fn get_json(client: &reqwest::Client, url: &str) -> Result<Option<Value>, String> {
    let res = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url} failed: {}", traffic::error_chain(&e)))?;
    let status = res.status();
    let text = res
        .text()
        .await
        .map_err(|e| format!("GET {url}: cannot read the body: {e}"))?;
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(format!(
            "GET {url} answered {status}: {}",
            truncate(text.trim(), 200)
        ));
    }
    if text.trim().is_empty() {
        return Err(format!("GET {url} answered {status} with an empty body"));
    }
    serde_json::from_str(&text).map(Some).map_err(|e| {
        format!(
            "GET {url}: the answer is not JSON ({e}): {}",
            truncate(&text, 200)
        )
    })
}

/// Alloy answers `/-/ready` with 2xx.
pub(crate) async fn probe_alloy(client: &reqwest::Client, alloy: &str) -> Poll {
    let url = traffic::join(alloy, "/-/ready");
    match client.get(&url).send().await {
        Ok(res) if res.status().is_success() => Ok(format!("GET {url} answered {}", res.status())),
        Ok(res) => {
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            Err(vec![format!(
                "GET {url} answered {status}: {}",
                truncate(body.trim(), 200)
            )])
        }
        Err(e) => Err(vec![format!(
            "GET {url} failed: {}",
            traffic::error_chain(&e)
        )]),
    }
}

/// Tempo has each trace, with a SERVER span child of the injected span id
/// and spans of every service in `expect_services`.
pub(crate) async fn probe_tempo(
    client: &reqwest::Client,
    tempo: &str,
    sent: &[Sent],
    expect_services: &[String],
) -> Poll {
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for s in sent {
        let (tid, pid) = (&s.ctx.trace_id, &s.ctx.parent_span_id);
        let url = traffic::join(tempo, &format!("/api/traces/{tid}"));
        let body = match get_json(client, &url).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                problems.push(format!(
                    "Tempo has no trace {tid} yet (GET {url} answered 404)"
                ));
                continue;
            }
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let spans = match backends::tempo_spans(&body) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("trace {tid}: {e}"));
                continue;
            }
        };
        if spans.is_empty() {
            problems.push(format!("Tempo answered for trace {tid} but with no span"));
            continue;
        }
        let entry = spans.iter().find(|sp| {
            sp.kind == "SERVER" && sp.trace_id == *tid && sp.parent_span_id.as_deref() == Some(pid)
        });
        let mut services: Vec<&str> = spans
            .iter()
            .filter_map(|sp| sp.service.as_deref())
            .collect();
        services.sort_unstable();
        services.dedup();
        for want in expect_services {
            if !services.contains(&want.as_str()) {
                problems.push(format!(
                    "trace {tid} has no span of service `{want}` yet (services: {})",
                    if services.is_empty() {
                        "none".to_owned()
                    } else {
                        services.join(", ")
                    }
                ));
            }
        }
        match entry {
            Some(sp) => found.push(format!(
                "`{}` of `{}` ({} spans; services {})",
                sp.name,
                sp.service.as_deref().unwrap_or("?"),
                spans.len(),
                services.join(", ")
            )),
            None => {
                let servers: Vec<String> = spans
                    .iter()
                    .filter(|sp| sp.kind == "SERVER")
                    .map(|sp| {
                        format!(
                            "`{}` (parent {})",
                            sp.name,
                            sp.parent_span_id.as_deref().unwrap_or("none")
                        )
                    })
                    .collect();
                problems.push(format!(
                    "trace {tid} has {} span(s) but no SERVER span whose parent is the injected span id {pid} (SERVER spans: {})",
                    spans.len(),
                    if servers.is_empty() { "none".to_owned() } else { servers.join(", ") }
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{} trace(s) found; entry SERVER span child of the injected parent: {}",
            found.len(),
            found.join("; ")
        ))
    } else {
        Err(problems)
    }
}

/// How the Loki check finds a trace's log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum LokiMatch {
    /// `{service_name="…"} | trace_id="…"`: `trace_id` as structured
    /// metadata, as Loki stores OTLP log records (the default).
    Metadata,
    /// `{service_name="…"} |= "…"`: a line filter, for log lines scraped
    /// from stdout where the id is only in the text.
    Line,
}

fn loki_query(service: &str, trace_id: &str, how: LokiMatch) -> String {
    match how {
        LokiMatch::Metadata => format!("{{service_name=\"{service}\"}} | trace_id=\"{trace_id}\""),
        LokiMatch::Line => format!("{{service_name=\"{service}\"}} |= \"{trace_id}\""),
    }
}

/// Loki has at least one line for each trace.
pub(crate) async fn probe_loki(
    client: &reqwest::Client,
    loki: &str,
    service: &str,
    how: LokiMatch,
    sent: &[Sent],
    start_secs: u64,
) -> Poll {
    let mut problems = Vec::new();
    let mut total = 0;
    for s in sent {
        let q = loki_query(service, &s.ctx.trace_id, how);
        let url = traffic::join(
            loki,
            &format!(
                "/loki/api/v1/query_range?query={}&start={}&end={}&limit=100&direction=backward",
                url_encode(&q),
                start_secs.saturating_sub(300) * 1_000_000_000,
                (now_secs() + 60) * 1_000_000_000
            ),
        );
        match get_json(client, &url).await {
            Ok(Some(body)) => match backends::loki_lines(&body) {
                Ok(lines) if lines.is_empty() => problems.push(format!(
                    "Loki returned no log line for `{q}` (no stream matched yet)"
                )),
                Ok(lines) => total += lines.len(),
                Err(e) => problems.push(format!("`{q}`: {e}")),
            },
            Ok(None) => problems.push(format!("GET {url} answered 404 (is this Loki?)")),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{total} log line(s) for the trace(s) ({})",
            match how {
                LokiMatch::Metadata => "trace_id as structured metadata",
                LokiMatch::Line => "line filter on the trace id",
            }
        ))
    } else {
        Err(problems)
    }
}

/// The latency histogram's count has series with bounded `http_route`s.
pub(crate) async fn probe_prometheus(client: &reqwest::Client, prom: &str, service: &str) -> Poll {
    let q = format!("http_server_request_duration_seconds_count{{service_name=\"{service}\"}}");
    let url = traffic::join(prom, &format!("/api/v1/query?query={}", url_encode(&q)));
    let body = match get_json(client, &url).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(vec![format!(
                "GET {url} answered 404 (is this the Prometheus API base URL? Mimir's is …/prometheus)"
            )]);
        }
        Err(e) => return Err(vec![e]),
    };
    let samples = backends::prom_vector(&body).map_err(|e| vec![e])?;
    if samples.is_empty() {
        return Err(vec![format!("`{q}` returned no series yet")]);
    }
    let mut routes: Vec<String> = samples
        .iter()
        .filter_map(|s| s.labels.get("http_route").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    routes.sort();
    routes.dedup();
    let mut problems = Vec::new();
    if routes.is_empty() {
        problems.push(format!(
            "`{q}` has {} series but none has an `http_route` label",
            samples.len()
        ));
    }
    for r in routes.iter().filter(|r| looks_like_raw_path(r)) {
        problems.push(format!(
            "label http_route=`{r}` looks like a raw path with ids (unbounded cardinality); expected route templates"
        ));
    }
    if problems.is_empty() {
        Ok(format!(
            "{} series of `{q}` (routes: {})",
            samples.len(),
            truncate(&routes.join(", "), 200)
        ))
    } else {
        Err(problems)
    }
}

/// An exemplar of the latency histogram points at a smoke trace.
pub(crate) async fn probe_exemplars(
    client: &reqwest::Client,
    prom: &str,
    service: &str,
    sent: &[Sent],
    start_secs: u64,
) -> Poll {
    let q = format!("http_server_request_duration_seconds_bucket{{service_name=\"{service}\"}}");
    let url = traffic::join(
        prom,
        &format!(
            "/api/v1/query_exemplars?query={}&start={}&end={}",
            url_encode(&q),
            start_secs.saturating_sub(300),
            now_secs() + 60
        ),
    );
    let body = match get_json(client, &url).await {
        Ok(Some(b)) => b,
        Ok(None) => return Err(vec![format!("GET {url} answered 404")]),
        Err(e) => return Err(vec![e]),
    };
    let ids = backends::exemplar_trace_ids(&body).map_err(|e| vec![e])?;
    let ours: Vec<&Sent> = sent
        .iter()
        .filter(|s| ids.contains(&s.ctx.trace_id))
        .collect();
    if ours.is_empty() {
        Err(vec![format!(
            "no exemplar of `{q}` points at a smoke trace ({} exemplar(s) with other trace ids)",
            ids.len()
        )])
    } else {
        Ok(format!("exemplar with trace_id {}", ours[0].ctx.trace_id))
    }
}
