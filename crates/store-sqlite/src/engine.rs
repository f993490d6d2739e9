//! The two halves of SQLite access: one writer thread that group-commits every write
//! queued while the previous commit ran, and a small pool of read connections.
//!
//! Group commit is where the throughput comes from: each request still waits for its
//! own commit, but one fsync covers every request that arrived meanwhile. Each job runs
//! inside its own savepoint, so one job's failure (a uniqueness conflict, say) rolls back
//! only that job and the rest of the batch still commits.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use herald_store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::schema;

/// Upper bound of jobs in one transaction, so one commit's latency stays bounded.
const MAX_BATCH: usize = 512;
const READERS: usize = 4;

/// Run after the batch's commit, with whether the commit succeeded.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// Runs one job's statements on the writer connection (or, given `None`, fails it
/// without running) and returns its completion.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Completion + Send>;

/// Handle to the writer thread and the read pool.
pub struct Engine {
    jobs: mpsc::UnboundedSender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: std::path::PathBuf,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string().into())
}

pub(crate) fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Internal(e.into())
}

fn open_connection(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL lets readers run while the writer commits; synchronous=FULL fsyncs the WAL
    // at each commit, so an accepted message survives power loss, not just SIGKILL.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Savepoint journals and sort scratch stay in memory rather than in temp files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A connection for the read pool; `query_only` makes a write through it an error.
fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(unavailable)?;
    conn.pragma_update(None, "query_only", true).map_err(unavailable)?;
    Ok(conn)
}

impl Engine {
    /// Opens (creating if needed) the database, migrates it and starts the writer.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut writer = open_connection(path, OpenFlags::default()).map_err(unavailable)?;
        schema::migrate(&mut writer).map_err(|e| StoreError::Internal(e.into()))?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_reader(path)?);
        }
        let (jobs, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("herald-sqlite-writer".into())
            .spawn(move || run_writer(writer, rx))
            .map_err(internal)?;
        Ok(Self { jobs, readers: Arc::new(Mutex::new(readers)), path: path.to_owned() })
    }

    /// Queues `f` for the next group commit and waits until that commit is done.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.write_then(f, |_| {}).await
    }

    /// [`Engine::write`], running `committed` on the job's result on the writer thread
    /// right after its commit succeeded, whether or not the caller still waits.
    pub async fn write_then<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        committed: impl FnOnce(&mut T) + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(unavailable("could not start a write transaction")),
            };
            Box::new(move |commit| {
                let outcome = match commit {
                    Ok(()) => result.map(|mut done| {
                        committed(&mut done);
                        done
                    }),
                    Err(e) => Err(unavailable(format!("commit failed: {e}"))),
                };
                // The waiter may have gone away (client disconnected): the data is
                // committed regardless, which is what a retry with the same key sees.
                let _ = tx.send(outcome);
            })
        });
        self.jobs.send(job).map_err(|_| unavailable("the SQLite writer has stopped"))?;
        rx.await.map_err(|_| unavailable("the SQLite writer has stopped"))?
    }

    /// Runs `f` on a pooled read connection off the async threads.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().map_err(|_| internal("reader pool poisoned"))?.pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&path)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = readers.lock()
                && pool.len() < READERS
            {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(internal)?
    }
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
    conn.execute_batch("SAVEPOINT job").map_err(unavailable)?;
    let result = f(conn);
    let end = if result.is_ok() { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
    conn.execute_batch(end).map_err(unavailable)?;
    result
}

fn run_writer(conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::warn!(error = %e, jobs = batch.len(), "could not start a write transaction");
            for job in batch {
                job(None)(Err(e.to_string()));
            }
            continue;
        }
        let completions: Vec<Completion> = batch.into_iter().map(|job| job(Some(&conn))).collect();
        let commit = conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        });
        if let Err(e) = &commit {
            tracing::warn!(error = %e, jobs = completions.len(), "group commit failed");
        }
        for complete in completions {
            complete(commit.clone());
        }
    }
}
