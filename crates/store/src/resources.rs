//! The configuration side of the store: API tokens, applications, event types (with
//! their retry schedules) and endpoints, and the records those use cases take.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, EndpointId, RetrySchedule, TokenId,
    model::{Application, Endpoint, EventType},
};

use crate::{Page, PageQuery, StoreResult};

/// An API token as stored: only the hash of the secret part is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: TokenId,
    /// Hex SHA-256 of the full token string.
    pub hash: String,
    /// `None` for a server-wide (admin) token; else the only application it may touch.
    pub app_id: Option<AppId>,
    pub created_at: DateTime<Utc>,
}

/// Filters for listing applications.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppFilter {
    /// Leave out applications without any endpoint.
    pub exclude_without_endpoints: bool,
    /// Leave out applications whose endpoints are all disabled (those without any
    /// endpoint stay).
    pub exclude_only_disabled_endpoints: bool,
}

/// Tokens, applications, event types and endpoints. All methods are scoped by
/// application where the data is.
#[async_trait]
pub trait Resources: Send + Sync + 'static {
    /// Stores a new token.
    async fn create_token(&self, token: TokenRecord) -> StoreResult<()>;
    /// Finds a token by the hash of its secret.
    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Whether any server-wide token exists (first-start bootstrap).
    async fn has_admin_token(&self) -> StoreResult<bool>;
    /// Creates an application; `Conflict` if its `uid` is taken.
    async fn create_application(&self, app: Application) -> StoreResult<Application>;
    /// An application by id or uid. The hidden application of an ingest source is
    /// `NotFound` here (and absent from lists): only its source reaches it.
    async fn get_application(&self, key: &str) -> StoreResult<Application>;
    /// A page of applications, ordered by id, without the hidden ones of sources.
    async fn list_applications(&self, filter: AppFilter, page: &PageQuery) -> StoreResult<Page<Application>>;
    /// Replaces an application's fields (matched by id); `Conflict` if its `uid` is taken.
    async fn update_application(&self, app: Application) -> StoreResult<Application>;
    /// Deletes an application and everything under it.
    async fn delete_application(&self, id: &AppId) -> StoreResult<()>;
    /// Creates an event type; `Conflict` if the name exists.
    async fn create_event_type(&self, event_type: EventType) -> StoreResult<EventType>;
    /// An event type by name, archived or not.
    async fn get_event_type(&self, name: &str) -> StoreResult<EventType>;
    /// A page of event types, ordered by name.
    async fn list_event_types(&self, page: &PageQuery, include_archived: bool) -> StoreResult<Page<EventType>>;
    /// Replaces an event type's fields (matched by name).
    async fn update_event_type(&self, event_type: EventType) -> StoreResult<EventType>;
    /// Removes an event type for good (`expunge`).
    async fn delete_event_type(&self, name: &str) -> StoreResult<()>;
    /// The retry schedule set for event type `name`; `None` means the global one applies.
    ///
    /// # Errors
    /// `NotFound` when no event type has that name.
    async fn get_event_type_retry_schedule(&self, name: &str) -> StoreResult<Option<RetrySchedule>>;
    /// Sets the retry schedule of event type `name`, or clears it with `None`.
    ///
    /// # Errors
    /// `NotFound` when no event type has that name.
    async fn set_event_type_retry_schedule(&self, name: &str, schedule: Option<RetrySchedule>) -> StoreResult<()>;
    /// Creates an endpoint; `Conflict` if its `uid` is taken within the application.
    async fn create_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint>;
    /// An endpoint of `app` by id or uid.
    async fn get_endpoint(&self, app: &AppId, key: &str) -> StoreResult<Endpoint>;
    /// A page of `app`'s endpoints, ordered by id.
    async fn list_endpoints(&self, app: &AppId, page: &PageQuery) -> StoreResult<Page<Endpoint>>;
    /// Replaces an endpoint's fields (matched by app and id); `Conflict` on a taken `uid`.
    async fn update_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint>;
    /// Deletes an endpoint and its queued deliveries.
    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> StoreResult<()>;
}
