//! The typed configuration: one section per part of the server, built from the
//! merged layers.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::Path,
    str::FromStr,
    time::Duration,
};

use herald_core::{net::AllowList, retry::parse_duration};
use secrecy::SecretString;

use super::{
    ConfigError, DEFAULT_TOML, DatabaseUrl, Origin, Overrides, RateLimit,
    layers::Layers,
    parse::{
        parse_admin_token, parse_byte_size, parse_count, parse_dedup_window, parse_ingest_rate_limit, parse_millis,
        parse_optional_millis, parse_public_url, parse_rate_limit,
    },
};

/// Herald's whole configuration, validated. Build it with [`Config::load`], or start
/// from [`Config::default`] and change fields in code (tests do).
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub auth: AuthConfig,
    pub api: ApiSettings,
    pub net: NetConfig,
    pub worker: WorkerConfig,
    pub retention: RetentionConfig,
    pub log: LogConfig,
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind (`HERALD_LISTEN`).
    pub listen: SocketAddr,
    /// Base URL for links (`HERALD_PUBLIC_URL`), without a trailing slash; `None`
    /// derives it from the bound address.
    pub public_url: Option<String>,
    /// Deadline for producing a response (`HERALD_SERVER__REQUEST_TIMEOUT`).
    pub request_timeout: Duration,
    /// What this node runs (`HERALD_ROLE`).
    pub role: Role,
    /// Inbound connection limits (`server.*_timeout_ms`, `server.max_connections`).
    pub connections: ConnectionLimits,
}

/// How long inbound connections may wait and how many may be open; see
/// `config.default.toml` for what each bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a connection's start, or the first byte of a later request, until its
    /// request head is complete (`server.header_read_timeout_ms`).
    pub header_read_timeout: Duration,
    /// Between a response and the next request's first byte
    /// (`server.keep_alive_timeout_ms`).
    pub keep_alive_timeout: Duration,
    /// While a handler waits for more of a request body (`server.body_timeout_ms`).
    pub body_timeout: Duration,
    /// Most open connections; `None` (written 0) derives it from the file descriptor
    /// limit (`server.max_connections`).
    pub max_connections: Option<usize>,
}

/// What a node runs. Any number of nodes of any role can share one PostgreSQL database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// The HTTP API only: messages are accepted and stored, other nodes deliver them.
    Api,
    /// The delivery dispatcher only; the listener answers `GET /api/v1/health` and
    /// nothing else.
    Worker,
    /// Both (the default).
    #[default]
    All,
}

impl Role {
    /// Whether this node serves the HTTP API.
    pub fn is_api(self) -> bool {
        matches!(self, Self::Api | Self::All)
    }

    /// Whether this node runs the delivery dispatcher.
    pub fn is_worker(self) -> bool {
        matches!(self, Self::Worker | Self::All)
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api" => Ok(Self::Api),
            "worker" => Ok(Self::Worker),
            "all" => Ok(Self::All),
            _ => Err("expected `api`, `worker` or `all`".to_owned()),
        }
    }
}

/// `[store]`: where data lives.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `HERALD_DATABASE_URL`.
    pub database_url: DatabaseUrl,
    /// PostgreSQL: connections in this node's pool (`store.pool_size`).
    pub pool_size: u32,
    /// PostgreSQL: the longest one statement may run; `None` (written 0) for no limit
    /// (`store.statement_timeout_ms`).
    pub statement_timeout: Option<Duration>,
    /// PostgreSQL: the longest a request waits for a pooled connection before it is
    /// answered 503 (`store.acquire_timeout_ms`).
    pub acquire_timeout: Duration,
}

/// `[auth]`: the bootstrap admin token.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `HERALD_ADMIN_TOKEN`; redacted in `Debug`.
    pub admin_token: Option<SecretString>,
}

