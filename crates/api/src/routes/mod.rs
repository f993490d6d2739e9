//! The route table of the management API, one module per resource (ingest has its own,
//! in `crate::ingest`), and what handlers share: resolving the application in the path
//! under the caller's scope, and patch-field decoding.

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{delete, get, post},
};
use herald_core::{AppId, model::Application};
use herald_store::StoreError;
use serde::{Deserialize, Deserializer};

use crate::{Shared, auth::Auth, error::ApiError, extract::check_key};

pub mod applications;
pub mod attempts;
pub mod endpoints;
pub mod event_types;
pub mod events;
pub mod health;
pub mod live;
pub mod messages;
pub mod recovery;
pub mod retry_schedules;
pub mod stream;

/// Routes that need no token: health and the live page (which reads its token from the
/// URL fragment, never sent to the server).
pub(crate) fn public() -> Router<Shared> {
    Router::new().route("/api/v1/health", get(health::get)).route("/app/{app_id}/live", get(live::page))
}

/// Authenticated management routes whose POSTs use the generic idempotency path.
pub(crate) fn management() -> Router<Shared> {
    use applications as apps;
    use endpoints::{handlers as eps, headers, secret};
    use event_types as ets;
    Router::new()
        .route("/api/v1/app", get(apps::list).post(apps::create))
        .route("/api/v1/app/{app_id}", get(apps::get).put(apps::upsert).patch(apps::patch).delete(apps::delete))
        .route("/api/v1/event-type", get(ets::list).post(ets::create))
        .route(
            "/api/v1/event-type/{event_type_name}",
            get(ets::get).put(ets::upsert).patch(ets::patch).delete(ets::delete),
        )
        .route(
            "/api/v1/event-type/{event_type_name}/retry-schedule",
            get(retry_schedules::get).put(retry_schedules::set),
        )
        .route("/api/v1/app/{app_id}/endpoint", get(eps::list).post(eps::create))
        .route(
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
            get(eps::get).put(eps::upsert).patch(eps::patch).delete(eps::delete),
        )
        .route("/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", get(secret::get_secret))
        .route("/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", post(secret::rotate_secret))
        .route(
            "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
            get(headers::get).put(headers::put).patch(headers::patch),
        )
        .merge(attempt_routes())
        .merge(pull_routes())
}

/// The pull side: the events API, pollers and the live stream.
fn pull_routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/app/{app_id}/events", get(events::list))
        .route("/api/v1/app/{app_id}/events/stream", get(stream::stream))
        .route("/api/v1/app/{app_id}/poller/{sink_id}", get(events::poll))
        .route("/api/v1/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}", get(events::consumer_poll))
        .route("/api/v1/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}/seek", post(events::consumer_seek))
}

/// The attempt log and manual control (resend, recover, replay).
fn attempt_routes() -> Router<Shared> {
    use attempts as at;
    use recovery as rc;
    Router::new()
        .route("/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", get(at::list_by_endpoint))
        .route("/api/v1/app/{app_id}/attempt/msg/{msg_id}", get(at::list_by_msg))
        .route("/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", get(at::get_one))
        .route("/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content", delete(at::expunge_attempt))
        .route("/api/v1/app/{app_id}/msg/{msg_id}/content", delete(at::expunge_message))
        .route("/api/v1/app/{app_id}/msg/{msg_id}/endpoint", get(at::attempted_destinations))
        .route("/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg", get(at::attempted_messages))
        .route("/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats", get(at::stats))
        .route("/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", post(rc::resend))
        .route("/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover", post(rc::recover))
        .route("/api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing", post(rc::replay_missing))
        .route("/api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay", post(rc::bulk_replay))
}

/// Fallback for paths no route matches.
pub(crate) async fn not_found(State(_): State<Shared>) -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

/// Fallback for a known path with the wrong method.
pub(crate) async fn method_not_allowed(State(_): State<Shared>) -> ApiError {
    ApiError::MethodNotAllowed
}

/// Loads the application named by a path key (id or uid) that `auth` may access.
///
/// A scoped token learns nothing about other applications: it gets 403 whether or not
/// they exist.
///
/// # Errors
/// 422 for a malformed key, 403 outside the token's scope, 404 when absent.
pub(crate) async fn load_app(ctx: &Shared, auth: &Auth, key: &str) -> Result<Application, ApiError> {
    check_key("app_id", key)?;
    if let Some(own) = &auth.app_id
        && AppId::is_id(key)
        && own.as_str() != key
    {
        return Err(ApiError::Forbidden("this token may not access this application"));
    }
    match ctx.store.get_application(key).await {
        Ok(app) => {
            auth.check_app(&app.id)?;
            Ok(app)
        }
        Err(StoreError::NotFound(_)) if auth.app_id.is_some() => {
            Err(ApiError::Forbidden("this token may not access this application"))
        }
        Err(err) => Err(err.into()),
    }
}

/// Decodes a patch field so that absent stays `None` and `null` becomes `Some(None)`.
pub(crate) fn patch_field<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `201 Created` or `200 OK` for an upsert.
pub(crate) fn created_or_ok(created: bool) -> StatusCode {
    if created { StatusCode::CREATED } else { StatusCode::OK }
}
