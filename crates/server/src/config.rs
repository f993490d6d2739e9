//! Herald's configuration: one typed [`Config`] with a section per part of the server,
//! merged from four layers, later ones winning:
//!
//! 1. the built-in defaults, [`DEFAULT_TOML`] (`config.default.toml`, the commented
//!    reference of every key),
//! 2. an optional TOML file with the same keys,
//! 3. environment variables (passed in as a map, so nothing here reads the process
//!    environment and tests never touch it),
//! 4. command-line flags ([`Overrides`]).
//!
//! Every setting is validated once, at start-up, and a bad one is reported by the name
//! it was given under (`HERALD_RETRY_SCHEDULE`, `--listen`, or the key in a file).

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

pub use herald_api::RateLimit;
use herald_core::{RetrySchedule, net::AllowList, retry::parse_duration};
use secrecy::SecretString;
use serde::Deserialize;

/// The commented reference configuration, built into the binary as the lowest layer.
pub const DEFAULT_TOML: &str = include_str!("../config.default.toml");

/// Shortest accepted `HERALD_ADMIN_TOKEN`, so a guessable bootstrap token is refused.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

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

fn find_setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The long environment name of a key: `server.listen` → `HERALD_SERVER__LISTEN`.
pub fn long_env_name(key: &str) -> String {
    format!("HERALD_{}", key.replacen('.', "__", 1).to_ascii_uppercase())
}

/// Where a value came from, to name it in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in `config.default.toml`.
    Default,
    /// A config file given with `--config`.
    File(PathBuf),
    /// An environment variable, by the name it was set under.
    Env(String),
    /// A command-line flag (without dashes).
    Flag(&'static str),
}

/// Why the configuration cannot be used. Every variant names the offending setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys or wrong types.
    #[error("invalid config file {}: {message}", path.display())]
    ParseFile { path: PathBuf, message: String },
    /// A `HERALD_<SECTION>__<KEY>` variable names no setting.
    #[error("{0} is not a Herald setting (see `herald serve --help`)")]
    UnknownEnv(String),
    /// A setting was given under both its short and its long environment name.
    #[error("both {0} and {1} are set; keep one")]
    DuplicateEnv(String, String),
    /// A value does not parse or is out of range.
    #[error("invalid {}: {reason}", describe(setting, origin, value.as_deref()))]
    Invalid {
        setting: &'static Setting,
        origin: Origin,
        /// The offending value, `None` for secrets.
        value: Option<String>,
        reason: String,
    },
}

fn describe(setting: &Setting, origin: &Origin, value: Option<&str>) -> String {
    let name = match origin {
        Origin::Env(name) => name.clone(),
        Origin::Flag(flag) => format!("--{flag} ({})", setting.env),
        Origin::File(path) => format!("`{}` in {} ({})", setting.key, path.display(), setting.env),
        Origin::Default => format!("built-in default `{}` ({})", setting.key, setting.env),
    };
    match value {
        Some(v) => format!("{name} {v:?}"),
        None => name,
    }
}

