//! A small in-memory cache of what a bearer or URL token resolved to, keyed by the
//! token's hash, so a steady stream of requests costs no store read each.
//!
//! Entries expire after a fixed time, so a change made on another node is seen within
//! it; a change on this node clears the cache at once. Only found values are kept: an
//! unknown token always asks the store. The cache is bounded: past its size it drops
//! the expired entries, and starts over when that is not enough.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

/// Beyond this many entries a cache starts over, bounding memory.
const MAX_ENTRIES: usize = 10_000;

/// Values by token hash, each trusted for `ttl` after it was looked up.
pub(crate) struct TokenHashCache<V> {
    ttl: Duration,
    entries: RwLock<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> TokenHashCache<V> {
    /// An empty cache whose entries live for `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: RwLock::default() }
    }

    /// The value cached for `hash`, unless it has expired by `now`.
    pub(crate) fn get(&self, hash: &str, now: Instant) -> Option<V> {
        // A poisoned lock only means a panic elsewhere mid-update of a plain map;
        // the map itself is still usable.
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(hash).filter(|(_, until)| *until > now).map(|(value, _)| value.clone())
    }

    /// Remembers `value` for `hash` from `now` on.
    pub(crate) fn put(&self, hash: String, value: V, now: Instant) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, (value, now + self.ttl));
    }

    /// Forgets every entry.
    pub(crate) fn clear(&self) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clear() {
        let cache = TokenHashCache::new(Duration::from_secs(5));
        let start = Instant::now();
        cache.put("h".to_owned(), 1, start);
        assert_eq!(cache.get("h", start), Some(1));
        assert_eq!(cache.get("h", start + Duration::from_secs(5)), None);
        assert_eq!(cache.get("other", start), None);
        cache.clear();
        assert_eq!(cache.get("h", start), None);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = TokenHashCache::new(Duration::from_secs(5));
        let start = Instant::now();
        for i in 0..MAX_ENTRIES {
            cache.put(i.to_string(), i, start);
        }
        cache.put("new".to_owned(), 0, start);
        assert_eq!(cache.get("new", start), Some(0));
        assert_eq!(cache.get("1", start), None);
    }
}
