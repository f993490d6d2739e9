//! `/api/v1/app/{app_id}/endpoint`: create, list, get, upsert, patch and delete
//! endpoints (by id or `uid`), and their signing secret (get, rotate). The endpoint
//! types and their rules live in `endpoint_types`; custom headers in `headers`.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::TimeDelta;
use herald_core::{
    EndpointId,
    model::{Application, Endpoint, EndpointSecret},
};
use herald_store::{Order, StoreError};

use super::{created_or_ok, load_app};
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Query, check_key},
    pagination::{ListResponse, list_response, page_query},
};

pub use super::endpoint_types::*;

/// Most rotated secrets kept signing at once.
const MAX_OLD_SECRETS: usize = 10;

/// Loads an endpoint of an application the caller may access.
pub(crate) async fn load_endpoint(
    ctx: &Shared,
    auth: &Auth,
    app_key: &str,
    endpoint_key: &str,
) -> Result<(Application, Endpoint), ApiError> {
    let app = load_app(ctx, auth, app_key).await?;
    check_key("endpoint_id", endpoint_key)?;
    let endpoint = ctx.store.get_endpoint(&app.id, endpoint_key).await?;
    Ok((app, endpoint))
}

/// With the SSRF guard on, 422 for a URL whose host is a blocked address.
pub(crate) fn check_target(ctx: &Shared, url: &str) -> Result<(), ApiError> {
    match &ctx.ssrf_allow {
        Some(allow) => herald_core::net::check_url(url, allow)
            .map(|_| ())
            .map_err(|refusal| ApiError::invalid(&["body", "url"], refusal.to_string())),
        None => Ok(()),
    }
}

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

/// List Endpoints.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint", operation_id = "v1.endpoint.list", tag = "Endpoint",
    params(
        ("app_id" = String, Path, description = "The Application's ID or UID."),
        ("limit" = Option<u64>, Query, description = "Limit the number of returned items", minimum = 1, maximum = 250),
        ("iterator" = Option<String>, Query, description = "The iterator returned from a prior invocation"),
        ("order" = Option<crate::openapi::Ordering>, Query, description = "The sorting order of the returned items"),
    ),
    responses((status = 200, body = EndpointList)))]
pub(crate) async fn list(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(app_id): Keys<String>,
    query: Query,
) -> Result<axum::Json<ListResponse<EndpointOut>>, ApiError> {
    let app = load_app(&ctx, &auth, &app_id).await?;
    let page_query = page_query(&query, Order::Ascending, EndpointId::is_id)?;
    let page = ctx.store.list_endpoints(&app.id, &page_query).await?;
    Ok(axum::Json(list_response(page, &page_query, |e| e.id.as_str(), EndpointOut::from)))
}

/// Create Endpoint.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint", operation_id = "v1.endpoint.create", tag = "Endpoint",
    params(
        ("app_id" = String, Path, description = "The Application's ID or UID."),
        ("idempotency-key" = Option<String>, Header),
    ),
    request_body = EndpointIn,
    responses((status = 201, body = EndpointOut)))]
pub(crate) async fn create(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(app_id): Keys<String>,
    Json(input): Json<EndpointIn>,
) -> Result<(StatusCode, axum::Json<EndpointOut>), ApiError> {
    let app = load_app(&ctx, &auth, &app_id).await?;
    check_target(&ctx, &input.url)?;
    check_event_types_exist(&ctx, input.event_types.as_deref()).await?;
    let secret = input.initial_secret()?;
    let endpoint = input.into_endpoint(app.id, secret, ctx.now());
    let created = ctx.store.create_endpoint(endpoint).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Get Endpoint.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.get", tag = "Endpoint",
    params(
        ("app_id" = String, Path, description = "The Application's ID or UID."),
        ("endpoint_id" = String, Path, description = "The Endpoint's ID or UID."),
    ),
    responses((status = 200, body = EndpointOut)))]
pub(crate) async fn get(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys((app_id, endpoint_id)): Keys<(String, String)>,
) -> Result<axum::Json<EndpointOut>, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &app_id, &endpoint_id).await?;
    Ok(axum::Json(endpoint.into()))
}

