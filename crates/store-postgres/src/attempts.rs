//! The attempt log (attempts, attempted messages and destinations, endpoint stats,
//! expunging content) and manual control (resend, requeue, replay-missing).
//!
//! Manual control only writes delivery rows (pending, due now, trigger manual) and
//! notifies the dispatchers of every node in the same transaction; they send the rows
//! like any other, so nothing here talks to the network.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, AttemptId, EndpointId, MessageId,
    model::{Attempt, DeliveryStatus, TriggerType, subscription_accepts},
};
use herald_store::{
    AttemptFilter, AttemptLog, AttemptResult, DeliveryCounts, EndpointMessage, MessageDestination, MessageFilter, Page,
    PageQuery, RequeueFilter, StoreError, StoreResult, found,
};
use sqlx::{Connection, PgConnection, PgExecutor, Postgres, QueryBuilder, Row, postgres::PgRow};

use crate::{
    PostgresStore,
    error::{db, internal},
    resources,
    rows::{self, attempt_columns, endpoint_columns, message_columns, ms},
    writer::CHANNEL,
};

/// What an expunged attempt's response reads as.
const EXPUNGED: &str = "EXPUNGED";

/// Delivery columns read next to a message or endpoint (whose `app_id` they share).
const DELIVERY_PART: &str = "d.msg_id, d.endpoint_id, d.status, d.attempts, d.next_attempt_at, d.trigger_type";

fn prefixed(columns: &str, alias: &str) -> String {
    columns.split(',').map(|c| format!("{alias}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

/// The range of response codes a status code class stands for (0: no response).
fn code_range(class: u16) -> (i16, i16) {
    let class = i16::try_from(class).unwrap_or(i16::MAX);
    if class == 0 { (0, 0) } else { (class, class.saturating_add(99)) }
}

/// Conditions on the message table aliased `m`.
fn push_message_filters(
    query: &mut QueryBuilder<Postgres>,
    event_types: Option<&[String]>,
    channel: Option<&str>,
    tag: Option<&str>,
) {
    if let Some(types) = event_types {
        query.push(" AND m.event_type = ANY(").push_bind(types.to_vec()).push(")");
    }
    if let Some(channel) = channel {
        query.push(" AND ").push_bind(channel.to_owned()).push(" = ANY(m.channels)");
    }
    if let Some(tag) = tag {
        query.push(" AND ").push_bind(tag.to_owned()).push(" = ANY(m.tags)");
    }
}

pub(crate) async fn list(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    filter: &AttemptFilter,
    page: &PageQuery,
) -> StoreResult<Page<Attempt>> {
    let mut query =
        QueryBuilder::<Postgres>::new(concat!("SELECT ", attempt_columns!(), " FROM attempts WHERE app_id = "));
    query.push_bind(app.as_str().to_owned());
    if let Some(msg) = &filter.msg_id {
        query.push(" AND msg_id = ").push_bind(msg.as_str().to_owned());
    }
    if let Some(endpoint) = &filter.endpoint_id {
        query.push(" AND endpoint_id = ").push_bind(endpoint.as_str().to_owned());
    }
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.code() as i16);
    }
    if let Some(class) = filter.status_code_class {
        let (lo, hi) = code_range(class);
        query.push(" AND response_status_code BETWEEN ").push_bind(lo).push(" AND ").push_bind(hi);
    }
    if let Some(before) = filter.before {
        query.push(" AND created_at < ").push_bind(ms(before));
    }
    if let Some(after) = filter.after {
        query.push(" AND created_at > ").push_bind(ms(after));
    }
    if filter.event_types.is_some() || filter.channel.is_some() || filter.tag.is_some() {
        query.push(" AND msg_id IN (SELECT m.id FROM messages m WHERE m.app_id = ").push_bind(app.as_str().to_owned());
        push_message_filters(
            &mut query,
            filter.event_types.as_deref(),
            filter.channel.as_deref(),
            filter.tag.as_deref(),
        );
        query.push(")");
    }
    resources::page(executor, query, "id", page, rows::attempt).await
}

pub(crate) async fn get(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    msg: &MessageId,
    attempt: &AttemptId,
) -> StoreResult<Option<Attempt>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        attempt_columns!(),
        " FROM attempts WHERE app_id = $1 AND msg_id = $2 AND id = $3"
    ))
    .bind(app.as_str())
    .bind(msg.as_str())
    .bind(attempt.as_str())
    .fetch_optional(executor)
    .await
    .map_err(db)?;
    row.as_ref().map(rows::attempt).transpose()
}

