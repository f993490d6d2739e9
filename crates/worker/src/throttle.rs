//! Per-endpoint throttling by `throttleRate` (messages per second): starts of requests
//! to one endpoint are spaced at least `1 s / rate` apart, in arrival order. A delivery
//! waits for its turn after getting a request slot, so only its own endpoint's
//! deliveries wait behind it; nothing is dropped, and shutdown hands waiting ones back.
//!
//! Time comes from the injected clock, so tests can move it; the wait re-reads the clock
//! at least every [`MAX_NAP`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use herald_core::{Clock, EndpointId};

/// Longest single sleep while waiting, so a clock moved by a test is noticed.
const MAX_NAP: Duration = Duration::from_millis(100);
/// Gates kept before idle ones are pruned.
const PRUNE_ABOVE: usize = 1024;

type Gate = Arc<tokio::sync::Mutex<Option<DateTime<Utc>>>>;

/// The earliest next start of each throttled endpoint.
#[derive(Debug, Default)]
pub(crate) struct Throttles {
    gates: Mutex<HashMap<EndpointId, Gate>>,
}

impl Throttles {
    /// Waits until a request to `endpoint` may start under `rate` per second (`None`
    /// or 0: at once) and books the next slot; returns the time it may start.
    pub async fn wait_turn(&self, endpoint: &EndpointId, rate: Option<u16>, clock: &Clock) {
        let Some(rate) = rate.filter(|r| *r > 0) else { return };
        let gate = self.gate(endpoint, clock);
        // A fair lock: waiters take their turns in arrival order.
        let mut next_start = gate.lock().await;
        loop {
            let now = clock();
            match *next_start {
                Some(at) if at > now => {
                    let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(wait.min(MAX_NAP)).await;
                }
                _ => break,
            }
        }
        let interval = Duration::from_secs(1) / u32::from(rate);
        let now = herald_core::to_millis(clock());
        *next_start = chrono::TimeDelta::from_std(interval).ok().and_then(|d| now.checked_add_signed(d));
    }

    fn gate(&self, endpoint: &EndpointId, clock: &Clock) -> Gate {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        if gates.len() > PRUNE_ABOVE {
            // A gate nobody holds whose next start has passed restricts nothing.
            let now = clock();
            gates.retain(|_, gate| {
                Arc::strong_count(gate) > 1 || gate.try_lock().map_or(true, |next| next.is_some_and(|at| at > now))
            });
        }
        gates.entry(endpoint.clone()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    #[tokio::test]
    async fn starts_are_spaced_by_the_rate_under_a_moving_clock() {
        let millis = Arc::new(AtomicI64::new(1_000_000));
        let clock: Clock = {
            let millis = millis.clone();
            Arc::new(move || DateTime::from_timestamp_millis(millis.load(Ordering::SeqCst)).unwrap())
        };
        let throttles = Arc::new(Throttles::default());
        let ep = EndpointId::generate(Utc::now(), &mut rand::rng());
        throttles.wait_turn(&ep, Some(4), &clock).await;
        // Unthrottled endpoints and rate 0 never wait.
        throttles.wait_turn(&ep, None, &clock).await;
        let second = tokio::spawn({
            let (throttles, ep, clock) = (throttles.clone(), ep.clone(), clock.clone());
            async move { throttles.wait_turn(&ep, Some(4), &clock).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the second start waits for the clock to reach 250 ms");
        millis.fetch_add(250, Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(5), second).await.unwrap().unwrap();
    }
}
