//! Conformance cases for ingest sources: the source and its hidden application, URL
//! tokens and their rotation, the request log and its sweep, and deduplication of
//! provider retries through `eventId` under concurrency, each stored request's log
//! entry committed with it. Backends run them with
//! [`crate::conformance_tests!`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use herald_core::{
    AppId, IngestLogId, SourceId,
    ingest::{IngestLog, Source},
    model::Application,
};

use super::{app, created, endpoint, message, rng};
use crate::{DynStore, MessageOutcome, PageQuery, StoreError, TokenHash, TokenRotation};

fn now() -> DateTime<Utc> {
    herald_core::to_millis(Utc::now())
}

/// A source with uid `uid` and its hidden application.
pub fn source(uid: Option<&str>) -> (Source, Application) {
    let at = now();
    let app_id = AppId::generate(at, &mut rng());
    let mut hidden = app("hidden", None);
    hidden.id = app_id.clone();
    let source = Source {
        id: SourceId::generate(at, &mut rng()),
        uid: uid.map(str::to_owned),
        name: "Stripe production".into(),
        kind: "stripe".into(),
        secret: Some("whsec_test".into()),
        previous_secret: None,
        app_id,
        metadata: BTreeMap::from([("team".to_owned(), "billing".to_owned())]),
        created_at: at,
        updated_at: at,
    };
    (source, hidden)
}

fn token(text: &str) -> TokenHash {
    TokenHash(format!("hash-of-{text}"))
}

fn log_entry(source: &SourceId, status: u16, at: DateTime<Utc>) -> IngestLog {
    IngestLog {
        id: IngestLogId::generate(at, &mut rng()),
        source_id: source.clone(),
        status_code: status,
        error_text: format!("status {status}"),
        msg_id: None,
        created_at: at,
    }
}

pub async fn sources_round_trip(store: DynStore) {
    let (s, a) = source(Some("stripe-prod"));
    let created = store.create_source(s.clone(), a, token("one")).await.unwrap();
    assert_eq!(created, s);
    assert_eq!(store.get_source(s.id.as_str()).await.unwrap(), s);
    assert_eq!(store.get_source("stripe-prod").await.unwrap(), s);

    let (taken, taken_app) = source(Some("stripe-prod"));
    assert!(matches!(store.create_source(taken, taken_app, token("two")).await, Err(StoreError::Conflict(_))));
    let (other, other_app) = source(None);
    store.create_source(other.clone(), other_app, token("three")).await.unwrap();
    let page = store.list_sources(&PageQuery::first(10, crate::Order::Ascending)).await.unwrap();
    let mut listed: Vec<_> = page.items.iter().map(|s| s.id.clone()).collect();
    listed.sort();
    let mut expected = vec![s.id.clone(), other.id.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    let mut changed = s.clone();
    changed.name = "renamed".into();
    changed.uid = None;
    changed.kind = "github".into();
    changed.replace_secret(Some("gh-secret".into()), herald_core::to_millis(Utc::now()) + Duration::hours(24));
    assert!(changed.previous_secret.is_some());
    store.update_source(changed.clone()).await.unwrap();
    assert_eq!(store.get_source(s.id.as_str()).await.unwrap(), changed);
    assert!(matches!(store.get_source("stripe-prod").await, Err(StoreError::NotFound(_))));
    let mut clash = other.clone();
    clash.uid = Some("x".into());
    store.update_source(clash).await.unwrap();
    changed.uid = Some("x".into());
    assert!(matches!(store.update_source(changed).await, Err(StoreError::Conflict(_))));

    store.delete_source(&s.id).await.unwrap();
    assert!(matches!(store.get_source(s.id.as_str()).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_source(&s.id).await, Err(StoreError::NotFound(_))));
    let (ghost, _) = source(None);
    assert!(matches!(store.update_source(ghost).await, Err(StoreError::NotFound(_))));
}

pub async fn source_applications_are_hidden_but_take_messages(store: DynStore) {
    let visible = store.create_application(app("visible", None)).await.unwrap();
    let (s, a) = source(None);
    store.create_source(s.clone(), a, token("one")).await.unwrap();
    assert!(matches!(store.get_application(s.app_id.as_str()).await, Err(StoreError::NotFound(_))));
    let apps = store
        .list_applications(crate::AppFilter::default(), &PageQuery::first(10, crate::Order::Ascending))
        .await
        .unwrap();
    assert_eq!(apps.items, vec![visible]);

    let ep = store.create_endpoint(endpoint(&s.app_id, None, None)).await.unwrap();
    assert_eq!(store.get_endpoint(&s.app_id, ep.id.as_str()).await.unwrap(), ep);
    let plain = message(s.app_id.as_str(), "ingest", None);
    assert!(
        matches!(store.create_message(plain).await, Err(StoreError::NotFound(_))),
        "only its source's requests reach a hidden application"
    );
    let mut m = message(s.app_id.as_str(), "ingest", None);
    m.ingest_log = Some(log_entry(&s.id, 204, now()));
    m.message.content_type = Some("application/x-www-form-urlencoded".into());
    m.message.payload = Some("a=1&b=%C3%A9".into());
    let (stored, deliveries) = created(store.create_message(m).await.unwrap());
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].endpoint_id, ep.id);
    let read = store.get_message(&s.app_id, stored.id.as_str()).await.unwrap();
    assert_eq!(read.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(read.payload.as_deref(), Some("a=1&b=%C3%A9"));
    let claimed = store.claim_due_deliveries(Utc::now() + Duration::seconds(1), 10, Utc::now() + Duration::minutes(1));
    let claimed = claimed.await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
}

