//! A fresh PostgreSQL schema per bench phase, so runs on a shared server start empty
//! and leave nothing behind. Herald nodes select it through the URL's `search_path`.

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};

/// A schema with a random name that is dropped, with everything in it, on drop.
///
/// Declare it after the nodes that use it, so they are stopped before it is dropped.
pub struct BenchSchema {
    server_url: String,
    name: String,
}

impl BenchSchema {
    /// Creates `bench_<random>` on the server at `server_url`.
    pub async fn create(server_url: &str) -> anyhow::Result<Self> {
        let mut conn =
            PgConnection::connect(server_url).await.context("connecting to PostgreSQL for the bench schema")?;
        let name = format!("bench_{:016x}", rand::random::<u64>());
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .with_context(|| format!("creating schema {name}"))?;
        let _ = conn.close().await;
        Ok(Self { server_url: server_url.to_owned(), name })
    }

    /// The URL Herald nodes get: the server's, with this schema as `search_path`.
    pub fn database_url(&self) -> String {
        let separator = if self.server_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-csearch_path%3D{}", self.server_url, self.name)
    }
}

impl Drop for BenchSchema {
    fn drop(&mut self) {
        let (url, name) = (self.server_url.clone(), self.name.clone());
        // Drop runs on the bench's runtime, which must not be blocked on; a thread with
        // its own small runtime does the async work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                // Backends of the killed nodes may still hold locks for a moment.
                conn.execute("SET lock_timeout = '30s'").await?;
                conn.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE"))).await?;
                conn.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop bench schema {}; drop it by hand", self.name);
        }
    }
}
