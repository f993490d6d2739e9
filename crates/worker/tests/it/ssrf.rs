//! The SSRF guard on the send path (SECURITY.md, "Outbound requests"): loopback receivers get nothing
//! without an allow-list, whatever the URL spelling; metadata stays blocked even when
//! its range is opened; names are resolved by Herald and only checked addresses used.

use std::sync::Arc;

use herald_core::model::DeliveryStatus;
use herald_worker::{DestinationRefused, GuardedResolver, WorkerConfig};

use herald_testkit::{Backend, Receiver, TestClock, backends};

use crate::support::{Harness, config_with_schedule};

#[backends]
async fn a_loopback_receiver_gets_nothing_without_an_allow_list(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    let port = receiver.addr().port();
    let app = h.app().await;
    let urls = [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://127.1:{port}/hook"),
        format!("http://0x7f000001:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://0177.0.0.1:{port}/hook"),
        format!("http://user@127.0.0.1:{port}/hook#frag"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://LocalHost.:{port}/hook"),
    ];
    for url in &urls {
        h.endpoint(&app, url).await;
    }
    let msg = h.message(&app).await;
    let config = WorkerConfig { retry_schedule: "0s".parse().unwrap(), ..WorkerConfig::default() };

    h.dispatcher(config).run_until_idle().await.unwrap();

    assert_eq!(receiver.received(), 0, "nothing may reach a loopback receiver");
    let attempts = h.attempts(&msg).await;
    assert_eq!(attempts.len(), urls.len());
    for attempt in attempts {
        assert_eq!((attempt.status, attempt.response_status_code), (DeliveryStatus::Fail, 0), "{}", attempt.url);
        assert!(attempt.response.contains("refused by the SSRF guard"), "{}: {}", attempt.url, attempt.response);
        assert!(attempt.response.contains("loopback"), "{}: {}", attempt.url, attempt.response);
    }
    h.assert_drained().await;
}

#[backends]
async fn metadata_addresses_stay_blocked_when_their_range_is_allowed(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let app = h.app().await;
    h.endpoint(&app, "http://169.254.169.254/latest/meta-data/").await;
    h.endpoint(&app, "http://[::ffff:a9fe:a9fe]/latest/meta-data/").await;
    let msg = h.message(&app).await;
    let config = WorkerConfig { allow_cidrs: "169.254.0.0/16".parse().unwrap(), ..config_with_schedule("0s") };

    h.dispatcher(config).run_until_idle().await.unwrap();

    for attempt in h.attempts(&msg).await {
        assert_eq!(attempt.response_status_code, 0);
        assert!(attempt.response.contains("cloud metadata"), "{}", attempt.response);
    }
    h.assert_drained().await;
}

#[backends]
async fn a_name_is_resolved_by_herald_and_sent_to_an_allowed_address(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    // `localhost` resolves to 127.0.0.1 (allowed) and maybe ::1 (not): only the first is used.
    h.endpoint(&app, &format!("http://localhost:{}/hook", receiver.addr().port())).await;
    let msg = h.message(&app).await;

    h.dispatcher(config_with_schedule("0s")).run_until_idle().await.unwrap();

    assert_eq!(receiver.received(), 1);
    assert_eq!(h.delivery(&msg).await.status, DeliveryStatus::Success);
    h.assert_drained().await;
}

#[tokio::test]
async fn the_resolver_refuses_a_name_whose_addresses_are_all_blocked() {
    let receiver = Receiver::start().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(Arc::default())))
        .build()
        .unwrap();

    let error = client.get(format!("http://localhost:{}/", receiver.addr().port())).send().await.unwrap_err();

    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let refusal = std::iter::from_fn(|| {
        let current = source?;
        source = current.source();
        Some(current)
    })
    .find_map(|e| e.downcast_ref::<DestinationRefused>())
    .expect("the refusal is in the error chain");
    assert!(refusal.to_string().contains("loopback address 127.0.0.1"), "{refusal}");
    assert_eq!(receiver.received(), 0);
}
