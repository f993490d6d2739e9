//! `/api/v1/app/{app_id}/msg`: create (202), list (newest first by default) and get.
//!
//! Creation is the hot path: one store call commits the message, one delivery per
//! matching endpoint and the idempotency record together, so a replayed key sees the
//! response exactly when the message exists. The payload is kept as the exact JSON
//! text received.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, TimeDelta, Utc};
use herald_core::{
    AppId, MessageId, ValidationError,
    model::{Application, Message},
    validate::{self, Checker},
};
use herald_store::{IdempotencyWrite, MessageFilter, MessageOutcome, NewMessage, Order, StoredResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::{applications::ApplicationIn, load_app};
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Query, Validate, check_key},
    idempotency,
    pagination::{ListResponse, Paging, Sorting, list_response, page_query},
    params::{AppMsgPath, AppPath, CreatedBetween, WithContent},
    query::{checked, checked_list},
};

/// Payload retention when the request names none, in days.
pub(crate) const DEFAULT_RETENTION_DAYS: i64 = 90;
/// How long an `eventId` stays unique within an application.
const EVENT_ID_WINDOW: TimeDelta = TimeDelta::hours(24);
/// How far ahead `deliverAt` may be (the contract says 24 hours).
const MAX_DELIVER_AT: TimeDelta = TimeDelta::hours(24);

/// Message routes; their POST handles idempotency keys itself.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v1/app/{app_id}/msg", get(list).post(create))
        .route("/api/v1/app/{app_id}/msg/{msg_id}", get(get_one))
}

/// A message to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    /// Optional unique identifier for the message.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub event_id: Option<String>,
    /// The event type's name.
    #[schema(max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$", example = "user.signup")]
    pub event_type: String,
    /// JSON payload to send as the request body of the webhook, kept byte for byte.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// List of free-form identifiers that endpoints can filter by.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Creates the application alongside the message when the path names none.
    #[serde(default)]
    pub application: Option<ApplicationIn>,
    /// List of free-form tags that can be filtered by when listing messages.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// `rawPayload` (a string) replaces `payload` and is delivered byte for byte, as the
    /// official SDKs' `new_raw_payload` sends it; other keys are accepted and unused.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub transformations_params: Option<serde_json::Value>,
    /// When to deliver the message (best effort).
    #[serde(default)]
    pub deliver_at: Option<DateTime<Utc>>,
    /// Days to keep the payload (1–90, default 90).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 90, default = 90, format = Int64)]
    pub payload_retention_period: Option<i64>,
    /// Hours to keep the payload (1–2160); exclusive with `payloadRetentionPeriod`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2160, format = Int64)]
    pub payload_retention_hours: Option<i64>,
}

/// A message as returned.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub event_type: String,
    /// The payload, or `{}` when `with_content=false`.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// The Message's ID.
    #[schema(value_type = String, example = "msg_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: MessageId,
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<DateTime<Utc>>,
}

crate::list_schema!(MessageList, ListResponse_MessageOut_, MessageOut);

impl Validate for MessageIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check.rule(&["body", "eventType"], validate::name(&self.event_type));
        if let Some(event_id) = &self.event_id {
            check.rule(&["body", "eventId"], validate::uid(event_id));
        }
        check.check(self.payload.get().starts_with('{'), &["body", "payload"], "payload must be a JSON object");
        if let Some(channels) = &self.channels {
            check.check(!channels.is_empty(), &["body", "channels"], "channels must not be empty (omit it for none)");
            check.rule(&["body", "channels"], validate::unique_list(channels, 10, validate::channel));
        }
        if let Some(tags) = &self.tags {
            check.rule(&["body", "tags"], validate::unique_list(tags, 5, validate::tag));
        }
        if let Some(days) = self.payload_retention_period {
            check.check((1..=90).contains(&days), &["body", "payloadRetentionPeriod"], "must be between 1 and 90");
        }
        if let Some(hours) = self.payload_retention_hours {
            check.check((1..=2160).contains(&hours), &["body", "payloadRetentionHours"], "must be between 1 and 2160");
            check.check(
                self.payload_retention_period.is_none(),
                &["body", "payloadRetentionHours"],
                "payloadRetentionPeriod and payloadRetentionHours are mutually exclusive",
            );
        }
        let mut violations = match check.finish() {
            Ok(()) => Vec::new(),
            Err(err) => err.0,
        };
        if let Some(Err(app)) = self.application.as_ref().map(Validate::validate) {
            violations.extend(app.0.into_iter().map(|mut v| {
                v.loc.insert(1, "application".to_owned());
                v
            }));
        }
        if violations.is_empty() { Ok(()) } else { Err(ValidationError(violations)) }
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("`{}` is valid JSON")
}

