//! The settings table: every key with its environment name and flag, and the
//! command-line [`Overrides`] layer.

/// One configurable value: its key in TOML, its environment name and its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// `section.key` as written in a config file.
    pub key: &'static str,
    /// The documented environment variable (a short public name where one exists).
    pub env: &'static str,
    /// The `herald serve` flag, without the leading dashes, if there is one.
    pub flag: Option<&'static str>,
    /// Secret values are never echoed in error messages.
    pub secret: bool,
}

const fn setting(key: &'static str, env: &'static str, flag: Option<&'static str>) -> Setting {
    Setting { key, env, flag, secret: false }
}

/// Every setting Herald reads. Each can also be set as `HERALD_<SECTION>__<KEY>`.
pub const SETTINGS: &[Setting] = &[
    setting("server.listen", "HERALD_LISTEN", Some("listen")),
    setting("server.public_url", "HERALD_PUBLIC_URL", Some("public-url")),
    setting("server.request_timeout", "HERALD_SERVER__REQUEST_TIMEOUT", Some("request-timeout")),
    setting("server.role", "HERALD_ROLE", Some("role")),
    setting("server.header_read_timeout_ms", "HERALD_SERVER__HEADER_READ_TIMEOUT_MS", None),
    setting("server.keep_alive_timeout_ms", "HERALD_SERVER__KEEP_ALIVE_TIMEOUT_MS", None),
    setting("server.body_timeout_ms", "HERALD_SERVER__BODY_TIMEOUT_MS", None),
    setting("server.max_connections", "HERALD_MAX_CONNECTIONS", None),
    setting("store.database_url", "HERALD_DATABASE_URL", Some("database-url")),
    setting("store.pool_size", "HERALD_STORE__POOL_SIZE", None),
    setting("store.statement_timeout_ms", "HERALD_STORE__STATEMENT_TIMEOUT_MS", None),
    setting("store.acquire_timeout_ms", "HERALD_STORE__ACQUIRE_TIMEOUT_MS", None),
    Setting { key: "auth.admin_token", env: "HERALD_ADMIN_TOKEN", flag: None, secret: true },
    setting("api.max_body_bytes", "HERALD_MAX_BODY_BYTES", Some("max-body-bytes")),
    setting("api.rate_limit", "HERALD_RATE_LIMIT", Some("rate-limit")),
    setting("api.ingest_dedup_window", "HERALD_INGEST_DEDUP_WINDOW", None),
    setting("api.ingest_rate_limit", "HERALD_INGEST_RATE_LIMIT", None),
    setting("api.stream_heartbeat_ms", "HERALD_API__STREAM_HEARTBEAT_MS", None),
    setting("api.stream_slow_reader_timeout_ms", "HERALD_API__STREAM_SLOW_READER_TIMEOUT_MS", None),
    setting("api.body_budget_bytes", "HERALD_BODY_BUDGET_BYTES", None),
    setting("net.allow_cidrs", "HERALD_ALLOW_CIDRS", Some("allow-cidrs")),
    setting("worker.retry_schedule", "HERALD_RETRY_SCHEDULE", Some("retry-schedule")),
    setting("worker.lease_ms", "HERALD_WORKER__LEASE_MS", None),
    setting("worker.request_timeout_ms", "HERALD_WORKER__REQUEST_TIMEOUT_MS", None),
    setting("worker.disable_after_failing_ms", "HERALD_WORKER__DISABLE_AFTER_FAILING_MS", None),
    setting("worker.poll_interval_ms", "HERALD_WORKER__POLL_INTERVAL_MS", None),
    setting("worker.batch_size", "HERALD_WORKER__BATCH_SIZE", None),
    setting("worker.max_in_flight", "HERALD_WORKER__MAX_IN_FLIGHT", None),
    setting("worker.max_in_flight_per_endpoint", "HERALD_WORKER__MAX_IN_FLIGHT_PER_ENDPOINT", None),
    setting("retention.interval_ms", "HERALD_RETENTION__INTERVAL_MS", None),
    setting("retention.attempt_retention_days", "HERALD_RETENTION__ATTEMPT_RETENTION_DAYS", None),
    setting("retention.batch_size", "HERALD_RETENTION__BATCH_SIZE", None),
    setting("retention.ingest_log_max_per_source", "HERALD_INGEST_LOG_MAX_PER_SOURCE", None),
    setting("log.format", "HERALD_LOG_FORMAT", Some("log-format")),
];

pub(super) fn find_setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The long environment name of a key: `server.listen` → `HERALD_SERVER__LISTEN`.
pub fn long_env_name(key: &str) -> String {
    format!("HERALD_{}", key.replacen('.', "__", 1).to_ascii_uppercase())
}

/// Values given on the command line, by setting key (the top layer).
#[derive(Debug, Clone, Default)]
pub struct Overrides(pub(super) Vec<(&'static Setting, String)>);

impl Overrides {
    /// Sets `key` (e.g. `server.listen`) if `value` is `Some`.
    ///
    /// # Panics
    /// If `key` is not in [`SETTINGS`]: that is a bug in the caller, not bad input.
    pub fn set(&mut self, key: &str, value: Option<impl Into<String>>) -> &mut Self {
        let setting = find_setting(key).unwrap_or_else(|| panic!("`{key}` is not a setting"));
        if let Some(value) = value {
            self.0.push((setting, value.into()));
        }
        self
    }
}
