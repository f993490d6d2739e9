//! Accepting messages: the work of one create request inside a group-committed batch
//! ([`crate::writer`] owns the transaction).
//!
//! A job that is *rejected* (idempotency key in use, unknown application, eventId
//! taken) leaves nothing behind: every rule that can reject is checked by reading
//! before the job writes, and the one earlier write (its idempotency claim) is undone
//! by a compensating statement. So jobs need no savepoint each, which saves two round
//! trips per message. A *statement* failure (a foreign key hit by a concurrent delete,
//! a lost deadlock, a lost connection) aborts the whole transaction, and the writer
//! reruns the batch's jobs one by one.
//!
//! Cross-node rules, and what holds each:
//! - `eventId` within its window: a transaction-scoped advisory lock per eventId, taken
//!   for the whole batch before any check ([`lock_event_ids`]), so two racing creates
//!   cannot both see it free.
//! - Idempotency keys: see [`crate::messages::claim_key`].
//! - The application: inline creation is `ON CONFLICT DO NOTHING` and then a re-read,
//!   so two nodes creating the same application by uid agree on one.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use herald_core::{
    AppId, EndpointId,
    model::{Application, Delivery, DeliveryStatus, Message},
};
use herald_store::{
    IdempotencyWrite, MessageOutcome, NewMessage, StoreError,
    accept::{self, Subscriber},
    handoff::{HandoffSender, Reservation},
};
use sqlx::{PgConnection, Row};

use crate::{
    error::{db, internal},
    messages::claim_key,
    rows::{app_columns, message_columns, ms},
};

/// Why a job did not produce an outcome.
pub(crate) enum JobError {
    /// A rule said no; the job wrote nothing and the batch goes on.
    Rejected(StoreError),
    /// A statement failed and the transaction is aborted.
    Aborted(StoreError),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        Self::Aborted(e)
    }
}

