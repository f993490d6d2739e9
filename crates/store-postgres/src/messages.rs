//! Reading messages back, and idempotency keys. Idempotency keys hold across nodes
//! through the primary key plus `INSERT … ON CONFLICT`, which waits for a racing
//! transaction that holds the same key and then sees its outcome. Accepting messages
//! is in [`crate::accept`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, MessageId,
    model::{Delivery, Message},
};
use herald_store::{
    IdempotencyClaim, MessageFilter, MessageOutcome, Messages, NewMessage, Page, PageQuery, StoreError, StoreResult,
    StoredResponse, accept, found,
};
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder, Row, postgres::PgRow};

use crate::{
    PostgresStore,
    error::{db, internal},
    resources,
    rows::{self, delivery_columns, message_columns, ms},
};

/// A message of `app` by id, or by `eventId` (the newest with it).
pub(crate) async fn find(executor: impl PgExecutor<'_>, app: &AppId, key: &str) -> StoreResult<Option<Message>> {
    let sql = if MessageId::is_id(key) {
        concat!("SELECT ", message_columns!(), " FROM messages WHERE app_id = $1 AND id = $2")
    } else {
        concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE app_id = $1 AND event_id = $2 ORDER BY id DESC LIMIT 1"
        )
    };
    let row = sqlx::query(sql).bind(app.as_str()).bind(key).fetch_optional(executor).await.map_err(db)?;
    row.as_ref().map(rows::message).transpose()
}

pub(crate) async fn list(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    filter: &MessageFilter,
    page: &PageQuery,
) -> StoreResult<Page<Message>> {
    let mut query =
        QueryBuilder::<Postgres>::new(concat!("SELECT ", message_columns!(), " FROM messages WHERE app_id = "));
    query.push_bind(app.as_str().to_owned());
    if let Some(types) = &filter.event_types {
        query.push(" AND event_type = ANY(").push_bind(types.clone()).push(")");
    }
    if let Some(channel) = &filter.channel {
        query.push(" AND ").push_bind(channel.clone()).push(" = ANY(channels)");
    }
    if let Some(tag) = &filter.tag {
        query.push(" AND ").push_bind(tag.clone()).push(" = ANY(tags)");
    }
    if let Some(before) = filter.before {
        query.push(" AND created_at < ").push_bind(ms(before));
    }
    if let Some(after) = filter.after {
        query.push(" AND created_at > ").push_bind(ms(after));
    }
    resources::page(executor, query, "id", page, rows::message).await
}

pub(crate) async fn deliveries(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    msg: &MessageId,
) -> StoreResult<Vec<Delivery>> {
    sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE app_id = $1 AND msg_id = $2 ORDER BY endpoint_id"
    ))
    .bind(app.as_str())
    .bind(msg.as_str())
    .fetch_all(executor)
    .await
    .map_err(db)?
    .iter()
    .map(rows::delivery)
    .collect()
}

/// Claims `key` atomically: one statement inserts it, or takes over an expired or
/// abandoned claim. When it does neither, the row that stopped it is read back; if that
/// row vanished meanwhile (released), the claim is tried again.
pub(crate) async fn claim_key(
    conn: &mut PgConnection,
    key: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<IdempotencyClaim> {
    for _ in 0..3 {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (key, state, created_at, expires_at) VALUES ($1, 0, $2, $3)
             ON CONFLICT (key) DO UPDATE
                 SET state = 0, status = NULL, body = NULL, created_at = excluded.created_at,
                     expires_at = excluded.expires_at
                 WHERE idempotency_keys.expires_at <= excluded.created_at
                    OR (idempotency_keys.state = 0 AND idempotency_keys.created_at <= $4)
             RETURNING 1",
        )
        .bind(key)
        .bind(ms(now))
        .bind(ms(expires_at))
        .bind(ms(now - accept::IDEMPOTENCY_CLAIM_TIMEOUT))
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        if claimed.is_some() {
            return Ok(IdempotencyClaim::Claimed);
        }
        let existing = sqlx::query("SELECT state, status, body FROM idempotency_keys WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        if let Some(row) = existing {
            return idempotency_state(&row);
        }
    }
    Err(StoreError::Unavailable("an idempotency key kept changing while it was claimed".into()))
}

fn idempotency_state(row: &PgRow) -> StoreResult<IdempotencyClaim> {
    let state: i16 = row.try_get("state").map_err(db)?;
    let status: Option<i32> = row.try_get("status").map_err(db)?;
    match (state, status) {
        (1, Some(status)) => Ok(IdempotencyClaim::Completed(StoredResponse {
            status: u16::try_from(status).map_err(internal)?,
            body: row.try_get::<Option<Vec<u8>>, _>("body").map_err(db)?.unwrap_or_default(),
        })),
        _ => Ok(IdempotencyClaim::InProgress),
    }
}

pub(crate) async fn complete_key(
    executor: impl PgExecutor<'_>,
    key: &str,
    response: &StoredResponse,
    expires_at: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET state = 1, status = $2, body = $3, expires_at = COALESCE($4, expires_at)
         WHERE key = $1",
    )
    .bind(key)
    .bind(i32::from(response.status))
    .bind(&response.body)
    .bind(expires_at.map(ms))
    .execute(executor)
    .await
    .map_err(db)?;
    Ok(())
}

pub(crate) async fn release_key(executor: impl PgExecutor<'_>, key: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND state = 0")
        .bind(key)
        .execute(executor)
        .await
        .map_err(db)?;
    Ok(())
}

#[async_trait]
impl Messages for PostgresStore {
    async fn create_message(&self, new: NewMessage) -> StoreResult<MessageOutcome> {
        self.writer.create(new, self.now()).await
    }

    async fn get_message(&self, app: &AppId, key: &str) -> StoreResult<Message> {
        find(&self.pool, app, key).await.and_then(found("message"))
    }

    async fn list_messages(&self, app: &AppId, filter: &MessageFilter, page: &PageQuery) -> StoreResult<Page<Message>> {
        list(&self.pool, app, filter, page).await
    }

    async fn list_deliveries(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Vec<Delivery>> {
        deliveries(&self.pool, app, msg_id).await
    }

    async fn claim_idempotency_key(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<IdempotencyClaim> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        claim_key(&mut conn, key, expires_at, self.now()).await
    }

    async fn complete_idempotency_key(&self, key: &str, response: StoredResponse) -> StoreResult<()> {
        complete_key(&self.pool, key, &response, None).await
    }

    async fn release_idempotency_key(&self, key: &str) -> StoreResult<()> {
        release_key(&self.pool, key).await
    }
}
