//! Records and filters of the attempt log and of manual control (resend, recover,
//! replay): what the [`crate::Store`] methods for those use cases take and return.

use chrono::{DateTime, Utc};
use herald_core::{
    EndpointId, MessageId,
    model::{Delivery, DeliveryStatus, Endpoint, Message},
};

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
