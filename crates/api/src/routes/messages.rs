//! stub
use crate::{Shared, error::ApiError};
use axum::{Router, extract::State, routing::get};
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v1/app/{app_id}/msg", get(list).post(list))
        .route("/api/v1/app/{app_id}/msg/{msg_id}", get(list))
}
pub(crate) async fn list(State(_): State<Shared>) -> ApiError {
    ApiError::MethodNotAllowed
}
