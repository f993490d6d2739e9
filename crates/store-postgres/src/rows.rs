//! Mapping between PostgreSQL rows and `herald_core::model` records, and the cursor
//! clause every list query shares.
//!
//! Times are `timestamptz` (microseconds); values are cut to the millisecond before
//! they are written, so they read back equal (`herald_core::to_millis`).

use chrono::{DateTime, Utc};
use herald_core::model::{Application, Attempt, Delivery, DeliveryStatus, Endpoint, EventType, Message, TriggerType};
use herald_store::{Direction, Order, PageQuery, StoreResult};
use sqlx::{Postgres, QueryBuilder, Row, postgres::PgRow, types::Json};

use crate::error::{db, internal};

/// A time as stored: to the millisecond.
pub(crate) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    herald_core::to_millis(t)
}

fn id<T: TryFrom<String>>(row: &PgRow, column: &str) -> StoreResult<T>
where
    T::Error: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.try_get(column).map_err(db)?;
    T::try_from(text).map_err(internal)
}

fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(row: &'r PgRow, column: &str) -> StoreResult<T> {
    row.try_get(column).map_err(db)
}

fn status(code: i16) -> StoreResult<DeliveryStatus> {
    DeliveryStatus::from_code(code.into()).ok_or_else(|| internal(format!("unknown delivery status {code}")))
}

fn trigger(code: i16) -> StoreResult<TriggerType> {
    TriggerType::from_code(code.into()).ok_or_else(|| internal(format!("unknown trigger type {code}")))
}

fn throttle(rate: Option<i32>) -> StoreResult<Option<u16>> {
    rate.map(u16::try_from).transpose().map_err(internal)
}

/// Columns [`application`] reads.
macro_rules! app_columns {
    () => {
        "id, uid, name, throttle_rate, metadata, created_at, updated_at"
    };
}
pub(crate) use app_columns;

pub(crate) fn application(row: &PgRow) -> StoreResult<Application> {
    Ok(Application {
        id: id(row, "id")?,
        uid: get(row, "uid")?,
        name: get(row, "name")?,
        throttle_rate: throttle(get(row, "throttle_rate")?)?,
        metadata: get::<Json<_>>(row, "metadata")?.0,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// Columns [`event_type`] reads, in the order the insert binds them.
macro_rules! event_type_columns {
    () => {
        "name, description, archived, deprecated, schemas, group_name, feature_flags, created_at, updated_at"
    };
}
pub(crate) use event_type_columns;

pub(crate) fn event_type(row: &PgRow) -> StoreResult<EventType> {
    Ok(EventType {
        name: get(row, "name")?,
        description: get(row, "description")?,
        archived: get(row, "archived")?,
        deprecated: get(row, "deprecated")?,
        schemas: get::<Option<Json<_>>>(row, "schemas")?.map(|j| j.0),
        group_name: get(row, "group_name")?,
        feature_flags: get(row, "feature_flags")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// Columns [`endpoint`] reads, in the order the insert binds them.
macro_rules! endpoint_columns {
    () => {
        "id, app_id, uid, url, description, throttle_rate, disabled, event_types, channels, metadata, headers, \
         secrets, created_at, updated_at"
    };
}
pub(crate) use endpoint_columns;

pub(crate) fn endpoint(row: &PgRow) -> StoreResult<Endpoint> {
    Ok(Endpoint {
        id: id(row, "id")?,
        app_id: id(row, "app_id")?,
        uid: get(row, "uid")?,
        url: get(row, "url")?,
        description: get(row, "description")?,
        throttle_rate: throttle(get(row, "throttle_rate")?)?,
        disabled: get(row, "disabled")?,
        event_types: get(row, "event_types")?,
        channels: get(row, "channels")?,
        metadata: get::<Json<_>>(row, "metadata")?.0,
        headers: get::<Json<_>>(row, "headers")?.0,
        secrets: get::<Json<_>>(row, "secrets")?.0,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// Columns [`message`] reads, in the order the insert binds them.
macro_rules! message_columns {
    () => {
        "id, app_id, event_id, event_type, payload, channels, tags, created_at, deliver_at, expires_at, content_type"
    };
}
pub(crate) use message_columns;

pub(crate) fn message(row: &PgRow) -> StoreResult<Message> {
    Ok(Message {
        id: id(row, "id")?,
        app_id: id(row, "app_id")?,
        event_id: get(row, "event_id")?,
        event_type: get(row, "event_type")?,
        payload: get(row, "payload")?,
        channels: get(row, "channels")?,
        tags: get(row, "tags")?,
        created_at: get(row, "created_at")?,
        deliver_at: get(row, "deliver_at")?,
        expires_at: get(row, "expires_at")?,
        content_type: get(row, "content_type")?,
    })
}

/// Columns [`delivery`] reads.
macro_rules! delivery_columns {
    () => {
        "msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, trigger_type"
    };
}
pub(crate) use delivery_columns;

pub(crate) fn delivery(row: &PgRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        msg_id: id(row, "msg_id")?,
        endpoint_id: id(row, "endpoint_id")?,
        app_id: id(row, "app_id")?,
        status: status(get(row, "status")?)?,
        attempts: u32::try_from(get::<i32>(row, "attempts")?).map_err(internal)?,
        next_attempt_at: get(row, "next_attempt_at")?,
        trigger: trigger(get(row, "trigger_type")?)?,
    })
}

/// Columns [`attempt`] reads, in the order the insert binds them.
macro_rules! attempt_columns {
    () => {
        "id, msg_id, endpoint_id, app_id, url, status, response_status_code, response, response_duration_ms, \
         trigger_type, created_at"
    };
}
pub(crate) use attempt_columns;

pub(crate) fn attempt(row: &PgRow) -> StoreResult<Attempt> {
    Ok(Attempt {
        id: id(row, "id")?,
        msg_id: id(row, "msg_id")?,
        endpoint_id: id(row, "endpoint_id")?,
        app_id: id(row, "app_id")?,
        url: get(row, "url")?,
        status: status(get(row, "status")?)?,
        response_status_code: get(row, "response_status_code")?,
        response: get(row, "response")?,
        response_duration_ms: get(row, "response_duration_ms")?,
        trigger: trigger(get(row, "trigger_type")?)?,
        created_at: get(row, "created_at")?,
    })
}

/// Appends the cursor condition, order and limit of one page over `column` to a query
/// that already has its `WHERE`; returns the direction walked.
pub(crate) fn push_page(query: &mut QueryBuilder<Postgres>, column: &str, page: &PageQuery) -> Direction {
    let direction = page.cursor.as_ref().map_or(Direction::Next, |c| c.direction);
    // Walking forward in ascending order, or backward in descending order, means
    // increasing keys; the other two combinations walk decreasing keys.
    let increasing =
        matches!((page.order, direction), (Order::Ascending, Direction::Next) | (Order::Descending, Direction::Prev));
    let (op, dir) = if increasing { (">", "ASC") } else { ("<", "DESC") };
    if let Some(cursor) = &page.cursor {
        query.push(format_args!(" AND {column} {op} ")).push_bind(cursor.key.clone());
    }
    // One row beyond the limit tells whether more exist.
    query.push(format_args!(" ORDER BY {column} {dir} LIMIT ")).push_bind(page.limit as i64 + 1);
    direction
}
