//! `/ingest/api/v1/source`: create, list, get, upsert, patch and delete ingest sources
//! (by id or `uid`), rotate the token in a source's URL, and read its request log.
//!
//! A source's URL token is random (192 bits), stored only as its hash and shown only
//! when it is made (create, or an upsert that creates, and `token/rotate`); elsewhere
//! `ingestUrl` is `null`. Each source owns a hidden application that holds its ingest
//! endpoints (see `endpoints`); what a POST to the URL does is `receive`'s.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use herald_core::{
    AppId, IngestLogId, SourceId, ValidationError,
    ingest::{IngestLog, Source},
    model::Application,
    validate::Checker,
};
use herald_store::{Order, StoreError, TokenHash, TokenRotation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::source_types;
use crate::{
    Shared,
    auth::{Auth, hash_token},
    error::ApiError,
    extract::{Json, Keys, Query, Validate, check_key},
    pagination::{ListResponse, Paging, Sorting, list_response, page_query},
    params::SourcePath,
    routes::{created_or_ok, patch_field},
};

/// How long the URL in use before a rotation keeps working, as Svix documents.
const OLD_TOKEN_GRACE: TimeDelta = TimeDelta::hours(48);
/// How long a replaced provider secret is still accepted, as for endpoint secrets.
const OLD_SECRET_GRACE: TimeDelta = TimeDelta::hours(24);

/// The type-specific settings of a source: the provider's signing secret.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SourceConfigIn {
    #[serde(default)]
    pub secret: Option<String>,
}

/// A new ingest source, or the full replacement of one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestSourceIn {
    #[schema(min_length = 2, max_length = 256)]
    pub name: String,
    /// The Source's UID.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 60, pattern = r"^(?!src_)[a-zA-Z0-9_-]+$")]
    pub uid: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// `generic-webhook` (no verification), `svix`, `stripe`, `github`, `shopify` or `slack`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Required for every type but `generic-webhook`: `{"secret": "…"}`.
    #[serde(default)]
    pub config: Option<SourceConfigIn>,
}

/// Changes to some fields of a source; `null` clears the uid.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestSourcePatch {
    #[serde(default)]
    #[schema(min_length = 2, max_length = 256)]
    pub name: Option<String>,
    /// The Source's UID.
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 60)]
    pub uid: Option<Option<String>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A source's type-specific settings as returned: empty, secrets are never shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceConfigOut {}

/// A source as returned.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestSourceOut {
    /// The Source's ID.
    #[schema(value_type = String, example = "src_2yZwUhtgs5Ai8T9yRQJXA")]
    pub id: SourceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub name: String,
    /// The URL providers post to; only present when its token was just made.
    #[schema(format = "uri")]
    pub ingest_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub metadata: BTreeMap<String, String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<SourceConfigOut>,
}

crate::list_schema!(IngestSourceList, ListResponse_IngestSourceOut_, IngestSourceOut);

/// The new URL after a token rotation.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateTokenOut {
    pub ingest_url: String,
}

/// One request to a source's URL and what became of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestLogOut {
    /// The log entry's ID.
    #[schema(value_type = String)]
    pub id: IngestLogId,
    /// The Source's ID.
    #[schema(value_type = String)]
    pub source_id: SourceId,
    /// The status Herald answered with.
    #[schema(format = "int16")]
    pub status_code: u16,
    /// Why the request was rejected, or which message it became.
    pub error_text: String,
    /// Not kept: request headers may carry credentials.
    pub headers: BTreeMap<String, String>,
    /// Not kept: unverified bodies are not stored.
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

crate::list_schema!(IngestLogList, ListResponse_IngestLogOut_, IngestLogOut);

impl From<IngestLog> for IngestLogOut {
    fn from(e: IngestLog) -> Self {
        Self {
            id: e.id,
            source_id: e.source_id,
            status_code: e.status_code,
            error_text: e.error_text,
            headers: BTreeMap::new(),
            payload: String::new(),
            created_at: e.created_at,
            updated_at: e.created_at,
        }
    }
}

