//! The Svix-compatible HTTP API: routers, handlers, extractors (auth, validated JSON,
//! pagination), the `*In`/`*Out`/`*Patch` types, the error-to-HTTP mapping,
//! idempotency keys, rate limits and the OpenAPI document.
//!
//! It talks to storage only through [`herald_store::Store`]; it never sends webhooks
//! and never reads the environment: the server passes an [`ApiConfig`] in.

use std::sync::Arc;

use herald_core::Clock;
use herald_store::DynStore;

/// Settings the API needs, filled in by the server from its merged configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body; larger ones get 413 before being read.
    pub max_body_bytes: usize,
    /// Per-token token bucket; `None` disables rate limiting.
    pub rate_limit: Option<RateLimit>,
    /// Base URL used in links Herald returns (e.g. `http://127.0.0.1:8071`).
    pub public_url: String,
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024, rate_limit: None, public_url: "http://127.0.0.1:8071".to_owned() }
    }
}

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub config: Arc<ApiConfig>,
    pub clock: Clock,
}
