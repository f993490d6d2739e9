//! Schema versions: applied once however many nodes start together, refused when the
//! database is newer than the binary, and required to be current when migrating on
//! connect is off.

use std::time::Duration;

use herald_store::StoreError;
use herald_store_postgres::{
    Migrated, PostgresOptions, PostgresStore, SCHEMA_VERSION, SchemaTooNew, SchemaTooOld, testing::TestSchema,
};
use sqlx::{Connection, Executor, PgConnection};

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let schema = TestSchema::create().await;
    let starts = (0..3).map(|_| {
        let (url, options) = (schema.url().to_owned(), schema.options());
        async move { PostgresStore::connect(&url, options).await.map(drop) }
    });
    for started in futures_join(starts).await {
        started.expect("every node starts");
    }
    let again = PostgresStore::migrate(schema.url(), &schema.options()).await.unwrap();
    assert_eq!(again, Migrated { from: SCHEMA_VERSION, to: SCHEMA_VERSION });
}

async fn futures_join<F: Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn migrate_reports_what_it_did() {
    let schema = TestSchema::create().await;
    let first = PostgresStore::migrate(schema.url(), &schema.options()).await.unwrap();
    assert_eq!(first, Migrated { from: 0, to: SCHEMA_VERSION });
}

#[tokio::test]
async fn a_newer_schema_is_refused_naming_both_versions() {
    let schema = TestSchema::create().await;
    drop(schema.store().await);
    let mut conn = PgConnection::connect(schema.url()).await.unwrap();
    let newer = SCHEMA_VERSION + 1;
    conn.execute(sqlx::AssertSqlSafe(format!("UPDATE {}.herald_schema_version SET version = {newer}", schema.name())))
        .await
        .unwrap();
    let Err(StoreError::Internal(source)) = PostgresStore::connect(schema.url(), schema.options()).await else {
        panic!("a newer schema must be refused");
    };
    let too_new = source.downcast_ref::<SchemaTooNew>().expect("the refusal says why");
    assert_eq!((too_new.found, too_new.known), (newer, SCHEMA_VERSION));
    let text = too_new.to_string();
    assert!(text.contains(&newer.to_string()) && text.contains(&SCHEMA_VERSION.to_string()), "{text}");
    assert!(PostgresStore::migrate(schema.url(), &schema.options()).await.is_err(), "migrate refuses too");
}

#[tokio::test]
async fn without_migrate_an_old_schema_is_refused() {
    let schema = TestSchema::create().await;
    let options = PostgresOptions { migrate: false, ..schema.options() };
    let Err(StoreError::Internal(source)) = PostgresStore::connect(schema.url(), options.clone()).await else {
        panic!("an empty schema must be refused when migrations are off");
    };
    assert!(source.downcast_ref::<SchemaTooOld>().is_some(), "{source}");
    PostgresStore::migrate(schema.url(), &options).await.unwrap();
    PostgresStore::connect(schema.url(), options).await.expect("a current schema is accepted");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let options = PostgresOptions { acquire_timeout: Duration::from_secs(2), ..PostgresOptions::default() };
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let result = PostgresStore::connect("postgres://postgres@127.0.0.1:1/test", options).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{:?}", result.err());
}
