//! The queue side: claiming due deliveries under a lease and recording attempts.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, EndpointId, MessageId,
    model::{Attempt, DeliveryStatus},
};
use herald_store::{
    AttemptResult, ClaimedDelivery, DeliveryQueue, HandoffSender, NextStep, RequeueFilter, StoreError, StoreResult,
};
use rusqlite::{Connection, params};
use tokio::sync::Notify;

use crate::{
    SqliteStore,
    rows::{self, db_err, ms},
};

/// `skip`: endpoints whose deliveries are left alone (the caller's saturated ones).
pub fn claim(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: usize,
    lease_until: DateTime<Utc>,
    skip: &[EndpointId],
) -> StoreResult<Vec<ClaimedDelivery>> {
    let skip = serde_json::to_string(&skip.iter().map(EndpointId::as_str).collect::<Vec<_>>())
        .map_err(|e| StoreError::Internal(e.into()))?;
    // Pick the keys first, then lease each by primary key: a row-value `IN (subquery)`
    // in the UPDATE made SQLite scan the whole table, finished deliveries included.
    let due: Vec<(String, String)> = conn
        .prepare_cached(concat!(
            "SELECT msg_id, endpoint_id FROM deliveries
             WHERE status IN (",
            herald_store::delivery_status!(Pending),
            ", ",
            herald_store::delivery_status!(Sending),
            ")",
            " AND next_attempt_at <= ?1
               AND endpoint_id NOT IN (SELECT value FROM json_each(?3))
             ORDER BY next_attempt_at LIMIT ?2"
        ))
        .and_then(|mut s| s.query_map(params![ms(now), limit as i64, skip], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(db_err("delivery"))?;
    let mut lease = conn
        .prepare_cached(&format!(
            concat!(
                "UPDATE deliveries SET status = ",
                herald_store::delivery_status!(Sending),
                ", next_attempt_at = ?3 WHERE msg_id = ?1 AND endpoint_id = ?2 RETURNING {}"
            ),
            rows::DELIVERY_COLUMNS
        ))
        .map_err(db_err("delivery"))?;
    let mut claimed = Vec::with_capacity(due.len());
    for (msg_id, endpoint_id) in &due {
        claimed.push(
            lease
                .query_row(params![msg_id, endpoint_id, ms(lease_until)], rows::delivery)
                .map_err(db_err("delivery"))?,
        );
    }
    let mut messages = HashMap::new();
    let mut endpoints = HashMap::new();
    let mut out = Vec::with_capacity(claimed.len());
    for delivery in claimed {
        let message = match messages.get(&delivery.msg_id) {
            Some(m) => Some(Clone::clone(m)),
            None => crate::messages::find(conn, &delivery.app_id, delivery.msg_id.as_str())?,
        };
        let endpoint = match endpoints.get(&delivery.endpoint_id) {
            Some(e) => Some(Clone::clone(e)),
            None => crate::resources::find_endpoint(conn, &delivery.app_id, delivery.endpoint_id.as_str())?,
        };
        let (Some(message), Some(endpoint)) = (message, endpoint) else {
            // The message or endpoint was deleted after the delivery was queued.
            conn.execute(
                "DELETE FROM deliveries WHERE msg_id = ?1 AND endpoint_id = ?2",
                [delivery.msg_id.as_str(), delivery.endpoint_id.as_str()],
            )
            .map_err(db_err("delivery"))?;
            continue;
        };
        messages.insert(delivery.msg_id.clone(), message.clone());
        endpoints.insert(delivery.endpoint_id.clone(), endpoint.clone());
        out.push(ClaimedDelivery { delivery, message, endpoint });
    }
    Ok(out)
}

/// Puts deliveries still leased until `lease_until` back in the queue, due at `due_at`.
pub fn release(
    conn: &Connection,
    deliveries: &[(MessageId, EndpointId)],
    lease_until: DateTime<Utc>,
    due_at: DateTime<Utc>,
) -> StoreResult<()> {
    let mut update = conn
        .prepare_cached(concat!(
            "UPDATE deliveries SET status = ",
            herald_store::delivery_status!(Pending),
            ", next_attempt_at = ?4
             WHERE msg_id = ?1 AND endpoint_id = ?2 AND status = ",
            herald_store::delivery_status!(Sending),
            " AND next_attempt_at = ?3"
        ))
        .map_err(db_err("delivery"))?;
    for (msg, endpoint) in deliveries {
        update
            .execute(params![msg.as_str(), endpoint.as_str(), ms(lease_until), ms(due_at)])
            .map_err(db_err("delivery"))?;
    }
    Ok(())
}

pub fn record(conn: &Connection, results: &[AttemptResult]) -> StoreResult<()> {
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO attempts (id, msg_id, endpoint_id, app_id, url, status, response_status_code, response,
                                   response_duration_ms, trigger_type, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(db_err("attempt"))?;
    let mut update = conn
        .prepare_cached(
            // A manual trigger is for the one attempt that follows it; retries are scheduled.
            concat!("UPDATE deliveries SET status = ?3, attempts = attempts + 1, next_attempt_at = COALESCE(?4, next_attempt_at),
                                   trigger_type = 0
             WHERE msg_id = ?1 AND endpoint_id = ?2 AND status = ", herald_store::delivery_status!(Sending), " AND next_attempt_at = ?5"),
        )
        .map_err(db_err("delivery"))?;
    for AttemptResult { attempt: a, next, lease_until } in results {
        insert
            .execute(params![
                a.id.as_str(),
                a.msg_id.as_str(),
                a.endpoint_id.as_str(),
                a.app_id.as_str(),
                a.url,
                a.status.code(),
                a.response_status_code,
                a.response,
                a.response_duration_ms,
                a.trigger as i64,
                ms(a.created_at),
            ])
            .map_err(db_err("an attempt with this id"))?;
        let (status, retry_at) = match next {
            NextStep::Delivered => (DeliveryStatus::Success, None),
            NextStep::RetryAt(t) => (DeliveryStatus::Pending, Some(ms(*t))),
            NextStep::Failed | NextStep::EndpointDisabled => (DeliveryStatus::Fail, None),
        };
        update
            .execute(params![a.msg_id.as_str(), a.endpoint_id.as_str(), status.code(), retry_at, ms(*lease_until)])
            .map_err(db_err("delivery"))?;
        if *next == NextStep::EndpointDisabled {
            conn.execute(
                "UPDATE endpoints SET disabled = 1, updated_at = ?2 WHERE id = ?1",
                params![a.endpoint_id.as_str(), ms(a.created_at)],
            )
            .map_err(db_err("endpoint"))?;
        }
    }
    Ok(())
}

pub fn message_attempts(conn: &Connection, app: &AppId, msg: &MessageId) -> StoreResult<Vec<Attempt>> {
    conn.prepare_cached(
        "SELECT id, msg_id, endpoint_id, app_id, url, status, response_status_code, response, response_duration_ms,
                trigger_type, created_at
         FROM attempts WHERE app_id = ?1 AND msg_id = ?2 ORDER BY id",
    )
    .and_then(|mut s| s.query_map([app.as_str(), msg.as_str()], rows::attempt)?.collect())
    .map_err(db_err("attempt"))
}

#[async_trait]
impl DeliveryQueue for SqliteStore {
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        self.engine.write(move |c| claim(c, now, limit, lease_until, &[])).await
    }

    async fn claim_due_deliveries_skipping(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
        skip: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let skip = skip.to_vec();
        self.engine.write(move |c| claim(c, now, limit, lease_until, &skip)).await
    }

    async fn release_deliveries(
        &self,
        released: Vec<(MessageId, EndpointId)>,
        lease_until: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.engine.write(move |c| release(c, &released, lease_until, due_at)).await
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
        let (app, msg_id, endpoint_id) = (app.clone(), msg_id.clone(), endpoint_id.clone());
        self.engine.write(move |c| crate::attempts::resend(c, &app, &msg_id, &endpoint_id, now)).await?;
        self.waker.notify_one();
        Ok(())
    }

    async fn requeue_deliveries(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        filter: &RequeueFilter,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let (app, endpoint_id, filter) = (app.clone(), endpoint_id.clone(), filter.clone());
        let queued = self.engine.write(move |c| crate::attempts::requeue(c, &app, &endpoint_id, &filter, now)).await?;
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
        let (app, endpoint_id) = (app.clone(), endpoint_id.clone());
        let queued = self
            .engine
            .write(move |c| crate::attempts::replay_missing(c, &app, &endpoint_id, since, until, now))
            .await?;
        if queued > 0 {
            self.waker.notify_one();
        }
        Ok(queued)
    }
}
