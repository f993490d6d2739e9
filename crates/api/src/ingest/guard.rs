//! What keeps an ingest URL from being used to flood Herald: a token bucket per source
//! (the API's [`RateLimiter`], driven by the injected clock so tests move time rather
//! than wait) and the fold of the source's request log, which writes at most
//! [`LOGGED_PER_SECOND`] entries per second for requests that stored nothing and counts
//! the rest into the next entry written.
//!
//! Both live in memory on each node: a source's limit and log allowance are per node,
//! and counts not yet written are lost when the node stops. Accepted requests are
//! never folded: their entry commits with their message.

use std::{
    collections::HashMap,
    fmt,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use herald_core::SourceId;

use crate::{RateLimit, ratelimit::RateLimiter};

/// Entries per source per second for requests that stored nothing (rejected,
/// refused or duplicates); more in the same second are only counted.
pub(crate) const LOGGED_PER_SECOND: u32 = 10;
/// Beyond this many tracked sources, those with nothing left to report are forgotten.
const MAX_TRACKED: usize = 10_000;

/// Requests of a source that got no log entry of their own since its last one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unlogged {
    /// Not stored (bad signature, too large, a duplicate...) beyond the per-second allowance.
    pub not_stored: u64,
    /// Refused with 429 by the source's rate limit.
    pub over_limit: u64,
}

impl Unlogged {
    fn is_empty(self) -> bool {
        self == Self::default()
    }
}

/// Appended to a log entry's text: empty when nothing was folded.
impl fmt::Display for Unlogged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [(self.not_stored, "more not stored"), (self.over_limit, "over the rate limit")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if parts.is_empty() { Ok(()) } else { write!(f, " (and since the previous entry: {})", parts.join(", ")) }
    }
}

#[derive(Debug, Default)]
struct Fold {
    /// The clock's second the allowance counts in.
    second: i64,
    written: u32,
    unlogged: Unlogged,
}

/// The per-source limiter and log fold of one node.
#[derive(Debug)]
pub(crate) struct IngestGuard {
    limiter: Option<RateLimiter>,
    /// Maps the injected clock onto the `Instant`s the limiter counts in.
    epoch: (Instant, DateTime<Utc>),
    folds: Mutex<HashMap<SourceId, Fold>>,
}

impl IngestGuard {
    /// A guard limiting each source to `limit` (`None`: no limit), its clock starting at
    /// `now` (to the millisecond, as handlers read it).
    pub(crate) fn new(limit: Option<RateLimit>, now: DateTime<Utc>) -> Self {
        Self { limiter: limit.map(RateLimiter::new), epoch: (Instant::now(), now), folds: Mutex::default() }
    }

    /// Takes one request from `source`'s bucket; a refused one is counted for its log.
    ///
    /// # Errors
    /// How long until the source may send again.
    pub(crate) fn admit(&self, source: &SourceId, now: DateTime<Utc>) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        // A clock set back before the epoch counts as the epoch: the bucket never refills backwards.
        let since = (now - self.epoch.1).to_std().unwrap_or_default();
        let result = limiter.check(source.as_str(), self.epoch.0 + since);
        if result.is_err() {
            self.with_fold(source, now, |fold| fold.unlogged.over_limit += 1);
        }
        result
    }

    /// Whether a request that stored nothing gets an entry: `Some` with what to fold
    /// into it while the source's allowance for this second lasts, else `None` (counted).
    pub(crate) fn log_unstored(&self, source: &SourceId, now: DateTime<Utc>) -> Option<Unlogged> {
        self.with_fold(source, now, |fold| {
            if fold.written < LOGGED_PER_SECOND {
                fold.written += 1;
                Some(std::mem::take(&mut fold.unlogged))
            } else {
                fold.unlogged.not_stored += 1;
                None
            }
        })
    }

    /// What to fold into an entry written regardless of the allowance (an accepted request).
    pub(crate) fn take(&self, source: &SourceId, now: DateTime<Utc>) -> Unlogged {
        self.with_fold(source, now, |fold| std::mem::take(&mut fold.unlogged))
    }

    /// Puts back counts taken for an entry that was not written after all.
    pub(crate) fn restore(&self, source: &SourceId, now: DateTime<Utc>, taken: Unlogged) {
        self.with_fold(source, now, |fold| {
            fold.unlogged.not_stored += taken.not_stored;
            fold.unlogged.over_limit += taken.over_limit;
        });
    }

    fn with_fold<T>(&self, source: &SourceId, now: DateTime<Utc>, f: impl FnOnce(&mut Fold) -> T) -> T {
        let second = now.timestamp();
        let mut folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
        if folds.len() >= MAX_TRACKED && !folds.contains_key(source) {
            folds.retain(|_, fold| !fold.unlogged.is_empty() || fold.second == second);
            if folds.len() >= MAX_TRACKED {
                // Bounded memory over exact counts: an attacker spraying many sources'
                // URLs at once costs the unwritten counts, never the entries themselves.
                folds.clear();
            }
        }
        let fold = folds.entry(source.clone()).or_default();
        if fold.second != second {
            fold.second = second;
            fold.written = 0;
        }
        f(fold)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn source() -> SourceId {
        SourceId::generate(Utc::now(), &mut rand::rng())
    }

    #[test]
    fn a_flood_is_folded_into_the_next_second_entry() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let guard = IngestGuard::new(None, t0);
        let (a, b) = (source(), source());
        let written = (0..25).filter(|_| guard.log_unstored(&a, t0).is_some()).count();
        assert_eq!(written, LOGGED_PER_SECOND as usize);
        assert_eq!(guard.log_unstored(&b, t0), Some(Unlogged::default()), "each source has its own allowance");
        let next = guard.log_unstored(&a, t0 + TimeDelta::seconds(1)).unwrap();
        assert_eq!(next, Unlogged { not_stored: 15, over_limit: 0 });
        assert_eq!(next.to_string(), " (and since the previous entry: 15 more not stored)");
        assert_eq!(guard.take(&a, t0 + TimeDelta::seconds(1)), Unlogged::default(), "counts are reported once");
    }

    #[test]
    fn refusals_over_the_limit_are_counted_and_restored_counts_kept() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let guard = IngestGuard::new(Some(RateLimit { per_second: 1.0, burst: 2 }), t0);
        let a = source();
        assert!(guard.admit(&a, t0).is_ok());
        assert!(guard.admit(&a, t0).is_ok());
        assert_eq!(guard.admit(&a, t0), Err(Duration::from_secs(1)));
        assert!(guard.admit(&a, t0 + TimeDelta::seconds(1)).is_ok(), "the bucket refills with the injected clock");
        let taken = guard.take(&a, t0);
        assert_eq!(taken, Unlogged { not_stored: 0, over_limit: 1 });
        guard.restore(&a, t0, taken);
        assert_eq!(guard.take(&a, t0).to_string(), " (and since the previous entry: 1 over the rate limit)");
    }

    #[test]
    fn memory_stays_bounded() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let guard = IngestGuard::new(None, t0);
        for _ in 0..MAX_TRACKED {
            guard.log_unstored(&source(), t0);
        }
        guard.log_unstored(&source(), t0 + TimeDelta::seconds(1));
        assert!(guard.folds.lock().unwrap().len() <= 1);
    }
}
