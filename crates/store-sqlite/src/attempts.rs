//! The attempt log (attempts, attempted messages and destinations, endpoint stats,
//! expunging content) and manual control (resend, requeue, replay-missing).
//!
//! Manual control only writes delivery rows (pending, due now, trigger manual); the
//! dispatcher sends them like any other, so nothing here talks to the network.

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
use rusqlite::{Connection, OptionalExtension, Row, params, types::Value};

use crate::{
    SqliteStore, deliveries,
    engine::internal,
    maintenance, resources,
    rows::{self, db_err, ms},
};

/// What an expunged attempt's response reads as.
const EXPUNGED: &str = "EXPUNGED";

const ATTEMPT_COLUMNS: &str = "id, msg_id, endpoint_id, app_id, url, status, response_status_code, response, \
     response_duration_ms, trigger_type, created_at";

/// A `WHERE` clause under construction with its positional arguments.
struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    fn new(text: impl Into<String>, args: Vec<Value>) -> Self {
        Self { text: text.into(), args }
    }

    /// Appends `clause`, with `#` standing for a new parameter bound to `value`.
    fn bind(&mut self, clause: &str, value: Value) {
        self.args.push(value);
        self.text.push_str(&clause.replace('#', &format!("?{}", self.args.len())));
    }

    /// Conditions on the message table aliased `m`.
    fn message_filters(&mut self, event_types: Option<&[String]>, channel: Option<&str>, tag: Option<&str>) {
        if let Some(types) = event_types {
            // One JSON array parameter however many types, so the statement caches.
            let list = serde_json::Value::from(types.to_vec()).to_string();
            self.bind(" AND m.event_type IN (SELECT value FROM json_each(#))", Value::Text(list));
        }
        if let Some(channel) = channel {
            self.bind(" AND EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = #)", text(channel));
        }
        if let Some(tag) = tag {
            self.bind(" AND EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = #)", text(tag));
        }
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// The range of response codes a status code class stands for (0: no response).
fn code_range(class: u16) -> (i64, i64) {
    if class == 0 { (0, 0) } else { (i64::from(class), i64::from(class) + 99) }
}

pub fn list(conn: &Connection, app: &AppId, filter: &AttemptFilter, page: &PageQuery) -> StoreResult<Page<Attempt>> {
    let mut sql =
        Sql::new(format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE app_id = ?1"), vec![text(app.as_str())]);
    if let Some(msg) = &filter.msg_id {
        sql.bind(" AND msg_id = #", text(msg.as_str()));
    }
    if let Some(endpoint) = &filter.endpoint_id {
        sql.bind(" AND endpoint_id = #", text(endpoint.as_str()));
    }
    if let Some(status) = filter.status {
        sql.bind(" AND status = #", Value::Integer(status.code()));
    }
    if let Some(class) = filter.status_code_class {
        let (lo, hi) = code_range(class);
        sql.bind(" AND response_status_code >= #", Value::Integer(lo));
        sql.bind(" AND response_status_code <= #", Value::Integer(hi));
    }
    if let Some(before) = filter.before {
        sql.bind(" AND created_at < #", Value::Integer(ms(before)));
    }
    if let Some(after) = filter.after {
        sql.bind(" AND created_at > #", Value::Integer(ms(after)));
    }
    if filter.event_types.is_some() || filter.channel.is_some() || filter.tag.is_some() {
        sql.bind(" AND msg_id IN (SELECT m.id FROM messages m WHERE m.app_id = #", text(app.as_str()));
        sql.message_filters(filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
        sql.text.push(')');
    }
    resources::page(conn, &sql.text, sql.args, "id", page, rows::attempt)
}

pub fn get(conn: &Connection, app: &AppId, msg: &MessageId, attempt: &AttemptId) -> StoreResult<Option<Attempt>> {
    conn.prepare_cached(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE app_id = ?1 AND msg_id = ?2 AND id = ?3"
    ))
    .and_then(|mut s| s.query_row([app.as_str(), msg.as_str(), attempt.as_str()], rows::attempt).optional())
    .map_err(db_err("attempt"))
}

fn prefixed(columns: &str, alias: &str) -> String {
    columns.split(',').map(|c| format!("{alias}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

fn endpoint_message(row: &Row<'_>) -> rusqlite::Result<EndpointMessage> {
    Ok(EndpointMessage { message: rows::message(row)?, delivery: rows::delivery(row)? })
}

pub fn endpoint_messages(
    conn: &Connection,
    app: &AppId,
    endpoint: &EndpointId,
    status: Option<DeliveryStatus>,
    filter: &MessageFilter,
    page: &PageQuery,
) -> StoreResult<Page<EndpointMessage>> {
    // The delivery's `app_id` column is the message's; reading it once is enough.
    let mut sql = Sql::new(
        format!(
            "SELECT {}, d.msg_id, d.endpoint_id, d.status, d.attempts, d.next_attempt_at, d.trigger_type
             FROM deliveries d JOIN messages m ON m.id = d.msg_id
             WHERE d.app_id = ?1 AND d.endpoint_id = ?2",
            prefixed(rows::MESSAGE_COLUMNS, "m")
        ),
        vec![text(app.as_str()), text(endpoint.as_str())],
    );
    if let Some(status) = status {
        sql.bind(" AND d.status = #", Value::Integer(status.code()));
    }
    sql.message_filters(filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
    if let Some(before) = filter.before {
        sql.bind(" AND m.created_at < #", Value::Integer(ms(before)));
    }
    if let Some(after) = filter.after {
        sql.bind(" AND m.created_at > #", Value::Integer(ms(after)));
    }
    resources::page(conn, &sql.text, sql.args, "m.id", page, endpoint_message)
}

fn destination(row: &Row<'_>) -> rusqlite::Result<MessageDestination> {
    Ok(MessageDestination { endpoint: rows::endpoint(row)?, delivery: rows::delivery(row)? })
}

pub fn destinations(
    conn: &Connection,
    app: &AppId,
    msg: &MessageId,
    page: &PageQuery,
) -> StoreResult<Page<MessageDestination>> {
    let sql = format!(
        "SELECT {}, d.msg_id, d.endpoint_id, d.status, d.attempts, d.next_attempt_at, d.trigger_type
         FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
         WHERE d.app_id = ?1 AND d.msg_id = ?2",
        prefixed(rows::ENDPOINT_COLUMNS, "e")
    );
    resources::page(conn, &sql, vec![text(app.as_str()), text(msg.as_str())], "e.id", page, destination)
}

pub fn stats(
    conn: &Connection,
    app: &AppId,
    endpoint: &EndpointId,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> StoreResult<DeliveryCounts> {
    let mut sql = Sql::new(
        "SELECT d.status, COUNT(*) FROM deliveries d WHERE d.app_id = ?1 AND d.endpoint_id = ?2",
        vec![text(app.as_str()), text(endpoint.as_str())],
    );
    if since.is_some() || until.is_some() {
        sql.text.push_str(" AND d.msg_id IN (SELECT m.id FROM messages m WHERE m.app_id = ?1");
        if let Some(since) = since {
            sql.bind(" AND m.created_at >= #", Value::Integer(ms(since)));
        }
        if let Some(until) = until {
            sql.bind(" AND m.created_at < #", Value::Integer(ms(until)));
        }
        sql.text.push(')');
    }
    sql.text.push_str(" GROUP BY d.status");
    let mut stmt = conn.prepare_cached(&sql.text).map_err(db_err("delivery"))?;
    let counts = stmt
        .query_map(rusqlite::params_from_iter(sql.args), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_err("delivery"))?;
    let mut out = DeliveryCounts::default();
    for (code, count) in counts {
        let status = DeliveryStatus::from_code(code).ok_or_else(|| internal(format!("unknown status {code}")))?;
        out.add(status, u64::try_from(count).unwrap_or(0));
    }
    Ok(out)
}

pub fn expunge_message(conn: &Connection, app: &AppId, msg: &MessageId) -> StoreResult<()> {
    let n = conn
        .execute("UPDATE messages SET payload = NULL WHERE app_id = ?1 AND id = ?2", [app.as_str(), msg.as_str()])
        .map_err(db_err("message"))?;
    if n == 0 { Err(StoreError::NotFound("message")) } else { Ok(()) }
}

pub fn expunge_attempt(conn: &Connection, app: &AppId, msg: &MessageId, attempt: &AttemptId) -> StoreResult<()> {
    let n = conn
        .execute(
            "UPDATE attempts SET response = ?4 WHERE app_id = ?1 AND msg_id = ?2 AND id = ?3",
            params![app.as_str(), msg.as_str(), attempt.as_str(), EXPUNGED],
        )
        .map_err(db_err("attempt"))?;
    if n == 0 { Err(StoreError::NotFound("attempt")) } else { Ok(()) }
}

fn exists(conn: &Connection, sql: &str, args: [&str; 2], what: &'static str) -> StoreResult<()> {
    let found = conn.prepare_cached(sql).and_then(|mut s| s.exists(args)).map_err(db_err(what))?;
    if found { Ok(()) } else { Err(StoreError::NotFound(what)) }
}

pub fn resend(
    conn: &Connection,
    app: &AppId,
    msg: &MessageId,
    endpoint: &EndpointId,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    exists(conn, "SELECT 1 FROM messages WHERE app_id = ?1 AND id = ?2", [app.as_str(), msg.as_str()], "message")?;
    exists(
        conn,
        "SELECT 1 FROM endpoints WHERE app_id = ?1 AND id = ?2",
        [app.as_str(), endpoint.as_str()],
        "endpoint",
    )?;
    conn.prepare_cached(concat!(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, trigger_type)
         VALUES (?1, ?2, ?3, 1, 0, ?4, 1)
         ON CONFLICT (msg_id, endpoint_id)
         DO UPDATE SET status = ",
        herald_store::delivery_status!(Pending),
        ", attempts = 0, next_attempt_at = ?4, trigger_type = 1"
    ))
    .and_then(|mut s| s.execute(params![msg.as_str(), endpoint.as_str(), app.as_str(), ms(now)]))
    .map_err(db_err("delivery"))?;
    Ok(())
}

pub fn requeue(
    conn: &Connection,
    app: &AppId,
    endpoint: &EndpointId,
    filter: &RequeueFilter,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    // Deliveries being sent right now (3) are left to finish; a payload that is gone
    // cannot be sent again.
    let mut sql = Sql::new(
        concat!(
            "UPDATE deliveries SET status = ",
            herald_store::delivery_status!(Pending),
            ", attempts = 0, next_attempt_at = ?3, trigger_type = 1
         WHERE app_id = ?1 AND endpoint_id = ?2 AND status <> ",
            herald_store::delivery_status!(Sending)
        ),
        vec![text(app.as_str()), text(endpoint.as_str()), Value::Integer(ms(now))],
    );
    if let Some(status) = filter.status {
        sql.bind(" AND status = #", Value::Integer(status.code()));
    }
    if let Some(class) = filter.status_code_class {
        let (lo, hi) = code_range(class);
        let last_code = "(SELECT a.response_status_code FROM attempts a
              WHERE a.msg_id = deliveries.msg_id AND a.endpoint_id = deliveries.endpoint_id
              ORDER BY a.id DESC LIMIT 1)";
        sql.bind(&format!(" AND {last_code} >= #"), Value::Integer(lo));
        sql.bind(&format!(" AND {last_code} <= #"), Value::Integer(hi));
    }
    sql.bind(
        " AND msg_id IN (SELECT m.id FROM messages m WHERE m.app_id = ?1 AND m.payload IS NOT NULL AND m.created_at >= #",
        Value::Integer(ms(filter.since)),
    );
    if let Some(until) = filter.until {
        sql.bind(" AND m.created_at < #", Value::Integer(ms(until)));
    }
    sql.message_filters(filter.event_types.as_deref(), filter.channel.as_deref(), filter.tag.as_deref());
    sql.text.push(')');
    let n = conn.execute(&sql.text, rusqlite::params_from_iter(sql.args)).map_err(db_err("delivery"))?;
    Ok(n as u64)
}

pub fn replay_missing(
    conn: &Connection,
    app: &AppId,
    endpoint: &EndpointId,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let target = resources::find_endpoint(conn, app, endpoint.as_str())?.ok_or(StoreError::NotFound("endpoint"))?;
    let mut select = conn
        .prepare_cached(
            "SELECT m.id, m.event_type, m.channels, m.deliver_at FROM messages m
             WHERE m.app_id = ?1 AND m.payload IS NOT NULL AND m.created_at >= ?3
               AND (?4 IS NULL OR m.created_at < ?4)
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.endpoint_id = ?2)",
        )
        .map_err(db_err("message"))?;
    let candidates = select
        .query_map(params![app.as_str(), endpoint.as_str(), ms(since), until.map(ms)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_err("message"))?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, trigger_type)
             VALUES (?1, ?2, ?3, 1, 0, ?4, ?5)",
        )
        .map_err(db_err("delivery"))?;
    let mut queued = 0;
    for (id, event_type, channels, deliver_at) in candidates {
        let channels: Option<Vec<String>> = channels.map(|c| serde_json::from_str(&c)).transpose().map_err(internal)?;
        if !subscription_accepts(
            target.disabled,
            target.event_types.as_deref(),
            target.channels.as_deref(),
            &event_type,
            channels.as_deref(),
        ) {
            continue;
        }
        // A message scheduled for later still waits for its time.
        let due = deliver_at.map_or(ms(now), |at| at.max(ms(now)));
        insert
            .execute(params![id, endpoint.as_str(), app.as_str(), due, TriggerType::Manual as i64])
            .map_err(db_err("delivery"))?;
        queued += 1;
    }
    Ok(queued)
}

#[async_trait]
impl AttemptLog for SqliteStore {
    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
        self.engine.write(move |c| maintenance::record(c, &results, None).map(drop)).await
    }

    async fn record_attempts_disabling(
        &self,
        results: Vec<AttemptResult>,
        disable_failing_since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<EndpointId>> {
        self.engine.write(move |c| maintenance::record(c, &results, disable_failing_since)).await
    }

    async fn list_message_attempts(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Vec<Attempt>> {
        let (app, msg_id) = (app.clone(), msg_id.clone());
        self.engine.read(move |c| deliveries::message_attempts(c, &app, &msg_id)).await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        filter: &herald_store::AttemptFilter,
        page: &PageQuery,
    ) -> StoreResult<Page<Attempt>> {
        let (app, filter, page) = (app.clone(), filter.clone(), page.clone());
        self.engine.read(move |c| list(c, &app, &filter, &page)).await
    }

    async fn get_attempt(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        attempt_id: &herald_core::AttemptId,
    ) -> StoreResult<Attempt> {
        let (app, msg_id, attempt_id) = (app.clone(), msg_id.clone(), attempt_id.clone());
        self.engine.read(move |c| get(c, &app, &msg_id, &attempt_id)).await.and_then(found("attempt"))
    }

    async fn list_endpoint_messages(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        status: Option<herald_core::model::DeliveryStatus>,
        filter: &MessageFilter,
        page: &PageQuery,
    ) -> StoreResult<Page<herald_store::EndpointMessage>> {
        let (app, endpoint_id, filter, page) = (app.clone(), endpoint_id.clone(), filter.clone(), page.clone());
        self.engine.read(move |c| endpoint_messages(c, &app, &endpoint_id, status, &filter, &page)).await
    }

    async fn list_message_destinations(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        page: &PageQuery,
    ) -> StoreResult<Page<herald_store::MessageDestination>> {
        let (app, msg_id, page) = (app.clone(), msg_id.clone(), page.clone());
        self.engine.read(move |c| destinations(c, &app, &msg_id, &page)).await
    }

    async fn endpoint_stats(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<herald_store::DeliveryCounts> {
        let (app, endpoint_id) = (app.clone(), endpoint_id.clone());
        self.engine.read(move |c| stats(c, &app, &endpoint_id, since, until)).await
    }

    async fn expunge_message_content(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<()> {
        let (app, msg_id) = (app.clone(), msg_id.clone());
        self.engine.write(move |c| expunge_message(c, &app, &msg_id)).await
    }

    async fn expunge_attempt_content(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        attempt_id: &herald_core::AttemptId,
    ) -> StoreResult<()> {
        let (app, msg_id, attempt_id) = (app.clone(), msg_id.clone(), attempt_id.clone());
        self.engine.write(move |c| expunge_attempt(c, &app, &msg_id, &attempt_id)).await
    }
}
