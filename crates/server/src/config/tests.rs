use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use herald_core::RetrySchedule;
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
    let connections = ConnectionLimits {
        header_read_timeout: Duration::from_secs(10),
        keep_alive_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(10),
        max_connections: None,
    };
    assert_eq!(c.server.connections, connections);
    assert_eq!(c.api.body_budget_bytes, 64 * 1024 * 1024);
    // The worker's and the sweeper's own defaults, stated once more in the file.
    let worker = c.worker_config();
    assert_eq!(worker, herald_worker::WorkerConfig { allow_cidrs: worker.allow_cidrs.clone(), ..Default::default() });
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
            header_read_timeout_ms = 1500
            keep_alive_timeout_ms = "2500"
            body_timeout_ms = 3500
            max_connections = 4000
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
            body_budget_bytes = "8MiB"
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
    let connections = ConnectionLimits {
        header_read_timeout: Duration::from_millis(1500),
        keep_alive_timeout: Duration::from_millis(2500),
        body_timeout: Duration::from_millis(3500),
        max_connections: Some(4000),
    };
    assert_eq!(c.server.connections, connections);
    assert_eq!(c.api.body_budget_bytes, 8 * 1024 * 1024);
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
    assert_eq!(SETTINGS.len(), 34);
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
    let c = load_env(&[("HERALD_API__MAX_BODY_BYTES", "64KiB"), ("HERALD_SERVER__REQUEST_TIMEOUT", "250ms")]).unwrap();
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
    let err =
        Config::load(Some(Path::new("/nonexistent/herald.toml")), &BTreeMap::new(), &Overrides::default()).unwrap_err();
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
        ("HERALD_BODY_BUDGET_BYTES", "512KiB"),
        ("HERALD_BODY_BUDGET_BYTES", "lots"),
        ("HERALD_MAX_CONNECTIONS", "-1"),
        ("HERALD_SERVER__HEADER_READ_TIMEOUT_MS", "0"),
        ("HERALD_SERVER__KEEP_ALIVE_TIMEOUT_MS", "soon"),
        ("HERALD_SERVER__BODY_TIMEOUT_MS", "0"),
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
    let c = load_env(&[("HERALD_WORKER__MAX_IN_FLIGHT_PER_ENDPOINT", "480"), ("HERALD_WORKER__MAX_IN_FLIGHT", "600")]);
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
