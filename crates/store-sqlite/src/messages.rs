//! Accepting messages (the hot path: one group-committed job per request), reading
//! them back, and idempotency keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, EndpointId, MessageId,
    model::{Delivery, Message},
};
use herald_store::{
    IdempotencyClaim, MessageFilter, MessageOutcome, Messages, NewMessage, Page, PageQuery, StoreError, StoreResult,
    StoredResponse,
    accept::{self, Subscriber},
    found,
    handoff::{HandoffSender, Reservation},
};
use rusqlite::{Connection, OptionalExtension, params, types::Value};

use crate::{
    SqliteStore,
    engine::internal,
    resources::{self, find_application, insert_application},
    rows::{self, db_err, ms, to_json},
};

/// Accepts `new` in the writer's transaction; deliveries due now are leased to
/// `handoff`'s dispatcher when it has room (the returned reservation, to send after
/// the commit).
pub fn create(
    conn: &Connection,
    new: NewMessage,
    now: DateTime<Utc>,
    handoff: Option<&HandoffSender>,
) -> StoreResult<(MessageOutcome, Option<Reservation>)> {
    if let Some(idem) = &new.idempotency
        && let Some(settled) = earlier_use(conn, &idem.key, now)?.and_then(accept::settled_by_key)
    {
        return Ok((settled, None));
    }
    let app = match find_application(conn, &new.app_key)? {
        Some(app) => app,
        None => {
            let app = new.create_app.ok_or(StoreError::NotFound("application"))?;
            insert_application(conn, &app)?;
            app
        }
    };
    let from_source = new.ingest_log.is_some();
    let is_source_app = !from_source && crate::ingest::is_source_app(conn, &app.id)?;
    let message = accept::admit(new.message, &app.id, is_source_app, from_source)?;
    if let Some(event_id) = &message.event_id {
        let taken = conn
            .prepare_cached("SELECT 1 FROM messages WHERE app_id = ?1 AND event_id = ?2 AND created_at >= ?3 LIMIT 1")
            .and_then(|mut s| s.exists(params![app.id.as_str(), event_id, ms(new.event_id_since)]))
            .map_err(db_err("message"))?;
        if taken {
            return Ok((MessageOutcome::DuplicateEventId, None));
        }
    }
    insert_message(conn, &message)?;
    let mut deliveries = accept::deliveries(&message, &subscribers(conn, &app.id)?);
    let reserved = handoff.and_then(|h| h.reserve(&message, &mut deliveries, now));
    insert_deliveries(conn, &deliveries)?;
    if let Some(idem) = new.idempotency {
        // The response is known before the commit, so the key is written completed.
        insert_key(conn, &idem.key, Some(&idem.response), now, idem.expires_at)?;
    }
    if let Some(entry) = &new.ingest_log {
        crate::ingest::insert_log(conn, entry)?;
    }
    Ok((MessageOutcome::Created { message, deliveries }, reserved))
}

fn insert_message(conn: &Connection, m: &Message) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO messages
             (id, app_id, event_id, event_type, payload, channels, tags, created_at, deliver_at, expires_at, content_type)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .map_err(db_err("message"))?
    .execute(params![
        m.id.as_str(),
        m.app_id.as_str(),
        m.event_id,
        m.event_type,
        m.payload,
        m.channels.as_ref().map(to_json).transpose()?,
        m.tags.as_ref().map(to_json).transpose()?,
        ms(m.created_at),
        m.deliver_at.map(ms),
        ms(m.expires_at),
        m.content_type,
    ])
    .map_err(db_err("a message with this id"))?;
    Ok(())
}

