//! `/api/v1/app`: create (with `get_if_exists`), list, get, upsert, patch and delete
//! applications, addressed by id or `uid`.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, ValidationError,
    model::Application,
    validate::{self, Checker},
};
use herald_store::{AppFilter, Order, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{created_or_ok, load_app, patch_field};
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Query, Validate, check_key},
    pagination::{ListResponse, Paging, Sorting, list_response, page_query},
    params::AppPath,
};

/// A new application, or the full replacement of one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    /// Application name for human consumption.
    #[schema(min_length = 1, example = "My first application")]
    pub name: String,
    /// Maximum messages per second to send to this application.
    #[serde(default, alias = "rateLimit")]
    #[schema(minimum = 1, format = "uint16")]
    pub throttle_rate: Option<u16>,
    /// Optional unique identifier for the application.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Validate for ApplicationIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check.check(!self.name.trim().is_empty(), &["body", "name"], "name must not be empty");
        check.check(self.throttle_rate != Some(0), &["body", "throttleRate"], "throttleRate must be at least 1");
        if let Some(uid) = &self.uid {
            check.rule(&["body", "uid"], validate::uid(uid));
        }
        check.finish()
    }
}

/// Changes to some fields of an application; `null` clears a nullable field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, alias = "rateLimit", deserialize_with = "patch_field")]
    #[schema(value_type = Option<u16>, format = "uint16")]
    pub throttle_rate: Option<Option<u16>>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<Option<String>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Validate for ApplicationPatch {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        if let Some(name) = &self.name {
            check.check(!name.trim().is_empty(), &["body", "name"], "name must not be empty");
        }
        if let Some(Some(uid)) = &self.uid {
            check.rule(&["body", "uid"], validate::uid(uid));
        }
        check.finish()
    }
}

/// An application as returned.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uint16")]
    pub throttle_rate: Option<u16>,
    /// The Application's ID.
    #[schema(value_type = String, example = "app_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: AppId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub metadata: BTreeMap<String, String>,
}

impl From<Application> for ApplicationOut {
    fn from(app: Application) -> Self {
        Self {
            uid: app.uid,
            name: app.name,
            throttle_rate: app.throttle_rate,
            id: app.id,
            created_at: app.created_at,
            updated_at: app.updated_at,
            metadata: app.metadata,
        }
    }
}

crate::list_schema!(ApplicationList, ListResponse_ApplicationOut_, ApplicationOut);

fn new_application(ctx: &Shared, input: ApplicationIn, uid: Option<String>) -> Application {
    let now = ctx.now();
    Application {
        id: AppId::generate(now, &mut rand::rng()),
        uid,
        name: input.name,
        throttle_rate: input.throttle_rate,
        metadata: input.metadata,
        created_at: now,
        updated_at: now,
    }
}

/// The application list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AppListFilter {
    /// Exclude applications that have no endpoints. Default is false.
    exclude_apps_with_no_endpoints: Option<bool>,
    /// Exclude applications that have only disabled endpoints. Default is false.
    exclude_apps_with_disabled_endpoints: Option<bool>,
    /// Accepted for compatibility: Herald has no Svix Play endpoints, so it excludes nothing.
    #[expect(dead_code, reason = "parsed so a malformed value is refused; Herald has no Svix Play endpoints")]
    exclude_apps_with_svix_play_endpoints: Option<bool>,
}

/// Whether creating an application whose `uid` exists returns that one.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct GetIfExists {
    /// Get an existing application, or create a new one if doesn't exist.
    get_if_exists: Option<bool>,
}

/// List Applications.
#[utoipa::path(get, path = "/api/v1/app", operation_id = "v1.application.list", tag = "Application",
    params(AppListFilter, Paging, Sorting),
    responses((status = 200, body = ApplicationList)))]
pub(crate) async fn list(
    State(ctx): State<Shared>,
    auth: Auth,
    query: Query,
) -> Result<axum::Json<ListResponse<ApplicationOut>>, ApiError> {
    auth.require_admin()?;
    let page_query = page_query(&query, Order::Ascending, AppId::is_id)?;
    // The Svix Play flag is parsed like the others, though no endpoint of Herald's is one.
    let AppListFilter { exclude_apps_with_no_endpoints, exclude_apps_with_disabled_endpoints, .. } = query.params()?;
    let filter = AppFilter {
        exclude_without_endpoints: exclude_apps_with_no_endpoints.unwrap_or(false),
        exclude_only_disabled_endpoints: exclude_apps_with_disabled_endpoints.unwrap_or(false),
    };
    let page = ctx.store.list_applications(filter, &page_query).await?;
    Ok(axum::Json(list_response(page, &page_query, |a| a.id.as_str(), ApplicationOut::from)))
}

