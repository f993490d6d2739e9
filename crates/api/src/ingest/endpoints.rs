//! `/ingest/api/v1/source/{source_id}/endpoint`: where a source's verified events are
//! forwarded. They are ordinary endpoints of the source's hidden application, so the
//! dispatcher delivers to them like to any other (signed, retried, logged); the
//! request and response types are the contract's `IngestEndpoint*`, checked by the
//! same rules as application endpoints, and each route runs the application endpoint
//! route's body (`routes::endpoints`) for the source's application.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use herald_core::{EndpointId, ValidationError, ingest::Source, model::Endpoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sources::load_source;
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Query, Validate},
    pagination::{ListResponse, Paging, Sorting},
    params::{SourceEndpointPath, SourcePath},
    routes::{
        created_or_ok,
        endpoints::{
            find_endpoint,
            handlers::{create_in, delete_in, list_in, upsert_in},
            headers::{self, EndpointHeadersIn, EndpointHeadersOut},
            secret::{EndpointSecretRotateIn, current_key, rotate_and_store},
            types::{EndpointIn, EndpointUpsertIn},
        },
    },
};

/// A new ingest endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestEndpointIn {
    #[schema(format = "uri", min_length = 1, max_length = 65536, example = "https://example.com/webhook/")]
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    #[schema(minimum = 1, format = "uint16")]
    pub throttle_rate: Option<u16>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// The secret Herald signs forwarded events with: `whsec_` and base64 of 24–64 bytes.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// The body of an ingest endpoint upsert.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestEndpointUpsertIn {
    #[schema(format = "uri", min_length = 1, max_length = 65536)]
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    #[schema(minimum = 1, format = "uint16")]
    pub throttle_rate: Option<u16>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// An ingest endpoint as returned (never with its secret or headers).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestEndpointOut {
    /// The Endpoint's ID.
    #[schema(value_type = String, example = "ep_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: EndpointId,
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub metadata: BTreeMap<String, String>,
}

crate::list_schema!(IngestEndpointList, ListResponse_IngestEndpointOut_, IngestEndpointOut);

/// The key forwarded events are signed with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestEndpointSecretOut {
    #[schema(example = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")]
    pub key: String,
}

/// A rotation: the new key (generated when absent) and how long the old one stays valid.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestEndpointSecretIn {
    #[serde(default)]
    pub key: Option<String>,
    /// How long the old secret will be valid for, in seconds (0 to 7 days).
    #[serde(default)]
    #[schema(format = "uint32", minimum = 0, maximum = 604800, default = 86400)]
    pub grace_period_seconds: Option<u32>,
}

/// Headers added to every request forwarded to the endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct IngestEndpointHeadersIn {
    pub headers: BTreeMap<String, String>,
}

/// An endpoint's custom headers, with the names that look sensitive listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestEndpointHeadersOut {
    pub headers: BTreeMap<String, String>,
    pub sensitive: Vec<String>,
}

impl From<IngestEndpointSecretIn> for EndpointSecretRotateIn {
    fn from(i: IngestEndpointSecretIn) -> Self {
        Self { key: i.key, grace_period_seconds: i.grace_period_seconds }
    }
}

impl Validate for IngestEndpointSecretIn {
    fn validate(&self) -> Result<(), ValidationError> {
        EndpointSecretRotateIn::from(self.clone()).validate()
    }
}

impl Validate for IngestEndpointHeadersIn {
    fn validate(&self) -> Result<(), ValidationError> {
        EndpointHeadersIn { headers: self.headers.clone() }.validate()
    }
}

impl From<Endpoint> for IngestEndpointOut {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            throttle_rate: e.throttle_rate,
            uid: e.uid,
            disabled: e.disabled,
            created_at: e.created_at,
            updated_at: e.updated_at,
            metadata: e.metadata,
        }
    }
}

impl From<IngestEndpointIn> for EndpointIn {
    fn from(i: IngestEndpointIn) -> Self {
        Self {
            url: i.url,
            description: i.description,
            throttle_rate: i.throttle_rate,
            uid: i.uid,
            disabled: i.disabled,
            event_types: None,
            channels: None,
            secret: i.secret,
            metadata: i.metadata,
            headers: i.headers,
        }
    }
}

impl From<IngestEndpointUpsertIn> for EndpointUpsertIn {
    fn from(i: IngestEndpointUpsertIn) -> Self {
        Self {
            url: i.url,
            description: i.description,
            throttle_rate: i.throttle_rate,
            uid: i.uid,
            disabled: i.disabled,
            event_types: None,
            channels: None,
            metadata: i.metadata,
        }
    }
}

impl Validate for IngestEndpointIn {
    fn validate(&self) -> Result<(), ValidationError> {
        EndpointIn::from(self.clone()).validate()
    }
}

impl Validate for IngestEndpointUpsertIn {
    fn validate(&self) -> Result<(), ValidationError> {
        EndpointUpsertIn::from(self.clone()).validate()
    }
}

/// The source `source_key` names and its endpoint `endpoint_key`.
async fn load(ctx: &Shared, auth: &Auth, source_key: &str, endpoint_key: &str) -> Result<(Source, Endpoint), ApiError> {
    let source = load_source(ctx, auth, source_key).await?;
    let endpoint = find_endpoint(ctx, &source.app_id, endpoint_key).await?;
    Ok((source, endpoint))
}

/// List Ingest Endpoints.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/endpoint", operation_id = "v1.ingest.endpoint.list", tag = "Ingest Endpoint",
    params(SourcePath, Paging, Sorting),
    responses((status = 200, body = IngestEndpointList)))]
