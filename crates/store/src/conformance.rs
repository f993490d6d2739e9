//! The behavioural suite every [`Store`] backend must pass. A backend's tests invoke
//! [`conformance_tests!`] with an expression that yields a fresh, empty store.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use herald_core::{
    AppId, AttemptId, EndpointId, MessageId,
    model::{Application, Attempt, DeliveryStatus, Endpoint, EndpointSecret, EventType, Message, TriggerType},
};
use rand::{SeedableRng, rngs::StdRng};

pub mod events;
pub mod ingest;
pub mod maintenance;

use crate::{
    AppFilter, AttemptResult, Cursor, Direction, DynStore, IdempotencyClaim, IdempotencyWrite, MessageFilter,
    MessageOutcome, NewMessage, NextStep, Order, PageQuery, StoreError, StoredResponse,
};

/// Expands to one `#[tokio::test]` per conformance case; `$make` is an async
/// expression returning a fresh [`DynStore`] and a guard (e.g. a temp dir) that is
/// dropped when the case ends.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            applications_round_trip, application_uid_is_unique, pages_walk_both_ways, application_list_filters,
            event_types_round_trip, endpoints_are_scoped_to_their_app, message_fans_out_to_matching_endpoints,
            message_idempotency_replays_without_writing, event_id_conflicts_within_window,
            idempotency_claims_are_exclusive, concurrent_messages_all_commit, message_filters,
            deleting_an_app_removes_its_data, claims_are_leased_and_expire, attempts_move_deliveries_on,
            a_late_result_does_not_overwrite_a_newer_owner,
            attempt_log_filters_and_pages, manual_control_requeues_deliveries);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard): ($crate::DynStore, _) = $make.await;
                $crate::conformance::$case(store).await;
            }
        )*
    };
}

pub(crate) fn rng() -> StdRng {
    StdRng::from_os_rng()
}

/// An application named `name` with an optional uid.
pub fn app(name: &str, uid: Option<&str>) -> Application {
    let now = herald_core::to_millis(Utc::now());
    Application {
        id: AppId::generate(now, &mut rng()),
        uid: uid.map(str::to_owned),
        name: name.to_owned(),
        throttle_rate: None,
        metadata: BTreeMap::from([("team".to_owned(), "core".to_owned())]),
        created_at: now,
        updated_at: now,
    }
}

/// An endpoint of `app_id` with the given filters.
pub fn endpoint(app_id: &AppId, types: Option<&[&str]>, channels: Option<&[&str]>) -> Endpoint {
    let now = herald_core::to_millis(Utc::now());
    let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    Endpoint {
        id: EndpointId::generate(now, &mut rng()),
        app_id: app_id.clone(),
        uid: None,
        url: "https://example.com/hook".into(),
        description: String::new(),
        throttle_rate: None,
        disabled: false,
        event_types: types.map(list),
        channels: channels.map(list),
        metadata: BTreeMap::new(),
        headers: BTreeMap::from([("x-team".to_owned(), "core".to_owned())]),
        secrets: vec![EndpointSecret::generate(&mut rng())],
        created_at: now,
        updated_at: now,
    }
}

