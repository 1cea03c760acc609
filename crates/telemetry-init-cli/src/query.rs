//! `telemetry-init query`: the viewer's query API on the terminal.
//!
//! `query traces` lists traces (the same filters as the UI's trace list),
//! `query trace ID` prints one trace as an indented tree with its log lines
//! under the span that wrote them, `query logs` searches log records. Each
//! takes `--json` to print the API's answer as it came, for scripts and CI.
//!
//! Everything printed that came from the store (span names, log bodies,
//! attribute values) is escaped: a control character in telemetry cannot
//! move the cursor or recolour the terminal.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde_json::Value;

/// Where `query` looks for the viewer when `--url` is absent.
const DEFAULT_URL: &str = "http://127.0.0.1:18888";

/// Deepest indentation of `query trace`'s tree.
const MAX_DEPTH_SHOWN: usize = 40;

/// Longest text printed for one value (a log body, a span name).
const MAX_TEXT: usize = 300;

/// Arguments of `telemetry-init query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The viewer's UI/query address (as printed by `telemetry-init dev`).
    #[arg(long, global = true, env = "TELEMETRY_INIT_VIEWER_URL", default_value = DEFAULT_URL)]
    url: String,
    /// Print the query API's JSON answer instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Recent traces, newest first.
    Traces(TracesArgs),
    /// One trace as an indented tree of spans, with the log lines each span wrote.
    Trace(TraceArgs),
    /// Log records, newest first.
    Logs(LogsArgs),
}

#[derive(Debug, Args)]
struct TracesArgs {
    /// Only traces whose root span is from this service.
    #[arg(long)]
    service: Option<String>,
    /// Only this route (`http.route`, `rpc.service/rpc.method` or span name).
    #[arg(long)]
    route: Option<String>,
    /// Only traces with a span of this status.
    #[arg(long, value_parser = ["ok", "error", "unset"])]
    status: Option<String>,
    /// Only traces with an error.
    #[arg(long)]
    error: bool,
    /// Minimum duration (`250ms`, `1s`).
    #[arg(long, value_parser = parse_duration)]
    min: Option<Duration>,
    /// Maximum duration.
    #[arg(long, value_parser = parse_duration)]
    max: Option<Duration>,
    /// An attribute that must equal a value: `key=value` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    attr: Vec<String>,
    /// How far back to look (`15m`, `1h`, `7d`).
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    since: Duration,
    /// At most this many traces (the API caps it at 1000).
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Continue after a previous answer (its `next_cursor`).
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Debug, Args)]
struct TraceArgs {
    /// The trace id (32 hex digits).
    trace_id: String,
}

#[derive(Debug, Args)]
struct LogsArgs {
    /// Only this service.
    #[arg(long)]
    service: Option<String>,
    /// Minimum severity: TRACE, DEBUG, INFO, WARN, ERROR or FATAL.
    #[arg(long)]
    level: Option<String>,
    /// Text the body must contain.
    #[arg(long, short = 'q')]
    grep: Option<String>,
    /// Only the records of this trace.
    #[arg(long)]
    trace_id: Option<String>,
    /// An attribute that must equal a value: `key=value` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    attr: Vec<String>,
    /// How far back to look (`15m`, `1h`, `7d`).
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    since: Duration,
    /// At most this many records (the API caps it at 1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Continue after a previous answer (its `next_cursor`).
    #[arg(long)]
    cursor: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (expected a duration such as 500ms, 15m, 1h, 7d)"))
}

/// Runs the subcommand: exit 0 with an answer, 1 when the trace is unknown;
/// `Err` (exit 2) when the viewer cannot be asked.
pub(crate) fn run(args: &QueryArgs) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let client = Client::new(&args.url)?;
        match &args.what {
            What::Traces(a) => {
                let answer = client.get("/api/traces", &traces_params(a)).await?;
                print_answer(args.json, &answer, render_traces)
            }
            What::Trace(a) => {
                let id = a.trace_id.trim().to_ascii_lowercase();
                if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "invalid trace id {:?}: expected up to 32 hex digits",
                        a.trace_id
                    ));
                }
                match client.get(&format!("/api/traces/{id}"), &[]).await {
                    Ok(answer) => print_answer(args.json, &answer, render_trace),
                    Err(QueryError::NotFound(message)) => {
                        eprintln!("telemetry-init: trace {id} not found: {message}");
                        Ok(ExitCode::from(1))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            What::Logs(a) => {
                let answer = client.get("/api/logs", &logs_params(a)).await?;
                print_answer(args.json, &answer, render_logs)
            }
        }
    })
}

