//! Group commit for message creates. A few writer tasks share one queue; each takes
//! whatever has queued up (up to a batch size), runs every request inside one
//! transaction, commits once, then answers each waiter. A request still returns only
//! after its own data is committed. A request that is rejected (a conflict, say) writes
//! nothing and the rest of the batch commits ([`crate::accept`]); one whose statement
//! fails aborts the transaction, and the batch's requests then run one by one.
//!
//! The batch takes its eventId locks first and in one global order, so batches on
//! different nodes do not deadlock on them. Deadlocks on other rows (two batches
//! creating the same apps or idempotency keys in opposite orders) are still possible;
//! PostgreSQL aborts one transaction, and its requests run again alone.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_store::{MessageOutcome, NewMessage, StoreError, StoreResult, handoff::HandoffSlot};
use sqlx::{Acquire, PgPool};
use tokio::sync::{Mutex, Notify, mpsc, oneshot, watch};

use crate::{
    accept::{self, Accepted, JobError},
    error::{self, db},
};

/// The channel other nodes (and this one) listen on for "deliveries are due now".
pub(crate) const CHANNEL: &str = "herald_deliveries";
/// The channel live readers' nodes listen on for "messages committed".
pub(crate) const MESSAGES_CHANNEL: &str = "herald_messages";

struct Job {
    new: NewMessage,
    now: DateTime<Utc>,
    reply: oneshot::Sender<StoreResult<MessageOutcome>>,
}

/// Handle to the writer tasks; they stop when it is dropped.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// What the writer tasks share.
struct Shared {
    pool: PgPool,
    queue: Mutex<mpsc::Receiver<Job>>,
    max_batch: usize,
    waker: Arc<Notify>,
    commits: Arc<watch::Sender<u64>>,
    handoff: Arc<HandoffSlot>,
}

impl Writer {
    /// Starts `tasks` writer tasks on the current runtime.
    pub(crate) fn spawn(
        pool: PgPool,
        tasks: usize,
        max_batch: usize,
        waker: Arc<Notify>,
        commits: Arc<watch::Sender<u64>>,
        handoff: Arc<HandoffSlot>,
    ) -> Self {
        let max_batch = max_batch.max(1);
        let (jobs, queue) = mpsc::channel(max_batch * 4);
        let shared = Arc::new(Shared { pool, queue: Mutex::new(queue), max_batch, waker, commits, handoff });
        for _ in 0..tasks.max(1) {
            tokio::spawn(run_until_closed(shared.clone()));
        }
        Self { jobs }
    }

