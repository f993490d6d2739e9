//! `/api/v1/event-type/{event_type_name}/retry-schedule`: read and set the retry
//! schedule of one event type. Server-wide: scoped tokens get 403.
//!
//! A schedule is a list of delays in the contract's `Duration` shape (`{"secs","nanos"}`,
//! as Rust's `std::time::Duration` serialises). Entry *i* is the wait before attempt
//! *i + 1*, the same meaning as `HERALD_RETRY_SCHEDULE`, so `[0s, 5s]` allows two
//! attempts in all. `null` (or no `retrySchedule`) clears it and the global schedule
//! applies again. The limits (1 to 50 entries, each at most a week) are those of
//! [`herald_core::RetrySchedule`]; the worker picks up a change within a second.

use std::time::Duration;

use axum::extract::State;
use herald_core::{RetrySchedule, ValidationError, validate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Validate},
    params::EventTypePath,
};

/// Nanoseconds in a millisecond: stores keep delays to the millisecond.
const NANOS_PER_MILLI: u32 = 1_000_000;

/// A delay: whole seconds plus nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Duration)]
pub struct DurationInOut {
    pub secs: u64,
    pub nanos: u32,
}

impl From<Duration> for DurationInOut {
    fn from(d: Duration) -> Self {
        Self { secs: d.as_secs(), nanos: d.subsec_nanos() }
    }
}

/// The delays of a schedule, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = RetrySchedule)]
pub struct RetryScheduleList(pub Vec<DurationInOut>);

/// An event type's retry schedule, as set and as returned; `null` means the global one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryScheduleInOut {
    #[serde(default)]
    pub retry_schedule: Option<RetryScheduleList>,
}

impl From<Option<RetrySchedule>> for RetryScheduleInOut {
    fn from(schedule: Option<RetrySchedule>) -> Self {
        Self {
            retry_schedule: schedule
                .map(|s| RetryScheduleList(s.delays().iter().copied().map(DurationInOut::from).collect())),
        }
    }
}

impl Validate for RetryScheduleInOut {
    fn validate(&self) -> Result<(), ValidationError> {
        self.to_schedule().map(drop)
    }
}

impl RetryScheduleInOut {
    /// The core schedule this body sets (`None` clears it).
    ///
    /// # Errors
    /// One violation located at the list or the offending entry: a delay finer than a
    /// millisecond or with 10⁹ nanoseconds or more, an empty or too long list, or a
    /// delay over the maximum.
    fn to_schedule(&self) -> Result<Option<RetrySchedule>, ValidationError> {
        let Some(RetryScheduleList(entries)) = &self.retry_schedule else { return Ok(None) };
        let mut delays = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let index = i.to_string();
            if entry.nanos >= 1_000 * NANOS_PER_MILLI || !entry.nanos.is_multiple_of(NANOS_PER_MILLI) {
                let msg = "nanos must be a whole number of milliseconds below one second";
                return Err(ValidationError::one(&["body", "retrySchedule", &index, "nanos"], msg));
            }
            let delay = Duration::new(entry.secs, entry.nanos);
            // A schedule of this one delay fails only if the delay itself is too long.
            if let Err(err) = RetrySchedule::new(vec![delay]) {
                return Err(ValidationError::one(&["body", "retrySchedule", &index], err.to_string()));
            }
            delays.push(delay);
        }
        RetrySchedule::new(delays)
            .map(Some)
            .map_err(|err| ValidationError::one(&["body", "retrySchedule"], err.to_string()))
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    validate::name(name).map_err(|msg| ApiError::invalid(&["path", "event_type_name"], msg))
}

/// Get Retry Schedule.
#[utoipa::path(get, path = "/api/v1/event-type/{event_type_name}/retry-schedule",
    operation_id = "v1.event-type.get-retry-schedule", tag = "Event Type",
    params(EventTypePath),
    responses((status = 200, body = RetryScheduleInOut)))]
pub(crate) async fn get(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(EventTypePath { event_type_name: name }): Keys<EventTypePath>,
) -> Result<axum::Json<RetryScheduleInOut>, ApiError> {
    auth.require_admin()?;
    check_name(&name)?;
    Ok(axum::Json(ctx.store.get_event_type_retry_schedule(&name).await?.into()))
}

/// Set Retry Schedule.
#[utoipa::path(put, path = "/api/v1/event-type/{event_type_name}/retry-schedule",
    operation_id = "v1.event-type.set-retry-schedule", tag = "Event Type",
    params(EventTypePath),
    request_body = RetryScheduleInOut,
    responses((status = 200, body = RetryScheduleInOut)))]
pub(crate) async fn set(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(EventTypePath { event_type_name: name }): Keys<EventTypePath>,
    Json(input): Json<RetryScheduleInOut>,
) -> Result<axum::Json<RetryScheduleInOut>, ApiError> {
    auth.require_admin()?;
    check_name(&name)?;
    let schedule = input.to_schedule()?;
    ctx.store.set_event_type_retry_schedule(&name, schedule.clone()).await?;
    Ok(axum::Json(schedule.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(delays: &[(u64, u32)]) -> RetryScheduleInOut {
        let list = delays.iter().map(|&(secs, nanos)| DurationInOut { secs, nanos }).collect();
        RetryScheduleInOut { retry_schedule: Some(RetryScheduleList(list)) }
    }

    fn assert_refused_at(delays: &[(u64, u32)], expected: &[&str]) {
        let violation = body(delays).to_schedule().unwrap_err().0.remove(0);
        assert_eq!(violation.loc, expected, "{delays:?}");
    }

    #[test]
    fn delays_convert_both_ways_to_the_millisecond() {
        let input = body(&[(0, 0), (0, 10 * NANOS_PER_MILLI), (300, 0)]);
        let schedule = input.to_schedule().unwrap().unwrap();
        assert_eq!(schedule.to_string(), "0s,10ms,5m");
        assert_eq!(RetryScheduleInOut::from(Some(schedule)), input);
        assert_eq!(RetryScheduleInOut::default().to_schedule().unwrap(), None);
    }

    #[test]
    fn bad_schedules_name_the_list_or_the_entry() {
        assert_refused_at(&[], &["body", "retrySchedule"]);
        assert_refused_at(&[(1, 0); 51], &["body", "retrySchedule"]);
        assert_refused_at(&[(0, 0), (8 * 86_400, 0)], &["body", "retrySchedule", "1"]);
        assert_refused_at(&[(0, 1)], &["body", "retrySchedule", "0", "nanos"]);
        assert_refused_at(&[(1, 1_000 * NANOS_PER_MILLI)], &["body", "retrySchedule", "0", "nanos"]);
    }

    #[test]
    fn the_body_uses_the_contract_shape() {
        let json = serde_json::to_value(body(&[(5, 0)])).unwrap();
        assert_eq!(json, serde_json::json!({"retrySchedule": [{"secs": 5, "nanos": 0}]}));
        let cleared: RetryScheduleInOut = serde_json::from_str("{}").unwrap();
        assert_eq!(cleared.retry_schedule, None);
    }
}
