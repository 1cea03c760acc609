//! Read queries behind the JSON API (usable directly on a
//! [`rusqlite::Connection`] to the database file, e.g. by a CLI).
//!
//! ```no_run
//! use telemetry_init_viewer::store::query::{self, TraceFilter};
//!
//! let conn = rusqlite::Connection::open("telemetry-init.db")?;
//! let page = query::search_traces(&conn, &TraceFilter { service: Some("demo".into()), ..Default::default() })?;
//! for t in page.traces {
//!     println!("{} {} {}µs", t.trace_id, t.root_name, t.duration_us);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, HashSet};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;
use serde_json::Value as Json;

use super::encode::{hex, parse_hex};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size.
pub const MAX_LIMIT: usize = 1000;

/// Current time, unix microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A time range, unix microseconds, `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Start.
    pub from_us: i64,
    /// End.
    pub to_us: i64,
}

impl Range {
    /// The last hour (the API's default).
    pub fn last_hour() -> Self {
        let now = now_us();
        Range {
            from_us: now - 3_600_000_000,
            to_us: now + 1,
        }
    }

    /// `from`/`to` where given, the last hour otherwise.
    pub fn from_options(from_us: Option<i64>, to_us: Option<i64>) -> Self {
        let to = to_us.unwrap_or_else(|| now_us() + 1);
        let from = from_us.unwrap_or(to - 3_600_000_000);
        Range {
            from_us: from,
            to_us: to,
        }
    }
}

fn parse_json(s: Option<String>) -> Json {
    s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| Json::Object(Default::default()))
}

fn opt_hex(b: Option<Vec<u8>>) -> Option<String> {
    b.map(|b| hex(&b))
}

/// A JSON path for attribute `key`, or `None` for a key that cannot be one.
fn attr_path(key: &str) -> Option<String> {
    (!key.is_empty() && key.len() <= 256 && !key.contains(['"', '\\']))
        .then(|| format!("$.\"{key}\""))
}

fn cursor_parse(c: Option<&str>) -> Option<(i64, i64)> {
    let (a, b) = c?.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A query parameter was invalid.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

// ------------------------------------------------------------- services

/// One service.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceSummary {
    /// `service.name`.
    pub service: String,
    /// Spans received from it since the database was created.
    pub span_count: u64,
    /// Log records received from it since the database was created.
    pub log_count: u64,
    /// Newest span end or log time, unix µs.
    pub last_seen_us: i64,
}

/// Every service with its counters, most recently seen first.
pub fn services(conn: &Connection) -> rusqlite::Result<Vec<ServiceSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT service, sum(span_count), sum(log_count), max(last_seen_us) FROM resources
         GROUP BY service ORDER BY max(last_seen_us) DESC, service",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ServiceSummary {
            service: r.get(0)?,
            span_count: r.get::<_, i64>(1)?.max(0) as u64,
            log_count: r.get::<_, i64>(2)?.max(0) as u64,
            last_seen_us: r.get(3)?,
        })
    })?;
    rows.collect()
}

// ------------------------------------------------------------- RED

/// Rate, errors and duration of one service's route.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Red {
    /// `service.name`.
    pub service: String,
    /// `http.route`, `rpc.service/rpc.method`, or the span name.
    pub route: String,
    /// SERVER spans in the range.
    pub count: u64,
    /// `count` per second of the range.
    pub rate_per_s: f64,
    /// Spans with status ERROR or an HTTP status ≥ 500.
    pub errors: u64,
    /// `errors / count`.
    pub error_ratio: f64,
    /// Median duration, µs.
    pub p50_us: i64,
    /// 95th percentile duration, µs.
    pub p95_us: i64,
    /// 99th percentile duration, µs.
    pub p99_us: i64,
}

