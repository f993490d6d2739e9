//! Upkeep queries: per-event-type retry schedules, endpoint health (disabling an
//! endpoint that has failed for too long), the retention sweep and the queue depth.
//! The queue itself (claims, attempts) lives in `deliveries`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{EndpointId, RetrySchedule};
use herald_store::{AttemptResult, HealthChanges, QueueDepth, RetentionSwept, StoreError, StoreResult, Upkeep};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::{
    SqliteStore, deliveries,
    engine::internal,
    rows::{db_err, ms},
};

pub fn retry_schedule(conn: &Connection, name: &str) -> StoreResult<Option<RetrySchedule>> {
    let found: Option<Option<String>> = conn
        .query_row("SELECT retry_schedule FROM event_types WHERE name = ?1", [name], |r| r.get(0))
        .optional()
        .map_err(db_err("event type"))?;
    match found {
        None => Err(StoreError::NotFound("event type")),
        Some(None) => Ok(None),
        Some(Some(text)) => text.parse().map(Some).map_err(internal),
    }
}

pub fn set_retry_schedule(conn: &Connection, name: &str, schedule: Option<&RetrySchedule>) -> StoreResult<()> {
    let text = schedule.map(ToString::to_string);
    let n = conn
        .execute("UPDATE event_types SET retry_schedule = ?2 WHERE name = ?1", params![name, text])
        .map_err(db_err("event type"))?;
    if n == 0 { Err(StoreError::NotFound("event type")) } else { Ok(()) }
}

/// Records `results` (see `deliveries::record`), then applies their [`HealthChanges`],
/// disabling endpoints failing since before `cutoff`.
pub fn record(
    conn: &Connection,
    results: &[AttemptResult],
    cutoff: Option<DateTime<Utc>>,
) -> StoreResult<Vec<EndpointId>> {
    deliveries::record(conn, results)?;
    let changes = HealthChanges::of(results);
    let run = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> StoreResult<usize> {
        conn.prepare_cached(sql).and_then(|mut s| s.execute(args)).map_err(db_err("endpoint"))
    };
    for id in changes.recovered {
        run("UPDATE endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL", &[&id.as_str()])?;
    }
    for (id, at) in changes.failing_anew {
        run("UPDATE endpoints SET failing_since = ?2 WHERE id = ?1 AND disabled = 0", &[&id.as_str(), &ms(at)])?;
    }
    let mut disabled = Vec::new();
    for failing in changes.failing {
        let id = failing.id.as_str();
        let now = ms(failing.first_failure);
        if let Some(cutoff) = cutoff {
            let sql = "UPDATE endpoints SET disabled = 1, failing_since = NULL, updated_at = ?2
                       WHERE id = ?1 AND disabled = 0 AND failing_since < ?3";
            if run(sql, &[&id, &now, &ms(cutoff)])? > 0 {
                for msg in failing.retrying {
                    let sql = concat!(
                        "UPDATE deliveries SET status = ",
                        herald_store::delivery_status!(Fail),
                        " WHERE msg_id = ?1 AND endpoint_id = ?2 AND status = ",
                        herald_store::delivery_status!(Pending)
                    );
                    run(sql, &[&msg.as_str(), &id])?;
                }
                disabled.push(failing.id.clone());
                continue;
            }
        }
        run(
            "UPDATE endpoints SET failing_since = ?2 WHERE id = ?1 AND disabled = 0 AND failing_since IS NULL",
            &[&id, &now],
        )?;
    }
    Ok(disabled)
}

pub fn sweep(
    conn: &Connection,
    now: DateTime<Utc>,
    attempts_before: DateTime<Utc>,
    limit: usize,
) -> StoreResult<RetentionSwept> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let payloads_dropped = conn
        .prepare_cached(
            "UPDATE messages SET payload = NULL WHERE seq IN (
                 SELECT seq FROM messages WHERE payload IS NOT NULL AND expires_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![ms(now), limit]))
        .map_err(db_err("message"))?;
    let attempts_deleted = conn
        .prepare_cached(
            "DELETE FROM attempts WHERE rowid IN (SELECT rowid FROM attempts WHERE created_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![ms(attempts_before), limit]))
        .map_err(db_err("attempt"))?;
    let ingest_logs_deleted = crate::ingest::sweep_logs(conn, attempts_before, limit)?;
    Ok(RetentionSwept { payloads_dropped, attempts_deleted, ingest_logs_deleted })
}

pub fn queue_depth(conn: &Connection) -> StoreResult<QueueDepth> {
    conn.prepare_cached(concat!(
        "SELECT COALESCE(SUM(status = ",
        herald_store::delivery_status!(Pending),
        "), 0), COALESCE(SUM(status = ",
        herald_store::delivery_status!(Sending),
        "), 0) FROM deliveries WHERE status IN (",
        herald_store::delivery_status!(Pending),
        ", ",
        herald_store::delivery_status!(Sending),
        ")"
    ))
    .and_then(|mut s| {
        s.query_row([], |r| Ok(QueueDepth { pending: r.get::<_, i64>(0)? as u64, sending: r.get::<_, i64>(1)? as u64 }))
    })
    .map_err(db_err("delivery"))
}

#[async_trait]
impl Upkeep for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.engine.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(crate::engine::unavailable)).await
    }

    async fn sweep_retention(
        &self,
        now: DateTime<Utc>,
        attempts_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<RetentionSwept> {
        self.engine.write(move |c| sweep(c, now, attempts_before, limit)).await
    }

    async fn queue_depth(&self) -> StoreResult<QueueDepth> {
        self.engine.read(queue_depth).await
    }
}