/// `[api]`: limits of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `HERALD_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `HERALD_RATE_LIMIT`; `None` is off.
    pub rate_limit: Option<RateLimit>,
    /// `HERALD_INGEST_DEDUP_WINDOW`: how long an ingest source remembers provider event ids.
    pub ingest_dedup_window: Duration,
    /// `HERALD_INGEST_RATE_LIMIT`: the token bucket of each ingest source; `None` is off.
    pub ingest_rate_limit: Option<RateLimit>,
    /// Idle time before a live stream sends a heartbeat (`api.stream_heartbeat_ms`).
    pub stream_heartbeat: Duration,
    /// A live stream reader slower than this to take one event is disconnected
    /// (`api.stream_slow_reader_timeout_ms`).
    pub stream_slow_reader_timeout: Duration,
    /// Most bytes of request bodies all requests together may hold buffered
    /// (`api.body_budget_bytes`); past it a request is answered 503.
    pub body_budget_bytes: usize,
}

/// `[net]`: the outbound SSRF guard.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// `HERALD_ALLOW_CIDRS`: ranges outbound delivery may reach although blocked.
    pub allow_cidrs: AllowList,
}

/// `[worker]`: delivery. The worker's own type; its SSRF allow-list comes from `[net]`
/// (see [`Config::worker_config`]), and keys without a setting keep the worker's defaults.
pub use herald_worker::WorkerConfig;

/// `[retention]`: the sweeper that drops expired payloads and old attempts (worker role).
pub use herald_worker::RetentionConfig;

