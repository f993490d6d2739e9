//! Conformance cases for the pull side: reading messages by position with filters,
//! commit-order safety under concurrent writers, poller consumer positions and the
//! commit signal. Backends run them with [`crate::conformance_tests!`].

use std::{collections::HashSet, time::Duration};

use chrono::{Duration as TimeDelta, Utc};
use herald_core::MessageId;

use super::{app, created, endpoint, message, rng};
use crate::{ConsumerKey, DynStore, EventFilter, Position, StoreError};

/// Every message of `app` matching `filter`, read from `from` in pages of `limit`.
async fn read_all(
    store: &DynStore,
    app: &herald_core::AppId,
    filter: &EventFilter,
    from: Position,
    limit: usize,
) -> (Vec<MessageId>, Position) {
    let (mut seen, mut at) = (Vec::new(), from);
    loop {
        let page = store.read_events(app, filter, at, limit).await.unwrap();
        assert!(page.events.len() <= limit);
        for event in &page.events {
            assert!(event.position > at, "positions grow along a read");
            at = event.position;
            seen.push(event.message.id.clone());
        }
        // Rows held back behind another open transaction (PostgreSQL tests share a
        // server) are readable moments later.
        if page.done && !page.held_back {
            return (seen, at);
        }
        if page.events.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub async fn events_read_in_commit_order_with_filters(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let other = store.create_application(app("other", None)).await.unwrap();
    let specs: [(&str, Option<&[&str]>); 5] = [
        ("user.signup", Some(&["eu"])),
        ("user.deleted", None),
        ("user.signup", Some(&["us", "eu"])),
        ("invoice.paid", Some(&["us"])),
        ("user.signup", None),
    ];
    let mut ids = Vec::new();
    for (event_type, channels) in specs {
        ids.push(created(store.create_message(message(a.id.as_str(), event_type, channels)).await.unwrap()).0.id);
        store.create_message(message(other.id.as_str(), event_type, channels)).await.unwrap();
    }
    let all = EventFilter::default();
    for limit in [1, 2, 250] {
        assert_eq!(read_all(&store, &a.id, &all, Position::START, limit).await.0, ids, "limit {limit}");
    }
    let pick = |idx: &[usize]| idx.iter().map(|&i| ids[i].clone()).collect::<Vec<_>>();
    let types = EventFilter { event_types: Some(vec!["user.signup".into(), "invoice.paid".into()]), ..all.clone() };
    assert_eq!(read_all(&store, &a.id, &types, Position::START, 2).await.0, pick(&[0, 2, 3, 4]));
    let none = EventFilter { event_types: Some(vec![]), ..all.clone() };
    assert!(read_all(&store, &a.id, &none, Position::START, 2).await.0.is_empty());
    let any_of = EventFilter { channels: Some(vec!["eu".into(), "ap".into()]), ..all.clone() };
    assert_eq!(read_all(&store, &a.id, &any_of, Position::START, 1).await.0, pick(&[0, 2]));
    let both = EventFilter { channel: Some("us".into()), ..any_of.clone() };
    assert_eq!(read_all(&store, &a.id, &both, Position::START, 5).await.0, pick(&[2]));
    let later = EventFilter { after: Some(Utc::now() + TimeDelta::hours(1)), ..all.clone() };
    assert!(read_all(&store, &a.id, &later, Position::START, 5).await.0.is_empty());

    // Continuing from any message's position returns exactly the messages after it.
    for (i, id) in ids.iter().enumerate() {
        let at = store.message_position(&a.id, id).await.unwrap();
        assert_eq!(read_all(&store, &a.id, &all, at, 3).await.0, ids[i + 1..].to_vec());
    }
    let missing = MessageId::generate(Utc::now(), &mut rng());
    assert!(matches!(store.message_position(&a.id, &missing).await, Err(StoreError::NotFound(_))));
    let foreign = store.read_events(&other.id, &all, Position::START, 1).await.unwrap().events[0].message.id.clone();
    assert!(matches!(store.message_position(&a.id, &foreign).await, Err(StoreError::NotFound(_))));

    // Seeking by time: before everything reads everything, after everything reads nothing.
    let first = store.get_message(&a.id, ids[0].as_str()).await.unwrap();
    let from = store.position_after(&a.id, first.created_at - TimeDelta::seconds(1)).await.unwrap();
    assert_eq!(read_all(&store, &a.id, &all, from, 10).await.0, ids);
    let end = store.position_after(&a.id, Utc::now() + TimeDelta::hours(1)).await.unwrap();
    assert!(read_all(&store, &a.id, &all, end, 10).await.0.is_empty());
    let (_, last) = read_all(&store, &a.id, &all, Position::START, 10).await;
    assert_eq!(end, last, "seeking past the end stands after the last message");
    let newer = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap()).0.id;
    assert_eq!(read_all(&store, &a.id, &all, end, 10).await.0, [newer]);
    let empty = store.create_application(app("empty", None)).await.unwrap();
    assert_eq!(store.position_after(&empty.id, Utc::now()).await.unwrap(), Position::START);
}

/// Writers create messages concurrently while a reader keeps continuing from its last
/// position: the reader must see every message exactly once, in increasing positions.
pub async fn readers_continuing_during_concurrent_writes_miss_nothing(store: DynStore) {
    const WRITERS: usize = 8;
    const EACH: usize = 40;
    let a = store.create_application(app("race", None)).await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, app_id) = (store.clone(), a.id.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..EACH {
                    let m = message(app_id.as_str(), &format!("w{w}.m{i}"), None);
                    ids.push(created(store.create_message(m).await.unwrap()).0.id);
                }
                ids
            })
        })
        .collect();
    let filter = EventFilter::default();
    let (mut seen, mut unique, mut at) = (Vec::new(), HashSet::new(), Position::START);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while seen.len() < WRITERS * EACH {
        assert!(tokio::time::Instant::now() < deadline, "the reader saw only {} messages", seen.len());
        let page = store.read_events(&a.id, &filter, at, 7).await.unwrap();
        for event in page.events {
            assert!(event.position > at, "positions grow along a read");
            at = event.position;
            assert!(unique.insert(event.message.id.clone()), "{} seen twice", event.message.id);
            seen.push(event.message.id);
        }
        if page.done {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    assert_eq!(unique, written, "the reader saw exactly the messages written");
    assert!(read_all(&store, &a.id, &filter, at, 10).await.0.is_empty(), "nothing more");
}

pub async fn consumer_positions_are_kept_per_consumer(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let ep = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let key = |name: &str| ConsumerKey { endpoint_id: ep.id.clone(), consumer_id: name.to_owned() };
    let now = herald_core::to_millis(Utc::now());
    assert_eq!(store.consumer_position(&a.id, &key("one")).await.unwrap(), None);
    let p1 = Position { commit: 3, seq: 17 };
    let p2 = Position { commit: u64::MAX >> 1, seq: 5 };
    store.save_consumer_position(&a.id, &key("one"), p1, now).await.unwrap();
    store.save_consumer_position(&a.id, &key("two"), p2, now).await.unwrap();
    assert_eq!(store.consumer_position(&a.id, &key("one")).await.unwrap(), Some(p1));
    assert_eq!(store.consumer_position(&a.id, &key("two")).await.unwrap(), Some(p2));
    store.save_consumer_position(&a.id, &key("one"), p2, now).await.unwrap();
    assert_eq!(store.consumer_position(&a.id, &key("one")).await.unwrap(), Some(p2));
    let b = store.create_application(app("b", None)).await.unwrap();
    assert_eq!(store.consumer_position(&b.id, &key("one")).await.unwrap(), None, "scoped to the application");
    store.delete_endpoint(&a.id, &ep.id).await.unwrap();
    assert_eq!(store.consumer_position(&a.id, &key("one")).await.unwrap(), None, "gone with the endpoint");
}

pub async fn commits_are_signalled(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let mut commits = store.message_commits();
    commits.borrow_and_update();
    store.create_message(message(a.id.as_str(), "t", None)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), commits.changed())
        .await
        .expect("a commit is signalled")
        .expect("the store keeps its sender");
}