/// A new-message request for `app_key`.
pub fn message(app_key: &str, event_type: &str, channels: Option<&[&str]>) -> NewMessage {
    let now = herald_core::to_millis(Utc::now());
    NewMessage {
        app_key: app_key.to_owned(),
        create_app: None,
        message: Message {
            id: MessageId::generate(now, &mut rng()),
            // Placeholder: the store fills in the resolved application.
            app_id: AppId::generate(now, &mut rng()),
            event_id: None,
            event_type: event_type.to_owned(),
            payload: Some(r#"{"k": 1}"#.to_owned()),
            channels: channels.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
            tags: None,
            created_at: now,
            deliver_at: None,
            expires_at: now + Duration::days(90),
            content_type: None,
        },
        idempotency: None,
        event_id_since: now - Duration::hours(24),
        ingest_log: None,
    }
}

/// The message and deliveries of a `Created` outcome.
///
/// # Panics
/// On a replay.
pub fn created(outcome: MessageOutcome) -> (Message, Vec<herald_core::model::Delivery>) {
    match outcome {
        MessageOutcome::Created { message, deliveries } => (message, deliveries),
        MessageOutcome::Replayed(_) => panic!("expected a new message, got a replay"),
    }
}

pub async fn applications_round_trip(store: DynStore) {
    let a = store.create_application(app("one", Some("one-uid"))).await.unwrap();
    assert_eq!(store.get_application(a.id.as_str()).await.unwrap(), a);
    assert_eq!(store.get_application("one-uid").await.unwrap(), a);
    let mut changed = a.clone();
    changed.name = "renamed".into();
    changed.uid = None;
    store.update_application(changed.clone()).await.unwrap();
    assert_eq!(store.get_application(a.id.as_str()).await.unwrap().name, "renamed");
    assert!(matches!(store.get_application("one-uid").await, Err(StoreError::NotFound(_))));
    store.delete_application(&a.id).await.unwrap();
    assert!(matches!(store.get_application(a.id.as_str()).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_application(&a.id).await, Err(StoreError::NotFound(_))));
}

pub async fn application_uid_is_unique(store: DynStore) {
    store.create_application(app("a", Some("same"))).await.unwrap();
    assert!(matches!(store.create_application(app("b", Some("same"))).await, Err(StoreError::Conflict(_))));
    let other = store.create_application(app("c", Some("other"))).await.unwrap();
    let mut clash = other.clone();
    clash.uid = Some("same".into());
    assert!(matches!(store.update_application(clash).await, Err(StoreError::Conflict(_))));
}

pub async fn pages_walk_both_ways(store: DynStore) {
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(store.create_application(app(&format!("app{i}"), None)).await.unwrap().id);
    }
    ids.sort();
    for order in [Order::Ascending, Order::Descending] {
        let mut expected = ids.clone();
        if order == Order::Descending {
            expected.reverse();
        }
        let mut seen = Vec::new();
        let mut query = PageQuery::first(7, order);
        let mut pages = Vec::new();
        loop {
            let page = store.list_applications(AppFilter::default(), &query).await.unwrap();
            seen.extend(page.items.iter().map(|a| a.id.clone()));
            let last = page.items.last().map(|a| a.id.to_string());
            pages.push(page.items.iter().map(|a| a.id.clone()).collect::<Vec<_>>());
            if page.done {
                break;
            }
            query.cursor = Some(Cursor { key: last.unwrap(), direction: Direction::Next });
        }
        assert_eq!(seen, expected, "forward walk in {order:?}");
        // Walk back from the last page using each page's first key.
        let mut back = Vec::new();
        let mut first = pages.last().unwrap().first().unwrap().to_string();
        back.extend(pages.last().unwrap().iter().rev().cloned());
        loop {
            let q = PageQuery { limit: 7, cursor: Some(Cursor { key: first, direction: Direction::Prev }), order };
            let page = store.list_applications(AppFilter::default(), &q).await.unwrap();
            back.extend(page.items.iter().rev().map(|a| a.id.clone()));
            if page.done {
                break;
            }
            first = page.items.first().unwrap().id.to_string();
        }
        back.reverse();
        assert_eq!(back, expected, "backward walk in {order:?}");
    }
}

