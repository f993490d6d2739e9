//! Conformance cases for creating and listing messages: fan-out, idempotency,
//! eventId windows, concurrent writers, filters and deletion. Run by
//! [`crate::conformance_tests!`].

use chrono::{DateTime, Duration, Utc};

use super::{app, created, endpoint, message};
use crate::{
    Cursor, Direction, DynStore, IdempotencyClaim, IdempotencyWrite, MessageFilter, MessageOutcome, Order, PageQuery,
    StoreError, StoredResponse,
};

pub async fn message_fans_out_to_matching_endpoints(store: DynStore) {
    let a = store.create_application(app("a", Some("fan"))).await.unwrap();
    let all = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let typed = store.create_endpoint(endpoint(&a.id, Some(&["user.signup"]), None)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, Some(&["other"]), None)).await.unwrap();
    let channeled = store.create_endpoint(endpoint(&a.id, None, Some(&["eu"]))).await.unwrap();
    let mut disabled = endpoint(&a.id, None, None);
    disabled.disabled = true;
    store.create_endpoint(disabled).await.unwrap();

    let (msg, deliveries) =
        created(store.create_message(message("fan", "user.signup", Some(&["eu", "us"]))).await.unwrap());
    assert_eq!(msg.app_id, a.id);
    let mut got: Vec<_> = deliveries.iter().map(|d| d.endpoint_id.clone()).collect();
    got.sort();
    let mut want = vec![all.id.clone(), typed.id.clone(), channeled.id.clone()];
    want.sort();
    assert_eq!(got, want);
    let stored: Vec<_> =
        store.list_deliveries(&a.id, &msg.id).await.unwrap().into_iter().map(|d| d.endpoint_id).collect();
    assert_eq!(stored, want);
    assert_eq!(store.get_message(&a.id, msg.id.as_str()).await.unwrap(), msg);
    assert!(matches!(store.create_message(message("nope", "x", None)).await, Err(StoreError::NotFound(_))));
    let mut inline = message("new-app-uid", "x", None);
    inline.create_app = Some(app("inline", Some("new-app-uid")));
    let (m, d) = created(store.create_message(inline).await.unwrap());
    assert!(d.is_empty());
    assert_eq!(store.get_application("new-app-uid").await.unwrap().id, m.app_id);
}

pub async fn message_idempotency_replays_without_writing(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let key = "tok|POST|/msg|k1".to_owned();
    let write = |body: &str| IdempotencyWrite {
        key: key.clone(),
        response: StoredResponse { status: 202, body: body.as_bytes().to_vec() },
        expires_at: Utc::now() + Duration::hours(24),
    };
    let mut first = message(a.id.as_str(), "t", None);
    first.idempotency = Some(write("first"));
    created(store.create_message(first).await.unwrap());
    let mut second = message(a.id.as_str(), "t", None);
    second.idempotency = Some(write("second"));
    match store.create_message(second).await.unwrap() {
        MessageOutcome::Replayed(r) => assert_eq!(r.body, b"first"),
        other => panic!("a replayed key must be replayed, got {other:?}"),
    }
    let listed =
        store.list_messages(&a.id, &MessageFilter::default(), &PageQuery::first(10, Order::Descending)).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}

pub async fn event_id_conflicts_within_window(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let mut m = message(a.id.as_str(), "t", None);
    m.message.event_id = Some("evt-1".into());
    let (first, _) = created(store.create_message(m.clone()).await.unwrap());
    let mut again = message(a.id.as_str(), "t", None);
    again.message.event_id = Some("evt-1".into());
    assert!(matches!(store.create_message(again.clone()).await, Ok(MessageOutcome::DuplicateEventId)));
    assert_eq!(store.get_message(&a.id, "evt-1").await.unwrap().id, first.id);
    // Outside the window the same eventId is accepted again.
    again.event_id_since = Utc::now() + Duration::seconds(1);
    created(store.create_message(again).await.unwrap());
}

