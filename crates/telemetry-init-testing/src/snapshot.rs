//! JSON snapshots of received telemetry, for a `GET /debug/telemetry` style
//! endpoint.
//!
//! Shape:
//!
//! ```json
//! {
//!   "stats": { "requests": [..], "stored_spans": 3, ... },
//!   "traces": [
//!     { "trace_id": "…", "span_count": 3, "log_count": 2,
//!       "root_spans": [ { "name": "GET /", "span_id": "…", …,
//!                         "logs": [ { "body": "…", … } ],
//!                         "children": [ … ] } ],
//!       "unmatched_logs": [] }
//!   ],
//!   "uncorrelated_logs": [ … ],
//!   "metrics": [ { "name": "…", "kind": {…}, "points": [ … ], … } ]
//! }
//! ```
//!
//! Traces are most recent first (by the arrival of their last span); a span
//! whose parent was not received is shown as a root. `metrics` holds the
//! latest received entry of each metric name and service, sorted by name.
//!
//! # Bounds
//!
//! One client can make a trace of any size (thousands of requests sharing a
//! `traceparent`), so a snapshot is bounded whatever was received:
//!
//! * at most [`MAX_SPANS_PER_TRACE`] spans and [`MAX_LOGS_PER_TRACE`] log
//!   records per trace (the latest); `span_count` / `log_count` still say how
//!   many were received, and the trace gets
//!   `"truncated": {"spans_omitted": n, "logs_omitted": m}`;
//! * at most [`MAX_SNAPSHOT_BYTES`] of JSON: traces (oldest first), then
//!   uncorrelated logs, then metrics are left out until it fits, and the
//!   top level says so in `"truncated": {"traces_omitted": …,
//!   "uncorrelated_logs_omitted": …, "metrics_omitted": …, "max_bytes": …}`.
//!
//! [`ReceiverHandle::snapshot_json`](crate::ReceiverHandle::snapshot_json)
//! copies only those items out while it holds the store's lock, so a
//! snapshot never stalls ingestion for longer than one scan of the store.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value as Json, json};

use crate::model::{ReceivedLog, ReceivedMetric, ReceivedSpan};
use crate::store::ReceiverStats;

/// Number of traces in [`ReceiverHandle::snapshot_json`](crate::ReceiverHandle::snapshot_json).
pub const DEFAULT_MAX_TRACES: usize = 50;

/// Most uncorrelated log records (without a trace id) listed, the latest ones.
pub(crate) const MAX_UNCORRELATED_LOGS: usize = 100;

/// Most spans shown per trace (the latest received).
pub const MAX_SPANS_PER_TRACE: usize = 500;

/// Most log records shown per trace (the latest received).
pub const MAX_LOGS_PER_TRACE: usize = 500;

/// Largest snapshot, in bytes of JSON (4 MiB).
pub const MAX_SNAPSHOT_BYTES: usize = 4 * 1024 * 1024;

/// How many spans and logs a trace had in the store, when more than the
/// caller passed in (the receiver copies out only what is shown).
pub(crate) type Totals = HashMap<String, (usize, usize)>;

/// Builds the snapshot (without `stats`) from telemetry in arrival order,
/// with the [bounds](self#bounds) applied.
pub fn snapshot_from(
    spans: &[ReceivedSpan],
    logs: &[ReceivedLog],
    metrics: &[ReceivedMetric],
    max_traces: usize,
) -> Json {
    build(
        spans,
        logs,
        metrics,
        max_traces,
        &Totals::new(),
        MAX_SNAPSHOT_BYTES,
    )
}