pub async fn event_types_round_trip(store: DynStore) {
    let now = herald_core::to_millis(Utc::now());
    let et = EventType {
        name: "user.signup".into(),
        description: "A user signed up".into(),
        archived: false,
        deprecated: false,
        schemas: Some(serde_json::json!({"1": {"type": "object"}})),
        group_name: None,
        feature_flags: None,
        created_at: now,
        updated_at: now,
    };
    store.create_event_type(et.clone()).await.unwrap();
    assert!(matches!(store.create_event_type(et.clone()).await, Err(StoreError::Conflict(_))));
    let mut archived = store.get_event_type("user.signup").await.unwrap();
    assert_eq!(archived.schemas, et.schemas);
    archived.archived = true;
    store.update_event_type(archived).await.unwrap();
    let visible = store.list_event_types(&PageQuery::first(50, Order::Ascending), false).await.unwrap();
    assert!(visible.items.is_empty());
    let all = store.list_event_types(&PageQuery::first(50, Order::Ascending), true).await.unwrap();
    assert_eq!(all.items.len(), 1);
    store.delete_event_type("user.signup").await.unwrap();
    assert!(matches!(store.get_event_type("user.signup").await, Err(StoreError::NotFound(_))));
}

pub async fn endpoints_are_scoped_to_their_app(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let b = store.create_application(app("b", None)).await.unwrap();
    let mut ep = endpoint(&a.id, None, None);
    ep.uid = Some("ep-uid".into());
    let ep = store.create_endpoint(ep).await.unwrap();
    assert_eq!(store.get_endpoint(&a.id, "ep-uid").await.unwrap(), ep);
    assert!(matches!(store.get_endpoint(&b.id, ep.id.as_str()).await, Err(StoreError::NotFound(_))));
    let mut dup = endpoint(&a.id, None, None);
    dup.uid = Some("ep-uid".into());
    assert!(matches!(store.create_endpoint(dup).await, Err(StoreError::Conflict(_))));
    let mut same_uid_other_app = endpoint(&b.id, None, None);
    same_uid_other_app.uid = Some("ep-uid".into());
    store.create_endpoint(same_uid_other_app).await.unwrap();
    assert!(matches!(
        store.create_endpoint(endpoint(&AppId::generate(Utc::now(), &mut rng()), None, None)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.delete_endpoint(&b.id, &ep.id).await, Err(StoreError::NotFound(_))));
    store.delete_endpoint(&a.id, &ep.id).await.unwrap();
    assert!(store.list_endpoints(&a.id, &PageQuery::first(10, Order::Ascending)).await.unwrap().items.is_empty());
}

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
        MessageOutcome::Created { .. } => panic!("a replayed key must not create a message"),
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
    assert!(matches!(store.create_message(again.clone()).await, Err(StoreError::Conflict(_))));
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

fn attempt_for(d: &crate::ClaimedDelivery, status: DeliveryStatus, at: DateTime<Utc>) -> Attempt {
    Attempt {
        id: AttemptId::generate(at, &mut rng()),
        msg_id: d.delivery.msg_id.clone(),
        endpoint_id: d.delivery.endpoint_id.clone(),
        app_id: d.delivery.app_id.clone(),
        url: d.endpoint.url.clone(),
        status,
        response_status_code: if status == DeliveryStatus::Success { 200 } else { 500 },
        response: "body".into(),
        response_duration_ms: 3,
        trigger: TriggerType::Scheduled,
        created_at: at,
    }
}

pub async fn claims_are_leased_and_expire(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let (m, _) = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap());
    let now = herald_core::to_millis(Utc::now()) + Duration::seconds(1);
    let lease = now + Duration::seconds(30);
    let claimed = store.claim_due_deliveries(now, 10, lease).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message.id, m.id);
    assert_eq!(claimed[0].message.payload, m.payload);
    assert_eq!(claimed[0].delivery.status, DeliveryStatus::Sending);
    assert!(
        store.claim_due_deliveries(now, 10, lease).await.unwrap().is_empty(),
        "a leased delivery is not claimed twice"
    );
    let later = lease + Duration::seconds(1);
    let again = store.claim_due_deliveries(later, 10, later + Duration::seconds(30)).await.unwrap();
    assert_eq!(again.len(), 1, "an expired lease makes the delivery due again");
}

