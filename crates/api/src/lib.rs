//! The Svix-compatible HTTP API: routers, handlers, extractors (auth, validated JSON,
//! pagination), the `*In`/`*Out`/`*Patch` types, the error-to-HTTP mapping,
//! idempotency keys, rate limits and the OpenAPI document.
//!
//! It talks to storage only through [`herald_store::Store`]; it never sends webhooks
//! and never reads the environment: the server passes an [`ApiConfig`] in.

use std::sync::Arc;

use axum::{Router, middleware::from_fn_with_state, routing::get};
use herald_core::{Clock, net::AllowList};
use herald_metrics::Metrics;
use herald_store::DynStore;
use tokio_util::sync::CancellationToken;

pub mod auth;
mod cache;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod ingest;
pub mod openapi;
pub mod pagination;
pub mod params;
mod query;
pub mod ratelimit;
pub mod routes;

pub use error::ApiError;
pub use routes::stream::StreamConfig;

/// Settings the API needs, filled in by the server from its merged configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body; larger ones get 413 before being read.
    pub max_body_bytes: usize,
    /// Per-token token bucket; `None` disables rate limiting.
    pub rate_limit: Option<RateLimit>,
    /// Base URL used in links Herald returns (e.g. `http://127.0.0.1:8071`).
    pub public_url: String,
    /// How long an ingest source remembers a provider's event id: a retry within it
    /// is answered 2xx and not forwarded again.
    pub ingest_dedup_window: chrono::TimeDelta,
    /// Token bucket of each ingest source's URL; `None` disables it.
    pub ingest_rate_limit: Option<RateLimit>,
    /// The live event stream (SSE): heartbeats and slow readers.
    pub stream: StreamConfig,
}

/// The default of [`ApiConfig::ingest_dedup_window`]: seven days, the longest that
/// providers which sign no timestamp (GitHub, Shopify) are known to retry.
pub const DEFAULT_INGEST_DEDUP_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// The default of [`ApiConfig::ingest_rate_limit`]: generous enough for any provider's
/// steady stream, with two seconds' worth of burst for catching up after an outage.
pub const DEFAULT_INGEST_RATE_LIMIT: RateLimit = RateLimit { per_second: 1000.0, burst: 2000 };

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            rate_limit: None,
            public_url: "http://127.0.0.1:8071".to_owned(),
            ingest_dedup_window: DEFAULT_INGEST_DEDUP_WINDOW,
            ingest_rate_limit: Some(DEFAULT_INGEST_RATE_LIMIT),
            stream: StreamConfig::default(),
        }
    }
}

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub config: Arc<ApiConfig>,
    pub clock: Clock,
    /// The node's metrics registry; the API counts accepted messages into it.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the node shuts down: live streams end, so the server can drain.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// State over `store` with the given settings, time source and metrics registry,
    /// and a shutdown token nothing cancels (see [`AppState::with_shutdown`]).
    pub fn new(store: DynStore, config: ApiConfig, clock: Clock, metrics: Arc<Metrics>) -> Self {
        Self { store, config: Arc::new(config), clock, metrics, shutdown: CancellationToken::new() }
    }

    /// The same state, ending live streams when `shutdown` is cancelled.
    #[must_use]
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }
}

/// What handlers see: the server's [`AppState`] plus the API's own in-memory parts.
pub(crate) struct Ctx {
    pub store: DynStore,
    pub config: Arc<ApiConfig>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    pub tokens: auth::TokenCache,
    /// Ingest sources recently found by their URL token.
    pub sources: ingest::receive::SourceCache,
    /// Each ingest source's rate limit and request log fold.
    pub ingest_guard: ingest::guard::IngestGuard,
    pub limiter: Option<ratelimit::RateLimiter>,
    /// When set, endpoint URLs are also refused if they name a blocked address.
    pub ssrf_allow: Option<AllowList>,
    pub shutdown: CancellationToken,
}

impl Ctx {
    /// The current time from the injected clock, to the millisecond: stores keep no
    /// more, so what a write answers equals what a later read returns.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        herald_core::to_millis((self.clock)())
    }
}

pub(crate) type Shared = Arc<Ctx>;

/// Every route under `/api/v1`, with authentication, rate limiting, idempotency keys
/// and the body limit applied. The server adds tracing, request ids and timeouts.
///
/// Endpoint URLs are checked for syntax only; [`router_with_ssrf_guard`] also refuses
/// URLs whose host is a blocked IP literal or a loopback name.
pub fn router(state: AppState) -> Router {
    build(state, None)
}

/// [`router`], refusing endpoint URLs that name blocked addresses (422) unless `allow`
/// (the operator's `HERALD_ALLOW_CIDRS`) opens them.
pub fn router_with_ssrf_guard(state: AppState, allow: AllowList) -> Router {
    build(state, Some(allow))
}

fn build(state: AppState, ssrf_allow: Option<AllowList>) -> Router {
    let limiter = state.config.rate_limit.map(ratelimit::RateLimiter::new);
    let ingest_guard =
        ingest::guard::IngestGuard::new(state.config.ingest_rate_limit, herald_core::to_millis((state.clock)()));
    let ctx: Shared = Arc::new(Ctx {
        store: state.store,
        config: state.config,
        clock: state.clock,
        metrics: state.metrics,
        tokens: auth::TokenCache::new(auth::CACHE_TTL),
        sources: ingest::receive::SourceCache::new(ingest::receive::CACHE_TTL),
        ingest_guard,
        limiter,
        ssrf_allow,
        shutdown: state.shutdown,
    });
    let generic = routes::management()
        .merge(ingest::management())
        .route_layer(from_fn_with_state(ctx.clone(), idempotency::middleware));
    let protected =
        generic.merge(routes::messages::router()).route_layer(from_fn_with_state(ctx.clone(), auth::authenticate));
    // Without a bearer token: the ingest URL's token is in its path and each request is
    // verified by its source's scheme; the OpenAPI document is public.
    routes::public()
        .merge(ingest::public())
        .route("/api/v1/openapi.json", get(openapi::serve))
        .merge(protected)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(from_fn_with_state(ctx.clone(), extract::limit_body))
        .with_state(ctx)
}
