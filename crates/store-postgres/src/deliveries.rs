//! The queue side: claiming due deliveries under a lease and recording attempts, each
//! in a few set-based statements however large the batch.
//!
//! Claims use `FOR UPDATE SKIP LOCKED`: workers on any number of nodes each take rows
//! no other worker is taking at that moment, without waiting on each other. A claimed
//! row is `sending` with `next_attempt_at` = the lease expiry, so when a worker dies
//! the row simply becomes due again.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, EndpointId, MessageId,
    model::{Attempt, DeliveryStatus},
};
use herald_store::{AttemptResult, ClaimedDelivery, DeliveryQueue, HandoffSender, NextStep, StoreResult};
use sqlx::{Connection, PgConnection, PgExecutor};
use tokio::sync::Notify;

use crate::{
    PostgresStore,
    error::db,
    rows::{self, attempt_columns, endpoint_columns, message_columns, ms},
};

/// `skip`: endpoints whose deliveries are left alone (the caller's saturated ones).
/// Puts deliveries still leased until `lease_until` back in the queue, due at `due_at`,
/// their attempt count unchanged; rows another worker has claimed since are left alone.
pub(crate) async fn release(
    executor: impl PgExecutor<'_>,
    deliveries: &[(MessageId, EndpointId)],
    lease_until: DateTime<Utc>,
    due_at: DateTime<Utc>,
) -> StoreResult<()> {
    let msgs: Vec<&str> = deliveries.iter().map(|(m, _)| m.as_str()).collect();
    let endpoints: Vec<&str> = deliveries.iter().map(|(_, e)| e.as_str()).collect();
    sqlx::query(concat!(
        "UPDATE deliveries d SET status = ",
        herald_store::delivery_status!(Pending),
        ", next_attempt_at = $4
         FROM unnest($1::text[], $2::text[]) AS r(msg_id, endpoint_id)
         WHERE d.msg_id = r.msg_id AND d.endpoint_id = r.endpoint_id AND d.status = ",
        herald_store::delivery_status!(Sending),
        " AND d.next_attempt_at = $3"
    ))
    .bind(&msgs)
    .bind(&endpoints)
    .bind(ms(lease_until))
    .bind(ms(due_at))
    .execute(executor)
    .await
    .map_err(db)?;
    Ok(())
}

