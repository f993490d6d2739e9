//! Per-event-type retry schedules, cached briefly. The claim step resolves the event
//! types of each claimed batch (one store read per type not seen within [`TTL`]), and
//! each delivery then uses its type's schedule, or the global one when none is set. A
//! schedule changed through the API applies to attempts classified after the cache
//! entry expires.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use herald_core::RetrySchedule;
use herald_store::{DynStore, StoreError};

/// How long a looked-up schedule is used before it is read again.
pub(crate) const TTL: Duration = Duration::from_secs(1);
/// Entries kept before the cache starts over (event types are few in practice).
const MAX_ENTRIES: usize = 10_000;

type Entry = (Instant, Option<Arc<RetrySchedule>>);

/// The event types' own schedules, as last read.
#[derive(Debug, Default)]
pub(crate) struct TypeSchedules {
    table: Mutex<HashMap<String, Entry>>,
}

impl TypeSchedules {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the schedules of `event_types` not read within [`TTL`]. A failed read
    /// keeps the previous entry (or none: the global schedule) and is logged.
    pub async fn refresh<'a>(&self, store: &DynStore, event_types: impl IntoIterator<Item = &'a str>) {
        let mut stale: Vec<&str> = {
            let table = self.lock();
            event_types
                .into_iter()
                .filter(|t| table.get(*t).is_none_or(|(read_at, _)| read_at.elapsed() >= TTL))
                .collect()
        };
        stale.sort_unstable();
        stale.dedup();
        for event_type in stale {
            let found = match store.get_event_type_retry_schedule(event_type).await {
                Ok(schedule) => schedule.map(Arc::new),
                // Messages may name types that were never created (or were expunged).
                Err(StoreError::NotFound(_)) => None,
                Err(error) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        event_type,
                        "reading the event type's retry schedule failed; using the last known one"
                    );
                    continue;
                }
            };
            let mut table = self.lock();
            if table.len() >= MAX_ENTRIES {
                table.clear();
            }
            table.insert(event_type.to_owned(), (Instant::now(), found));
        }
    }

    /// The schedule last read for `event_type`, if it has one.
    pub fn get(&self, event_type: &str) -> Option<Arc<RetrySchedule>> {
        self.lock().get(event_type).and_then(|(_, schedule)| schedule.clone())
    }
}
