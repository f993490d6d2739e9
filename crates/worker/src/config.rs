//! [`WorkerConfig`]: the dispatcher's settings, their defaults and the rules that tie
//! them together (a lease must outlast a request, caps must leave room for other
//! endpoints). Reading files and the environment is the server's job (its `[worker]`
//! section parses into this type); this module only describes and checks it.

use std::time::Duration;

use herald_core::{RetrySchedule, net::AllowList};

/// The dispatcher's settings. In the config file durations are written in milliseconds
/// (`*_ms` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Deadline for one attempt: connecting, sending and reading the (capped) response.
    pub request_timeout: Duration,
    /// Delays before successive attempts, e.g. `"0s,5s,5m,30m,2h,5h,10h,10h"`.
    pub retry_schedule: RetrySchedule,
    /// How long a claimed delivery stays reserved for this worker. A worker that dies
    /// loses its claims when the lease runs out, and another worker sends them.
    pub lease: Duration,
    /// Most deliveries claimed in one store call.
    pub batch_size: usize,
    /// Most deliveries held in memory at once (sending or waiting for their endpoint);
    /// this also bounds how much is claimed.
    pub max_in_flight: usize,
    /// Most concurrent requests to one endpoint.
    pub max_in_flight_per_endpoint: usize,
    /// Most deliveries of one endpoint waiting in memory for a free request slot. Past
    /// that the endpoint is skipped by claims (and a delivery claimed for it anyway is
    /// handed back), so one slow endpoint cannot fill [`Self::max_in_flight`].
    pub max_queued_per_endpoint: usize,
    /// The periodic sweep for due deliveries; a safety net, since accepted messages
    /// wake the dispatcher at once and known retry times are waited for exactly.
    pub poll_interval: Duration,
    /// Destination ranges opened despite the SSRF guard (`HERALD_ALLOW_CIDRS`).
    pub allow_cidrs: AllowList,
    /// Shortest wait honoured from a 429/503 `Retry-After`.
    pub retry_after_min: Duration,
    /// Longest wait honoured from a 429/503 `Retry-After`; longer values are cut to it.
    pub retry_after_max: Duration,
    /// Most bytes of a response body read and kept in the attempt log.
    pub max_response_bytes: usize,
    /// An endpoint that has failed without a success for this long is disabled at its
    /// next failure; `0` in the file (`None`) never disables for that reason.
    pub disable_after_failing: Option<Duration>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(15),
            retry_schedule: RetrySchedule::default(),
            lease: Duration::from_secs(60),
            batch_size: 100,
            max_in_flight: 500,
            max_in_flight_per_endpoint: 20,
            max_queued_per_endpoint: 20,
            poll_interval: Duration::from_secs(1),
            allow_cidrs: AllowList::default(),
            retry_after_min: Duration::from_secs(1),
            retry_after_max: Duration::from_secs(3600),
            max_response_bytes: 16 * 1024,
            disable_after_failing: Some(Duration::from_secs(5 * 24 * 3600)),
        }
    }
}

/// A setting out of range, or two settings that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid worker setting `{key}`: {reason}")]
pub struct ConfigError {
    /// The offending key, as written in the `[worker]` section.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Time a worker needs beyond the request timeout to record an attempt before its
/// lease runs out; without it, a slow final write could let a second worker resend.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

impl WorkerConfig {
    /// Checks the values and how they relate.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, reason: String| Err(ConfigError { key, reason });
        if self.request_timeout.is_zero() {
            return err("request_timeout_ms", "must be more than 0".into());
        }
        if self.lease < self.request_timeout + LEASE_MARGIN {
            return err("lease_ms", format!("must be at least the request timeout plus {}s", LEASE_MARGIN.as_secs()));
        }
        if self.poll_interval.is_zero() {
            return err("poll_interval_ms", "must be more than 0".into());
        }
        for (key, value) in [
            ("batch_size", self.batch_size),
            ("max_in_flight", self.max_in_flight),
            ("max_in_flight_per_endpoint", self.max_in_flight_per_endpoint),
            ("max_response_bytes", self.max_response_bytes),
        ] {
            if value == 0 {
                return err(key, "must be at least 1".into());
            }
        }
        if self.max_in_flight_per_endpoint + self.max_queued_per_endpoint >= self.max_in_flight {
            return err(
                "max_in_flight",
                "must exceed max_in_flight_per_endpoint + max_queued_per_endpoint, \
                 so one endpoint cannot take every slot"
                    .into(),
            );
        }
        if self.retry_after_min > self.retry_after_max {
            return err("retry_after_min_ms", "must not exceed retry_after_max_ms".into());
        }
        Ok(())
    }

    /// The most deliveries of one endpoint held in memory (sending plus waiting).
    pub(crate) fn max_held_per_endpoint(&self) -> usize {
        self.max_in_flight_per_endpoint + self.max_queued_per_endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_documentation() {
        let c = WorkerConfig::default();
        c.validate().unwrap();
        assert_eq!(c.request_timeout, Duration::from_secs(15));
        assert_eq!(c.retry_schedule.to_string(), "0s,5s,5m,30m,2h,5h,10h,10h");
        assert_eq!(c.max_response_bytes, 16 * 1024);
        assert!(c.allow_cidrs.cidrs().is_empty());
    }

    #[test]
    fn contradictions_name_the_key() {
        let short_lease = WorkerConfig { lease: Duration::from_secs(15), ..WorkerConfig::default() };
        assert_eq!(short_lease.validate().unwrap_err().key, "lease_ms");

        let greedy = WorkerConfig { max_in_flight: 40, ..WorkerConfig::default() };
        assert_eq!(greedy.validate().unwrap_err().key, "max_in_flight");

        let inverted = WorkerConfig { retry_after_min: Duration::from_secs(7200), ..WorkerConfig::default() };
        assert_eq!(inverted.validate().unwrap_err().key, "retry_after_min_ms");

        let no_batch = WorkerConfig { batch_size: 0, ..WorkerConfig::default() };
        assert_eq!(no_batch.validate().unwrap_err().key, "batch_size");
    }
}