/// Nearest-rank percentile of sorted `v`.
fn percentile(v: &[i64], p: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// RED per service and route from the SERVER spans that started in `range`.
pub fn red(conn: &Connection, service: Option<&str>, range: Range) -> rusqlite::Result<Vec<Red>> {
    // Group by (resource row, route) reading the route as a borrowed str:
    // one allocation per group, not per span (this scans every SERVER span
    // of the range from a covering index).
    let mut names: HashMap<i64, String> = HashMap::new();
    {
        let mut stmt = conn
            .prepare_cached("SELECT id, service FROM resources WHERE ?1 IS NULL OR service = ?1")?;
        let mut rows = stmt.query(params![service])?;
        while let Some(r) = rows.next()? {
            names.insert(r.get(0)?, r.get(1)?);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT s.resource_id, s.route, s.duration_us, s.status_code = 2 OR coalesce(s.http_status >= 500, 0)
         FROM spans s INDEXED BY spans_server
         WHERE s.kind = 2 AND s.start_us >= ?1 AND s.start_us < ?2",
    )?;
    let mut groups: HashMap<i64, HashMap<String, (Vec<i64>, u64)>> = HashMap::new();
    let mut rows = stmt.query(params![range.from_us, range.to_us])?;
    while let Some(row) = rows.next()? {
        let rid: i64 = row.get(0)?;
        if !names.contains_key(&rid) {
            continue;
        }
        let route = match row.get_ref(1)? {
            rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or(""),
            _ => "",
        };
        let by_route = groups.entry(rid).or_default();
        let entry = match by_route.get_mut(route) {
            Some(e) => e,
            None => by_route.entry(route.to_owned()).or_default(),
        };
        entry.0.push(row.get(2)?);
        if row.get::<_, bool>(3)? {
            entry.1 += 1;
        }
    }
    // Resources of one service (e.g. several instances) merge here.
    let mut merged: HashMap<(String, String), (Vec<i64>, u64)> = HashMap::new();
    for (rid, by_route) in groups {
        let service = names.get(&rid).cloned().unwrap_or_default();
        for (route, (d, e)) in by_route {
            let m = merged.entry((service.clone(), route)).or_default();
            m.0.extend(d);
            m.1 += e;
        }
    }
    let seconds = ((range.to_us - range.from_us) as f64 / 1e6).max(1e-6);
    let mut out: Vec<Red> = merged
        .into_iter()
        .map(|((service, route), (mut d, errors))| {
            d.sort_unstable();
            let count = d.len() as u64;
            Red {
                service,
                route,
                count,
                rate_per_s: count as f64 / seconds,
                errors,
                error_ratio: if count == 0 {
                    0.0
                } else {
                    errors as f64 / count as f64
                },
                p50_us: percentile(&d, 50.0),
                p95_us: percentile(&d, 95.0),
                p99_us: percentile(&d, 99.0),
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.service, &a.route).cmp(&(&b.service, &b.route)));
    Ok(out)
}

// ------------------------------------------------------------- traces

/// Trace search filters; a trace matches when one of its spans matches all.
#[derive(Debug, Clone, Default)]
pub struct TraceFilter {
    /// `service.name` of the span.
    pub service: Option<String>,
    /// Route (`http.route`, `rpc.service/rpc.method`, SERVER span name).
    pub route: Option<String>,
    /// `ok`, `error` or `unset`.
    pub status: Option<String>,
    /// Only spans with status ERROR or an HTTP status ≥ 500.
    pub error: bool,
    /// Shortest duration, µs.
    pub min_us: Option<i64>,
    /// Longest duration, µs.
    pub max_us: Option<i64>,
    /// Attribute equality (`key`, `value` compared as text).
    pub attr: Option<(String, String)>,
    /// Span start range (default: last hour).
    pub from_us: Option<i64>,
    /// See `from_us`.
    pub to_us: Option<i64>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One trace in a search result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceSummary {
    /// Hex trace id.
    pub trace_id: String,
    /// Name of the root span (or the earliest span when the root is missing).
    pub root_name: String,
    /// Service of that span.
    pub service: String,
    /// Earliest span start, µs.
    pub start_us: i64,
    /// Latest span end minus earliest start, µs.
    pub duration_us: i64,
    /// Spans stored.
    pub span_count: u64,
    /// Whether a span has status ERROR or an HTTP status ≥ 500.
    pub error: bool,
}

/// A page of traces.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TracePage {
    /// Newest first.
    pub traces: Vec<TraceSummary>,
    /// Cursor of the next page, `None` at the end.
    pub next_cursor: Option<String>,
}

fn status_code(s: &str) -> Option<i64> {
    match s.to_ascii_lowercase().as_str() {
        "unset" => Some(0),
        "ok" => Some(1),
        "error" => Some(2),
        _ => None,
    }
}

/// Searches traces newest first; see [`TraceFilter`].
pub fn search_traces(conn: &Connection, f: &TraceFilter) -> Result<TracePage, QueryError> {
    let range = Range::from_options(f.from_us, f.to_us);
    let limit = f.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut sql = String::from(
        "SELECT s.id, s.trace_id, s.start_us FROM spans s INDEXED BY spans_start
         JOIN resources r ON r.id = s.resource_id WHERE s.start_us >= ? AND s.start_us < ?",
    );
    let mut args: Vec<SqlValue> = vec![range.from_us.into(), range.to_us.into()];
    if let Some(s) = &f.service {
        sql.push_str(" AND r.service = ?");
        args.push(s.clone().into());
    }
    if let Some(route) = &f.route {
        sql.push_str(" AND s.route = ?");
        args.push(route.clone().into());
    }
    if let Some(status) = &f.status {
        let code = status_code(status).ok_or_else(|| {
            QueryError::BadRequest(format!("status must be ok, error or unset, not {status:?}"))
        })?;
        sql.push_str(" AND s.status_code = ?");
        args.push(code.into());
    }
    if f.error {
        sql.push_str(" AND (s.status_code = 2 OR s.http_status >= 500)");
    }
    if let Some(min) = f.min_us {
        sql.push_str(" AND s.duration_us >= ?");
        args.push(min.into());
    }
    if let Some(max) = f.max_us {
        sql.push_str(" AND s.duration_us <= ?");
        args.push(max.into());
    }
    if let Some((k, v)) = &f.attr {
        let path = attr_path(k)
            .ok_or_else(|| QueryError::BadRequest(format!("bad attribute key {k:?}")))?;
        // Two attributes may live in columns (see `attr_moved`).
        sql.push_str(match k.as_str() {
            "http.route" => {
                " AND CAST(CASE WHEN s.attr_moved & 1 THEN s.route ELSE json_extract(s.attributes, ?) END AS TEXT) = ?"
            }
            "http.response.status_code" => {
                " AND CAST(CASE WHEN s.attr_moved & 2 THEN s.http_status ELSE json_extract(s.attributes, ?) END AS TEXT) = ?"
            }
            _ => " AND CAST(json_extract(s.attributes, ?) AS TEXT) = ?",
        });
        args.push(path.into());
        args.push(v.clone().into());
    }
    if let Some(c) = &f.cursor {
        let (start, id) =
            cursor_parse(Some(c)).ok_or_else(|| QueryError::BadRequest("bad cursor".into()))?;
        sql.push_str(" AND (s.start_us < ? OR (s.start_us = ? AND s.id < ?))");
        args.push(start.into());
        args.push(start.into());
        args.push(id.into());
    }
    sql.push_str(" ORDER BY s.start_us DESC, s.id DESC");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut ids: Vec<Vec<u8>> = Vec::new();
    let mut next_cursor = None;
    let mut last = (0i64, 0i64);
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let trace: Vec<u8> = row.get(1)?;
        let start: i64 = row.get(2)?;
        if seen.contains(&trace) {
            last = (start, id);
            continue;
        }
        if ids.len() == limit {
            next_cursor = Some(format!("{}.{}", last.0, last.1));
            break;
        }
        seen.insert(trace.clone());
        ids.push(trace);
        last = (start, id);
    }
    let mut traces = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(t) = trace_summary(conn, &id)? {
            traces.push(t);
        }
    }
    Ok(TracePage {
        traces,
        next_cursor,
    })
}

fn trace_summary(conn: &Connection, trace_id: &[u8]) -> rusqlite::Result<Option<TraceSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.name, r.service, s.start_us, s.duration_us, s.parent_span_id IS NULL,
                s.status_code = 2 OR coalesce(s.http_status >= 500, 0)
         FROM spans s JOIN resources r ON r.id = s.resource_id WHERE s.trace_id = ?1",
    )?;
    let mut rows = stmt.query(params![trace_id])?;
    let mut out: Option<TraceSummary> = None;
    let mut root_found = false;
    let mut end = i64::MIN;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let service: String = row.get(1)?;
        let start: i64 = row.get(2)?;
        let duration: i64 = row.get(3)?;
        let is_root: bool = row.get(4)?;
        let error: bool = row.get(5)?;
        end = end.max(start + duration);
        let t = out.get_or_insert_with(|| TraceSummary {
            trace_id: hex(trace_id),
            root_name: name.clone(),
            service: service.clone(),
            start_us: start,
            duration_us: 0,
            span_count: 0,
            error: false,
        });
        t.span_count += 1;
        t.error |= error;
        if is_root && !root_found {
            root_found = true;
            t.root_name = name;
            t.service = service;
        } else if !root_found && start < t.start_us {
            t.root_name = name;
            t.service = service;
        }
        t.start_us = t.start_us.min(start);
    }
    if let Some(t) = &mut out {
        t.duration_us = end - t.start_us;
    }
    Ok(out)
}