fn check_source_uid(check: &mut Checker, uid: &str) {
    let ok = !uid.is_empty()
        && uid.len() <= 60
        && !uid.starts_with(SourceId::PREFIX)
        && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    check.check(ok, &["body", "uid"], "uid must be 1 to 60 of [a-zA-Z0-9_-] and not start with `src_`");
}

fn check_name(check: &mut Checker, name: &str) {
    let len = name.chars().count();
    check.check((2..=256).contains(&len), &["body", "name"], "name must be 2 to 256 characters");
}

impl Validate for IngestSourceIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check_name(&mut check, &self.name);
        if let Some(uid) = &self.uid {
            check_source_uid(&mut check, uid);
        }
        match source_types::find(&self.kind) {
            None => check.check(
                false,
                &["body", "type"],
                format!("unsupported source type; supported: {}", source_types::names().join(", ")),
            ),
            Some(t) if t.verifies() => {
                let secret = self.config.as_ref().and_then(|c| c.secret.as_deref());
                match secret {
                    None => check.check(false, &["body", "config", "secret"], "this source type needs a secret"),
                    Some(secret) => check.rule(&["body", "config", "secret"], t.check_secret(secret)),
                }
            }
            Some(_) => {}
        }
        check.finish()
    }
}

impl Validate for IngestSourcePatch {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        if let Some(name) = &self.name {
            check_name(&mut check, name);
        }
        if let Some(Some(uid)) = &self.uid {
            check_source_uid(&mut check, uid);
        }
        check.finish()
    }
}

/// The plain text of a fresh URL token: 24 random bytes, URL-safe base64.
fn new_token() -> String {
    let mut raw = [0u8; 24];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn ingest_url(ctx: &Shared, token: &str) -> String {
    format!("{}/ingest/{token}", ctx.config.public_url.trim_end_matches('/'))
}

fn source_out(s: Source, ingest_url: Option<String>) -> IngestSourceOut {
    let config = (s.kind != "generic-webhook").then_some(SourceConfigOut {});
    IngestSourceOut {
        id: s.id,
        uid: s.uid,
        name: s.name,
        ingest_url,
        created_at: s.created_at,
        updated_at: s.updated_at,
        metadata: s.metadata,
        kind: s.kind,
        config,
    }
}

/// Loads a source for a server-wide token.
///
/// # Errors
/// 403 for an application-scoped token, 422 for a malformed key, 404 when absent.
pub(crate) async fn load_source(ctx: &Shared, auth: &Auth, key: &str) -> Result<Source, ApiError> {
    auth.require_admin()?;
    check_key("source_id", key)?;
    Ok(ctx.store.get_source(key).await?)
}

/// Creates a source (and its hidden application) with a fresh token; returns it with its URL.
async fn create_source(ctx: &Shared, input: IngestSourceIn, uid: Option<String>) -> Result<IngestSourceOut, ApiError> {
    let now = ctx.now();
    let app_id = AppId::generate(now, &mut rand::rng());
    let id = SourceId::generate(now, &mut rand::rng());
    let app = Application {
        id: app_id.clone(),
        uid: None,
        name: format!("ingest source {id}"),
        throttle_rate: None,
        metadata: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    };
    let source = Source {
        id,
        uid,
        name: input.name,
        kind: input.kind,
        secret: input.config.and_then(|c| c.secret),
        previous_secret: None,
        app_id,
        metadata: input.metadata,
        created_at: now,
        updated_at: now,
    };
    let token = new_token();
    let created = ctx.store.create_source(source, app, TokenHash(hash_token(&token))).await?;
    Ok(source_out(created, Some(ingest_url(ctx, &token))))
}

/// List Ingest Sources.
#[utoipa::path(get, path = "/ingest/api/v1/source", operation_id = "v1.ingest.source.list", tag = "Ingest Source",
    params(Paging, Sorting),
    responses((status = 200, body = IngestSourceList)))]
