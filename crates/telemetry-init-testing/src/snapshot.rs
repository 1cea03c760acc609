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

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value as Json, json};

use crate::model::{ReceivedLog, ReceivedMetric, ReceivedSpan};
use crate::store::ReceiverStats;

/// Number of traces in [`ReceiverHandle::snapshot_json`](crate::ReceiverHandle::snapshot_json).
pub const DEFAULT_MAX_TRACES: usize = 50;

/// Most uncorrelated log records (without a trace id) listed, the latest ones.
pub(crate) const MAX_UNCORRELATED_LOGS: usize = 100;

/// Builds the snapshot (without `stats`) from telemetry in arrival order.
pub fn snapshot_from(
    spans: &[ReceivedSpan],
    logs: &[ReceivedLog],
    metrics: &[ReceivedMetric],
    max_traces: usize,
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

    let traces: Vec<Json> = trace_ids
        .iter()
        .map(|(trace_id, _)| {
            let tspans = spans_by_trace.get(trace_id).cloned().unwrap_or_default();
            let tlogs = logs_by_trace.get(trace_id).cloned().unwrap_or_default();
            trace_tree(trace_id, &tspans, &tlogs)
        })
        .collect();

    let skip = uncorrelated.len().saturating_sub(MAX_UNCORRELATED_LOGS);
    let uncorrelated: Vec<Json> = uncorrelated[skip..].iter().map(to_json).collect();

    let mut latest: BTreeMap<(String, String), &ReceivedMetric> = BTreeMap::new();
    for m in metrics {
        let service = m.service_name().unwrap_or_default().to_owned();
        latest.insert((m.name.clone(), service), m);
    }
    let metrics: Vec<Json> = latest.values().map(to_json).collect();

    json!({
        "traces": traces,
        "uncorrelated_logs": uncorrelated,
        "metrics": metrics,
    })
}

/// Builds the full snapshot, `stats` included.
pub(crate) fn snapshot(
    spans: &[ReceivedSpan],
    logs: &[ReceivedLog],
    metrics: &[ReceivedMetric],
    stats: &ReceiverStats,
    max_traces: usize,
) -> Json {
    let mut v = snapshot_from(spans, logs, metrics, max_traces);
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
