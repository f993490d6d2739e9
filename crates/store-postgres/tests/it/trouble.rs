//! Database trouble that is not the request's fault is `Unavailable` (503 with
//! `Retry-After` at the API): here, a database that stops accepting connections.

use std::time::Duration;

use herald_store::{StoreError, Upkeep};
use herald_store_postgres::{PostgresOptions, PostgresStore, testing::test_url};
use rand::RngCore;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

const DEADLINE: Duration = Duration::from_secs(20);

/// A database of its own (not a schema), since the test closes it to connections.
struct TestDatabase {
    admin: PgConnection,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> Self {
        let mut admin = PgConnection::connect(&test_url()).await.expect("PostgreSQL answers");
        let mut raw = [0u8; 8];
        rand::rng().fill_bytes(&mut raw);
        let name = format!("herald_trouble_{}", raw.iter().map(|b| format!("{b:02x}")).collect::<String>());
        admin.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
        let base = test_url();
        let (server, _) = base.rsplit_once('/').expect("the test URL names a database");
        let url = format!("{server}/{name}");
        Self { admin, name, url }
    }

    async fn sql(&mut self, statement: String) {
        self.admin.execute(AssertSqlSafe(statement)).await.unwrap();
    }

    async fn drop_database(mut self) {
        self.sql(format!("DROP DATABASE {} WITH (FORCE)", self.name)).await;
    }
}

#[tokio::test]
async fn a_database_that_does_not_accept_connections_is_unavailable() {
    let mut db = TestDatabase::create().await;
    let options =
        PostgresOptions { pool_size: 1, acquire_timeout: Duration::from_secs(2), ..PostgresOptions::default() };
    let store = PostgresStore::connect(&db.url, options).await.unwrap();
    store.ping().await.unwrap();

    let name = db.name.clone();
    db.sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
    db.sql(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;

    // The pool first finds its connection gone, then reconnecting is refused with
    // SQLSTATE 55000; every failure on the way is `Unavailable`.
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        match store.ping().await {
            Err(StoreError::Unavailable(cause)) if format!("{cause:?}").contains("55000") => break,
            Err(StoreError::Unavailable(_)) | Ok(()) => {}
            Err(other) => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(tokio::time::Instant::now() < until, "no 55000 refusal within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    drop(store);
    db.sql(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
    db.drop_database().await;
}
