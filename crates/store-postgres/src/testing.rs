//! Test support (feature `test-support`): a fresh, empty schema per test in the
//! database named by `HERALD_TEST_POSTGRES_URL`, dropped when the test ends.
//!
//! A schema is much cheaper than a database and lets tests run in parallel on one
//! server. A PostgreSQL that does not answer fails the test with a message saying how
//! to start it; tests are never skipped.

use rand::RngCore;
use sqlx::{Connection, Executor, PgConnection, postgres::PgConnectOptions};

use crate::{PostgresOptions, PostgresStore};

/// The environment variable naming the test server.
pub const URL_ENV: &str = "HERALD_TEST_POSTGRES_URL";
/// The server used when [`URL_ENV`] is unset (the one on the development machines).
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test server's URL: [`URL_ENV`], else [`DEFAULT_URL`].
pub fn test_url() -> String {
    std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A schema that exists for as long as this value does.
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// Creates a schema with a random name on the test server.
    ///
    /// # Panics
    /// When PostgreSQL does not answer or refuses: the run must fail loudly.
    pub async fn create() -> Self {
        let url = test_url();
        let mut conn = connect_or_panic(&url).await;
        let mut raw = [0u8; 8];
        rand::rng().fill_bytes(&mut raw);
        let name = format!("herald_test_{}", raw.iter().map(|b| format!("{b:02x}")).collect::<String>());
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .unwrap_or_else(|e| panic!("creating test schema {name}: {e}"));
        let _ = conn.close().await;
        Self { url, name }
    }

    /// The server's URL (the schema is selected through [`TestSchema::options`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Store options that use this schema, with a pool sized for tests.
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions { schema: Some(self.name.clone()), pool_size: 5, ..PostgresOptions::default() }
    }

    /// A store on this schema, migrated.
    ///
    /// # Panics
    /// When the store cannot connect or migrate.
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url, self.options()).await.unwrap_or_else(|e| panic!("opening the store: {e:?}"))
    }
}

async fn connect_or_panic(url: &str) -> PgConnection {
    let target = describe(url);
    PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL for tests does not answer at {target} (set {URL_ENV}; on the development machines start it \
             with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`): {e}"
        )
    })
}

/// `host:port/database` of `url`, without credentials, for messages.
fn describe(url: &str) -> String {
    url.parse::<PgConnectOptions>().map_or_else(
        |_| "an unparsable URL".to_owned(),
        |o| format!("{}:{}/{}", o.get_host(), o.get_port(), o.get_database().unwrap_or("")),
    )
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with
        // its own small runtime does the async work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                // A connection left mid-transaction must not hang the test run.
                conn.execute("SET lock_timeout = '10s'").await?;
                conn.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE"))).await?;
                conn.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}; drop it by hand", self.name);
        }
    }
}