/// An event of a span.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventView {
    /// Name.
    pub name: String,
    /// Time, µs.
    pub time_us: i64,
    /// Attributes.
    pub attributes: Json,
}

/// A link of a span.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkView {
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Attributes.
    pub attributes: Json,
}

/// One stored span.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SpanView {
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id, `None` for a root.
    pub parent_span_id: Option<String>,
    /// Name.
    pub name: String,
    /// `SERVER`, `CLIENT`, `INTERNAL`, `PRODUCER`, `CONSUMER` or `UNSPECIFIED`.
    pub kind: &'static str,
    /// `service.name`.
    pub service: String,
    /// Start, µs.
    pub start_us: i64,
    /// End, µs.
    pub end_us: i64,
    /// Duration, µs.
    pub duration_us: i64,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: &'static str,
    /// Status message.
    pub status_message: Option<String>,
    /// Attributes.
    pub attributes: Json,
    /// Resource attributes.
    #[serde(skip_serializing_if = "Json::is_null")]
    pub resource: Json,
    /// Instrumentation scope name.
    pub scope: Option<String>,
    /// Events.
    pub events: Vec<EventView>,
    /// Links.
    pub links: Vec<LinkView>,
}

/// One stored log record.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogView {
    /// Row id (stable; used for paging).
    pub id: i64,
    /// Time, µs.
    pub time_us: i64,
    /// Severity text.
    pub severity_text: Option<String>,
    /// Severity number (1–24, 0 unspecified).
    pub severity_number: i64,
    /// Body (text, or JSON text for structured bodies).
    pub body: Option<String>,
    /// `service.name`.
    pub service: String,
    /// Hex trace id.
    pub trace_id: Option<String>,
    /// Hex span id.
    pub span_id: Option<String>,
    /// Attributes.
    pub attributes: Json,
}