pub async fn idempotency_claims_are_exclusive(store: DynStore) {
    let expires = Utc::now() + Duration::hours(24);
    let claims = futures_join(store.clone(), "race-key", expires).await;
    assert_eq!(claims.iter().filter(|c| **c == IdempotencyClaim::Claimed).count(), 1, "{claims:?}");
    store.complete_idempotency_key("race-key", StoredResponse { status: 201, body: b"{}".to_vec() }).await.unwrap();
    assert_eq!(
        store.claim_idempotency_key("race-key", expires).await.unwrap(),
        IdempotencyClaim::Completed(StoredResponse { status: 201, body: b"{}".to_vec() })
    );
    assert_eq!(store.claim_idempotency_key("other", expires).await.unwrap(), IdempotencyClaim::Claimed);
    store.release_idempotency_key("other").await.unwrap();
    assert_eq!(store.claim_idempotency_key("other", expires).await.unwrap(), IdempotencyClaim::Claimed);
    // A message create under a key that a running request holds is refused, writing nothing.
    let held = store.create_application(app("held", None)).await.unwrap();
    let mut new = message(held.id.as_str(), "t", None);
    let response = StoredResponse { status: 202, body: b"{}".to_vec() };
    new.idempotency = Some(IdempotencyWrite { key: "other".into(), response, expires_at: expires });
    assert!(matches!(store.create_message(new).await, Ok(MessageOutcome::KeyInProgress)));
    let all = PageQuery::first(10, Order::Ascending);
    assert!(store.list_messages(&held.id, &MessageFilter::default(), &all).await.unwrap().items.is_empty());
    let past: DateTime<Utc> = Utc::now() - Duration::seconds(1);
    assert_eq!(store.claim_idempotency_key("expired", past).await.unwrap(), IdempotencyClaim::Claimed);
    assert_eq!(store.claim_idempotency_key("expired", expires).await.unwrap(), IdempotencyClaim::Claimed);
}

async fn futures_join(store: DynStore, key: &'static str, expires: DateTime<Utc>) -> Vec<IdempotencyClaim> {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_idempotency_key(key, expires).await.unwrap() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

pub async fn concurrent_messages_all_commit(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            let key = a.id.to_string();
            tokio::spawn(async move { created(store.create_message(message(&key, "t", None)).await.unwrap()) })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (m, d) = t.await.unwrap();
        assert_eq!(d.len(), 1);
        ids.insert(m.id);
    }
    let mut listed = 0;
    let mut q = PageQuery::first(250, Order::Ascending);
    loop {
        let page = store.list_messages(&a.id, &MessageFilter::default(), &q).await.unwrap();
        listed += page.items.iter().filter(|m| ids.contains(&m.id)).count();
        if page.done {
            break;
        }
        q.cursor = Some(Cursor { key: page.items.last().unwrap().id.to_string(), direction: Direction::Next });
    }
    assert_eq!((ids.len(), listed), (200, 200));
}

pub async fn message_filters(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let mut tagged = message(a.id.as_str(), "user.signup", Some(&["eu"]));
    tagged.message.tags = Some(vec!["vip".into()]);
    created(store.create_message(tagged).await.unwrap());
    created(store.create_message(message(a.id.as_str(), "user.deleted", None)).await.unwrap());
    let q = PageQuery::first(50, Order::Descending);
    let count = |filter: MessageFilter| {
        let (store, a, q) = (store.clone(), a.id.clone(), q.clone());
        async move { store.list_messages(&a, &filter, &q).await.unwrap().items.len() }
    };
    assert_eq!(count(MessageFilter::default()).await, 2);
    assert_eq!(count(MessageFilter { event_types: Some(vec!["user.signup".into()]), ..Default::default() }).await, 1);
    assert_eq!(
        count(MessageFilter {
            event_types: Some(vec!["user.signup".into(), "user.deleted".into()]),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(count(MessageFilter { channel: Some("eu".into()), ..Default::default() }).await, 1);
    assert_eq!(count(MessageFilter { tag: Some("vip".into()), ..Default::default() }).await, 1);
    assert_eq!(count(MessageFilter { tag: Some("nope".into()), ..Default::default() }).await, 0);
    assert_eq!(count(MessageFilter { before: Some(Utc::now() - Duration::hours(1)), ..Default::default() }).await, 0);
    assert_eq!(count(MessageFilter { after: Some(Utc::now() - Duration::hours(1)), ..Default::default() }).await, 2);
}

pub async fn deleting_an_app_removes_its_data(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let (m, _) = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap());
    store.delete_application(&a.id).await.unwrap();
    assert!(store.list_deliveries(&a.id, &m.id).await.unwrap().is_empty());
    assert!(matches!(store.get_message(&a.id, m.id.as_str()).await, Err(StoreError::NotFound(_))));
}
