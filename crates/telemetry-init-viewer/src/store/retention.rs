//! Retention: by age, by row count and by bytes on disk, per signal, enforced by the writer
//! thread every `retention_interval`, in bounded chunks so ingestion never
//! waits long behind a large delete.

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use super::Shared;

/// How long and how much of one signal to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete items older than this (by their own timestamp). `None`: no age limit.
    pub max_age: Option<Duration>,
    /// Keep at most this many rows, deleting the oldest first. `None`: no limit.
    pub max_rows: Option<u64>,
    /// Keep the signal's rows within this many bytes on disk (its tables and
    /// their indexes, as SQLite's `dbstat` counts pages), deleting the
    /// oldest first. `None`: no limit. The bytes per row are measured at
    /// most every [`SIZE_MEASURE_INTERVAL`] and turned into a row bound
    /// enforced with the others, so the cost stays that of a row count.
    pub max_bytes: Option<u64>,
}

/// How often retention re-measures a size-limited signal's bytes per row
/// (`dbstat` reads every page of the signal's tables).
pub const SIZE_MEASURE_INTERVAL: Duration = Duration::from_secs(30);

impl RetentionPolicy {
    /// A policy keeping items for `max_age` and at most `max_rows` of them.
    pub const fn new(max_age: Duration, max_rows: u64) -> Self {
        RetentionPolicy {
            max_age: Some(max_age),
            max_rows: Some(max_rows),
            max_bytes: None,
        }
    }

    /// Keep everything.
    pub const fn unlimited() -> Self {
        RetentionPolicy {
            max_age: None,
            max_rows: None,
            max_bytes: None,
        }
    }

    /// The same policy with a limit on bytes on disk as well.
    ///
    /// ```
    /// use std::time::Duration;
    /// use telemetry_init_viewer::RetentionPolicy;
    /// // A day of spans, at most 500 MiB of them.
    /// let p = RetentionPolicy::new(Duration::from_secs(86_400), 2_000_000)
    ///     .with_max_bytes(500 << 20);
    /// assert_eq!(p.max_bytes, Some(500 << 20));
    /// ```
    #[must_use]
    pub const fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }
}

/// Retention of every signal; see [`ViewerBuilder::retention`](crate::ViewerBuilder::retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Spans (with their events and links).
    pub spans: RetentionPolicy,
    /// Log records.
    pub logs: RetentionPolicy,
    /// Metric points.
    pub metric_points: RetentionPolicy,
    /// Raw events (`/v1/events`).
    pub events: RetentionPolicy,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl Default for RetentionConfig {
    /// Seven days, and at most 2 000 000 spans, 2 000 000 log records,
    /// 2 000 000 metric points and 1 000 000 events (a few GB at most).
    fn default() -> Self {
        RetentionConfig {
            spans: RetentionPolicy::new(7 * DAY, 2_000_000),
            logs: RetentionPolicy::new(7 * DAY, 2_000_000),
            metric_points: RetentionPolicy::new(7 * DAY, 2_000_000),
            events: RetentionPolicy::new(7 * DAY, 1_000_000),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) spans: u64,
    pub(crate) logs: u64,
    pub(crate) metric_points: u64,
    pub(crate) events: u64,
}

pub(crate) struct Retention {
    pub(crate) config: RetentionConfig,
    pub(crate) counts: Counts,
    /// Per table (spans, logs, metric points, events): the last measured
    /// bytes per row and when, for size limits.
    bytes_per_row: [Option<(f64, Instant)>; 4],
}

/// Most rows one enforcement pass deletes per table: bounds the time the
/// writer spends away from the queue (the next pass continues).
const CHUNK: u64 = 50_000;

fn count(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n.max(0) as u64)
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

struct Table {
    name: &'static str,
    time: &'static str,
    /// Rows of dependent tables to delete with each row (`span_row`).
    children: &'static [&'static str],
}

const SPANS: Table = Table {
    name: "spans",
    time: "start_us",
    children: &["span_events", "span_links"],
};
const LOGS: Table = Table {
    name: "logs",
    time: "time_us",
    children: &[],
};
const POINTS: Table = Table {
    name: "metric_points",
    time: "time_us",
    children: &[],
};
const EVENTS: Table = Table {
    name: "events",
    time: "time_us",
    children: &[],
};

impl Retention {
    pub(crate) fn load(conn: &Connection, config: RetentionConfig) -> rusqlite::Result<Self> {
        Ok(Retention {
            config,
            counts: Counts {
                spans: count(conn, "spans")?,
                logs: count(conn, "logs")?,
                metric_points: count(conn, "metric_points")?,
                events: count(conn, "events")?,
            },
            bytes_per_row: [None; 4],
        })
    }

