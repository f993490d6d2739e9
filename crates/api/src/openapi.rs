//! stub
use crate::Shared;
use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

/// Defines the ordering in a listing of results.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    Ascending,
    Descending,
}

pub(crate) async fn serve(State(_): State<Shared>) -> Json<serde_json::Value> {
    Json(serde_json::json!({}))
}
