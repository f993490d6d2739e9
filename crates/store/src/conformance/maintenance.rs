//! Conformance cases for the upkeep methods: per-event-type retry schedules, endpoint
//! health (disabling endpoints that have failed for too long), the retention sweep and
//! the queue depth. Backends run them with [`crate::conformance_tests!`].

use chrono::{DateTime, Duration, Utc};
use herald_core::{
    AttemptId, RetrySchedule,
    model::{Attempt, DeliveryStatus, EventType, TriggerType},
};

use super::{app, created, endpoint, message, rng};
use crate::{AttemptResult, ClaimedDelivery, DynStore, NextStep, QueueDepth, StoreError};

fn attempt(d: &ClaimedDelivery, ok: bool, at: DateTime<Utc>) -> Attempt {
    Attempt {
        id: AttemptId::generate(at, &mut rng()),
        msg_id: d.delivery.msg_id.clone(),
        endpoint_id: d.endpoint.id.clone(),
        app_id: d.delivery.app_id.clone(),
        url: d.endpoint.url.clone(),
        status: if ok { DeliveryStatus::Success } else { DeliveryStatus::Fail },
        response_status_code: if ok { 200 } else { 500 },
        response: String::new(),
        response_duration_ms: 1,
        trigger: TriggerType::Scheduled,
        created_at: at,
    }
}

fn now() -> DateTime<Utc> {
    herald_core::to_millis(Utc::now())
}

pub async fn event_type_retry_schedules_round_trip(store: DynStore) {
    let at = now();
    let et = EventType {
        name: "invoice.paid".into(),
        description: "paid".into(),
        archived: false,
        deprecated: false,
        schemas: None,
        group_name: None,
        feature_flags: None,
        created_at: at,
        updated_at: at,
    };
    store.create_event_type(et).await.unwrap();
    assert_eq!(store.get_event_type_retry_schedule("invoice.paid").await.unwrap(), None);
    let schedule: RetrySchedule = "0s,10ms,5m,1d".parse().unwrap();
    store.set_event_type_retry_schedule("invoice.paid", Some(schedule.clone())).await.unwrap();
    assert_eq!(store.get_event_type_retry_schedule("invoice.paid").await.unwrap(), Some(schedule));
    store.set_event_type_retry_schedule("invoice.paid", None).await.unwrap();
    assert_eq!(store.get_event_type_retry_schedule("invoice.paid").await.unwrap(), None);
    assert!(matches!(store.get_event_type_retry_schedule("nope").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.set_event_type_retry_schedule("nope", None).await, Err(StoreError::NotFound(_))));
}

