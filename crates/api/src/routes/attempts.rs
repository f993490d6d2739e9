//! The attempt log: attempts by endpoint and by message, one attempt, the messages
//! an endpoint was sent and the endpoints a message went to, endpoint stats, and
//! expunging a message's payload or an attempt's response.
//!
//! Everything here reads what the dispatcher recorded; response bodies were capped
//! when they were recorded, and none of them is logged.

use std::collections::HashMap;

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use herald_core::{
    AttemptId, EndpointId, MessageId,
    model::{Attempt, Delivery, DeliveryStatus, Message, TriggerType},
    validate,
};
use herald_store::{AttemptFilter, EndpointMessage, MessageDestination, MessageFilter, Order};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::{endpoints::load_endpoint, load_app, messages::MessageOut};
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Keys, Query, check_key},
    pagination::{ListResponse, Paging, list_response, page_query},
    params::{AppEndpointPath, AppMsgPath, AttemptPath, CreatedBetween, ExpandedStatuses, WithContent},
    query::{checked, checked_list},
};

/// The sending status of the message: Success = 0, Pending = 1, Fail = 2, Sending = 3,
/// Canceled = 4.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct MessageStatus(i64);

/// The sending status of the message, as text.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatusText {
    Success,
    Pending,
    Fail,
    Sending,
    Canceled,
}

/// The reason an attempt was made: Scheduled = 0, Manual = 1.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct MessageAttemptTriggerType(i64);

/// The class of an HTTP status code: 0 (no response), 100, 200, 300, 400 or 500.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct StatusCodeClass(i64);

fn status_parts(status: DeliveryStatus) -> (MessageStatus, MessageStatusText) {
    let text = match status {
        DeliveryStatus::Success => MessageStatusText::Success,
        DeliveryStatus::Pending => MessageStatusText::Pending,
        DeliveryStatus::Fail => MessageStatusText::Fail,
        DeliveryStatus::Sending => MessageStatusText::Sending,
        DeliveryStatus::Canceled => MessageStatusText::Canceled,
    };
    (MessageStatus(status.code()), text)
}

/// One attempt as the log shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptOut {
    #[schema(format = "uri")]
    pub url: String,
    /// The response body (capped), or why no response arrived; empty without content.
    pub response: String,
    #[schema(format = "int16")]
    pub response_status_code: i16,
    /// Response duration in milliseconds.
    pub response_duration_ms: i64,
    pub status: MessageStatus,
    pub status_text: MessageStatusText,
    pub trigger_type: MessageAttemptTriggerType,
    /// The Message's ID.
    #[schema(value_type = String)]
    pub msg_id: MessageId,
    /// The Endpoint's ID.
    #[schema(value_type = String)]
    pub endpoint_id: EndpointId,
    /// The MessageAttempt's ID.
    #[schema(value_type = String)]
    pub id: AttemptId,
    pub timestamp: DateTime<Utc>,
    /// The message (without its payload), with `with_msg=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable)]
    pub msg: Option<MessageOut>,
}

crate::list_schema!(MessageAttemptList, ListResponse_MessageAttemptOut_, MessageAttemptOut);

fn attempt_out(a: Attempt, with_content: bool, msg: Option<MessageOut>) -> MessageAttemptOut {
    let (status, status_text) = status_parts(a.status);
    MessageAttemptOut {
        url: a.url,
        response: if with_content { a.response } else { String::new() },
        response_status_code: a.response_status_code,
        response_duration_ms: a.response_duration_ms,
        status,
        status_text,
        trigger_type: MessageAttemptTriggerType(match a.trigger {
            TriggerType::Scheduled => 0,
            TriggerType::Manual => 1,
        }),
        msg_id: a.msg_id,
        endpoint_id: a.endpoint_id,
        id: a.id,
        timestamp: a.created_at,
        msg,
    }
}

