//! Herald's embedded store: one SQLite file in WAL mode.
//!
//! Writes go through a single writer thread that group-commits whatever queued while
//! the previous commit ran ([`engine`]); reads use a small pool of connections. Every
//! write returns only after its own commit, so "accepted means durable" holds.

mod attempts;
mod deliveries;
mod engine;
mod events;
mod ingest;
mod maintenance;
mod messages;
mod resources;
mod rows;
mod schema;

use std::{path::Path, sync::Arc};

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
use rusqlite::types::Value;
use tokio::sync::{Notify, watch};

use crate::engine::{Engine, internal};

pub use schema::VERSION as SCHEMA_VERSION;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    engine: Engine,
    clock: Clock,
    waker: Arc<Notify>,
    /// Moved after every commit that created messages (see [`Store::message_commits`]).
    commits: watch::Sender<u64>,
}

impl SqliteStore {
    /// Opens the database file at `path`, creating and migrating it as needed.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be opened; `Internal` when its schema is newer
    /// than this binary or a migration fails.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_clock(path, Arc::new(|| herald_core::to_millis(Utc::now())))
    }

    /// Like [`SqliteStore::open`] with an injected clock (for tests).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with_clock(path: &Path, clock: Clock) -> StoreResult<Self> {
        Ok(Self { engine: Engine::open(path)?, clock, waker: Arc::new(Notify::new()), commits: watch::Sender::new(0) })
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

