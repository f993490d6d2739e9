//! The record step: attempt results go to one recorder task that writes whatever has
//! queued up in a single `record_attempts` call. Under load that turns hundreds of
//! commits into a few; when idle a result is written at once (no artificial delay).
//!
//! Each sender waits for its own result to be committed, so a delivery task that has
//! returned is on disk. A write that keeps failing is given up after a few tries: the
//! delivery keeps its lease and is sent again once the lease runs out (at-least-once).
//!
//! After a commit the recorder remembers the earliest retry it scheduled, so the
//! dispatcher can wake exactly then instead of at its next sweep.

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use herald_core::{Clock, EndpointId};
use herald_metrics::{AttemptOutcome, Metrics};
use herald_store::{AttemptResult, DynStore, NextStep};
use tokio::sync::{Notify, mpsc, oneshot};

/// Most results written in one call.
const MAX_BATCH: usize = 512;
/// Waits between tries of a failed write; one try more than there are entries.
const BACKOFF: [Duration; 3] = [Duration::from_millis(50), Duration::from_millis(250), Duration::from_secs(1)];

/// The earliest retry time the recorder has committed and the dispatcher not yet
/// acted on, with a signal for when it moves earlier.
#[derive(Debug, Default)]
pub(crate) struct RetryWatch {
    earliest: Mutex<Option<DateTime<Utc>>>,
    changed: Notify,
}

impl RetryWatch {
    fn offer(&self, at: DateTime<Utc>) {
        let mut earliest = self.earliest.lock().unwrap_or_else(PoisonError::into_inner);
        if earliest.is_none_or(|current| at < current) {
            *earliest = Some(at);
            self.changed.notify_one();
        }
    }

    /// The earliest known retry after `looked_at`, the time a claim has already looked
    /// at; a retry due by then was picked up by that claim and is forgotten.
    pub fn next_after(&self, looked_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut earliest = self.earliest.lock().unwrap_or_else(PoisonError::into_inner);
        earliest.take_if(|at| *at <= looked_at);
        *earliest
    }

    /// Resolves when an earlier retry time is known.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

struct Pending {
    result: AttemptResult,
    committed: oneshot::Sender<bool>,
}

/// The sending side, one clone per delivery task.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    tx: mpsc::Sender<Pending>,
}

/// What the recorder task needs besides its queue.
pub(crate) struct RecorderTask {
    pub store: DynStore,
    pub retries: std::sync::Arc<RetryWatch>,
    pub clock: Clock,
    /// Endpoints failing for longer than this are disabled (see `WorkerConfig`).
    pub disable_after_failing: Option<Duration>,
    pub metrics: std::sync::Arc<Metrics>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts the recorder task. It ends when every [`Recorder`] clone is dropped.
    pub fn spawn(task: RecorderTask, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(task, rx));
        Self { tx }
    }

    /// Queues `result` and waits until it is committed. `false` means it was not
    /// (the store kept failing, or the recorder is gone).
    pub async fn record(&self, result: AttemptResult) -> bool {
        let (committed, done) = oneshot::channel();
        if self.tx.send(Pending { result, committed }).await.is_err() {
            return false;
        }
        done.await.unwrap_or(false)
    }
}

async fn run(task: RecorderTask, mut rx: mpsc::Receiver<Pending>) {
    let RecorderTask { store, retries, .. } = &task;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results: Vec<AttemptResult> = batch.iter().map(|p| p.result.clone()).collect();
        let cutoff = task.disable_after_failing.and_then(|period| {
            let period = chrono::TimeDelta::from_std(period).ok()?;
            herald_core::to_millis((task.clock)()).checked_sub_signed(period)
        });
        let disabled = write(store, results, cutoff).await;
        let ok = disabled.is_some();
        if let Some(disabled) = &disabled {
            count(&task.metrics, &batch, disabled);
            let earliest = batch
                .iter()
                .filter_map(|p| match p.result.next {
                    NextStep::RetryAt(at) => Some(at),
                    _ => None,
                })
                .min();
            if let Some(at) = earliest {
                retries.offer(at);
            }
        }
        for pending in batch.drain(..) {
            // The delivery task may have gone (shutdown); nothing to tell it then.
            let _ = pending.committed.send(ok);
        }
    }
}

/// Counts the committed attempts by outcome; a failure whose endpoint the store
/// disabled for failing too long counts as disabling it.
fn count(metrics: &Metrics, batch: &[Pending], disabled: &[EndpointId]) {
    for pending in batch {
        let outcome = match pending.result.next {
            NextStep::Delivered => AttemptOutcome::Delivered,
            NextStep::EndpointDisabled => AttemptOutcome::EndpointDisabled,
            _ if disabled.contains(&pending.result.attempt.endpoint_id) => AttemptOutcome::EndpointDisabled,
            NextStep::RetryAt(_) => AttemptOutcome::Retry,
            NextStep::Failed => AttemptOutcome::Failed,
        };
        metrics.attempt(outcome);
    }
    for endpoint in disabled {
        tracing::warn!(endpoint.id = %endpoint, "endpoint has failed without a success for too long; disabled it");
    }
}

/// Writes `results`; `None` when the store kept failing, else the endpoints disabled
/// for failing since before `cutoff`.
async fn write(
    store: &DynStore,
    results: Vec<AttemptResult>,
    cutoff: Option<DateTime<Utc>>,
) -> Option<Vec<EndpointId>> {
    let count = results.len();
    for (try_no, pause) in BACKOFF.iter().map(Some).chain([None]).enumerate() {
        match store.record_attempts_disabling(results.clone(), cutoff).await {
            Ok(disabled) => return Some(disabled),
            Err(error) => match pause {
                Some(pause) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        attempts.count = count,
                        try_no,
                        "recording attempts failed; retrying"
                    );
                    tokio::time::sleep(*pause).await;
                }
                None => {
                    tracing::error!(
                        error = &error as &dyn std::error::Error,
                        attempts.count = count,
                        "recording attempts failed; their deliveries will be sent again when their lease runs out"
                    );
                }
            },
        }
    }
    None
}
