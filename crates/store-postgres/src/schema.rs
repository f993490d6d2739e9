//! Versioned schema migrations, tracked in `herald_schema_version`.
//!
//! Every node may start at once: the migration runs in one transaction under an
//! advisory lock scoped to the schema, so exactly one node applies each step and the
//! others then see the new version. PostgreSQL DDL is transactional, so a failed step
//! leaves the previous version intact. A database written by a newer Herald is refused.
//!
//! Identifiers and names are `COLLATE "C"`: ids sort by creation time as plain bytes,
//! and list cursors compare them that way whatever the database's locale is.

use sqlx::{Connection, PgConnection};

use crate::error::{self, SchemaTooNew, SchemaTooOld};
use herald_store::{StoreError, StoreResult};

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tokens (
    id          text COLLATE "C" PRIMARY KEY,
    hash        text NOT NULL CONSTRAINT tokens_hash_key UNIQUE,
    app_id      text COLLATE "C",
    created_at  timestamptz NOT NULL
);

CREATE TABLE applications (
    id            text COLLATE "C" PRIMARY KEY,
    uid           text COLLATE "C" CONSTRAINT applications_uid_key UNIQUE,
    name          text NOT NULL,
    throttle_rate integer,
    metadata      jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE event_types (
    name          text COLLATE "C" PRIMARY KEY,
    description   text NOT NULL,
    archived      boolean NOT NULL,
    deprecated    boolean NOT NULL,
    schemas       jsonb,
    group_name    text,
    feature_flags text[],
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE endpoints (
    id            text COLLATE "C" PRIMARY KEY,
    app_id        text COLLATE "C" NOT NULL
                  CONSTRAINT endpoints_app_id_fkey REFERENCES applications ON DELETE CASCADE,
    uid           text COLLATE "C",
    url           text NOT NULL,
    description   text NOT NULL,
    throttle_rate integer,
    disabled      boolean NOT NULL,
    event_types   text[],
    channels      text[],
    metadata      jsonb NOT NULL,
    headers       jsonb NOT NULL,
    secrets       jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT endpoints_app_uid_key UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_by_app ON endpoints (app_id, id);

-- `payload` is text, not jsonb: it keeps the exact bytes received.
--
-- `seq` and `xid` are for readers that walk messages in a commit-safe order (the events
-- API and SSE). `seq` alone is not commit order on PostgreSQL: a transaction can take
-- a lower seq and commit after a higher one, so a cursor on seq could skip it. The rule
-- for such readers: take `h = pg_snapshot_xmin(pg_current_snapshot())` (every
-- transaction with an xid below it has ended), return only rows with `xid < h`, in
-- `(xid, seq)` order, and keep `(xid, seq)` of the last row as the cursor. Rows below
-- the horizon never change again and new rows always land above it, so nothing is
-- skipped. One group-committed batch shares one xid; seq orders it.
CREATE TABLE messages (
    id          text COLLATE "C" PRIMARY KEY,
    seq         bigserial NOT NULL,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    app_id      text COLLATE "C" NOT NULL
                CONSTRAINT messages_app_id_fkey REFERENCES applications ON DELETE CASCADE,
    event_id    text,
    event_type  text NOT NULL,
    payload     text,
    channels    text[],
    tags        text[],
    created_at  timestamptz NOT NULL,
    deliver_at  timestamptz,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX messages_by_app ON messages (app_id, id);
CREATE INDEX messages_by_event_id ON messages (app_id, event_id, created_at) WHERE event_id IS NOT NULL;

-- A claimed delivery is `sending` (3) with next_attempt_at = its lease expiry, so an
-- expired lease makes it due again without a separate sweep.
CREATE TABLE deliveries (
    msg_id          text COLLATE "C" NOT NULL
                    CONSTRAINT deliveries_msg_id_fkey REFERENCES messages ON DELETE CASCADE,
    endpoint_id     text COLLATE "C" NOT NULL
                    CONSTRAINT deliveries_endpoint_id_fkey REFERENCES endpoints ON DELETE CASCADE,
    app_id          text COLLATE "C" NOT NULL,
    status          smallint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id);

CREATE TABLE attempts (
    id                   text COLLATE "C" PRIMARY KEY,
    msg_id               text COLLATE "C" NOT NULL
                         CONSTRAINT attempts_msg_id_fkey REFERENCES messages ON DELETE CASCADE,
    endpoint_id          text COLLATE "C" NOT NULL,
    app_id               text COLLATE "C" NOT NULL,
    url                  text NOT NULL,
    status               smallint NOT NULL,
    response_status_code smallint NOT NULL,
    response             text NOT NULL,
    response_duration_ms bigint NOT NULL,
    trigger_type         smallint NOT NULL,
    created_at           timestamptz NOT NULL
);
CREATE INDEX attempts_by_msg ON attempts (msg_id, id);
CREATE INDEX attempts_by_endpoint ON attempts (endpoint_id, id);

-- state: 0 = claimed (request running), 1 = completed (status/body kept).
CREATE TABLE idempotency_keys (
    key         text PRIMARY KEY,
    state       smallint NOT NULL,
    created_at  timestamptz NOT NULL,
    status      integer,
    body        bytea,
    expires_at  timestamptz NOT NULL
);
"#,
    // The trigger of the next attempt: 1 (manual) after a resend, recover or replay.
    r#"
ALTER TABLE deliveries ADD COLUMN trigger_type smallint NOT NULL DEFAULT 0;
"#,
    // Per-event-type retry schedules (`0s,5s,...`), the start of an endpoint's current
    // run of failures (cleared by a success), and indexes for the retention sweep.
    r#"
ALTER TABLE event_types ADD COLUMN retry_schedule text;
ALTER TABLE endpoints ADD COLUMN failing_since timestamptz;
CREATE INDEX messages_expiring ON messages (expires_at) WHERE payload IS NOT NULL;
CREATE INDEX attempts_by_time ON attempts (created_at);
"#,
    // Ingest sources: each owns a hidden application (its ingest endpoints and the
    // messages its verified requests become), reached by the hash of its URL token;
    // a rotated-out token keeps working until `old_token_expires_at`, a replaced
    // provider secret until `old_secret_expires_at`. Messages keep
    // the content type a provider sent, and each request to a source is logged.
    // Deleting the application deletes the source and its log with it.
    r#"
ALTER TABLE messages ADD COLUMN content_type text;

CREATE TABLE ingest_sources (
    id                   text COLLATE "C" PRIMARY KEY,
    uid                  text COLLATE "C" CONSTRAINT ingest_sources_uid_key UNIQUE,
    name                 text NOT NULL,
    kind                 text NOT NULL,
    secret               text,
    old_secret           text,
    old_secret_expires_at timestamptz,
    app_id               text COLLATE "C" NOT NULL CONSTRAINT ingest_sources_app_key UNIQUE
                         CONSTRAINT ingest_sources_app_id_fkey REFERENCES applications ON DELETE CASCADE,
    token_hash           text NOT NULL CONSTRAINT ingest_sources_token_key UNIQUE,
    old_token_hash       text CONSTRAINT ingest_sources_old_token_key UNIQUE,
    old_token_expires_at timestamptz,
    metadata             jsonb NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);

CREATE TABLE ingest_logs (
    id          text COLLATE "C" PRIMARY KEY,
    source_id   text COLLATE "C" NOT NULL
                CONSTRAINT ingest_logs_source_id_fkey REFERENCES ingest_sources ON DELETE CASCADE,
    status_code smallint NOT NULL,
    error_text  text NOT NULL,
    msg_id      text COLLATE "C",
    created_at  timestamptz NOT NULL
);
CREATE INDEX ingest_logs_by_source ON ingest_logs (source_id, id);
CREATE INDEX ingest_logs_by_time ON ingest_logs (created_at);
"#,
    // The pull side: readers walk an application's messages in `(xid, seq)` order (see
    // the note on `messages`), and poller consumers keep their position here. A
    // position's xid is kept as bigint: xid8 values stay far below 2^63 in practice,
    // and the store converts both ways without loss for any that do not.
    r#"
CREATE INDEX messages_by_app_position ON messages (app_id, xid, seq);
CREATE TABLE poller_consumers (
    endpoint_id     text COLLATE "C" NOT NULL
                    CONSTRAINT poller_consumers_endpoint_id_fkey REFERENCES endpoints ON DELETE CASCADE,
    consumer_id     text NOT NULL,
    app_id          text COLLATE "C" NOT NULL,
    position_commit bigint NOT NULL,
    position_seq    bigint NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (endpoint_id, consumer_id)
);
"#,
];

/// The schema version this binary writes.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// What a migration run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (0 for an empty schema).
    pub from: i32,
    /// The version now recorded: [`VERSION`].
    pub to: i32,
}

/// Brings the schema up to [`VERSION`], or (with `apply` false) only checks that it is
/// there already.
pub(crate) async fn migrate(conn: &mut PgConnection, apply: bool) -> StoreResult<Migrated> {
    let mut tx = conn.begin().await.map_err(error::db)?;
    // A migration may rewrite a large table; the pool's statement timeout is for requests.
    sqlx::query("SET LOCAL statement_timeout = 0").execute(&mut *tx).await.map_err(error::db)?;
    // Serialises concurrent starts on this schema; released at commit.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('herald-migrate:' || current_schema(), 0))")
        .execute(&mut *tx)
        .await
        .map_err(error::db)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS herald_schema_version (
             singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
             version   integer NOT NULL
         )",
    )
    .execute(&mut *tx)
    .await
    .map_err(error::db)?;
    let found: i32 = sqlx::query_scalar("SELECT version FROM herald_schema_version")
        .fetch_optional(&mut *tx)
        .await
        .map_err(error::db)?
        .unwrap_or(0);
    if found > VERSION {
        return Err(StoreError::Internal(Box::new(SchemaTooNew { found, known: VERSION })));
    }
    if found < VERSION && !apply {
        return Err(StoreError::Internal(Box::new(SchemaTooOld { found, known: VERSION })));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(|e| {
            tracing::error!(error = %e, migration = i + 1, "schema migration failed");
            error::db(e)
        })?;
    }
    sqlx::query(
        "INSERT INTO herald_schema_version (version) VALUES ($1)
         ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
    )
    .bind(VERSION)
    .execute(&mut *tx)
    .await
    .map_err(error::db)?;
    tx.commit().await.map_err(error::db)?;
    if found < VERSION {
        tracing::info!(from = found, to = VERSION, "migrated the PostgreSQL schema");
    }
    Ok(Migrated { from: found, to: VERSION })
}