pub async fn source_tokens_rotate_with_a_grace_period(store: DynStore) {
    let (s, a) = source(None);
    store.create_source(s.clone(), a, token("one")).await.unwrap();
    let at = now();
    let found = |t: &'static str, when: DateTime<Utc>| {
        let store = store.clone();
        async move { store.find_source_by_token(&token(t), when).await.unwrap().map(|s| s.id) }
    };
    assert_eq!(found("one", at).await, Some(s.id.clone()));
    assert_eq!(found("nope", at).await, None);

    let grace = at + Duration::hours(48);
    store.rotate_source_token(&s.id, TokenRotation { new: token("two"), old_valid_until: grace }).await.unwrap();
    assert_eq!(found("two", at).await, Some(s.id.clone()));
    assert_eq!(found("one", at).await, Some(s.id.clone()), "the old token works during the grace period");
    assert_eq!(found("one", grace).await, None, "and not after it");
    assert_eq!(found("two", grace + Duration::days(365)).await, Some(s.id.clone()));

    store.rotate_source_token(&s.id, TokenRotation { new: token("three"), old_valid_until: grace }).await.unwrap();
    assert_eq!(found("one", at).await, None, "only the token in use before the last rotation is kept");
    assert_eq!(found("two", at).await, Some(s.id.clone()));
    assert_eq!(found("three", at).await, Some(s.id.clone()));
    let (ghost, _) = source(None);
    let rotation = TokenRotation { new: token("four"), old_valid_until: grace };
    assert!(matches!(store.rotate_source_token(&ghost.id, rotation).await, Err(StoreError::NotFound(_))));
}

pub async fn ingest_logs_page_and_sweep(store: DynStore) {
    let (s, a) = source(None);
    store.create_source(s.clone(), a, token("one")).await.unwrap();
    let (other, other_app) = source(None);
    store.create_source(other.clone(), other_app, token("two")).await.unwrap();
    let at = now();
    let old = log_entry(&s.id, 401, at - Duration::days(40));
    let mut newer = Vec::new();
    store.record_ingest_log(old.clone()).await.unwrap();
    for i in 0..3 {
        let entry = log_entry(&s.id, 204, at + Duration::milliseconds(i));
        store.record_ingest_log(entry.clone()).await.unwrap();
        newer.push(entry);
    }
    store.record_ingest_log(log_entry(&other.id, 401, at)).await.unwrap();

    let first = store.list_ingest_logs(&s.id, &PageQuery::first(2, crate::Order::Descending)).await.unwrap();
    assert_eq!(first.items, vec![newer[2].clone(), newer[1].clone()]);
    assert!(!first.done);
    let all = store.list_ingest_logs(&s.id, &PageQuery::first(50, crate::Order::Ascending)).await.unwrap();
    assert_eq!(all.items.len(), 4);
    assert_eq!(all.items[0], old);

    let swept = store.sweep_retention(at, at - Duration::days(30), 100).await.unwrap();
    assert_eq!(swept.ingest_logs_deleted, 1);
    let all = store.list_ingest_logs(&s.id, &PageQuery::first(50, crate::Order::Ascending)).await.unwrap();
    assert_eq!(all.items, newer);
    let swept = store.sweep_retention(at, at + Duration::seconds(1), 2).await.unwrap();
    assert_eq!(swept.ingest_logs_deleted, 2, "the limit bounds one sweep");
    assert!(swept.is_full(2));
}