/// Create Application.
#[utoipa::path(post, path = "/api/v1/app", operation_id = "v1.application.create", tag = "Application",
    params(GetIfExists, ("idempotency-key" = Option<String>, Header)),
    request_body = ApplicationIn,
    responses((status = 200, body = ApplicationOut), (status = 201, body = ApplicationOut)))]
pub(crate) async fn create(
    State(ctx): State<Shared>,
    auth: Auth,
    query: Query,
    Json(input): Json<ApplicationIn>,
) -> Result<Response, ApiError> {
    auth.require_admin()?;
    let get_if_exists = query.params::<GetIfExists>()?.get_if_exists.unwrap_or(false);
    if get_if_exists && let Some(uid) = &input.uid {
        match ctx.store.get_application(uid).await {
            Ok(app) => {
                return Ok((StatusCode::OK, axum::Json(ApplicationOut::from(app))).into_response());
            }
            Err(StoreError::NotFound(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let uid = input.uid.clone();
    match ctx.store.create_application(new_application(&ctx, input, uid.clone())).await {
        Ok(app) => Ok((StatusCode::CREATED, axum::Json(ApplicationOut::from(app))).into_response()),
        // Lost a race with a concurrent create of the same uid: that one is "existing".
        Err(StoreError::Conflict(_)) if get_if_exists && uid.is_some() => {
            let app = ctx.store.get_application(uid.as_deref().unwrap_or_default()).await?;
            Ok((StatusCode::OK, axum::Json(ApplicationOut::from(app))).into_response())
        }
        Err(err) => Err(err.into()),
    }
}

/// Get Application.
#[utoipa::path(get, path = "/api/v1/app/{app_id}", operation_id = "v1.application.get", tag = "Application",
    params(AppPath),
    responses((status = 200, body = ApplicationOut)))]
pub(crate) async fn get(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppPath { app_id }): Keys<AppPath>,
) -> Result<axum::Json<ApplicationOut>, ApiError> {
    Ok(axum::Json(load_app(&ctx, &auth, &app_id).await?.into()))
}

/// Upsert Application: updates the application the key names, or creates one whose
/// `uid` is the key.
#[utoipa::path(put, path = "/api/v1/app/{app_id}", operation_id = "v1.application.upsert", tag = "Application",
    params(AppPath),
    request_body = ApplicationIn,
    responses((status = 200, body = ApplicationOut), (status = 201, body = ApplicationOut)))]
pub(crate) async fn upsert(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppPath { app_id }): Keys<AppPath>,
    Json(input): Json<ApplicationIn>,
) -> Result<Response, ApiError> {
    check_key("app_id", &app_id)?;
    let existing = match load_app(&ctx, &auth, &app_id).await {
        Ok(app) => Some(app),
        Err(ApiError::NotFound(_)) if !AppId::is_id(&app_id) => None,
        Err(err) => return Err(err),
    };
    let (app, created) = match existing {
        Some(app) => {
            let uid = input.uid.clone().or_else(|| app.uid.clone().filter(|u| *u == app_id));
            let updated = Application {
                uid,
                name: input.name,
                throttle_rate: input.throttle_rate,
                metadata: input.metadata,
                updated_at: ctx.now(),
                ..app
            };
            (ctx.store.update_application(updated).await?, false)
        }
        None => {
            auth.require_admin()?;
            (ctx.store.create_application(new_application(&ctx, input, Some(app_id))).await?, true)
        }
    };
    Ok((created_or_ok(created), axum::Json(ApplicationOut::from(app))).into_response())
}

/// Patch Application.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}", operation_id = "v1.application.patch", tag = "Application",
    params(AppPath),
    request_body = ApplicationPatch,
    responses((status = 200, body = ApplicationOut)))]
pub(crate) async fn patch(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppPath { app_id }): Keys<AppPath>,
    Json(patch): Json<ApplicationPatch>,
) -> Result<axum::Json<ApplicationOut>, ApiError> {
    let mut app = load_app(&ctx, &auth, &app_id).await?;
    if let Some(name) = patch.name {
        app.name = name;
    }
    if let Some(rate) = patch.throttle_rate {
        app.throttle_rate = rate;
    }
    if let Some(uid) = patch.uid {
        app.uid = uid;
    }
    if let Some(metadata) = patch.metadata {
        app.metadata = metadata;
    }
    app.updated_at = ctx.now();
    Ok(axum::Json(ctx.store.update_application(app).await?.into()))
}

/// Delete Application, with everything under it.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}", operation_id = "v1.application.delete", tag = "Application",
    params(AppPath),
    responses((status = 204, description = "No content")))]
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppPath { app_id }): Keys<AppPath>,
) -> Result<StatusCode, ApiError> {
    let app = load_app(&ctx, &auth, &app_id).await?;
    ctx.store.delete_application(&app.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