    /// Queues `new` for the next group commit and waits until that commit is done.
    pub(crate) async fn create(&self, new: NewMessage, now: DateTime<Utc>) -> StoreResult<MessageOutcome> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the PostgreSQL writer has stopped".into());
        self.jobs.send(Job { new, now, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run_until_closed(shared: Arc<Shared>) {
    loop {
        let batch = {
            let mut queue = shared.queue.lock().await;
            let Some(first) = queue.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < shared.max_batch {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        commit(&shared, batch).await;
    }
}

/// How a batch failed; nothing of it was committed.
enum BatchFailure {
    /// Starting or committing the transaction failed: every job gets the error.
    Failed(StoreError),
    /// One job's statement aborted the transaction: the jobs can run again one by one.
    JobAborted(StoreError),
}

/// Commits one batch and answers its waiters.
async fn commit(shared: &Shared, batch: Vec<Job>) {
    match run_batch(shared, &batch).await {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                // The waiter may have gone away (client disconnected): the data is
                // committed regardless, which is what a retry with the same key sees.
                let _ = job.reply.send(result);
            }
        }
        Err(BatchFailure::JobAborted(e)) if batch.len() > 1 => {
            tracing::debug!(error = %e, jobs = batch.len(), "a job aborted its batch; running the jobs alone");
            for job in batch {
                let result = run_alone(shared, &job).await;
                let _ = job.reply.send(result);
            }
        }
        Err(BatchFailure::JobAborted(e)) => {
            let result = if error::is_deadlock(&e) { run_alone(shared, &batch[0]).await } else { Err(e) };
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(result);
            }
        }
        Err(BatchFailure::Failed(e)) => {
            tracing::warn!(error = %e, jobs = batch.len(), "group commit failed");
            for job in batch {
                let _ = job.reply.send(Err(copy_of(&e)));
            }
        }
    }
}

/// Runs one job in its own transaction, once more if it loses a deadlock.
async fn run_alone(shared: &Shared, job: &Job) -> StoreResult<MessageOutcome> {
    let mut tries = 0;
    loop {
        tries += 1;
        match run_batch(shared, std::slice::from_ref(job)).await {
            Ok(mut results) => return results.pop().unwrap_or_else(|| Err(error::internal("a batch lost its job"))),
            Err(BatchFailure::JobAborted(e)) if tries < 2 && error::is_deadlock(&e) => {}
            Err(BatchFailure::JobAborted(e) | BatchFailure::Failed(e)) => return Err(e),
        }
    }
}

/// Whether `result` queued deliveries that are due now and left them for a claim
/// (they were not handed off).
fn queued_due(result: &StoreResult<Accepted>, now: DateTime<Utc>) -> bool {
    result
        .as_ref()
        .is_ok_and(|(outcome, reserved)| reserved.is_none() && herald_store::accept::is_due_now(outcome, now))
}

/// Runs `jobs` in one transaction, commits and hands off what they wrote.
async fn run_batch(shared: &Shared, jobs: &[Job]) -> Result<Vec<StoreResult<MessageOutcome>>, BatchFailure> {
    let results = run_jobs(shared, jobs).await?;
    // Committed: hand the leased deliveries over (a failed commit dropped their room).
    Ok(results
        .into_iter()
        .map(|result| {
            result.map(|(outcome, reserved)| {
                if let (Some(mut reservation), MessageOutcome::Created { message, deliveries }) = (reserved, &outcome) {
                    reservation.send(message, deliveries);
                }
                outcome
            })
        })
        .collect())
}

/// Runs `jobs` in one transaction and commits what they wrote.
async fn run_jobs(shared: &Shared, jobs: &[Job]) -> Result<Vec<StoreResult<Accepted>>, BatchFailure> {
    let failed = |e: sqlx::Error| BatchFailure::Failed(db(e));
    let mut conn = shared.pool.acquire().await.map_err(failed)?;
    let mut tx = conn.begin().await.map_err(failed)?;
    let mut event_ids: Vec<&str> = jobs.iter().filter_map(|j| j.new.message.event_id.as_deref()).collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    accept::lock_event_ids(&mut tx, &event_ids).await.map_err(BatchFailure::Failed)?;
    let mut batch = accept::Batch::new(shared.handoff.sender());
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        match batch.create(&mut tx, &job.new, job.now).await {
            Ok(outcome) => results.push(Ok(outcome)),
            Err(JobError::Rejected(e)) => results.push(Err(e)),
            // Dropping the transaction rolls it back.
            Err(JobError::Aborted(e)) => return Err(BatchFailure::JobAborted(e)),
        }
    }
    let wake = jobs.iter().zip(&results).any(|(job, result)| queued_due(result, job.now));
    if wake {
        // Delivered at commit, to every node listening; identical notifications in one
        // transaction are folded into one.
        sqlx::query("SELECT pg_notify($1, current_schema())").bind(CHANNEL).execute(&mut *tx).await.map_err(failed)?;
    }
    let created = results.iter().any(|r| matches!(r, Ok((MessageOutcome::Created { .. }, _))));
    if created {
        sqlx::query("SELECT pg_notify($1, current_schema())")
            .bind(MESSAGES_CHANNEL)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)?;
    if wake {
        shared.waker.notify_one();
    }
    if created {
        shared.commits.send_modify(|n| *n = n.wrapping_add(1));
    }
    Ok(results)
}

/// The same failure for each waiter of a failed batch (errors are not `Clone`; the
/// original is logged once by the caller).
fn copy_of(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound(what) => StoreError::NotFound(what),
        StoreError::Conflict(text) => StoreError::Conflict(text.clone()),
        StoreError::Unavailable(source) => StoreError::Unavailable(source.to_string().into()),
        StoreError::Internal(source) => StoreError::Internal(source.to_string().into()),
    }
}
