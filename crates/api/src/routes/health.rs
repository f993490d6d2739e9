//! `GET /api/v1/health`: 204 while the store answers, 503 when it does not. No token.

use axum::{extract::State, http::StatusCode};

use crate::{Shared, error::ApiError};

/// Health.
#[utoipa::path(get, path = "/api/v1/health", operation_id = "v1.health.get", tag = "Health",
    responses((status = 204, description = "No content")))]
pub(crate) async fn get(State(ctx): State<Shared>) -> Result<StatusCode, ApiError> {
    ctx.store.ping().await?;
    Ok(StatusCode::NO_CONTENT)
}