/// Values given on the command line, by setting key (the top layer).
#[derive(Debug, Clone, Default)]
pub struct Overrides(Vec<(&'static Setting, String)>);

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

// ---------------------------------------------------------------------------------
// Raw layers: what a TOML file may contain. Unknown keys and wrong types are errors.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    net: RawNet,
    #[serde(default)]
    worker: RawWorker,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    log: RawLog,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    public_url: Option<String>,
    request_timeout: Option<String>,
    role: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    database_url: Option<String>,
    pool_size: Option<Scalar>,
    statement_timeout_ms: Option<Scalar>,
    acquire_timeout_ms: Option<Scalar>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    admin_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApi {
    max_body_bytes: Option<Scalar>,
    rate_limit: Option<String>,
    ingest_dedup_window: Option<String>,
    ingest_rate_limit: Option<String>,
    stream_heartbeat_ms: Option<Scalar>,
    stream_slow_reader_timeout_ms: Option<Scalar>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNet {
    allow_cidrs: Option<StringOrList>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    retry_schedule: Option<String>,
    lease_ms: Option<Scalar>,
    request_timeout_ms: Option<Scalar>,
    disable_after_failing_ms: Option<Scalar>,
    poll_interval_ms: Option<Scalar>,
    batch_size: Option<Scalar>,
    max_in_flight: Option<Scalar>,
    max_in_flight_per_endpoint: Option<Scalar>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    interval_ms: Option<Scalar>,
    attempt_retention_days: Option<Scalar>,
    batch_size: Option<Scalar>,
    ingest_log_max_per_source: Option<Scalar>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
}

/// A number may be written bare (`1048576`) or as a string with a unit (`"1MiB"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(u64),
    Str(String),
}

/// A list may be a TOML array or one comma-separated string, as in the environment.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    List(Vec<String>),
    Str(String),
}

impl RawFile {
    /// The values set in this layer, as the strings the environment would give.
    fn into_values(self) -> Vec<(&'static str, String)> {
        let scalar = |s: Scalar| match s {
            Scalar::Int(n) => n.to_string(),
            Scalar::Str(s) => s,
        };
        let list = |l: StringOrList| match l {
            StringOrList::List(items) => items.join(","),
            StringOrList::Str(s) => s,
        };
        [
            ("server.listen", self.server.listen),
            ("server.public_url", self.server.public_url),
            ("server.request_timeout", self.server.request_timeout),
            ("server.role", self.server.role),
            ("store.database_url", self.store.database_url),
            ("store.pool_size", self.store.pool_size.map(scalar)),
            ("store.statement_timeout_ms", self.store.statement_timeout_ms.map(scalar)),
            ("store.acquire_timeout_ms", self.store.acquire_timeout_ms.map(scalar)),
            ("auth.admin_token", self.auth.admin_token),
            ("api.max_body_bytes", self.api.max_body_bytes.map(scalar)),
            ("api.rate_limit", self.api.rate_limit),
            ("api.ingest_dedup_window", self.api.ingest_dedup_window),
            ("api.ingest_rate_limit", self.api.ingest_rate_limit),
            ("api.stream_heartbeat_ms", self.api.stream_heartbeat_ms.map(scalar)),
            ("api.stream_slow_reader_timeout_ms", self.api.stream_slow_reader_timeout_ms.map(scalar)),
            ("net.allow_cidrs", self.net.allow_cidrs.map(list)),
            ("worker.retry_schedule", self.worker.retry_schedule),
            ("worker.lease_ms", self.worker.lease_ms.map(scalar)),
            ("worker.request_timeout_ms", self.worker.request_timeout_ms.map(scalar)),
            ("worker.disable_after_failing_ms", self.worker.disable_after_failing_ms.map(scalar)),
            ("worker.poll_interval_ms", self.worker.poll_interval_ms.map(scalar)),
            ("worker.batch_size", self.worker.batch_size.map(scalar)),
            ("worker.max_in_flight", self.worker.max_in_flight.map(scalar)),
            ("worker.max_in_flight_per_endpoint", self.worker.max_in_flight_per_endpoint.map(scalar)),
            ("retention.interval_ms", self.retention.interval_ms.map(scalar)),
            ("retention.attempt_retention_days", self.retention.attempt_retention_days.map(scalar)),
            ("retention.batch_size", self.retention.batch_size.map(scalar)),
            ("retention.ingest_log_max_per_source", self.retention.ingest_log_max_per_source.map(scalar)),
            ("log.format", self.log.format),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect()
    }
}

/// The merged layers: the winning value of each key and where it came from.
#[derive(Default)]
struct Layers(BTreeMap<&'static str, (String, Origin)>);

impl Layers {
    fn put(&mut self, key: &str, value: String, origin: Origin) {
        let setting = find_setting(key).expect("layers only hold known keys");
        self.0.insert(setting.key, (value, origin));
    }

    fn add_toml(&mut self, text: &str, origin: &Origin, path: &Path) -> Result<(), ConfigError> {
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| ConfigError::ParseFile { path: path.to_owned(), message: e.to_string() })?;
        for (key, value) in raw.into_values() {
            self.put(key, value, origin.clone());
        }
        Ok(())
    }

    fn add_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let mut seen: BTreeMap<&'static str, String> = BTreeMap::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("HERALD_") else { continue };
            let setting = match SETTINGS.iter().find(|s| s.env == name) {
                Some(s) => s,
                // Other `HERALD_*` names without `__` (e.g. `HERALD_TOKEN` in scripts)
                // are not settings; the `__` form is reserved, so typos there fail.
                None => match rest.split_once("__") {
                    Some((section, key)) => {
                        let key = format!("{}.{}", section.to_ascii_lowercase(), key.to_ascii_lowercase());
                        find_setting(&key).ok_or_else(|| ConfigError::UnknownEnv(name.clone()))?
                    }
                    None => continue,
                },
            };
            if let Some(other) = seen.insert(setting.key, name.clone()) {
                return Err(ConfigError::DuplicateEnv(other, name.clone()));
            }
            self.put(setting.key, value.clone(), Origin::Env(name.clone()));
        }
        Ok(())
    }

    fn add_overrides(&mut self, overrides: &Overrides) {
        for (setting, value) in &overrides.0 {
            let flag = setting.flag.unwrap_or(setting.key);
            self.put(setting.key, value.clone(), Origin::Flag(flag));
        }
    }

    /// Parses the value of `key`, naming the setting on failure.
    fn get<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<Option<T>, ConfigError> {
        let setting = find_setting(key).expect("known key");
        let Some((value, origin)) = self.0.get(setting.key) else { return Ok(None) };
        parse(value).map(Some).map_err(|reason| ConfigError::Invalid {
            setting,
            origin: origin.clone(),
            value: (!setting.secret).then(|| value.clone()),
            reason,
        })
    }

    /// A [`ConfigError::Invalid`] for `key` as currently set, for rules that tie several
    /// keys together and are checked after each one parsed.
    fn invalid(&self, key: &str, reason: String) -> ConfigError {
        let setting = find_setting(key).expect("only keys with a setting can be set to a bad value");
        let (value, origin) = self.0.get(setting.key).cloned().unwrap_or_else(|| (String::new(), Origin::Default));
        ConfigError::Invalid { setting, origin, value: (!setting.secret).then_some(value), reason }
    }

    /// Like [`Self::get`] for keys the built-in defaults always set.
    fn require<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        Ok(self.get(key, parse)?.unwrap_or_else(|| panic!("config.default.toml sets `{key}`")))
    }
}

