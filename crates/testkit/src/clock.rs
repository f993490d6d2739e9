//! The one clock tests inject into stores, servers and workers: frozen (it moves only
//! when the test moves it) or running (real time plus what the test added). Both start
//! at the real time, so signature verifiers with a tolerance accept what is signed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::{Clock, to_millis};

/// A test-controlled clock; clones share the same offset.
#[derive(Clone)]
pub struct TestClock {
    start: DateTime<Utc>,
    running: bool,
    offset_ms: Arc<AtomicI64>,
}

impl TestClock {
    /// Stands still at the current time (to the millisecond, as stores keep it).
    pub fn frozen() -> Self {
        Self::frozen_at(to_millis(Utc::now()))
    }

    /// Stands still at `start`.
    pub fn frozen_at(start: DateTime<Utc>) -> Self {
        Self { start, running: false, offset_ms: Arc::default() }
    }

    /// Follows real time, plus whatever the test adds.
    pub fn running() -> Self {
        Self { running: true, ..Self::frozen() }
    }

    /// The time it reads now.
    pub fn now(&self) -> DateTime<Utc> {
        let base = if self.running { to_millis(Utc::now()) } else { self.start };
        base + TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `by`.
    ///
    /// # Panics
    /// For a duration too long to count in milliseconds.
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(millis(by), Ordering::SeqCst);
    }

    /// Puts the clock `offset` ahead of where it would be untouched (replacing earlier moves).
    ///
    /// # Panics
    /// For a duration too long to count in milliseconds.
    pub fn set_offset(&self, offset: Duration) {
        self.offset_ms.store(millis(offset), Ordering::SeqCst);
    }

    /// The [`Clock`] to hand to a store, server or worker.
    pub fn clock(&self) -> Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).expect("a test duration fits in milliseconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_when_told() {
        let clock = TestClock::frozen();
        let start = clock.now();
        assert_eq!(clock.clock()(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), start + TimeDelta::seconds(90));
        clock.set_offset(Duration::from_millis(1500));
        assert_eq!(clock.now(), start + TimeDelta::milliseconds(1500));
    }

    #[test]
    fn a_running_clock_adds_the_offset_to_real_time() {
        let clock = TestClock::running();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() >= Utc::now() + TimeDelta::minutes(59));
    }
}
