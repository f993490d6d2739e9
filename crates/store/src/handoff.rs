//! The in-memory hand-off of accepted deliveries: the accept call gives the deliveries
//! it queued straight to this node's dispatcher, so a message due now is sent without
//! the dispatcher reading it back from the table. The table stays the truth on restart
//! and for other nodes.
//!
//! The sequence, the same on every backend:
//!
//! 1. Inside the accept transaction, before the delivery rows are written,
//!    [`HandoffSender::reserve`] takes room in the bounded channel for every delivery of
//!    a message that is due now. With room, the rows are written already leased to this
//!    node (`sending` until the lease ends, the state a claim leaves them in), so no
//!    node's claim loop takes them meanwhile. Without room they are written pending and
//!    the dispatcher is woken to claim them, as without a hand-off.
//! 2. After the commit, [`Reservation::send`] puts them in the reserved room. A commit
//!    that fails drops the reservation, which frees the room.
//!
//! A process that dies between the commit and the send (or before the dispatcher sends
//! them) leaves the rows leased: once the lease runs out any node claims them, as after
//! a claim by a worker that died.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::model::{Delivery, DeliveryStatus, Message};
use tokio::sync::mpsc;

/// A delivery accepted on this node and leased to its dispatcher until `lease_until`.
#[derive(Debug, Clone)]
pub struct HandedOff {
    pub delivery: Delivery,
    pub message: Message,
    pub lease_until: DateTime<Utc>,
}

/// The dispatcher's end of the hand-off.
pub type HandoffReceiver = mpsc::Receiver<HandedOff>;

/// The store's end of the hand-off: the channel and the lease its deliveries are
/// written under (the dispatcher's, so a handed-off delivery is held as long as a
/// claimed one).
#[derive(Debug, Clone)]
pub struct HandoffSender {
    tx: mpsc::Sender<HandedOff>,
    lease: TimeDelta,
}

/// A channel holding up to `capacity` handed-off deliveries, leased for `lease`.
pub fn channel(capacity: usize, lease: TimeDelta) -> (HandoffSender, HandoffReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (HandoffSender { tx, lease }, rx)
}

/// Room reserved in the channel for one message's deliveries, written leased until
/// `lease_until`.
#[derive(Debug)]
pub struct Reservation {
    permits: Vec<mpsc::OwnedPermit<HandedOff>>,
    lease_until: DateTime<Utc>,
}

impl HandoffSender {
    /// Step 1: when `message` is due at `now` and the channel has room for all of
    /// `deliveries`, reserves that room and marks them leased (`sending`, due again at
    /// the lease's end) so the backend writes them so. Otherwise leaves them pending
    /// and returns `None`.
    pub fn reserve(&self, message: &Message, deliveries: &mut [Delivery], now: DateTime<Utc>) -> Option<Reservation> {
        if deliveries.is_empty() || message.deliver_at.is_some_and(|t| t > now) {
            return None;
        }
        // All or none: a message's deliveries share one state, and a partial
        // reservation would only delay the rest until the next claim.
        let permits =
            deliveries.iter().map(|_| self.tx.clone().try_reserve_owned().ok()).collect::<Option<Vec<_>>>()?;
        let lease_until = herald_core::to_millis(now + self.lease);
        for d in deliveries.iter_mut() {
            d.status = DeliveryStatus::Sending;
            d.next_attempt_at = lease_until;
        }
        Some(Reservation { permits, lease_until })
    }
}

impl Reservation {
    /// Step 2, after the commit: hands `deliveries` (those [`HandoffSender::reserve`]
    /// marked) of `message` to the dispatcher. The reservation is spent afterwards.
    pub fn send(&mut self, message: &Message, deliveries: &[Delivery]) {
        for (permit, delivery) in std::mem::take(&mut self.permits).into_iter().zip(deliveries) {
            let handed =
                HandedOff { delivery: delivery.clone(), message: message.clone(), lease_until: self.lease_until };
            permit.send(handed);
        }
    }
}

/// Where a backend keeps the sender it was given (none until a dispatcher on this
/// node asks for deliveries).
#[derive(Debug, Default)]
pub struct HandoffSlot {
    sender: Mutex<Option<HandoffSender>>,
}

impl HandoffSlot {
    /// Hands later accepted deliveries to `sender` (replacing an earlier one).
    pub fn set(&self, sender: HandoffSender) {
        *self.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender);
    }

    /// The sender to reserve with, if a dispatcher takes deliveries on this node.
    pub fn sender(&self) -> Option<HandoffSender> {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use herald_core::{AppId, EndpointId, MessageId, model::TriggerType};

    use super::*;

    fn accepted(deliver_at: Option<DateTime<Utc>>, endpoints: usize) -> (Message, Vec<Delivery>) {
        let now = herald_core::to_millis(Utc::now());
        let message = Message {
            id: MessageId::generate(now, &mut rand::rng()),
            app_id: AppId::generate(now, &mut rand::rng()),
            event_id: None,
            event_type: "t".to_owned(),
            payload: Some("{}".to_owned()),
            channels: None,
            tags: None,
            created_at: now,
            deliver_at,
            expires_at: now + TimeDelta::days(1),
            content_type: None,
        };
        let deliveries = (0..endpoints)
            .map(|_| Delivery {
                msg_id: message.id.clone(),
                endpoint_id: EndpointId::generate(now, &mut rand::rng()),
                app_id: message.app_id.clone(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: now,
                trigger: TriggerType::Scheduled,
            })
            .collect();
        (message, deliveries)
    }

    #[test]
    fn reserved_deliveries_are_leased_and_arrive_after_the_send() {
        let (tx, mut rx) = channel(4, TimeDelta::seconds(60));
        let (message, mut deliveries) = accepted(None, 2);
        let mut reservation = tx.reserve(&message, &mut deliveries, message.created_at).expect("room for two");
        let lease_until = message.created_at + TimeDelta::seconds(60);
        assert!(deliveries.iter().all(|d| d.status == DeliveryStatus::Sending && d.next_attempt_at == lease_until));
        assert!(rx.try_recv().is_err(), "nothing arrives before the commit");
        reservation.send(&message, &deliveries);
        for d in &deliveries {
            let handed = rx.try_recv().expect("sent after the commit");
            assert_eq!((&handed.delivery.endpoint_id, handed.lease_until), (&d.endpoint_id, lease_until));
        }
    }

    #[test]
    fn without_room_or_when_scheduled_deliveries_stay_pending() {
        let (tx, _rx) = channel(1, TimeDelta::seconds(60));
        let (message, mut deliveries) = accepted(None, 2);
        assert!(tx.reserve(&message, &mut deliveries, message.created_at).is_none());
        assert!(deliveries.iter().all(|d| d.status == DeliveryStatus::Pending));
        let (later, mut scheduled) = accepted(Some(Utc::now() + TimeDelta::minutes(5)), 1);
        assert!(tx.reserve(&later, &mut scheduled, later.created_at).is_none());
        let (message, mut one) = accepted(None, 1);
        let dropped = tx.reserve(&message, &mut one, message.created_at);
        assert!(dropped.is_some(), "the failed reservations gave their room back");
        drop(dropped);
        assert!(tx.reserve(&message, &mut one, message.created_at).is_some(), "a dropped reservation frees its room");
    }
}