pub(crate) async fn list(
    State(ctx): State<Shared>,
    auth: Auth,
    query: Query,
) -> Result<axum::Json<ListResponse<IngestSourceOut>>, ApiError> {
    auth.require_admin()?;
    let page_query = page_query(&query, Order::Ascending, SourceId::is_id)?;
    let page = ctx.store.list_sources(&page_query).await?;
    Ok(axum::Json(list_response(page, &page_query, |s| s.id.as_str(), |s| source_out(s, None))))
}

/// Create Ingest Source: answers with the `ingestUrl`, shown only now.
#[utoipa::path(post, path = "/ingest/api/v1/source", operation_id = "v1.ingest.source.create", tag = "Ingest Source",
    params(("idempotency-key" = Option<String>, Header)),
    request_body = IngestSourceIn,
    responses((status = 201, body = IngestSourceOut)))]
pub(crate) async fn create(
    State(ctx): State<Shared>,
    auth: Auth,
    Json(input): Json<IngestSourceIn>,
) -> Result<(StatusCode, axum::Json<IngestSourceOut>), ApiError> {
    auth.require_admin()?;
    let uid = input.uid.clone();
    Ok((StatusCode::CREATED, axum::Json(create_source(&ctx, input, uid).await?)))
}

/// Get Ingest Source.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}", operation_id = "v1.ingest.source.get", tag = "Ingest Source",
    params(SourcePath),
    responses((status = 200, body = IngestSourceOut)))]
pub(crate) async fn get(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(SourcePath { source_id }): Keys<SourcePath>,
) -> Result<axum::Json<IngestSourceOut>, ApiError> {
    Ok(axum::Json(source_out(load_source(&ctx, &auth, &source_id).await?, None)))
}

/// Upsert Ingest Source: replaces the source the key names (its URL stays, and a replaced
/// secret is still accepted for 24 hours), or creates one whose `uid` is the key.
#[utoipa::path(put, path = "/ingest/api/v1/source/{source_id}", operation_id = "v1.ingest.source.upsert", tag = "Ingest Source",
    params(SourcePath),
    request_body = IngestSourceIn,
    responses((status = 200, body = IngestSourceOut), (status = 201, body = IngestSourceOut)))]
pub(crate) async fn upsert(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(SourcePath { source_id }): Keys<SourcePath>,
    Json(input): Json<IngestSourceIn>,
) -> Result<Response, ApiError> {
    auth.require_admin()?;
    check_key("source_id", &source_id)?;
    let existing = match ctx.store.get_source(&source_id).await {
        Ok(source) => Some(source),
        Err(StoreError::NotFound(_)) if !SourceId::is_id(&source_id) => None,
        Err(err) => return Err(err.into()),
    };
    let (out, created) = match existing {
        Some(source) => {
            let now = ctx.now();
            let mut updated = Source {
                uid: input.uid,
                name: input.name,
                kind: input.kind,
                metadata: input.metadata,
                updated_at: now,
                ..source
            };
            // The provider may still sign with the old secret while it rolls the new one out.
            updated.replace_secret(input.config.and_then(|c| c.secret), now + OLD_SECRET_GRACE);
            let saved = ctx.store.update_source(updated).await;
            ctx.sources.clear();
            (source_out(saved?, None), false)
        }
        None => {
            let mut uid = Checker::default();
            check_source_uid(&mut uid, &source_id);
            uid.finish()?;
            let uid = input.uid.clone().or(Some(source_id));
            (create_source(&ctx, input, uid).await?, true)
        }
    };
    Ok((created_or_ok(created), axum::Json(out)).into_response())
}

/// Patch Ingest Source.
#[utoipa::path(patch, path = "/ingest/api/v1/source/{source_id}", operation_id = "v1.ingest.source.patch", tag = "Ingest Source",
    params(SourcePath),
    request_body = IngestSourcePatch,
    responses((status = 200, body = IngestSourceOut)))]
pub(crate) async fn patch(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(SourcePath { source_id }): Keys<SourcePath>,
    Json(patch): Json<IngestSourcePatch>,
) -> Result<axum::Json<IngestSourceOut>, ApiError> {
    let mut source = load_source(&ctx, &auth, &source_id).await?;
    if let Some(name) = patch.name {
        source.name = name;
    }
    if let Some(uid) = patch.uid {
        source.uid = uid;
    }
    if let Some(metadata) = patch.metadata {
        source.metadata = metadata;
    }
    source.updated_at = ctx.now();
    let saved = ctx.store.update_source(source).await;
    ctx.sources.clear();
    Ok(axum::Json(source_out(saved?, None)))
}