pub async fn attempts_move_deliveries_on(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let ep = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let (m, _) = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap());
    let now = herald_core::to_millis(Utc::now()) + Duration::seconds(1);
    let claimed = store.claim_due_deliveries(now, 10, now + Duration::seconds(30)).await.unwrap();
    let retry_at = now + Duration::seconds(5);
    let failed = attempt_for(&claimed[0], DeliveryStatus::Fail, now);
    store
        .record_attempts(vec![AttemptResult {
            attempt: failed,
            next: NextStep::RetryAt(retry_at),
            lease_until: claimed[0].delivery.next_attempt_at,
        }])
        .await
        .unwrap();
    let d = store.list_deliveries(&a.id, &m.id).await.unwrap();
    assert_eq!((d[0].status, d[0].attempts, d[0].next_attempt_at), (DeliveryStatus::Pending, 1, retry_at));
    assert!(store.claim_due_deliveries(now, 10, now + Duration::seconds(30)).await.unwrap().is_empty());
    let second = store.claim_due_deliveries(retry_at, 10, retry_at + Duration::seconds(30)).await.unwrap();
    let ok = attempt_for(&second[0], DeliveryStatus::Success, retry_at);
    store
        .record_attempts(vec![AttemptResult {
            attempt: ok,
            next: NextStep::Delivered,
            lease_until: second[0].delivery.next_attempt_at,
        }])
        .await
        .unwrap();
    let d = store.list_deliveries(&a.id, &m.id).await.unwrap();
    assert_eq!((d[0].status, d[0].attempts), (DeliveryStatus::Success, 2));
    let attempts = store.list_message_attempts(&a.id, &m.id).await.unwrap();
    assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [DeliveryStatus::Fail, DeliveryStatus::Success]);
    assert!(store.claim_due_deliveries(retry_at + Duration::days(1), 10, retry_at).await.unwrap().is_empty());

    let (m2, _) = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap());
    let claimed = store.claim_due_deliveries(now, 10, now + Duration::seconds(30)).await.unwrap();
    assert_eq!(claimed[0].message.id, m2.id);
    let gone = attempt_for(&claimed[0], DeliveryStatus::Fail, now);
    store
        .record_attempts(vec![AttemptResult {
            attempt: gone,
            next: NextStep::EndpointDisabled,
            lease_until: claimed[0].delivery.next_attempt_at,
        }])
        .await
        .unwrap();
    assert!(store.get_endpoint(&a.id, ep.id.as_str()).await.unwrap().disabled);
    assert_eq!(store.list_deliveries(&a.id, &m2.id).await.unwrap()[0].status, DeliveryStatus::Fail);
}

/// `list_applications` leaves out, when asked, applications without endpoints and
/// those whose endpoints are all disabled.
pub async fn application_list_filters(store: DynStore) {
    let mut add = Vec::new();
    for name in ["none", "enabled", "disabled", "mixed"] {
        add.push(store.create_application(app(name, None)).await.unwrap());
    }
    let off = |app: &Application| Endpoint { disabled: true, ..endpoint(&app.id, None, None) };
    store.create_endpoint(endpoint(&add[1].id, None, None)).await.unwrap();
    store.create_endpoint(off(&add[2])).await.unwrap();
    store.create_endpoint(off(&add[3])).await.unwrap();
    store.create_endpoint(endpoint(&add[3].id, None, None)).await.unwrap();
    let names = |exclude_without_endpoints, exclude_only_disabled_endpoints| {
        let store = store.clone();
        let filter = AppFilter { exclude_without_endpoints, exclude_only_disabled_endpoints };
        async move {
            let page = store.list_applications(filter, &PageQuery::first(50, Order::Ascending)).await.unwrap();
            let mut names: Vec<_> = page.items.into_iter().map(|a| a.name).collect();
            names.sort();
            names
        }
    };
    assert_eq!(names(false, false).await, ["disabled", "enabled", "mixed", "none"]);
    assert_eq!(names(true, false).await, ["disabled", "enabled", "mixed"]);
    assert_eq!(names(false, true).await, ["enabled", "mixed", "none"]);
    assert_eq!(names(true, true).await, ["enabled", "mixed"]);
}