fn found<T>(what: &'static str) -> impl FnOnce(Option<T>) -> StoreResult<T> {
    move |v| v.ok_or(StoreError::NotFound(what))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.engine.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(engine::unavailable)).await
    }

    async fn create_token(&self, token: TokenRecord) -> StoreResult<()> {
        self.engine.write(move |c| resources::insert_token(c, &token)).await
    }

    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = hash.to_owned();
        self.engine.read(move |c| resources::find_token(c, &hash)).await
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        self.engine
            .read(|c| {
                c.query_row("SELECT EXISTS (SELECT 1 FROM tokens WHERE app_id IS NULL)", [], |r| r.get(0))
                    .map_err(internal)
            })
            .await
    }

    async fn create_application(&self, app: Application) -> StoreResult<Application> {
        self.engine.write(move |c| resources::insert_application(c, &app).map(|()| app)).await
    }

    async fn get_application(&self, key: &str) -> StoreResult<Application> {
        let key = key.to_owned();
        self.engine
            .read(move |c| resources::find_application(c, &key).and_then(|app| ingest::unless_hidden(c, app)))
            .await
            .and_then(found("application"))
    }

    async fn list_applications(&self, filter: AppFilter, page: &PageQuery) -> StoreResult<Page<Application>> {
        let page = page.clone();
        let mut sql = format!("SELECT {} FROM applications WHERE {}", rows::APP_COLUMNS, ingest::NOT_A_SOURCE_APP);
        let endpoint = "SELECT 1 FROM endpoints e WHERE e.app_id = applications.id";
        if filter.exclude_without_endpoints {
            sql.push_str(&format!(" AND EXISTS ({endpoint})"));
        }
        if filter.exclude_only_disabled_endpoints {
            sql.push_str(&format!(" AND (NOT EXISTS ({endpoint}) OR EXISTS ({endpoint} AND e.disabled = 0))"));
        }
        self.engine.read(move |c| resources::page(c, &sql, vec![], "id", &page, rows::application)).await
    }

    async fn update_application(&self, app: Application) -> StoreResult<Application> {
        self.engine.write(move |c| resources::update_application(c, &app).map(|()| app)).await
    }

    async fn delete_application(&self, id: &AppId) -> StoreResult<()> {
        let id = id.clone();
        self.engine.write(move |c| resources::delete_application(c, &id)).await
    }

    async fn create_event_type(&self, event_type: EventType) -> StoreResult<EventType> {
        self.engine.write(move |c| resources::insert_event_type(c, &event_type).map(|()| event_type)).await
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        let name = name.to_owned();
        self.engine.read(move |c| resources::find_event_type(c, &name)).await.and_then(found("event type"))
    }

    async fn list_event_types(&self, page: &PageQuery, include_archived: bool) -> StoreResult<Page<EventType>> {
        let page = page.clone();
        let filter = if include_archived { "1 = 1" } else { "archived = 0" };
        let sql = format!("SELECT {} FROM event_types WHERE {filter}", rows::EVENT_TYPE_COLUMNS);
        self.engine.read(move |c| resources::page(c, &sql, vec![], "name", &page, rows::event_type)).await
    }

    async fn update_event_type(&self, event_type: EventType) -> StoreResult<EventType> {
        self.engine.write(move |c| resources::update_event_type(c, &event_type).map(|()| event_type)).await
    }

    async fn delete_event_type(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.engine
            .write(move |c| {
                let n = c.execute("DELETE FROM event_types WHERE name = ?1", [&name]).map_err(internal)?;
                if n == 0 { Err(StoreError::NotFound("event type")) } else { Ok(()) }
            })
            .await
    }

    async fn create_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        self.engine
            .write(move |c| {
                // The application may have been deleted since the API looked it up.
                let app_exists = c
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM applications WHERE id = ?1)",
                        [endpoint.app_id.as_str()],
                        |r| r.get::<_, bool>(0),
                    )
                    .map_err(internal)?;
                if !app_exists {
                    return Err(StoreError::NotFound("application"));
                }
                resources::insert_endpoint(c, &endpoint).map(|()| endpoint)
            })
            .await
    }

    async fn get_endpoint(&self, app: &AppId, key: &str) -> StoreResult<Endpoint> {
        let (app, key) = (app.clone(), key.to_owned());
        self.engine.read(move |c| resources::find_endpoint(c, &app, &key)).await.and_then(found("endpoint"))
    }

    async fn list_endpoints(&self, app: &AppId, page: &PageQuery) -> StoreResult<Page<Endpoint>> {
        let page = page.clone();
        let args = vec![Value::Text(app.as_str().to_owned())];
        let sql = format!("SELECT {} FROM endpoints WHERE app_id = ?1", rows::ENDPOINT_COLUMNS);
        self.engine.read(move |c| resources::page(c, &sql, args, "id", &page, rows::endpoint)).await
    }

    async fn update_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        self.engine.write(move |c| resources::update_endpoint(c, &endpoint).map(|()| endpoint)).await
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> StoreResult<()> {
        let (app, id) = (app.clone(), id.clone());
        self.engine.write(move |c| resources::delete_endpoint(c, &app, &id)).await
    }

    async fn create_message(&self, new: NewMessage) -> StoreResult<MessageOutcome> {
        let now = self.now();
        let outcome = self.engine.write(move |c| messages::create(c, new, now)).await?;
        if matches!(outcome, MessageOutcome::Created { .. }) {
            self.commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        if let MessageOutcome::Created { message, deliveries } = &outcome
            && !deliveries.is_empty()
            && message.deliver_at.is_none_or(|t| t <= now)
        {
            self.waker.notify_one();
        }
        Ok(outcome)
    }

    async fn get_message(&self, app: &AppId, key: &str) -> StoreResult<Message> {
        let (app, key) = (app.clone(), key.to_owned());
        self.engine.read(move |c| messages::find(c, &app, &key)).await.and_then(found("message"))
    }

    async fn list_messages(&self, app: &AppId, filter: &MessageFilter, page: &PageQuery) -> StoreResult<Page<Message>> {
        let (app, filter, page) = (app.clone(), filter.clone(), page.clone());
        self.engine.read(move |c| messages::list(c, &app, &filter, &page)).await
    }

    async fn list_deliveries(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Vec<Delivery>> {
        let (app, msg_id) = (app.clone(), msg_id.clone());
        self.engine.read(move |c| messages::deliveries(c, &app, &msg_id)).await
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        self.engine.write(move |c| deliveries::claim(c, now, limit, lease_until, &[])).await
    }

    async fn claim_due_deliveries_skipping(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
        skip: &[EndpointId],
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let skip = skip.to_vec();
        self.engine.write(move |c| deliveries::claim(c, now, limit, lease_until, &skip)).await
    }

    async fn release_deliveries(
        &self,
        released: Vec<(MessageId, EndpointId)>,
        lease_until: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.engine.write(move |c| deliveries::release(c, &released, lease_until, due_at)).await
    }

    fn delivery_waker(&self) -> Arc<Notify> {
        self.waker.clone()
    }

    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
        self.engine.write(move |c| maintenance::record(c, &results, None).map(drop)).await
    }

    async fn list_message_attempts(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Vec<Attempt>> {
        let (app, msg_id) = (app.clone(), msg_id.clone());
        self.engine.read(move |c| deliveries::message_attempts(c, &app, &msg_id)).await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        filter: &herald_store::AttemptFilter,
        page: &PageQuery,
    ) -> StoreResult<Page<Attempt>> {
        let (app, filter, page) = (app.clone(), filter.clone(), page.clone());
        self.engine.read(move |c| attempts::list(c, &app, &filter, &page)).await
    }

    async fn get_attempt(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        attempt_id: &herald_core::AttemptId,
    ) -> StoreResult<Attempt> {
        let (app, msg_id, attempt_id) = (app.clone(), msg_id.clone(), attempt_id.clone());
        self.engine.read(move |c| attempts::get(c, &app, &msg_id, &attempt_id)).await.and_then(found("attempt"))
    }

    async fn list_endpoint_messages(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        status: Option<herald_core::model::DeliveryStatus>,
        filter: &MessageFilter,
        page: &PageQuery,
    ) -> StoreResult<Page<herald_store::EndpointMessage>> {
        let (app, endpoint_id, filter, page) = (app.clone(), endpoint_id.clone(), filter.clone(), page.clone());
        self.engine.read(move |c| attempts::endpoint_messages(c, &app, &endpoint_id, status, &filter, &page)).await
    }

    async fn list_message_destinations(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        page: &PageQuery,
    ) -> StoreResult<Page<herald_store::MessageDestination>> {
        let (app, msg_id, page) = (app.clone(), msg_id.clone(), page.clone());
        self.engine.read(move |c| attempts::destinations(c, &app, &msg_id, &page)).await
    }

    async fn endpoint_stats(
        &self,
        app: &AppId,
        endpoint_id: &EndpointId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<herald_store::DeliveryCounts> {
        let (app, endpoint_id) = (app.clone(), endpoint_id.clone());
        self.engine.read(move |c| attempts::stats(c, &app, &endpoint_id, since, until)).await
    }

    async fn expunge_message_content(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<()> {
        let (app, msg_id) = (app.clone(), msg_id.clone());
        self.engine.write(move |c| attempts::expunge_message(c, &app, &msg_id)).await
    }

    async fn expunge_attempt_content(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        attempt_id: &herald_core::AttemptId,
    ) -> StoreResult<()> {
        let (app, msg_id, attempt_id) = (app.clone(), msg_id.clone(), attempt_id.clone());
        self.engine.write(move |c| attempts::expunge_attempt(c, &app, &msg_id, &attempt_id)).await
    }

    async fn resend_message(
        &self,
        app: &AppId,
        msg_id: &MessageId,
        endpoint_id: &EndpointId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (app, msg_id, endpoint_id) = (app.clone(), msg_id.clone(), endpoint_id.clone());
        self.engine.write(move |c| attempts::resend(c, &app, &msg_id, &endpoint_id, now)).await?;
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
        let (app, endpoint_id, filter) = (app.clone(), endpoint_id.clone(), filter.clone());
        let queued = self.engine.write(move |c| attempts::requeue(c, &app, &endpoint_id, &filter, now)).await?;
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
        let (app, endpoint_id) = (app.clone(), endpoint_id.clone());
        let queued =
            self.engine.write(move |c| attempts::replay_missing(c, &app, &endpoint_id, since, until, now)).await?;
        if queued > 0 {
            self.waker.notify_one();
        }
        Ok(queued)
    }

    async fn claim_idempotency_key(&self, key: &str, expires_at: DateTime<Utc>) -> StoreResult<IdempotencyClaim> {
        let (key, now) = (key.to_owned(), self.now());
        self.engine.write(move |c| messages::claim_key(c, &key, expires_at, now)).await
    }

    async fn complete_idempotency_key(&self, key: &str, response: StoredResponse) -> StoreResult<()> {
        let key = key.to_owned();
        self.engine.write(move |c| messages::complete_key(c, &key, &response, None)).await
    }

    async fn release_idempotency_key(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.engine.write(move |c| messages::release_key(c, &key)).await
    }

    async fn get_event_type_retry_schedule(&self, name: &str) -> StoreResult<Option<RetrySchedule>> {
        let name = name.to_owned();
        self.engine.read(move |c| maintenance::retry_schedule(c, &name)).await
    }

    async fn set_event_type_retry_schedule(&self, name: &str, schedule: Option<RetrySchedule>) -> StoreResult<()> {
        let name = name.to_owned();
        self.engine.write(move |c| maintenance::set_retry_schedule(c, &name, schedule.as_ref())).await
    }

    async fn record_attempts_disabling(
        &self,
        results: Vec<AttemptResult>,
        disable_failing_since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<EndpointId>> {
        self.engine.write(move |c| maintenance::record(c, &results, disable_failing_since)).await
    }

    async fn sweep_retention(
        &self,
        now: DateTime<Utc>,
        attempts_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<RetentionSwept> {
        self.engine.write(move |c| maintenance::sweep(c, now, attempts_before, limit)).await
    }

    async fn queue_depth(&self) -> StoreResult<QueueDepth> {
        self.engine.read(maintenance::queue_depth).await
    }

    async fn create_source(&self, source: Source, app: Application, token: TokenHash) -> StoreResult<Source> {
        self.engine.write(move |c| ingest::create(c, &source, &app, &token).map(|()| source)).await
    }

    async fn get_source(&self, key: &str) -> StoreResult<Source> {
        let key = key.to_owned();
        self.engine.read(move |c| ingest::find(c, &key)).await.and_then(found("source"))
    }

    async fn list_sources(&self, page: &PageQuery) -> StoreResult<Page<Source>> {
        let page = page.clone();
        self.engine.read(move |c| ingest::list(c, &page)).await
    }

    async fn update_source(&self, source: Source) -> StoreResult<Source> {
        self.engine.write(move |c| ingest::update(c, &source).map(|()| source)).await
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        let id = id.clone();
        self.engine.write(move |c| ingest::delete(c, &id)).await
    }

    async fn rotate_source_token(&self, id: &SourceId, rotation: TokenRotation) -> StoreResult<()> {
        let id = id.clone();
        self.engine.write(move |c| ingest::rotate_token(c, &id, &rotation)).await
    }

    async fn find_source_by_token(&self, token: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<Source>> {
        let token = token.clone();
        self.engine.read(move |c| ingest::find_by_token(c, &token, now)).await
    }

    async fn record_ingest_log(&self, entry: IngestLog) -> StoreResult<()> {
        self.engine.write(move |c| ingest::insert_log(c, &entry)).await
    }

    async fn list_ingest_logs(&self, source: &SourceId, page: &PageQuery) -> StoreResult<Page<IngestLog>> {
        let (source, page) = (source.clone(), page.clone());
        self.engine.read(move |c| ingest::list_logs(c, &source, &page)).await
    }

    async fn trim_ingest_logs(&self, keep: usize, limit: usize) -> StoreResult<usize> {
        self.engine.write(move |c| ingest::trim_logs(c, keep, limit)).await
    }

    async fn read_events(
        &self,
        app: &AppId,
        filter: &EventFilter,
        after: Position,
        limit: usize,
    ) -> StoreResult<EventPage> {
        let (app, filter) = (app.clone(), filter.clone());
        self.engine.read(move |c| events::read(c, &app, &filter, after, limit)).await
    }

    async fn message_position(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Position> {
        let (app, msg_id) = (app.clone(), msg_id.clone());
        self.engine.read(move |c| events::message_position(c, &app, &msg_id)).await
    }

    async fn position_after(&self, app: &AppId, at: DateTime<Utc>) -> StoreResult<Position> {
        let app = app.clone();
        self.engine.read(move |c| events::position_after(c, &app, at)).await
    }

    async fn consumer_position(&self, app: &AppId, consumer: &ConsumerKey) -> StoreResult<Option<Position>> {
        let (app, consumer) = (app.clone(), consumer.clone());
        self.engine.read(move |c| events::consumer_position(c, &app, &consumer)).await
    }

    async fn save_consumer_position(
        &self,
        app: &AppId,
        consumer: &ConsumerKey,
        position: Position,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (app, consumer) = (app.clone(), consumer.clone());
        self.engine.write(move |c| events::save_consumer_position(c, &app, &consumer, position, now)).await
    }

    fn message_commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}