    /// One pass over every signal; returns the rows deleted.
    pub(crate) fn enforce(
        &mut self,
        conn: &mut Connection,
        _shared: &Shared,
    ) -> rusqlite::Result<u64> {
        let now = now_us();
        let mut deleted = 0;
        let plan = [
            (&SPANS, self.config.spans, &mut self.counts.spans),
            (&LOGS, self.config.logs, &mut self.counts.logs),
            (
                &POINTS,
                self.config.metric_points,
                &mut self.counts.metric_points,
            ),
            (&EVENTS, self.config.events, &mut self.counts.events),
        ];
        for (i, (table, policy, n)) in plan.into_iter().enumerate() {
            // A size limit becomes a row limit through the measured bytes
            // per row (re-measured every SIZE_MEASURE_INTERVAL).
            let mut max_rows = policy.max_rows;
            if let Some(max_bytes) = policy.max_bytes
                && *n > 0
            {
                let fresh =
                    self.bytes_per_row[i].filter(|(_, at)| at.elapsed() < SIZE_MEASURE_INTERVAL);
                let per_row = match fresh {
                    Some((b, _)) => b,
                    None => {
                        let b = table_bytes(conn, table)? as f64 / *n as f64;
                        self.bytes_per_row[i] = Some((b, Instant::now()));
                        b
                    }
                };
                // 5 % below the limit: pages are not always full, so the
                // measured average understates what the next rows need.
                let by_size = (max_bytes as f64 * 0.95 / per_row.max(1.0)) as u64;
                max_rows = Some(max_rows.map_or(by_size, |m| m.min(by_size)));
            }
            let tx = conn.transaction()?;
            let mut gone = 0;
            if let Some(age) = policy.max_age {
                let cutoff = now.saturating_sub(age.as_micros().min(i64::MAX as u128) as i64);
                gone += delete_where(
                    &tx,
                    table,
                    &format!(
                        "SELECT id FROM {} WHERE {} < ?1 LIMIT {CHUNK}",
                        table.name, table.time
                    ),
                    cutoff,
                )?;
            }
            let remaining = n.saturating_sub(gone);
            if let Some(max) = max_rows
                && remaining > max
            {
                // Oldest by insertion order (the rowid): cheap, and close to
                // oldest by time for telemetry that arrives as it happens.
                let excess = (remaining - max).min(CHUNK);
                gone += delete_where(
                    &tx,
                    table,
                    &format!("SELECT id FROM {} ORDER BY id LIMIT ?1", table.name),
                    excess as i64,
                )?;
            }
            tx.commit()?;
            *n = n.saturating_sub(gone);
            deleted += gone;
        }
        if deleted > 0 {
            // Unreferenced dimension rows are tiny; orphaned streams are kept
            // for their metadata until their events are all gone.
            conn.execute(
                "DELETE FROM streams WHERE id NOT IN (SELECT DISTINCT stream_id FROM events)",
                [],
            )?;
        }
        Ok(deleted)
    }
}

/// Bytes on disk of `table`, its child tables and all their indexes
/// (SQLite's `dbstat`, one aggregate row per b-tree).
fn table_bytes(conn: &Connection, table: &Table) -> rusqlite::Result<u64> {
    let mut names = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT name FROM sqlite_schema WHERE tbl_name = ?1")?;
        for t in std::iter::once(&table.name).chain(table.children.iter()) {
            for name in stmt.query_map(params![t], |r| r.get::<_, String>(0))? {
                names.push(name?);
            }
        }
    }
    let mut stmt = conn.prepare(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?1 AND aggregate = TRUE",
    )?;
    let mut total = 0u64;
    for name in &names {
        let b: i64 = stmt.query_row(params![name], |r| r.get(0))?;
        total += b.max(0) as u64;
    }
    Ok(total)
}

fn delete_where(
    tx: &rusqlite::Transaction<'_>,
    table: &Table,
    select_ids: &str,
    arg: i64,
) -> rusqlite::Result<u64> {
    for child in table.children {
        tx.execute(
            &format!("DELETE FROM {child} WHERE span_row IN ({select_ids})"),
            params![arg],
        )?;
    }
    let n = tx.execute(
        &format!("DELETE FROM {} WHERE id IN ({select_ids})", table.name),
        params![arg],
    )?;
    Ok(n as u64)
}
