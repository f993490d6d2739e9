//! Records for the store's upkeep use cases: what a retention sweep removed and how
//! deep the delivery queue is, and the endpoint-health rule both backends apply when
//! recording attempts. The methods are on [`Upkeep`], and
//! the health rule is applied by [`crate::AttemptLog::record_attempts_disabling`].

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{EndpointId, MessageId};

use crate::{AttemptResult, NextStep, StoreResult};

/// What one [`Upkeep::sweep_retention`] call removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionSwept {
    /// Messages whose payload was dropped because their retention ran out.
    pub payloads_dropped: usize,
    /// Attempt log entries deleted for being older than the attempt retention.
    pub attempts_deleted: usize,
    /// Ingest source log entries deleted; they follow the attempt retention.
    pub ingest_logs_deleted: usize,
}

impl RetentionSwept {
    /// Whether a batch hit `limit` in any part, so more may be left to sweep.
    pub fn is_full(&self, limit: usize) -> bool {
        self.payloads_dropped >= limit || self.attempts_deleted >= limit || self.ingest_logs_deleted >= limit
    }
}

/// Deliveries still to be made: the queue the dispatchers work through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Waiting for their (next) attempt.
    pub pending: u64,
    /// Claimed by a worker and being sent (or held under a lease).
    pub sending: u64,
}

/// How a batch of attempt results changes its endpoints' health marks (the time of the
/// first failure since the last success), folded per endpoint in result order so every
/// backend applies the same rule with set-based statements.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HealthChanges<'a> {
    /// The last result succeeded (or a 410 disabled the endpoint): clear the mark.
    pub recovered: Vec<&'a EndpointId>,
    /// A success then failures: the mark becomes the first failure after the success.
    pub failing_anew: Vec<(&'a EndpointId, DateTime<Utc>)>,
    /// Only failures: an existing mark stays, else the first failure sets it; an
    /// endpoint failing since before the cutoff is disabled.
    pub failing: Vec<FailingEndpoint<'a>>,
}

/// An endpoint with only failures in a batch.
#[derive(Debug, PartialEq, Eq)]
pub struct FailingEndpoint<'a> {
    pub id: &'a EndpointId,
    /// The batch's first failure of this endpoint.
    pub first_failure: DateTime<Utc>,
    /// Its deliveries in the batch scheduled for a retry; they fail if it is disabled.
    pub retrying: Vec<&'a MessageId>,
}

impl<'a> HealthChanges<'a> {
    /// Folds `results` per endpoint.
    pub fn of(results: &'a [AttemptResult]) -> Self {
        enum State<'a> {
            Ok,
            Failing { since: DateTime<Utc>, after_success: bool, retrying: Vec<&'a MessageId> },
        }
        let mut order = Vec::new();
        let mut states: HashMap<&EndpointId, State<'a>> = HashMap::new();
        for AttemptResult { attempt, next, .. } in results {
            let id = &attempt.endpoint_id;
            let prior = states.remove(id);
            if prior.is_none() {
                order.push(id);
            }
            let state = match (next, prior) {
                (NextStep::Delivered | NextStep::EndpointDisabled, _) => State::Ok,
                (_, Some(State::Failing { since, after_success, mut retrying })) => {
                    if matches!(next, NextStep::RetryAt(_)) {
                        retrying.push(&attempt.msg_id);
                    }
                    State::Failing { since, after_success, retrying }
                }
                (_, prior) => State::Failing {
                    since: attempt.created_at,
                    after_success: prior.is_some(),
                    retrying: if matches!(next, NextStep::RetryAt(_)) { vec![&attempt.msg_id] } else { vec![] },
                },
            };
            states.insert(id, state);
        }
        let mut changes = Self::default();
        for id in order {
            match states.remove(id) {
                Some(State::Ok) | None => changes.recovered.push(id),
                Some(State::Failing { since, after_success: true, .. }) => changes.failing_anew.push((id, since)),
                Some(State::Failing { since, after_success: false, retrying }) => {
                    changes.failing.push(FailingEndpoint { id, first_failure: since, retrying });
                }
            }
        }
        changes
    }
}

/// Health checks, retention and the queue's depth.
#[async_trait]
pub trait Upkeep: Send + Sync + 'static {
    /// Checks the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// One bounded retention step: drops the payload of up to `limit` messages whose
    /// `expires_at` is before `now`, and deletes up to `limit` attempts and up to
    /// `limit` ingest log entries created before `attempts_before`. Callers repeat
    /// while [`RetentionSwept::is_full`].
    async fn sweep_retention(
        &self,
        now: DateTime<Utc>,
        attempts_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<RetentionSwept>;
    /// How many deliveries are pending and sending, across all applications.
    async fn queue_depth(&self) -> StoreResult<QueueDepth>;
}