/// A trace with its spans and correlated logs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceView {
    /// Hex trace id.
    pub trace_id: String,
    /// Spans, by start time.
    pub spans: Vec<SpanView>,
    /// Log records carrying the trace id, by time.
    pub logs: Vec<LogView>,
}

/// Most spans returned for one trace.
pub const MAX_TRACE_SPANS: usize = 10_000;
/// Most logs returned with one trace.
pub const MAX_TRACE_LOGS: usize = 5_000;

fn kind_name(k: i64) -> &'static str {
    match k {
        1 => "INTERNAL",
        2 => "SERVER",
        3 => "CLIENT",
        4 => "PRODUCER",
        5 => "CONSUMER",
        _ => "UNSPECIFIED",
    }
}

fn status_name(c: i64) -> &'static str {
    match c {
        1 => "OK",
        2 => "ERROR",
        _ => "UNSET",
    }
}

/// Parses a hex trace id (32 hex digits).
pub fn parse_trace_id(s: &str) -> Option<Vec<u8>> {
    parse_hex(s, 16).filter(|b| b.iter().any(|x| *x != 0))
}

/// One trace by id, `None` if no span of it is stored.
pub fn trace(conn: &Connection, trace_id: &[u8]) -> rusqlite::Result<Option<TraceView>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.span_id, s.parent_span_id, s.name, s.kind, r.service, s.start_us, s.duration_us,
                s.status_code, s.status_message, s.attributes, r.attributes, s.scope,
                s.attr_moved, s.route, s.http_status
         FROM spans s JOIN resources r ON r.id = s.resource_id
         WHERE s.trace_id = ?1 ORDER BY s.start_us, s.id LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![trace_id, MAX_TRACE_SPANS as i64])?;
    let mut spans = Vec::new();
    let mut rowids = Vec::new();
    while let Some(r) = rows.next()? {
        rowids.push(r.get::<_, i64>(0)?);
        let start: i64 = r.get(6)?;
        let duration: i64 = r.get(7)?;
        let mut attributes = parse_json(r.get(10)?);
        let moved: i64 = r.get(13)?;
        if let Json::Object(map) = &mut attributes {
            if moved & super::writer::MOVED_ROUTE != 0
                && let Some(route) = r.get::<_, Option<String>>(14)?
            {
                map.insert("http.route".into(), Json::String(route));
            }
            if moved & super::writer::MOVED_STATUS != 0
                && let Some(status) = r.get::<_, Option<i64>>(15)?
            {
                map.insert("http.response.status_code".into(), Json::from(status));
            }
        }
        spans.push(SpanView {
            span_id: hex(&r.get::<_, Vec<u8>>(1)?),
            parent_span_id: opt_hex(r.get(2)?),
            name: r.get(3)?,
            kind: kind_name(r.get(4)?),
            service: r.get(5)?,
            start_us: start,
            end_us: start + duration,
            duration_us: duration,
            status_code: status_name(r.get(8)?),
            status_message: r.get(9)?,
            attributes,
            resource: parse_json(r.get(11)?),
            scope: r.get(12)?,
            events: Vec::new(),
            links: Vec::new(),
        });
    }
    if spans.is_empty() {
        return Ok(None);
    }
    let index: HashMap<i64, usize> = rowids.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    {
        let mut ev = conn.prepare_cached(
            "SELECT span_row, name, time_us, attributes FROM span_events WHERE span_row = ?1 ORDER BY time_us",
        )?;
        let mut ln = conn.prepare_cached(
            "SELECT span_row, trace_id, span_id, attributes FROM span_links WHERE span_row = ?1",
        )?;
        for row in &rowids {
            let i = index[row];
            let mut q = ev.query(params![row])?;
            while let Some(r) = q.next()? {
                spans[i].events.push(EventView {
                    name: r.get(1)?,
                    time_us: r.get(2)?,
                    attributes: parse_json(r.get(3)?),
                });
            }
            let mut q = ln.query(params![row])?;
            while let Some(r) = q.next()? {
                spans[i].links.push(LinkView {
                    trace_id: hex(&r.get::<_, Vec<u8>>(1)?),
                    span_id: hex(&r.get::<_, Vec<u8>>(2)?),
                    attributes: parse_json(r.get(3)?),
                });
            }
        }
    }
    let logs = search_logs(
        conn,
        &LogFilter {
            trace_id: Some(hex(trace_id)),
            from_us: Some(i64::MIN),
            to_us: Some(i64::MAX),
            limit: Some(MAX_TRACE_LOGS),
            ascending: true,
            ..Default::default()
        },
    )
    .map_err(|e| match e {
        QueryError::Sqlite(e) => e,
        QueryError::BadRequest(m) => rusqlite::Error::InvalidParameterName(m),
    })?
    .logs;
    Ok(Some(TraceView {
        trace_id: hex(trace_id),
        spans,
        logs,
    }))
}