// ---------------------------------------------------------------------------------
// The typed configuration.

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
}

/// `[net]`: the outbound SSRF guard.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// `HERALD_ALLOW_CIDRS`: ranges outbound delivery may reach although blocked.
    pub allow_cidrs: AllowList,
}

/// `[worker]`: delivery.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `HERALD_RETRY_SCHEDULE`.
    pub retry_schedule: RetrySchedule,
    /// How long a claimed delivery stays reserved for this node (`worker.lease_ms`);
    /// a node that dies loses its claims when the lease runs out.
    pub lease: Duration,
    /// Deadline for one delivery attempt (`worker.request_timeout_ms`). The lease must
    /// exceed it by at least 5 s.
    pub request_timeout: Duration,
    /// An endpoint failing without a success for this long is disabled at its next
    /// failure; `None` (written 0) never (`worker.disable_after_failing_ms`).
    pub disable_after_failing: Option<Duration>,
    /// The safety-net sweep for due deliveries (`worker.poll_interval_ms`).
    pub poll_interval: Duration,
    /// Most deliveries claimed in one store call (`worker.batch_size`).
    pub batch_size: usize,
    /// Most deliveries this node holds at once (`worker.max_in_flight`).
    pub max_in_flight: usize,
    /// Most concurrent requests to one endpoint (`worker.max_in_flight_per_endpoint`).
    pub max_in_flight_per_endpoint: usize,
}

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
        // The worker's own rules tie keys together (e.g. the per-endpoint cap must leave
        // room for other endpoints); report them under the key they name.
        let section = |key: &str, prefix: &str| format!("{prefix}.{key}");
        config.worker_config().validate().map_err(|e| l.invalid(&section(e.key, "worker"), e.reason))?;
        config.retention.validate().map_err(|e| l.invalid(&section(e.key, "retention"), e.reason))?;
        Ok(config)
    }

    /// The dispatcher's settings: the `[worker]` section plus the SSRF allow-list from
    /// `[net]`; keys without a setting keep the worker's defaults.
    pub fn worker_config(&self) -> herald_worker::WorkerConfig {
        let w = &self.worker;
        herald_worker::WorkerConfig {
            retry_schedule: w.retry_schedule.clone(),
            allow_cidrs: self.net.allow_cidrs.clone(),
            lease: w.lease,
            request_timeout: w.request_timeout,
            disable_after_failing: w.disable_after_failing,
            poll_interval: w.poll_interval,
            batch_size: w.batch_size,
            max_in_flight: w.max_in_flight,
            max_in_flight_per_endpoint: w.max_in_flight_per_endpoint,
            ..herald_worker::WorkerConfig::default()
        }
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

fn parse_public_url(v: &str) -> Result<String, String> {
    let url = url::Url::parse(v).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err("expected an http:// or https:// URL with a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn parse_admin_token(v: &str) -> Result<SecretString, String> {
    if v.chars().count() < MIN_ADMIN_TOKEN_LEN {
        return Err(format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters"));
    }
    if !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".to_owned());
    }
    Ok(SecretString::from(v))
}

/// Parses a whole number between `min` and `max`.
fn parse_count(v: &str, min: u32, max: u32) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {min} to {max}")),
    }
}

