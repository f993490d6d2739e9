//! Mapping between SQLite rows and `herald_core::model` records, and the cursor
//! clause every list query shares.

use chrono::{DateTime, TimeZone, Utc};
use herald_core::model::{Application, Attempt, Delivery, DeliveryStatus, Endpoint, EventType, Message, TriggerType};
use herald_store::{Direction, Order, PageQuery, StoreError, StoreResult};
use rusqlite::{Row, types::Type};
use serde::{Serialize, de::DeserializeOwned};

use crate::engine::internal;

/// Times are stored as unix milliseconds.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(row: &Row<'_>, idx: &str) -> rusqlite::Result<DateTime<Utc>> {
    let v: i64 = row.get(idx)?;
    Utc.timestamp_millis_opt(v)
        .single()
        .ok_or_else(|| rusqlite::Error::FromSqlConversionFailure(0, Type::Integer, "bad timestamp".into()))
}

fn opt_time(row: &Row<'_>, idx: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = row.get(idx)?;
    Ok(v.and_then(|v| Utc.timestamp_millis_opt(v).single()))
}

/// JSON text of a value kept in a TEXT column.
pub fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(internal)
}

fn json<T: DeserializeOwned>(row: &Row<'_>, idx: &str) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))
}

fn opt_json<T: DeserializeOwned>(row: &Row<'_>, idx: &str) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))
}

fn id<T: TryFrom<String>>(row: &Row<'_>, idx: &str) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    T::try_from(text).map_err(|_| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, "bad id".into()))
}

/// Converts a driver error, turning unique-constraint failures into `Conflict`.
pub fn db_err(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(format!("{what} already exists"))
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            StoreError::Unavailable(Box::new(e))
        }
        other => internal(other),
    }
}

pub const APP_COLUMNS: &str = "id, uid, name, throttle_rate, metadata, created_at, updated_at";

pub fn application(row: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: id(row, "id")?,
        uid: row.get("uid")?,
        name: row.get("name")?,
        throttle_rate: row.get("throttle_rate")?,
        metadata: json(row, "metadata")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub const EVENT_TYPE_COLUMNS: &str =
    "name, description, archived, deprecated, schemas, group_name, feature_flags, created_at, updated_at";

pub fn event_type(row: &Row<'_>) -> rusqlite::Result<EventType> {
    Ok(EventType {
        name: row.get("name")?,
        description: row.get("description")?,
        archived: row.get("archived")?,
        deprecated: row.get("deprecated")?,
        schemas: opt_json(row, "schemas")?,
        group_name: row.get("group_name")?,
        feature_flags: opt_json(row, "feature_flags")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub const ENDPOINT_COLUMNS: &str = "id, app_id, uid, url, description, throttle_rate, disabled, event_types, \
     channels, metadata, headers, secrets, created_at, updated_at";

pub fn endpoint(row: &Row<'_>) -> rusqlite::Result<Endpoint> {
    Ok(Endpoint {
        id: id(row, "id")?,
        app_id: id(row, "app_id")?,
        uid: row.get("uid")?,
        url: row.get("url")?,
        description: row.get("description")?,
        throttle_rate: row.get("throttle_rate")?,
        disabled: row.get("disabled")?,
        event_types: opt_json(row, "event_types")?,
        channels: opt_json(row, "channels")?,
        metadata: json(row, "metadata")?,
        headers: json(row, "headers")?,
        secrets: json(row, "secrets")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub const MESSAGE_COLUMNS: &str =
    "id, app_id, event_id, event_type, payload, channels, tags, created_at, deliver_at, expires_at, content_type";

pub fn message(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: id(row, "id")?,
        app_id: id(row, "app_id")?,
        event_id: row.get("event_id")?,
        event_type: row.get("event_type")?,
        payload: row.get("payload")?,
        channels: opt_json(row, "channels")?,
        tags: opt_json(row, "tags")?,
        created_at: time(row, "created_at")?,
        deliver_at: opt_time(row, "deliver_at")?,
        expires_at: time(row, "expires_at")?,
        content_type: row.get("content_type")?,
    })
}

pub const DELIVERY_COLUMNS: &str = "msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, trigger_type";

pub fn delivery(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let code: i64 = row.get("status")?;
    Ok(Delivery {
        msg_id: id(row, "msg_id")?,
        endpoint_id: id(row, "endpoint_id")?,
        app_id: id(row, "app_id")?,
        status: DeliveryStatus::from_code(code)
            .ok_or_else(|| rusqlite::Error::FromSqlConversionFailure(0, Type::Integer, "bad status".into()))?,
        attempts: row.get("attempts")?,
        next_attempt_at: time(row, "next_attempt_at")?,
        trigger: TriggerType::from_code(row.get("trigger_type")?)
            .ok_or_else(|| rusqlite::Error::FromSqlConversionFailure(0, Type::Integer, "bad trigger type".into()))?,
    })
}

pub fn attempt(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    let bad = |what: &'static str| rusqlite::Error::FromSqlConversionFailure(0, Type::Integer, what.into());
    let status: i64 = row.get("status")?;
    Ok(Attempt {
        id: id(row, "id")?,
        msg_id: id(row, "msg_id")?,
        endpoint_id: id(row, "endpoint_id")?,
        app_id: id(row, "app_id")?,
        url: row.get("url")?,
        status: DeliveryStatus::from_code(status).ok_or_else(|| bad("bad status"))?,
        response_status_code: row.get("response_status_code")?,
        response: row.get("response")?,
        response_duration_ms: row.get("response_duration_ms")?,
        trigger: TriggerType::from_code(row.get("trigger_type")?).ok_or_else(|| bad("bad trigger type"))?,
        created_at: time(row, "created_at")?,
    })
}

/// The `WHERE` fragment, `ORDER BY` and cursor parameter for one page over `column`.
pub struct PageSql {
    /// `AND column > ?N`-style condition, empty without a cursor.
    pub condition: String,
    pub order_by: String,
    pub cursor: Option<String>,
    pub direction: Direction,
    /// Rows to fetch: one more than the limit, to learn whether more exist.
    pub fetch: i64,
}

impl PageSql {
    /// `param` is the positional index (`?N`) the cursor value will be bound to.
    pub fn new(page: &PageQuery, column: &str, param: usize) -> Self {
        let direction = page.cursor.as_ref().map_or(Direction::Next, |c| c.direction);
        // Walking forward in ascending order, or backward in descending order, means
        // increasing keys; the other two combinations walk decreasing keys.
        let increasing = matches!(
            (page.order, direction),
            (Order::Ascending, Direction::Next) | (Order::Descending, Direction::Prev)
        );
        let (op, dir) = if increasing { (">", "ASC") } else { ("<", "DESC") };
        let condition = page.cursor.as_ref().map_or_else(String::new, |_| format!(" AND {column} {op} ?{param}"));
        Self {
            condition,
            order_by: format!("{column} {dir}"),
            cursor: page.cursor.as_ref().map(|c| c.key.clone()),
            direction,
            fetch: page.limit as i64 + 1,
        }
    }
}
