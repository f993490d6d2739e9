//! The pull side on PostgreSQL: messages read in commit-safe order, poller consumer
//! positions.
//!
//! `seq` alone is not commit order here: two writer transactions (on this node or
//! another) can take sequence numbers in one order and commit in the other. Readers
//! therefore follow the rule in the schema's note on `messages`: a position is
//! `(xid, seq)`, and a read returns only rows whose transaction is older than every
//! transaction still open (`xid < pg_snapshot_xmin(pg_current_snapshot())`). Such rows
//! never change again and every later row sorts after them, so continuing from the last
//! position read never skips a message that commits late; it only waits for it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{AppId, MessageId};
use herald_store::{ConsumerKey, Event, EventFilter, EventPage, Events, Position, StoreError, StoreResult};
use sqlx::{PgPool, Postgres, QueryBuilder, Row, postgres::PgRow};
use tokio::sync::watch;

use crate::{
    PostgresStore,
    error::{db, internal},
    rows::{self, message_columns, ms},
};

/// The oldest transaction still open, as seen by the statement that uses it.
const HORIZON: &str = "pg_snapshot_xmin(pg_current_snapshot())";
/// How long a seek waits for open transactions to end before settling for a position
/// that may include a few messages created before the time asked for.
const SEEK_WAIT: Duration = Duration::from_secs(2);
/// Pause between looks while rows are held back.
const HELD_BACK_RETRY: Duration = Duration::from_millis(10);

fn seq_arg(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A position from the `xid::text` and `seq` columns of `row`.
fn position(row: &PgRow) -> StoreResult<Position> {
    let commit: String = row.try_get("position_commit").map_err(db)?;
    let seq: i64 = row.try_get("seq").map_err(db)?;
    let commit = commit.parse().map_err(|e| internal(format!("reading a message's xid: {e}")))?;
    Ok(Position { commit, seq: seq.unsigned_abs() })
}

/// Narrows `query` (inside a `WHERE`) to the messages `filter` accepts.
fn push_filter(query: &mut QueryBuilder<Postgres>, filter: &EventFilter) {
    if let Some(types) = &filter.event_types {
        query.push(" AND event_type = ANY(").push_bind(types.clone()).push(")");
    }
    if let Some(channels) = &filter.channels {
        query.push(" AND channels && ").push_bind(channels.clone());
    }
    if let Some(channel) = &filter.channel {
        query.push(" AND ").push_bind(channel.clone()).push(" = ANY(channels)");
    }
    if let Some(after) = filter.after {
        query.push(" AND created_at > ").push_bind(ms(after));
    }
}

pub(crate) async fn read(
    pool: &PgPool,
    app: &AppId,
    filter: &EventFilter,
    after: Position,
    limit: usize,
) -> StoreResult<EventPage> {
    // One statement, so the page and the held-back check share one snapshot: a row
    // that is not in the page because of the horizon is always reported as held back.
    let mut query = QueryBuilder::<Postgres>::new(
        "SELECT held.back, page.* FROM (SELECT EXISTS (SELECT 1 FROM messages WHERE app_id = ",
    );
    query.push_bind(app.as_str().to_owned());
    query.push(format!(
        " AND xid >= {HORIZON}) AS back) held LEFT JOIN LATERAL (SELECT xid::text AS position_commit, seq, "
    ));
    query.push(concat!(message_columns!(), " FROM messages WHERE app_id = "));
    query.push_bind(app.as_str().to_owned());
    query.push(" AND (xid, seq) > (").push_bind(after.commit.to_string()).push("::xid8, ");
    query.push_bind(seq_arg(after.seq)).push(")");
    query.push(format!(" AND xid < {HORIZON}"));
    push_filter(&mut query, filter);
    query.push(" ORDER BY xid, seq LIMIT ").push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
    query.push(") page ON true");
    let found = query.build().fetch_all(pool).await.map_err(db)?;
    let held_back = match found.first() {
        Some(row) => row.try_get("back").map_err(db)?,
        None => false,
    };
    let mut events = Vec::with_capacity(found.len());
    for row in &found {
        if row.try_get::<Option<String>, _>("id").map_err(db)?.is_none() {
            continue;
        }
        events.push(Event { position: position(row)?, message: rows::message(row)? });
    }
    let done = events.len() <= limit;
    events.truncate(limit);
    Ok(EventPage { events, done, held_back })
}

pub(crate) async fn message_position(pool: &PgPool, app: &AppId, msg: &MessageId) -> StoreResult<Position> {
    sqlx::query("SELECT xid::text AS position_commit, seq FROM messages WHERE app_id = $1 AND id = $2")
        .bind(app.as_str())
        .bind(msg.as_str())
        .fetch_optional(pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(position)
        .transpose()?
        .ok_or(StoreError::NotFound("message"))
}

pub(crate) async fn position_after(pool: &PgPool, app: &AppId, at: DateTime<Utc>) -> StoreResult<Position> {
    // One snapshot for the three answers. While rows of the application sit above the
    // horizon, the end is not known yet: wait briefly for the open transactions, so the
    // position is exact; past the wait, the last readable row is still safe (the
    // held-back rows come after it, so nothing is skipped).
    let sql = format!(
        "SELECT
           (SELECT xid::text || ':' || seq FROM messages
            WHERE app_id = $1 AND created_at > $2 AND xid < {HORIZON} ORDER BY xid, seq LIMIT 1) AS first,
           (SELECT xid::text || ':' || seq FROM messages
            WHERE app_id = $1 AND xid < {HORIZON} ORDER BY xid DESC, seq DESC LIMIT 1) AS last,
           EXISTS (SELECT 1 FROM messages WHERE app_id = $1 AND xid >= {HORIZON}) AS held_back"
    );
    let deadline = tokio::time::Instant::now() + SEEK_WAIT;
    loop {
        let (first, last, held_back): (Option<String>, Option<String>, bool) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(app.as_str())
                .bind(ms(at))
                .fetch_one(pool)
                .await
                .map_err(db)?;
        if let Some(first) = first {
            return Ok(parse_position(&first)?.predecessor());
        }
        if !held_back || tokio::time::Instant::now() >= deadline {
            return last.map_or(Ok(Position::START), |last| parse_position(&last));
        }
        tokio::time::sleep(HELD_BACK_RETRY).await;
    }
}

/// A position written as `xid:seq` by SQL.
fn parse_position(text: &str) -> StoreResult<Position> {
    let bad = || internal(format!("malformed message position {text:?}"));
    let (commit, seq) = text.split_once(':').ok_or_else(bad)?;
    Ok(Position { commit: commit.parse().map_err(|_| bad())?, seq: seq.parse().map_err(|_| bad())? })
}

pub(crate) async fn consumer_position(pool: &PgPool, app: &AppId, key: &ConsumerKey) -> StoreResult<Option<Position>> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT position_commit, position_seq FROM poller_consumers
         WHERE endpoint_id = $1 AND consumer_id = $2 AND app_id = $3",
    )
    .bind(key.endpoint_id.as_str())
    .bind(&key.consumer_id)
    .bind(app.as_str())
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    // Stored bit for bit: u64 positions round-trip through bigint.
    Ok(row.map(|(commit, seq)| Position { commit: commit as u64, seq: seq as u64 }))
}

