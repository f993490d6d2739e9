//! The per-token rate limit: an in-memory token bucket per API token. Time is passed
//! in, so the arithmetic is tested without sleeping.
//!
//! Memory is bounded: once the table is large, buckets that have refilled completely
//! (indistinguishable from fresh ones) are dropped.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::RateLimit;

/// Beyond this many tracked tokens, full buckets are forgotten.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by API token id.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter applying `limit` to each key separately.
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Mutex::new(HashMap::new()) }
    }

    fn burst(&self) -> f64 {
        f64::from(self.limit.burst.max(1))
    }

    fn refill(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.limit.per_second).min(self.burst())
    }

    /// Takes one request from `key`'s bucket at time `now`.
    ///
    /// # Errors
    /// How long until a request would be allowed, when the bucket is empty.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let burst = self.burst();
            buckets.retain(|_, b| self.refill(*b, now) < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst(), at: now });
        let tokens = self.refill(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket { tokens: tokens - 1.0, at: now };
            return Ok(());
        }
        *bucket = Bucket { tokens, at: now };
        let per_second = self.limit.per_second;
        if per_second <= 0.0 || !per_second.is_finite() {
            return Err(Duration::from_secs(3600));
        }
        Err(Duration::from_secs_f64(((1.0 - tokens) / per_second).min(3600.0)))
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimit { per_second, burst })
    }

    #[test]
    fn burst_then_refill_at_rate() {
        let limiter = limiter(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", t0).is_ok());
        }
        let wait = limiter.check("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.check("a", t0 + Duration::from_millis(499)).is_err());
        assert!(limiter.check("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(limiter.check("a", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn keys_have_separate_buckets() {
        let limiter = limiter(1.0, 1);
        let t0 = Instant::now();
        assert!(limiter.check("a", t0).is_ok());
        assert!(limiter.check("a", t0).is_err());
        assert!(limiter.check("b", t0).is_ok());
    }

    #[test]
    fn refill_never_exceeds_burst() {
        let limiter = limiter(100.0, 2);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        assert!(limiter.check("a", later).is_ok());
        assert!(limiter.check("a", later).is_ok());
        assert!(limiter.check("a", later).is_err());
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = limiter(1000.0, 1);
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS {
            limiter.check(&i.to_string(), t0).unwrap();
        }
        // A second later every bucket is full again, so all may be forgotten.
        limiter.check("new", t0 + Duration::from_secs(1)).unwrap();
        assert!(limiter.tracked() <= 2);
    }
}