pub(crate) fn message_out(m: Message, with_content: bool) -> MessageOut {
    let payload = match m.payload {
        Some(text) if with_content => RawValue::from_string(text).unwrap_or_else(|_| empty_object()),
        _ => empty_object(),
    };
    MessageOut {
        event_id: m.event_id,
        event_type: m.event_type,
        payload,
        channels: m.channels,
        id: m.id,
        timestamp: m.created_at,
        tags: m.tags,
        deliver_at: m.deliver_at,
    }
}

/// For an application-scoped token, checks the path names its application. Unscoped
/// tokens skip this, so the hot path stays one store call.
async fn authorize(ctx: &Shared, auth: &Auth, app_key: &str) -> Result<(), ApiError> {
    if auth.app_id.is_some() {
        load_app(ctx, auth, app_key).await?;
    }
    Ok(())
}

/// The application to create with the message when the path names none: its id is
/// the path key when that is an id, else its uid is.
fn inline_application(input: Option<ApplicationIn>, app_key: &str, now: DateTime<Utc>) -> Option<Application> {
    let app = input?;
    let (id, uid) = match AppId::parse(app_key) {
        Ok(id) => (id, app.uid),
        Err(_) => (AppId::generate(now, &mut rand::rng()), Some(app_key.to_owned())),
    };
    Some(Application {
        id,
        uid,
        name: app.name,
        throttle_rate: app.throttle_rate,
        metadata: app.metadata,
        created_at: now,
        updated_at: now,
    })
}

/// The SDKs' raw payload: `transformationsParams.rawPayload`, which must be a string.
fn raw_payload(params: Option<&serde_json::Value>) -> Result<Option<&str>, ApiError> {
    match params.and_then(|p| p.get("rawPayload")) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(raw)) => Ok(Some(raw)),
        Some(_) => {
            Err(ApiError::invalid(&["body", "transformationsParams", "rawPayload"], "rawPayload must be a string"))
        }
    }
}

/// Create Message.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/msg", operation_id = "v1.message.create", tag = "Message",
    params(AppPath, WithContent, ("idempotency-key" = Option<String>, Header)),
    request_body = MessageIn,
    responses((status = 202, body = MessageOut)))]
pub(crate) async fn create(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppPath { app_id: app_key }): Keys<AppPath>,
    query: Query,
    uri: Uri,
    headers: HeaderMap,
    Json(input): Json<MessageIn>,
) -> Result<Response, ApiError> {
    check_key("app_id", &app_key)?;
    let with_content = query.params::<WithContent>()?.with_content.unwrap_or(true);
    authorize(&ctx, &auth, &app_key).await?;
    let now = ctx.now();
    // The contract's bound: a message is not held back longer than its producer could
    // reasonably expect (a far-off date is usually a unit mistake).
    if input.deliver_at.is_some_and(|at| at > now + MAX_DELIVER_AT) {
        return Err(ApiError::invalid(&["body", "deliverAt"], "must be no more than 24 hours in the future"));
    }
    let id = MessageId::generate(now, &mut rand::rng());
    let retention = match (input.payload_retention_hours, input.payload_retention_period) {
        (Some(hours), _) => TimeDelta::hours(hours),
        (None, days) => TimeDelta::days(days.unwrap_or(DEFAULT_RETENTION_DAYS)),
    };
    let create_app = inline_application(input.application, &app_key, now);
    let placeholder_app = create_app.as_ref().map_or_else(
        || AppId::parse(&app_key).unwrap_or_else(|_| AppId::generate(now, &mut rand::rng())),
        |app| app.id.clone(),
    );
    let (payload_text, payload_out) = match raw_payload(input.transformations_params.as_ref())? {
        // A raw payload that is not JSON is still delivered as given; the API shows `{}`.
        Some(raw) => (raw.to_owned(), RawValue::from_string(raw.to_owned()).unwrap_or_else(|_| empty_object())),
        None => (input.payload.get().to_owned(), input.payload),
    };
    let message = Message {
        id: id.clone(),
        app_id: placeholder_app,
        event_id: input.event_id,
        event_type: input.event_type,
        payload: Some(payload_text),
        channels: input.channels,
        tags: input.tags,
        created_at: now,
        deliver_at: input.deliver_at,
        expires_at: now + retention,
        content_type: None,
    };
    // The response is known before the commit, so it is stored in the same transaction.
    let out = MessageOut {
        event_id: message.event_id.clone(),
        event_type: message.event_type.clone(),
        payload: if with_content { payload_out } else { empty_object() },
        channels: message.channels.clone(),
        id,
        timestamp: now,
        tags: message.tags.clone(),
        deliver_at: message.deliver_at,
    };
    let body = serde_json::to_vec(&out).map_err(|e| ApiError::Internal(e.into()))?;
    let idempotency = headers.get(idempotency::HEADER).map(|key| IdempotencyWrite {
        key: idempotency::scoped_key(&auth, &Method::POST, uri.path(), key.as_bytes()),
        response: StoredResponse { status: StatusCode::ACCEPTED.as_u16(), body: body.clone() },
        expires_at: idempotency::expires_at(now),
    });
    let new = NewMessage {
        app_key,
        create_app,
        message,
        idempotency,
        event_id_since: now - EVENT_ID_WINDOW,
        ingest_log: None,
    };
    match ctx.store.create_message(new).await? {
        MessageOutcome::Created { .. } => {
            ctx.metrics.messages_accepted(1);
            let mut response = (StatusCode::ACCEPTED, body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        MessageOutcome::Replayed(stored) => Ok(idempotency::replay(stored)),
        MessageOutcome::KeyInProgress => {
            Err(ApiError::Conflict("a request with this idempotency key is in progress".into()))
        }
        MessageOutcome::DuplicateEventId => {
            Err(ApiError::Conflict("a message with this eventId already exists".into()))
        }
    }
}

/// The message list's own filters (with [`CreatedBetween`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MessageFilterParams {
    /// Filter response based on the channel.
    channel: Option<String>,
    /// Filter messages matching the provided tag.
    tag: Option<String>,
    /// Filter response based on the event type
    #[serde(default)]
    event_types: Vec<String>,
}

/// List Messages.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg", operation_id = "v1.message.list", tag = "Message",
    params(AppPath, Paging, Sorting, MessageFilterParams, CreatedBetween, WithContent),
    responses((status = 200, body = MessageList)))]
