//! Two store instances on one schema stand for two Herald nodes on one database: what
//! must hold between them is held by PostgreSQL, also when they race.

use std::{collections::HashSet, time::Duration};

use herald_store::{
    DynStore, IdempotencyClaim, IdempotencyWrite, MessageFilter, MessageOutcome, Order, PageQuery, StoredResponse,
    conformance::{app, endpoint, message},
};
use herald_testkit::{Backend, TestStore};

/// Two "nodes" on one fresh schema, and the schema's guard.
async fn two_nodes() -> (DynStore, DynStore, TestStore) {
    let database = Backend::Postgres.open().await;
    let (a, b) = (database.store.clone(), database.open_again().await);
    (a, b, database)
}

/// Runs `f(node)` on `copies` tasks per node, all at once, and returns every result.
async fn race<T, F, Fut>(nodes: [&DynStore; 2], copies: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(DynStore) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> =
        (0..copies).flat_map(|_| nodes.iter().map(|node| tokio::spawn(f(DynStore::clone(node))))).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("task panicked"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_event_ids_on_two_nodes_create_one_message_each() {
    let (a, b, _schema) = two_nodes().await;
    let application = a.create_application(app("race", None)).await.unwrap();
    a.create_endpoint(endpoint(&application.id, None, None)).await.unwrap();
    for round in 0..10 {
        let app_key = application.id.to_string();
        let outcomes = race([&a, &b], 3, move |node| {
            let mut new = message(&app_key, "t", None);
            new.message.event_id = Some(format!("evt-{round}"));
            async move { node.create_message(new).await }
        })
        .await;
        let created = outcomes.iter().filter(|o| matches!(o, Ok(MessageOutcome::Created { .. }))).count();
        let conflicts = outcomes.iter().filter(|o| matches!(o, Ok(MessageOutcome::DuplicateEventId))).count();
        assert_eq!((created, conflicts), (1, 5), "round {round}: {outcomes:?}");
    }
    let first_page = PageQuery::first(50, Order::Ascending);
    let listed = b.list_messages(&application.id, &MessageFilter::default(), &first_page).await.unwrap();
    assert_eq!(listed.items.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_idempotency_claims_on_two_nodes_have_one_winner() {
    let (a, b, _schema) = two_nodes().await;
    let expires = chrono::Utc::now() + chrono::Duration::hours(24);
    for round in 0..10 {
        let key = format!("key-{round}");
        let claims = race([&a, &b], 4, move |node| {
            let key = key.clone();
            async move { node.claim_idempotency_key(&key, expires).await.unwrap() }
        })
        .await;
        let won = claims.iter().filter(|c| **c == IdempotencyClaim::Claimed).count();
        let waiting = claims.iter().filter(|c| **c == IdempotencyClaim::InProgress).count();
        assert_eq!((won, waiting), (1, 7), "round {round}: {claims:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_with_one_idempotency_key_write_one_message() {
    let (a, b, _schema) = two_nodes().await;
    let application = a.create_application(app("idem", Some("idem-app"))).await.unwrap();
    let outcomes = race([&a, &b], 4, |node| {
        let mut new = message("idem-app", "t", None);
        let body = format!("created {}", new.message.id).into_bytes();
        new.idempotency = Some(IdempotencyWrite {
            key: "tok|POST|/msg|same".into(),
            response: StoredResponse { status: 202, body },
            expires_at: chrono::Utc::now() + chrono::Duration::hours(24),
        });
        async move { node.create_message(new).await.unwrap() }
    })
    .await;
    let winners: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            MessageOutcome::Created { message, .. } => Some(message.id.to_string()),
            MessageOutcome::Replayed(_) => None,
            other => panic!("unexpected outcome {other:?}"),
        })
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let expected = format!("created {}", winners[0]).into_bytes();
    for outcome in &outcomes {
        if let MessageOutcome::Replayed(response) = outcome {
            assert_eq!(response.body, expected, "a replay answers with the winner's response");
        }
    }
    let first_page = PageQuery::first(50, Order::Ascending);
    let listed = a.list_messages(&application.id, &MessageFilter::default(), &first_page).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_on_two_nodes_never_share_a_delivery() {
    let (a, b, _schema) = two_nodes().await;
    let application = a.create_application(app("claims", None)).await.unwrap();
    for _ in 0..3 {
        a.create_endpoint(endpoint(&application.id, None, None)).await.unwrap();
    }
    let creates = race([&a, &b], 50, {
        let key = application.id.to_string();
        move |node| {
            let new = message(&key, "t", None);
            async move { node.create_message(new).await.unwrap() }
        }
    })
    .await;
    assert_eq!(creates.len(), 100);
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    let lease = now + chrono::Duration::minutes(5);
    let batches = race([&a, &b], 2, move |node| async move {
        let mut mine = Vec::new();
        loop {
            let claimed = node.claim_due_deliveries(now, 7, lease).await.unwrap();
            if claimed.is_empty() {
                return mine;
            }
            mine.extend(claimed.into_iter().map(|c| (c.delivery.msg_id, c.delivery.endpoint_id)));
        }
    })
    .await;
    let all: Vec<_> = batches.into_iter().flatten().collect();
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!((all.len(), distinct.len()), (300, 300), "every delivery claimed exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_on_one_node_wakes_the_other() {
    let (a, b, _schema) = two_nodes().await;
    let waker = b.delivery_waker();
    // The listener wakes once when it starts listening: after that, only a
    // notification can wake it.
    tokio::time::timeout(Duration::from_secs(10), waker.notified()).await.expect("the listener never started");
    let application = a.create_application(app("wake", None)).await.unwrap();
    a.create_endpoint(endpoint(&application.id, None, None)).await.unwrap();
    a.create_message(message(application.id.as_str(), "t", None)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waker.notified())
        .await
        .expect("node b was not woken by node a's message");
}