fn build(
    spans: &[ReceivedSpan],
    logs: &[ReceivedLog],
    metrics: &[ReceivedMetric],
    max_traces: usize,
    totals: &Totals,
    max_bytes: usize,
) -> Json {
    // Trace ids, most recent (by last arrival) first.
    let mut last_seen: HashMap<&str, usize> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        last_seen.insert(&s.trace_id, i);
    }
    let mut trace_ids: Vec<(&str, usize)> = last_seen.into_iter().collect();
    trace_ids.sort_by_key(|t| std::cmp::Reverse(t.1));
    trace_ids.truncate(max_traces);

    let mut spans_by_trace: HashMap<&str, Vec<&ReceivedSpan>> = HashMap::new();
    for s in spans {
        spans_by_trace.entry(&s.trace_id).or_default().push(s);
    }
    let mut logs_by_trace: HashMap<&str, Vec<&ReceivedLog>> = HashMap::new();
    let mut uncorrelated = Vec::new();
    for l in logs {
        match &l.trace_id {
            Some(t) => logs_by_trace.entry(t).or_default().push(l),
            None => uncorrelated.push(l),
        }
    }

    let mut traces: Vec<Json> = trace_ids
        .iter()
        .map(|(trace_id, _)| {
            let tspans = spans_by_trace.get(trace_id).cloned().unwrap_or_default();
            let tlogs = logs_by_trace.get(trace_id).cloned().unwrap_or_default();
            let (span_total, log_total) = totals
                .get(*trace_id)
                .copied()
                .unwrap_or((tspans.len(), tlogs.len()));
            // The latest ones, when there are too many.
            let tspans = &tspans[tspans.len().saturating_sub(MAX_SPANS_PER_TRACE)..];
            let tlogs = &tlogs[tlogs.len().saturating_sub(MAX_LOGS_PER_TRACE)..];
            let mut tree = trace_tree(trace_id, tspans, tlogs);
            if let Json::Object(map) = &mut tree {
                map.insert("span_count".to_owned(), json!(span_total.max(tspans.len())));
                map.insert("log_count".to_owned(), json!(log_total.max(tlogs.len())));
                let spans_omitted = span_total.saturating_sub(tspans.len());
                let logs_omitted = log_total.saturating_sub(tlogs.len());
                if spans_omitted > 0 || logs_omitted > 0 {
                    map.insert(
                        "truncated".to_owned(),
                        json!({ "spans_omitted": spans_omitted, "logs_omitted": logs_omitted }),
                    );
                }
            }
            tree
        })
        .collect();

    let skip = uncorrelated.len().saturating_sub(MAX_UNCORRELATED_LOGS);
    let mut uncorrelated: Vec<Json> = uncorrelated[skip..].iter().map(to_json).collect();

    let mut latest: BTreeMap<(String, String), &ReceivedMetric> = BTreeMap::new();
    for m in metrics {
        let service = m.service_name().unwrap_or_default().to_owned();
        latest.insert((m.name.clone(), service), m);
    }
    let mut metrics: Vec<Json> = latest.values().map(to_json).collect();

    // The byte bound: measure each item once, then leave out the oldest
    // traces, the oldest uncorrelated logs and the last metrics until the
    // rest fits (with room for the envelope and `stats`).
    let size = |v: &Json| serde_json::to_vec(v).map_or(0, |b| b.len() + 1);
    let budget = max_bytes.saturating_sub(16 * 1024);
    let mut sizes: Vec<Vec<usize>> = [&traces, &uncorrelated, &metrics]
        .iter()
        .map(|list| list.iter().map(size).collect())
        .collect();
    let mut total: usize = sizes.iter().flatten().sum();
    let mut omitted = [0usize; 3];
    for (i, list) in [&mut traces, &mut uncorrelated, &mut metrics]
        .into_iter()
        .enumerate()
    {
        while total > budget {
            // Traces are most recent first, uncorrelated logs oldest first.
            let at = match i {
                1 => 0,
                _ => list.len().saturating_sub(1),
            };
            if list.is_empty() {
                break;
            }
            list.remove(at);
            total -= sizes[i].remove(at);
            omitted[i] += 1;
        }
    }

    let mut out = json!({
        "traces": traces,
        "uncorrelated_logs": uncorrelated,
        "metrics": metrics,
    });
    if omitted.iter().any(|&n| n > 0)
        && let Json::Object(map) = &mut out
    {
        map.insert(
            "truncated".to_owned(),
            json!({
                "traces_omitted": omitted[0],
                "uncorrelated_logs_omitted": omitted[1],
                "metrics_omitted": omitted[2],
                "max_bytes": max_bytes,
            }),
        );
    }
    out
}

/// Builds the full snapshot, `stats` included.
pub(crate) fn snapshot(
    spans: &[ReceivedSpan],
    logs: &[ReceivedLog],
    metrics: &[ReceivedMetric],
    stats: &ReceiverStats,
    max_traces: usize,
    totals: &Totals,
) -> Json {
    let mut v = build(spans, logs, metrics, max_traces, totals, MAX_SNAPSHOT_BYTES);
    if let Json::Object(map) = &mut v {
        map.insert("stats".to_owned(), to_json(stats));
    }
    v
}

fn to_json<T: serde::Serialize>(v: &T) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

fn trace_tree(trace_id: &str, spans: &[&ReceivedSpan], logs: &[&ReceivedLog]) -> Json {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&ReceivedSpan>> = HashMap::new();
    let mut roots: Vec<&ReceivedSpan> = Vec::new();
    for s in spans {
        match s.parent_span_id.as_deref() {
            Some(p) if ids.contains(p) && p != s.span_id => children.entry(p).or_default().push(s),
            _ => roots.push(s),
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_unix_nanos);
    }
    roots.sort_by_key(|s| s.start_unix_nanos);

    let mut logs_by_span: HashMap<&str, Vec<&ReceivedLog>> = HashMap::new();
    let mut unmatched = Vec::new();
    for l in logs {
        match l.span_id.as_deref() {
            Some(sid) if ids.contains(sid) => logs_by_span.entry(sid).or_default().push(l),
            _ => unmatched.push(to_json(l)),
        }
    }

    let mut visited = HashSet::new();
    let root_nodes: Vec<Json> = roots
        .iter()
        .map(|r| node(r, &children, &logs_by_span, &mut visited))
        .collect();
    json!({
        "trace_id": trace_id,
        "span_count": spans.len(),
        "log_count": logs.len(),
        "root_spans": root_nodes,
        "unmatched_logs": unmatched,
    })
}

fn node<'a>(
    span: &'a ReceivedSpan,
    children: &HashMap<&str, Vec<&'a ReceivedSpan>>,
    logs: &HashMap<&str, Vec<&ReceivedLog>>,
    visited: &mut HashSet<&'a str>,
) -> Json {
    let mut v = to_json(span);
    // Guard against cycles in malformed input.
    let first_visit = visited.insert(span.span_id.as_str());
    if let Json::Object(map) = &mut v {
        map.insert(
            "duration_ms".to_owned(),
            json!(span.duration_nanos() as f64 / 1e6),
        );
        let span_logs: Vec<Json> = logs
            .get(span.span_id.as_str())
            .map(|ls| ls.iter().map(to_json).collect())
            .unwrap_or_default();
        map.insert("logs".to_owned(), Json::Array(span_logs));
        let kids: Vec<Json> = if first_visit {
            children
                .get(span.span_id.as_str())
                .map(|cs| {
                    cs.iter()
                        .map(|c| node(c, children, logs, visited))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        map.insert("children".to_owned(), Json::Array(kids));
    }
    v
}
