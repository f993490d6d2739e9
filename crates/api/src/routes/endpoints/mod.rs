//! Endpoints: where an application's messages are delivered. `types` holds the request
//! and response types and their field rules, `handlers` the CRUD routes under
//! `/api/v1/app/{app_id}/endpoint`, `secret` the signing secret (get, rotate) and
//! `headers` the custom headers added to every request.
//!
//! An ingest source's endpoints are endpoints of its hidden application: the ingest
//! routes resolve the source, then call the same bodies (`handlers::create_in` …) with
//! that application's id. This module holds what both need to find an endpoint.

use herald_core::{
    AppId,
    model::{Application, Endpoint},
};

use super::load_app;
use crate::{Shared, auth::Auth, error::ApiError, extract::check_key};

pub mod handlers;
pub mod headers;
pub mod secret;
pub mod types;

/// Loads an endpoint of an application the caller may access.
///
/// # Errors
/// As [`load_app`], then 422 for a malformed endpoint key and 404 when it is absent.
pub(crate) async fn load_endpoint(
    ctx: &Shared,
    auth: &Auth,
    app_key: &str,
    endpoint_key: &str,
) -> Result<(Application, Endpoint), ApiError> {
    let app = load_app(ctx, auth, app_key).await?;
    let endpoint = find_endpoint(ctx, &app.id, endpoint_key).await?;
    Ok((app, endpoint))
}

/// The endpoint `key` (id or `uid`) names in application `app_id`.
///
/// # Errors
/// 422 for a malformed key, 404 when there is no such endpoint.
pub(crate) async fn find_endpoint(ctx: &Shared, app_id: &AppId, key: &str) -> Result<Endpoint, ApiError> {
    check_key("endpoint_id", key)?;
    Ok(ctx.store.get_endpoint(app_id, key).await?)
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
