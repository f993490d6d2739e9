//! A slow endpoint must not delay others (SECURITY.md, "Resource bounds"): per-endpoint request slots,
//! a bound on what one endpoint may hold in memory (claims skip a full endpoint), and a
//! global bound on deliveries in flight.

use std::time::Duration;

use herald_core::model::DeliveryStatus;
use herald_worker::WorkerConfig;

use herald_testkit::{Backend, DEADLINE, Receiver, Reply, TestClock, backends, wait_until};

use crate::support::{Harness, config};

#[backends]
async fn a_hanging_endpoint_does_not_delay_another_endpoint_of_the_same_app(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let slow = Receiver::start().await;
    slow.respond_with(Reply::ok().held());
    let fast = Receiver::start().await;
    let app = h.app().await;
    let mut slow_endpoint = h.endpoint_at(&app, &slow.url("/slow"));
    slow_endpoint.event_types = Some(vec!["slow".into()]);
    h.create_endpoint(slow_endpoint).await;
    let mut fast_endpoint = h.endpoint_at(&app, &fast.url("/fast"));
    fast_endpoint.event_types = Some(vec!["fast".into()]);
    h.create_endpoint(fast_endpoint).await;
    let config = WorkerConfig {
        max_in_flight: 20,
        max_in_flight_per_endpoint: 4,
        max_queued_per_endpoint: 4,
        poll_interval: Duration::from_millis(50),
        ..config()
    };
    let (handle, shutdown) = h.spawn(config);

    let mut slow_messages = Vec::new();
    for _ in 0..12 {
        slow_messages.push(h.message_with(&app, "slow", Some("{}")).await);
    }
    slow.wait_for(4).await;
    for _ in 0..50 {
        h.message_with(&app, "fast", Some("{}")).await;
    }

    fast.wait_for(50).await;
    assert_eq!(slow.answered(), 0, "every fast message arrived while the slow endpoint still hung");
    assert_eq!(slow.received(), 4, "the slow endpoint never gets more than its request slots");

    // Once the slow endpoint answers, the deliveries its claims skipped are sent too.
    slow.release();
    for msg in &slow_messages {
        h.wait_for_status(msg, DeliveryStatus::Success).await;
    }
    assert_eq!(slow.received(), 12);
    shutdown.cancel();
    handle.stopped().await.unwrap();
    h.assert_drained().await;
}

#[backends]
async fn the_global_bound_caps_what_is_in_flight(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let app = h.app().await;
    let mut receivers = Vec::new();
    for _ in 0..4 {
        let receiver = Receiver::start().await;
        receiver.respond_with(Reply::ok().held());
        h.endpoint(&app, &receiver.url("/hook")).await;
        receivers.push(receiver);
    }
    let config = WorkerConfig {
        max_in_flight: 6,
        max_in_flight_per_endpoint: 2,
        max_queued_per_endpoint: 0,
        poll_interval: Duration::from_millis(50),
        ..config()
    };
    // Distinct creation times, so claims take whole messages in order and no endpoint
    // gets more than its two request slots' worth among the first six.
    for _ in 0..3 {
        h.message(&app).await;
        h.clock.advance(Duration::from_millis(1));
    }
    let (handle, shutdown) = h.spawn(config);

    let in_flight = || receivers.iter().map(Receiver::received).sum::<usize>();
    wait_until(DEADLINE, || async { in_flight() == 6 }).await;
    assert!(receivers.iter().all(|r| r.received() <= 2));
    assert!(receivers.iter().all(|r| r.answered() == 0));

    for receiver in &receivers {
        receiver.release();
    }
    wait_until(DEADLINE, || async { in_flight() == 12 }).await;
    shutdown.cancel();
    handle.stopped().await.unwrap();
    h.assert_drained().await;
}

#[backends]
async fn a_busy_endpoints_backlog_is_refilled_in_batches_without_a_poll(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    for _ in 0..200 {
        h.message(&app).await;
    }
    let config = WorkerConfig {
        max_in_flight_per_endpoint: 4,
        max_queued_per_endpoint: 4,
        batch_size: 10,
        poll_interval: Duration::from_secs(3600),
        ..config()
    };

    let (handle, shutdown) = h.spawn(config);

    receiver.wait_for(200).await;
    shutdown.cancel();
    handle.stopped().await.unwrap();
    h.assert_drained().await;
}