/// Upsert Endpoint: replaces the endpoint the key names (keeping its secrets and
/// headers), or creates one whose `uid` is the key.
#[utoipa::path(put, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.upsert", tag = "Endpoint",
    params(
        ("app_id" = String, Path, description = "The Application's ID or UID."),
        ("endpoint_id" = String, Path, description = "The Endpoint's ID or UID."),
    ),
    request_body = EndpointUpsertIn,
    responses((status = 200, body = EndpointOut), (status = 201, body = EndpointOut)))]
pub(crate) async fn upsert(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys((app_id, endpoint_id)): Keys<(String, String)>,
    Json(input): Json<EndpointUpsertIn>,
) -> Result<Response, ApiError> {
    let app = load_app(&ctx, &auth, &app_id).await?;
    check_key("endpoint_id", &endpoint_id)?;
    check_target(&ctx, &input.url)?;
    check_event_types_exist(&ctx, input.event_types.as_deref()).await?;
    let existing = match ctx.store.get_endpoint(&app.id, &endpoint_id).await {
        Ok(endpoint) => Some(endpoint),
        Err(StoreError::NotFound(_)) if !EndpointId::is_id(&endpoint_id) => None,
        Err(err) => return Err(err.into()),
    };
    let now = ctx.now();
    let (saved, created) = match existing {
        Some(endpoint) => (ctx.store.update_endpoint(input.apply_to(endpoint, now)).await?, false),
        None => {
            let mut endpoint =
                EndpointIn::from(input).into_endpoint(app.id, EndpointSecret::generate(&mut rand::rng()), now);
            endpoint.uid = endpoint.uid.or(Some(endpoint_id));
            (ctx.store.create_endpoint(endpoint).await?, true)
        }
    };
    Ok((created_or_ok(created), axum::Json(EndpointOut::from(saved))).into_response())
}

/// Patch Endpoint.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", operation_id = "v1.endpoint.patch", tag = "Endpoint",
    params(
        ("app_id" = String, Path, description = "The Application's ID or UID."),
        ("endpoint_id" = String, Path, description = "The Endpoint's ID or UID."),
    ),
    request_body = EndpointPatch,
    responses((status = 200, body = EndpointOut)))]
pub(crate) async fn patch(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys((app_id, endpoint_id)): Keys<(String, String)>,
    Json(patch): Json<EndpointPatch>,
) -> Result<axum::Json<EndpointOut>, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &app_id, &endpoint_id).await?;
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
    params(
        ("app_id" = String, Path, description = "The Application's ID or UID."),
        ("endpoint_id" = String, Path, description = "The Endpoint's ID or UID."),
    ),
    responses((status = 204, description = "No content")))]
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys((app_id, endpoint_id)): Keys<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (app, endpoint) = load_endpoint(&ctx, &auth, &app_id, &endpoint_id).await?;
    ctx.store.delete_endpoint(&app.id, &endpoint.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get Endpoint Secret: the key currently used to sign.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", operation_id = "v1.endpoint.get-secret", tag = "Endpoint",
    params(
        ("app_id" = String, Path, description = "The Application's ID or UID."),
        ("endpoint_id" = String, Path, description = "The Endpoint's ID or UID."),
    ),
    responses((status = 200, body = EndpointSecretOut)))]
pub(crate) async fn get_secret(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys((app_id, endpoint_id)): Keys<(String, String)>,
) -> Result<axum::Json<EndpointSecretOut>, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &app_id, &endpoint_id).await?;
    Ok(axum::Json(EndpointSecretOut { key: current_key(&endpoint)? }))
}

/// The key an endpoint's requests are signed with now.
pub(crate) fn current_key(endpoint: &Endpoint) -> Result<String, ApiError> {
    let current = endpoint
        .current_secret()
        .ok_or_else(|| ApiError::Internal(format!("endpoint {} has no current secret", endpoint.id).into()))?;
    Ok(current.key.clone())
}

