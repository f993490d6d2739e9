//! Manual control: resend one message to one endpoint, recover an endpoint's failed
//! messages, replay the messages an endpoint never got, and bulk replay by filter.
//!
//! None of these sends anything: each commits delivery rows (pending, due now, with a
//! manual trigger) and wakes the dispatcher, which sends them through the same queue,
//! guarded client and retry schedule as every other delivery. The work is done by the
//! time the 202 leaves, so the task reported is already `finished`.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use herald_core::{
    TaskId, ValidationError,
    model::DeliveryStatus,
    validate::{self, Checker},
};
use herald_store::RequeueFilter;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    attempts::{MessageStatus, StatusCodeClass, code_class},
    endpoints::load_endpoint,
};
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Validate, check_key},
    params::{AppEndpointPath, MsgEndpointPath},
};

/// An empty JSON object.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmptyResponse {}

/// The state of a background task.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackgroundTaskStatus {
    Running,
    Finished,
    Failed,
}

/// The kind of a background task.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum BackgroundTaskType {
    #[serde(rename = "endpoint.replay")]
    EndpointReplay,
    #[serde(rename = "endpoint.recover")]
    EndpointRecover,
    #[serde(rename = "application.stats")]
    ApplicationStats,
    #[serde(rename = "message.broadcast")]
    MessageBroadcast,
    #[serde(rename = "sdk.generate")]
    SdkGenerate,
    #[serde(rename = "event-type.aggregate")]
    EventTypeAggregate,
    #[serde(rename = "application.purge_content")]
    ApplicationPurgeContent,
    #[serde(rename = "endpoint.bulk-replay")]
    EndpointBulkReplay,
}

/// Which failed messages to send again: those created since `since` (until `until`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecoverIn {
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

/// Which missing messages to send: those created since `since` (until `until`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReplayIn {
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

/// Which of an endpoint's messages to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkReplayIn {
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    /// Only messages whose delivery is in this state.
    #[serde(default)]
    #[schema(value_type = Option<MessageStatus>)]
    pub status: Option<i64>,
    /// Only messages whose last attempt's status code is in this class.
    #[serde(default)]
    #[schema(value_type = Option<StatusCodeClass>)]
    pub status_code_class: Option<u64>,
}

/// The recover task.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOut {
    /// The QueueBackgroundTask's ID.
    #[schema(value_type = String, example = "qtask_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: TaskId,
    pub status: BackgroundTaskStatus,
    pub task: BackgroundTaskType,
    pub updated_at: DateTime<Utc>,
}

/// The replay task.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayOut {
    /// The QueueBackgroundTask's ID.
    #[schema(value_type = String, example = "qtask_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: TaskId,
    pub status: BackgroundTaskStatus,
    pub task: BackgroundTaskType,
    pub updated_at: DateTime<Utc>,
}

fn check_window(check: &mut Checker, since: DateTime<Utc>, until: Option<DateTime<Utc>>) {
    check.check(until.is_none_or(|u| u > since), &["body", "until"], "until must be after since");
}

impl Validate for RecoverIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check_window(&mut check, self.since, self.until);
        check.finish()
    }
}

impl Validate for ReplayIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check_window(&mut check, self.since, self.until);
        check.finish()
    }
}

impl Validate for BulkReplayIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check_window(&mut check, self.since, self.until);
        if let Some(types) = &self.event_types {
            check.rule(&["body", "eventTypes"], validate::unique_list(types, usize::MAX, validate::name));
        }
        if let Some(channel) = &self.channel {
            check.rule(&["body", "channel"], validate::channel(channel));
        }
        if let Some(tag) = &self.tag {
            check.rule(&["body", "tag"], validate::tag(tag));
        }
        if let Some(status) = self.status {
            check.check(DeliveryStatus::from_code(status).is_some(), &["body", "status"], "must be 0 to 4");
        }
        if let Some(class) = self.status_code_class {
            check.check(code_class(Some(class), &[]).is_ok(), &["body", "statusCodeClass"], "must be 0, 100 … 500");
        }
        check.finish()
    }
}

fn task_id(now: DateTime<Utc>) -> TaskId {
    TaskId::generate(now, &mut rand::rng())
}

/// Resend a message to an endpoint.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
    operation_id = "v1.message-attempt.resend", tag = "Message Attempt",
    params(MsgEndpointPath, ("idempotency-key" = Option<String>, Header)),
    responses((status = 202, body = EmptyResponse)))]
