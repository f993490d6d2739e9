//! Message creates inside group-committed batches: a rejected request leaves nothing
//! behind, and its neighbours in the batch still commit.

use chrono::{Duration, Utc};
use herald_store::{
    IdempotencyClaim, IdempotencyWrite, MessageFilter, MessageOutcome, Order, PageQuery, StoreError, StoredResponse,
    conformance::{app, endpoint, message},
};
use herald_testkit::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_create_frees_its_idempotency_key() {
    let database = Backend::Postgres.open().await;
    let store = database.store.clone();
    let a = store.create_application(app("a", None)).await.unwrap();
    let mut first = message(a.id.as_str(), "t", None);
    first.message.event_id = Some("evt".into());
    store.create_message(first).await.unwrap();
    let mut clash = message(a.id.as_str(), "t", None);
    clash.message.event_id = Some("evt".into());
    clash.idempotency = Some(IdempotencyWrite {
        key: "k".into(),
        response: StoredResponse { status: 202, body: b"{}".to_vec() },
        expires_at: Utc::now() + Duration::hours(24),
    });
    assert!(matches!(store.create_message(clash).await, Ok(MessageOutcome::DuplicateEventId)));
    let expires = Utc::now() + Duration::hours(24);
    assert_eq!(store.claim_idempotency_key("k", expires).await.unwrap(), IdempotencyClaim::Claimed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_requests_do_not_fail_their_batch() {
    let database = Backend::Postgres.open().await;
    let store = database.store.clone();
    let a = store.create_application(app("a", None)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    // Every third request reuses one eventId or names a missing application; all are
    // sent at once so the writer batches them together.
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let store = store.clone();
            let mut new = message(if i % 3 == 2 { "no-such-app" } else { a.id.as_str() }, "t", None);
            if i % 3 == 1 {
                new.message.event_id = Some("same".into());
            }
            tokio::spawn(async move { store.create_message(new).await })
        })
        .collect();
    let (mut created, mut conflicts, mut missing) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(MessageOutcome::Created { .. }) => created += 1,
            Ok(MessageOutcome::DuplicateEventId) => conflicts += 1,
            Err(StoreError::NotFound(_)) => missing += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((created, conflicts, missing), (31, 29, 30));
    let page = PageQuery::first(250, Order::Ascending);
    let listed = store.list_messages(&a.id, &MessageFilter::default(), &page).await.unwrap();
    assert_eq!(listed.items.len(), 31);
}