// ------------------------------------------------------------- logs

/// Log search filters.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// `service.name`.
    pub service: Option<String>,
    /// Lowest level: `trace`, `debug`, `info`, `warn`, `error`, `fatal` (that level and above).
    pub level: Option<String>,
    /// Case-insensitive substring of the body.
    pub q: Option<String>,
    /// Hex trace id.
    pub trace_id: Option<String>,
    /// Attribute equality (`key`, `value` compared as text).
    pub attr: Option<(String, String)>,
    /// Time range (default: last hour).
    pub from_us: Option<i64>,
    /// See `from_us`.
    pub to_us: Option<i64>,
    /// Page size (default 50, at most 1000; 5000 inside a trace).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Oldest first (default newest first).
    pub ascending: bool,
}

/// A page of log records.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogPage {
    /// Newest first.
    pub logs: Vec<LogView>,
    /// Cursor of the next page, `None` at the end.
    pub next_cursor: Option<String>,
}

/// The lowest severity number of a level name.
pub fn level_min(level: &str) -> Option<i64> {
    Some(match level.to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" => 5,
        "info" => 9,
        "warn" | "warning" => 13,
        "error" => 17,
        "fatal" => 21,
        _ => return None,
    })
}

/// Searches log records; see [`LogFilter`].
pub fn search_logs(conn: &Connection, f: &LogFilter) -> Result<LogPage, QueryError> {
    let range = Range::from_options(f.from_us, f.to_us);
    let max = if f.trace_id.is_some() {
        MAX_TRACE_LOGS
    } else {
        MAX_LIMIT
    };
    let limit = f.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, max);
    let mut sql = String::from(
        "SELECT l.id, l.time_us, l.severity_text, l.severity_number, l.body, r.service, l.trace_id, l.span_id, l.attributes
         FROM logs l JOIN resources r ON r.id = l.resource_id WHERE l.time_us >= ? AND l.time_us < ?",
    );
    let mut args: Vec<SqlValue> = vec![range.from_us.into(), range.to_us.into()];
    if let Some(s) = &f.service {
        sql.push_str(" AND r.service = ?");
        args.push(s.clone().into());
    }
    if let Some(level) = &f.level {
        let min = level_min(level).ok_or_else(|| {
            QueryError::BadRequest(format!(
                "level must be trace, debug, info, warn, error or fatal, not {level:?}"
            ))
        })?;
        sql.push_str(" AND l.severity_number >= ?");
        args.push(min.into());
    }
    if let Some(q) = &f.q {
        sql.push_str(" AND instr(lower(l.body), lower(?)) > 0");
        args.push(q.clone().into());
    }
    if let Some(t) = &f.trace_id {
        let id = parse_trace_id(t)
            .ok_or_else(|| QueryError::BadRequest(format!("bad trace_id {t:?}")))?;
        sql.push_str(" AND l.trace_id = ?");
        args.push(id.into());
    }
    if let Some((k, v)) = &f.attr {
        let path = attr_path(k)
            .ok_or_else(|| QueryError::BadRequest(format!("bad attribute key {k:?}")))?;
        sql.push_str(" AND CAST(json_extract(l.attributes, ?) AS TEXT) = ?");
        args.push(path.into());
        args.push(v.clone().into());
    }
    if let Some(c) = &f.cursor {
        let (t, id) =
            cursor_parse(Some(c)).ok_or_else(|| QueryError::BadRequest("bad cursor".into()))?;
        sql.push_str(if f.ascending {
            " AND (l.time_us > ? OR (l.time_us = ? AND l.id > ?))"
        } else {
            " AND (l.time_us < ? OR (l.time_us = ? AND l.id < ?))"
        });
        args.push(t.into());
        args.push(t.into());
        args.push(id.into());
    }
    sql.push_str(if f.ascending {
        " ORDER BY l.time_us, l.id LIMIT ?"
    } else {
        " ORDER BY l.time_us DESC, l.id DESC LIMIT ?"
    });
    args.push(((limit + 1) as i64).into());
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(LogView {
            id: r.get(0)?,
            time_us: r.get(1)?,
            severity_text: r.get(2)?,
            severity_number: r.get(3)?,
            body: r.get(4)?,
            service: r.get(5)?,
            trace_id: opt_hex(r.get(6)?),
            span_id: opt_hex(r.get(7)?),
            attributes: parse_json(r.get(8)?),
        })
    })?;
    let mut logs = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let next_cursor = if logs.len() > limit {
        logs.truncate(limit);
        logs.last().map(|l| format!("{}.{}", l.time_us, l.id))
    } else {
        None
    };
    Ok(LogPage { logs, next_cursor })
}

