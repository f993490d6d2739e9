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

    /// The earliest known retry after `now`; a time already reached is forgotten,
    /// since the claim that follows picks it up.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut earliest = self.earliest.lock().unwrap_or_else(PoisonError::into_inner);
        earliest.take_if(|at| *at <= now);
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

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts the recorder task. It ends when every [`Recorder`] clone is dropped.
    pub fn spawn(store: DynStore, retries: std::sync::Arc<RetryWatch>, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(store, retries, rx));
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

async fn run(store: DynStore, retries: std::sync::Arc<RetryWatch>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results: Vec<AttemptResult> = batch.iter().map(|p| p.result.clone()).collect();
        let ok = write(&store, results).await;
        if ok {
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

async fn write(store: &DynStore, results: Vec<AttemptResult>) -> bool {
    let count = results.len();
    for (try_no, pause) in BACKOFF.iter().map(Some).chain([None]).enumerate() {
        match store.record_attempts(results.clone()).await {
            Ok(()) => return true,
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
    false
}
