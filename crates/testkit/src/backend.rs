//! The one store fixture: a fresh, empty, migrated store per test on either backend,
//! dropped (file and temp dir, or PostgreSQL schema) when the test ends.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use herald_core::Clock;
use herald_store::DynStore;
use herald_store_postgres::{PostgresStore, testing::TestSchema};
use herald_store_sqlite::SqliteStore;
use tempfile::TempDir;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// A new SQLite file in a temp dir.
    #[default]
    Sqlite,
    /// A new schema on the test PostgreSQL (`HERALD_TEST_POSTGRES_URL`, default
    /// `postgres://postgres@127.0.0.1:5432/test`), dropped afterwards. A server that does
    /// not answer fails the test; it is never skipped.
    Postgres,
}

impl Backend {
    /// A fresh store reading the system clock.
    ///
    /// # Panics
    /// If the store cannot be created (PostgreSQL not answering included).
    pub async fn open(self) -> TestStore {
        self.open_with_clock(Arc::new(chrono::Utc::now)).await
    }

    /// A fresh store reading `clock`, for tests that move time.
    ///
    /// # Panics
    /// If the store cannot be created (PostgreSQL not answering included).
    pub async fn open_with_clock(self, clock: Clock) -> TestStore {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let path = dir.path().join("herald.db");
        let (store, schema): (DynStore, _) = match self {
            Self::Sqlite => {
                let store = SqliteStore::open_with_clock(&path, clock).expect("open the test database");
                (Arc::new(store), None)
            }
            Self::Postgres => {
                let schema = TestSchema::create().await;
                (Arc::new(schema.store().await.with_clock(clock)), Some(schema))
            }
        };
        TestStore { store, backend: self, path, schema, dir }
    }
}

/// A fresh store and what keeps its database alive; dropping it removes the database.
pub struct TestStore {
    /// The store, migrated and empty.
    pub store: DynStore,
    /// The backend it runs on.
    pub backend: Backend,
    path: PathBuf,
    // Declared before the dir: the schema is dropped first, the files after.
    schema: Option<TestSchema>,
    dir: TempDir,
}

impl TestStore {
    /// The SQLite file (on PostgreSQL a path in the test's temp dir that is never created).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A temp dir that lives as long as the store, for a test's other files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PostgreSQL schema, on PostgreSQL.
    pub fn schema(&self) -> Option<&TestSchema> {
        self.schema.as_ref()
    }

    /// A `HERALD_DATABASE_URL` for a `herald` process on this database: `sqlite://PATH`,
    /// or the PostgreSQL URL selecting the schema through the connection's `search_path`.
    pub fn database_url(&self) -> String {
        match &self.schema {
            None => format!("sqlite://{}", self.path.display()),
            Some(schema) => {
                let separator = if schema.url().contains('?') { '&' } else { '?' };
                format!("{}{separator}options=-csearch_path%3D{}", schema.url(), schema.name())
            }
        }
    }

    /// Another handle on the same database, opened as a second node or a restarted
    /// server would open it (system clock).
    ///
    /// # Panics
    /// If the database cannot be opened again.
    pub async fn open_again(&self) -> DynStore {
        match &self.schema {
            None => open_sqlite(&self.path),
            Some(schema) => {
                let store: PostgresStore = schema.store().await;
                Arc::new(store)
            }
        }
    }
}

/// Opens an SQLite file another process (a `herald` binary under test) wrote.
///
/// # Panics
/// If the file cannot be opened.
pub fn open_sqlite(path: &Path) -> DynStore {
    Arc::new(SqliteStore::open(path).unwrap_or_else(|e| panic!("opening {}: {e:?}", path.display())))
}
