//! `/api/v1/event-type`: create, list (`include_archived`, `with_content`), get, upsert,
//! patch, and delete (archive, or remove with `expunge=true`). Server-wide: scoped
//! tokens get 403.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use herald_core::{
    ValidationError,
    model::EventType,
    validate::{self, Checker},
};
use herald_store::{Order, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{created_or_ok, patch_field};
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Query, Validate},
    pagination::{ListResponse, Paging, Sorting, list_response, page_query},
    params::EventTypePath,
};

/// A new event type.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    /// The event type's name
    #[schema(max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$", example = "user.signup")]
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    /// The schema for the event type for a specific version as a JSON schema.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<serde_json::Value>,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub feature_flags: Option<Vec<String>>,
}

/// The body of an upsert: an event type without its name (the path has it).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpsertIn {
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<serde_json::Value>,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub feature_flags: Option<Vec<String>>,
}

/// Changes to some fields of an event type; `null` clears a nullable field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default)]
    pub deprecated: Option<bool>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<Vec<String>>)]
    pub feature_flags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>)]
    pub group_name: Option<Option<String>>,
}

/// An event type as returned.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    #[schema(default = false, required = false)]
    pub archived: bool,
    pub deprecated: bool,
    /// Left out of lists unless `with_content=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_flags: Option<Vec<String>>,
    /// Deprecated single-flag form of `featureFlags`; Herald never sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_flag: Option<String>,
}

impl From<EventType> for EventTypeOut {
    fn from(et: EventType) -> Self {
        Self {
            name: et.name,
            description: et.description,
            archived: et.archived,
            deprecated: et.deprecated,
            schemas: et.schemas,
            created_at: et.created_at,
            updated_at: et.updated_at,
            group_name: et.group_name,
            feature_flags: et.feature_flags,
            feature_flag: None,
        }
    }
}

crate::list_schema!(EventTypeList, ListResponse_EventTypeOut_, EventTypeOut);

fn check_common(
    check: &mut Checker,
    schemas: Option<&serde_json::Value>,
    group: Option<&String>,
    flags: Option<&Vec<String>>,
) {
    if let Some(schemas) = schemas {
        check.check(schemas.is_object(), &["body", "schemas"], "schemas must be an object");
    }
    if let Some(group) = group {
        check.rule(&["body", "groupName"], validate::name(group));
    }
    if let Some(flags) = flags {
        check.check(!flags.is_empty(), &["body", "featureFlags"], "featureFlags must not be empty");
        check.rule(&["body", "featureFlags"], validate::unique_list(flags, 256, validate::name));
    }
}

impl Validate for EventTypeIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check.rule(&["body", "name"], validate::name(&self.name));
        check_common(&mut check, self.schemas.as_ref(), self.group_name.as_ref(), self.feature_flags.as_ref());
        check.finish()
    }
}

impl Validate for EventTypeUpsertIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check_common(&mut check, self.schemas.as_ref(), self.group_name.as_ref(), self.feature_flags.as_ref());
        check.finish()
    }
}

impl Validate for EventTypePatch {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check_common(
            &mut check,
            self.schemas.as_ref().and_then(Option::as_ref),
            self.group_name.as_ref().and_then(Option::as_ref),
            self.feature_flags.as_ref().and_then(Option::as_ref),
        );
        check.finish()
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    validate::name(name).map_err(|msg| ApiError::invalid(&["path", "event_type_name"], msg))
}

/// What the event type list includes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventTypeListParams {
    /// When `true` archived (deleted but not expunged) items are included in the response.
    include_archived: Option<bool>,
    /// When `true` the full item (including the schema) is included in the response.
    with_content: Option<bool>,
}

/// Whether deleting an event type removes it rather than archiving it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Expunge {
    /// By default event types are archived when "deleted". Passing this to `true` deletes them entirely.
    expunge: Option<bool>,
}

/// List Event Types.
#[utoipa::path(get, path = "/api/v1/event-type", operation_id = "v1.event-type.list", tag = "Event Type",
    params(Paging, Sorting, EventTypeListParams),
    responses((status = 200, body = EventTypeList)))]
pub(crate) async fn list(
    State(ctx): State<Shared>,
    auth: Auth,
    query: Query,
) -> Result<axum::Json<ListResponse<EventTypeOut>>, ApiError> {
    auth.require_admin()?;
    let page_query = page_query(&query, Order::Ascending, |k| validate::name(k).is_ok())?;
    let params: EventTypeListParams = query.params()?;
    let (include_archived, with_content) =
        (params.include_archived.unwrap_or(false), params.with_content.unwrap_or(false));
    let page = ctx.store.list_event_types(&page_query, include_archived).await?;
    Ok(axum::Json(list_response(
        page,
        &page_query,
        |e| e.name.as_str(),
        |e| {
            let mut out = EventTypeOut::from(e);
            if !with_content {
                out.schemas = None;
            }
            out
        },
    )))
}

