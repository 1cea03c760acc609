//! The SQLite schema (documented in `docs/viewer.md`; keep both in step).

/// Bumped when the schema changes incompatibly; stored in `PRAGMA user_version`.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Connection settings every connection applies. WAL lets the query API read
/// while the writer writes; `synchronous=NORMAL` makes a commit a write to
/// the WAL without an fsync (a process crash loses nothing committed; an OS
/// crash or power loss may lose the commits since the last checkpoint).
pub(crate) const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = OFF;
PRAGMA busy_timeout = 5000;
PRAGMA temp_store = MEMORY;
";

/// The tables and indexes. Ids (trace, span) are BLOBs (16 and 8 bytes);
/// times are integer unix microseconds; attributes are compact JSON objects
/// (NULL when empty) so `json_extract(attributes, '$."http.route"')` works in
/// the `sqlite3` shell. Indexes are chosen for the query API: trace by id,
/// newest-first search, RED/SLO over SERVER spans (a partial covering index),
/// logs by time and by trace.
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS resources (
    id          INTEGER PRIMARY KEY,
    service       TEXT NOT NULL,
    attributes    TEXT NOT NULL UNIQUE,
    span_count    INTEGER NOT NULL DEFAULT 0,
    log_count     INTEGER NOT NULL DEFAULT 0,
    last_seen_us  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS spans (
    id              INTEGER PRIMARY KEY,
    trace_id        BLOB NOT NULL,
    span_id         BLOB NOT NULL,
    parent_span_id  BLOB,
    resource_id     INTEGER NOT NULL,
    name            TEXT NOT NULL,
    kind            INTEGER NOT NULL,
    start_us        INTEGER NOT NULL,
    duration_us     INTEGER NOT NULL,
    status_code     INTEGER NOT NULL,
    status_message  TEXT,
    route           TEXT,
    http_status     INTEGER,
    attr_moved      INTEGER NOT NULL DEFAULT 0,
    scope           TEXT,
    attributes      TEXT
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_us);
CREATE INDEX IF NOT EXISTS spans_server ON spans (start_us, resource_id, route, duration_us, status_code, http_status) WHERE kind = 2;
CREATE TABLE IF NOT EXISTS span_events (
    span_row    INTEGER NOT NULL,
    time_us     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    attributes  TEXT
);
CREATE INDEX IF NOT EXISTS span_events_span ON span_events (span_row);
CREATE TABLE IF NOT EXISTS span_links (
    span_row    INTEGER NOT NULL,
    trace_id    BLOB NOT NULL,
    span_id     BLOB NOT NULL,
    attributes  TEXT
);
CREATE INDEX IF NOT EXISTS span_links_span ON span_links (span_row);
CREATE TABLE IF NOT EXISTS logs (
    id               INTEGER PRIMARY KEY,
    time_us          INTEGER NOT NULL,
    resource_id      INTEGER NOT NULL,
    severity_number  INTEGER NOT NULL,
    severity_text    TEXT,
    body             TEXT,
    trace_id         BLOB,
    span_id          BLOB,
    scope            TEXT,
    attributes       TEXT
);
CREATE INDEX IF NOT EXISTS logs_time ON logs (time_us);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS metrics (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    unit         TEXT,
    description  TEXT
);
CREATE TABLE IF NOT EXISTS metric_series (
    id           INTEGER PRIMARY KEY,
    metric_id    INTEGER NOT NULL,
    resource_id  INTEGER NOT NULL,
    attributes   TEXT NOT NULL,
    UNIQUE (metric_id, resource_id, attributes)
);
CREATE TABLE IF NOT EXISTS metric_points (
    id             INTEGER PRIMARY KEY,
    series_id      INTEGER NOT NULL,
    time_us        INTEGER NOT NULL,
    value          REAL,
    count          INTEGER,
    sum            REAL,
    bounds         TEXT,
    bucket_counts  TEXT
);
CREATE INDEX IF NOT EXISTS metric_points_series ON metric_points (series_id, time_us);
CREATE INDEX IF NOT EXISTS metric_points_time ON metric_points (time_us);
CREATE TABLE IF NOT EXISTS streams (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    transport    TEXT NOT NULL,
    remote_addr  TEXT,
    headers      TEXT NOT NULL,
    opened_us    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS streams_name ON streams (name);
CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY,
    stream_id  INTEGER NOT NULL,
    time_us    INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_stream ON events (stream_id);
CREATE INDEX IF NOT EXISTS events_time ON events (time_us);
"#;