fn endpoint_message(row: &PgRow) -> StoreResult<EndpointMessage> {
    Ok(EndpointMessage { message: rows::message(row)?, delivery: rows::delivery(row)? })
}

pub(crate) async fn endpoint_messages(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    endpoint: &EndpointId,
    status: Option<DeliveryStatus>,
    filter: &MessageFilter,
    page: &PageQuery,
) -> StoreResult<Page<EndpointMessage>> {
    let mut query = QueryBuilder::<Postgres>::new(format!(
        "SELECT {}, {DELIVERY_PART} FROM deliveries d JOIN messages m ON m.id = d.msg_id WHERE d.app_id = ",
        prefixed(message_columns!(), "m")
    ));
    query.push_bind(app.as_str().to_owned()).push(" AND d.endpoint_id = ").push_bind(endpoint.as_str().to_owned());
    if let Some(status) = status {
        query.push(" AND d.status = ").push_bind(status.code() as i16);
    }
    push_message_filters(&mut query, filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
    if let Some(before) = filter.before {
        query.push(" AND m.created_at < ").push_bind(ms(before));
    }
    if let Some(after) = filter.after {
        query.push(" AND m.created_at > ").push_bind(ms(after));
    }
    resources::page(executor, query, "m.id", page, endpoint_message).await
}

fn destination(row: &PgRow) -> StoreResult<MessageDestination> {
    Ok(MessageDestination { endpoint: rows::endpoint(row)?, delivery: rows::delivery(row)? })
}

pub(crate) async fn destinations(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    msg: &MessageId,
    page: &PageQuery,
) -> StoreResult<Page<MessageDestination>> {
    let mut query = QueryBuilder::<Postgres>::new(format!(
        "SELECT {}, {DELIVERY_PART} FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id WHERE d.app_id = ",
        prefixed(endpoint_columns!(), "e")
    ));
    query.push_bind(app.as_str().to_owned()).push(" AND d.msg_id = ").push_bind(msg.as_str().to_owned());
    resources::page(executor, query, "e.id", page, destination).await
}

pub(crate) async fn stats(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    endpoint: &EndpointId,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> StoreResult<DeliveryCounts> {
    let rows = sqlx::query(
        "SELECT d.status, count(*) AS n FROM deliveries d
         WHERE d.app_id = $1 AND d.endpoint_id = $2
           AND ($3::timestamptz IS NULL AND $4::timestamptz IS NULL
                OR d.msg_id IN (SELECT m.id FROM messages m WHERE m.app_id = $1
                                AND ($3::timestamptz IS NULL OR m.created_at >= $3)
                                AND ($4::timestamptz IS NULL OR m.created_at < $4)))
         GROUP BY d.status",
    )
    .bind(app.as_str())
    .bind(endpoint.as_str())
    .bind(since.map(ms))
    .bind(until.map(ms))
    .fetch_all(executor)
    .await
    .map_err(db)?;
    let mut out = DeliveryCounts::default();
    for row in rows {
        let code: i16 = row.try_get("status").map_err(db)?;
        let count: i64 = row.try_get("n").map_err(db)?;
        let status = DeliveryStatus::from_code(code.into())
            .ok_or_else(|| internal(format!("unknown delivery status {code}")))?;
        out.add(status, u64::try_from(count).unwrap_or(0));
    }
    Ok(out)
}

fn found_one(affected: u64, what: &'static str) -> StoreResult<()> {
    if affected == 0 { Err(StoreError::NotFound(what)) } else { Ok(()) }
}

pub(crate) async fn expunge_message(executor: impl PgExecutor<'_>, app: &AppId, msg: &MessageId) -> StoreResult<()> {
    let done = sqlx::query("UPDATE messages SET payload = NULL WHERE app_id = $1 AND id = $2")
        .bind(app.as_str())
        .bind(msg.as_str())
        .execute(executor)
        .await
        .map_err(db)?;
    found_one(done.rows_affected(), "message")
}

pub(crate) async fn expunge_attempt(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    msg: &MessageId,
    attempt: &AttemptId,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE attempts SET response = $4 WHERE app_id = $1 AND msg_id = $2 AND id = $3")
        .bind(app.as_str())
        .bind(msg.as_str())
        .bind(attempt.as_str())
        .bind(EXPUNGED)
        .execute(executor)
        .await
        .map_err(db)?;
    found_one(done.rows_affected(), "attempt")
}

async fn notify(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, current_schema())").bind(CHANNEL).execute(conn).await.map_err(db)?;
    Ok(())
}

pub(crate) async fn resend(
    conn: &mut PgConnection,
    app: &AppId,
    msg: &MessageId,
    endpoint: &EndpointId,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let mut tx = conn.begin().await.map_err(db)?;
    let done = sqlx::query(concat!(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, trigger_type)
         SELECT $1, $2, $3, 1, 0, $4, 1
         WHERE EXISTS (SELECT 1 FROM messages WHERE app_id = $3 AND id = $1)
           AND EXISTS (SELECT 1 FROM endpoints WHERE app_id = $3 AND id = $2)
         ON CONFLICT (msg_id, endpoint_id)
         DO UPDATE SET status = ",
        herald_store::delivery_status!(Pending),
        ", attempts = 0, next_attempt_at = $4, trigger_type = 1"
    ))
    .bind(msg.as_str())
    .bind(endpoint.as_str())
    .bind(app.as_str())
    .bind(ms(now))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    found_one(done.rows_affected(), "message or endpoint")?;
    notify(&mut tx).await?;
    tx.commit().await.map_err(db)
}