/// The filter columns of `app`'s endpoints: only those are read, as this runs for
/// every accepted message.
fn subscribers(conn: &Connection, app: &AppId) -> StoreResult<Vec<Subscriber>> {
    let mut select = conn
        .prepare_cached("SELECT id, disabled, event_types, channels FROM endpoints WHERE app_id = ?1")
        .map_err(db_err("endpoint"))?;
    let rows = select
        .query_map([app.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_err("endpoint"))?;
    let list = |json: Option<String>| json.map(|t| serde_json::from_str(&t)).transpose().map_err(internal);
    rows.into_iter()
        .map(|(id, disabled, types, channels)| {
            let id = EndpointId::try_from(id).map_err(internal)?;
            Ok(Subscriber { id, disabled, event_types: list(types)?, channels: list(channels)? })
        })
        .collect()
}

fn insert_deliveries(conn: &Connection, deliveries: &[Delivery]) -> StoreResult<()> {
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(db_err("delivery"))?;
    for d in deliveries {
        insert
            .execute(params![
                d.msg_id.as_str(),
                d.endpoint_id.as_str(),
                d.app_id.as_str(),
                d.status.code(),
                d.attempts,
                ms(d.next_attempt_at)
            ])
            .map_err(db_err("delivery"))?;
    }
    Ok(())
}

/// A message of `app` by id, or by `eventId` (the newest with it).
pub fn find(conn: &Connection, app: &AppId, key: &str) -> StoreResult<Option<Message>> {
    let sql = if MessageId::is_id(key) {
        format!("SELECT {} FROM messages WHERE app_id = ?1 AND id = ?2", rows::MESSAGE_COLUMNS)
    } else {
        format!(
            "SELECT {} FROM messages WHERE app_id = ?1 AND event_id = ?2 ORDER BY id DESC LIMIT 1",
            rows::MESSAGE_COLUMNS
        )
    };
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([app.as_str(), key], rows::message).optional())
        .map_err(db_err("message"))
}

pub fn list(conn: &Connection, app: &AppId, filter: &MessageFilter, page: &PageQuery) -> StoreResult<Page<Message>> {
    let mut sql = format!("SELECT {} FROM messages WHERE app_id = ?1", rows::MESSAGE_COLUMNS);
    let mut args = vec![Value::Text(app.as_str().to_owned())];
    let mut bind = |sql: &mut String, clause: &str, value: Value| {
        args.push(value);
        sql.push_str(&clause.replace('#', &format!("?{}", args.len())));
    };
    if let Some(types) = &filter.event_types {
        sql.push_str(" AND event_type IN (");
        for (i, t) in types.iter().enumerate() {
            bind(&mut sql, if i == 0 { "#" } else { ", #" }, Value::Text(t.clone()));
        }
        sql.push(')');
    }
    if let Some(channel) = &filter.channel {
        bind(
            &mut sql,
            " AND EXISTS (SELECT 1 FROM json_each(messages.channels) WHERE value = #)",
            Value::Text(channel.clone()),
        );
    }
    if let Some(tag) = &filter.tag {
        bind(
            &mut sql,
            " AND EXISTS (SELECT 1 FROM json_each(messages.tags) WHERE value = #)",
            Value::Text(tag.clone()),
        );
    }
    if let Some(before) = filter.before {
        bind(&mut sql, " AND created_at < #", Value::Integer(ms(before)));
    }
    if let Some(after) = filter.after {
        bind(&mut sql, " AND created_at > #", Value::Integer(ms(after)));
    }
    resources::page(conn, &sql, args, "id", page, rows::message)
}

pub fn deliveries(conn: &Connection, app: &AppId, msg: &MessageId) -> StoreResult<Vec<Delivery>> {
    conn.prepare_cached(&format!(
        "SELECT {} FROM deliveries WHERE app_id = ?1 AND msg_id = ?2 ORDER BY endpoint_id",
        rows::DELIVERY_COLUMNS
    ))
    .and_then(|mut s| s.query_map([app.as_str(), msg.as_str()], rows::delivery)?.collect())
    .map_err(db_err("delivery"))
}