/// Rotate Endpoint Secret: the new key signs from now on; the old one keeps signing
/// alongside it for the grace period.
///
/// The contract documents 204, but the official SDKs (svix 2.9) parse the new secret
/// from the body, so Herald answers 200 with it; clients that expect 204 only check 2xx.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", operation_id = "v1.endpoint.rotate-secret", tag = "Endpoint",
    params(
        ("app_id" = String, Path, description = "The Application's ID or UID."),
        ("endpoint_id" = String, Path, description = "The Endpoint's ID or UID."),
        ("idempotency-key" = Option<String>, Header),
    ),
    request_body = EndpointSecretRotateIn,
    responses((status = 200, description = "The new current secret", body = EndpointSecretOut)))]
pub(crate) async fn rotate_secret(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys((app_id, endpoint_id)): Keys<(String, String)>,
    Json(input): Json<EndpointSecretRotateIn>,
) -> Result<axum::Json<EndpointSecretOut>, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &app_id, &endpoint_id).await?;
    let key = rotate_and_store(&ctx, endpoint, &input).await?;
    Ok(axum::Json(EndpointSecretOut { key }))
}

/// Gives `endpoint` the requested key (a generated one when none is given), keeps the
/// old ones for the grace period, stores it, and returns the new key.
pub(crate) async fn rotate_and_store(
    ctx: &Shared,
    mut endpoint: Endpoint,
    input: &EndpointSecretRotateIn,
) -> Result<String, ApiError> {
    let new = match &input.key {
        Some(key) => EndpointSecret::parse(key).map_err(|msg| ApiError::invalid(&["body", "key"], msg))?,
        None => EndpointSecret::generate(&mut rand::rng()),
    };
    let now = ctx.now();
    let grace = TimeDelta::seconds(i64::from(input.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS)));
    let key = new.key.clone();
    endpoint.secrets = rotate(std::mem::take(&mut endpoint.secrets), new, now, grace);
    endpoint.updated_at = now;
    ctx.store.update_endpoint(endpoint).await?;
    Ok(key)
}

/// The secrets after a rotation: `new` first, then the unexpired old ones (the one
/// current until now expiring after `grace`), newest first, at most ten. A key equal
/// to the new one is not kept twice.
pub(crate) fn rotate(
    secrets: Vec<EndpointSecret>,
    new: EndpointSecret,
    now: chrono::DateTime<chrono::Utc>,
    grace: TimeDelta,
) -> Vec<EndpointSecret> {
    let mut old: Vec<EndpointSecret> = secrets
        .into_iter()
        .map(|s| EndpointSecret { expires_at: Some(s.expires_at.unwrap_or(now + grace)), ..s })
        .filter(|s| s.expires_at.is_some_and(|at| at > now) && s.key != new.key)
        .collect();
    old.sort_by_key(|s| std::cmp::Reverse(s.expires_at));
    old.truncate(MAX_OLD_SECRETS);
    let mut out = Vec::with_capacity(old.len() + 1);
    out.push(EndpointSecret { expires_at: None, ..new });
    out.extend(old);
    out
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn rotation_keeps_old_secrets_for_the_grace_period_only() {
        let mut rng = StdRng::seed_from_u64(5);
        let now = Utc::now();
        let first = EndpointSecret::generate(&mut rng);
        let second = EndpointSecret::generate(&mut rng);
        let secrets = rotate(vec![first.clone()], second.clone(), now, TimeDelta::hours(1));
        assert_eq!(secrets[0], second);
        assert_eq!(secrets[1].key, first.key);
        assert_eq!(secrets[1].expires_at, Some(now + TimeDelta::hours(1)));

        // Two hours later the first has expired and is dropped; grace 0 drops at once.
        let later = now + TimeDelta::hours(2);
        let third = EndpointSecret::generate(&mut rng);
        let secrets = rotate(secrets, third.clone(), later, TimeDelta::zero());
        assert_eq!(secrets, vec![third]);
    }

    #[test]
    fn at_most_ten_old_secrets_are_kept() {
        let mut rng = StdRng::seed_from_u64(6);
        let now = Utc::now();
        let mut secrets = vec![EndpointSecret::generate(&mut rng)];
        for i in 0..15 {
            let t = now + TimeDelta::seconds(i);
            secrets = rotate(secrets, EndpointSecret::generate(&mut rng), t, TimeDelta::days(1));
        }
        assert_eq!(secrets.len(), 1 + MAX_OLD_SECRETS);
        assert_eq!(secrets.iter().filter(|s| s.expires_at.is_none()).count(), 1);
    }
}
