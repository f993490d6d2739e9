//! Herald's PostgreSQL store, for production and for running many nodes on one
//! database.
//!
//! Every rule that must hold across nodes is held by PostgreSQL itself: constraints for
//! uniqueness, advisory locks for `eventId` windows, `FOR UPDATE SKIP LOCKED` for
//! delivery claims, `LISTEN/NOTIFY` for wake-ups. No node is special. Message creates
//! are group-committed by a few writer tasks ([`writer`]); everything else runs on the
//! pool, one statement or one short transaction per call.
//!
//! Errors follow the policy in [`error`]: lost connections, pool timeouts, statement
//! timeouts and server shutdowns are `Unavailable`, so the API answers 503 promptly.

#![forbid(unsafe_code)]

mod accept;
mod attempts;
mod deliveries;
mod error;
mod events;
mod ingest;
mod listener;
mod maintenance;
mod messages;
mod resources;
mod rows;
mod schema;
#[cfg(feature = "test-support")]
pub mod testing;
mod writer;

use std::{str::FromStr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use herald_core::Clock;
use herald_store::{StoreResult, handoff::HandoffSlot};
use sqlx::{
    Connection, PgPool,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions},
};
use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};

pub use error::{SchemaTooNew, SchemaTooOld};
pub use schema::{Migrated, VERSION as SCHEMA_VERSION};

use crate::{error::db, writer::Writer};

/// How to connect and how much to use. `Default` suits one node of a small cluster.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections in the shared pool (default 10). The LISTEN connection is extra.
    pub pool_size: u32,
    /// The longest one statement may run before PostgreSQL cancels it (`Unavailable`);
    /// default 5 s, `None` for no limit. Migrations run without it.
    pub statement_timeout: Option<Duration>,
    /// The longest a call waits for a pooled connection, including connecting, before
    /// it fails with `Unavailable` (default 5 s). Keeps requests prompt in an outage.
    pub acquire_timeout: Duration,
    /// Apply pending migrations on connect (default true). When false, a schema that
    /// is not exactly current is refused (run `herald migrate`).
    pub migrate: bool,
    /// `LISTEN` for other nodes' wake-ups (default true); an API-only node can skip it.
    pub listen: bool,
    /// Tasks group-committing message creates (default 2), each using one pooled
    /// connection while it commits.
    pub writers: usize,
    /// The most message creates in one transaction (default 256).
    pub max_batch: usize,
    /// The schema to use (PostgreSQL's `search_path`) instead of the server default;
    /// it must exist. Lets several Herald deployments (or tests) share a database.
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            statement_timeout: Some(Duration::from_secs(5)),
            acquire_timeout: Duration::from_secs(5),
            migrate: true,
            listen: true,
            writers: 2,
            max_batch: 256,
            schema: None,
        }
    }
}

impl PostgresOptions {
    fn connect_options(&self, url: &str, statement_timeout: Option<Duration>) -> StoreResult<PgConnectOptions> {
        let mut settings = Vec::new();
        if let Some(timeout) = statement_timeout {
            settings.push(("statement_timeout", format!("{}ms", timeout.as_millis())));
        }
        if let Some(schema) = &self.schema {
            settings.push(("search_path", format!("\"{}\"", schema.replace('"', "\"\""))));
        }
        Ok(PgConnectOptions::from_str(url).map_err(db)?.application_name("herald").options(settings))
    }
}

/// The PostgreSQL implementation of [`herald_store::Store`]: each capability trait is
/// implemented in the module holding its SQL.
pub struct PostgresStore {
    pool: PgPool,
    writer: Writer,
    waker: Arc<Notify>,
    /// Moved when messages commit, here or (through the listener) on another node.
    commits: Arc<watch::Sender<u64>>,
    listener: Option<JoinHandle<()>>,
    clock: Clock,
    /// This node's dispatcher, when it takes accepted deliveries in memory (shared
    /// with the writer tasks).
    handoff: Arc<HandoffSlot>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` DSN), migrates (or checks) the schema, and
    /// starts the writer and listener tasks on the current Tokio runtime.
    ///
    /// # Errors
    /// `Unavailable` when PostgreSQL cannot be reached in `acquire_timeout`; `Internal`
    /// with [`SchemaTooNew`] when the database was written by a newer Herald, with
    /// [`SchemaTooOld`] when it is behind and `migrate` is off, or when a migration fails.
    pub async fn connect(url: &str, options: PostgresOptions) -> StoreResult<Self> {
        let connect = options.connect_options(url, options.statement_timeout)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(db)?;
        let schema_name = {
            let mut conn = pool.acquire().await.map_err(db)?;
            schema::migrate(&mut conn, options.migrate).await?;
            sqlx::query_scalar::<_, String>("SELECT current_schema()").fetch_one(&mut *conn).await.map_err(db)?
        };
        let waker = Arc::new(Notify::new());
        let commits = Arc::new(watch::Sender::new(0));
        let listener = options.listen.then(|| {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .connect_lazy_with(connect);
            listener::spawn_listener(pool, schema_name, waker.clone(), commits.clone())
        });
        let handoff = Arc::new(HandoffSlot::default());
        let writer = Writer::spawn(
            pool.clone(),
            options.writers,
            options.max_batch,
            waker.clone(),
            commits.clone(),
            handoff.clone(),
        );
        Ok(Self {
            writer,
            handoff,
            pool,
            waker,
            commits,
            listener,
            clock: Arc::new(|| herald_core::to_millis(Utc::now())),
        })
    }

    /// Brings the schema at `url` up to [`SCHEMA_VERSION`] and returns what it did
    /// (for `herald migrate`); safe to run while nodes are up.
    ///
    /// # Errors
    /// `Unavailable` when PostgreSQL cannot be reached; `Internal` with [`SchemaTooNew`]
    /// for a newer schema, or when a migration fails.
    pub async fn migrate(url: &str, options: &PostgresOptions) -> StoreResult<Migrated> {
        let mut conn = PgConnection::connect_with(&options.connect_options(url, None)?).await.map_err(db)?;
        let migrated = schema::migrate(&mut conn, true).await;
        let _ = conn.close().await;
        migrated
    }

    /// Replaces the clock used for idempotency-key ages and "due now" checks (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}
