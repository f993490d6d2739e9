//! Herald's domain: prefixed ids, the validated value types the API and store share,
//! the records they exchange, and the retry schedule.
//!
//! Nothing here does I/O, reads the clock or the environment: callers pass time and
//! randomness in, so every rule can be tested as a pure function.

pub mod ids;
pub mod ingest;
pub mod model;
pub mod net;
pub mod retry;
pub mod validate;

pub use ids::{AppId, AttemptId, EndpointId, IdError, IngestLogId, MessageId, SourceId, TaskId, TokenId};
pub use retry::{RetrySchedule, RetryScheduleError};
pub use validate::{ValidationError, Violation};

/// The time source, injected so tests can control it; production passes `Utc::now`.
pub type Clock = std::sync::Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

/// Drops sub-millisecond precision: stores keep times to the millisecond, so values
/// created with a truncated clock read back equal.
pub fn to_millis(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}
