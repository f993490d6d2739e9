//! Accepting messages (the hot path: one job of a group-committed transaction per
//! request), reading them back, and idempotency keys.
//!
//! Cross-node rules, and what holds each:
//! - `eventId` within its window: a transaction-scoped advisory lock per eventId, taken
//!   before the check ([`lock_event_ids`]), so two racing creates cannot both see "free".
//! - Idempotency keys: the primary key plus `INSERT … ON CONFLICT`, which waits for a
//!   racing transaction that holds the same key and then sees its outcome.
//! - The application: inline creation is `ON CONFLICT DO NOTHING` and then a re-read,
//!   so two nodes creating the same app by uid agree on one.

use chrono::{DateTime, Duration, Utc};
use herald_core::{
    AppId, EndpointId, MessageId,
    model::{Delivery, DeliveryStatus, Message, subscription_accepts},
};
use herald_store::{
    IdempotencyClaim, MessageFilter, MessageOutcome, NewMessage, Page, PageQuery, StoreError, StoreResult,
    StoredResponse,
};
use sqlx::{PgConnection, PgExecutor, Postgres, QueryBuilder, Row, postgres::PgRow};

use crate::{
    error::{db, internal},
    resources,
    rows::{self, delivery_columns, message_columns, ms},
};

/// A claimed key whose request has shown no sign of life for this long is taken over.
const CLAIM_TIMEOUT: Duration = Duration::seconds(60);

/// Takes the advisory locks that guard `eventId` uniqueness, for every eventId a batch
/// will write, in one global order (so two batches never wait on each other in a
/// cycle). The key is the eventId alone, not the app: the app may be named by uid and
/// is only resolved later, and a shared lock between apps costs only a short wait.
pub(crate) async fn lock_event_ids(conn: &mut PgConnection, event_ids: &[&str]) -> StoreResult<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k)
         FROM (SELECT DISTINCT hashtextextended('herald-event-id:' || current_schema() || ':' || e, 0) AS k
               FROM unnest($1::text[]) AS e) AS keys
         ORDER BY k",
    )
    .bind(event_ids)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Where a message goes: its application, whether its eventId is taken, and the
/// filter columns of the application's endpoints.
struct Target {
    app_id: String,
    event_id_taken: bool,
    endpoints: Vec<Candidate>,
}

/// The filter columns of one endpoint.
struct Candidate {
    id: String,
    disabled: bool,
    event_types: Option<Vec<String>>,
    channels: Option<Vec<String>>,
}

async fn resolve(conn: &mut PgConnection, new: &NewMessage) -> StoreResult<Option<Target>> {
    // One round trip for the three lookups; the left join keeps the app row when it
    // has no endpoints.
    macro_rules! resolve_sql {
        ($key:literal) => {
            concat!(
                "SELECT a.id AS app_id,
                        EXISTS (SELECT 1 FROM messages m
                                WHERE m.app_id = a.id AND m.event_id = $2 AND m.created_at >= $3) AS taken,
                        e.id AS endpoint_id, e.disabled, e.event_types, e.channels
                 FROM applications a LEFT JOIN endpoints e ON e.app_id = a.id
                 WHERE a.",
                $key,
                " = $1"
            )
        };
    }
    let sql = if AppId::is_id(&new.app_key) { resolve_sql!("id") } else { resolve_sql!("uid") };
    let found = sqlx::query(sql)
        .bind(&new.app_key)
        .bind(&new.message.event_id)
        .bind(ms(new.event_id_since))
        .fetch_all(conn)
        .await
        .map_err(db)?;
    let Some(first) = found.first() else { return Ok(None) };
    let mut target = Target {
        app_id: first.try_get("app_id").map_err(db)?,
        event_id_taken: first.try_get("taken").map_err(db)?,
        endpoints: Vec::with_capacity(found.len()),
    };
    for row in &found {
        if let Some(id) = row.try_get::<Option<String>, _>("endpoint_id").map_err(db)? {
            target.endpoints.push(Candidate {
                id,
                disabled: row.try_get("disabled").map_err(db)?,
                event_types: row.try_get("event_types").map_err(db)?,
                channels: row.try_get("channels").map_err(db)?,
            });
        }
    }
    Ok(Some(target))
}

