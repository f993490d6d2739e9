//! Fixtures: a fresh store per test (an SQLite file or a PostgreSQL schema), a controllable clock, builders for apps,
//! endpoints and messages, signature checks with independent libraries, polling with
//! a deadline, and the "queue is drained" check every test ends with.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use herald_core::{
    AppId, Clock, EndpointId, MessageId,
    model::{Application, Attempt, Delivery, DeliveryStatus, Endpoint, EndpointSecret, Message, Metadata},
    to_millis,
};
use herald_store::{DynStore, MessageOutcome, NewMessage};
use herald_store_postgres::testing::TestSchema;
use herald_store_sqlite::SqliteStore;
use herald_worker::{Dispatcher, DispatcherHandle, WorkerConfig, spawn_dispatcher};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::receiver::Received;

/// A clock for tests: either frozen at the moment it was made (moved only by
/// [`TestClock::advance`]) or running with real time plus the advanced offset. Both
/// start at the real time, so signature verifiers with a 5-minute tolerance accept.
#[derive(Clone)]
pub struct TestClock {
    start: DateTime<Utc>,
    running: bool,
    offset_ms: Arc<AtomicI64>,
}

impl TestClock {
    pub fn frozen() -> Self {
        Self { start: to_millis(Utc::now()), running: false, offset_ms: Arc::default() }
    }

    pub fn running() -> Self {
        Self { running: true, ..Self::frozen() }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let base = if self.running { to_millis(Utc::now()) } else { self.start };
        base + TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).expect("a short test duration");
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn clock(&self) -> Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

/// Worker settings for tests: loopback receivers allowed, everything else default.
pub fn config() -> WorkerConfig {
    WorkerConfig { allow_cidrs: "127.0.0.1/32".parse().unwrap(), ..WorkerConfig::default() }
}

/// `config()` with a retry schedule.
pub fn config_with_schedule(schedule: &str) -> WorkerConfig {
    WorkerConfig { retry_schedule: schedule.parse().unwrap(), ..config() }
}

/// A store on a fresh SQLite file, the clock it and the worker share, and a record of
/// the messages created so the test can check they all reached a final state.
/// The store a test runs on; `#[backends(crate::support::Backend)]` runs a test on each.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Keeps the test's database alive until the test ends.
enum Storage {
    Sqlite(#[expect(dead_code, reason = "held for its Drop")] TempDir),
    Postgres(#[expect(dead_code, reason = "held for its Drop")] TestSchema),
}

pub struct Harness {
    pub store: DynStore,
    pub clock: TestClock,
    messages: Mutex<Vec<(AppId, MessageId)>>,
    _storage: Storage,
}

impl Harness {
    pub async fn new(backend: Backend, clock: TestClock) -> Self {
        let (store, storage): (DynStore, _) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let store =
                    SqliteStore::open_with_clock(&dir.path().join("herald.db"), clock.clock()).expect("open store");
                (Arc::new(store), Storage::Sqlite(dir))
            }
            Backend::Postgres => {
                let schema = TestSchema::create().await;
                (Arc::new(schema.store().await.with_clock(clock.clock())), Storage::Postgres(schema))
            }
        };
        Self { store, clock, messages: Mutex::default(), _storage: storage }
    }

    pub fn dispatcher(&self, config: WorkerConfig) -> Dispatcher {
        Dispatcher::new(self.store.clone(), config, self.clock.clock()).expect("valid worker config")
    }

    pub fn spawn(&self, config: WorkerConfig) -> (DispatcherHandle, CancellationToken) {
        let shutdown = CancellationToken::new();
        let handle = spawn_dispatcher(self.store.clone(), config, self.clock.clock(), shutdown.clone())
            .expect("valid worker config");
        (handle, shutdown)
    }

    pub async fn app(&self) -> Application {
        let now = self.clock.now();
        let app = Application {
            id: AppId::generate(now, &mut rand::rng()),
            uid: None,
            name: "test".into(),
            throttle_rate: None,
            metadata: Metadata::new(),
            created_at: now,
            updated_at: now,
        };
        self.store.create_application(app).await.expect("create app")
    }

