//! Upkeep queries: per-event-type retry schedules, endpoint health (disabling an
//! endpoint that has failed for too long, set-based per batch), the retention sweep in
//! bounded batches, and the queue depth. The queue itself lives in `deliveries`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{EndpointId, RetrySchedule};
use herald_store::{AttemptResult, HealthChanges, QueueDepth, RetentionSwept, StoreError, StoreResult, Upkeep};
use sqlx::{Connection, PgConnection, PgExecutor};

use crate::{
    PostgresStore, deliveries,
    error::{db, internal},
    rows::ms,
};

pub(crate) async fn retry_schedule(executor: impl PgExecutor<'_>, name: &str) -> StoreResult<Option<RetrySchedule>> {
    let found: Option<Option<String>> = sqlx::query_scalar("SELECT retry_schedule FROM event_types WHERE name = $1")
        .bind(name)
        .fetch_optional(executor)
        .await
        .map_err(db)?;
    match found {
        None => Err(StoreError::NotFound("event type")),
        Some(None) => Ok(None),
        Some(Some(text)) => text.parse().map(Some).map_err(internal),
    }
}

pub(crate) async fn set_retry_schedule(
    executor: impl PgExecutor<'_>,
    name: &str,
    schedule: Option<&RetrySchedule>,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE event_types SET retry_schedule = $2 WHERE name = $1")
        .bind(name)
        .bind(schedule.map(ToString::to_string))
        .execute(executor)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 { Err(StoreError::NotFound("event type")) } else { Ok(()) }
}

/// Records `results` and applies their [`HealthChanges`] in one transaction (the
/// attempts' own statements run in a savepoint inside it).
pub(crate) async fn record(
    conn: &mut PgConnection,
    results: &[AttemptResult],
    cutoff: Option<DateTime<Utc>>,
) -> StoreResult<Vec<EndpointId>> {
    if results.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = conn.begin().await.map_err(db)?;
    deliveries::record(&mut tx, results).await?;
    let changes = HealthChanges::of(results);
    let recovered: Vec<&str> = changes.recovered.iter().map(|id| id.as_str()).collect();
    if !recovered.is_empty() {
        sqlx::query("UPDATE endpoints SET failing_since = NULL WHERE id = ANY($1) AND failing_since IS NOT NULL")
            .bind(&recovered)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    let (ids, times): (Vec<&str>, Vec<DateTime<Utc>>) =
        changes.failing_anew.iter().map(|(id, at)| (id.as_str(), ms(*at))).unzip();
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE endpoints e SET failing_since = u.at FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
             WHERE e.id = u.id AND NOT e.disabled",
        )
        .bind(&ids)
        .bind(&times)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    let (ids, times): (Vec<&str>, Vec<DateTime<Utc>>) =
        changes.failing.iter().map(|f| (f.id.as_str(), ms(f.first_failure))).unzip();
    let mut disabled: Vec<String> = Vec::new();
    if let Some(cutoff) = cutoff
        && !ids.is_empty()
    {
        disabled = sqlx::query_scalar(
            "UPDATE endpoints e SET disabled = true, failing_since = NULL, updated_at = u.at
             FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
             WHERE e.id = u.id AND NOT e.disabled AND e.failing_since < $3
             RETURNING e.id",
        )
        .bind(&ids)
        .bind(&times)
        .bind(ms(cutoff))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let (mut msgs, mut eps) = (Vec::new(), Vec::new());
        for failing in changes.failing.iter().filter(|f| disabled.iter().any(|d| d == f.id.as_str())) {
            for msg in &failing.retrying {
                msgs.push(msg.as_str());
                eps.push(failing.id.as_str());
            }
        }
        if !msgs.is_empty() {
            sqlx::query(concat!(
                "UPDATE deliveries d SET status = ",
                herald_store::delivery_status!(Fail),
                " FROM unnest($1::text[], $2::text[]) AS u(msg_id, endpoint_id)
                 WHERE d.msg_id = u.msg_id AND d.endpoint_id = u.endpoint_id AND d.status = ",
                herald_store::delivery_status!(Pending)
            ))
            .bind(&msgs)
            .bind(&eps)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
    }
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE endpoints e SET failing_since = u.at FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
             WHERE e.id = u.id AND NOT e.disabled AND e.failing_since IS NULL",
        )
        .bind(&ids)
        .bind(&times)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    disabled.into_iter().map(|id| EndpointId::try_from(id).map_err(internal)).collect()
}

pub(crate) async fn sweep(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    attempts_before: DateTime<Utc>,
    limit: usize,
) -> StoreResult<RetentionSwept> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // SKIP LOCKED: rows another transaction holds are left for the next sweep.
    let dropped = sqlx::query(
        "UPDATE messages SET payload = NULL WHERE id IN (
             SELECT id FROM messages WHERE payload IS NOT NULL AND expires_at < $1
             LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(ms(now))
    .bind(limit)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let deleted = sqlx::query(
        "DELETE FROM attempts WHERE id IN (
             SELECT id FROM attempts WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(ms(attempts_before))
    .bind(limit)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let logs = crate::ingest::sweep_logs(&mut *conn, attempts_before, limit).await?;
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(RetentionSwept {
        payloads_dropped: count(dropped.rows_affected()),
        attempts_deleted: count(deleted.rows_affected()),
        ingest_logs_deleted: count(logs),
    })
}

pub(crate) async fn queue_depth(executor: impl PgExecutor<'_>) -> StoreResult<QueueDepth> {
    let (pending, sending): (i64, i64) = sqlx::query_as(concat!(
        "SELECT count(*) FILTER (WHERE status = ",
        herald_store::delivery_status!(Pending),
        "), count(*) FILTER (WHERE status = ",
        herald_store::delivery_status!(Sending),
        ")
         FROM deliveries WHERE status IN (",
        herald_store::delivery_status!(Pending),
        ", ",
        herald_store::delivery_status!(Sending),
        ")"
    ))
    .fetch_one(executor)
    .await
    .map_err(db)?;
    Ok(QueueDepth { pending: pending.max(0) as u64, sending: sending.max(0) as u64 })
}

#[async_trait]
impl Upkeep for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db).map(drop)
    }

    async fn sweep_retention(
        &self,
        now: DateTime<Utc>,
        attempts_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<RetentionSwept> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        sweep(&mut conn, now, attempts_before, limit).await
    }

    async fn queue_depth(&self) -> StoreResult<QueueDepth> {
        queue_depth(&self.pool).await
    }
}