/// Queues one message for the app's endpoint and claims it at `at`.
async fn claim_one(store: &DynStore, app_id: &str, at: DateTime<Utc>) -> ClaimedDelivery {
    store.create_message(message(app_id, "t", None)).await.unwrap();
    let mut claimed = store.claim_due_deliveries(at, 10, at + Duration::seconds(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    claimed.remove(0)
}

pub async fn endpoints_failing_too_long_are_disabled(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    let ep = store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let t0 = now() + Duration::seconds(1);
    // Retries far off, so each claim below takes only the newest message.
    let fail = |d: &ClaimedDelivery, at: DateTime<Utc>| AttemptResult {
        attempt: attempt(d, false, at),
        next: NextStep::RetryAt(at + Duration::days(365)),
        lease_until: d.delivery.next_attempt_at,
    };
    let record = |results, cutoff| {
        let store = store.clone();
        async move { store.record_attempts_disabling(results, Some(cutoff)).await.unwrap() }
    };

    // The first failure starts the period; failing within it disables nothing.
    let d = claim_one(&store, a.id.as_str(), t0).await;
    assert!(record(vec![fail(&d, t0)], t0 - Duration::days(5)).await.is_empty());
    let t1 = t0 + Duration::days(4);
    let d = claim_one(&store, a.id.as_str(), t1).await;
    assert!(record(vec![fail(&d, t1)], t1 - Duration::days(5)).await.is_empty());
    assert!(!store.get_endpoint(&a.id, ep.id.as_str()).await.unwrap().disabled);

    // A success resets it.
    let d = claim_one(&store, a.id.as_str(), t1).await;
    let ok = AttemptResult {
        attempt: attempt(&d, true, t1),
        next: NextStep::Delivered,
        lease_until: d.delivery.next_attempt_at,
    };
    assert!(record(vec![ok], t1 - Duration::days(5)).await.is_empty());
    let t2 = t0 + Duration::days(6);
    let d = claim_one(&store, a.id.as_str(), t2).await;
    assert!(record(vec![fail(&d, t2)], t2 - Duration::days(5)).await.is_empty(), "failing only since t2");

    // Failing since t2, a failure more than the period later disables the endpoint and
    // fails the delivery instead of retrying it.
    let t3 = t2 + Duration::days(5) + Duration::milliseconds(1);
    let d = claim_one(&store, a.id.as_str(), t3).await;
    let msg_id = d.delivery.msg_id.clone();
    assert_eq!(record(vec![fail(&d, t3)], t3 - Duration::days(5)).await, vec![ep.id.clone()]);
    let disabled = store.get_endpoint(&a.id, ep.id.as_str()).await.unwrap();
    assert!(disabled.disabled);
    assert_eq!(store.list_deliveries(&a.id, &msg_id).await.unwrap()[0].status, DeliveryStatus::Fail);

    // Re-enabled, it starts a fresh period.
    store.update_endpoint(herald_core::model::Endpoint { disabled: false, ..disabled }).await.unwrap();
    let t4 = t3 + Duration::days(1);
    let d = claim_one(&store, a.id.as_str(), t4).await;
    assert!(record(vec![fail(&d, t4)], t4 - Duration::days(5)).await.is_empty());
    assert!(!store.get_endpoint(&a.id, ep.id.as_str()).await.unwrap().disabled);
}

pub async fn retention_drops_expired_payloads_and_old_attempts(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let t0 = now() + Duration::seconds(1);
    let mut old = message(a.id.as_str(), "t", None);
    old.message.expires_at = t0 + Duration::days(1);
    let (old, _) = created(store.create_message(old).await.unwrap());
    let (young, _) = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap());
    let claimed = store.claim_due_deliveries(t0, 10, t0 + Duration::seconds(30)).await.unwrap();
    let results = claimed
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let at = t0 + Duration::days(i64::try_from(i).unwrap() * 10);
            AttemptResult {
                attempt: attempt(d, true, at),
                next: NextStep::Delivered,
                lease_until: d.delivery.next_attempt_at,
            }
        })
        .collect();
    store.record_attempts(results).await.unwrap();

    // Two days on, with attempts kept for five: only the expired payload goes, in
    // batches of one.
    let t2 = t0 + Duration::days(2);
    let swept = store.sweep_retention(t2, t2 - Duration::days(5), 1).await.unwrap();
    assert_eq!((swept.payloads_dropped, swept.attempts_deleted), (1, 0));
    assert_eq!(store.get_message(&a.id, old.id.as_str()).await.unwrap().payload, None);
    assert!(store.get_message(&a.id, young.id.as_str()).await.unwrap().payload.is_some());
    assert!(!store.sweep_retention(t2, t2 - Duration::days(5), 1).await.unwrap().is_full(1));

    // Past the attempt retention of the first attempt (at t0) but not the second (t0 + 10d).
    let t12 = t0 + Duration::days(12);
    let swept = store.sweep_retention(t12, t12 - Duration::days(5), 10).await.unwrap();
    assert_eq!(swept.attempts_deleted, 1);
    let left = store.list_message_attempts(&a.id, &old.id).await.unwrap().len()
        + store.list_message_attempts(&a.id, &young.id).await.unwrap().len();
    assert_eq!(left, 1);
}

pub async fn queue_depth_counts_pending_and_sending(store: DynStore) {
    assert_eq!(store.queue_depth().await.unwrap(), QueueDepth::default());
    let a = store.create_application(app("a", None)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    for _ in 0..3 {
        store.create_message(message(a.id.as_str(), "t", None)).await.unwrap();
    }
    let t0 = now() + Duration::seconds(1);
    let claimed = store.claim_due_deliveries(t0, 1, t0 + Duration::seconds(30)).await.unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), QueueDepth { pending: 2, sending: 1 });
    let ok = AttemptResult {
        attempt: attempt(&claimed[0], true, t0),
        next: NextStep::Delivered,
        lease_until: claimed[0].delivery.next_attempt_at,
    };
    store.record_attempts(vec![ok]).await.unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), QueueDepth { pending: 2, sending: 0 });
}
