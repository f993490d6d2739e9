//! Runs the shared store behaviour suite against a fresh schema per test.

use std::sync::Arc;

use herald_store::DynStore;
use herald_store_postgres::testing::TestSchema;

async fn fresh() -> (DynStore, TestSchema) {
    let schema = TestSchema::create().await;
    let store = schema.store().await;
    (Arc::new(store), schema)
}

herald_store::conformance_tests!(fresh());
herald_store::maintenance_conformance_tests!(fresh());
herald_store::ingest_conformance_tests!(fresh());
herald_store::events_conformance_tests!(fresh());

#[tokio::test]
async fn claims_skip_endpoints_and_releases_requeue() {
    let (store, _schema) = fresh().await;
    herald_store::conformance::claims_skip_endpoints_and_releases_requeue(store).await;
}