pub(crate) async fn list(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<SourcePath>,
    query: Query,
) -> Result<axum::Json<ListResponse<IngestEndpointOut>>, ApiError> {
    let source = load_source(&ctx, &auth, &path.source_id).await?;
    Ok(axum::Json(list_in(&ctx, &source.app_id, &query, IngestEndpointOut::from).await?))
}

/// Create Ingest Endpoint.
#[utoipa::path(post, path = "/ingest/api/v1/source/{source_id}/endpoint", operation_id = "v1.ingest.endpoint.create", tag = "Ingest Endpoint",
    params(SourcePath, ("idempotency-key" = Option<String>, Header)),
    request_body = IngestEndpointIn,
    responses((status = 201, body = IngestEndpointOut)))]
pub(crate) async fn create(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<SourcePath>,
    Json(input): Json<IngestEndpointIn>,
) -> Result<(StatusCode, axum::Json<IngestEndpointOut>), ApiError> {
    let source = load_source(&ctx, &auth, &path.source_id).await?;
    let created = create_in(&ctx, source.app_id, input.into()).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Get Ingest Endpoint.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}", operation_id = "v1.ingest.endpoint.get", tag = "Ingest Endpoint",
    params(SourceEndpointPath),
    responses((status = 200, body = IngestEndpointOut)))]
pub(crate) async fn get(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<SourceEndpointPath>,
) -> Result<axum::Json<IngestEndpointOut>, ApiError> {
    let (_, endpoint) = load(&ctx, &auth, &path.source_id, &path.endpoint_id).await?;
    Ok(axum::Json(endpoint.into()))
}

/// Upsert Ingest Endpoint: replaces the endpoint the key names (keeping its secrets and
/// headers), or creates one whose `uid` is the key.
#[utoipa::path(put, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}", operation_id = "v1.ingest.endpoint.upsert", tag = "Ingest Endpoint",
    params(SourceEndpointPath),
    request_body = IngestEndpointUpsertIn,
    responses((status = 200, body = IngestEndpointOut), (status = 201, body = IngestEndpointOut)))]
pub(crate) async fn upsert(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<SourceEndpointPath>,
    Json(input): Json<IngestEndpointUpsertIn>,
) -> Result<Response, ApiError> {
    let source = load_source(&ctx, &auth, &path.source_id).await?;
    let (saved, created) = upsert_in(&ctx, source.app_id, path.endpoint_id, input.into()).await?;
    Ok((created_or_ok(created), axum::Json(IngestEndpointOut::from(saved))).into_response())
}

/// Delete Ingest Endpoint.
#[utoipa::path(delete, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}", operation_id = "v1.ingest.endpoint.delete", tag = "Ingest Endpoint",
    params(SourceEndpointPath),
    responses((status = 204, description = "No content")))]
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<SourceEndpointPath>,
) -> Result<StatusCode, ApiError> {
    let (source, endpoint) = load(&ctx, &auth, &path.source_id, &path.endpoint_id).await?;
    delete_in(&ctx, &source.app_id, &endpoint).await
}

/// Get Ingest Endpoint Secret: the key forwarded events are signed with.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/secret", operation_id = "v1.ingest.endpoint.get-secret", tag = "Ingest Endpoint",
    params(SourceEndpointPath),
    responses((status = 200, body = IngestEndpointSecretOut)))]
pub(crate) async fn get_secret(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<SourceEndpointPath>,
) -> Result<axum::Json<IngestEndpointSecretOut>, ApiError> {
    let (_, endpoint) = load(&ctx, &auth, &path.source_id, &path.endpoint_id).await?;
    Ok(axum::Json(IngestEndpointSecretOut { key: current_key(&endpoint)? }))
}

/// Rotate Ingest Endpoint Secret: the old key keeps signing for the grace period.
#[utoipa::path(post, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/secret/rotate", operation_id = "v1.ingest.endpoint.rotate-secret", tag = "Ingest Endpoint",
    params(SourceEndpointPath, ("idempotency-key" = Option<String>, Header)),
    request_body = IngestEndpointSecretIn,
    responses((status = 204, description = "No content")))]
pub(crate) async fn rotate_secret(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<SourceEndpointPath>,
    Json(input): Json<IngestEndpointSecretIn>,
) -> Result<StatusCode, ApiError> {
    let (_, endpoint) = load(&ctx, &auth, &path.source_id, &path.endpoint_id).await?;
    rotate_and_store(&ctx, endpoint, &input.into()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get Ingest Endpoint Headers.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/headers", operation_id = "v1.ingest.endpoint.get-headers", tag = "Ingest Endpoint",
    params(SourceEndpointPath),
    responses((status = 200, body = IngestEndpointHeadersOut)))]
pub(crate) async fn get_headers(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<SourceEndpointPath>,
) -> Result<axum::Json<IngestEndpointHeadersOut>, ApiError> {
    let (_, endpoint) = load(&ctx, &auth, &path.source_id, &path.endpoint_id).await?;
    let EndpointHeadersOut { headers, sensitive } = headers::out(endpoint.headers);
    Ok(axum::Json(IngestEndpointHeadersOut { headers, sensitive }))
}

/// Set Ingest Endpoint Headers: replaces them all.
#[utoipa::path(put, path = "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/headers", operation_id = "v1.ingest.endpoint.set-headers", tag = "Ingest Endpoint",
    params(SourceEndpointPath),
    request_body = IngestEndpointHeadersIn,
    responses((status = 204, description = "No content")))]
pub(crate) async fn set_headers(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<SourceEndpointPath>,
    Json(input): Json<IngestEndpointHeadersIn>,
) -> Result<StatusCode, ApiError> {
    let (_, endpoint) = load(&ctx, &auth, &path.source_id, &path.endpoint_id).await?;
    headers::replace(&ctx, endpoint, input.headers).await
}
