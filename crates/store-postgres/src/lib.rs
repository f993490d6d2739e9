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

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, Clock, EndpointId, MessageId, RetrySchedule, SourceId,
    ingest::{IngestLog, Source},
    model::{Application, Attempt, Delivery, Endpoint, EventType, Message},
};
use herald_store::{
    AppFilter, AttemptResult, ClaimedDelivery, ConsumerKey, EventFilter, EventPage, IdempotencyClaim, MessageFilter,
    MessageOutcome, NewMessage, Page, PageQuery, Position, QueueDepth, RetentionSwept, Store, StoreError, StoreResult,
    StoredResponse, TokenHash, TokenRecord, TokenRotation,
};
use sqlx::{
    Connection, PgPool, Postgres, QueryBuilder,
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

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: PgPool,
    writer: Writer,
    waker: Arc<Notify>,
    /// Moved when messages commit, here or (through the listener) on another node.
    commits: Arc<watch::Sender<u64>>,
    listener: Option<JoinHandle<()>>,
    clock: Clock,
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
        Ok(Self {
            writer: Writer::spawn(pool.clone(), options.writers, options.max_batch, waker.clone(), commits.clone()),
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

fn found<T>(what: &'static str) -> impl FnOnce(Option<T>) -> StoreResult<T> {
    move |v| v.ok_or(StoreError::NotFound(what))
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db).map(drop)
    }

    async fn create_token(&self, token: TokenRecord) -> StoreResult<()> {
        resources::insert_token(&self.pool, &token).await
    }

    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        resources::find_token(&self.pool, hash).await
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tokens WHERE app_id IS NULL)")
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }

    async fn create_application(&self, app: Application) -> StoreResult<Application> {
        resources::insert_application(&self.pool, &app).await.map(|()| app)
    }

    async fn get_application(&self, key: &str) -> StoreResult<Application> {
        ingest::find_visible_application(&self.pool, key).await.and_then(found("application"))
    }

    async fn list_applications(&self, filter: AppFilter, page: &PageQuery) -> StoreResult<Page<Application>> {
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            rows::app_columns!(),
            " FROM applications WHERE ",
            ingest::not_a_source_app!()
        ));
        const ENDPOINT: &str = "SELECT 1 FROM endpoints e WHERE e.app_id = applications.id";
        if filter.exclude_without_endpoints {
            query.push(format_args!(" AND EXISTS ({ENDPOINT})"));
        }
        if filter.exclude_only_disabled_endpoints {
            query.push(format_args!(" AND (NOT EXISTS ({ENDPOINT}) OR EXISTS ({ENDPOINT} AND NOT e.disabled))"));
        }
        resources::page(&self.pool, query, "id", page, rows::application).await
    }

    async fn update_application(&self, app: Application) -> StoreResult<Application> {
        resources::update_application(&self.pool, &app).await.map(|()| app)
    }

    async fn delete_application(&self, id: &AppId) -> StoreResult<()> {
        resources::delete_application(&self.pool, id).await
    }

    async fn create_event_type(&self, event_type: EventType) -> StoreResult<EventType> {
        resources::insert_event_type(&self.pool, &event_type).await.map(|()| event_type)
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        resources::find_event_type(&self.pool, name).await.and_then(found("event type"))
    }

    async fn list_event_types(&self, page: &PageQuery, include_archived: bool) -> StoreResult<Page<EventType>> {
        let sql = if include_archived {
            concat!("SELECT ", rows::event_type_columns!(), " FROM event_types WHERE true")
        } else {
            concat!("SELECT ", rows::event_type_columns!(), " FROM event_types WHERE NOT archived")
        };
        resources::page(&self.pool, QueryBuilder::new(sql), "name", page, rows::event_type).await
    }

    async fn update_event_type(&self, event_type: EventType) -> StoreResult<EventType> {
        resources::update_event_type(&self.pool, &event_type).await.map(|()| event_type)
    }

    async fn delete_event_type(&self, name: &str) -> StoreResult<()> {
        resources::delete_event_type(&self.pool, name).await
    }

    async fn create_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        resources::insert_endpoint(&self.pool, &endpoint).await.map(|()| endpoint)
    }

    async fn get_endpoint(&self, app: &AppId, key: &str) -> StoreResult<Endpoint> {
        resources::find_endpoint(&self.pool, app, key).await.and_then(found("endpoint"))
    }

    async fn list_endpoints(&self, app: &AppId, page: &PageQuery) -> StoreResult<Page<Endpoint>> {
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            rows::endpoint_columns!(),
            " FROM endpoints WHERE app_id = "
        ));
        query.push_bind(app.as_str().to_owned());
        resources::page(&self.pool, query, "id", page, rows::endpoint).await
    }

    async fn update_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        resources::update_endpoint(&self.pool, &endpoint).await.map(|()| endpoint)
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> StoreResult<()> {
        resources::delete_endpoint(&self.pool, app, id).await
    }

    async fn create_message(&self, new: NewMessage) -> StoreResult<MessageOutcome> {
        self.writer.create(new, self.now()).await
    }

    async fn get_message(&self, app: &AppId, key: &str) -> StoreResult<Message> {
        messages::find(&self.pool, app, key).await.and_then(found("message"))
    }

    async fn list_messages(&self, app: &AppId, filter: &MessageFilter, page: &PageQuery) -> StoreResult<Page<Message>> {
        messages::list(&self.pool, app, filter, page).await
    }

    async fn list_deliveries(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Vec<Delivery>> {
        messages::deliveries(&self.pool, app, msg_id).await
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        deliveries::claim(&mut conn, now, limit, lease_until, &[]).await
    }

    async fn claim_due_deliveries_skipping(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
        skip: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        deliveries::claim(&mut conn, now, limit, lease_until, skip).await
    }

    async fn release_deliveries(
        &self,
        deliveries: Vec<(MessageId, EndpointId)>,
        lease_until: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        deliveries::release(&self.pool, &deliveries, lease_until, due_at).await
    }

    fn delivery_waker(&self) -> Arc<Notify> {
        self.waker.clone()
    }

    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        maintenance::record(&mut conn, &results, None).await.map(drop)
    }

    async fn list_message_attempts(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Vec<Attempt>> {
        deliveries::message_attempts(&self.pool, app, msg_id).await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        filter: &herald_store::AttemptFilter,
        page: &PageQuery,
    ) -> StoreResult<Page<Attempt>> {
        attempts::list(&self.pool, app, filter, page).await
    }

    async fn get_attempt(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        attempt_id: &herald_core::AttemptId,
    ) -> StoreResult<Attempt> {
        attempts::get(&self.pool, app, msg_id, attempt_id).await.and_then(found("attempt"))
    }

    async fn list_endpoint_messages(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        status: Option<herald_core::model::DeliveryStatus>,
        filter: &MessageFilter,
        page: &PageQuery,
    ) -> StoreResult<Page<herald_store::EndpointMessage>> {
        attempts::endpoint_messages(&self.pool, app, endpoint_id, status, filter, page).await
    }

    async fn list_message_destinations(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        page: &PageQuery,
    ) -> StoreResult<Page<herald_store::MessageDestination>> {
        attempts::destinations(&self.pool, app, msg_id, page).await
    }

    async fn endpoint_stats(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<herald_store::DeliveryCounts> {
        attempts::stats(&self.pool, app, endpoint_id, since, until).await
    }

    async fn expunge_message_content(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<()> {
        attempts::expunge_message(&self.pool, app, msg_id).await
    }

    async fn expunge_attempt_content(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        attempt_id: &herald_core::AttemptId,
    ) -> StoreResult<()> {
        attempts::expunge_attempt(&self.pool, app, msg_id, attempt_id).await
    }

    async fn resend_message(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        endpoint_id: &EndpointId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        attempts::resend(&mut conn, app, msg_id, endpoint_id, now).await?;
        self.waker.notify_one();
        Ok(())
    }

    async fn requeue_deliveries(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        filter: &herald_store::RequeueFilter,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let queued = attempts::requeue(&mut conn, app, endpoint_id, filter, now).await?;
        if queued > 0 {
            self.waker.notify_one();
        }
        Ok(queued)
    }

    async fn replay_missing(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let queued = attempts::replay_missing(&mut conn, app, endpoint_id, since, until, now).await?;
        if queued > 0 {
            self.waker.notify_one();
        }
        Ok(queued)
    }

    async fn claim_idempotency_key(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<IdempotencyClaim> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        messages::claim_key(&mut conn, key, expires_at, self.now()).await
    }

    async fn complete_idempotency_key(&self, key: &str, response: StoredResponse) -> StoreResult<()> {
        messages::complete_key(&self.pool, key, &response, None).await
    }

    async fn release_idempotency_key(&self, key: &str) -> StoreResult<()> {
        messages::release_key(&self.pool, key).await
    }

    async fn get_event_type_retry_schedule(&self, name: &str) -> StoreResult<Option<RetrySchedule>> {
        maintenance::retry_schedule(&self.pool, name).await
    }

    async fn set_event_type_retry_schedule(&self, name: &str, schedule: Option<RetrySchedule>) -> StoreResult<()> {
        maintenance::set_retry_schedule(&self.pool, name, schedule.as_ref()).await
    }

    async fn record_attempts_disabling(
        &self,
        results: Vec<AttemptResult>,
        disable_failing_since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<EndpointId>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        maintenance::record(&mut conn, &results, disable_failing_since).await
    }

    async fn sweep_retention(
        &self,
        now: DateTime<Utc>,
        attempts_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<RetentionSwept> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        maintenance::sweep(&mut conn, now, attempts_before, limit).await
    }

    async fn queue_depth(&self) -> StoreResult<QueueDepth> {
        maintenance::queue_depth(&self.pool).await
    }

    async fn create_source(&self, source: Source, app: Application, token: TokenHash) -> StoreResult<Source> {
        ingest::create(&self.pool, &source, &app, &token).await.map(|()| source)
    }

    async fn get_source(&self, key: &str) -> StoreResult<Source> {
        ingest::find(&self.pool, key).await.and_then(found("source"))
    }

    async fn list_sources(&self, page: &PageQuery) -> StoreResult<Page<Source>> {
        ingest::list(&self.pool, page).await
    }

    async fn update_source(&self, source: Source) -> StoreResult<Source> {
        ingest::update(&self.pool, &source).await.map(|()| source)
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        ingest::delete(&self.pool, id).await
    }

    async fn rotate_source_token(&self, id: &SourceId, rotation: TokenRotation) -> StoreResult<()> {
        ingest::rotate_token(&self.pool, id, &rotation).await
    }

    async fn find_source_by_token(&self, token: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<Source>> {
        ingest::find_by_token(&self.pool, token, now).await
    }

    async fn record_ingest_log(&self, entry: IngestLog) -> StoreResult<()> {
        ingest::insert_log(&self.pool, &entry).await
    }

    async fn list_ingest_logs(&self, source: &SourceId, page: &PageQuery) -> StoreResult<Page<IngestLog>> {
        ingest::list_logs(&self.pool, source, page).await
    }

    async fn trim_ingest_logs(&self, keep: usize, limit: usize) -> StoreResult<usize> {
        ingest::trim_logs(&self.pool, keep, limit).await
    }

    async fn read_events(
        &self,
        app: &AppId,
        filter: &EventFilter,
        after: Position,
        limit: usize,
    ) -> StoreResult<EventPage> {
        if filter.event_types.as_ref().is_some_and(Vec::is_empty) {
            return Ok(EventPage { events: Vec::new(), done: true, held_back: false });
        }
        events::read(&self.pool, app, filter, after, limit).await
    }

    async fn message_position(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Position> {
        events::message_position(&self.pool, app, msg_id).await
    }

    async fn position_after(&self, app: &AppId, at: DateTime<Utc>) -> StoreResult<Position> {
        events::position_after(&self.pool, app, at).await
    }

    async fn consumer_position(&self, app: &AppId, consumer: &ConsumerKey) -> StoreResult<Option<Position>> {
        events::consumer_position(&self.pool, app, consumer).await
    }

    async fn save_consumer_position(
        &self,
        app: &AppId,
        consumer: &ConsumerKey,
        position: Position,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        events::save_consumer_position(&self.pool, app, consumer, position, now).await
    }

    fn message_commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}
