//! Per-endpoint isolation: each endpoint gets a fixed number of concurrent requests
//! (a fair semaphore, so its deliveries go in claim order) and a threshold of
//! deliveries held in memory (sending or waiting). An endpoint at the threshold is
//! *saturated*: the dispatcher's claims skip it, so a slow endpoint never takes the
//! room other endpoints need, and a busy one is refilled in bulk when its queue has
//! drained to its request slots ([`EndpointSlots::room_freed`]).
//!
//! One claim may give an endpoint up to a batch more than the threshold (it was not
//! saturated when the claim began); the dispatcher's global bound still holds.
//!
//! Throttling by `throttleRate` is in `throttle`: an admitted delivery waits for its
//! endpoint's turn after getting a request slot.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use herald_core::EndpointId;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

/// The table of endpoints with deliveries in memory.
#[derive(Debug)]
pub(crate) struct EndpointSlots {
    table: Mutex<HashMap<EndpointId, Slot>>,
    requests_per_endpoint: usize,
    held_per_endpoint: usize,
    room: Notify,
}

#[derive(Debug)]
struct Slot {
    requests: Arc<Semaphore>,
    /// Deliveries of this endpoint in memory: sending or waiting for a request slot.
    held: usize,
    /// A claim skipped this endpoint, so due deliveries of it may be waiting.
    skipped: bool,
}

impl EndpointSlots {
    /// `requests_per_endpoint` concurrent requests per endpoint; an endpoint holding
    /// `held_per_endpoint` deliveries (including those sending) is saturated.
    pub fn new(requests_per_endpoint: usize, held_per_endpoint: usize) -> Self {
        Self { table: Mutex::new(HashMap::new()), requests_per_endpoint, held_per_endpoint, room: Notify::new() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<EndpointId, Slot>> {
        // The table stays consistent even if a holder panicked: every update is one step.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one delivery of `endpoint`; the admission is given back when dropped.
    pub fn admit(self: &Arc<Self>, endpoint: &EndpointId) -> Admission {
        let mut table = self.lock();
        let slot = table.entry(endpoint.clone()).or_insert_with(|| Slot {
            requests: Arc::new(Semaphore::new(self.requests_per_endpoint)),
            held: 0,
            skipped: false,
        });
        slot.held += 1;
        Admission { slots: self.clone(), endpoint: endpoint.clone(), requests: slot.requests.clone() }
    }

    /// The endpoints a claim must skip now. They are remembered, so that
    /// [`Self::room_freed`] fires once one of them has drained.
    pub fn saturated(&self) -> Vec<EndpointId> {
        let mut table = self.lock();
        let full = table.iter_mut().filter(|(_, slot)| slot.held >= self.held_per_endpoint);
        full.map(|(id, slot)| {
            slot.skipped = true;
            id.clone()
        })
        .collect()
    }

    /// Resolves when an endpoint that a claim skipped has drained to its request slots.
    pub async fn room_freed(&self) {
        self.room.notified().await;
    }

    /// Deliveries of `endpoint` now in memory (for tests and metrics).
    #[cfg(test)]
    pub fn held(&self, endpoint: &EndpointId) -> usize {
        self.lock().get(endpoint).map_or(0, |slot| slot.held)
    }

    fn release(&self, endpoint: &EndpointId) {
        let mut table = self.lock();
        let Some(slot) = table.get_mut(endpoint) else { return };
        slot.held -= 1;
        // Refill only once the queue is empty, so a busy endpoint is claimed for in
        // batches rather than one delivery per finished request.
        if slot.skipped && slot.held <= self.requests_per_endpoint {
            slot.skipped = false;
            self.room.notify_one();
        }
        if slot.held == 0 {
            // Forget idle endpoints so the table only holds those with work.
            table.remove(endpoint);
        }
    }
}

/// One admitted delivery of an endpoint.
#[derive(Debug)]
pub(crate) struct Admission {
    slots: Arc<EndpointSlots>,
    endpoint: EndpointId,
    requests: Arc<Semaphore>,
}

impl Admission {
    /// Waits for one of the endpoint's request slots, in arrival order.
    pub async fn request_slot(&self) -> SemaphorePermit<'_> {
        self.requests.acquire().await.expect("endpoint semaphores are never closed")
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.slots.release(&self.endpoint);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn endpoint() -> EndpointId {
        EndpointId::generate(chrono::Utc::now(), &mut rand::rng())
    }

    #[test]
    fn a_full_endpoint_is_saturated_without_affecting_others() {
        let slots = Arc::new(EndpointSlots::new(1, 2));
        let (slow, other) = (endpoint(), endpoint());
        let first = slots.admit(&slow);
        assert!(slots.saturated().is_empty());
        let second = slots.admit(&slow);
        let _other = slots.admit(&other);
        assert_eq!(slots.saturated(), std::slice::from_ref(&slow));
        drop(first);
        assert_eq!(slots.held(&slow), 1);
        assert!(slots.saturated().is_empty());
        drop(second);
        assert_eq!(slots.held(&slow), 0);
    }

    #[tokio::test]
    async fn a_skipped_endpoint_signals_once_its_queue_has_drained() {
        let slots = Arc::new(EndpointSlots::new(1, 3));
        let ep = endpoint();
        let mut held: Vec<_> = (0..3).map(|_| slots.admit(&ep)).collect();
        held.pop();
        let not_yet = tokio::time::timeout(Duration::from_millis(20), slots.room_freed()).await;
        assert!(not_yet.is_err(), "nothing was skipped, so nothing to signal");
        held.push(slots.admit(&ep));
        assert_eq!(slots.saturated(), std::slice::from_ref(&ep));
        held.pop();
        held.pop();
        slots.room_freed().await;
    }

    #[tokio::test]
    async fn request_slots_are_shared_by_the_endpoints_deliveries() {
        let slots = Arc::new(EndpointSlots::new(1, 3));
        let ep = endpoint();
        let (a, b) = (slots.admit(&ep), slots.admit(&ep));
        let held = a.request_slot().await;
        assert!(b.requests.try_acquire().is_err());
        drop(held);
        assert!(b.requests.try_acquire().is_ok());
    }
}