/// `[log]`: log output.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogConfig {
    /// `HERALD_LOG_FORMAT`.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Config {
    /// Merges the layers and validates every value.
    ///
    /// `env` is the process environment (only `HERALD_*` names are looked at);
    /// `file` is the `--config` file; `flags` the command-line values.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>, flags: &Overrides) -> Result<Self, ConfigError> {
        let mut layers = Layers::default();
        layers.add_toml(DEFAULT_TOML, &Origin::Default, Path::new("config.default.toml"))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })?;
            layers.add_toml(&text, &Origin::File(path.to_owned()), path)?;
        }
        layers.add_env(env)?;
        layers.add_overrides(flags);
        Self::from_layers(&layers)
    }

    fn from_layers(l: &Layers) -> Result<Self, ConfigError> {
        let config = Self::parse_layers(l)?;
        if config.api.body_budget_bytes < config.api.max_body_bytes {
            let reason = "must be at least api.max_body_bytes, or no body of the largest size could be accepted";
            return Err(l.invalid("api.body_budget_bytes", reason.to_owned()));
        }
        // The worker's own rules tie keys together (e.g. the per-endpoint cap must leave
        // room for other endpoints); report them under the key they name.
        let section = |key: &str, prefix: &str| format!("{prefix}.{key}");
        config.worker_config().validate().map_err(|e| l.invalid(&section(e.key, "worker"), e.reason))?;
        config.retention.validate().map_err(|e| l.invalid(&section(e.key, "retention"), e.reason))?;
        Ok(config)
    }

    /// The dispatcher's settings: the `[worker]` section plus the SSRF allow-list from
    /// `[net]`, which the API's URL checks share.
    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig { allow_cidrs: self.net.allow_cidrs.clone(), ..self.worker.clone() }
    }

    fn parse_layers(l: &Layers) -> Result<Self, ConfigError> {
        Ok(Self {
            server: ServerConfig {
                listen: l.require("server.listen", |v| {
                    v.parse().map_err(|_| "expected IP:PORT, such as 127.0.0.1:8071 or [::]:8071".to_owned())
                })?,
                public_url: l.get("server.public_url", parse_public_url)?,
                request_timeout: l.require("server.request_timeout", |v| match parse_duration(v) {
                    Ok(d) if d.is_zero() => Err("must be longer than 0s".to_owned()),
                    Ok(d) => Ok(d),
                    Err(e) => Err(e.to_string()),
                })?,
                role: l.require("server.role", str::parse)?,
                connections: ConnectionLimits {
                    header_read_timeout: l.require("server.header_read_timeout_ms", |v| parse_millis(v, 1))?,
                    keep_alive_timeout: l.require("server.keep_alive_timeout_ms", |v| parse_millis(v, 1))?,
                    body_timeout: l.require("server.body_timeout_ms", |v| parse_millis(v, 1))?,
                    max_connections: l.require("server.max_connections", |v| {
                        parse_count(v, 0, 10_000_000).map(|n| (n != 0).then_some(n as usize))
                    })?,
                },
            },
            store: StoreConfig {
                database_url: l.require("store.database_url", str::parse)?,
                pool_size: l.require("store.pool_size", |v| parse_count(v, 1, 10_000))?,
                statement_timeout: l.require("store.statement_timeout_ms", |v| {
                    parse_millis(v, 0).map(|d| (!d.is_zero()).then_some(d))
                })?,
                acquire_timeout: l.require("store.acquire_timeout_ms", |v| parse_millis(v, 1))?,
            },
            auth: AuthConfig { admin_token: l.get("auth.admin_token", parse_admin_token)? },
            api: ApiSettings {
                max_body_bytes: l.require("api.max_body_bytes", parse_byte_size)?,
                rate_limit: l.require("api.rate_limit", parse_rate_limit)?,
                ingest_dedup_window: l.require("api.ingest_dedup_window", parse_dedup_window)?,
                ingest_rate_limit: l.require("api.ingest_rate_limit", parse_ingest_rate_limit)?,
                stream_heartbeat: l.require("api.stream_heartbeat_ms", |v| parse_millis(v, 1))?,
                stream_slow_reader_timeout: l.require("api.stream_slow_reader_timeout_ms", |v| parse_millis(v, 1))?,
                body_budget_bytes: l.require("api.body_budget_bytes", parse_byte_size)?,
            },
            net: NetConfig {
                allow_cidrs: l.require("net.allow_cidrs", |v| AllowList::parse(v).map_err(|e| e.to_string()))?,
            },
            worker: WorkerConfig {
                retry_schedule: l.require("worker.retry_schedule", |v| v.parse().map_err(|e| format!("{e}")))?,
                // How the lease must relate to the timeout is the worker's rule, checked
                // once the whole config is read (`from_layers`).
                lease: l.require("worker.lease_ms", |v| parse_millis(v, 1))?,
                request_timeout: l.require("worker.request_timeout_ms", |v| parse_millis(v, 1))?,
                disable_after_failing: l.require("worker.disable_after_failing_ms", parse_optional_millis)?,
                poll_interval: l.require("worker.poll_interval_ms", |v| parse_millis(v, 1))?,
                batch_size: l.require("worker.batch_size", |v| parse_count(v, 1, 10_000))? as usize,
                max_in_flight: l.require("worker.max_in_flight", |v| parse_count(v, 1, 1_000_000))? as usize,
                max_in_flight_per_endpoint: l
                    .require("worker.max_in_flight_per_endpoint", |v| parse_count(v, 1, 100_000))?
                    as usize,
                ..WorkerConfig::default()
            },
            retention: RetentionConfig {
                interval: l.require("retention.interval_ms", |v| parse_millis(v, 1))?,
                attempt_retention_days: l.require("retention.attempt_retention_days", |v| parse_count(v, 1, 36_500))?,
                batch_size: l.require("retention.batch_size", |v| parse_count(v, 1, 100_000))? as usize,
                ingest_log_max_per_source: l
                    .require("retention.ingest_log_max_per_source", |v| parse_count(v, 1, 100_000_000))?
                    as usize,
            },
            log: LogConfig {
                format: l.require("log.format", |v| match v {
                    "human" => Ok(LogFormat::Human),
                    "json" => Ok(LogFormat::Json),
                    _ => Err("expected `human` or `json`".to_owned()),
                })?,
            },
        })
    }

    /// The base URL for links: the configured one, else derived from the address the
    /// server actually bound (loopback when it listens on all interfaces).
    pub fn public_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.server.public_url {
            return url.clone();
        }
        let mut addr = bound;
        if addr.ip().is_unspecified() {
            let loopback: IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            addr.set_ip(loopback);
        }
        format!("http://{addr}")
    }
}

impl Default for Config {
    /// The built-in defaults, as `config.default.toml` states them.
    fn default() -> Self {
        Self::load(None, &BTreeMap::new(), &Overrides::default()).expect("the built-in defaults are valid")
    }
}