pub(crate) async fn claim(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: usize,
    lease_until: DateTime<Utc>,
    skip: &[EndpointId],
) -> StoreResult<Vec<ClaimedDelivery>> {
    let skip: Vec<&str> = skip.iter().map(EndpointId::as_str).collect();
    // Autocommit: the lease is durable before any of it is sent.
    let claimed = sqlx::query(concat!(
        concat!(
            "WITH due AS (
             SELECT msg_id, endpoint_id FROM deliveries
             WHERE status IN (",
            herald_store::delivery_status!(Pending),
            ", ",
            herald_store::delivery_status!(Sending),
            ")",
            " AND next_attempt_at <= $1 AND NOT (endpoint_id = ANY($4))
             ORDER BY next_attempt_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED)
         UPDATE deliveries d SET status = ",
            herald_store::delivery_status!(Sending),
            ", next_attempt_at = $3
         FROM due WHERE d.msg_id = due.msg_id AND d.endpoint_id = due.endpoint_id
         RETURNING "
        ),
        "d.msg_id, d.endpoint_id, d.app_id, d.status, d.attempts, d.next_attempt_at, d.trigger_type"
    ))
    .bind(ms(now))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .bind(ms(lease_until))
    .bind(&skip)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .iter()
    .map(rows::delivery)
    .collect::<StoreResult<Vec<_>>>()?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let msg_ids: Vec<&str> = claimed.iter().map(|d| d.msg_id.as_str()).collect();
    let endpoint_ids: Vec<&str> = claimed.iter().map(|d| d.endpoint_id.as_str()).collect();
    let messages: HashMap<_, _> =
        sqlx::query(concat!("SELECT ", message_columns!(), " FROM messages WHERE id = ANY($1)"))
            .bind(&msg_ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .iter()
            .map(|row| rows::message(row).map(|m| (m.id.clone(), m)))
            .collect::<StoreResult<_>>()?;
    let endpoints: HashMap<_, _> =
        sqlx::query(concat!("SELECT ", endpoint_columns!(), " FROM endpoints WHERE id = ANY($1)"))
            .bind(&endpoint_ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .iter()
            .map(|row| rows::endpoint(row).map(|e| (e.id.clone(), e)))
            .collect::<StoreResult<_>>()?;
    // A message or endpoint deleted since the claim took its deliveries with it
    // (cascade), so there is nothing to send for those.
    Ok(claimed
        .into_iter()
        .filter_map(|delivery| {
            let message = messages.get(&delivery.msg_id)?.clone();
            let endpoint = endpoints.get(&delivery.endpoint_id)?.clone();
            Some(ClaimedDelivery { delivery, message, endpoint })
        })
        .collect())
}

/// Columns of `attempts` as arrays, one element per attempt, for one `unnest` insert.
#[derive(Default)]
struct AttemptArrays<'a> {
    id: Vec<&'a str>,
    msg_id: Vec<&'a str>,
    endpoint_id: Vec<&'a str>,
    app_id: Vec<&'a str>,
    url: Vec<&'a str>,
    status: Vec<i16>,
    response_status_code: Vec<i16>,
    response: Vec<&'a str>,
    response_duration_ms: Vec<i64>,
    trigger: Vec<i16>,
    created_at: Vec<DateTime<Utc>>,
}

impl<'a> AttemptArrays<'a> {
    fn push(&mut self, a: &'a Attempt) {
        self.id.push(a.id.as_str());
        self.msg_id.push(a.msg_id.as_str());
        self.endpoint_id.push(a.endpoint_id.as_str());
        self.app_id.push(a.app_id.as_str());
        self.url.push(&a.url);
        self.status.push(a.status.code() as i16);
        self.response_status_code.push(a.response_status_code);
        self.response.push(&a.response);
        self.response_duration_ms.push(a.response_duration_ms);
        self.trigger.push(a.trigger as i16);
        self.created_at.push(ms(a.created_at));
    }
}

/// Records the attempts and moves their deliveries on, in one transaction of three
/// statements whatever the batch size.
pub(crate) async fn record(conn: &mut PgConnection, results: &[AttemptResult]) -> StoreResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let mut attempts = AttemptArrays::default();
    let (mut msg_ids, mut endpoint_ids, mut statuses, mut retry_at, mut leases) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut disable, mut disabled_at) = (vec![], vec![]);
    for AttemptResult { attempt, next, lease_until } in results {
        attempts.push(attempt);
        leases.push(ms(*lease_until));
        let (status, retry) = match next {
            NextStep::Delivered => (DeliveryStatus::Success, None),
            NextStep::RetryAt(t) => (DeliveryStatus::Pending, Some(ms(*t))),
            NextStep::Failed | NextStep::EndpointDisabled => (DeliveryStatus::Fail, None),
        };
        msg_ids.push(attempt.msg_id.as_str());
        endpoint_ids.push(attempt.endpoint_id.as_str());
        statuses.push(status.code() as i16);
        retry_at.push(retry);
        if *next == NextStep::EndpointDisabled {
            disable.push(attempt.endpoint_id.as_str());
            disabled_at.push(ms(attempt.created_at));
        }
    }
    let mut tx = conn.begin().await.map_err(db)?;
    sqlx::query(concat!(
        "INSERT INTO attempts (",
        attempt_columns!(),
        ") SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[],
                                $7::smallint[], $8::text[], $9::bigint[], $10::smallint[], $11::timestamptz[])"
    ))
    .bind(&attempts.id)
    .bind(&attempts.msg_id)
    .bind(&attempts.endpoint_id)
    .bind(&attempts.app_id)
    .bind(&attempts.url)
    .bind(&attempts.status)
    .bind(&attempts.response_status_code)
    .bind(&attempts.response)
    .bind(&attempts.response_duration_ms)
    .bind(&attempts.trigger)
    .bind(&attempts.created_at)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    sqlx::query(concat!(
        "UPDATE deliveries d
         SET status = u.status, attempts = d.attempts + 1, next_attempt_at = COALESCE(u.retry_at, d.next_attempt_at),
             trigger_type = 0
         FROM unnest($1::text[], $2::text[], $3::smallint[], $4::timestamptz[], $5::timestamptz[])
              AS u(msg_id, endpoint_id, status, retry_at, lease_until)
         WHERE d.msg_id = u.msg_id AND d.endpoint_id = u.endpoint_id
           AND d.status = ",
        herald_store::delivery_status!(Sending),
        " AND d.next_attempt_at = u.lease_until"
    ))
    .bind(&msg_ids)
    .bind(&endpoint_ids)
    .bind(&statuses)
    .bind(&retry_at)
    .bind(&leases)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if !disable.is_empty() {
        sqlx::query(
            "UPDATE endpoints e SET disabled = true, updated_at = u.at
             FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE e.id = u.id",
        )
        .bind(&disable)
        .bind(&disabled_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

pub(crate) async fn message_attempts(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    msg: &MessageId,
) -> StoreResult<Vec<Attempt>> {
    sqlx::query(concat!("SELECT ", attempt_columns!(), " FROM attempts WHERE app_id = $1 AND msg_id = $2 ORDER BY id"))
        .bind(app.as_str())
        .bind(msg.as_str())
        .fetch_all(executor)
        .await
        .map_err(db)?
        .iter()
        .map(rows::attempt)
        .collect()
}

#[async_trait]
impl DeliveryQueue for PostgresStore {
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        claim(&mut conn, now, limit, lease_until, &[]).await
    }

    async fn claim_due_deliveries_skipping(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
        skip: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        claim(&mut conn, now, limit, lease_until, skip).await
    }

    async fn release_deliveries(
        &self,
        deliveries: Vec<(MessageId, EndpointId)>,
        lease_until: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        release(&self.pool, &deliveries, lease_until, due_at).await
    }

    fn delivery_waker(&self) -> Arc<Notify> {
        self.waker.clone()
    }

    fn hand_off_to(&self, sender: HandoffSender) {
        self.handoff.set(sender);
    }

    async fn resend_message(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        endpoint_id: &EndpointId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        crate::attempts::resend(&mut conn, app, msg_id, endpoint_id, now).await?;
        self.waker.notify_one();
        Ok(())
    }

    async fn requeue_deliveries(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        filter: &herald_store::RequeueFilter,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let queued = crate::attempts::requeue(&mut conn, app, endpoint_id, filter, now).await?;
        if queued > 0 {
            self.waker.notify_one();
        }
        Ok(queued)
    }

    async fn replay_missing(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let queued = crate::attempts::replay_missing(&mut conn, app, endpoint_id, since, until, now).await?;
        if queued > 0 {
            self.waker.notify_one();
        }
        Ok(queued)
    }
}
