//! The wiring of a Herald node: open the store named by the DSN, make sure an admin
//! token exists, build the API state, wrap the router in the edge middleware, serve
//! until the shutdown token is cancelled.
//!
//! Business rules live elsewhere; this crate only connects the parts. The listener and
//! the shutdown signal are parameters, so tests run many real servers in one process.

use std::{io::Write, sync::Arc, time::Duration};

use anyhow::Context;
use herald_api::{ApiConfig, AppState, StreamConfig};
use herald_core::Clock;
use herald_metrics::Metrics;
use herald_store::DynStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod body_budget;
mod bootstrap;
pub mod config;
mod connections;
mod http;
pub mod telemetry;

pub use bootstrap::{Bootstrap, bootstrap_admin_token, minted_token_notice};
use config::DatabaseUrl;
pub use config::{Config, Role};

/// How long open connections get to finish after shutdown is requested, on top of
/// the request timeout, before `run` returns anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Opens the store that `config.store.database_url` names, creating and migrating
/// its schema when needed. On PostgreSQL, every node `LISTEN`s for wake-ups: workers
/// for due deliveries, API nodes for new messages (live streams).
///
/// # Errors
/// The database cannot be reached or opened, or its schema is newer than this release.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    match &config.store.database_url {
        DatabaseUrl::Sqlite(path) => {
            let store = herald_store_sqlite::SqliteStore::open(path)
                .with_context(|| format!("opening the SQLite database {}", path.display()))?;
            Ok(Arc::new(store))
        }
        url @ DatabaseUrl::Postgres(raw) => {
            let options = postgres_options(config);
            let store = herald_store_postgres::PostgresStore::connect(raw, options)
                .await
                // `url` displays without its password; the store's errors never carry it.
                .with_context(|| format!("opening the PostgreSQL database {url}"))?;
            Ok(Arc::new(store))
        }
    }
}

/// Creates or upgrades the schema of the configured database without starting
/// anything, and says what was done (for `herald migrate`).
///
/// # Errors
/// As [`open_store`].
pub async fn migrate(config: &Config) -> anyhow::Result<String> {
    match &config.store.database_url {
        DatabaseUrl::Sqlite(_) => {
            open_store(config).await?;
            Ok(format!("Database ready: {}", config.store.database_url))
        }
        url @ DatabaseUrl::Postgres(raw) => {
            let migrated = herald_store_postgres::PostgresStore::migrate(raw, &postgres_options(config))
                .await
                .with_context(|| format!("migrating the PostgreSQL database {url}"))?;
            Ok(if migrated.from == migrated.to {
                format!("Database ready: {url} (schema version {}, nothing to do)", migrated.to)
            } else {
                format!("Database ready: {url} (schema version {} -> {})", migrated.from, migrated.to)
            })
        }
    }
}

fn postgres_options(config: &Config) -> herald_store_postgres::PostgresOptions {
    herald_store_postgres::PostgresOptions {
        pool_size: config.store.pool_size,
        statement_timeout: config.store.statement_timeout,
        acquire_timeout: config.store.acquire_timeout,
        // Workers wait for due deliveries, API nodes' live streams for new messages.
        listen: true,
        ..herald_store_postgres::PostgresOptions::default()
    }
}

/// Runs a Herald node on `listener` until `shutdown` is cancelled: opens the store
/// ([`open_store`]), then [`run_with_store`].
///
/// # Errors
/// Start-up fails (store, auth bootstrap) or the listener fails.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    run_with_store(config, store, Arc::new(chrono::Utc::now), listener, shutdown).await
}

