//! Retention: by age and by row count, per signal, enforced by the writer
//! thread every `retention_interval`, in bounded chunks so ingestion never
//! waits long behind a large delete.

use std::time::Duration;

use rusqlite::{Connection, params};

use super::Shared;

/// How long and how much of one signal to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete items older than this (by their own timestamp). `None`: no age limit.
    pub max_age: Option<Duration>,
    /// Keep at most this many rows, deleting the oldest first. `None`: no limit.
    pub max_rows: Option<u64>,
}

impl RetentionPolicy {
    /// A policy keeping items for `max_age` and at most `max_rows` of them.
    pub const fn new(max_age: Duration, max_rows: u64) -> Self {
        RetentionPolicy {
            max_age: Some(max_age),
            max_rows: Some(max_rows),
        }
    }

    /// Keep everything.
    pub const fn unlimited() -> Self {
        RetentionPolicy {
            max_age: None,
            max_rows: None,
        }
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
        for (table, policy, n) in plan {
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
            if let Some(max) = policy.max_rows
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