/// A message sent to an endpoint, with where its delivery stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    pub status: MessageStatus,
    pub status_text: MessageStatusText,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// The Message's ID.
    #[schema(value_type = String)]
    pub id: MessageId,
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<DateTime<Utc>>,
}

crate::list_schema!(EndpointMessageList, ListResponse_EndpointMessageOut_, EndpointMessageOut);

/// When the delivery will be tried next, while it is still queued.
fn next_attempt(d: &Delivery) -> Option<DateTime<Utc>> {
    matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Sending).then_some(d.next_attempt_at)
}

fn endpoint_message_out(e: EndpointMessage, with_content: bool) -> EndpointMessageOut {
    let (status, status_text) = status_parts(e.delivery.status);
    let next_attempt = next_attempt(&e.delivery);
    let m = super::messages::message_out(e.message, with_content);
    EndpointMessageOut {
        status,
        status_text,
        next_attempt,
        event_id: m.event_id,
        event_type: m.event_type,
        payload: m.payload,
        channels: m.channels,
        id: m.id,
        timestamp: m.timestamp,
        tags: m.tags,
        deliver_at: m.deliver_at,
    }
}

/// An endpoint a message was sent to, with where its delivery stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageEndpointOut {
    /// The Endpoint's ID.
    #[schema(value_type = String)]
    pub id: EndpointId,
    pub status: MessageStatus,
    pub status_text: MessageStatusText,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<DateTime<Utc>>,
    #[schema(format = "uri")]
    pub url: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uint16")]
    pub throttle_rate: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[schema(default = false, required = false)]
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

crate::list_schema!(MessageEndpointList, ListResponse_MessageEndpointOut_, MessageEndpointOut);

fn destination_out(d: MessageDestination) -> MessageEndpointOut {
    let (status, status_text) = status_parts(d.delivery.status);
    let e = d.endpoint;
    MessageEndpointOut {
        id: e.id,
        status,
        status_text,
        next_attempt: next_attempt(&d.delivery),
        url: e.url,
        description: e.description,
        throttle_rate: e.throttle_rate,
        uid: e.uid,
        disabled: e.disabled,
        event_types: e.event_types,
        channels: e.channels,
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

/// How many of an endpoint's messages are in each state.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointStats {
    pub success: i64,
    pub pending: i64,
    pub sending: i64,
    pub fail: i64,
    pub canceled: i64,
}

/// The filters both attempt lists share (with [`CreatedBetween`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AttemptFilterParams {
    /// Filter response based on the status of the attempt
    #[param(value_type = Option<MessageStatus>)]
    status: Option<u64>,
    /// Filter response based on the HTTP status code
    #[param(value_type = Option<StatusCodeClass>)]
    status_code_class: Option<u64>,
    /// Filter response based on the channel
    channel: Option<String>,
    /// Filter response based on the tag
    tag: Option<String>,
    /// Filter response based on the event type
    #[serde(default)]
    event_types: Vec<String>,
}

/// How much of each attempt the lists show (with [`ExpandedStatuses`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AttemptContent {
    /// When `true` attempt content is included in the response.
    with_content: Option<bool>,
}

/// `with_msg`, which the list by endpoint documents; the list by message reads it too.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WithMsg {
    /// When `true`, the message information is included in the response
    with_msg: Option<bool>,
}

/// The list by message's filter on the attempted endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AttemptedEndpoint {
    /// Filter the attempts based on the attempted endpoint
    endpoint_id: Option<String>,
}

/// The filters of an endpoint's attempted messages (with [`CreatedBetween`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EndpointMessageParams {
    /// Filter response based on the channel
    channel: Option<String>,
    /// Filter response based on the message tags
    tag: Option<String>,
    /// Filter response based on the delivery status
    #[param(value_type = Option<MessageStatus>)]
    status: Option<u64>,
    /// Filter response based on the event type
    #[serde(default)]
    event_types: Vec<String>,
}