/// A result recorded after its lease stopped holding is logged but leaves the
/// delivery to whoever owns it now: a resend made while the attempt was in flight,
/// or a second worker that claimed it after the lease ran out.
pub async fn a_late_result_does_not_overwrite_a_newer_owner(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let ep = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let (m, _) = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap());
    let now = herald_core::to_millis(Utc::now()) + Duration::seconds(1);
    let result = |c: &crate::ClaimedDelivery, next| AttemptResult {
        attempt: attempt_for(c, DeliveryStatus::Success, now),
        next,
        lease_until: c.delivery.next_attempt_at,
    };

    // Resent while in flight: the resend stands, due now with a fresh schedule.
    let first = store.claim_due_deliveries(now, 10, now + Duration::seconds(30)).await.unwrap();
    store.resend_message(&a.id, &m.id, &ep.id, now).await.unwrap();
    store.record_attempts(vec![result(&first[0], NextStep::Delivered)]).await.unwrap();
    let d = store.list_deliveries(&a.id, &m.id).await.unwrap();
    assert_eq!((d[0].status, d[0].attempts, d[0].next_attempt_at), (DeliveryStatus::Pending, 0, now));

    // Claimed again, the lease runs out and another worker claims it: the first
    // worker's late failure neither fails nor reschedules the second's delivery.
    let second = store.claim_due_deliveries(now, 10, now + Duration::seconds(30)).await.unwrap();
    let later = now + Duration::seconds(31);
    let third = store.claim_due_deliveries(later, 10, later + Duration::seconds(30)).await.unwrap();
    assert_eq!(third.len(), 1);
    store.record_attempts(vec![result(&second[0], NextStep::Failed)]).await.unwrap();
    let d = store.list_deliveries(&a.id, &m.id).await.unwrap();
    assert_eq!((d[0].status, d[0].next_attempt_at), (DeliveryStatus::Sending, third[0].delivery.next_attempt_at));

    // The current owner's result moves it on; every attempt is in the log.
    store.record_attempts(vec![result(&third[0], NextStep::Delivered)]).await.unwrap();
    let d = store.list_deliveries(&a.id, &m.id).await.unwrap();
    assert_eq!((d[0].status, d[0].attempts), (DeliveryStatus::Success, 1));
    assert_eq!(store.list_message_attempts(&a.id, &m.id).await.unwrap().len(), 3);
}

/// `claim_due_deliveries_skipping` and `release_deliveries`. Not yet in
/// [`conformance_tests!`]: backends that keep the trait's defaults fail it.
pub async fn claims_skip_endpoints_and_releases_requeue(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let busy = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let free = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let (m, _) = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap());
    let now = herald_core::to_millis(Utc::now()) + Duration::seconds(1);
    let lease = now + Duration::seconds(30);

    let claimed = store.claim_due_deliveries_skipping(now, 10, lease, std::slice::from_ref(&busy.id)).await.unwrap();
    assert_eq!(claimed.iter().map(|c| &c.endpoint.id).collect::<Vec<_>>(), [&free.id]);

    store.release_deliveries(vec![(m.id.clone(), free.id.clone())], lease, now).await.unwrap();
    let d = store.list_deliveries(&a.id, &m.id).await.unwrap();
    let released = d.iter().find(|d| d.endpoint_id == free.id).unwrap();
    assert_eq!((released.status, released.attempts, released.next_attempt_at), (DeliveryStatus::Pending, 0, now));

    // A release under a lease that is no longer current (another claim took the
    // delivery since) changes nothing.
    let again = store.claim_due_deliveries(now, 10, lease + Duration::seconds(1)).await.unwrap();
    assert_eq!(again.len(), 2);
    store.release_deliveries(vec![(m.id.clone(), free.id.clone())], lease, now).await.unwrap();
    let d = store.list_deliveries(&a.id, &m.id).await.unwrap();
    assert!(d.iter().all(|d| d.status == DeliveryStatus::Sending));
}