pub async fn ingest_logs_are_trimmed_per_source(store: DynStore) {
    let (s, a) = source(None);
    store.create_source(s.clone(), a, token("one")).await.unwrap();
    let (other, other_app) = source(None);
    store.create_source(other.clone(), other_app, token("two")).await.unwrap();
    let at = now();
    let mut entries = Vec::new();
    for i in 0..7 {
        let entry = log_entry(&s.id, 401, at + Duration::milliseconds(i));
        store.record_ingest_log(entry.clone()).await.unwrap();
        entries.push(entry);
    }
    for i in 0..3 {
        store.record_ingest_log(log_entry(&other.id, 401, at + Duration::milliseconds(i))).await.unwrap();
    }

    assert_eq!(store.trim_ingest_logs(3, 2).await.unwrap(), 2, "the limit bounds one step");
    assert_eq!(store.trim_ingest_logs(3, 2).await.unwrap(), 2);
    assert_eq!(store.trim_ingest_logs(3, 2).await.unwrap(), 0, "nothing is over the cap any more");
    let kept = store.list_ingest_logs(&s.id, &PageQuery::first(50, crate::Order::Ascending)).await.unwrap();
    assert_eq!(kept.items, entries[4..], "the newest entries stay");
    let untouched = store.list_ingest_logs(&other.id, &PageQuery::first(50, crate::Order::Ascending)).await.unwrap();
    assert_eq!(untouched.items.len(), 3, "a source at the cap keeps all of its log");
    assert_eq!(store.trim_ingest_logs(0, 100).await.unwrap(), 6, "a cap of 0 empties every log");
}

pub async fn concurrent_retries_of_one_event_store_it_once(store: DynStore) {
    let (s, a) = source(None);
    store.create_source(s.clone(), a, token("one")).await.unwrap();
    store.create_endpoint(endpoint(&s.app_id, None, None)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let mut m = message(s.app_id.as_str(), "ingest", None);
            m.message.event_id = Some("evt_1NG8Du2eZvKYlo2CUI79vXWy".into());
            m.ingest_log = Some(IngestLog { msg_id: Some(m.message.id.clone()), ..log_entry(&s.id, 204, now()) });
            tokio::spawn(async move { store.create_message(m).await })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(MessageOutcome::Created { .. }) => stored += 1,
            Ok(MessageOutcome::DuplicateEventId) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(stored, 1, "exactly one of the concurrent retries is stored");
    let all = PageQuery::first(50, crate::Order::Ascending);
    let page = store.list_messages(&s.app_id, &crate::MessageFilter::default(), &all).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let logs = store.list_ingest_logs(&s.id, &all).await.unwrap();
    assert_eq!(logs.items.len(), 1, "only the stored request's log entry is written with it");
    assert_eq!(logs.items[0].msg_id.as_ref(), Some(&page.items[0].id));
}

pub async fn deleting_a_source_removes_its_data(store: DynStore) {
    let (s, a) = source(None);
    store.create_source(s.clone(), a, token("one")).await.unwrap();
    let ep = store.create_endpoint(endpoint(&s.app_id, None, None)).await.unwrap();
    let mut received = message(s.app_id.as_str(), "ingest", None);
    received.ingest_log = Some(log_entry(&s.id, 204, now()));
    let (m, _) = created(store.create_message(received).await.unwrap());
    store.delete_source(&s.id).await.unwrap();
    assert!(matches!(store.get_endpoint(&s.app_id, ep.id.as_str()).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.get_message(&s.app_id, m.id.as_str()).await, Err(StoreError::NotFound(_))));
    assert!(store.list_deliveries(&s.app_id, &m.id).await.unwrap().is_empty());
    assert!(store.find_source_by_token(&token("one"), now()).await.unwrap().is_none());
    let logs = store.list_ingest_logs(&s.id, &PageQuery::first(10, crate::Order::Ascending)).await.unwrap();
    assert!(logs.items.is_empty());
}