    /// An endpoint of `app` at `url` with a fresh secret, not yet stored.
    pub fn endpoint_at(&self, app: &Application, url: &str) -> Endpoint {
        let now = self.clock.now();
        Endpoint {
            id: EndpointId::generate(now, &mut rand::rng()),
            app_id: app.id.clone(),
            uid: None,
            url: url.into(),
            description: String::new(),
            throttle_rate: None,
            disabled: false,
            event_types: None,
            channels: None,
            metadata: Metadata::new(),
            headers: Default::default(),
            secrets: vec![EndpointSecret::generate(&mut rand::rng())],
            created_at: now,
            updated_at: now,
        }
    }

    pub async fn create_endpoint(&self, endpoint: Endpoint) -> Endpoint {
        self.store.create_endpoint(endpoint).await.expect("create endpoint")
    }

    /// Stores an endpoint of `app` at `url` with a fresh secret.
    pub async fn endpoint(&self, app: &Application, url: &str) -> Endpoint {
        self.create_endpoint(self.endpoint_at(app, url)).await
    }

    /// Accepts a message of `event_type` with `payload` for `app`.
    pub async fn message_with(&self, app: &Application, event_type: &str, payload: Option<&str>) -> Message {
        let now = self.clock.now();
        let new = NewMessage {
            app_key: app.id.to_string(),
            create_app: None,
            message: Message {
                id: MessageId::generate(now, &mut rand::rng()),
                app_id: app.id.clone(),
                event_id: None,
                event_type: event_type.into(),
                payload: payload.map(str::to_owned),
                channels: None,
                tags: None,
                created_at: now,
                deliver_at: None,
                expires_at: now + TimeDelta::days(90),
                content_type: None,
            },
            idempotency: None,
            event_id_since: now - TimeDelta::hours(24),
            ingest_log: None,
        };
        let MessageOutcome::Created { message, .. } = self.store.create_message(new).await.expect("create message")
        else {
            panic!("a fresh message is never a replay");
        };
        self.messages.lock().unwrap().push((app.id.clone(), message.id.clone()));
        message
    }

    pub async fn message(&self, app: &Application) -> Message {
        self.message_with(app, "user.created", Some(r#"{"user":"ada"}"#)).await
    }

    /// The only delivery of `msg`.
    pub async fn delivery(&self, msg: &Message) -> Delivery {
        let mut all = self.store.list_deliveries(&msg.app_id, &msg.id).await.expect("list deliveries");
        assert_eq!(all.len(), 1, "expected one delivery for {}", msg.id);
        all.remove(0)
    }

    pub async fn attempts(&self, msg: &Message) -> Vec<Attempt> {
        self.store.list_message_attempts(&msg.app_id, &msg.id).await.expect("list attempts")
    }

    /// Polls until the only delivery of `msg` has `status`.
    pub async fn wait_for_status(&self, msg: &Message, status: DeliveryStatus) -> Delivery {
        eventually(&format!("delivery of {} to become {status:?}", msg.id), || async {
            let delivery = self.delivery(msg).await;
            (delivery.status == status).then_some(delivery)
        })
        .await
    }

    /// Every delivery of every message created here is delivered or failed: nothing
    /// pending, nothing left claimed.
    pub async fn assert_drained(&self) {
        let messages = self.messages.lock().unwrap().clone();
        for (app, msg) in messages {
            for d in self.store.list_deliveries(&app, &msg).await.expect("list deliveries") {
                assert!(
                    matches!(d.status, DeliveryStatus::Success | DeliveryStatus::Fail),
                    "delivery of {msg} to {} is still {:?}",
                    d.endpoint_id,
                    d.status
                );
            }
        }
    }
}

/// Polls `check` every 10 ms until it returns `Some`, failing the test after 15 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks a request's signature with two independent verifiers: `standardwebhooks`
/// reading only the `webhook-*` headers and `svix` reading only the `svix-*` ones.
pub fn verify_with_libraries(secret: &str, request: &Received) -> Result<(), String> {
    let only = |prefix: &str| {
        let mut headers = request.headers.clone();
        for name in ["id", "timestamp", "signature"] {
            headers.remove(format!("{prefix}-{name}").as_str());
        }
        headers
    };
    standardwebhooks::Webhook::new(secret)
        .map_err(|e| e.to_string())?
        .verify(&request.body, &only("svix"))
        .map_err(|e| format!("standardwebhooks: {e}"))?;
    svix::webhooks::Webhook::new(secret)
        .map_err(|e| e.to_string())?
        .verify(&request.body, &only("webhook"))
        .map_err(|e| format!("svix: {e}"))
}