/// Claims everything due at `at` and records one attempt per delivery: `Fail` (500,
/// schedule exhausted) for endpoints in `failing`, else `Success`.
async fn attempt_all(store: &DynStore, at: DateTime<Utc>, failing: &[&EndpointId]) -> Vec<Attempt> {
    let claimed = store.claim_due_deliveries(at, 100, at + Duration::seconds(30)).await.unwrap();
    let results: Vec<_> = claimed
        .iter()
        .map(|c| {
            let fail = failing.contains(&&c.endpoint.id);
            let mut attempt = attempt_for(c, if fail { DeliveryStatus::Fail } else { DeliveryStatus::Success }, at);
            attempt.trigger = c.delivery.trigger;
            AttemptResult {
                attempt,
                next: if fail { NextStep::Failed } else { NextStep::Delivered },
                lease_until: c.delivery.next_attempt_at,
            }
        })
        .collect();
    let attempts = results.iter().map(|r| r.attempt.clone()).collect();
    store.record_attempts(results).await.unwrap();
    attempts
}

pub async fn attempt_log_filters_and_pages(store: DynStore) {
    use crate::{AttemptFilter, RequeueFilter};
    let a = store.create_application(app("a", None)).await.unwrap();
    let good = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let bad = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let mut msgs = Vec::new();
    for (i, event) in ["user.signup", "user.deleted", "user.signup"].into_iter().enumerate() {
        let mut m = message(a.id.as_str(), event, (i == 0).then_some(&["eu"][..]));
        m.message.tags = Some(vec![format!("t{i}")]);
        msgs.push(created(store.create_message(m).await.unwrap()).0);
    }
    let now = herald_core::to_millis(Utc::now()) + Duration::seconds(1);
    let made = attempt_all(&store, now, &[&bad.id]).await;
    assert_eq!(made.len(), 6);
    let q = PageQuery::first(50, Order::Descending);
    let list = |filter: AttemptFilter| {
        let (store, app, q) = (store.clone(), a.id.clone(), q.clone());
        async move { store.list_attempts(&app, &filter, &q).await.unwrap().items }
    };
    let by_bad = list(AttemptFilter { endpoint_id: Some(bad.id.clone()), ..Default::default() }).await;
    assert_eq!(by_bad.len(), 3);
    assert!(by_bad.iter().all(|t| t.status == DeliveryStatus::Fail && t.response_status_code == 500));
    assert!(by_bad.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let by_msg = list(AttemptFilter { msg_id: Some(msgs[0].id.clone()), ..Default::default() }).await;
    assert_eq!(by_msg.len(), 2);
    let narrowed = |f: AttemptFilter| list(AttemptFilter { endpoint_id: Some(good.id.clone()), ..f });
    assert_eq!(narrowed(AttemptFilter { status: Some(DeliveryStatus::Fail), ..Default::default() }).await.len(), 0);
    assert_eq!(narrowed(AttemptFilter { status_code_class: Some(200), ..Default::default() }).await.len(), 3);
    assert_eq!(narrowed(AttemptFilter { status_code_class: Some(500), ..Default::default() }).await.len(), 0);
    let signup = Some(vec!["user.signup".to_owned()]);
    assert_eq!(narrowed(AttemptFilter { event_types: signup, ..Default::default() }).await.len(), 2);
    assert_eq!(narrowed(AttemptFilter { channel: Some("eu".into()), ..Default::default() }).await.len(), 1);
    assert_eq!(narrowed(AttemptFilter { tag: Some("t1".into()), ..Default::default() }).await.len(), 1);
    assert_eq!(narrowed(AttemptFilter { before: Some(now), ..Default::default() }).await.len(), 0);
    assert_eq!(
        narrowed(AttemptFilter { after: Some(now - Duration::seconds(1)), ..Default::default() }).await.len(),
        3
    );

    // Pages of one walk the attempts of an endpoint without gaps or repeats.
    let mut seen = Vec::new();
    let mut page = PageQuery::first(1, Order::Descending);
    loop {
        let got = store
            .list_attempts(&a.id, &AttemptFilter { endpoint_id: Some(bad.id.clone()), ..Default::default() }, &page)
            .await
            .unwrap();
        seen.extend(got.items.iter().map(|t| t.id.clone()));
        if got.done {
            break;
        }
        page.cursor = Some(Cursor { key: seen.last().unwrap().to_string(), direction: Direction::Next });
    }
    assert_eq!(seen, by_bad.iter().map(|t| t.id.clone()).collect::<Vec<_>>());

    let one = &by_bad[0];
    assert_eq!(&store.get_attempt(&a.id, &one.msg_id, &one.id).await.unwrap(), one);
    assert!(matches!(store.get_attempt(&a.id, &msgs[1].id, &by_msg[0].id).await, Err(StoreError::NotFound(_))));
    store.expunge_attempt_content(&a.id, &one.msg_id, &one.id).await.unwrap();
    assert_eq!(store.get_attempt(&a.id, &one.msg_id, &one.id).await.unwrap().response, "EXPUNGED");

    let stats = store.endpoint_stats(&a.id, &bad.id, None, None).await.unwrap();
    assert_eq!((stats.fail, stats.success, stats.pending), (3, 0, 0));
    let later = store.endpoint_stats(&a.id, &bad.id, Some(now + Duration::hours(1)), None).await.unwrap();
    assert_eq!(later, crate::DeliveryCounts::default());

    let sent = store.list_endpoint_messages(&a.id, &good.id, None, &MessageFilter::default(), &q).await.unwrap();
    // Newest first by id; ids made within one millisecond order by their random part.
    let mut newest_first = msgs.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    newest_first.sort_by(|x, y| y.cmp(x));
    assert_eq!(sent.items.iter().map(|e| e.message.id.clone()).collect::<Vec<_>>(), newest_first);
    assert!(
        sent.items.iter().all(|e| e.delivery.status == DeliveryStatus::Success && e.delivery.endpoint_id == good.id)
    );
    let failed = store
        .list_endpoint_messages(
            &a.id,
            &bad.id,
            Some(DeliveryStatus::Fail),
            &MessageFilter { tag: Some("t2".into()), ..Default::default() },
            &q,
        )
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 1);
    let dests =
        store.list_message_destinations(&a.id, &msgs[0].id, &PageQuery::first(50, Order::Ascending)).await.unwrap();
    let mut want = vec![good.id.clone(), bad.id.clone()];
    want.sort();
    assert_eq!(dests.items.iter().map(|d| d.endpoint.id.clone()).collect::<Vec<_>>(), want);

    store.expunge_message_content(&a.id, &msgs[2].id).await.unwrap();
    assert_eq!(store.get_message(&a.id, msgs[2].id.as_str()).await.unwrap().payload, None);
    assert!(matches!(
        store.expunge_message_content(&a.id, &MessageId::generate(now, &mut rng())).await,
        Err(StoreError::NotFound(_))
    ));
    // A message without its payload is not sent again.
    assert_eq!(
        store
            .requeue_deliveries(&a.id, &bad.id, &RequeueFilter::window(now - Duration::hours(1), None), now)
            .await
            .unwrap(),
        2
    );
}