/// The time range of the endpoint stats.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StatsRange {
    /// Filter the range to data starting from this date.
    #[serde(default, deserialize_with = "crate::query::rfc3339")]
    since: Option<DateTime<Utc>>,
    /// Filter the range to data ending by this date.
    #[serde(default, deserialize_with = "crate::query::rfc3339")]
    until: Option<DateTime<Utc>>,
}

/// `status` as a delivery status code.
fn status_filter(status: Option<u64>) -> Result<Option<DeliveryStatus>, ApiError> {
    status
        .map(|code| {
            i64::try_from(code)
                .ok()
                .and_then(DeliveryStatus::from_code)
                .ok_or_else(|| ApiError::invalid(&["query", "status"], "status must be 0, 1, 2, 3 or 4"))
        })
        .transpose()
}

/// `status_code_class`: 0, 100, 200, 300, 400 or 500.
pub(crate) fn code_class(class: Option<u64>, loc: &[&str]) -> Result<Option<u16>, ApiError> {
    match class {
        None => Ok(None),
        Some(c @ (0 | 100 | 200 | 300 | 400 | 500)) => Ok(Some(c as u16)),
        Some(_) => Err(ApiError::invalid(loc, "must be 0, 100, 200, 300, 400 or 500")),
    }
}

fn event_types(types: Vec<String>) -> Result<Option<Vec<String>>, ApiError> {
    checked_list("event_types", &types, validate::name)?;
    Ok((!types.is_empty()).then_some(types))
}

/// The filters both attempt lists share.
fn attempt_filter(query: &Query) -> Result<AttemptFilter, ApiError> {
    let AttemptFilterParams { status, status_code_class, channel, tag, event_types: types } = query.params()?;
    let CreatedBetween { before, after } = query.params()?;
    Ok(AttemptFilter {
        status: status_filter(status)?,
        status_code_class: code_class(status_code_class, &["query", "status_code_class"])?,
        event_types: event_types(types)?,
        channel: checked("channel", channel, validate::channel)?,
        tag: checked("tag", tag, validate::tag)?,
        before,
        after,
        ..AttemptFilter::default()
    })
}

/// Lists attempts (newest first) and wraps them, with their messages when asked.
async fn attempt_page(
    ctx: &Shared,
    app: &herald_core::AppId,
    filter: AttemptFilter,
    query: &Query,
) -> Result<axum::Json<ListResponse<MessageAttemptOut>>, ApiError> {
    let page_query = page_query(query, Order::Descending, AttemptId::is_id)?;
    let with_content = query.params::<AttemptContent>()?.with_content.unwrap_or(true);
    let with_msg = query.params::<WithMsg>()?.with_msg.unwrap_or(false);
    query.params::<ExpandedStatuses>()?;
    let page = ctx.store.list_attempts(app, &filter, &page_query).await?;
    let mut messages: HashMap<MessageId, Message> = HashMap::new();
    if with_msg {
        for attempt in &page.items {
            if !messages.contains_key(&attempt.msg_id) {
                let message = ctx.store.get_message(app, attempt.msg_id.as_str()).await?;
                messages.insert(attempt.msg_id.clone(), message);
            }
        }
    }
    Ok(axum::Json(list_response(
        page,
        &page_query,
        |a| a.id.as_str(),
        |a| {
            // Message payloads are never part of an attempt, whatever `with_content` says.
            let msg = messages.get(&a.msg_id).map(|m| super::messages::message_out(m.clone(), false));
            attempt_out(a, with_content, msg)
        },
    )))
}

/// List Attempts By Endpoint.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}",
    operation_id = "v1.message-attempt.list-by-endpoint", tag = "Message Attempt",
    params(
        AppEndpointPath,
        Paging,
        AttemptFilterParams,
        CreatedBetween,
        AttemptContent,
        WithMsg,
        ExpandedStatuses,
    ),
    responses((status = 200, body = MessageAttemptList)))]
