//! Fixtures on top of the test harness: a store per test and the clock it shares with
//! the worker, builders for apps, endpoints and messages, signature checks with
//! independent libraries, and the "queue is drained" check every test ends with.

use std::sync::Mutex;

use chrono::TimeDelta;
use herald_core::{
    AppId, EndpointId, MessageId,
    model::{Application, Attempt, Delivery, DeliveryStatus, Endpoint, EndpointSecret, Message, Metadata},
};
use herald_store::{DynStore, MessageOutcome, NewMessage};
use herald_testkit::{Backend, DEADLINE, RecordedRequest, TestClock, TestStore, poll_until};
use herald_worker::{Dispatcher, DispatcherHandle, WorkerConfig, spawn_dispatcher};
use tokio_util::sync::CancellationToken;

/// Worker settings for tests: loopback receivers allowed, everything else default.
pub fn config() -> WorkerConfig {
    WorkerConfig { allow_cidrs: "127.0.0.1/32".parse().unwrap(), ..WorkerConfig::default() }
}

/// `config()` with a retry schedule.
pub fn config_with_schedule(schedule: &str) -> WorkerConfig {
    WorkerConfig { retry_schedule: schedule.parse().unwrap(), ..config() }
}

/// A fresh store (an SQLite file or a PostgreSQL schema), the clock it and the worker
/// share, and a record of the messages created so the test can check they all reached a
/// final state.
pub struct Harness {
    pub store: DynStore,
    pub clock: TestClock,
    messages: Mutex<Vec<(AppId, MessageId)>>,
    _database: TestStore,
}

impl Harness {
    pub async fn new(backend: Backend, clock: TestClock) -> Self {
        let database = backend.open_with_clock(clock.clock()).await;
        Self { store: database.store.clone(), clock, messages: Mutex::default(), _database: database }
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
        poll_until(DEADLINE, || async {
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

/// Checks a request's signature with two independent verifiers: `standardwebhooks`
/// reading only the `webhook-*` headers and `svix` reading only the `svix-*` ones.
pub fn verify_with_libraries(secret: &str, request: &RecordedRequest) -> Result<(), String> {
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
