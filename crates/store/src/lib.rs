//! The storage boundary: one [`Store`] trait whose methods follow Herald's use cases
//! (not its tables), so each backend can do each one in a single transaction with the
//! SQL that suits it. Records are `herald_core::model` types.
//!
//! Backends live in their own crates (`herald-store-sqlite`, later PostgreSQL) and run
//! the shared behavioural suite in [`conformance`] (feature `conformance`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, AttemptId, EndpointId, MessageId, RetrySchedule, SourceId, TokenId,
    ingest::{IngestLog, Source},
    model::{Application, Attempt, Delivery, DeliveryStatus, Endpoint, EventType, Message},
};

mod attempts;
#[cfg(feature = "conformance")]
pub mod conformance;
mod events;
mod ingest;
mod maintenance;
mod page;

pub use attempts::{AttemptFilter, DeliveryCounts, EndpointMessage, MessageDestination, RequeueFilter};
pub use events::{ConsumerKey, Event, EventFilter, EventPage, Position};
pub use ingest::{TokenHash, TokenRotation};
pub use maintenance::{FailingEndpoint, HealthChanges, QueueDepth, RetentionSwept};
pub use page::{Cursor, Direction, Order, Page, PageQuery};

/// What went wrong in the store, in terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed record does not exist (or belongs to another application).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was broken; the text says which.
    #[error("{0}")]
    Conflict(String),
    /// The database could not be reached or is overloaded; retrying may work.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a bug or corrupt data.
    #[error("store failure")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

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
}

/// A delivery a worker has claimed under a lease, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: Delivery,
    pub message: Message,
    pub endpoint: Endpoint,
}

/// What happens to a delivery after an attempt (the worker step's outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// A 2xx: the delivery is done.
    Delivered,
    /// A failure with attempts left: try again at this time.
    RetryAt(DateTime<Utc>),
    /// A failure with the schedule exhausted (or no point retrying).
    Failed,
    /// The receiver asked to stop (410) or the endpoint has failed for too long: the
    /// delivery fails and the endpoint is disabled.
    EndpointDisabled,
}

/// An attempt to record and the state change it causes.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub attempt: Attempt,
    pub next: NextStep,
    /// The lease the attempt was made under. The attempt is always logged, but the
    /// delivery moves on only while that lease still holds: a resend, a hand-back or
    /// another worker's claim since then owns the delivery, and a late result must not
    /// overwrite it.
    pub lease_until: DateTime<Utc>,
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

/// Filters for listing messages.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    pub tag: Option<String>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
}