fn print_answer(
    json: bool,
    answer: &Value,
    render: fn(&Value) -> String,
) -> Result<ExitCode, String> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(answer).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render(answer));
        if let Some(cursor) = answer["next_cursor"].as_str() {
            eprintln!("(more: add --cursor {})", clean(cursor));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn since_us(since: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(since).as_micros().to_string()
}

fn traces_params(a: &TracesArgs) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("from_us", since_us(a.since)),
        ("limit", a.limit.to_string()),
    ];
    push_opt(&mut p, "service", a.service.clone());
    push_opt(&mut p, "route", a.route.clone());
    push_opt(&mut p, "status", a.status.clone());
    if a.error {
        p.push(("error", "true".into()));
    }
    push_opt(&mut p, "min_us", a.min.map(|d| d.as_micros().to_string()));
    push_opt(&mut p, "max_us", a.max.map(|d| d.as_micros().to_string()));
    p.extend(a.attr.iter().map(|kv| ("attr", kv.clone())));
    push_opt(&mut p, "cursor", a.cursor.clone());
    p
}

fn logs_params(a: &LogsArgs) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("from_us", since_us(a.since)),
        ("limit", a.limit.to_string()),
    ];
    push_opt(&mut p, "service", a.service.clone());
    push_opt(
        &mut p,
        "level",
        a.level.as_ref().map(|l| l.to_ascii_uppercase()),
    );
    push_opt(&mut p, "q", a.grep.clone());
    push_opt(&mut p, "trace_id", a.trace_id.clone());
    p.extend(a.attr.iter().map(|kv| ("attr", kv.clone())));
    push_opt(&mut p, "cursor", a.cursor.clone());
    p
}

fn push_opt(p: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<String>) {
    if let Some(v) = value {
        p.push((key, v));
    }
}

// ------------------------------------------------------------------ client

#[derive(Debug)]
enum QueryError {
    NotFound(String),
    Other(String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::NotFound(m) | QueryError::Other(m) => f.write_str(m),
        }
    }
}