pub(crate) async fn list_by_endpoint(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppEndpointPath { app_id: app_key, endpoint_id: endpoint_key }): Keys<AppEndpointPath>,
    query: Query,
) -> Result<axum::Json<ListResponse<MessageAttemptOut>>, ApiError> {
    let (app, endpoint) = load_endpoint(&ctx, &auth, &app_key, &endpoint_key).await?;
    let filter = AttemptFilter { endpoint_id: Some(endpoint.id), ..attempt_filter(&query)? };
    attempt_page(&ctx, &app.id, filter, &query).await
}

/// List Attempts By Msg.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/attempt/msg/{msg_id}",
    operation_id = "v1.message-attempt.list-by-msg", tag = "Message Attempt",
    params(
        AppMsgPath,
        Paging,
        AttemptFilterParams,
        AttemptedEndpoint,
        CreatedBetween,
        AttemptContent,
        ExpandedStatuses,
    ),
    responses((status = 200, body = MessageAttemptList)))]
pub(crate) async fn list_by_msg(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppMsgPath { app_id: app_key, msg_id: msg_key }): Keys<AppMsgPath>,
    query: Query,
) -> Result<axum::Json<ListResponse<MessageAttemptOut>>, ApiError> {
    let app = load_app(&ctx, &auth, &app_key).await?;
    check_key("msg_id", &msg_key)?;
    let message = ctx.store.get_message(&app.id, &msg_key).await?;
    let endpoint_id = match checked("endpoint_id", query.params::<AttemptedEndpoint>()?.endpoint_id, validate::uid)? {
        Some(key) => Some(ctx.store.get_endpoint(&app.id, &key).await?.id),
        None => None,
    };
    let filter = AttemptFilter { msg_id: Some(message.id), endpoint_id, ..attempt_filter(&query)? };
    attempt_page(&ctx, &app.id, filter, &query).await
}

fn attempt_key(key: &str) -> Result<AttemptId, ApiError> {
    AttemptId::parse(key).map_err(|e| ApiError::invalid(&["path", "attempt_id"], e.to_string()))
}

/// Get Attempt.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
    operation_id = "v1.message-attempt.get", tag = "Message Attempt",
    params(AttemptPath, ExpandedStatuses),
    responses((status = 200, body = MessageAttemptOut)))]
pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AttemptPath { app_id: app_key, msg_id: msg_key, attempt_id: attempt_key_text }): Keys<AttemptPath>,
    query: Query,
) -> Result<axum::Json<MessageAttemptOut>, ApiError> {
    let app = load_app(&ctx, &auth, &app_key).await?;
    check_key("msg_id", &msg_key)?;
    let attempt_id = attempt_key(&attempt_key_text)?;
    query.params::<ExpandedStatuses>()?;
    let message = ctx.store.get_message(&app.id, &msg_key).await?;
    let attempt = ctx.store.get_attempt(&app.id, &message.id, &attempt_id).await?;
    Ok(axum::Json(attempt_out(attempt, true, None)))
}

/// Delete attempt response body.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content",
    operation_id = "v1.message-attempt.expunge-content", tag = "Message Attempt",
    params(AttemptPath),
    responses((status = 204, description = "no content")))]
pub(crate) async fn expunge_attempt(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AttemptPath { app_id: app_key, msg_id: msg_key, attempt_id: attempt_key_text }): Keys<AttemptPath>,
) -> Result<StatusCode, ApiError> {
    let app = load_app(&ctx, &auth, &app_key).await?;
    check_key("msg_id", &msg_key)?;
    let attempt_id = attempt_key(&attempt_key_text)?;
    let message = ctx.store.get_message(&app.id, &msg_key).await?;
    ctx.store.expunge_attempt_content(&app.id, &message.id, &attempt_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete message payload.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/msg/{msg_id}/content",
    operation_id = "v1.message.expunge-content", tag = "Message",
    params(AppMsgPath),
    responses((status = 204, description = "no content")))]