/// [`run`] with a store the caller opened and a time source (tests share the store
/// with the server and may control the clock).
///
/// `config.server.role` decides what runs: the API (`api`), the delivery dispatcher
/// (`worker`, whose listener answers only `GET /api/v1/health`), or both (`all`).
/// An API node bootstraps the admin token ([`bootstrap_admin_token`]); a generated
/// token is printed once to stdout. Then `Herald listening on http://ADDR` is printed
/// (the bound address, so port 0 works). It returns once the token is cancelled and
/// open connections have finished (or after a grace period).
///
/// # Errors
/// Start-up fails (auth bootstrap) or the listener fails.
pub async fn run_with_store(
    config: Config,
    store: DynStore,
    clock: Clock,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("reading the bound address")?;
    let role = config.server.role;
    // One registry per node: the API counts accepted messages, the dispatcher its
    // attempts, and `/metrics` (served in every role) renders both.
    let metrics = Metrics::new();
    let app = if role.is_api() {
        api_router(&config, store.clone(), clock.clone(), metrics.clone(), addr, shutdown.child_token()).await?
    } else {
        http::health_only(store.clone())
    };
    let budget = body_budget::BodyBudget::new(config.api.body_budget_bytes, config.api.max_body_bytes);
    let app =
        http::layers(app.merge(http::metrics(store.clone(), metrics.clone())), config.server.request_timeout, budget);
    let connections = connection_settings(&config);

    // The dispatcher stops claiming when `shutdown` fires and is awaited after the
    // listener has drained, so attempts in flight are recorded before `run` returns.
    // The retention sweeper runs beside it and stops once a sweep in progress is done.
    let workers = if role.is_worker() {
        let worker = config.worker_config();
        // Messages accepted here hand their due deliveries to this node's dispatcher,
        // leased under its lease; a batch's worth waits in memory, the rest in the table.
        let lease = chrono::TimeDelta::from_std(worker.lease).context("the worker lease is out of range")?;
        let (sender, receiver) = herald_store::handoff::channel(worker.batch_size, lease);
        store.hand_off_to(sender);
        let dispatcher = herald_worker::spawn_dispatcher_with_metrics(
            store.clone(),
            worker,
            clock.clone(),
            metrics,
            Some(receiver),
            shutdown.child_token(),
        )
        .context("starting the delivery dispatcher")?;
        let sweeper =
            herald_worker::spawn_retention_sweeper(store, config.retention.clone(), clock, shutdown.child_token());
        Some((dispatcher, sweeper))
    } else {
        None
    };

    tracing::info!(
        %addr,
        database = %config.store.database_url,
        ?role,
        max_connections = connections.cap,
        "Herald started"
    );
    // `println!` (not a raw stdout handle) so test harnesses capture it.
    println!("Herald listening on http://{addr}");

    let serve = connections::serve(listener, app, connections, shutdown.clone());
    let grace = config.server.request_timeout + DRAIN_GRACE;
    tokio::select! {
        () = serve => {}
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("connections still open {grace:?} after shutdown began; stopping anyway");
        }
    }
    if let Some((dispatcher, sweeper)) = workers {
        dispatcher.stopped().await.context("the delivery dispatcher panicked")?;
        sweeper.await.context("the retention sweeper panicked")?;
    }
    tracing::info!("Herald stopped");
    Ok(())
}

/// The inbound connection limits, with the cap derived from the file descriptor limit
/// (raised to the hard limit first) unless configured.
fn connection_settings(config: &Config) -> connections::Settings {
    let nofile = connections::fd_limit::raise_nofile_limit();
    // The database pool (SQLite's files are in the fixed reserve) and, on a worker,
    // one socket per delivery in flight.
    let pool = match config.store.database_url {
        DatabaseUrl::Postgres(_) => u64::from(config.store.pool_size) + 1,
        DatabaseUrl::Sqlite(_) => 0,
    };
    let deliveries = if config.server.role.is_worker() { config.worker.max_in_flight as u64 } else { 0 };
    let derived = connections::fd_limit::derived_cap(nofile, pool + deliveries);
    let cap = match config.server.connections.max_connections {
        Some(configured) if configured > derived => {
            tracing::warn!(
                configured,
                derived,
                nofile,
                "HERALD_MAX_CONNECTIONS is above what the file descriptor limit leaves free; the database \
                 and deliveries may run out of descriptors under load"
            );
            configured
        }
        Some(configured) => configured,
        None => derived,
    };
    connections::Settings { limits: config.server.connections, cap, drain_bytes: config.api.max_body_bytes }
}

/// The API of an `api` or `all` node: bootstraps the admin token (a generated one is
/// printed once to stdout), then builds the router.
async fn api_router(
    config: &Config,
    store: DynStore,
    clock: Clock,
    metrics: Arc<Metrics>,
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<axum::Router> {
    let public_url = config.public_url(addr);
    let outcome = bootstrap_admin_token(&*store, config.auth.admin_token.as_ref(), &clock).await?;
    if let Bootstrap::Minted(token) = &outcome {
        // Straight to stdout, never through the logger.
        write!(std::io::stdout().lock(), "{}", minted_token_notice(token, &public_url)).context(
            "printing the generated admin token (it is stored: set HERALD_ADMIN_TOKEN or run `herald token create`)",
        )?;
    }

    let api_config = ApiConfig {
        max_body_bytes: config.api.max_body_bytes,
        rate_limit: config.api.rate_limit,
        public_url,
        ingest_dedup_window: chrono::TimeDelta::from_std(config.api.ingest_dedup_window)
            .context("the ingest dedupe window is out of range")?,
        ingest_rate_limit: config.api.ingest_rate_limit,
        stream: StreamConfig {
            heartbeat: config.api.stream_heartbeat,
            slow_reader_timeout: config.api.stream_slow_reader_timeout,
        },
    };
    // Live streams end when the node shuts down, so the listener can drain.
    let state = AppState::new(store, api_config, clock, metrics).with_shutdown(shutdown);
    // Endpoint URLs naming blocked addresses are refused at write time (422) unless
    // HERALD_ALLOW_CIDRS opens them; the worker checks again at send time.
    Ok(herald_api::router_with_ssrf_guard(state, config.net.allow_cidrs.clone()))
}