/// Parses a number of milliseconds, at least `min` and at most a day.
fn parse_millis(v: &str, min: u64) -> Result<Duration, String> {
    const DAY_MS: u64 = 24 * 60 * 60 * 1000;
    match v.parse::<u64>() {
        Ok(n) if (min..=DAY_MS).contains(&n) => Ok(Duration::from_millis(n)),
        _ => Err(format!("expected a number of milliseconds from {min} to {DAY_MS}")),
    }
}

/// Parses a number of milliseconds up to a year; `0` turns the feature off (`None`).
fn parse_optional_millis(v: &str) -> Result<Option<Duration>, String> {
    const YEAR_MS: u64 = 365 * 24 * 60 * 60 * 1000;
    match v.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) if n <= YEAR_MS => Ok(Some(Duration::from_millis(n))),
        _ => Err(format!("expected a number of milliseconds up to {YEAR_MS}, or 0 for never")),
    }
}

/// Parses `1048576`, `64KiB` or `1MiB` (also `KB`/`MB` as powers of 1000).
fn parse_byte_size(v: &str) -> Result<usize, String> {
    let bad = || "expected a number of bytes, such as 1048576, 512KiB or 1MiB".to_owned();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: usize = num.parse().map_err(|_| bad())?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "KB" => 1000,
        "MB" => 1_000_000,
        _ => return Err(bad()),
    };
    let bytes = n.checked_mul(factor).ok_or_else(bad)?;
    if bytes == 0 || bytes > 1024 * 1024 * 1024 {
        return Err("must be between 1 byte and 1GiB".to_owned());
    }
    Ok(bytes)
}