/// Runs one message's writes on `conn`, which is inside a transaction (or savepoint)
/// that the caller commits. The caller holds the eventId lock ([`lock_event_ids`]).
pub(crate) async fn create(
    conn: &mut PgConnection,
    new: &NewMessage,
    now: DateTime<Utc>,
) -> StoreResult<MessageOutcome> {
    if let Some(idem) = &new.idempotency {
        match claim_key(&mut *conn, &idem.key, idem.expires_at, now).await? {
            IdempotencyClaim::Claimed => {}
            IdempotencyClaim::Completed(response) => return Ok(MessageOutcome::Replayed(response)),
            IdempotencyClaim::InProgress => {
                return Err(StoreError::Conflict("a request with this idempotency key is in progress".into()));
            }
        }
    }
    let target = match resolve(conn, new).await? {
        Some(target) => target,
        None => {
            let app = new.create_app.as_ref().ok_or(StoreError::NotFound("application"))?;
            insert_application_if_absent(&mut *conn, app).await?;
            resolve(conn, new)
                .await?
                .ok_or_else(|| StoreError::Conflict("an application with this id or uid already exists".into()))?
        }
    };
    if target.event_id_taken {
        return Err(StoreError::Conflict("a message with this eventId already exists".into()));
    }
    let mut message = new.message.clone();
    message.app_id = AppId::try_from(target.app_id).map_err(internal)?;
    let due = ms(message.deliver_at.unwrap_or(message.created_at));
    let mut endpoint_ids = Vec::new();
    for e in target.endpoints {
        let (types, wanted) = (e.event_types.as_deref(), e.channels.as_deref());
        if subscription_accepts(e.disabled, types, wanted, &message.event_type, message.channels.as_deref()) {
            endpoint_ids.push(e.id);
        }
    }
    endpoint_ids.sort();
    insert_message(&mut *conn, &message, due, &endpoint_ids).await?;
    if let Some(idem) = &new.idempotency {
        complete_key(&mut *conn, &idem.key, &idem.response, Some(idem.expires_at)).await?;
    }
    let deliveries = endpoint_ids
        .into_iter()
        .map(|id| {
            Ok(Delivery {
                msg_id: message.id.clone(),
                endpoint_id: EndpointId::try_from(id).map_err(internal)?,
                app_id: message.app_id.clone(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: due,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(MessageOutcome::Created { message, deliveries })
}

async fn insert_application_if_absent(
    conn: &mut PgConnection,
    app: &herald_core::model::Application,
) -> StoreResult<()> {
    // A racing creator of the same uid makes this wait for its commit, then do nothing.
    sqlx::query(concat!(
        "INSERT INTO applications (",
        rows::app_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
    ))
    .bind(app.id.as_str())
    .bind(&app.uid)
    .bind(&app.name)
    .bind(app.throttle_rate.map(i32::from))
    .bind(sqlx::types::Json(&app.metadata))
    .bind(ms(app.created_at))
    .bind(ms(app.updated_at))
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// The message and its deliveries in one statement (one round trip). The foreign keys
/// are checked at the statement's end, when the message row exists.
async fn insert_message(
    conn: &mut PgConnection,
    m: &Message,
    due: DateTime<Utc>,
    endpoints: &[String],
) -> StoreResult<()> {
    sqlx::query(concat!(
        "WITH message AS (INSERT INTO messages (",
        message_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10))
         INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at)
         SELECT $1, e, $2, 1, 0, $11 FROM unnest($12::text[]) AS e"
    ))
    .bind(m.id.as_str())
    .bind(m.app_id.as_str())
    .bind(&m.event_id)
    .bind(&m.event_type)
    .bind(&m.payload)
    .bind(&m.channels)
    .bind(&m.tags)
    .bind(ms(m.created_at))
    .bind(m.deliver_at.map(ms))
    .bind(ms(m.expires_at))
    .bind(due)
    .bind(endpoints)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

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
        .bind(ms(now - CLAIM_TIMEOUT))
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