pub(crate) async fn list(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppPath { app_id: app_key }): Keys<AppPath>,
    query: Query,
) -> Result<axum::Json<ListResponse<MessageOut>>, ApiError> {
    let app = load_app(&ctx, &auth, &app_key).await?;
    let page_query = page_query(&query, Order::Descending, MessageId::is_id)?;
    let with_content = query.params::<WithContent>()?.with_content.unwrap_or(true);
    let MessageFilterParams { channel, tag, event_types } = query.params()?;
    let CreatedBetween { before, after } = query.params()?;
    checked_list("event_types", &event_types, validate::name)?;
    let filter = MessageFilter {
        event_types: (!event_types.is_empty()).then_some(event_types),
        channel: checked("channel", channel, validate::channel)?,
        tag: checked("tag", tag, validate::tag)?,
        before,
        after,
    };
    let page = ctx.store.list_messages(&app.id, &filter, &page_query).await?;
    Ok(axum::Json(list_response(page, &page_query, |m| m.id.as_str(), |m| message_out(m, with_content))))
}

/// Get Message, by id or `eventId`.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg/{msg_id}", operation_id = "v1.message.get", tag = "Message",
    params(AppMsgPath, WithContent),
    responses((status = 200, body = MessageOut)))]
pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppMsgPath { app_id: app_key, msg_id: msg_key }): Keys<AppMsgPath>,
    query: Query,
) -> Result<axum::Json<MessageOut>, ApiError> {
    let app = load_app(&ctx, &auth, &app_key).await?;
    check_key("msg_id", &msg_key)?;
    let with_content = query.params::<WithContent>()?.with_content.unwrap_or(true);
    let message = ctx.store.get_message(&app.id, &msg_key).await?;
    Ok(axum::Json(message_out(message, with_content)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse_json;

    #[test]
    fn payload_is_kept_byte_for_byte() {
        let body = br#"{"eventType":"a.b","payload":{ "z": 1,  "a":[1.50, "\u00e9"] }}"#;
        let input: MessageIn = parse_json(body).unwrap();
        assert_eq!(input.payload.get(), r#"{ "z": 1,  "a":[1.50, "\u00e9"] }"#);
        assert!(input.validate().is_ok());
    }

    #[test]
    fn payload_must_be_an_object() {
        let input: MessageIn = parse_json(br#"{"eventType":"a","payload":[1]}"#).unwrap();
        let err = ApiError::from(input.validate().unwrap_err());
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(body["detail"][0]["loc"], serde_json::json!(["body", "payload"]));
    }

    #[test]
    fn wrong_shapes_are_located_even_next_to_a_raw_payload() {
        let err = parse_json::<MessageIn>(br#"{"eventType":"a","payload":{},"tags":[1]}"#).unwrap_err();
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(body["detail"][0]["loc"], serde_json::json!(["body", "tags", "0"]));
        let err = parse_json::<MessageIn>(br#"{"eventType":"a"}"#).unwrap_err();
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(body["detail"][0]["loc"], serde_json::json!(["body", "payload"]));
    }

    #[test]
    fn inline_application_errors_are_located_under_application() {
        let input: MessageIn =
            parse_json(br#"{"eventType":"a","payload":{},"application":{"name":"","uid":"bad uid"}}"#).unwrap();
        let err = ApiError::from(input.validate().unwrap_err());
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(body["detail"][0]["loc"], serde_json::json!(["body", "application", "name"]));
    }
}
