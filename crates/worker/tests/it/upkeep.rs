//! Per-event-type retry schedules, disabling endpoints that fail for too long,
//! `throttleRate`, and the retention sweep, against real receivers and SQLite.

use std::time::Duration;

use herald_core::model::{DeliveryStatus, Endpoint, EventType};
use herald_worker::{RetentionConfig, WorkerConfig, sweep_retention};

use herald_testkit::{Backend, DEADLINE, Receiver, Reply, TestClock, backends, poll_until};

use crate::support::{Harness, config, config_with_schedule};

async fn event_type_with_schedule(h: &Harness, name: &str, schedule: &str) {
    let now = h.clock.now();
    let et = EventType {
        name: name.into(),
        description: String::new(),
        archived: false,
        deprecated: false,
        schemas: None,
        group_name: None,
        feature_flags: None,
        created_at: now,
        updated_at: now,
    };
    h.store.create_event_type(et).await.unwrap();
    h.store.set_event_type_retry_schedule(name, Some(schedule.parse().unwrap())).await.unwrap();
}

#[backends]
async fn an_event_types_schedule_replaces_the_global_one(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::status(500));
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    event_type_with_schedule(&h, "invoice.paid", "0s,10ms").await;
    let own = h.message_with(&app, "invoice.paid", Some("{}")).await;
    let global = h.message_with(&app, "user.created", Some("{}")).await;
    let dispatcher = h.dispatcher(config_with_schedule("0s,1h,1h"));

    dispatcher.run_until_idle().await.unwrap();
    h.clock.advance(Duration::from_secs(1));
    dispatcher.run_until_idle().await.unwrap();

    let own = h.delivery(&own).await;
    assert_eq!((own.status, own.attempts), (DeliveryStatus::Fail, 2), "the type's two entries are used up");
    let global = h.delivery(&global).await;
    assert_eq!((global.status, global.attempts), (DeliveryStatus::Pending, 1), "the global schedule waits an hour");
}

#[backends]
async fn an_endpoint_failing_for_the_period_is_disabled_until_patched_back(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::status(500));
    let app = h.app().await;
    let ep = h.endpoint(&app, &receiver.url("/hook")).await;
    let cfg =
        WorkerConfig { disable_after_failing: Some(Duration::from_secs(5 * 86_400)), ..config_with_schedule("0s") };
    let dispatcher = h.dispatcher(cfg);
    let is_disabled = || async { h.store.get_endpoint(&app.id, ep.id.as_str()).await.unwrap().disabled };

    h.message(&app).await;
    dispatcher.run_until_idle().await.unwrap();
    h.clock.advance(Duration::from_secs(4 * 86_400));
    h.message(&app).await;
    dispatcher.run_until_idle().await.unwrap();
    assert!(!is_disabled().await, "failing for four days");

    h.clock.advance(Duration::from_secs(86_400 + 1));
    h.message(&app).await;
    dispatcher.run_until_idle().await.unwrap();
    assert!(is_disabled().await, "failing for more than five days");
    let sent = receiver.received();

    // Disabled: nothing more is queued for it. Patched back, it starts a fresh period.
    let ep = h.store.get_endpoint(&app.id, ep.id.as_str()).await.unwrap();
    h.store.update_endpoint(Endpoint { disabled: false, ..ep }).await.unwrap();
    h.clock.advance(Duration::from_secs(86_400));
    let msg = h.message(&app).await;
    dispatcher.run_until_idle().await.unwrap();
    assert_eq!(receiver.received(), sent + 1);
    assert_eq!(h.delivery(&msg).await.status, DeliveryStatus::Fail);
    assert!(!is_disabled().await, "re-enabled endpoints get a fresh five days");
    h.assert_drained().await;
}

#[backends]
async fn throttle_rate_spaces_requests_without_dropping_any(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    let throttled =
        h.create_endpoint(Endpoint { throttle_rate: Some(4), ..h.endpoint_at(&app, &receiver.url("/slow")) });
    let throttled = throttled.await;
    let free = h.endpoint(&app, &receiver.url("/free")).await;
    let (handle, shutdown) = h.spawn(config());
    let messages = [h.message(&app).await, h.message(&app).await, h.message(&app).await, h.message(&app).await];

    for msg in &messages {
        let attempts = poll_until(DEADLINE, || async {
            let attempts = h.attempts(msg).await;
            (attempts.len() == 2).then_some(attempts)
        })
        .await;
        assert!(attempts.iter().all(|a| a.status == DeliveryStatus::Success));
    }

    let mut starts = Vec::new();
    for msg in &messages {
        let attempts = h.attempts(msg).await;
        starts.extend(attempts.iter().filter(|a| a.endpoint_id == throttled.id).map(|a| a.created_at));
        assert!(attempts.iter().any(|a| a.endpoint_id == free.id));
    }
    starts.sort();
    // 4 per second spaces 4 starts over at least 750 ms; each attempt stamps its start a
    // little after the throttle lets it go, and on a loaded machine the first stamp may
    // lag, so allow that much slack. Unthrottled, all 4 start within milliseconds. The
    // exact spacing is checked with a controlled clock in `throttle`'s unit test.
    let span = (starts[starts.len() - 1] - starts[0]).num_milliseconds();
    assert!(span >= 500, "4 requests spread over only {span} ms under throttleRate 4");
    shutdown.cancel();
    handle.stopped().await.unwrap();
    h.assert_drained().await;
}

#[backends]
async fn retention_drops_expired_payloads_and_old_attempts(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let dispatcher = h.dispatcher(config());
    let delivered = h.message(&app).await;
    dispatcher.run_until_idle().await.unwrap();
    let retention = RetentionConfig { attempt_retention_days: 30, batch_size: 1, ..RetentionConfig::default() };

    // Past the message's 90-day retention (and the attempt's 30 days).
    h.clock.advance(Duration::from_secs(91 * 86_400));
    let queued = h.message(&app).await;
    let swept = sweep_retention(&h.store, &retention, &h.clock.clock()).await.unwrap();

    assert_eq!((swept.payloads_dropped, swept.attempts_deleted), (1, 1));
    assert_eq!(h.store.get_message(&app.id, delivered.id.as_str()).await.unwrap().payload, None);
    assert!(h.attempts(&delivered).await.is_empty());
    assert!(h.store.get_message(&app.id, queued.id.as_str()).await.unwrap().payload.is_some());
    dispatcher.run_until_idle().await.unwrap();
    assert_eq!(h.delivery(&queued).await.status, DeliveryStatus::Success, "a live payload is still sent");
    h.assert_drained().await;
}

#[backends]
async fn an_expired_payload_fails_its_delivery_without_sending(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let msg = h.message(&app).await;
    h.clock.advance(Duration::from_secs(91 * 86_400));
    sweep_retention(&h.store, &RetentionConfig::default(), &h.clock.clock()).await.unwrap();

    h.dispatcher(config()).run_until_idle().await.unwrap();

    assert_eq!(h.delivery(&msg).await.status, DeliveryStatus::Fail);
    assert_eq!(receiver.received(), 0);
    h.assert_drained().await;
}
