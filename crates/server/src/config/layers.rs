//! The raw layers (built-in defaults, file, environment, flags) merged into one map
//! of winning values, each remembered with its origin.

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;

use super::{ConfigError, Origin, Overrides, SETTINGS, settings::find_setting};

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
    header_read_timeout_ms: Option<Scalar>,
    keep_alive_timeout_ms: Option<Scalar>,
    body_timeout_ms: Option<Scalar>,
    max_connections: Option<Scalar>,
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
    body_budget_bytes: Option<Scalar>,
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
            ("server.header_read_timeout_ms", self.server.header_read_timeout_ms.map(scalar)),
            ("server.keep_alive_timeout_ms", self.server.keep_alive_timeout_ms.map(scalar)),
            ("server.body_timeout_ms", self.server.body_timeout_ms.map(scalar)),
            ("server.max_connections", self.server.max_connections.map(scalar)),
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
            ("api.body_budget_bytes", self.api.body_budget_bytes.map(scalar)),
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
pub(super) struct Layers(BTreeMap<&'static str, (String, Origin)>);

impl Layers {
    fn put(&mut self, key: &str, value: String, origin: Origin) {
        let setting = find_setting(key).expect("layers only hold known keys");
        self.0.insert(setting.key, (value, origin));
    }

    pub(super) fn add_toml(&mut self, text: &str, origin: &Origin, path: &Path) -> Result<(), ConfigError> {
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| ConfigError::ParseFile { path: path.to_owned(), message: e.to_string() })?;
        for (key, value) in raw.into_values() {
            self.put(key, value, origin.clone());
        }
        Ok(())
    }

    pub(super) fn add_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
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

    pub(super) fn add_overrides(&mut self, overrides: &Overrides) {
        for (setting, value) in &overrides.0 {
            let flag = setting.flag.unwrap_or(setting.key);
            self.put(setting.key, value.clone(), Origin::Flag(flag));
        }
    }

    /// Parses the value of `key`, naming the setting on failure.
    pub(super) fn get<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
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
    pub(super) fn invalid(&self, key: &str, reason: String) -> ConfigError {
        let setting = find_setting(key).expect("only keys with a setting can be set to a bad value");
        let (value, origin) = self.0.get(setting.key).cloned().unwrap_or_else(|| (String::new(), Origin::Default));
        ConfigError::Invalid { setting, origin, value: (!setting.secret).then_some(value), reason }
    }

    /// Like [`Self::get`] for keys the built-in defaults always set.
    pub(super) fn require<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        Ok(self.get(key, parse)?.unwrap_or_else(|| panic!("config.default.toml sets `{key}`")))
    }
}