pub(crate) async fn resend(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(MsgEndpointPath { app_id: app_key, msg_id: msg_key, endpoint_id: endpoint_key }): Keys<MsgEndpointPath>,
) -> Result<(StatusCode, axum::Json<EmptyResponse>), ApiError> {
    let (app, endpoint) = load_endpoint(&ctx, &auth, &app_key, &endpoint_key).await?;
    check_key("msg_id", &msg_key)?;
    let message = ctx.store.get_message(&app.id, &msg_key).await?;
    ctx.store.resend_message(&app.id, &message.id, &endpoint.id, ctx.now()).await?;
    tracing::info!(msg.id = %message.id, endpoint.id = %endpoint.id, "message queued for resending");
    Ok((StatusCode::ACCEPTED, axum::Json(EmptyResponse {})))
}

/// Recover failed messages: those created since `since` whose delivery to this
/// endpoint failed are sent again.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
    operation_id = "v1.endpoint.recover", tag = "Endpoint",
    params(AppEndpointPath, ("idempotency-key" = Option<String>, Header)),
    request_body = RecoverIn,
    responses((status = 202, body = RecoverOut)))]
pub(crate) async fn recover(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppEndpointPath { app_id: app_key, endpoint_id: endpoint_key }): Keys<AppEndpointPath>,
    Json(input): Json<RecoverIn>,
) -> Result<(StatusCode, axum::Json<RecoverOut>), ApiError> {
    let (app, endpoint) = load_endpoint(&ctx, &auth, &app_key, &endpoint_key).await?;
    let now = ctx.now();
    let filter =
        RequeueFilter { status: Some(DeliveryStatus::Fail), ..RequeueFilter::window(input.since, input.until) };
    let queued = ctx.store.requeue_deliveries(&app.id, &endpoint.id, &filter, now).await?;
    tracing::info!(endpoint.id = %endpoint.id, deliveries.count = queued, "failed deliveries queued again");
    let out = RecoverOut {
        id: task_id(now),
        status: BackgroundTaskStatus::Finished,
        task: BackgroundTaskType::EndpointRecover,
        updated_at: now,
    };
    Ok((StatusCode::ACCEPTED, axum::Json(out)))
}

/// Replay missing webhooks: messages created since `since` that this endpoint's
/// filters accept and that were never queued for it are sent now.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing",
    operation_id = "v1.endpoint.replay-missing", tag = "Endpoint",
    params(AppEndpointPath, ("idempotency-key" = Option<String>, Header)),
    request_body = ReplayIn,
    responses((status = 202, body = ReplayOut)))]
pub(crate) async fn replay_missing(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppEndpointPath { app_id: app_key, endpoint_id: endpoint_key }): Keys<AppEndpointPath>,
    Json(input): Json<ReplayIn>,
) -> Result<(StatusCode, axum::Json<ReplayOut>), ApiError> {
    let (app, endpoint) = load_endpoint(&ctx, &auth, &app_key, &endpoint_key).await?;
    let now = ctx.now();
    let queued = ctx.store.replay_missing(&app.id, &endpoint.id, input.since, input.until, now).await?;
    tracing::info!(endpoint.id = %endpoint.id, deliveries.count = queued, "missing messages queued");
    Ok((StatusCode::ACCEPTED, axum::Json(replay_out(now, BackgroundTaskType::EndpointReplay))))
}

fn replay_out(now: DateTime<Utc>, task: BackgroundTaskType) -> ReplayOut {
    ReplayOut { id: task_id(now), status: BackgroundTaskStatus::Finished, task, updated_at: now }
}

/// Bulk replay: the endpoint's messages created since `since` that match the filters
/// are sent again (those being sent right now are left to finish).
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay",
    operation_id = "v1.endpoint.bulk-replay", tag = "Endpoint",
    params(AppEndpointPath, ("idempotency-key" = Option<String>, Header)),
    request_body = BulkReplayIn,
    responses((status = 202, body = ReplayOut)))]
pub(crate) async fn bulk_replay(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppEndpointPath { app_id: app_key, endpoint_id: endpoint_key }): Keys<AppEndpointPath>,
    Json(input): Json<BulkReplayIn>,
) -> Result<(StatusCode, axum::Json<ReplayOut>), ApiError> {
    let (app, endpoint) = load_endpoint(&ctx, &auth, &app_key, &endpoint_key).await?;
    let now = ctx.now();
    let filter = RequeueFilter {
        since: input.since,
        until: input.until,
        event_types: input.event_types,
        channel: input.channel,
        tag: input.tag,
        status: input.status.and_then(DeliveryStatus::from_code),
        status_code_class: input.status_code_class.and_then(|c| u16::try_from(c).ok()),
    };
    let queued = ctx.store.requeue_deliveries(&app.id, &endpoint.id, &filter, now).await?;
    tracing::info!(endpoint.id = %endpoint.id, deliveries.count = queued, "deliveries queued for bulk replay");
    Ok((StatusCode::ACCEPTED, axum::Json(replay_out(now, BackgroundTaskType::EndpointBulkReplay))))
}