/// Herald's persistence. All methods are scoped by application where the data is.
/// Times are kept to the millisecond (see `herald_core::to_millis`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the database answers.
    async fn ping(&self) -> StoreResult<()>;

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

    /// Accepts a message: in one transaction, resolves (or creates) the application,
    /// enforces `eventId` uniqueness, stores the message, one delivery per endpoint that
    /// accepts it, and the idempotency record. Returns only after the commit.
    async fn create_message(&self, new: NewMessage) -> StoreResult<MessageOutcome>;
    /// A message of `app` by id or `eventId`.
    async fn get_message(&self, app: &AppId, key: &str) -> StoreResult<Message>;
    /// A page of `app`'s messages, ordered by id.
    async fn list_messages(&self, app: &AppId, filter: &MessageFilter, page: &PageQuery) -> StoreResult<Page<Message>>;
    /// The deliveries queued for a message (for tests and the attempt views).
    async fn list_deliveries(&self, app: &AppId, msg_id: &herald_core::MessageId) -> StoreResult<Vec<Delivery>>;

    /// Claims up to `limit` deliveries that are due at `now` (pending, or sending under
    /// an expired lease) and leases them until `lease_until`, so no other worker takes
    /// them meanwhile. A worker that dies loses its lease and the delivery is claimed again.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Like [`Store::claim_due_deliveries`], but leaves the deliveries of the endpoints
    /// in `skip` alone: the caller cannot take more for them now, and a backlog of one
    /// saturated endpoint must not fill the batch meant for the others.
    ///
    /// The default ignores `skip`, which is correct but less fair; backends override it.
    async fn claim_due_deliveries_skipping(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
        skip: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let _ = skip;
        self.claim_due_deliveries(now, limit, lease_until).await
    }
    /// Hands claimed deliveries back without an attempt: each one still `sending` under
    /// the lease it was claimed with (`lease_until`; one another worker has claimed
    /// since is left alone) becomes pending and due at `due_at`, its attempt count
    /// unchanged. Used for deliveries a worker claimed but will not send (its endpoint
    /// is full, or it is shutting down).
    ///
    /// The default does nothing, so the deliveries come back when their lease runs out;
    /// backends override it.
    async fn release_deliveries(
        &self,
        deliveries: Vec<(MessageId, EndpointId)>,
        lease_until: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _ = (deliveries, lease_until, due_at);
        Ok(())
    }
    /// Notified whenever deliveries become due at once (a message was accepted), so a
    /// dispatcher in this process sends them without waiting for its next poll.
    fn delivery_waker(&self) -> Arc<tokio::sync::Notify>;
    /// Records attempts and moves their deliveries on, in one transaction.
    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()>;
    /// The attempts made for a message, oldest first.
    async fn list_message_attempts(&self, app: &AppId, msg_id: &herald_core::MessageId) -> StoreResult<Vec<Attempt>>;

    /// A page of `app`'s attempts matching `filter`, ordered by attempt id.
    async fn list_attempts(&self, app: &AppId, filter: &AttemptFilter, page: &PageQuery) -> StoreResult<Page<Attempt>>;
    /// One attempt of a message; `NotFound` when it is not that message's.
    async fn get_attempt(&self, app: &AppId, msg_id: &MessageId, attempt_id: &AttemptId) -> StoreResult<Attempt>;
    /// A page of the messages queued for an endpoint (optionally only those whose
    /// delivery is in `status`), with their delivery, ordered by message id.
    async fn list_endpoint_messages(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        status: Option<DeliveryStatus>,
        filter: &MessageFilter,
        page: &PageQuery,
    ) -> StoreResult<Page<EndpointMessage>>;
    /// A page of the endpoints a message was queued for, with their delivery, ordered
    /// by endpoint id.
    async fn list_message_destinations(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        page: &PageQuery,
    ) -> StoreResult<Page<MessageDestination>>;
    /// Counts an endpoint's deliveries by state, for messages created in `[since, until)`.
    async fn endpoint_stats(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<DeliveryCounts>;
    /// Drops a message's payload for good; later attempts of it fail.
    async fn expunge_message_content(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<()>;
    /// Replaces an attempt's stored response with `EXPUNGED`.
    async fn expunge_attempt_content(&self, app: &AppId, msg_id: &MessageId, attempt_id: &AttemptId)
    -> StoreResult<()>;
    /// Queues one message for one endpoint again, due at `now` with a manual trigger
    /// and a fresh retry schedule, creating the delivery if the message never had one
    /// for that endpoint. Wakes the dispatcher.
    async fn resend_message(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        endpoint_id: &EndpointId,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Makes an endpoint's deliveries that match `filter` (and are not being sent right
    /// now) due at `now` with a manual trigger and a fresh retry schedule; returns how
    /// many. Wakes the dispatcher. Recover is this with `status: Fail`.
    async fn requeue_deliveries(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        filter: &RequeueFilter,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Queues for an endpoint the messages of its application created in `[since,
    /// until)` that its filters accept, that still have a payload and that were never
    /// queued for it; returns how many. Wakes the dispatcher.
    async fn replay_missing(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Reserves `key` until `expires_at`, or reports its earlier use.
    async fn claim_idempotency_key(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<IdempotencyClaim>;
    /// Stores the response for a claimed key.
    async fn complete_idempotency_key(&self, key: &str, response: StoredResponse) -> StoreResult<()>;
    /// Releases a claimed key whose request failed, so a retry can run.
    async fn release_idempotency_key(&self, key: &str) -> StoreResult<()>;

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
    /// [`Store::record_attempts`], also tracking each endpoint's health: a success
    /// clears the time of its first failure since then, a failure of an enabled
    /// endpoint sets it if unset. A failure of an endpoint failing since before
    /// `disable_failing_since` fails its delivery and disables the endpoint (clearing the
    /// mark, so re-enabling it starts a fresh period). Returns the endpoints so disabled.
    async fn record_attempts_disabling(
        &self,
        results: Vec<AttemptResult>,
        disable_failing_since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<EndpointId>>;
    /// One bounded retention step: drops the payload of up to `limit` messages whose
    /// `expires_at` is before `now`, and deletes up to `limit` attempts and up to
    /// `limit` ingest log entries created before `attempts_before`. Callers repeat
    /// while [`RetentionSwept::is_full`].
    async fn sweep_retention(
        &self,
        now: DateTime<Utc>,
        attempts_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<RetentionSwept>;
    /// How many deliveries are pending and sending, across all applications.
    async fn queue_depth(&self) -> StoreResult<QueueDepth>;

    /// Creates an ingest source and, in the same transaction, its hidden application
    /// `app` (whose id is `source.app_id`), reachable by the URL token hashed as `token`.
    ///
    /// # Errors
    /// `Conflict` when the source's `uid` is taken.
    async fn create_source(&self, source: Source, app: Application, token: TokenHash) -> StoreResult<Source>;
    /// A source by id or uid.
    async fn get_source(&self, key: &str) -> StoreResult<Source>;
    /// A page of sources, ordered by id.
    async fn list_sources(&self, page: &PageQuery) -> StoreResult<Page<Source>>;
    /// Replaces a source's fields (matched by id; its application and token stay).
    ///
    /// # Errors
    /// `NotFound` when it does not exist, `Conflict` when its `uid` is taken.
    async fn update_source(&self, source: Source) -> StoreResult<Source>;
    /// Deletes a source with its hidden application and everything under it.
    async fn delete_source(&self, id: &SourceId) -> StoreResult<()>;
    /// Gives a source a new URL token; the one in use until now keeps working until
    /// `rotation.old_valid_until` (a token rotated out before that is dropped).
    async fn rotate_source_token(&self, id: &SourceId, rotation: TokenRotation) -> StoreResult<()>;
    /// The source whose current token, or previous one still valid at `now`, hashes to `token`.
    async fn find_source_by_token(&self, token: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<Source>>;
    /// Appends an entry to a source's request log.
    async fn record_ingest_log(&self, entry: IngestLog) -> StoreResult<()>;
    /// A page of a source's request log, ordered by id. Entries are deleted by
    /// [`Store::sweep_retention`] like attempts.
    async fn list_ingest_logs(&self, source: &SourceId, page: &PageQuery) -> StoreResult<Page<IngestLog>>;
    /// One bounded step of the per-source cap on request logs: deletes up to `limit` of
    /// the oldest entries (by id) of every source holding more than `keep`, so a flood
    /// of requests to one URL cannot grow the store without bound. Callers repeat while
    /// it returns `limit`.
    async fn trim_ingest_logs(&self, keep: usize, limit: usize) -> StoreResult<usize>;
    /// Up to `limit` of `app`'s messages after `after` in commit order that match
    /// `filter`, each with its position. A message is returned only once every message
    /// that will ever sort before it is visible, so a reader that continues from the
    /// last position it got never skips one that commits late.
    async fn read_events(
        &self,
        app: &AppId,
        filter: &EventFilter,
        after: Position,
        limit: usize,
    ) -> StoreResult<EventPage>;
    /// The position of one of `app`'s messages.
    ///
    /// # Errors
    /// `NotFound` when `app` has no such message.
    async fn message_position(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Position>;
    /// A position from which a read returns `app`'s messages created after `at`: just
    /// before the first readable one, or after the last readable message when none is.
    async fn position_after(&self, app: &AppId, at: DateTime<Utc>) -> StoreResult<Position>;
    /// The position a poller consumer saved, if it ever saved one.
    async fn consumer_position(&self, app: &AppId, consumer: &ConsumerKey) -> StoreResult<Option<Position>>;
    /// Saves where a poller consumer stands; it goes when its endpoint is deleted.
    async fn save_consumer_position(
        &self,
        app: &AppId,
        consumer: &ConsumerKey,
        position: Position,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// A counter that moves whenever messages commit (in this process, and on stores
    /// shared by several nodes also on the others), so live readers know to read again.
    /// It is a hint: readers still read by position and never trust it for content.
    fn message_commits(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// The shared handle handlers and workers hold.
pub type DynStore = Arc<dyn Store>;
