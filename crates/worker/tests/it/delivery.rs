//! What goes over the wire: exact bytes, Standard Webhooks headers that independent
//! libraries verify, rotation, ed25519, custom headers; and what is never sent.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chrono::TimeDelta;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use herald_core::model::{DeliveryStatus, EndpointSecret, TriggerType};
use herald_signature::Ed25519SecretKey;

use herald_testkit::{Backend, Receiver, TestClock, backends};

use crate::support::{Harness, config, verify_with_libraries};

#[backends]
async fn delivers_exact_bytes_with_verifiable_standard_webhooks_headers(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    let mut endpoint = h.endpoint_at(&app, &receiver.url("/hook?team=core"));
    endpoint.headers.insert("x-team".into(), "billing".into());
    let endpoint = h.create_endpoint(endpoint).await;
    // Odd spacing, key order and escapes must survive byte for byte.
    let payload = "{ \"b\":1,\n  \"a\" : \"\\u00e9t\u{e9}\", \"n\": 1.50 }";
    let msg = h.message_with(&app, "user.created", Some(payload)).await;

    h.dispatcher(config()).run_until_idle().await.unwrap();

    let requests = receiver.wait_for(1).await;
    let request = &requests[0];
    assert_eq!(request.body.as_ref(), payload.as_bytes());
    assert_eq!(request.path, "/hook?team=core", "the endpoint URL's query reaches the receiver");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("user-agent"), Some(format!("Herald/{}", env!("CARGO_PKG_VERSION")).as_str()));
    assert_eq!(request.header("x-team"), Some("billing"));
    assert_eq!(request.header("webhook-id"), Some(msg.id.as_str()));
    assert_eq!(request.header("webhook-timestamp"), Some(h.clock.now().timestamp().to_string().as_str()));
    for name in ["id", "timestamp", "signature"] {
        let (svix, webhook) = (request.header(&format!("svix-{name}")), request.header(&format!("webhook-{name}")));
        assert!(webhook.is_some());
        assert_eq!(svix, webhook);
    }
    verify_with_libraries(&endpoint.secrets[0].key, request).unwrap();

    let attempts = h.attempts(&msg).await;
    assert_eq!(attempts.len(), 1);
    let attempt = &attempts[0];
    assert_eq!((attempt.status, attempt.response_status_code), (DeliveryStatus::Success, 200));
    assert_eq!(attempt.url, endpoint.url);
    assert_eq!(attempt.trigger, TriggerType::Scheduled);
    assert_eq!(attempt.created_at, h.clock.now());
    assert!(attempt.id.as_str().starts_with("atmpt_"));
    let delivery = h.delivery(&msg).await;
    assert_eq!((delivery.status, delivery.attempts), (DeliveryStatus::Success, 1));
    h.assert_drained().await;
}

#[backends]
async fn a_rotated_secret_signs_during_its_grace_period_and_not_after(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    let now = h.clock.now();
    let old = EndpointSecret::generate(&mut rand::rng());
    let rotated = |offset: TimeDelta| {
        let mut endpoint = h.endpoint_at(&app, &receiver.url("/hook"));
        endpoint.secrets.push(EndpointSecret { expires_at: Some(now + offset), ..old.clone() });
        endpoint
    };
    let in_grace = h.create_endpoint(rotated(TimeDelta::hours(1))).await;
    let expired = h.create_endpoint(rotated(TimeDelta::seconds(-1))).await;
    h.message(&app).await;

    h.dispatcher(config()).run_until_idle().await.unwrap();

    let requests = receiver.wait_for(2).await;
    let to = |endpoint: &herald_core::model::Endpoint| {
        let current = &endpoint.secrets[0].key;
        requests.iter().find(|r| verify_with_libraries(current, r).is_ok()).expect("a request signed for it").clone()
    };
    let graced = to(&in_grace);
    assert_eq!(graced.header("webhook-signature").unwrap().split(' ').count(), 2);
    verify_with_libraries(&old.key, &graced).expect("the old secret still verifies during the grace period");
    let after = to(&expired);
    assert_eq!(after.header("webhook-signature").unwrap().split(' ').count(), 1);
    assert!(verify_with_libraries(&old.key, &after).is_err(), "an expired secret must not sign");
    h.assert_drained().await;
}

#[backends]
async fn an_ed25519_key_signs_v1a_over_the_standard_content(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    let key = Ed25519SecretKey::generate();
    let mut endpoint = h.endpoint_at(&app, &receiver.url("/hook"));
    endpoint.secrets = vec![EndpointSecret { key: key.expose_encoded(), expires_at: None }];
    h.create_endpoint(endpoint).await;
    h.message(&app).await;

    h.dispatcher(config()).run_until_idle().await.unwrap();

    let request = receiver.wait_for(1).await.remove(0);
    let entry = request.header("webhook-signature").unwrap();
    let encoded = entry.strip_prefix("v1a,").expect("a v1a entry");
    let signature = Signature::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap();
    let public = STANDARD.decode(key.public_key().to_encoded().trim_start_matches("whpk_")).unwrap();
    let public = VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
    let signed = format!(
        "{}.{}.{}",
        request.header("webhook-id").unwrap(),
        request.header("webhook-timestamp").unwrap(),
        std::str::from_utf8(&request.body).unwrap()
    );
    public.verify(signed.as_bytes(), &signature).expect("a valid ed25519 signature");
    h.assert_drained().await;
}

#[backends]
async fn an_expunged_payload_fails_the_delivery_without_sending(backend: Backend) {
    let h = Harness::new(backend, TestClock::frozen()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/hook")).await;
    let msg = h.message_with(&app, "user.created", None).await;

    h.dispatcher(config()).run_until_idle().await.unwrap();

    assert_eq!(receiver.received(), 0);
    let attempts = h.attempts(&msg).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].status, attempts[0].response_status_code), (DeliveryStatus::Fail, 0));
    assert!(attempts[0].response.contains("payload"), "{}", attempts[0].response);
    assert_eq!(h.delivery(&msg).await.status, DeliveryStatus::Fail);
    h.assert_drained().await;
}

#[backends]
async fn many_messages_are_all_delivered_once(backend: Backend) {
    let h = Harness::new(backend, TestClock::running()).await;
    let receiver = Receiver::start().await;
    let app = h.app().await;
    h.endpoint(&app, &receiver.url("/a")).await;
    h.endpoint(&app, &receiver.url("/b")).await;
    let (handle, shutdown) = h.spawn(config());
    let mut ids = Vec::new();
    for _ in 0..150 {
        ids.push(h.message(&app).await.id.to_string());
    }

    let requests = receiver.wait_for(300).await;
    for path in ["/a", "/b"] {
        let mut got: Vec<&str> =
            requests.iter().filter(|r| r.path == path).filter_map(|r| r.header("webhook-id")).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(got, want, "every message exactly once to {path}");
    }
    shutdown.cancel();
    handle.stopped().await.unwrap();
    h.assert_drained().await;
}
