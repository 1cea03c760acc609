//! The single writer thread: drains the bounded queue, writes each batch in
//! one transaction, enforces retention, and announces committed batches.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use rusqlite::{Connection, Transaction, params};

use super::encode::{
    self, attributes_json, attributes_json_or_empty, attributes_json_skipping, body_text, valid_id,
};
use super::retention::Retention;
use super::{Shared, StreamMeta};
use opentelemetry_proto::tonic::common::v1::KeyValue;

/// One unit of work for the writer.
pub(crate) enum Op {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Events {
        stream: Arc<StreamMeta>,
        time_us: i64,
        lines: Vec<String>,
    },
    /// Commit what is pending, then answer.
    Flush(std::sync::mpsc::SyncSender<()>),
    /// Commit what is pending, then stop.
    Shutdown,
}

/// What one committed batch wrote, for `/api/live`.
#[derive(Debug, Clone, Default)]
pub struct BatchSummary {
    /// Spans written.
    pub spans: u64,
    /// Log records written.
    pub logs: u64,
    /// Metric points written.
    pub metric_points: u64,
    /// Raw events written.
    pub events: u64,
    /// Services that sent spans in the batch.
    pub span_services: BTreeSet<String>,
    /// Services that sent logs in the batch.
    pub log_services: BTreeSet<String>,
    /// Services that sent metrics in the batch.
    pub metric_services: BTreeSet<String>,
    /// Streams that sent events in the batch.
    pub event_streams: BTreeSet<String>,
    /// Per resource row: spans, logs, newest time (for `resources` counters).
    pub(crate) per_resource: HashMap<i64, (u64, u64, i64)>,
}

impl BatchSummary {
    fn is_empty(&self) -> bool {
        self.spans == 0 && self.logs == 0 && self.metric_points == 0 && self.events == 0
    }
}

pub(crate) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    resources: HashMap<String, (i64, String)>,
    metrics: HashMap<String, i64>,
    series: HashMap<(i64, i64, String), i64>,
    streams: HashMap<u64, i64>,
    retention: Retention,
}

/// Most ops folded into one transaction.
const MAX_OPS_PER_BATCH: usize = 4096;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn nanos_to_us(n: u64) -> i64 {
    (n / 1000).min(i64::MAX as u64) as i64
}

fn service_of(resource: Option<&Resource>) -> &str {
    resource
        .and_then(|r| encode::str_attr(&r.attributes, "service.name"))
        .map(encode::name)
        .unwrap_or("unknown_service")
}

impl Writer {
    pub(crate) fn new(conn: Connection, shared: Arc<Shared>, retention: Retention) -> Self {
        Writer {
            conn,
            shared,
            resources: HashMap::new(),
            metrics: HashMap::new(),
            series: HashMap::new(),
            streams: HashMap::new(),
            retention,
        }
    }

