//! When the dispatcher looks for work and how it stops: the in-process wake-up, known
//! retry times, leases that outlive a dead worker, and graceful shutdown.

use std::time::Duration;

use herald_core::model::DeliveryStatus;
use herald_worker::WorkerConfig;

use herald_testkit::{Backend, Receiver, Reply, TestClock, backends};

use crate::support::{Harness, config, config_with_schedule};

/// A poll interval no test waits for: anything that happens came from a wake-up.
const NEVER: Duration = Duration::from_secs(3600);

#[backends]
async fn an_accepted_message_goes_out_at_once_without_a_poll(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let (handle, shutdown) = h.spawn(WorkerConfig { poll_interval: NEVER, ..config() });
    // Once the first message is recorded the dispatcher is idle, waiting: the second
    // can only reach it through the store's wake-up.
    let first = h.message(&app).await;
    h.wait_for_status(&first, DeliveryStatus::Success).await;

    let second = h.message(&app).await;

    h.wait_for_status(&second, DeliveryStatus::Success).await;
    assert_eq!(receiver.received(), 2);
    shutdown.cancel();
    handle.stopped().await.unwrap();
    h.assert_drained().await;
}

#[backends]
async fn a_retry_is_sent_when_due_without_a_poll(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let receiver = Receiver::start().await;
    receiver.respond_in_order([Reply::status(503), Reply::status(500)]);
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let (handle, shutdown) = h.spawn(WorkerConfig { poll_interval: NEVER, ..config_with_schedule("0s,20ms,20ms") });
    let msg = h.message(&app).await;

    let delivery = h.wait_for_status(&msg, DeliveryStatus::Success).await;

    assert_eq!(delivery.attempts, 3);
    shutdown.cancel();
    handle.stopped().await.unwrap();
    h.assert_drained().await;
}

#[backends]
async fn a_delivery_claimed_by_a_dead_worker_is_sent_after_its_lease(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let msg = h.message(&app).await;
    // A worker claims it for 30 s and dies without sending.
    let now = h.clock.now();
    let claimed = h.store.claim_due_deliveries(now, 10, now + chrono::TimeDelta::seconds(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let survivor = h.dispatcher(config());

    survivor.run_until_idle().await.unwrap();
    assert_eq!(receiver.received(), 0, "the lease still holds");
    assert_eq!(h.delivery(&msg).await.status, DeliveryStatus::Sending);

    h.clock.advance(Duration::from_secs(31));
    survivor.run_until_idle().await.unwrap();

    assert_eq!(receiver.received(), 1);
    let delivery = h.delivery(&msg).await;
    assert_eq!((delivery.status, delivery.attempts), (DeliveryStatus::Success, 1));
    h.assert_drained().await;
}

#[backends]
async fn shutdown_finishes_the_attempt_in_flight_and_hands_back_the_rest(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::ok().held());
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let config = WorkerConfig { max_in_flight_per_endpoint: 1, max_queued_per_endpoint: 1, ..config() };
    let (handle, shutdown) = h.spawn(config.clone());
    let first = h.message(&app).await;
    let second = h.message(&app).await;
    receiver.wait_for(1).await;

    shutdown.cancel();
    receiver.release();
    handle.stopped().await.unwrap();

    assert_eq!(receiver.received(), 1, "nothing new starts after shutdown");
    let mut states = [h.delivery(&first).await, h.delivery(&second).await];
    states.sort_by_key(|d| d.status.code());
    let summary: Vec<_> = states.iter().map(|d| (d.status, d.attempts)).collect();
    assert_eq!(
        summary,
        [(DeliveryStatus::Success, 1), (DeliveryStatus::Pending, 0)],
        "the finished attempt is recorded; the waiting delivery is handed back unsent"
    );
    assert!(states[1].next_attempt_at <= h.clock.now(), "due at once, not after its lease");

    h.dispatcher(config).run_until_idle().await.unwrap();
    assert_eq!(receiver.received(), 2);
    h.assert_drained().await;
}

#[backends]
async fn an_idle_dispatcher_stops_at_once(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let (handle, shutdown) = h.spawn(WorkerConfig { poll_interval: NEVER, ..config() });
    shutdown.cancel();
    handle.stopped().await.unwrap();
}