pub(crate) async fn expunge_message(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppMsgPath { app_id: app_key, msg_id: msg_key }): Keys<AppMsgPath>,
) -> Result<StatusCode, ApiError> {
    let app = load_app(&ctx, &auth, &app_key).await?;
    check_key("msg_id", &msg_key)?;
    let message = ctx.store.get_message(&app.id, &msg_key).await?;
    ctx.store.expunge_message_content(&app.id, &message.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List Attempted Messages: the messages sent to an endpoint, newest first.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg",
    operation_id = "v1.message-attempt.list-attempted-messages", tag = "Message Attempt",
    params(AppEndpointPath, Paging, EndpointMessageParams, CreatedBetween, WithContent, ExpandedStatuses),
    responses((status = 200, body = EndpointMessageList)))]
pub(crate) async fn attempted_messages(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppEndpointPath { app_id: app_key, endpoint_id: endpoint_key }): Keys<AppEndpointPath>,
    query: Query,
) -> Result<axum::Json<ListResponse<EndpointMessageOut>>, ApiError> {
    let (app, endpoint) = load_endpoint(&ctx, &auth, &app_key, &endpoint_key).await?;
    let page_query = page_query(&query, Order::Descending, MessageId::is_id)?;
    let with_content = query.params::<WithContent>()?.with_content.unwrap_or(true);
    query.params::<ExpandedStatuses>()?;
    let EndpointMessageParams { channel, tag, status, event_types: types } = query.params()?;
    let CreatedBetween { before, after } = query.params()?;
    let filter = MessageFilter {
        event_types: event_types(types)?,
        channel: checked("channel", channel, validate::channel)?,
        tag: checked("tag", tag, validate::tag)?,
        before,
        after,
    };
    let status = status_filter(status)?;
    let page = ctx.store.list_endpoint_messages(&app.id, &endpoint.id, status, &filter, &page_query).await?;
    Ok(axum::Json(list_response(
        page,
        &page_query,
        |e| e.message.id.as_str(),
        |e| endpoint_message_out(e, with_content),
    )))
}

/// List Attempted Destinations: the endpoints a message was queued for.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint",
    operation_id = "v1.message-attempt.list-attempted-destinations", tag = "Message Attempt",
    params(AppMsgPath, Paging),
    responses((status = 200, body = MessageEndpointList)))]
pub(crate) async fn attempted_destinations(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppMsgPath { app_id: app_key, msg_id: msg_key }): Keys<AppMsgPath>,
    query: Query,
) -> Result<axum::Json<ListResponse<MessageEndpointOut>>, ApiError> {
    let app = load_app(&ctx, &auth, &app_key).await?;
    check_key("msg_id", &msg_key)?;
    let page_query = page_query(&query, Order::Ascending, EndpointId::is_id)?;
    let message = ctx.store.get_message(&app.id, &msg_key).await?;
    let page = ctx.store.list_message_destinations(&app.id, &message.id, &page_query).await?;
    Ok(axum::Json(list_response(page, &page_query, |d| d.endpoint.id.as_str(), destination_out)))
}

/// Endpoint Stats: the endpoint's messages by delivery state.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats",
    operation_id = "v1.endpoint.get-stats", tag = "Endpoint",
    params(AppEndpointPath, StatsRange),
    responses((status = 200, body = EndpointStats)))]
pub(crate) async fn stats(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppEndpointPath { app_id: app_key, endpoint_id: endpoint_key }): Keys<AppEndpointPath>,
    query: Query,
) -> Result<axum::Json<EndpointStats>, ApiError> {
    let (app, endpoint) = load_endpoint(&ctx, &auth, &app_key, &endpoint_key).await?;
    let StatsRange { since, until } = query.params()?;
    let counts = ctx.store.endpoint_stats(&app.id, &endpoint.id, since, until).await?;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Ok(axum::Json(EndpointStats {
        success: n(counts.success),
        pending: n(counts.pending),
        sending: n(counts.sending),
        fail: n(counts.fail),
        canceled: n(counts.canceled),
    }))
}
