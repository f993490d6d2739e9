//! Conformance cases for deliveries: claims and leases, recording attempts, the
//! attempt log and manual control (requeue, resend, replay). Run by
//! [`crate::conformance_tests!`].

use chrono::{DateTime, Duration, Utc};
use herald_core::{
    AttemptId, EndpointId, MessageId,
    model::{Attempt, DeliveryStatus, TriggerType},
};

use super::{app, created, endpoint, message, rng};
use crate::{AttemptResult, Cursor, Direction, DynStore, MessageFilter, NextStep, Order, PageQuery, StoreError};

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

pub async fn handed_off_deliveries_are_leased_until_sent(store: DynStore) {
    let a = store.create_application(app("a", None)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let (sender, mut receiver) = crate::handoff::channel(1, Duration::seconds(30));
    store.hand_off_to(sender);
    let (m, queued) = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap());
    // The channel is full now: the next message's delivery goes to the table, pending.
    let (full, _) = created(store.create_message(message(a.id.as_str(), "t", None)).await.unwrap());
    let handed = receiver.try_recv().expect("the committed delivery was handed off");
    assert!(receiver.try_recv().is_err(), "only one delivery had room");
    assert_eq!((&handed.message.id, &handed.message.payload), (&m.id, &m.payload));
    assert_eq!(
        (handed.delivery.status, handed.delivery.next_attempt_at),
        (DeliveryStatus::Sending, handed.lease_until)
    );
    let stored = store.list_deliveries(&a.id, &m.id).await.unwrap();
    assert_eq!(stored, queued, "the row is written leased, as handed off");
    assert_eq!(stored[0].next_attempt_at, handed.lease_until);

    let now = herald_core::to_millis(Utc::now()) + Duration::seconds(1);
    let claimed = store.claim_due_deliveries(now, 10, now + Duration::seconds(60)).await.unwrap();
    let ids = |c: &[crate::ClaimedDelivery]| c.iter().map(|c| c.message.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&claimed), [full.id], "a claim takes the pending one and skips the handed-off one");

    let later = handed.lease_until + Duration::seconds(1);
    let again = store.claim_due_deliveries(later, 10, later + Duration::seconds(30)).await.unwrap();
    assert_eq!(ids(&again), [m.id], "an expired hand-off is claimed");
}
