//! Group commit for message creates. A few writer tasks share one queue; each takes
//! whatever has queued up (up to a batch size), runs every request in its own
//! savepoint inside one transaction, commits once, then answers each waiter. A request
//! still returns only after its own data is committed; a request that fails (a
//! conflict, say) rolls back to its savepoint and the rest of the batch commits.
//!
//! The batch takes its eventId locks first and in one global order, so batches on
//! different nodes do not deadlock on them. Deadlocks on other rows (two batches
//! creating the same apps or idempotency keys in opposite orders) are still possible;
//! PostgreSQL aborts the losing statement, its job rolls back to its savepoint and runs
//! again alone after the batch.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_store::{MessageOutcome, NewMessage, StoreError, StoreResult};
use sqlx::{Acquire, PgPool};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::{
    error::{self, db},
    messages,
};

/// The channel other nodes (and this one) listen on for "deliveries are due now".
pub(crate) const CHANNEL: &str = "herald_deliveries";

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
}

impl Writer {
    /// Starts `tasks` writer tasks on the current runtime.
    pub(crate) fn spawn(pool: PgPool, tasks: usize, max_batch: usize, waker: Arc<Notify>) -> Self {
        let max_batch = max_batch.max(1);
        let (jobs, queue) = mpsc::channel(max_batch * 4);
        let shared = Arc::new(Shared { pool, queue: Mutex::new(queue), max_batch, waker });
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

/// Commits one batch and answers its waiters.
async fn commit(shared: &Shared, batch: Vec<Job>) {
    let results = match run_batch(shared, &batch).await {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(error = %e, jobs = batch.len(), "group commit failed");
            for job in batch {
                let _ = job.reply.send(Err(copy_of(&e)));
            }
            return;
        }
    };
    let mut alone = Vec::new();
    for (job, result) in batch.into_iter().zip(results) {
        match result {
            Err(e) if error::is_deadlock(&e) => alone.push(job),
            // The waiter may have gone away (client disconnected): the data is committed
            // regardless, which is what a retry with the same key sees.
            other => drop(job.reply.send(other)),
        }
    }
    for job in alone {
        let result = run_batch(shared, std::slice::from_ref(&job))
            .await
            .and_then(|mut results| results.pop().unwrap_or_else(|| Err(error::internal("a batch lost its job"))));
        let _ = job.reply.send(result);
    }
}

/// Whether `result` queued deliveries that are due now.
fn queued_due(result: &StoreResult<MessageOutcome>, now: DateTime<Utc>) -> bool {
    matches!(result, Ok(MessageOutcome::Created { message, deliveries })
        if !deliveries.is_empty() && message.deliver_at.is_none_or(|t| t <= now))
}

/// Runs `jobs` in one transaction; `Err` means nothing was committed.
async fn run_batch(shared: &Shared, jobs: &[Job]) -> StoreResult<Vec<StoreResult<MessageOutcome>>> {
    let mut conn = shared.pool.acquire().await.map_err(db)?;
    let mut tx = conn.begin().await.map_err(db)?;
    let mut event_ids: Vec<&str> = jobs.iter().filter_map(|j| j.new.message.event_id.as_deref()).collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    messages::lock_event_ids(&mut tx, &event_ids).await?;
    let mut results = Vec::with_capacity(jobs.len());
    if let [job] = jobs {
        // Alone, the transaction is the job's savepoint.
        let result = messages::create(&mut tx, &job.new, job.now).await;
        if result.is_err() {
            tx.rollback().await.map_err(db)?;
            return Ok(vec![result]);
        }
        results.push(result);
    } else {
        for job in jobs {
            let mut savepoint = tx.begin().await.map_err(db)?;
            let result = messages::create(&mut savepoint, &job.new, job.now).await;
            if result.is_ok() {
                savepoint.commit().await.map_err(db)?;
            } else {
                savepoint.rollback().await.map_err(db)?;
            }
            results.push(result);
        }
    }
    let wake = jobs.iter().zip(&results).any(|(job, result)| queued_due(result, job.now));
    if wake {
        // Delivered at commit, to every node listening; identical notifications in one
        // transaction are folded into one.
        sqlx::query("SELECT pg_notify($1, current_schema())").bind(CHANNEL).execute(&mut *tx).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    if wake {
        shared.waker.notify_one();
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