// ------------------------------------------------------------- metrics

/// One metric.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricSummary {
    /// Name.
    pub name: String,
    /// `gauge`, `counter`, `updown_counter`, `histogram`, `exponential_histogram` or `summary`.
    pub kind: String,
    /// Unit.
    pub unit: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Distinct attribute sets (per resource).
    pub series_count: u64,
}

/// Every metric, by name.
pub fn metrics(conn: &Connection) -> rusqlite::Result<Vec<MetricSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.name, m.kind, m.unit, m.description, count(s.id) FROM metrics m
         LEFT JOIN metric_series s ON s.metric_id = m.id GROUP BY m.id ORDER BY m.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(MetricSummary {
            name: r.get(0)?,
            kind: r.get(1)?,
            unit: r.get::<_, Option<String>>(2)?.filter(|s| !s.is_empty()),
            description: r.get::<_, Option<String>>(3)?.filter(|s| !s.is_empty()),
            series_count: r.get::<_, i64>(4)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

/// One point of a series.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PointView {
    /// Time, µs.
    pub time_us: i64,
    /// Value (histograms: the mean).
    pub value: Option<f64>,
    /// Histogram count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// Histogram sum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// Histogram bucket bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<Json>,
    /// Histogram bucket counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_counts: Option<Json>,
}

/// One series of a metric.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeriesView {
    /// Point attributes.
    pub attributes: Json,
    /// `service.name` of the resource.
    pub service: String,
    /// Points, oldest first.
    pub points: Vec<PointView>,
}

