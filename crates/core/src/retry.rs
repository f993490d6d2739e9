//! The retry schedule: how long to wait before each attempt after the first failure,
//! and the jitter that keeps many failing deliveries from retrying in lock-step.

use std::{fmt, str::FromStr, time::Duration};

/// Default schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";
/// Jitter applied to each delay, as a fraction (±20 %).
pub const JITTER: f64 = 0.2;
const MAX_ENTRIES: usize = 50;
const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a schedule string is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryScheduleError {
    /// An entry is not `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
    #[error("`{0}` is not a duration such as 30s, 5m or 2h")]
    BadDuration(String),
    /// The schedule is empty or too long.
    #[error("a schedule needs 1 to {MAX_ENTRIES} entries")]
    BadLength,
    /// One delay is longer than a week.
    #[error("`{0}` is longer than the 7-day maximum delay")]
    TooLong(String),
}

/// Delays before successive attempts; entry *i* is the wait before attempt *i + 1*
/// (the first entry is normally `0s`: send at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// Builds a schedule from delays.
    ///
    /// # Errors
    /// [`RetryScheduleError`] when empty, too long, or a delay exceeds a week.
    pub fn new(delays: Vec<Duration>) -> Result<Self, RetryScheduleError> {
        if delays.is_empty() || delays.len() > MAX_ENTRIES {
            return Err(RetryScheduleError::BadLength);
        }
        if let Some(d) = delays.iter().find(|d| **d > MAX_DELAY) {
            return Err(RetryScheduleError::TooLong(format_duration(*d)));
        }
        Ok(Self(delays))
    }

    /// The delays in order.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }

    /// How many attempts the schedule allows in all.
    pub fn attempts(&self) -> usize {
        self.0.len()
    }

    /// The delay before attempt number `attempt` (0-based), jittered by `unit`, a number
    /// in `[0, 1)` the caller draws; `None` once the schedule is exhausted.
    pub fn delay_before(&self, attempt: usize, unit: f64) -> Option<Duration> {
        let base = *self.0.get(attempt)?;
        let factor = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Some(base.mul_f64(factor))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        DEFAULT_SCHEDULE.parse().expect("the default schedule is valid")
    }
}

impl FromStr for RetrySchedule {
    type Err = RetryScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let delays =
            s.split(',').map(str::trim).filter(|e| !e.is_empty()).map(parse_duration).collect::<Result<Vec<_>, _>>()?;
        Self::new(delays)
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|d| format_duration(*d)).collect();
        f.write_str(&parts.join(","))
    }
}

/// Parses `250ms`, `30s`, `5m`, `2h` or `1d`.
///
/// # Errors
/// [`RetryScheduleError::BadDuration`] for anything else.
pub fn parse_duration(s: &str) -> Result<Duration, RetryScheduleError> {
    let bad = || RetryScheduleError::BadDuration(s.to_owned());
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs_per = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs_per).map(Duration::from_secs).ok_or_else(bad)
}

/// Prints a duration in the largest unit that divides it exactly.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match s {
        0 => "0s".to_owned(),
        s if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn default_schedule_has_eight_attempts() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 8);
        assert_eq!(s.delays()[3], Duration::from_secs(30 * 60));
        assert_eq!(s.to_string(), DEFAULT_SCHEDULE);
    }

    #[test]
    fn bad_schedules_are_rejected_with_the_entry() {
        assert_eq!("5x".parse::<RetrySchedule>(), Err(RetryScheduleError::BadDuration("5x".into())));
        assert_eq!("".parse::<RetrySchedule>(), Err(RetryScheduleError::BadLength));
        assert_eq!("s".parse::<RetrySchedule>(), Err(RetryScheduleError::BadDuration("s".into())));
        assert!(matches!("8d".parse::<RetrySchedule>(), Err(RetryScheduleError::TooLong(_))));
        assert!("99999999999999999999s".parse::<RetrySchedule>().is_err());
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let s: RetrySchedule = "10s".parse().unwrap();
        assert_eq!(s.delay_before(0, 0.0), Some(Duration::from_secs(8)));
        assert_eq!(s.delay_before(0, 0.5), Some(Duration::from_secs(10)));
        assert!(s.delay_before(0, 0.999_999).unwrap() < Duration::from_secs(12));
        assert_eq!(s.delay_before(1, 0.5), None);
    }

    proptest! {
        #[test]
        fn printed_schedules_parse_back(delays in proptest::collection::vec(0u64..600_000, 1..20)) {
            let s = RetrySchedule::new(delays.into_iter().map(Duration::from_millis).collect()).unwrap();
            prop_assert_eq!(s.to_string().parse::<RetrySchedule>(), Ok(s));
        }

        #[test]
        fn parsing_never_panics(input in ".{0,30}") {
            let _ = input.parse::<RetrySchedule>();
        }
    }
}
