//! What an answer means for the delivery: retries on the schedule, `Retry-After`,
//! redirects, 410, and a schedule that runs out.

use std::time::Duration;

use chrono::TimeDelta;
use herald_core::model::DeliveryStatus;

use herald_testkit::{Backend, Receiver, Reply, TestClock, backends};

use crate::support::{Harness, config_with_schedule};

#[backends]
async fn failed_delivery_is_retried_with_backoff(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let receiver = Receiver::start().await;
    receiver.respond_in_order([Reply::status(500)]);
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let (handle, shutdown) = h.spawn(config_with_schedule("0s,10ms,10ms"));
    let msg = h.message(&app).await;

    let delivery = h.wait_for_status(&msg, DeliveryStatus::Success).await;

    assert_eq!(delivery.attempts, 2);
    let attempts = h.attempts(&msg).await;
    let seen: Vec<_> = attempts.iter().map(|a| (a.status, a.response_status_code)).collect();
    assert_eq!(seen, [(DeliveryStatus::Fail, 500), (DeliveryStatus::Success, 200)]);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests.iter().all(|r| r.header("webhook-id") == Some(msg.id.as_str())),
        "the id is stable across attempts"
    );
    shutdown.cancel();
    handle.stopped().await.unwrap();
    h.assert_drained().await;
}

#[backends]
async fn a_redirect_is_not_followed_and_counts_as_a_failure(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    receiver.respond_in_order([Reply::redirect(&receiver.url("/elsewhere"))]);
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let msg = h.message(&app).await;

    h.dispatcher(config_with_schedule("0s")).run_until_idle().await.unwrap();

    let paths: Vec<_> = receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/hook"]);
    let attempts = h.attempts(&msg).await;
    assert_eq!((attempts[0].status, attempts[0].response_status_code), (DeliveryStatus::Fail, 302));
    assert_eq!(h.delivery(&msg).await.status, DeliveryStatus::Fail);
    h.assert_drained().await;
}

#[backends]
async fn gone_disables_the_endpoint(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::status(410));
    let app = h.app().await;
    let endpoint = h.endpoint(&app, &receiver.url("/hook")).await;
    let msg = h.message(&app).await;

    h.dispatcher(config_with_schedule("0s,1s,1s")).run_until_idle().await.unwrap();

    assert_eq!(receiver.received(), 1);
    let stored = h.store.get_endpoint(&app.id, endpoint.id.as_str()).await.unwrap();
    assert!(stored.disabled, "a 410 disables the endpoint");
    let delivery = h.delivery(&msg).await;
    assert_eq!((delivery.status, delivery.attempts), (DeliveryStatus::Fail, 1));
    h.assert_drained().await;
}

#[backends]
async fn retry_after_on_429_pushes_the_next_attempt_back(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    receiver.respond_in_order([Reply::retry_after(429, "120")]);
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let msg = h.message(&app).await;
    let dispatcher = h.dispatcher(config_with_schedule("0s,1s,1s"));

    dispatcher.run_until_idle().await.unwrap();

    let delivery = h.delivery(&msg).await;
    let attempt = h.attempts(&msg).await.remove(0);
    assert_eq!((delivery.status, attempt.response_status_code), (DeliveryStatus::Pending, 429));
    // The clock is frozen, so the attempt's end is its start: exactly 120 s later.
    assert_eq!(delivery.next_attempt_at - attempt.created_at, TimeDelta::seconds(120));

    h.clock.advance(Duration::from_secs(119));
    dispatcher.run_until_idle().await.unwrap();
    assert_eq!(receiver.received(), 1, "not before Retry-After");
    h.clock.advance(Duration::from_secs(1));
    dispatcher.run_until_idle().await.unwrap();
    assert_eq!(h.delivery(&msg).await.status, DeliveryStatus::Success);
    h.assert_drained().await;
}

#[backends]
async fn retry_after_on_503_as_an_http_date_is_honoured(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    // HTTP dates have whole seconds.
    let at = chrono::DateTime::from_timestamp(h.clock.now().timestamp() + 600, 0).unwrap();
    receiver.respond_in_order([Reply::retry_after(503, at.format("%a, %d %b %Y %H:%M:%S GMT"))]);
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let msg = h.message(&app).await;

    h.dispatcher(config_with_schedule("0s,1s")).run_until_idle().await.unwrap();

    let delivery = h.delivery(&msg).await;
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!(delivery.next_attempt_at, at);
}

#[backends]
async fn the_delivery_fails_once_the_schedule_is_exhausted(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::status(500));
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let msg = h.message(&app).await;
    let dispatcher = h.dispatcher(config_with_schedule("0s,1s,1s"));

    for _ in 0..3 {
        dispatcher.run_until_idle().await.unwrap();
        // Past the longest jittered delay (1.2 s).
        h.clock.advance(Duration::from_secs(2));
    }
    dispatcher.run_until_idle().await.unwrap();

    assert_eq!(receiver.received(), 3);
    let delivery = h.delivery(&msg).await;
    assert_eq!((delivery.status, delivery.attempts), (DeliveryStatus::Fail, 3));
    assert!(h.attempts(&msg).await.iter().all(|a| a.status == DeliveryStatus::Fail));
    h.assert_drained().await;
}

#[backends]
async fn a_timeout_is_a_failed_attempt_with_the_reason(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::ok().held());
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let msg = h.message(&app).await;
    let config =
        herald_worker::WorkerConfig { request_timeout: Duration::from_millis(200), ..config_with_schedule("0s") };

    h.dispatcher(config).run_until_idle().await.unwrap();
    receiver.release();

    let attempt = h.attempts(&msg).await.remove(0);
    assert_eq!((attempt.status, attempt.response_status_code), (DeliveryStatus::Fail, 0));
    assert!(attempt.response.contains("no response within 200 ms"), "{}", attempt.response);
    h.assert_drained().await;
}
