//! The attempt log: recording attempts (and what they do to their deliveries and
//! endpoints), reading them back, the views of deliveries per endpoint and per message,
//! and the filters of manual control (resend, recover, replay).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, AttemptId, EndpointId, MessageId,
    model::{Attempt, Delivery, DeliveryStatus, Endpoint, Message},
};

use crate::{MessageFilter, Page, PageQuery, StoreResult};

/// Filters for listing attempts, by message or by endpoint. Every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AttemptFilter {
    /// Attempts for this message only.
    pub msg_id: Option<MessageId>,
    /// Attempts to this endpoint only.
    pub endpoint_id: Option<EndpointId>,
    /// The attempt's status (attempts are `Success` or `Fail`).
    pub status: Option<DeliveryStatus>,
    /// The class of the response status code: 0 (no response), 100, 200, … 500.
    pub status_code_class: Option<u16>,
    /// Attempts for messages of these event types.
    pub event_types: Option<Vec<String>>,
    /// Attempts for messages on this channel.
    pub channel: Option<String>,
    /// Attempts for messages with this tag.
    pub tag: Option<String>,
    /// Attempts made before this time.
    pub before: Option<DateTime<Utc>>,
    /// Attempts made after this time.
    pub after: Option<DateTime<Utc>>,
}

/// A message queued for an endpoint, with where its delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointMessage {
    pub message: Message,
    pub delivery: Delivery,
}

/// An endpoint a message was queued for, with where its delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDestination {
    pub endpoint: Endpoint,
    pub delivery: Delivery,
}

/// How many of an endpoint's deliveries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub success: u64,
    pub pending: u64,
    pub fail: u64,
    pub sending: u64,
    pub canceled: u64,
}

impl DeliveryCounts {
    /// Adds `count` deliveries in `status`.
    pub fn add(&mut self, status: DeliveryStatus, count: u64) {
        let slot = match status {
            DeliveryStatus::Success => &mut self.success,
            DeliveryStatus::Pending => &mut self.pending,
            DeliveryStatus::Fail => &mut self.fail,
            DeliveryStatus::Sending => &mut self.sending,
            DeliveryStatus::Canceled => &mut self.canceled,
        };
        *slot += count;
    }
}

/// Which of an endpoint's existing deliveries to send again (recover, bulk replay).
/// Messages are chosen by their creation time in `[since, until)`.
#[derive(Debug, Clone)]
pub struct RequeueFilter {
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    pub tag: Option<String>,
    /// Only deliveries in this state (`Fail` for recover).
    pub status: Option<DeliveryStatus>,
    /// Only deliveries whose last attempt's status code is in this class.
    pub status_code_class: Option<u16>,
}

impl RequeueFilter {
    /// Every delivery of messages created in `[since, until)`.
    pub fn window(since: DateTime<Utc>, until: Option<DateTime<Utc>>) -> Self {
        Self { since, until, event_types: None, channel: None, tag: None, status: None, status_code_class: None }
    }
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

/// Attempts made, and the views of where deliveries stand.
#[async_trait]
pub trait AttemptLog: Send + Sync + 'static {
    /// Records attempts and moves their deliveries on, in one transaction.
    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()>;
    /// [`AttemptLog::record_attempts`], also tracking each endpoint's health: a success
    /// clears the time of its first failure since then, a failure of an enabled
    /// endpoint sets it if unset. A failure of an endpoint failing since before
    /// `disable_failing_since` fails its delivery and disables the endpoint (clearing the
    /// mark, so re-enabling it starts a fresh period). Returns the endpoints so disabled.
    async fn record_attempts_disabling(
        &self,
        results: Vec<AttemptResult>,
        disable_failing_since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<EndpointId>>;
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
}