pub(crate) async fn save_consumer_position(
    pool: &PgPool,
    app: &AppId,
    key: &ConsumerKey,
    at: Position,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let saved = sqlx::query(
        "INSERT INTO poller_consumers (endpoint_id, consumer_id, app_id, position_commit, position_seq, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (endpoint_id, consumer_id) DO UPDATE
         SET position_commit = excluded.position_commit, position_seq = excluded.position_seq,
             updated_at = excluded.updated_at",
    )
    .bind(key.endpoint_id.as_str())
    .bind(&key.consumer_id)
    .bind(app.as_str())
    .bind(at.commit as i64)
    .bind(at.seq as i64)
    .bind(ms(now))
    .execute(pool)
    .await;
    match saved {
        Ok(_) => Ok(()),
        // The endpoint was deleted meanwhile (foreign key).
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(StoreError::NotFound("endpoint")),
        Err(e) => Err(db(e)),
    }
}

#[async_trait]
impl Events for PostgresStore {
    async fn read_events(
        &self,
        app: &AppId,
        filter: &EventFilter,
        after: Position,
        limit: usize,
    ) -> StoreResult<EventPage> {
        if filter.event_types.as_ref().is_some_and(Vec::is_empty) {
            return Ok(EventPage { events: Vec::new(), done: true, held_back: false });
        }
        read(&self.pool, app, filter, after, limit).await
    }

    async fn message_position(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Position> {
        message_position(&self.pool, app, msg_id).await
    }

    async fn position_after(&self, app: &AppId, at: DateTime<Utc>) -> StoreResult<Position> {
        position_after(&self.pool, app, at).await
    }

    async fn consumer_position(&self, app: &AppId, consumer: &ConsumerKey) -> StoreResult<Option<Position>> {
        consumer_position(&self.pool, app, consumer).await
    }

    async fn save_consumer_position(
        &self,
        app: &AppId,
        consumer: &ConsumerKey,
        position: Position,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        save_consumer_position(&self.pool, app, consumer, position, now).await
    }

    fn message_commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}
