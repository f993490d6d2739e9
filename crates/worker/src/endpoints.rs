//! Per-endpoint isolation: each endpoint gets a fixed number of concurrent requests
//! (a fair semaphore, so its deliveries go in claim order) and a bound on how many of
//! its deliveries may wait in memory. A delivery that finds its endpoint full is not
//! admitted, and the dispatcher leaves it under its lease, so a slow endpoint never
//! takes the slots other endpoints need.
//!
//! Throttling by `throttleRate` will sit here too: an admitted delivery would wait for
//! its endpoint's token bucket after getting a request slot.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use herald_core::EndpointId;
use tokio::sync::{Semaphore, SemaphorePermit};

/// The table of endpoints with deliveries in memory.
#[derive(Debug)]
pub(crate) struct EndpointSlots {
    table: Mutex<HashMap<EndpointId, Slot>>,
    requests_per_endpoint: usize,
    held_per_endpoint: usize,
}

#[derive(Debug)]
struct Slot {
    requests: Arc<Semaphore>,
    /// Deliveries of this endpoint in memory: sending or waiting for a request slot.
    held: usize,
}

impl EndpointSlots {
    /// `requests_per_endpoint` concurrent requests and `held_per_endpoint` deliveries
    /// in memory (including those sending) per endpoint.
    pub fn new(requests_per_endpoint: usize, held_per_endpoint: usize) -> Self {
        Self { table: Mutex::new(HashMap::new()), requests_per_endpoint, held_per_endpoint }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<EndpointId, Slot>> {
        // The table stays consistent even if a holder panicked: every update is one step.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one delivery of `endpoint`, or `None` when the endpoint already holds
    /// its maximum. The admission is given back when dropped.
    pub fn admit(self: &Arc<Self>, endpoint: &EndpointId) -> Option<Admission> {
        let mut table = self.lock();
        let slot = table
            .entry(endpoint.clone())
            .or_insert_with(|| Slot { requests: Arc::new(Semaphore::new(self.requests_per_endpoint)), held: 0 });
        if slot.held >= self.held_per_endpoint {
            return None;
        }
        slot.held += 1;
        Some(Admission { slots: self.clone(), endpoint: endpoint.clone(), requests: slot.requests.clone() })
    }

    /// Deliveries of `endpoint` now in memory (for tests and metrics).
    #[cfg(test)]
    pub fn held(&self, endpoint: &EndpointId) -> usize {
        self.lock().get(endpoint).map_or(0, |slot| slot.held)
    }

    fn release(&self, endpoint: &EndpointId) {
        let mut table = self.lock();
        if let Some(slot) = table.get_mut(endpoint) {
            slot.held -= 1;
            if slot.held == 0 {
                // Forget idle endpoints so the table only holds those with work.
                table.remove(endpoint);
            }
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
    use super::*;

    fn endpoint() -> EndpointId {
        EndpointId::generate(chrono::Utc::now(), &mut rand::rng())
    }

    #[test]
    fn a_full_endpoint_refuses_more_without_affecting_others() {
        let slots = Arc::new(EndpointSlots::new(1, 2));
        let (slow, other) = (endpoint(), endpoint());
        let first = slots.admit(&slow).unwrap();
        let second = slots.admit(&slow).unwrap();
        assert!(slots.admit(&slow).is_none());
        assert!(slots.admit(&other).is_some());
        drop(first);
        assert_eq!(slots.held(&slow), 1);
        let third = slots.admit(&slow).unwrap();
        drop((second, third));
        assert_eq!(slots.held(&slow), 0);
    }

    #[tokio::test]
    async fn request_slots_are_shared_by_the_endpoints_deliveries() {
        let slots = Arc::new(EndpointSlots::new(1, 3));
        let ep = endpoint();
        let (a, b) = (slots.admit(&ep).unwrap(), slots.admit(&ep).unwrap());
        let held = a.request_slot().await;
        assert!(b.requests.try_acquire().is_err());
        drop(held);
        assert!(b.requests.try_acquire().is_ok());
    }
}
