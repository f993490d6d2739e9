//! The delivery queue: claiming due deliveries under a lease, handing them back, and
//! queueing them again by hand (resend, recover, replay).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, EndpointId, MessageId,
    model::{Delivery, Endpoint, Message},
};

use crate::{HandoffSender, RequeueFilter, StoreResult};

/// A delivery a worker has claimed under a lease, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: Delivery,
    pub message: Message,
    pub endpoint: Endpoint,
}

/// What the dispatcher takes its work from.
#[async_trait]
pub trait DeliveryQueue: Send + Sync + 'static {
    /// Claims up to `limit` deliveries that are due at `now` (pending, or sending under
    /// an expired lease) and leases them until `lease_until`, so no other worker takes
    /// them meanwhile. A worker that dies loses its lease and the delivery is claimed again.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Like [`DeliveryQueue::claim_due_deliveries`], but leaves the deliveries of the endpoints
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
    /// From now on, messages accepted through this handle hand their deliveries that
    /// are due now to `sender` (see [`crate::handoff`]) when it has room, instead of
    /// leaving them for a claim. Called by the node's dispatcher role.
    ///
    /// The default ignores it, so every delivery goes through the table; backends
    /// override it.
    fn hand_off_to(&self, sender: HandoffSender) {
        let _ = sender;
    }
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
}

/// A delivery status's code as an SQL literal, for backends' statements built with
/// `concat!` (`concat!("… WHERE status = ", delivery_status!(Sending))`), so the codes of
/// [`herald_core::model::DeliveryStatus`] are written in one place beside their test.
/// Migrations keep their own literals: a changed migration would fail its checksum.
#[macro_export]
macro_rules! delivery_status {
    (Success) => {
        "0"
    };
    (Pending) => {
        "1"
    };
    (Fail) => {
        "2"
    };
    (Sending) => {
        "3"
    };
    (Canceled) => {
        "4"
    };
}

#[cfg(test)]
mod tests {
    use herald_core::model::DeliveryStatus;

    #[test]
    fn sql_literals_are_the_status_codes() {
        for (literal, status) in [
            (delivery_status!(Success), DeliveryStatus::Success),
            (delivery_status!(Pending), DeliveryStatus::Pending),
            (delivery_status!(Fail), DeliveryStatus::Fail),
            (delivery_status!(Sending), DeliveryStatus::Sending),
            (delivery_status!(Canceled), DeliveryStatus::Canceled),
        ] {
            assert_eq!(literal, status.code().to_string());
        }
    }
}
