//! Runs the shared store behaviour suite against a fresh SQLite file per test.

use std::sync::Arc;

use herald_store::DynStore;
use herald_store_sqlite::SqliteStore;

async fn fresh() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("herald.db")).expect("open store");
    (Arc::new(store), dir)
}

herald_store::conformance_tests!(fresh());
herald_store::maintenance_conformance_tests!(fresh());
herald_store::ingest_conformance_tests!(fresh());
herald_store::events_conformance_tests!(fresh());

#[tokio::test]
async fn claims_skip_endpoints_and_releases_requeue() {
    let (store, _dir) = fresh().await;
    herald_store::conformance::claims_skip_endpoints_and_releases_requeue(store).await;
}