/// Parses `off`, `100/s`, `600/m` or `100/s,burst=200`.
/// A duration from 1 s to 90 days: long enough to outlast a provider's retries, and
/// no longer than a message's payload is kept.
fn parse_dedup_window(v: &str) -> Result<Duration, String> {
    match parse_duration(v) {
        Ok(d) if (Duration::from_secs(1)..=Duration::from_secs(90 * 86_400)).contains(&d) => Ok(d),
        Ok(_) => Err("must be between 1s and 90d".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_rate_limit(v: &str) -> Result<Option<RateLimit>, String> {
    let bad = || "expected `off`, `RATE/s` or `RATE/m`, optionally `,burst=N` (e.g. `100/s,burst=200`)".to_owned();
    if v == "off" {
        return Ok(None);
    }
    let (rate, burst) = match v.split_once(',') {
        Some((rate, burst)) => (rate, Some(burst.trim().strip_prefix("burst=").ok_or_else(bad)?)),
        None => (v, None),
    };
    let (count, unit) = rate.trim().split_once('/').ok_or_else(bad)?;
    let count: f64 = count.parse().map_err(|_| bad())?;
    let per_second = match unit {
        "s" => count,
        "m" => count / 60.0,
        _ => return Err(bad()),
    };
    if !per_second.is_finite() || per_second <= 0.0 {
        return Err("the rate must be above 0".to_owned());
    }
    let burst = match burst {
        Some(b) => b.parse::<u32>().map_err(|_| bad())?,
        None => per_second.ceil().min(f64::from(u32::MAX)) as u32,
    };
    if burst == 0 {
        return Err("the burst must be at least 1".to_owned());
    }
    Ok(Some(RateLimit { per_second, burst }))
}

/// [`parse_rate_limit`]'s forms, plus `0` for off and a bare number as a rate per
/// second. Without `,burst=N` the burst is two seconds' worth: providers send in
/// bursts when they catch up after an outage, and those should get through.
fn parse_ingest_rate_limit(v: &str) -> Result<Option<RateLimit>, String> {
    let v = v.trim();
    if v == "0" {
        return Ok(None);
    }
    let spelled = if v.parse::<f64>().is_ok() { format!("{v}/s") } else { v.to_owned() };
    let limit = parse_rate_limit(&spelled)?;
    if spelled.contains(',') {
        return Ok(limit);
    }
    Ok(limit.map(|l| RateLimit { burst: (l.per_second * 2.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32, ..l }))
}

// ---------------------------------------------------------------------------------

/// A database location, by scheme. `Debug` and `Display` hide any password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file (created with its schema when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (not supported by this release; the store says so at start).
    Postgres(String),
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")) {
            if path.is_empty() || path.contains('?') {
                return Err(
                    "expected sqlite://PATH, such as sqlite://herald.db or sqlite:///var/lib/herald.db".to_owned()
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres(s.to_owned()));
        }
        Err("expected sqlite://PATH or postgres://…".to_owned())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        // Cannot fail: a URL with a password has a host.
                        let _ = parsed.set_password(Some("REDACTED"));
                    }
                    f.write_str(parsed.as_str())
                }
                Err(_) => f.write_str("postgres://(unparsable, hidden)"),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(None, &env(pairs), &Overrides::default())
    }

    fn write_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("herald.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.server.listen, "127.0.0.1:8071".parse().unwrap());
        assert_eq!(c.store.database_url, DatabaseUrl::Sqlite("herald.db".into()));
        assert_eq!(c.server.role, Role::All);
        assert_eq!(c.store.pool_size, 10);
        assert_eq!(c.store.statement_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.store.acquire_timeout, Duration::from_secs(5));
        assert_eq!((c.worker.lease, c.worker.request_timeout), (Duration::from_secs(60), Duration::from_secs(15)));
        assert!(c.auth.admin_token.is_none());
        assert_eq!(c.api.max_body_bytes, 1024 * 1024);
        assert_eq!(c.api.stream_heartbeat, Duration::from_secs(15));
        assert_eq!(c.api.stream_slow_reader_timeout, Duration::from_secs(30));
        assert_eq!(c.api.rate_limit, None);
        assert_eq!(c.api.ingest_dedup_window, Duration::from_secs(7 * 86_400));
        assert_eq!(c.api.ingest_rate_limit, Some(RateLimit { per_second: 1000.0, burst: 2000 }));
        assert!(c.net.allow_cidrs.cidrs().is_empty());
        assert_eq!(c.worker.retry_schedule, RetrySchedule::default());
        assert_eq!(c.log.format, LogFormat::Human);
        assert_eq!(c.server.request_timeout, Duration::from_secs(30));
        // The worker's and the sweeper's own defaults, stated once more in the file.
        let worker = c.worker_config();
        assert_eq!(
            worker,
            herald_worker::WorkerConfig { allow_cidrs: worker.allow_cidrs.clone(), ..Default::default() }
        );
        assert_eq!(c.retention, RetentionConfig::default());
        assert_eq!(c.public_url(c.server.listen), "http://127.0.0.1:8071");
    }

    #[test]
    fn default_file_documents_every_setting_and_its_env_name() {
        for s in SETTINGS {
            let (section, key) = s.key.split_once('.').unwrap();
            assert!(DEFAULT_TOML.contains(&format!("[{section}]")), "{section} section missing");
            assert!(DEFAULT_TOML.contains(&format!("{key} = ")), "{} missing", s.key);
            assert!(DEFAULT_TOML.contains(s.env), "{} missing", s.env);
        }
    }

    #[test]
    fn every_setting_is_read_from_a_file() {
        // A file setting every key to a non-default value changes every field.
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(
            &dir,
            r#"
            [server]
            listen = "0.0.0.0:9000"
            public_url = "https://hooks.example.com/"
            request_timeout = "5s"
            role = "worker"
            [store]
            database_url = "sqlite:///var/lib/herald/data.db"
            pool_size = 3
            statement_timeout_ms = 0
            acquire_timeout_ms = "250"
            [auth]
            admin_token = "0123456789abcdef0123"
            [api]
            max_body_bytes = 2048
            rate_limit = "10/s,burst=20"
            ingest_dedup_window = "36h"
            ingest_rate_limit = "5/s,burst=7"
            stream_heartbeat_ms = 500
            stream_slow_reader_timeout_ms = "700"
            [net]
            allow_cidrs = ["10.0.0.0/8", "::1"]
            [worker]
            retry_schedule = "1s,2s"
            lease_ms = 9000
            request_timeout_ms = 4000
            disable_after_failing_ms = 0
            poll_interval_ms = 250
            batch_size = 7
            max_in_flight = 90
            max_in_flight_per_endpoint = 3
            [retention]
            interval_ms = 1500
            attempt_retention_days = 7
            batch_size = 50
            ingest_log_max_per_source = 500
            [log]
            format = "json"
            "#,
        );
        let c = Config::load(Some(&path), &BTreeMap::new(), &Overrides::default()).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.server.public_url.as_deref(), Some("https://hooks.example.com"));
        assert_eq!(c.server.request_timeout, Duration::from_secs(5));
        assert_eq!(c.server.role, Role::Worker);
        assert_eq!(c.store.database_url, DatabaseUrl::Sqlite("/var/lib/herald/data.db".into()));
        assert_eq!((c.store.pool_size, c.store.statement_timeout), (3, None));
        assert_eq!(c.store.acquire_timeout, Duration::from_millis(250));
        assert_eq!(c.auth.admin_token.as_ref().unwrap().expose_secret(), "0123456789abcdef0123");
        assert_eq!(c.api.max_body_bytes, 2048);
        assert_eq!(c.api.rate_limit, Some(RateLimit { per_second: 10.0, burst: 20 }));
        assert_eq!(c.api.ingest_dedup_window, Duration::from_secs(36 * 3600));
        assert_eq!(c.api.ingest_rate_limit, Some(RateLimit { per_second: 5.0, burst: 7 }));
        assert_eq!(c.api.stream_heartbeat, Duration::from_millis(500));
        assert_eq!(c.api.stream_slow_reader_timeout, Duration::from_millis(700));
        let cidrs: Vec<String> = c.net.allow_cidrs.cidrs().iter().map(ToString::to_string).collect();
        assert_eq!(cidrs, ["10.0.0.0/8", "::1/128"]);
        assert_eq!(c.worker.retry_schedule.to_string(), "1s,2s");
        assert_eq!((c.worker.lease, c.worker.request_timeout), (Duration::from_secs(9), Duration::from_secs(4)));
        let worker = c.worker_config();
        assert_eq!((worker.disable_after_failing, worker.poll_interval), (None, Duration::from_millis(250)));
        assert_eq!((worker.batch_size, worker.max_in_flight, worker.max_in_flight_per_endpoint), (7, 90, 3));
        assert_eq!(worker.allow_cidrs, c.net.allow_cidrs);
        let retention = RetentionConfig {
            interval: Duration::from_millis(1500),
            attempt_retention_days: 7,
            batch_size: 50,
            ingest_log_max_per_source: 500,
        };
        assert_eq!(c.retention, retention);
        assert_eq!(c.log.format, LogFormat::Json);
        // Every setting in the table went through the file path.
        assert_eq!(SETTINGS.len(), 29);
    }

    #[test]
    fn later_layers_win_default_file_env_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(
            &dir,
            "[server]\nlisten = \"127.0.0.1:1001\"\n[worker]\nretry_schedule = \"1s\"\n[log]\nformat = \"json\"\n",
        );
        let environment = env(&[("HERALD_LISTEN", "127.0.0.1:1002"), ("HERALD_RETRY_SCHEDULE", "2s")]);
        let mut flags = Overrides::default();
        flags.set("server.listen", Some("127.0.0.1:1003"));

        let c = Config::load(Some(&path), &environment, &flags).unwrap();
        assert_eq!(c.server.listen.port(), 1003, "flag beats env");
        assert_eq!(c.worker.retry_schedule.to_string(), "2s", "env beats file");
        assert_eq!(c.log.format, LogFormat::Json, "file beats default");
        assert_eq!(c.api.max_body_bytes, 1024 * 1024, "default stays when nothing overrides");

        let c = Config::load(Some(&path), &BTreeMap::new(), &Overrides::default()).unwrap();
        assert_eq!(c.server.listen.port(), 1001, "file beats default");
    }

    #[test]
    fn long_env_names_work_and_clash_with_short_ones() {
        let c =
            load_env(&[("HERALD_API__MAX_BODY_BYTES", "64KiB"), ("HERALD_SERVER__REQUEST_TIMEOUT", "250ms")]).unwrap();
        assert_eq!(c.api.max_body_bytes, 64 * 1024);
        assert_eq!(c.server.request_timeout, Duration::from_millis(250));

        let err = load_env(&[("HERALD_LISTEN", "127.0.0.1:1"), ("HERALD_SERVER__LISTEN", "127.0.0.1:2")]).unwrap_err();
        assert!(matches!(err, ConfigError::DuplicateEnv(..)), "{err}");
    }

    #[test]
    fn unrelated_env_is_ignored_and_unknown_section_keys_fail() {
        assert!(load_env(&[("HERALD_TOKEN", "x"), ("PATH", "/bin"), ("HERALDRY", "y")]).is_ok());
        let err = load_env(&[("HERALD_API__MAX_BODY", "1")]).unwrap_err();
        assert_eq!(err.to_string(), "HERALD_API__MAX_BODY is not a Herald setting (see `herald serve --help`)");
    }

    #[test]
    fn unknown_file_keys_fail_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "[api]\nmax_body_byte = 10\n");
        let err = Config::load(Some(&path), &BTreeMap::new(), &Overrides::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("max_body_byte") && msg.contains("herald.toml"), "{msg}");

        let path = write_file(&dir, "[worker]\nretry_schedule = 5\n");
        let msg = Config::load(Some(&path), &BTreeMap::new(), &Overrides::default()).unwrap_err().to_string();
        assert!(msg.contains("retry_schedule"), "{msg}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/herald.toml")), &BTreeMap::new(), &Overrides::default())
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/herald.toml"), "{err}");
    }

    #[test]
    fn every_bad_value_names_its_setting() {
        let cases = [
            ("HERALD_LISTEN", "localhost"),
            ("HERALD_LISTEN", "127.0.0.1:99999"),
            ("HERALD_PUBLIC_URL", "ftp://x"),
            ("HERALD_PUBLIC_URL", "not a url"),
            ("HERALD_PUBLIC_URL", "http://x/?a=b"),
            ("HERALD_SERVER__REQUEST_TIMEOUT", "0s"),
            ("HERALD_SERVER__REQUEST_TIMEOUT", "soon"),
            ("HERALD_DATABASE_URL", "mysql://db"),
            ("HERALD_DATABASE_URL", "sqlite://"),
            ("HERALD_ADMIN_TOKEN", "short"),
            ("HERALD_ADMIN_TOKEN", "has spaces in it, sixteen+"),
            ("HERALD_MAX_BODY_BYTES", "0"),
            ("HERALD_MAX_BODY_BYTES", "1GB"),
            ("HERALD_MAX_BODY_BYTES", "2GiB"),
            ("HERALD_MAX_BODY_BYTES", "-5"),
            ("HERALD_RATE_LIMIT", "fast"),
            ("HERALD_RATE_LIMIT", "0/s"),
            ("HERALD_RATE_LIMIT", "10/h"),
            ("HERALD_RATE_LIMIT", "10/s,burst=0"),
            ("HERALD_RATE_LIMIT", "10/s,max=3"),
            ("HERALD_INGEST_DEDUP_WINDOW", "0s"),
            ("HERALD_INGEST_DEDUP_WINDOW", "91d"),
            ("HERALD_INGEST_DEDUP_WINDOW", "a week"),
            ("HERALD_INGEST_RATE_LIMIT", "-1"),
            ("HERALD_INGEST_RATE_LIMIT", "lots"),
            ("HERALD_INGEST_RATE_LIMIT", "10/s,burst=0"),
            ("HERALD_INGEST_LOG_MAX_PER_SOURCE", "0"),
            ("HERALD_INGEST_LOG_MAX_PER_SOURCE", "many"),
            ("HERALD_ALLOW_CIDRS", "10.0.0.0/33"),
            ("HERALD_ALLOW_CIDRS", "10.0.0.0/8,example.com"),
            ("HERALD_ALLOW_CIDRS", "::1/"),
            ("HERALD_ALLOW_CIDRS", "10.0.0.1/8"),
            ("HERALD_RETRY_SCHEDULE", "5x"),
            ("HERALD_RETRY_SCHEDULE", ""),
            ("HERALD_RETRY_SCHEDULE", "8d"),
            ("HERALD_LOG_FORMAT", "xml"),
            ("HERALD_ROLE", "both"),
            ("HERALD_STORE__POOL_SIZE", "0"),
            ("HERALD_STORE__STATEMENT_TIMEOUT_MS", "5s"),
            ("HERALD_STORE__ACQUIRE_TIMEOUT_MS", "0"),
            ("HERALD_WORKER__LEASE_MS", "-1"),
            ("HERALD_WORKER__REQUEST_TIMEOUT_MS", "0"),
            ("HERALD_WORKER__LEASE_MS", "19999"),
            ("HERALD_WORKER__DISABLE_AFTER_FAILING_MS", "-1"),
            ("HERALD_WORKER__DISABLE_AFTER_FAILING_MS", "5d"),
            ("HERALD_WORKER__POLL_INTERVAL_MS", "0"),
            ("HERALD_WORKER__BATCH_SIZE", "0"),
            ("HERALD_WORKER__MAX_IN_FLIGHT", "0"),
            ("HERALD_WORKER__MAX_IN_FLIGHT", "40"),
            ("HERALD_WORKER__MAX_IN_FLIGHT_PER_ENDPOINT", "0"),
            ("HERALD_RETENTION__INTERVAL_MS", "0"),
            ("HERALD_RETENTION__ATTEMPT_RETENTION_DAYS", "0"),
            ("HERALD_RETENTION__ATTEMPT_RETENTION_DAYS", "30d"),
            ("HERALD_RETENTION__BATCH_SIZE", "0"),
        ];
        for (name, value) in cases {
            let err = load_env(&[(name, value)]).expect_err(&format!("{name}={value:?} should be refused"));
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("invalid {name}")), "{name}={value:?}: {msg}");
        }
    }

    #[test]
    fn rules_across_worker_keys_name_the_key_at_fault() {
        let msg = load_env(&[("HERALD_WORKER__LEASE_MS", "19000")]).unwrap_err().to_string();
        assert!(msg.starts_with("invalid HERALD_WORKER__LEASE_MS \"19000\": must be at least"), "{msg}");
        let c = load_env(&[("HERALD_WORKER__LEASE_MS", "20000")]).unwrap();
        assert_eq!(c.worker_config().lease, Duration::from_secs(20));
        let msg = load_env(&[("HERALD_WORKER__MAX_IN_FLIGHT_PER_ENDPOINT", "480")]).unwrap_err().to_string();
        assert!(msg.contains("`worker.max_in_flight` (HERALD_WORKER__MAX_IN_FLIGHT) \"500\": must exceed"), "{msg}");
        let c =
            load_env(&[("HERALD_WORKER__MAX_IN_FLIGHT_PER_ENDPOINT", "480"), ("HERALD_WORKER__MAX_IN_FLIGHT", "600")]);
        assert_eq!(c.unwrap().worker_config().max_in_flight_per_endpoint, 480);
    }

    #[test]
    fn messages_quote_the_value_and_reason_but_never_a_secret() {
        let msg = load_env(&[("HERALD_RETRY_SCHEDULE", "5x")]).unwrap_err().to_string();
        assert_eq!(msg, "invalid HERALD_RETRY_SCHEDULE \"5x\": `5x` is not a duration such as 30s, 5m or 2h");

        let msg = load_env(&[("HERALD_ADMIN_TOKEN", "hunter2")]).unwrap_err().to_string();
        assert!(!msg.contains("hunter2"), "{msg}");

        let mut flags = Overrides::default();
        flags.set("server.listen", Some("nope"));
        let msg = Config::load(None, &BTreeMap::new(), &flags).unwrap_err().to_string();
        assert!(msg.starts_with("invalid --listen (HERALD_LISTEN) \"nope\""), "{msg}");
    }

    #[test]
    fn accepted_value_forms() {
        let c = load_env(&[
            ("HERALD_RATE_LIMIT", "600/m"),
            ("HERALD_ALLOW_CIDRS", " 127.0.0.1/32 , fd00::/8,"),
            ("HERALD_DATABASE_URL", "sqlite:data/h.db"),
            ("HERALD_LISTEN", "[::]:0"),
        ])
        .unwrap();
        assert_eq!(c.api.rate_limit, Some(RateLimit { per_second: 10.0, burst: 10 }));
        assert_eq!(c.net.allow_cidrs.cidrs().len(), 2);
        assert_eq!(c.store.database_url, DatabaseUrl::Sqlite("data/h.db".into()));
        assert_eq!(c.public_url("[::]:4000".parse().unwrap()), "http://[::1]:4000");

        let c = load_env(&[("HERALD_RATE_LIMIT", "0.5/s")]).unwrap();
        assert_eq!(c.api.rate_limit, Some(RateLimit { per_second: 0.5, burst: 1 }));

        let ingest = |v| load_env(&[("HERALD_INGEST_RATE_LIMIT", v)]).unwrap().api.ingest_rate_limit;
        assert_eq!(ingest("0"), None);
        assert_eq!(ingest("off"), None);
        assert_eq!(ingest("50"), Some(RateLimit { per_second: 50.0, burst: 100 }));
        assert_eq!(ingest("0.25/s"), Some(RateLimit { per_second: 0.25, burst: 1 }));
        assert_eq!(ingest("600/m,burst=3"), Some(RateLimit { per_second: 10.0, burst: 3 }));
        let c = load_env(&[("HERALD_INGEST_LOG_MAX_PER_SOURCE", "25")]).unwrap();
        assert_eq!(c.retention.ingest_log_max_per_source, 25);
    }

    #[test]
    fn debug_hides_the_admin_token_and_database_password() {
        let c = load_env(&[
            ("HERALD_ADMIN_TOKEN", "supersecret-admin-token"),
            ("HERALD_DATABASE_URL", "postgres://herald:pa55word@db.internal:5432/herald"),
        ])
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("supersecret"), "{debug}");
        assert!(!debug.contains("pa55word"), "{debug}");
        assert!(debug.contains("db.internal"), "{debug}");
    }
}