pub async fn manual_control_requeues_deliveries(store: DynStore) {
    use crate::RequeueFilter;
    let a = store.create_application(app("a", None)).await.unwrap();
    let ep = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let m1 = created(store.create_message(message(a.id.as_str(), "user.signup", None)).await.unwrap()).0;
    let m2 = created(store.create_message(message(a.id.as_str(), "user.deleted", None)).await.unwrap()).0;
    let now = herald_core::to_millis(Utc::now()) + Duration::seconds(1);
    let first = attempt_all(&store, now, &[&ep.id]).await;
    assert!(first.iter().all(|t| t.trigger == TriggerType::Scheduled));

    // Recover: failed deliveries since a time become due now with a manual trigger.
    let since = now - Duration::hours(1);
    let recover = RequeueFilter { status: Some(DeliveryStatus::Fail), ..RequeueFilter::window(since, None) };
    assert_eq!(store.requeue_deliveries(&a.id, &ep.id, &recover, now).await.unwrap(), 2);
    assert_eq!(store.requeue_deliveries(&a.id, &ep.id, &recover, now).await.unwrap(), 0, "nothing failed now");
    let d = store.list_deliveries(&a.id, &m1.id).await.unwrap();
    assert_eq!(
        (d[0].status, d[0].attempts, d[0].next_attempt_at, d[0].trigger),
        (DeliveryStatus::Pending, 0, now, TriggerType::Manual)
    );
    let second = attempt_all(&store, now + Duration::seconds(1), &[]).await;
    assert_eq!(second.len(), 2);
    assert!(second.iter().all(|t| t.trigger == TriggerType::Manual));
    assert_eq!(store.list_deliveries(&a.id, &m1.id).await.unwrap()[0].trigger, TriggerType::Scheduled);

    // Bulk replay by filter: only the matching message.
    let only_deleted =
        RequeueFilter { event_types: Some(vec!["user.deleted".into()]), ..RequeueFilter::window(since, None) };
    assert_eq!(store.requeue_deliveries(&a.id, &ep.id, &only_deleted, now).await.unwrap(), 1);
    let by_class = RequeueFilter { status_code_class: Some(500), ..RequeueFilter::window(since, None) };
    assert_eq!(store.requeue_deliveries(&a.id, &ep.id, &by_class, now).await.unwrap(), 0, "the last attempts were 200");
    assert_eq!(attempt_all(&store, now + Duration::seconds(2), &[]).await.len(), 1);

    // Resend: one message to one endpoint, whether or not it had a delivery.
    store.resend_message(&a.id, &m2.id, &ep.id, now).await.unwrap();
    let late = store.create_endpoint(endpoint(&a.id, Some(&["user.signup"]), None)).await.unwrap();
    store.resend_message(&a.id, &m2.id, &late.id, now).await.unwrap();
    let resent = attempt_all(&store, now + Duration::seconds(3), &[]).await;
    assert_eq!(resent.len(), 2);
    assert!(resent.iter().all(|t| t.msg_id == m2.id && t.trigger == TriggerType::Manual));
    assert!(matches!(
        store.resend_message(&a.id, &MessageId::generate(now, &mut rng()), &ep.id, now).await,
        Err(StoreError::NotFound(_))
    ));

    // Replay missing: an endpoint created later gets the older messages its filters
    // accept that it never got (m2 it got by resend; m1 matches; nothing else).
    let other = store.create_endpoint(endpoint(&a.id, Some(&["user.signup"]), None)).await.unwrap();
    assert_eq!(store.replay_missing(&a.id, &other.id, since, None, now).await.unwrap(), 1);
    assert_eq!(store.replay_missing(&a.id, &late.id, since, None, now).await.unwrap(), 1);
    assert_eq!(store.replay_missing(&a.id, &late.id, since, None, now).await.unwrap(), 0, "queued once");
    assert_eq!(store.replay_missing(&a.id, &ep.id, since, Some(since), now).await.unwrap(), 0);
    let replayed = attempt_all(&store, now + Duration::seconds(4), &[]).await;
    assert_eq!(replayed.len(), 2);
    assert!(replayed.iter().all(|t| t.msg_id == m1.id && t.trigger == TriggerType::Manual));
    let stats = store.endpoint_stats(&a.id, &other.id, None, None).await.unwrap();
    assert_eq!((stats.success, stats.pending, stats.sending), (1, 0, 0));
}
