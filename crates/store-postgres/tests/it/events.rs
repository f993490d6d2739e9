//! Commit-order safety of event readers on PostgreSQL, made deterministic: a message
//! whose transaction took its sequence number first but commits last must not be
//! skipped by a reader that already continued past the messages committed before it.

use herald_store::{
    EventFilter, Position,
    conformance::{app, created, message},
};
use herald_testkit::{Backend, DEADLINE, poll_until, wait_until};
use sqlx::{Connection, Executor, PgConnection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_late_with_an_earlier_sequence_is_not_skipped() {
    let database = Backend::Postgres.open().await;
    let (store, schema) = (database.store.clone(), database.schema().expect("a PostgreSQL schema"));
    let a = store.create_application(app("late", None)).await.unwrap();

    // A writer that takes its sequence number now and commits at the end of the test.
    let mut late = PgConnection::connect(schema.url()).await.unwrap();
    late.execute(sqlx::AssertSqlSafe(format!("SET search_path = {}", schema.name()))).await.unwrap();
    late.execute("BEGIN").await.unwrap();
    let late_id = message(a.id.as_str(), "late", None).message.id;
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_type, payload, created_at, expires_at)
         VALUES ($1, $2, 'late', '{}', now(), now() + interval '1 day')",
    )
    .bind(late_id.as_str())
    .bind(a.id.as_str())
    .execute(&mut late)
    .await
    .unwrap();

    let mut early = Vec::new();
    for _ in 0..3 {
        early.push(created(store.create_message(message(a.id.as_str(), "early", None)).await.unwrap()).0.id);
    }
    let filter = EventFilter::default();
    let page = store.read_events(&a.id, &filter, Position::START, 10).await.unwrap();
    assert!(page.events.is_empty(), "nothing is readable while an older writer is open");
    assert!(page.held_back, "the reader is told to read again");

    late.execute("COMMIT").await.unwrap();
    // Other tests on the server may hold the horizon back a moment longer.
    let page = poll_until(DEADLINE, || async {
        let page = store.read_events(&a.id, &filter, Position::START, 10).await.unwrap();
        (!page.held_back).then_some(page)
    })
    .await;
    let got: Vec<_> = page.events.iter().map(|e| e.message.id.clone()).collect();
    let mut want = vec![late_id];
    want.extend(early);
    assert_eq!(got, want, "the late message comes first, nothing is skipped");
    assert!(page.done);
    let _ = late.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_one_node_wakes_live_readers_on_another() {
    let database = Backend::Postgres.open().await;
    let (reader, writer) = (database.store.clone(), database.open_again().await);
    let a = writer.create_application(app("nodes", None)).await.unwrap();
    let wait = std::time::Duration::from_secs(60);
    let mut commits = reader.message_commits();
    // The reader's listener moves the counter once when it starts listening; nothing
    // else moves it until the other node commits.
    if *commits.borrow_and_update() == 0 {
        tokio::time::timeout(wait, commits.changed()).await.expect("the listener connects").unwrap();
    }
    commits.borrow_and_update();
    let id = created(writer.create_message(message(a.id.as_str(), "t", None)).await.unwrap()).0.id;
    tokio::time::timeout(wait, commits.changed()).await.expect("the other node's commit is signalled").unwrap();
    wait_until(DEADLINE, || async {
        let page = reader.read_events(&a.id, &EventFilter::default(), Position::START, 10).await.unwrap();
        page.events.iter().any(|e| e.message.id == id)
    })
    .await;
}
