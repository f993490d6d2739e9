//! `/api/v1/app/{app_id}/endpoint`: create, list, get, upsert, patch and delete
//! endpoints (by id or `uid`).
//!
//! Each route's body past resolving the application is a function of the application's
//! id (`list_in`, `create_in`, `upsert_in`, `delete_in`), so the ingest endpoint routes
//! run the same steps for a source's hidden application.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use herald_core::{
    AppId, EndpointId,
    model::{Endpoint, EndpointSecret},
};
use herald_store::{Order, StoreError};

use super::{
    check_target, load_endpoint,
    types::{EndpointIn, EndpointList, EndpointOut, EndpointPatch, EndpointUpsertIn},
};
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Query, check_key},
    pagination::{ListResponse, Paging, Sorting, list_response, page_query},
    params::{AppEndpointPath, AppPath},
    routes::{created_or_ok, load_app},
};

/// 422 unless every named event type exists (archived ones included), as Svix does.
async fn check_event_types_exist(ctx: &Shared, types: Option<&[String]>) -> Result<(), ApiError> {
    let mut missing = Vec::new();
    for name in types.unwrap_or_default() {
        match ctx.store.get_event_type(name).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => missing.push(name.as_str()),
            Err(err) => return Err(err.into()),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&["body", "eventTypes"], format!("event types do not exist: {}", missing.join(", "))))
    }
}

/// One page of application `app_id`'s endpoints, each converted with `out`.
///
/// # Errors
/// 422 for bad paging parameters; store failures.
pub(crate) async fn list_in<T>(
    ctx: &Shared,
    app_id: &AppId,
    query: &Query,
    out: impl FnMut(Endpoint) -> T,
) -> Result<ListResponse<T>, ApiError> {
    let page_query = page_query(query, Order::Ascending, EndpointId::is_id)?;
    let page = ctx.store.list_endpoints(app_id, &page_query).await?;
    Ok(list_response(page, &page_query, |e| e.id.as_str(), out))
}

/// Creates `input` as an endpoint of application `app_id`.
///
/// # Errors
/// 422 for a blocked URL, unknown event types or a malformed secret; store failures.
pub(crate) async fn create_in(ctx: &Shared, app_id: AppId, input: EndpointIn) -> Result<Endpoint, ApiError> {
    check_target(ctx, &input.url)?;
    check_event_types_exist(ctx, input.event_types.as_deref()).await?;
    let secret = input.initial_secret()?;
    let endpoint = input.into_endpoint(app_id, secret, ctx.now());
    Ok(ctx.store.create_endpoint(endpoint).await?)
}

/// Replaces the endpoint of application `app_id` that `key` names (keeping its secrets
/// and headers), or creates one whose `uid` is the key. Says whether it created one.
///
/// # Errors
/// 422 for a malformed key, a blocked URL or unknown event types; 404 for an id that
/// names no endpoint; store failures.
pub(crate) async fn upsert_in(
    ctx: &Shared,
    app_id: AppId,
    key: String,
    input: EndpointUpsertIn,
) -> Result<(Endpoint, bool), ApiError> {
    check_key("endpoint_id", &key)?;
    check_target(ctx, &input.url)?;
    check_event_types_exist(ctx, input.event_types.as_deref()).await?;
    let existing = match ctx.store.get_endpoint(&app_id, &key).await {
        Ok(endpoint) => Some(endpoint),
        Err(StoreError::NotFound(_)) if !EndpointId::is_id(&key) => None,
        Err(err) => return Err(err.into()),
    };
    let now = ctx.now();
    Ok(match existing {
        Some(endpoint) => (ctx.store.update_endpoint(input.apply_to(endpoint, now)).await?, false),
        None => {
            let secret = EndpointSecret::generate(&mut rand::rng());
            let mut endpoint = EndpointIn::from(input).into_endpoint(app_id, secret, now);
            endpoint.uid = endpoint.uid.or(Some(key));
            (ctx.store.create_endpoint(endpoint).await?, true)
        }
    })
}

/// Deletes `endpoint` of application `app_id`: 204.
///
/// # Errors
/// Store failures.
pub(crate) async fn delete_in(ctx: &Shared, app_id: &AppId, endpoint: &Endpoint) -> Result<StatusCode, ApiError> {
    ctx.store.delete_endpoint(app_id, &endpoint.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List Endpoints.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint", operation_id = "v1.endpoint.list", tag = "Endpoint",
    params(AppPath, Paging, Sorting),
    responses((status = 200, body = EndpointList)))]
pub(crate) async fn list(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppPath>,
    query: Query,
) -> Result<axum::Json<ListResponse<EndpointOut>>, ApiError> {
    let app = load_app(&ctx, &auth, &path.app_id).await?;
    Ok(axum::Json(list_in(&ctx, &app.id, &query, EndpointOut::from).await?))
}

/// Create Endpoint.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint", operation_id = "v1.endpoint.create", tag = "Endpoint",
    params(AppPath, ("idempotency-key" = Option<String>, Header)),
    request_body = EndpointIn,
    responses((status = 201, body = EndpointOut)))]
pub(crate) async fn create(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppPath>,
    Json(input): Json<EndpointIn>,
) -> Result<(StatusCode, axum::Json<EndpointOut>), ApiError> {
    let app = load_app(&ctx, &auth, &path.app_id).await?;
    let created = create_in(&ctx, app.id, input).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Get Endpoint.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.get", tag = "Endpoint",
    params(AppEndpointPath),
    responses((status = 200, body = EndpointOut)))]
pub(crate) async fn get(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppEndpointPath>,
) -> Result<axum::Json<EndpointOut>, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &path.app_id, &path.endpoint_id).await?;
    Ok(axum::Json(endpoint.into()))
}

/// Upsert Endpoint: replaces the endpoint the key names (keeping its secrets and
/// headers), or creates one whose `uid` is the key.
#[utoipa::path(put, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.upsert", tag = "Endpoint",
    params(AppEndpointPath),
    request_body = EndpointUpsertIn,
    responses((status = 200, body = EndpointOut), (status = 201, body = EndpointOut)))]
pub(crate) async fn upsert(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppEndpointPath>,
    Json(input): Json<EndpointUpsertIn>,
) -> Result<Response, ApiError> {
    let app = load_app(&ctx, &auth, &path.app_id).await?;
    let (saved, created) = upsert_in(&ctx, app.id, path.endpoint_id, input).await?;
    Ok((created_or_ok(created), axum::Json(EndpointOut::from(saved))).into_response())
}

/// Patch Endpoint.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.patch", tag = "Endpoint",
    params(AppEndpointPath),
    request_body = EndpointPatch,
    responses((status = 200, body = EndpointOut)))]
pub(crate) async fn patch(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppEndpointPath>,
    Json(patch): Json<EndpointPatch>,
) -> Result<axum::Json<EndpointOut>, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &path.app_id, &path.endpoint_id).await?;
    if let Some(url) = &patch.url {
        check_target(&ctx, url)?;
    }
    if let Some(Some(types)) = &patch.event_types {
        check_event_types_exist(&ctx, Some(types)).await?;
    }
    let updated = patch.apply_to(endpoint, ctx.now());
    Ok(axum::Json(ctx.store.update_endpoint(updated).await?.into()))
}

/// Delete Endpoint.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.delete", tag = "Endpoint",
    params(AppEndpointPath),
    responses((status = 204, description = "No content")))]
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppEndpointPath>,
) -> Result<StatusCode, ApiError> {
    let (app, endpoint) = load_endpoint(&ctx, &auth, &path.app_id, &path.endpoint_id).await?;
    delete_in(&ctx, &app.id, &endpoint).await
}
