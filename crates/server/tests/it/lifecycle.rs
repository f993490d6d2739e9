//! Start, serve, stop: the wiring `herald serve` uses, driven in-process.

use std::{collections::BTreeMap, time::Duration};

use herald_server::config::{DatabaseUrl, Overrides};
use herald_testkit::spawn_app;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn run_serves_health_and_returns_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = herald_server::Config::default();
    config.store.database_url = DatabaseUrl::Sqlite(dir.path().join("herald.db"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(herald_server::run(config, listener, shutdown.clone()));

    let health = reqwest::get(format!("http://{addr}/api/v1/health")).await.unwrap();
    assert!(health.status().is_success(), "{}", health.status());
    assert!(dir.path().join("herald.db").exists(), "the SQLite file is created");

    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(30), server).await.expect("run returns").unwrap();
    result.unwrap();
    // The listener is closed once run has returned.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let app = spawn_app().await;
    // Leave a pooled keep-alive connection open.
    let response = app.http.get(app.url("/api/v1/app")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::timeout(Duration::from_secs(30), app.stop()).await.expect("stop returns").unwrap();
}

#[tokio::test]
async fn responses_carry_a_request_id_and_keep_the_callers() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/api/v1/health")).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32, "{generated}");

    let response = app.http.get(app.url("/api/v1/health")).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn an_unreachable_postgres_fails_without_showing_the_password() {
    // Bind and drop to find a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://u:secret@127.0.0.1:{port}/db");
    let env = BTreeMap::from([
        ("HERALD_DATABASE_URL".to_owned(), url),
        ("HERALD_STORE__ACQUIRE_TIMEOUT_MS".to_owned(), "500".to_owned()),
    ]);
    let config = herald_server::Config::load(None, &env, &Overrides::default()).unwrap();
    let err = format!("{:#}", herald_server::open_store(&config).await.err().expect("nothing listens there"));
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

#[tokio::test]
async fn a_worker_node_answers_only_health() {
    let app = herald_testkit::TestApp::builder().config(|c| c.server.role = herald_server::Role::Worker).spawn().await;
    let health = app.http.get(app.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), 204);
    let api = app.http.get(app.url("/api/v1/app")).send().await.unwrap();
    assert_eq!(api.status(), 404);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["code"], "not_found", "{body}");
    tokio::time::timeout(Duration::from_secs(30), app.stop()).await.expect("stop returns").unwrap();
}