pub(crate) async fn requeue(
    conn: &mut PgConnection,
    app: &AppId,
    endpoint: &EndpointId,
    filter: &RequeueFilter,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    // Deliveries being sent right now (3) are left to finish; a payload that is gone
    // cannot be sent again.
    let mut query = QueryBuilder::<Postgres>::new(concat!(
        "UPDATE deliveries d SET status = ",
        herald_store::delivery_status!(Pending),
        ", attempts = 0, trigger_type = 1, next_attempt_at = "
    ));
    query
        .push_bind(ms(now))
        .push(concat!(" WHERE d.status <> ", herald_store::delivery_status!(Sending), " AND d.app_id = "))
        .push_bind(app.as_str().to_owned());
    query.push(" AND d.endpoint_id = ").push_bind(endpoint.as_str().to_owned());
    if let Some(status) = filter.status {
        query.push(" AND d.status = ").push_bind(status.code() as i16);
    }
    if let Some(class) = filter.status_code_class {
        let (lo, hi) = code_range(class);
        query
            .push(
                " AND (SELECT a.response_status_code FROM attempts a
                       WHERE a.msg_id = d.msg_id AND a.endpoint_id = d.endpoint_id
                       ORDER BY a.id DESC LIMIT 1) BETWEEN ",
            )
            .push_bind(lo)
            .push(" AND ")
            .push_bind(hi);
    }
    query.push(" AND d.msg_id IN (SELECT m.id FROM messages m WHERE m.payload IS NOT NULL AND m.app_id = ");
    query.push_bind(app.as_str().to_owned()).push(" AND m.created_at >= ").push_bind(ms(filter.since));
    if let Some(until) = filter.until {
        query.push(" AND m.created_at < ").push_bind(ms(until));
    }
    push_message_filters(&mut query, filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
    query.push(")");
    let mut tx = conn.begin().await.map_err(db)?;
    let queued = query.build().execute(&mut *tx).await.map_err(db)?.rows_affected();
    if queued > 0 {
        notify(&mut tx).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(queued)
}

pub(crate) async fn replay_missing(
    conn: &mut PgConnection,
    app: &AppId,
    endpoint: &EndpointId,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let mut tx = conn.begin().await.map_err(db)?;
    let target =
        resources::find_endpoint(&mut *tx, app, endpoint.as_str()).await?.ok_or(StoreError::NotFound("endpoint"))?;
    let candidates = sqlx::query(
        "SELECT m.id, m.event_type, m.channels, m.deliver_at FROM messages m
         WHERE m.app_id = $1 AND m.payload IS NOT NULL AND m.created_at >= $3
           AND ($4::timestamptz IS NULL OR m.created_at < $4)
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.endpoint_id = $2)",
    )
    .bind(app.as_str())
    .bind(endpoint.as_str())
    .bind(ms(since))
    .bind(until.map(ms))
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let (mut ids, mut due) = (Vec::new(), Vec::new());
    for row in &candidates {
        let event_type: String = row.try_get("event_type").map_err(db)?;
        let channels: Option<Vec<String>> = row.try_get("channels").map_err(db)?;
        let accepted = subscription_accepts(
            target.disabled,
            target.event_types.as_deref(),
            target.channels.as_deref(),
            &event_type,
            channels.as_deref(),
        );
        if accepted {
            ids.push(row.try_get::<String, _>("id").map_err(db)?);
            // A message scheduled for later still waits for its time.
            let deliver_at: Option<DateTime<Utc>> = row.try_get("deliver_at").map_err(db)?;
            due.push(deliver_at.map_or(ms(now), |at| at.max(ms(now))));
        }
    }
    if ids.is_empty() {
        tx.commit().await.map_err(db)?;
        return Ok(0);
    }
    let queued = sqlx::query(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, trigger_type)
         SELECT u.id, $2, $3, 1, 0, u.due, $4 FROM unnest($1::text[], $5::timestamptz[]) AS u(id, due)
         ON CONFLICT (msg_id, endpoint_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(endpoint.as_str())
    .bind(app.as_str())
    .bind(TriggerType::Manual as i16)
    .bind(&due)
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected();
    notify(&mut tx).await?;
    tx.commit().await.map_err(db)?;
    Ok(queued)
}

#[async_trait]
impl AttemptLog for PostgresStore {
    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        crate::maintenance::record(&mut conn, &results, None).await.map(drop)
    }

    async fn record_attempts_disabling(
        &self,
        results: Vec<AttemptResult>,
        disable_failing_since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<EndpointId>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        crate::maintenance::record(&mut conn, &results, disable_failing_since).await
    }

    async fn list_message_attempts(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Vec<Attempt>> {
        crate::deliveries::message_attempts(&self.pool, app, msg_id).await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        filter: &herald_store::AttemptFilter,
        page: &PageQuery,
    ) -> StoreResult<Page<Attempt>> {
        list(&self.pool, app, filter, page).await
    }

    async fn get_attempt(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        attempt_id: &herald_core::AttemptId,
    ) -> StoreResult<Attempt> {
        get(&self.pool, app, msg_id, attempt_id).await.and_then(found("attempt"))
    }

    async fn list_endpoint_messages(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        status: Option<herald_core::model::DeliveryStatus>,
        filter: &MessageFilter,
        page: &PageQuery,
    ) -> StoreResult<Page<herald_store::EndpointMessage>> {
        endpoint_messages(&self.pool, app, endpoint_id, status, filter, page).await
    }

    async fn list_message_destinations(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        page: &PageQuery,
    ) -> StoreResult<Page<herald_store::MessageDestination>> {
        destinations(&self.pool, app, msg_id, page).await
    }

    async fn endpoint_stats(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<herald_store::DeliveryCounts> {
        stats(&self.pool, app, endpoint_id, since, until).await
    }

    async fn expunge_message_content(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<()> {
        expunge_message(&self.pool, app, msg_id).await
    }

    async fn expunge_attempt_content(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        attempt_id: &herald_core::AttemptId,
    ) -> StoreResult<()> {
        expunge_attempt(&self.pool, app, msg_id, attempt_id).await
    }
}
