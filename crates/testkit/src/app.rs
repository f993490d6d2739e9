//! `spawn_app` (feature `server`): a real Herald server, the same
//! `herald_server::run_with_store` the binary uses, on `127.0.0.1:0` over a fresh
//! [`TestStore`], with an admin token and an HTTP client that sends it.

use std::{net::SocketAddr, path::Path, sync::Arc};

use herald_core::net::{AllowList, Cidr};
use herald_core::{AppId, Clock};
use herald_server::{Config, config::DatabaseUrl};
use herald_store::DynStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Backend, TestStore};

/// Starts a server with the default test configuration.
///
/// # Panics
/// If the server cannot start (a test failure, not a condition to handle).
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

/// A running Herald server. Dropping it stops the server; [`TestApp::stop`] also
/// waits for it and returns what `run` returned.
pub struct TestApp {
    /// The bound address (`127.0.0.1:PORT`).
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    /// A server-wide token (only its hash is in the store).
    pub admin_token: String,
    /// The same store the server uses, for arranging data and checking effects.
    pub store: DynStore,
    /// A client sending `Authorization: Bearer <admin_token>` on every request.
    pub http: reqwest::Client,
    /// The configuration the server runs with.
    pub config: Config,
    /// The store backend.
    pub backend: Backend,
    clock: Clock,
    server: ServerHandle,
    // Declared last: the database goes after the server has been told to stop.
    database: TestStore,
}

impl TestApp {
    /// A builder to adjust the configuration or clock before spawning.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder { config: Config::default(), clock: None, backend: Backend::Sqlite }
    }

    /// The SQLite file (a path that is never created on PostgreSQL).
    pub fn db_path(&self) -> &Path {
        self.database.path()
    }

    /// The test's database, e.g. to open it again as another node would.
    pub fn database(&self) -> &TestStore {
        &self.database
    }

    /// `base_url` + `path` (e.g. `"/api/v1/app"`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The official Svix SDK pointed at this server, with the admin token.
    pub fn svix_client(&self) -> svix::api::Svix {
        self.svix_client_with(&self.admin_token)
    }

    /// The official Svix SDK pointed at this server, with `token`.
    pub fn svix_client_with(&self, token: &str) -> svix::api::Svix {
        let options = svix::api::SvixOptions { server_url: Some(self.base_url.clone()), ..Default::default() };
        svix::api::Svix::new(token.to_owned(), Some(options))
    }

    /// Mints a token scoped to `app` straight through the store and returns its text.
    ///
    /// # Panics
    /// If the store refuses it.
    pub async fn app_token(&self, app: &AppId) -> String {
        mint(&self.store, Some(app.clone()), (self.clock)()).await
    }

    /// Stops the server and waits for `run` to return, giving back its result.
    ///
    /// # Errors
    /// Whatever the server returned, or its task panicking.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }
}

/// Configures a [`TestApp`] before it starts.
pub struct TestAppBuilder {
    config: Config,
    clock: Option<Clock>,
    backend: Backend,
}

impl TestAppBuilder {
    /// Changes the configuration in code. The listen address, database and admin
    /// token are set by the builder and overwritten.
    #[must_use]
    pub fn config(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Lets outbound deliveries reach loopback (`127.0.0.0/8`, `::1`), where
    /// [`Receiver`]s listen.
    #[must_use]
    pub fn allow_loopback(self) -> Self {
        self.config(|c| {
            let loopback = ["127.0.0.0/8", "::1/128"].map(|s| Cidr::parse(s).expect("valid CIDR"));
            c.net.allow_cidrs = AllowList::new(c.net.allow_cidrs.cidrs().iter().copied().chain(loopback));
        })
    }

    /// Runs on `backend` (SQLite unless told otherwise).
    #[must_use]
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Runs on a fresh PostgreSQL schema: `.backend(Backend::Postgres)`.
    #[must_use]
    pub fn postgres(self) -> Self {
        self.backend(Backend::Postgres)
    }

    /// Uses `clock` instead of the system time, for the store and the API.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Opens a fresh store (an SQLite file in a temp dir, or a PostgreSQL schema),
    /// mints an admin token through it, binds `127.0.0.1:0` and runs the server in a
    /// task.
    ///
    /// # Panics
    /// If any of that fails, PostgreSQL not answering included.
    pub async fn spawn(self) -> TestApp {
        let Self { mut config, clock, backend } = self;
        let clock = clock.unwrap_or_else(|| Arc::new(chrono::Utc::now));
        config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.auth.admin_token = None;
        let database = backend.open_with_clock(clock.clone()).await;
        config.store.database_url = match database.schema() {
            None => DatabaseUrl::Sqlite(database.path().to_owned()),
            Some(schema) => DatabaseUrl::Postgres(schema.url().to_owned()),
        };
        let store = database.store.clone();
        let admin_token = mint(&store, None, clock()).await;

        let listener = tokio::net::TcpListener::bind(config.server.listen).await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let base_url = format!("http://{addr}");

        let shutdown = CancellationToken::new();
        let task = tokio::spawn(herald_server::run_with_store(
            config.clone(),
            store.clone(),
            clock.clone(),
            listener,
            shutdown.clone(),
        ));

        let mut headers = reqwest::header::HeaderMap::new();
        let mut bearer =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {admin_token}")).expect("tokens are header-safe");
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        let http = reqwest::Client::builder().default_headers(headers).build().expect("build the HTTP client");

        TestApp {
            addr,
            base_url,
            admin_token,
            store,
            http,
            config,
            backend,
            clock,
            server: ServerHandle { shutdown, task: Some(task) },
            database,
        }
    }
}

/// Owns the server task; cancelling on drop stops it.
struct ServerHandle {
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl ServerHandle {
    async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let task = self.task.take().expect("stop runs once");
        task.await?
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn mint(store: &DynStore, app: Option<AppId>, at: chrono::DateTime<chrono::Utc>) -> String {
    let (token, record) = herald_api::auth::mint_token(app, at, &mut rand::rng());
    store.create_token(record).await.expect("store a test token");
    token
}