/// Delete Ingest Source, with its endpoints, messages and log.
#[utoipa::path(delete, path = "/ingest/api/v1/source/{source_id}", operation_id = "v1.ingest.source.delete", tag = "Ingest Source",
    params(SourcePath),
    responses((status = 204, description = "No content")))]
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(SourcePath { source_id }): Keys<SourcePath>,
) -> Result<StatusCode, ApiError> {
    let source = load_source(&ctx, &auth, &source_id).await?;
    let deleted = ctx.store.delete_source(&source.id).await;
    ctx.sources.clear();
    deleted?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate Ingest Source Token: a new URL; the previous one keeps working for 48 hours.
#[utoipa::path(post, path = "/ingest/api/v1/source/{source_id}/token/rotate", operation_id = "v1.ingest.source.rotate-token", tag = "Ingest Source",
    params(SourcePath, ("idempotency-key" = Option<String>, Header)),
    responses((status = 200, body = RotateTokenOut)))]
pub(crate) async fn rotate_token(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(SourcePath { source_id }): Keys<SourcePath>,
) -> Result<axum::Json<RotateTokenOut>, ApiError> {
    let source = load_source(&ctx, &auth, &source_id).await?;
    let token = new_token();
    let rotation = TokenRotation { new: TokenHash(hash_token(&token)), old_valid_until: ctx.now() + OLD_TOKEN_GRACE };
    let rotated = ctx.store.rotate_source_token(&source.id, rotation).await;
    ctx.sources.clear();
    rotated?;
    Ok(axum::Json(RotateTokenOut { ingest_url: ingest_url(&ctx, &token) }))
}

/// List Ingest Logs: every request to the source's URL, with what became of it.
#[utoipa::path(get, path = "/ingest/api/v1/source/{source_id}/log", operation_id = "v1.ingest.log.list", tag = "Ingest Logs",
    params(SourcePath, Paging, Sorting),
    responses((status = 200, body = IngestLogList)))]
pub(crate) async fn list_log(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(SourcePath { source_id }): Keys<SourcePath>,
    query: Query,
) -> Result<axum::Json<ListResponse<IngestLogOut>>, ApiError> {
    let source = load_source(&ctx, &auth, &source_id).await?;
    let page_query = page_query(&query, Order::Descending, IngestLogId::is_id)?;
    let page = ctx.store.list_ingest_logs(&source.id, &page_query).await?;
    Ok(axum::Json(list_response(page, &page_query, |e| e.id.as_str(), IngestLogOut::from)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse_json;

    fn violations(body: &str) -> Vec<String> {
        let input: IngestSourceIn = parse_json(body.as_bytes()).unwrap();
        match input.validate() {
            Ok(()) => Vec::new(),
            Err(e) => e.0.into_iter().map(|v| v.loc.join(".")).collect(),
        }
    }

    #[test]
    fn types_and_secrets_are_checked() {
        assert!(violations(r#"{"name":"gw","type":"generic-webhook"}"#).is_empty());
        assert!(violations(r#"{"name":"st","type":"stripe","config":{"secret":"whsec_x"}}"#).is_empty());
        assert_eq!(violations(r#"{"name":"zz","type":"zoom","config":{"secret":"x"}}"#), ["body.type"]);
        assert_eq!(violations(r#"{"name":"st","type":"stripe"}"#), ["body.config.secret"]);
        assert_eq!(violations(r#"{"name":"st","type":"github","config":{"secret":""}}"#), ["body.config.secret"]);
        assert_eq!(violations(r#"{"name":"sv","type":"svix","config":{"secret":"nope"}}"#), ["body.config.secret"]);
        assert_eq!(violations(r#"{"name":"x","uid":"src_x","type":"generic-webhook"}"#), ["body.name", "body.uid"]);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32, "24 random bytes");
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