/// What an earlier request left under `key`, if it still counts; a stale record (expired,
/// or claimed by a request that has shown no sign of life) is removed.
fn earlier_use(conn: &Connection, key: &str, now: DateTime<Utc>) -> StoreResult<Option<IdempotencyClaim>> {
    let existing = conn
        .prepare_cached("SELECT state, status, body, expires_at, created_at FROM idempotency_keys WHERE key = ?1")
        .and_then(|mut s| {
            s.query_row([key], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<u16>>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
        })
        .map_err(db_err("idempotency key"))?;
    let Some((state, status, body, expires, created)) = existing else { return Ok(None) };
    let live = expires > ms(now);
    match (state, status) {
        (1, Some(status)) if live => {
            Ok(Some(IdempotencyClaim::Completed(StoredResponse { status, body: body.unwrap_or_default() })))
        }
        (0, _) if live && created > ms(now - accept::IDEMPOTENCY_CLAIM_TIMEOUT) => {
            Ok(Some(IdempotencyClaim::InProgress))
        }
        _ => {
            conn.execute("DELETE FROM idempotency_keys WHERE key = ?1", [key]).map_err(db_err("idempotency key"))?;
            Ok(None)
        }
    }
}

fn insert_key(
    conn: &Connection,
    key: &str,
    response: Option<&StoredResponse>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (key, state, status, body, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            key,
            i64::from(response.is_some()),
            response.map(|r| r.status),
            response.map(|r| r.body.as_slice()),
            ms(now),
            ms(expires_at)
        ])
    })
    .map_err(db_err("idempotency key"))?;
    Ok(())
}

pub fn claim_key(
    conn: &Connection,
    key: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<IdempotencyClaim> {
    if let Some(earlier) = earlier_use(conn, key, now)? {
        return Ok(earlier);
    }
    insert_key(conn, key, None, now, expires_at)?;
    Ok(IdempotencyClaim::Claimed)
}

pub fn complete_key(
    conn: &Connection,
    key: &str,
    response: &StoredResponse,
    expires_at: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE idempotency_keys SET state = 1, status = ?2, body = ?3, expires_at = COALESCE(?4, expires_at) WHERE key = ?1",
    )
    .and_then(|mut s| s.execute(params![key, response.status, response.body, expires_at.map(ms)]))
    .map_err(db_err("idempotency key"))?;
    Ok(())
}

pub fn release_key(conn: &Connection, key: &str) -> StoreResult<()> {
    conn.execute("DELETE FROM idempotency_keys WHERE key = ?1 AND state = 0", [key])
        .map_err(db_err("idempotency key"))?;
    Ok(())
}

#[async_trait]
impl Messages for SqliteStore {
    async fn create_message(&self, new: NewMessage) -> StoreResult<MessageOutcome> {
        let (now, handoff) = (self.now(), self.handoff.sender());
        let create = move |c: &Connection| create(c, new, now, handoff.as_ref());
        // Sent on the writer thread at the commit, so a caller that stops waiting
        // (its client went away) does not leave them leased and unsent.
        let hand_off = |(outcome, reserved): &mut (MessageOutcome, Option<Reservation>)| {
            if let (Some(reservation), MessageOutcome::Created { message, deliveries }) = (reserved, &*outcome) {
                reservation.send(message, deliveries);
            }
        };
        let (outcome, handed_off) = self.engine.write_then(create, hand_off).await?;
        if matches!(outcome, MessageOutcome::Created { .. }) {
            self.commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        if handed_off.is_none() && accept::is_due_now(&outcome, now) {
            self.waker.notify_one();
        }
        Ok(outcome)
    }

    async fn get_message(&self, app: &AppId, key: &str) -> StoreResult<Message> {
        let (app, key) = (app.clone(), key.to_owned());
        self.engine.read(move |c| find(c, &app, &key)).await.and_then(found("message"))
    }

    async fn list_messages(&self, app: &AppId, filter: &MessageFilter, page: &PageQuery) -> StoreResult<Page<Message>> {
        let (app, filter, page) = (app.clone(), filter.clone(), page.clone());
        self.engine.read(move |c| list(c, &app, &filter, &page)).await
    }

    async fn list_deliveries(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Vec<Delivery>> {
        let (app, msg_id) = (app.clone(), msg_id.clone());
        self.engine.read(move |c| deliveries(c, &app, &msg_id)).await
    }

    async fn claim_idempotency_key(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<IdempotencyClaim> {
        let (key, now) = (key.to_owned(), self.now());
        self.engine.write(move |c| claim_key(c, &key, expires_at, now)).await
    }

    async fn complete_idempotency_key(&self, key: &str, response: StoredResponse) -> StoreResult<()> {
        let key = key.to_owned();
        self.engine.write(move |c| complete_key(c, &key, &response, None)).await
    }

    async fn release_idempotency_key(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.engine.write(move |c| release_key(c, &key)).await
    }
}
