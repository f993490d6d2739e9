//! The pull side on SQLite: messages read by `seq`, poller consumer positions.
//!
//! One writer thread commits every message, and `seq` is assigned inside its
//! transactions, so `seq` order is commit order: a reader that continues after the last
//! `seq` it saw can never miss a message that commits later. Positions here are
//! `(0, seq)`; a position with a non-zero `commit` lies after every SQLite message.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{AppId, MessageId};
use herald_store::{ConsumerKey, Event, EventFilter, EventPage, Events, Position, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, params, types::Value};
use tokio::sync::watch;

use crate::{
    SqliteStore,
    rows::{self, db_err, ms},
};

/// `seq` as SQLite stores it; positions past `i64::MAX` read as the end.
fn seq_arg(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn position(seq: i64) -> Position {
    Position { commit: 0, seq: seq.unsigned_abs() }
}

pub fn read(
    conn: &Connection,
    app: &AppId,
    filter: &EventFilter,
    after: Position,
    limit: usize,
) -> StoreResult<EventPage> {
    if after.commit > 0 || filter.event_types.as_ref().is_some_and(Vec::is_empty) {
        return Ok(EventPage { events: Vec::new(), done: true, held_back: false });
    }
    let mut sql = format!("SELECT seq, {} FROM messages WHERE app_id = ?1 AND seq > ?2", rows::MESSAGE_COLUMNS);
    let mut args = vec![Value::Text(app.as_str().to_owned()), Value::Integer(seq_arg(after.seq))];
    let placeholders = |args: &mut Vec<Value>, values: &[String]| {
        let start = args.len();
        args.extend(values.iter().map(|v| Value::Text(v.clone())));
        (start + 1..=args.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
    };
    if let Some(types) = &filter.event_types {
        let list = placeholders(&mut args, types);
        sql.push_str(&format!(" AND event_type IN ({list})"));
    }
    if let Some(channels) = &filter.channels {
        let list = placeholders(&mut args, channels);
        sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM json_each(messages.channels) WHERE value IN ({list}))"));
    }
    if let Some(channel) = &filter.channel {
        let list = placeholders(&mut args, std::slice::from_ref(channel));
        sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM json_each(messages.channels) WHERE value = {list})"));
    }
    if let Some(after) = filter.after {
        args.push(Value::Integer(ms(after)));
        sql.push_str(&format!(" AND created_at > ?{}", args.len()));
    }
    sql.push_str(&format!(" ORDER BY seq LIMIT {}", limit + 1));
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err("query"))?;
    let mut events = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok(Event { position: position(r.get("seq")?), message: rows::message(r)? })
        })
        .map_err(db_err("query"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err("row"))?;
    let done = events.len() <= limit;
    events.truncate(limit);
    Ok(EventPage { events, done, held_back: false })
}

pub fn message_position(conn: &Connection, app: &AppId, msg: &MessageId) -> StoreResult<Position> {
    conn.prepare_cached("SELECT seq FROM messages WHERE app_id = ?1 AND id = ?2")
        .and_then(|mut s| s.query_row([app.as_str(), msg.as_str()], |r| r.get(0)).optional())
        .map_err(db_err("message"))?
        .map(position)
        .ok_or(StoreError::NotFound("message"))
}

pub fn position_after(conn: &Connection, app: &AppId, at: DateTime<Utc>) -> StoreResult<Position> {
    let first: Option<i64> = conn
        .prepare_cached("SELECT seq FROM messages WHERE app_id = ?1 AND created_at > ?2 ORDER BY seq LIMIT 1")
        .and_then(|mut s| s.query_row(params![app.as_str(), ms(at)], |r| r.get(0)).optional())
        .map_err(db_err("message"))?;
    if let Some(seq) = first {
        return Ok(position(seq).predecessor());
    }
    let last: Option<i64> = conn
        .prepare_cached("SELECT MAX(seq) FROM messages WHERE app_id = ?1")
        .and_then(|mut s| s.query_row([app.as_str()], |r| r.get(0)))
        .map_err(db_err("message"))?;
    Ok(last.map_or(Position::START, position))
}

pub fn consumer_position(conn: &Connection, app: &AppId, key: &ConsumerKey) -> StoreResult<Option<Position>> {
    conn.prepare_cached(
        "SELECT position_commit, position_seq FROM poller_consumers
         WHERE endpoint_id = ?1 AND consumer_id = ?2 AND app_id = ?3",
    )
    .and_then(|mut s| {
        s.query_row([key.endpoint_id.as_str(), &key.consumer_id, app.as_str()], |r| {
            // Stored bit for bit: u64 positions round-trip through SQLite's i64.
            Ok(Position { commit: r.get::<_, i64>(0)? as u64, seq: r.get::<_, i64>(1)? as u64 })
        })
        .optional()
    })
    .map_err(db_err("poller consumer"))
}

pub fn save_consumer_position(
    conn: &Connection,
    app: &AppId,
    key: &ConsumerKey,
    at: Position,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO poller_consumers (endpoint_id, consumer_id, app_id, position_commit, position_seq, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (endpoint_id, consumer_id) DO UPDATE
         SET position_commit = excluded.position_commit, position_seq = excluded.position_seq,
             updated_at = excluded.updated_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            key.endpoint_id.as_str(),
            key.consumer_id,
            app.as_str(),
            at.commit as i64,
            at.seq as i64,
            ms(now)
        ])
    })
    .map_err(db_err("poller consumer"))?;
    Ok(())
}

#[async_trait]
impl Events for SqliteStore {
    async fn read_events(
        &self,
        app: &AppId,
        filter: &EventFilter,
        after: Position,
        limit: usize,
    ) -> StoreResult<EventPage> {
        let (app, filter) = (app.clone(), filter.clone());
        self.engine.read(move |c| read(c, &app, &filter, after, limit)).await
    }

    async fn message_position(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Position> {
        let (app, msg_id) = (app.clone(), msg_id.clone());
        self.engine.read(move |c| message_position(c, &app, &msg_id)).await
    }

    async fn position_after(&self, app: &AppId, at: DateTime<Utc>) -> StoreResult<Position> {
        let app = app.clone();
        self.engine.read(move |c| position_after(c, &app, at)).await
    }

    async fn consumer_position(&self, app: &AppId, consumer: &ConsumerKey) -> StoreResult<Option<Position>> {
        let (app, consumer) = (app.clone(), consumer.clone());
        self.engine.read(move |c| consumer_position(c, &app, &consumer)).await
    }

    async fn save_consumer_position(
        &self,
        app: &AppId,
        consumer: &ConsumerKey,
        position: Position,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (app, consumer) = (app.clone(), consumer.clone());
        self.engine.write(move |c| save_consumer_position(c, &app, &consumer, position, now)).await
    }

    fn message_commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}