/// Create Event Type.
#[utoipa::path(post, path = "/api/v1/event-type", operation_id = "v1.event-type.create", tag = "Event Type",
    params(("idempotency-key" = Option<String>, Header)),
    request_body = EventTypeIn,
    responses((status = 201, body = EventTypeOut)))]
pub(crate) async fn create(
    State(ctx): State<Shared>,
    auth: Auth,
    Json(input): Json<EventTypeIn>,
) -> Result<(StatusCode, axum::Json<EventTypeOut>), ApiError> {
    auth.require_admin()?;
    let now = ctx.now();
    let event_type = EventType {
        name: input.name,
        description: input.description,
        archived: input.archived,
        deprecated: input.deprecated,
        schemas: input.schemas,
        group_name: input.group_name,
        feature_flags: input.feature_flags,
        created_at: now,
        updated_at: now,
    };
    let created = ctx.store.create_event_type(event_type).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// Get Event Type.
#[utoipa::path(get, path = "/api/v1/event-type/{event_type_name}", operation_id = "v1.event-type.get", tag = "Event Type",
    params(EventTypePath),
    responses((status = 200, body = EventTypeOut)))]
pub(crate) async fn get(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(EventTypePath { event_type_name: name }): Keys<EventTypePath>,
) -> Result<axum::Json<EventTypeOut>, ApiError> {
    auth.require_admin()?;
    check_name(&name)?;
    Ok(axum::Json(ctx.store.get_event_type(&name).await?.into()))
}

/// Upsert Event Type.
#[utoipa::path(put, path = "/api/v1/event-type/{event_type_name}", operation_id = "v1.event-type.upsert", tag = "Event Type",
    params(EventTypePath),
    request_body = EventTypeUpsertIn,
    responses((status = 200, body = EventTypeOut), (status = 201, body = EventTypeOut)))]
pub(crate) async fn upsert(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(EventTypePath { event_type_name: name }): Keys<EventTypePath>,
    Json(input): Json<EventTypeUpsertIn>,
) -> Result<Response, ApiError> {
    auth.require_admin()?;
    check_name(&name)?;
    let now = ctx.now();
    let existing = match ctx.store.get_event_type(&name).await {
        Ok(existing) => Some(existing),
        Err(StoreError::NotFound(_)) => None,
        Err(err) => return Err(err.into()),
    };
    let created = existing.is_none();
    let event_type = EventType {
        name,
        description: input.description,
        archived: input.archived,
        deprecated: input.deprecated,
        schemas: input.schemas,
        group_name: input.group_name,
        feature_flags: input.feature_flags,
        created_at: existing.map_or(now, |e| e.created_at),
        updated_at: now,
    };
    let saved = if created {
        ctx.store.create_event_type(event_type).await?
    } else {
        ctx.store.update_event_type(event_type).await?
    };
    Ok((created_or_ok(created), axum::Json(EventTypeOut::from(saved))).into_response())
}

/// Patch Event Type.
#[utoipa::path(patch, path = "/api/v1/event-type/{event_type_name}", operation_id = "v1.event-type.patch", tag = "Event Type",
    params(EventTypePath),
    request_body = EventTypePatch,
    responses((status = 200, body = EventTypeOut)))]
pub(crate) async fn patch(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(EventTypePath { event_type_name: name }): Keys<EventTypePath>,
    Json(patch): Json<EventTypePatch>,
) -> Result<axum::Json<EventTypeOut>, ApiError> {
    auth.require_admin()?;
    check_name(&name)?;
    let mut et = ctx.store.get_event_type(&name).await?;
    if let Some(description) = patch.description {
        et.description = description;
    }
    if let Some(archived) = patch.archived {
        et.archived = archived;
    }
    if let Some(deprecated) = patch.deprecated {
        et.deprecated = deprecated;
    }
    if let Some(schemas) = patch.schemas {
        et.schemas = schemas;
    }
    if let Some(flags) = patch.feature_flags {
        et.feature_flags = flags;
    }
    if let Some(group) = patch.group_name {
        et.group_name = group;
    }
    et.updated_at = ctx.now();
    Ok(axum::Json(ctx.store.update_event_type(et).await?.into()))
}

/// Delete Event Type: archives it, or removes it for good with `expunge=true`.
#[utoipa::path(delete, path = "/api/v1/event-type/{event_type_name}", operation_id = "v1.event-type.delete", tag = "Event Type",
    params(EventTypePath, Expunge),
    responses((status = 204, description = "No content")))]
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(EventTypePath { event_type_name: name }): Keys<EventTypePath>,
    query: Query,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    check_name(&name)?;
    if query.params::<Expunge>()?.expunge.unwrap_or(false) {
        ctx.store.delete_event_type(&name).await?;
    } else {
        let mut et = ctx.store.get_event_type(&name).await?;
        if !et.archived {
            et.archived = true;
            et.updated_at = ctx.now();
            ctx.store.update_event_type(et).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
