//! Accepting messages and reading them back, with the idempotency keys that make a
//! retried request answer as the first one did.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, MessageId,
    ingest::IngestLog,
    model::{Application, Delivery, Message},
};

use crate::{Page, PageQuery, StoreResult};

/// A response kept for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The result of claiming an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new and now reserved by the caller, who must complete or release it.
    Claimed,
    /// A request with this key finished already: answer with its response.
    Completed(StoredResponse),
    /// A request with this key is still running.
    InProgress,
}

/// An idempotency record to write together with the data it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyWrite {
    /// Already scoped to the caller (token and route) by the API.
    pub key: String,
    pub response: StoredResponse,
    pub expires_at: DateTime<Utc>,
}

/// Everything needed to accept one message.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The application, by id or uid, as given in the request path.
    pub app_key: String,
    /// Created when `app_key` names no application (the request's inline `application`).
    pub create_app: Option<Application>,
    /// The message; its `app_id` is filled in by the store from the resolved application.
    pub message: Message,
    /// Written in the same transaction, so a replay sees the response iff the message exists.
    pub idempotency: Option<IdempotencyWrite>,
    /// Messages of the same app with the same `eventId` created after this conflict.
    pub event_id_since: DateTime<Utc>,
    /// For a request received on an ingest source: its log entry, committed with the
    /// message (and not written when the message is refused). Only such requests reach
    /// a source's hidden application; without one it is `NotFound`.
    pub ingest_log: Option<IngestLog>,
}

/// What happened to a [`NewMessage`].
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per accepted request, moved straight into the response; boxing would add an allocation to the hot path"
)]
pub enum MessageOutcome {
    /// Committed: the message (with its `app_id`) and the deliveries queued for it.
    Created { message: Message, deliveries: Vec<Delivery> },
    /// The idempotency key was used before; nothing was written.
    Replayed(StoredResponse),
    /// A request with the same idempotency key is still running; nothing was written.
    KeyInProgress,
    /// The application has a message with the same `eventId` created since
    /// `event_id_since`; nothing was written.
    DuplicateEventId,
}

/// Filters for listing messages.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    pub tag: Option<String>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
}

/// The message log and idempotency keys.
#[async_trait]
pub trait Messages: Send + Sync + 'static {
    /// Accepts a message in one transaction, following the rules of
    /// [`crate::accept`] in their order: the idempotency key, the application (resolved
    /// or created), `eventId` uniqueness, then the message, one delivery per endpoint
    /// that accepts it, and the idempotency record. Returns only after the commit.
    ///
    /// # Errors
    /// `NotFound` when the application does not exist and none is given to create (or
    /// it is a source's hidden one and the request has no ingest log entry);
    /// `Conflict` when the inline application clashes with an existing one.
    async fn create_message(&self, new: NewMessage) -> StoreResult<MessageOutcome>;
    /// A message of `app` by id or `eventId`.
    async fn get_message(&self, app: &AppId, key: &str) -> StoreResult<Message>;
    /// A page of `app`'s messages, ordered by id.
    async fn list_messages(&self, app: &AppId, filter: &MessageFilter, page: &PageQuery) -> StoreResult<Page<Message>>;
    /// The deliveries queued for a message (for tests and the attempt views).
    async fn list_deliveries(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Vec<Delivery>>;
    /// Reserves `key` until `expires_at`, or reports its earlier use.
    async fn claim_idempotency_key(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<IdempotencyClaim>;
    /// Stores the response for a claimed key.
    async fn complete_idempotency_key(&self, key: &str, response: StoredResponse) -> StoreResult<()>;
    /// Releases a claimed key whose request failed, so a retry can run.
    async fn release_idempotency_key(&self, key: &str) -> StoreResult<()>;
}
