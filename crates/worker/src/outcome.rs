//! The classify step: what one exchange means for its delivery. 2xx is delivered; a
//! 3xx is a failure (redirects are never followed); 410 disables the endpoint; any
//! other answer, a timeout or a refused destination is retried on the schedule, with a
//! 429/503 `Retry-After` stretching the wait within bounds; past the last entry the
//! delivery fails. Pure functions: time and randomness come in as arguments.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::RetrySchedule;
use herald_store::NextStep;
use reqwest::StatusCode;

use crate::client::Exchange;

/// The rules `classify` applies, taken from the worker settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy<'a> {
    pub schedule: &'a RetrySchedule,
    pub retry_after_min: Duration,
    pub retry_after_max: Duration,
}

/// The next step after `exchange`, the attempt with 0-based index `attempt`.
///
/// `now` is when the exchange ended, `unit` a random number in `[0, 1)` for jitter.
pub(crate) fn classify(
    exchange: &Exchange,
    attempt: u32,
    now: DateTime<Utc>,
    unit: f64,
    policy: RetryPolicy<'_>,
) -> NextStep {
    let retry_after = match exchange {
        Exchange::Response { status, .. } if status.is_success() => return NextStep::Delivered,
        Exchange::Response { status: StatusCode::GONE, .. } => return NextStep::EndpointDisabled,
        Exchange::Response { status, retry_after: Some(value), .. }
            if matches!(*status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) =>
        {
            parse_retry_after(value, now).map(|d| d.clamp(policy.retry_after_min, policy.retry_after_max))
        }
        Exchange::Response { .. } | Exchange::NoResponse { .. } => None,
    };
    let next_index = usize::try_from(attempt).map_or(usize::MAX, |a| a.saturating_add(1));
    let Some(delay) = policy.schedule.delay_before(next_index, unit) else {
        return NextStep::Failed;
    };
    let delay = retry_after.map_or(delay, |asked| delay.max(asked));
    // A schedule entry is at most a week, so this cannot overflow in practice; fail
    // rather than panic if it somehow would.
    match chrono::TimeDelta::from_std(delay).ok().and_then(|d| now.checked_add_signed(d)) {
        Some(at) => NextStep::RetryAt(at),
        None => NextStep::Failed,
    }
}

/// Reads `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in
/// the past means "now"; anything unreadable is ignored.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<&str>) -> Exchange {
        Exchange::Response {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: retry_after.map(str::to_owned),
            body: String::new(),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn policy(schedule: &RetrySchedule) -> RetryPolicy<'_> {
        RetryPolicy { schedule, retry_after_min: Duration::from_secs(1), retry_after_max: Duration::from_secs(3600) }
    }

    #[test]
    fn status_codes_map_to_steps() {
        let schedule: RetrySchedule = "0s,10s,20s".parse().unwrap();
        let now = at(1_000);
        // `unit` 0.5 is the un-jittered delay.
        let table = [
            (200, NextStep::Delivered),
            (204, NextStep::Delivered),
            (299, NextStep::Delivered),
            (301, NextStep::RetryAt(at(1_010))),
            (302, NextStep::RetryAt(at(1_010))),
            (400, NextStep::RetryAt(at(1_010))),
            (410, NextStep::EndpointDisabled),
            (500, NextStep::RetryAt(at(1_010))),
        ];
        for (status, expected) in table {
            assert_eq!(classify(&response(status, None), 0, now, 0.5, policy(&schedule)), expected, "{status}");
        }
        let timeout = Exchange::NoResponse { reason: "timed out".into() };
        assert_eq!(classify(&timeout, 1, now, 0.5, policy(&schedule)), NextStep::RetryAt(at(1_020)));
    }

    #[test]
    fn the_last_attempt_fails_the_delivery() {
        let schedule: RetrySchedule = "0s,10s,20s".parse().unwrap();
        assert_eq!(classify(&response(500, None), 2, at(0), 0.5, policy(&schedule)), NextStep::Failed);
        assert_eq!(classify(&response(500, None), 9, at(0), 0.5, policy(&schedule)), NextStep::Failed);
        assert_eq!(classify(&response(200, None), 2, at(0), 0.5, policy(&schedule)), NextStep::Delivered);
    }

    #[test]
    fn retry_after_stretches_the_wait_within_bounds() {
        let schedule: RetrySchedule = "0s,10s,20s".parse().unwrap();
        let now = at(1_000);
        let step = |status, value| classify(&response(status, Some(value)), 0, now, 0.5, policy(&schedule));
        assert_eq!(step(429, "120"), NextStep::RetryAt(at(1_120)));
        assert_eq!(step(503, "120"), NextStep::RetryAt(at(1_120)));
        // Shorter than the schedule: the schedule wins.
        assert_eq!(step(429, "2"), NextStep::RetryAt(at(1_010)));
        // Capped at an hour.
        assert_eq!(step(429, "999999"), NextStep::RetryAt(at(1_000 + 3600)));
        // Only 429 and 503 are read.
        assert_eq!(step(500, "120"), NextStep::RetryAt(at(1_010)));
        // An HTTP date.
        let date = "Thu, 01 Jan 1970 00:20:00 GMT";
        assert_eq!(step(429, date), NextStep::RetryAt(at(1_200)));
        // Garbage is ignored.
        assert_eq!(step(429, "soon"), NextStep::RetryAt(at(1_010)));
    }

    #[test]
    fn retry_after_values_parse() {
        let now = at(1_000);
        assert_eq!(parse_retry_after(" 30 ", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn jitter_moves_the_retry_within_twenty_percent() {
        let schedule: RetrySchedule = "0s,100s".parse().unwrap();
        let early = classify(&response(500, None), 0, at(0), 0.0, policy(&schedule));
        let late = classify(&response(500, None), 0, at(0), 0.999, policy(&schedule));
        assert_eq!(early, NextStep::RetryAt(at(80)));
        let NextStep::RetryAt(late) = late else { panic!("expected a retry") };
        assert!(late > at(119) && late < at(120) + chrono::TimeDelta::milliseconds(1));
    }
}