impl From<QueryError> for String {
    fn from(e: QueryError) -> String {
        e.to_string()
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(url: &str) -> Result<Client, String> {
        let base = url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "invalid --url {url:?}: expected http://host:port (as printed by `telemetry-init dev`)"
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client { http, base })
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, QueryError> {
        let url = format!("{}{path}", self.base);
        let full = reqwest::Url::parse_with_params(&url, params)
            .map_err(|e| QueryError::Other(format!("invalid viewer URL {url:?}: {e}")))?;
        let response = self
            .http
            .get(full)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                QueryError::Other(format!(
                    "cannot reach the viewer at {}: {} (is `telemetry-init dev` running? --url sets the address)",
                    self.base,
                    error_chain(&e)
                ))
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| QueryError::Other(format!("reading the answer of {url}: {e}")))?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            return json.ok_or_else(|| {
                QueryError::Other(format!(
                    "{url} answered {status} with a body that is not JSON"
                ))
            });
        }
        let message = json
            .as_ref()
            .and_then(|j| j["error"].as_str())
            .map(clean)
            .unwrap_or_else(|| status.to_string());
        if status == reqwest::StatusCode::NOT_FOUND {
            Err(QueryError::NotFound(message))
        } else {
            Err(QueryError::Other(format!(
                "the viewer answered {status}: {message}"
            )))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}

// --------------------------------------------------------------- rendering

/// Escapes control characters (terminal escape sequences included) and
/// shortens long text.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TEXT + 8));
    for (i, c) in s.chars().enumerate() {
        if i == MAX_TEXT {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn int(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or(0)
}

/// `12.3 ms`, `850 µs`, `2.10 s`.
fn fmt_duration(us: i64) -> String {
    let us = us.max(0) as f64;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// RFC 3339 in UTC with milliseconds.
fn fmt_time(us: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_micros(us.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn is_error(span: &Value) -> bool {
    span["status_code"] == "ERROR" || span["status_code"] == 2
}

fn render_traces(answer: &Value) -> String {
    let traces = answer["traces"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if traces.is_empty() {
        return "no traces match\n".into();
    }
    let mut out = format!(
        "{:<24}  {:>10}  {:>5}  {:<5}  {:<16}  {:<32}  {}\n",
        "START (UTC)", "DURATION", "SPANS", "ERROR", "SERVICE", "TRACE ID", "ROOT SPAN"
    );
    for t in traces {
        let _ = writeln!(
            out,
            "{:<24}  {:>10}  {:>5}  {:<5}  {:<16}  {:<32}  {}",
            fmt_time(int(t, "start_us")),
            fmt_duration(int(t, "duration_us")),
            int(t, "span_count"),
            if t["error"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                ""
            },
            clean(text(t, "service")),
            clean(text(t, "trace_id")),
            clean(text(t, "root_name")),
        );
    }
    out
}

fn log_line(log: &Value) -> String {
    let level = match text(log, "severity_text") {
        "" => severity_name(int(log, "severity_number")).to_owned(),
        t => t.to_ascii_uppercase(),
    };
    format!(
        "{} {:<5} {}",
        fmt_time(int(log, "time_us")),
        clean(&level),
        clean(text(log, "body"))
    )
}

fn severity_name(n: i64) -> &'static str {
    match n {
        21.. => "FATAL",
        17.. => "ERROR",
        13.. => "WARN",
        9.. => "INFO",
        5.. => "DEBUG",
        1.. => "TRACE",
        _ => "-",
    }
}

fn render_logs(answer: &Value) -> String {
    let logs = answer["logs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if logs.is_empty() {
        return "no log records match\n".into();
    }
    let mut out = String::new();
    for log in logs {
        let _ = write!(out, "{} [{}]", log_line(log), clean(text(log, "service")));
        if let Some(trace) = log["trace_id"].as_str().filter(|t| !t.is_empty()) {
            let _ = write!(out, " trace={}", clean(trace));
        }
        out.push('\n');
    }
    out
}

/// One trace as a tree: each span on its own line, indented under its
/// parent, followed by the log lines it wrote; spans whose parent is not in
/// the trace (not received, or from another trace) start their own tree.
fn render_trace(answer: &Value) -> String {
    let empty = Vec::new();
    let spans = answer["spans"].as_array().unwrap_or(&empty);
    let logs = answer["logs"].as_array().unwrap_or(&empty);
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        ids.insert(text(s, "span_id"), i);
    }
    let mut children: HashMap<&str, Vec<&Value>> = HashMap::new();
    let mut roots = Vec::new();
    for s in spans {
        let parent = text(s, "parent_span_id");
        if !parent.is_empty() && ids.contains_key(parent) {
            children.entry(parent).or_default().push(s);
        } else {
            roots.push(s);
        }
    }
    let mut span_logs: HashMap<&str, Vec<&Value>> = HashMap::new();
    let mut other_logs = Vec::new();
    for l in logs {
        let span = text(l, "span_id");
        if ids.contains_key(span) {
            span_logs.entry(span).or_default().push(l);
        } else {
            other_logs.push(l);
        }
    }
    let by_start = |a: &&Value, b: &&Value| int(a, "start_us").cmp(&int(b, "start_us"));
    roots.sort_by(by_start);
    for v in children.values_mut() {
        v.sort_by(by_start);
    }
    for v in span_logs.values_mut() {
        v.sort_by_key(|l| int(l, "time_us"));
    }
    let t0 = spans.iter().map(|s| int(s, "start_us")).min().unwrap_or(0);
    let t1 = spans.iter().map(|s| int(s, "end_us")).max().unwrap_or(0);

    let mut out = format!(
        "trace {} · {} · {} spans · {} log records · started {}\n",
        clean(text(answer, "trace_id")),
        fmt_duration(t1 - t0),
        spans.len(),
        logs.len(),
        fmt_time(t0)
    );
    // Iterative depth-first walk: a hostile trace cannot overflow the stack.
    let mut stack: Vec<(&Value, usize)> = roots.iter().rev().map(|s| (*s, 0)).collect();
    while let Some((span, depth)) = stack.pop() {
        // Indentation stops growing at MAX_DEPTH_SHOWN levels (a deeper
        // level is written out) so a 100 000-level trace stays linear.
        let mut indent = "  ".repeat(depth.min(MAX_DEPTH_SHOWN));
        if depth > MAX_DEPTH_SHOWN {
            let _ = write!(indent, "[depth {depth}] ");
        }
        let _ = write!(
            out,
            "{indent}{} [{} {}] {} at +{}",
            clean(text(span, "name")),
            clean(text(span, "kind")),
            clean(text(span, "service")),
            fmt_duration(int(span, "duration_us")),
            fmt_duration(int(span, "start_us") - t0),
        );
        if is_error(span) {
            let _ = write!(out, " ERROR {}", clean(text(span, "status_message")));
        }
        out.push('\n');
        let id = text(span, "span_id");
        for log in span_logs.get(id).into_iter().flatten() {
            let _ = writeln!(out, "{indent}  · {}", log_line(log));
        }
        for child in children.get(id).into_iter().flatten().rev() {
            stack.push((child, depth + 1));
        }
    }
    if !other_logs.is_empty() {
        out.push_str("log records of this trace without a received span:\n");
        for log in other_logs {
            let _ = writeln!(out, "  · {}", log_line(log));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trace_tree_nests_spans_and_their_logs() {
        let answer = json!({
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "spans": [
                {"span_id": "c", "parent_span_id": "b", "name": "GET /hello", "kind": "SERVER",
                 "service": "demo", "start_us": 4000, "end_us": 9000, "duration_us": 5000, "status_code": "UNSET"},
                {"span_id": "a", "parent_span_id": null, "name": "GET /chain", "kind": "SERVER",
                 "service": "demo", "start_us": 1000, "end_us": 13000, "duration_us": 12000, "status_code": "UNSET"},
                {"span_id": "b", "parent_span_id": "a", "name": "GET", "kind": "CLIENT",
                 "service": "demo", "start_us": 2000, "end_us": 10000, "duration_us": 8000, "status_code": "ERROR",
                 "status_message": "boom\u{1b}[31m"}
            ],
            "logs": [
                {"time_us": 5000, "severity_text": "INFO", "body": "saying hello", "span_id": "c"},
                {"time_us": 1500, "severity_number": 17, "body": "calling\ndownstream", "span_id": "a"},
                {"time_us": 1600, "severity_text": "WARN", "body": "stray", "span_id": "zz"}
            ]
        });
        let text = render_trace(&answer);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with(
                "trace 0af7651916cd43dd8448eb211c80319c · 12.00 ms · 3 spans · 3 log records"
            ),
            "{text}"
        );
        assert_eq!(lines[1], "GET /chain [SERVER demo] 12.00 ms at +0 µs");
        assert!(
            lines[2].starts_with("  · ") && lines[2].ends_with("ERROR calling\\ndownstream"),
            "{text}"
        );
        assert_eq!(
            lines[3],
            "  GET [CLIENT demo] 8.00 ms at +1.00 ms ERROR boom\\u{1b}[31m"
        );
        assert_eq!(lines[4], "    GET /hello [SERVER demo] 5.00 ms at +3.00 ms");
        assert!(
            lines[5].starts_with("      · ") && lines[5].ends_with("INFO  saying hello"),
            "{text}"
        );
        assert_eq!(
            lines[6],
            "log records of this trace without a received span:"
        );
        assert!(lines[7].ends_with("WARN  stray"), "{text}");
        assert!(!text.contains('\u{1b}'), "control characters are escaped");
    }

    #[test]
    fn deep_traces_do_not_recurse() {
        let spans: Vec<Value> = (0..100_000)
            .map(|i| {
                json!({"span_id": i.to_string(), "parent_span_id": if i == 0 { String::new() } else { (i - 1).to_string() },
                       "name": "s", "start_us": i, "end_us": i + 1})
            })
            .collect();
        let text = render_trace(&json!({"trace_id": "t", "spans": spans, "logs": []}));
        assert_eq!(text.lines().count(), 100_001);
    }

    #[test]
    fn clean_escapes_and_truncates() {
        assert_eq!(clean("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        let long = "x".repeat(1000);
        assert_eq!(clean(&long).chars().count(), MAX_TEXT + 1);
    }

    #[test]
    fn traces_table_and_empty_answers() {
        let t = render_traces(
            &json!({"traces": [{"trace_id": "ab", "root_name": "GET /x", "service": "api",
            "start_us": 0, "duration_us": 1500, "span_count": 2, "error": true}], "next_cursor": null}),
        );
        assert!(t.contains("1970-01-01T00:00:00.000Z"), "{t}");
        assert!(
            t.contains("1.50 ms") && t.contains("yes") && t.ends_with("GET /x\n"),
            "{t}"
        );
        assert_eq!(render_traces(&json!({"traces": []})), "no traces match\n");
        assert_eq!(render_logs(&json!({"logs": []})), "no log records match\n");
    }
}