/// Takes the advisory locks that guard `eventId` uniqueness, for every eventId a batch
/// will write, in one global order (so two batches never wait on each other in a
/// cycle). The key is the eventId alone, not the app: the app may be named by uid and
/// is only resolved later, and a lock shared between apps costs only a short wait.
pub(crate) async fn lock_event_ids(conn: &mut PgConnection, event_ids: &[&str]) -> Result<(), StoreError> {
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

/// An application and the filter columns of its endpoints, as this transaction sees them.
struct Target {
    app_id: AppId,
    /// The hidden application of an ingest source: only its source's requests reach it.
    is_source_app: bool,
    endpoints: Vec<Subscriber>,
}

/// What a job produced: its outcome, and the hand-off room its deliveries hold, to
/// send through once the batch has committed.
pub(crate) type Accepted = (MessageOutcome, Option<Reservation>);

/// The jobs of one transaction, sharing what they looked up.
pub(crate) struct Batch {
    /// By the `app_key` requests used. Most batches name one application many times.
    targets: HashMap<String, Arc<Target>>,
    /// This node's dispatcher, when it takes accepted deliveries in memory.
    handoff: Option<HandoffSender>,
}

impl Batch {
    pub(crate) fn new(handoff: Option<HandoffSender>) -> Self {
        Self { targets: HashMap::new(), handoff }
    }

    /// Runs one request's writes on `conn`, inside the batch's transaction. The caller
    /// holds the eventId locks.
    pub(crate) async fn create(
        &mut self,
        conn: &mut PgConnection,
        new: &NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Accepted, JobError> {
        let Some(idem) = &new.idempotency else { return self.accept(conn, new, now).await };
        if let Some(settled) = accept::settled_by_key(claim_key(&mut *conn, &idem.key, idem.expires_at, now).await?) {
            return Ok((settled, None));
        }
        let accepted = self.accept(conn, new, now).await;
        if matches!(accepted, Err(JobError::Rejected(_)) | Ok((MessageOutcome::DuplicateEventId, _))) {
            // Undo the claim: the key is free again, as if the job never ran.
            sqlx::query("DELETE FROM idempotency_keys WHERE key = $1")
                .bind(&idem.key)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
        }
        accepted
    }

    async fn accept(
        &mut self,
        conn: &mut PgConnection,
        new: &NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Accepted, JobError> {
        let target = self.target(conn, new).await?;
        let from_source = new.ingest_log.is_some();
        let message = accept::admit(new.message.clone(), &target.app_id, target.is_source_app, from_source)
            .map_err(JobError::Rejected)?;
        if let Some(event_id) = &message.event_id {
            let taken: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE app_id = $1 AND event_id = $2 AND created_at >= $3)",
            )
            .bind(target.app_id.as_str())
            .bind(event_id)
            .bind(ms(new.event_id_since))
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            if taken {
                return Ok((MessageOutcome::DuplicateEventId, None));
            }
        }
        let mut deliveries = accept::deliveries(&message, &target.endpoints);
        let reserved = self.handoff.as_ref().and_then(|h| h.reserve(&message, &mut deliveries, now));
        insert_message(conn, &message, &deliveries, new.idempotency.as_ref()).await?;
        if let Some(entry) = &new.ingest_log {
            crate::ingest::insert_log(&mut *conn, entry).await?;
        }
        Ok((MessageOutcome::Created { message, deliveries }, reserved))
    }

    /// The request's application, looked up once per batch, or created from the
    /// request's inline `application` when it does not exist.
    async fn target(&mut self, conn: &mut PgConnection, new: &NewMessage) -> Result<Arc<Target>, JobError> {
        if let Some(target) = self.targets.get(&new.app_key) {
            return Ok(target.clone());
        }
        let target = match resolve(conn, &new.app_key).await? {
            Some(target) => target,
            None => {
                let app = new.create_app.as_ref().ok_or(JobError::Rejected(StoreError::NotFound("application")))?;
                let inserted = insert_application_if_absent(conn, app).await?;
                match resolve(conn, &new.app_key).await? {
                    Some(target) => target,
                    None => {
                        // The inline application names another key than the request did.
                        if inserted {
                            sqlx::query("DELETE FROM applications WHERE id = $1")
                                .bind(app.id.as_str())
                                .execute(&mut *conn)
                                .await
                                .map_err(db)?;
                        }
                        let clash = "an application with this id or uid already exists";
                        return Err(JobError::Rejected(StoreError::Conflict(clash.into())));
                    }
                }
            }
        };
        let target = Arc::new(target);
        self.targets.insert(new.app_key.clone(), target.clone());
        Ok(target)
    }
}

/// The application named by `key` (id or uid) with its endpoints' filter columns, in
/// one round trip; the left join keeps the application when it has no endpoints.
async fn resolve(conn: &mut PgConnection, key: &str) -> Result<Option<Target>, StoreError> {
    macro_rules! resolve_sql {
        ($column:literal) => {
            concat!(
                "SELECT a.id AS app_id, e.id AS endpoint_id, e.disabled, e.event_types, e.channels,
                        EXISTS (SELECT 1 FROM ingest_sources s WHERE s.app_id = a.id) AS is_source_app
                 FROM applications a LEFT JOIN endpoints e ON e.app_id = a.id
                 WHERE a.",
                $column,
                " = $1"
            )
        };
    }
    let sql = if AppId::is_id(key) { resolve_sql!("id") } else { resolve_sql!("uid") };
    let found = sqlx::query(sql).bind(key).fetch_all(conn).await.map_err(db)?;
    let Some(first) = found.first() else { return Ok(None) };
    let app_id: String = first.try_get("app_id").map_err(db)?;
    let mut target = Target {
        app_id: AppId::try_from(app_id).map_err(internal)?,
        is_source_app: first.try_get("is_source_app").map_err(db)?,
        endpoints: Vec::new(),
    };
    for row in &found {
        if let Some(id) = row.try_get::<Option<String>, _>("endpoint_id").map_err(db)? {
            target.endpoints.push(Subscriber {
                id: EndpointId::try_from(id).map_err(internal)?,
                disabled: row.try_get("disabled").map_err(db)?,
                event_types: row.try_get("event_types").map_err(db)?,
                channels: row.try_get("channels").map_err(db)?,
            });
        }
    }
    Ok(Some(target))
}

/// Whether this call inserted the application (a racing creator of the same uid makes
/// it wait for that commit, then do nothing).
async fn insert_application_if_absent(conn: &mut PgConnection, app: &Application) -> Result<bool, StoreError> {
    let done = sqlx::query(concat!(
        "INSERT INTO applications (",
        app_columns!(),
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
    Ok(done.rows_affected() == 1)
}

/// The message, its deliveries (pending, or leased to this node's dispatcher: all in
/// one state) and its idempotency response in one statement (one round trip). Foreign
/// keys are checked at the statement's end, when the message row exists; with no
/// idempotency record the key update matches nothing.
async fn insert_message(
    conn: &mut PgConnection,
    m: &Message,
    deliveries: &[Delivery],
    idempotency: Option<&IdempotencyWrite>,
) -> Result<(), StoreError> {
    let endpoints: Vec<&str> = deliveries.iter().map(|d| d.endpoint_id.as_str()).collect();
    let (status, due) =
        deliveries.first().map_or((DeliveryStatus::Pending, accept::due_at(m)), |d| (d.status, d.next_attempt_at));
    sqlx::query(concat!(
        "WITH message AS (INSERT INTO messages (",
        message_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $17)),
         idempotency AS (UPDATE idempotency_keys SET state = 1, status = $14, body = $15, expires_at = $16
                         WHERE key = $13)
         INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at)
         SELECT $1, e, $2, $18, 0, $11 FROM unnest($12::text[]) AS e"
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
    .bind(ms(due))
    .bind(&endpoints)
    .bind(idempotency.map(|i| i.key.as_str()))
    .bind(idempotency.map(|i| i32::from(i.response.status)))
    .bind(idempotency.map(|i| i.response.body.as_slice()))
    .bind(idempotency.map(|i| ms(i.expires_at)))
    .bind(&m.content_type)
    .bind(status.code() as i16)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}
