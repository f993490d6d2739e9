//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Each entry runs once, in order, inside the writer's first transaction. A database
//! written by a newer Herald (a higher version than this binary knows) is refused.

use rusqlite::Connection;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    app_id      TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE applications (
    id            TEXT PRIMARY KEY,
    uid           TEXT UNIQUE,
    name          TEXT NOT NULL,
    throttle_rate INTEGER,
    metadata      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE event_types (
    name          TEXT PRIMARY KEY,
    description   TEXT NOT NULL,
    archived      INTEGER NOT NULL,
    deprecated    INTEGER NOT NULL,
    schemas       TEXT,
    group_name    TEXT,
    feature_flags TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id            TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL,
    uid           TEXT,
    url           TEXT NOT NULL,
    description   TEXT NOT NULL,
    throttle_rate INTEGER,
    disabled      INTEGER NOT NULL,
    event_types   TEXT,
    channels      TEXT,
    metadata      TEXT NOT NULL,
    headers       TEXT NOT NULL,
    secrets       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_by_app ON endpoints (app_id, id);

-- seq is the commit order of messages (one writer), which event cursors rely on.
CREATE TABLE messages (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    app_id      TEXT NOT NULL,
    event_id    TEXT,
    event_type  TEXT NOT NULL,
    payload     TEXT,
    channels    TEXT,
    tags        TEXT,
    created_at  INTEGER NOT NULL,
    deliver_at  INTEGER,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX messages_by_app ON messages (app_id, id);
CREATE INDEX messages_by_event_id ON messages (app_id, event_id) WHERE event_id IS NOT NULL;

-- A claimed delivery is `sending` with next_attempt_at = its lease expiry, so an
-- expired lease makes it due again without a separate sweep.
CREATE TABLE deliveries (
    msg_id          TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    app_id          TEXT NOT NULL,
    status          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id);

CREATE TABLE attempts (
    id                   TEXT PRIMARY KEY,
    msg_id               TEXT NOT NULL,
    endpoint_id          TEXT NOT NULL,
    app_id               TEXT NOT NULL,
    url                  TEXT NOT NULL,
    status               INTEGER NOT NULL,
    response_status_code INTEGER NOT NULL,
    response             TEXT NOT NULL,
    response_duration_ms INTEGER NOT NULL,
    trigger_type         INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);
CREATE INDEX attempts_by_msg ON attempts (msg_id, id);
CREATE INDEX attempts_by_endpoint ON attempts (endpoint_id, id);

-- state: 0 = claimed (request running), 1 = completed (status/body kept).
CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    state       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    status      INTEGER,
    body        BLOB,
    expires_at  INTEGER NOT NULL
);
"#,
    // The trigger of the next attempt: 1 (manual) after a resend, recover or replay.
    r#"
ALTER TABLE deliveries ADD COLUMN trigger_type INTEGER NOT NULL DEFAULT 0;
"#,
    // Per-event-type retry schedules (`0s,5s,...`), the start of an endpoint's current
    // run of failures (cleared by a success), and indexes for the retention sweep.
    r#"
ALTER TABLE event_types ADD COLUMN retry_schedule TEXT;
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;
CREATE INDEX messages_expiring ON messages (expires_at) WHERE payload IS NOT NULL;
CREATE INDEX attempts_by_time ON attempts (created_at);
"#,
    // Ingest sources: each owns a hidden application (its ingest endpoints and the
    // messages its verified requests become), reached by the hash of its URL token;
    // a rotated-out token keeps working until `old_token_expires_at`, a replaced
    // provider secret until `old_secret_expires_at`. Messages keep
    // the content type a provider sent, and each request to a source is logged.
    r#"
ALTER TABLE messages ADD COLUMN content_type TEXT;

CREATE TABLE ingest_sources (
    id                   TEXT PRIMARY KEY,
    uid                  TEXT UNIQUE,
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    secret               TEXT,
    old_secret           TEXT,
    old_secret_expires_at INTEGER,
    app_id               TEXT NOT NULL UNIQUE,
    token_hash           TEXT NOT NULL UNIQUE,
    old_token_hash       TEXT UNIQUE,
    old_token_expires_at INTEGER,
    metadata             TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

CREATE TABLE ingest_logs (
    id          TEXT PRIMARY KEY,
    source_id   TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    error_text  TEXT NOT NULL,
    msg_id      TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX ingest_logs_by_source ON ingest_logs (source_id, id);
CREATE INDEX ingest_logs_by_time ON ingest_logs (created_at);
"#,
    // The pull side: readers walk an application's messages by `seq` (commit order),
    // and poller consumers keep their position here, deleted with their endpoint.
    r#"
CREATE INDEX messages_by_app_seq ON messages (app_id, seq);
CREATE TABLE poller_consumers (
    endpoint_id  TEXT NOT NULL,
    consumer_id  TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    -- The saved `Position` as (commit, seq); commit is 0 for SQLite's own positions.
    position_commit INTEGER NOT NULL,
    position_seq    INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, consumer_id)
) WITHOUT ROWID;
CREATE TRIGGER poller_consumers_follow_endpoints AFTER DELETE ON endpoints BEGIN
    DELETE FROM poller_consumers WHERE endpoint_id = old.id;
END;
"#,
];

/// The schema version this binary writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to [`VERSION`].
///
/// # Errors
/// A message naming both versions when the file is newer than this binary, or the
/// SQLite error of a failed migration.
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("reading the schema version: {e}"))?;
    if current > VERSION {
        return Err(format!(
            "the database schema is version {current}, newer than the version {VERSION} this Herald binary knows; \
             run a newer Herald or restore a backup"
        ));
    }
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(|e| format!("applying migration {}: {e}", i + 1))?;
    }
    tx.pragma_update(None, "user_version", VERSION).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}