/// A metric with its series.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricView {
    /// Name.
    pub name: String,
    /// Kind (see [`MetricSummary::kind`]).
    pub kind: String,
    /// Unit.
    pub unit: Option<String>,
    /// Series.
    pub series: Vec<SeriesView>,
}

/// Most points returned per series (the newest).
pub const MAX_POINTS_PER_SERIES: usize = 2_000;
/// Most series returned per metric.
pub const MAX_SERIES: usize = 500;

/// One metric's series and points in `range`; `None` if unknown.
pub fn metric(conn: &Connection, name: &str, range: Range) -> rusqlite::Result<Option<MetricView>> {
    let head = conn
        .query_row(
            "SELECT id, kind, unit FROM metrics WHERE name = ?1",
            params![name],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((id, kind, unit)) = head else {
        return Ok(None);
    };
    let mut ss = conn.prepare_cached(
        "SELECT s.id, s.attributes, r.service FROM metric_series s JOIN resources r ON r.id = s.resource_id
         WHERE s.metric_id = ?1 ORDER BY s.id LIMIT ?2",
    )?;
    let series: Vec<(i64, String, String)> = ss
        .query_map(params![id, MAX_SERIES as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut ps = conn.prepare_cached(
        "SELECT time_us, value, count, sum, bounds, bucket_counts FROM metric_points
         WHERE series_id = ?1 AND time_us >= ?2 AND time_us < ?3 ORDER BY time_us DESC LIMIT ?4",
    )?;
    let mut out = Vec::new();
    for (sid, attrs, service) in series {
        let mut points: Vec<PointView> = ps
            .query_map(
                params![
                    sid,
                    range.from_us,
                    range.to_us,
                    MAX_POINTS_PER_SERIES as i64
                ],
                |r| {
                    Ok(PointView {
                        time_us: r.get(0)?,
                        value: r.get(1)?,
                        count: r.get(2)?,
                        sum: r.get(3)?,
                        bounds: r
                            .get::<_, Option<String>>(4)?
                            .and_then(|s| serde_json::from_str(&s).ok()),
                        bucket_counts: r
                            .get::<_, Option<String>>(5)?
                            .and_then(|s| serde_json::from_str(&s).ok()),
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        if points.is_empty() {
            continue;
        }
        points.reverse();
        out.push(SeriesView {
            attributes: parse_json(Some(attrs)),
            service,
            points,
        });
    }
    Ok(Some(MetricView {
        name: name.to_owned(),
        kind,
        unit: unit.filter(|u| !u.is_empty()),
        series: out,
    }))
}

// ------------------------------------------------------------- raw events

/// One raw event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventRecord {
    /// Row id.
    pub id: i64,
    /// Time received, µs.
    pub time_us: i64,
    /// Stream name.
    pub stream: String,
    /// `http` or `websocket`.
    pub transport: String,
    /// Remote address of the sender.
    pub remote_addr: Option<String>,
    /// Request headers (secrets redacted).
    pub headers: Json,
    /// The event.
    pub event: Json,
}

/// The newest raw events, optionally of one stream.
pub fn events(
    conn: &Connection,
    stream: Option<&str>,
    limit: Option<usize>,
) -> rusqlite::Result<Vec<EventRecord>> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.time_us, s.name, s.transport, s.remote_addr, s.headers, e.body
         FROM events e JOIN streams s ON s.id = e.stream_id
         WHERE (?1 IS NULL OR s.name = ?1) ORDER BY e.id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![stream, limit as i64], |r| {
        Ok(EventRecord {
            id: r.get(0)?,
            time_us: r.get(1)?,
            stream: r.get(2)?,
            transport: r.get(3)?,
            remote_addr: r.get(4)?,
            headers: parse_json(r.get(5)?),
            event: parse_json(r.get(6)?),
        })
    })?;
    rows.collect()
}