    /// Runs until every sender is gone (the store shut down).
    pub(crate) fn run(mut self, rx: Receiver<(Op, usize)>) {
        let interval = self.shared.config.batch_interval;
        let mut last_retention = Instant::now() - Duration::from_secs(3600);
        loop {
            let first = match rx.recv_timeout(self.shared.config.retention_interval) {
                Ok(op) => Some(op),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Some(first) = first {
                let started = Instant::now();
                let mut ops = vec![first];
                // Fold whatever is queued (up to the batch interval) into one
                // transaction: one commit per batch is what makes ingest fast.
                while ops.len() < MAX_OPS_PER_BATCH && started.elapsed() < interval {
                    match rx.try_recv() {
                        Ok(op) => ops.push(op),
                        Err(_) => break,
                    }
                }
                let stop = ops.iter().any(|(op, _)| matches!(op, Op::Shutdown));
                self.write_batch(ops);
                if stop {
                    break;
                }
            }
            if last_retention.elapsed() >= self.shared.config.retention_interval {
                last_retention = Instant::now();
                match self.retention.enforce(&mut self.conn, &self.shared) {
                    // Streams may have gone with their last events.
                    Ok(n) if n > 0 => self.streams.clear(),
                    Ok(_) => {}
                    Err(e) => self.shared.record_error(format!("retention: {e}")),
                }
            }
        }
        // Leave a compact WAL behind for the next start.
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    fn write_batch(&mut self, ops: Vec<(Op, usize)>) {
        let bytes: usize = ops.iter().map(|(_, size)| size).sum();
        let mut attempts = 0;
        let result = loop {
            match self.try_write(&ops) {
                // Someone else (a `sqlite3` shell) holds the write lock past
                // the busy timeout: keep the batch and try again rather than
                // lose what was acknowledged.
                Err(e) if is_busy(&e) && attempts < MAX_BUSY_RETRIES => {
                    attempts += 1;
                    self.clear_caches();
                }
                other => break other,
            }
        };
        self.shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        match result {
            Ok(summary) => {
                self.retention.counts.spans += summary.spans;
                self.retention.counts.logs += summary.logs;
                self.retention.counts.metric_points += summary.metric_points;
                self.retention.counts.events += summary.events;
                if !summary.is_empty() {
                    let _ = self.shared.live.send(Arc::new(summary));
                }
            }
            Err(e) => {
                self.clear_caches();
                self.shared.record_error(format!("write batch: {e}"));
            }
        }
        for (op, _) in ops {
            if let Op::Flush(done) = op {
                let _ = done.send(());
            }
        }
    }

    /// The caches may name rows a rolled-back transaction removed.
    fn clear_caches(&mut self) {
        self.resources.clear();
        self.metrics.clear();
        self.series.clear();
        self.streams.clear();
    }

    fn try_write(&mut self, ops: &[(Op, usize)]) -> rusqlite::Result<BatchSummary> {
        let mut summary = BatchSummary::default();
        let now = now_us();
        let tx = self.conn.transaction()?;
        for (op, _) in ops {
            match op {
                Op::Traces(req) => write_traces(&tx, &mut self.resources, req, &mut summary)?,
                Op::Logs(req) => write_logs(&tx, &mut self.resources, req, &mut summary)?,
                Op::Metrics(req) => write_metrics(
                    &tx,
                    &mut self.resources,
                    &mut self.metrics,
                    &mut self.series,
                    req,
                    now,
                    &mut summary,
                )?,
                Op::Events {
                    stream,
                    time_us,
                    lines,
                } => write_events(
                    &tx,
                    &mut self.streams,
                    stream,
                    *time_us,
                    lines,
                    &mut summary,
                )?,
                Op::Flush(_) | Op::Shutdown => {}
            }
        }
        {
            let mut update = tx.prepare_cached(
                "UPDATE resources SET span_count = span_count + ?2, log_count = log_count + ?3,
                    last_seen_us = max(last_seen_us, ?4) WHERE id = ?1",
            )?;
            for (rid, (spans, logs, last)) in &summary.per_resource {
                update.execute(params![rid, *spans as i64, *logs as i64, last])?;
            }
        }
        tx.commit()?;
        Ok(summary)
    }
}

/// Retries of a batch that found the database locked (each waits up to the
/// 5 s busy timeout): about five minutes in all.
const MAX_BUSY_RETRIES: u32 = 60;

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn resource_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, (i64, String)>,
    resource: Option<&Resource>,
) -> rusqlite::Result<(i64, String)> {
    let attrs = attributes_json_or_empty(resource.map(|r| &r.attributes[..]).unwrap_or(&[]));
    if let Some(hit) = cache.get(&attrs) {
        return Ok(hit.clone());
    }
    let service = service_of(resource).to_owned();
    tx.execute(
        "INSERT OR IGNORE INTO resources (service, attributes) VALUES (?1, ?2)",
        params![service, attrs],
    )?;
    let id: i64 = tx.query_row(
        "SELECT id FROM resources WHERE attributes = ?1",
        params![attrs],
        |r| r.get(0),
    )?;
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(attrs, (id, service.clone()));
    Ok((id, service))
}

fn write_traces(
    tx: &Transaction<'_>,
    resources: &mut HashMap<String, (i64, String)>,
    req: &ExportTraceServiceRequest,
    summary: &mut BatchSummary,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO spans (trace_id, span_id, parent_span_id, resource_id, name, kind, start_us, duration_us,
            status_code, status_message, route, http_status, attr_moved, scope, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    let mut insert_event = tx.prepare_cached(
        "INSERT INTO span_events (span_row, time_us, name, attributes) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut insert_link = tx.prepare_cached(
        "INSERT INTO span_links (span_row, trace_id, span_id, attributes) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for rs in &req.resource_spans {
        let (rid, service) = resource_id(tx, resources, rs.resource.as_ref())?;
        let mut wrote = false;
        for ss in &rs.scope_spans {
            let scope = ss
                .scope
                .as_ref()
                .map(|s| encode::name(&s.name))
                .filter(|s| !s.is_empty());
            for span in &ss.spans {
                if !valid_id(&span.trace_id, 16) || !valid_id(&span.span_id, 8) {
                    continue; // unusable: nothing could find or join it
                }
                let parent = valid_id(&span.parent_span_id, 8).then_some(&span.parent_span_id[..]);
                let start = nanos_to_us(span.start_time_unix_nano);
                let end = nanos_to_us(span.end_time_unix_nano).max(start);
                // SERVER spans always get a route (their name when no
                // http.route/rpc.*): RED reads it from a covering index.
                let route = span_route(&span.attributes)
                    .or_else(|| (span.kind == 2).then(|| encode::name(&span.name).to_owned()));
                let http_status = encode::int_attr(&span.attributes, "http.response.status_code")
                    .or_else(|| encode::int_attr(&span.attributes, "http.status_code"))
                    .filter(|s| (100..1000).contains(s));
                // Attributes the columns hold exactly are not repeated in the
                // JSON (bytes per span); `attr_moved` says which, and reads
                // put them back.
                let (moved, skip) = moved_attributes(&span.attributes);
                let (code, message) = span
                    .status
                    .as_ref()
                    .map(|s| {
                        (
                            s.code,
                            encode::bounded(&s.message, encode::MAX_STRING_BYTES),
                        )
                    })
                    .unwrap_or((0, ""));
                insert.execute(params![
                    &span.trace_id[..],
                    &span.span_id[..],
                    parent,
                    rid,
                    encode::name(&span.name),
                    span.kind.clamp(0, 5),
                    start,
                    end - start,
                    code.clamp(0, 2),
                    (!message.is_empty()).then_some(message),
                    route.as_deref(),
                    http_status,
                    moved,
                    scope,
                    attributes_json_skipping(&span.attributes, skip),
                ])?;
                wrote = true;
                summary.spans += 1;
                let r = summary.per_resource.entry(rid).or_default();
                r.0 += 1;
                r.2 = r.2.max(end);
                if span.events.is_empty() && span.links.is_empty() {
                    continue;
                }
                let row = tx.last_insert_rowid();
                for ev in span.events.iter().take(encode::MAX_ATTRIBUTES) {
                    insert_event.execute(params![
                        row,
                        nanos_to_us(ev.time_unix_nano),
                        encode::name(&ev.name),
                        attributes_json(&ev.attributes),
                    ])?;
                }
                for link in span.links.iter().take(encode::MAX_ATTRIBUTES) {
                    if !valid_id(&link.trace_id, 16) || !valid_id(&link.span_id, 8) {
                        continue;
                    }
                    insert_link.execute(params![
                        row,
                        &link.trace_id[..],
                        &link.span_id[..],
                        attributes_json(&link.attributes),
                    ])?;
                }
            }
        }
        if wrote && !summary.span_services.contains(&service) {
            summary.span_services.insert(service);
        }
    }
    Ok(())
}

/// Bit of `spans.attr_moved`: `http.route` is in the `route` column.
pub(crate) const MOVED_ROUTE: i64 = 1;
/// Bit of `spans.attr_moved`: `http.response.status_code` is in `http_status`.
pub(crate) const MOVED_STATUS: i64 = 2;

/// Which of `http.route` / `http.response.status_code` the columns hold
/// exactly (a bounded-length string route; an integer status in 100..1000).
fn moved_attributes(attrs: &[KeyValue]) -> (i64, &'static [&'static str]) {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    let value = |key: &str| {
        attrs
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    };
    let route =
        matches!(value("http.route"), Some(V::StringValue(r)) if r.len() <= encode::MAX_NAME_BYTES);
    let status = matches!(value("http.response.status_code"), Some(V::IntValue(s)) if (100..1000).contains(s));
    match (route, status) {
        (true, true) => (
            MOVED_ROUTE | MOVED_STATUS,
            &["http.route", "http.response.status_code"],
        ),
        (true, false) => (MOVED_ROUTE, &["http.route"]),
        (false, true) => (MOVED_STATUS, &["http.response.status_code"]),
        (false, false) => (0, &[]),
    }
}

/// The RED route of a span: `http.route`, else `rpc.service/rpc.method`.
fn span_route(attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Option<String> {
    if let Some(r) = encode::str_attr(attrs, "http.route") {
        return Some(encode::name(r).to_owned());
    }
    let service = encode::str_attr(attrs, "rpc.service")?;
    let method = encode::str_attr(attrs, "rpc.method").unwrap_or("");
    Some(encode::name(&format!("{service}/{method}")).to_owned())
}

fn write_logs(
    tx: &Transaction<'_>,
    resources: &mut HashMap<String, (i64, String)>,
    req: &ExportLogsServiceRequest,
    summary: &mut BatchSummary,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO logs (time_us, resource_id, severity_number, severity_text, body, trace_id, span_id, scope, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let now = now_us();
    for rl in &req.resource_logs {
        let (rid, service) = resource_id(tx, resources, rl.resource.as_ref())?;
        let mut wrote = false;
        for sl in &rl.scope_logs {
            let scope = sl
                .scope
                .as_ref()
                .map(|s| encode::name(&s.name))
                .filter(|s| !s.is_empty());
            for log in &sl.log_records {
                let time = match (log.time_unix_nano, log.observed_time_unix_nano) {
                    (0, 0) => now,
                    (0, o) => nanos_to_us(o),
                    (t, _) => nanos_to_us(t),
                };
                let text = encode::name(&log.severity_text);
                insert.execute(params![
                    time,
                    rid,
                    log.severity_number.clamp(0, 24),
                    (!text.is_empty()).then_some(text),
                    body_text(log.body.as_ref()),
                    valid_id(&log.trace_id, 16).then_some(&log.trace_id[..]),
                    valid_id(&log.span_id, 8).then_some(&log.span_id[..]),
                    scope,
                    attributes_json(&log.attributes),
                ])?;
                wrote = true;
                summary.logs += 1;
                let r = summary.per_resource.entry(rid).or_default();
                r.1 += 1;
                r.2 = r.2.max(time);
            }
        }
        if wrote && !summary.log_services.contains(&service) {
            summary.log_services.insert(service);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_metrics(
    tx: &Transaction<'_>,
    resources: &mut HashMap<String, (i64, String)>,
    metrics: &mut HashMap<String, i64>,
    series: &mut HashMap<(i64, i64, String), i64>,
    req: &ExportMetricsServiceRequest,
    now: i64,
    summary: &mut BatchSummary,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO metric_points (series_id, time_us, value, count, sum, bounds, bucket_counts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for rm in &req.resource_metrics {
        let (rid, service) = resource_id(tx, resources, rm.resource.as_ref())?;
        let mut wrote = false;
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let Some(data) = &m.data else { continue };
                let mid = metric_id(tx, metrics, m, kind_name(data))?;
                let mut point = |attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
                                 t: u64,
                                 value: Option<f64>,
                                 count: Option<u64>,
                                 sum: Option<f64>,
                                 bounds: Option<String>,
                                 buckets: Option<String>|
                 -> rusqlite::Result<()> {
                    let attrs = attributes_json_or_empty(attrs);
                    let key = (mid, rid, attrs);
                    let sid = match series.get(&key) {
                        Some(id) => *id,
                        None => {
                            tx.execute(
                                "INSERT OR IGNORE INTO metric_series (metric_id, resource_id, attributes) VALUES (?1, ?2, ?3)",
                                params![mid, rid, key.2],
                            )?;
                            let id: i64 = tx.query_row(
                                "SELECT id FROM metric_series WHERE metric_id = ?1 AND resource_id = ?2 AND attributes = ?3",
                                params![mid, rid, key.2],
                                |r| r.get(0),
                            )?;
                            if series.len() > 100_000 {
                                series.clear();
                            }
                            series.insert(key, id);
                            id
                        }
                    };
                    let time = if t == 0 { now } else { nanos_to_us(t) };
                    insert.execute(params![
                        sid,
                        time,
                        value.filter(|v| v.is_finite()),
                        count.map(|c| c.min(i64::MAX as u64) as i64),
                        sum.filter(|v| v.is_finite()),
                        bounds,
                        buckets
                    ])?;
                    summary.metric_points += 1;
                    Ok(())
                };
                let num = |v: &Option<number_data_point::Value>| match v {
                    Some(number_data_point::Value::AsDouble(d)) => Some(*d),
                    Some(number_data_point::Value::AsInt(i)) => Some(*i as f64),
                    None => None,
                };
                match data {
                    metric::Data::Gauge(g) => {
                        for p in &g.data_points {
                            point(
                                &p.attributes,
                                p.time_unix_nano,
                                num(&p.value),
                                None,
                                None,
                                None,
                                None,
                            )?;
                        }
                    }
                    metric::Data::Sum(s) => {
                        for p in &s.data_points {
                            point(
                                &p.attributes,
                                p.time_unix_nano,
                                num(&p.value),
                                None,
                                None,
                                None,
                                None,
                            )?;
                        }
                    }
                    metric::Data::Histogram(h) => {
                        for p in &h.data_points {
                            let mean = p.sum.filter(|_| p.count > 0).map(|s| s / p.count as f64);
                            point(
                                &p.attributes,
                                p.time_unix_nano,
                                mean,
                                Some(p.count),
                                p.sum,
                                Some(json_list(p.explicit_bounds.iter().copied())),
                                Some(json_list(p.bucket_counts.iter().map(|c| *c as f64))),
                            )?;
                        }
                    }
                    metric::Data::ExponentialHistogram(h) => {
                        for p in &h.data_points {
                            let mean = p.sum.filter(|_| p.count > 0).map(|s| s / p.count as f64);
                            point(
                                &p.attributes,
                                p.time_unix_nano,
                                mean,
                                Some(p.count),
                                p.sum,
                                None,
                                None,
                            )?;
                        }
                    }
                    metric::Data::Summary(s) => {
                        for p in &s.data_points {
                            let mean = (p.count > 0).then(|| p.sum / p.count as f64);
                            point(
                                &p.attributes,
                                p.time_unix_nano,
                                mean,
                                Some(p.count),
                                Some(p.sum),
                                None,
                                None,
                            )?;
                        }
                    }
                }
                wrote = true;
            }
        }
        if wrote && !summary.metric_services.contains(&service) {
            summary.metric_services.insert(service);
        }
    }
    Ok(())
}

fn json_list(values: impl Iterator<Item = f64>) -> String {
    let mut out = String::from("[");
    for (i, v) in values.take(1024).enumerate() {
        if i > 0 {
            out.push(',');
        }
        if v.is_finite() {
            out.push_str(&v.to_string());
        } else {
            out.push_str("null");
        }
    }
    out.push(']');
    out
}

fn kind_name(data: &metric::Data) -> &'static str {
    match data {
        metric::Data::Gauge(_) => "gauge",
        metric::Data::Sum(s) if s.is_monotonic => "counter",
        metric::Data::Sum(_) => "updown_counter",
        metric::Data::Histogram(_) => "histogram",
        metric::Data::ExponentialHistogram(_) => "exponential_histogram",
        metric::Data::Summary(_) => "summary",
    }
}

fn metric_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, i64>,
    m: &Metric,
    kind: &str,
) -> rusqlite::Result<i64> {
    let name = encode::name(&m.name);
    if let Some(id) = cache.get(name) {
        return Ok(*id);
    }
    tx.execute(
        "INSERT INTO metrics (name, kind, unit, description) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, unit = excluded.unit, description = excluded.description",
        params![
            name,
            kind,
            encode::name(&m.unit),
            encode::bounded(&m.description, encode::MAX_NAME_BYTES)
        ],
    )?;
    let id: i64 = tx.query_row(
        "SELECT id FROM metrics WHERE name = ?1",
        params![name],
        |r| r.get(0),
    )?;
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(name.to_owned(), id);
    Ok(id)
}

fn write_events(
    tx: &Transaction<'_>,
    streams: &mut HashMap<u64, i64>,
    stream: &StreamMeta,
    time_us: i64,
    lines: &[String],
    summary: &mut BatchSummary,
) -> rusqlite::Result<()> {
    let sid = match streams.get(&stream.key) {
        Some(id) => *id,
        None => {
            tx.execute(
                "INSERT INTO streams (name, transport, remote_addr, headers, opened_us) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    stream.name,
                    stream.transport,
                    stream.remote_addr,
                    stream.headers,
                    stream.opened_us
                ],
            )?;
            let id = tx.last_insert_rowid();
            if streams.len() > 10_000 {
                streams.clear();
            }
            streams.insert(stream.key, id);
            id
        }
    };
    let mut insert =
        tx.prepare_cached("INSERT INTO events (stream_id, time_us, body) VALUES (?1, ?2, ?3)")?;
    for line in lines {
        insert.execute(params![sid, time_us, line])?;
        summary.events += 1;
    }
    if !lines.is_empty() && !summary.event_streams.contains(&stream.name) {
        summary.event_streams.insert(stream.name.clone());
    }
    Ok(())
}
