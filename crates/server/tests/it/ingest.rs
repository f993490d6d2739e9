//! Receiving webhooks end to end: a provider posts to a source's ingest URL, Herald
//! verifies, deduplicates and stores the request, and the dispatcher forwards it to the
//! source's ingest endpoint (a real receiver on loopback), re-signed with Standard
//! Webhooks. Requests are signed here from each scheme's definition (HMACs computed
//! with the `hmac` crate, Standard Webhooks with the official `svix` crate), never
//! with Herald's own signing code.

use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use herald_server::config::{Config, RateLimit};
use herald_store::{Order, PageQuery};
use herald_testkit::{Backend, DEADLINE, Receiver, TestApp, TestClock, backends, poll_until, wait_until};
use hmac::{Hmac, Mac as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

/// The secret Herald signs forwarded requests with.
const ENDPOINT_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const STRIPE_SECRET: &str = "whsec_stripe_test_secret";

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Stripe-Signature` for `body` at `t`, as Stripe defines it.
fn stripe_signature(secret: &str, t: i64, body: &str) -> String {
    format!("t={t},v1={}", hex(&hmac(secret.as_bytes(), format!("{t}.{body}").as_bytes())))
}

struct Setup {
    app: TestApp,
    receiver: Receiver,
}

impl Setup {
    async fn start(backend: Backend) -> Self {
        Self::with(TestApp::builder().backend(backend).allow_loopback()).await
    }

    async fn with(builder: herald_testkit::TestAppBuilder) -> Self {
        Self { app: builder.spawn().await, receiver: Receiver::start().await }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.app.http.request(method, self.app.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn call_get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, None).await
    }

    /// Creates a source of `kind` with an ingest endpoint on the receiver; returns the
    /// source id and its ingest URL.
    async fn source(&self, kind: &str, secret: Option<&str>) -> (String, String) {
        let mut body = json!({"name": format!("{kind} source"), "type": kind});
        if let Some(secret) = secret {
            body["config"] = json!({"secret": secret});
        }
        let (status, source) = self.call("POST", "/ingest/api/v1/source", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{source}");
        let id = source["id"].as_str().unwrap().to_owned();
        let endpoint = json!({"url": self.receiver.url("/internal"), "secret": ENDPOINT_SECRET});
        let (status, created) =
            self.call("POST", &format!("/ingest/api/v1/source/{id}/endpoint"), Some(endpoint)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        (id, source["ingestUrl"].as_str().unwrap().to_owned())
    }

    async fn receive(&self, url: &str, headers: &[(&str, &str)], body: &str) -> (StatusCode, Value) {
        let mut request = self.app.http.post(url).body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    /// The source's log, oldest first.
    async fn log(&self, source: &str) -> Vec<Value> {
        let (status, body) = self.call_get(&format!("/ingest/api/v1/source/{source}/log?order=ascending")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    /// How many messages the source's hidden application holds.
    async fn stored(&self, source: &str) -> usize {
        let source = self.app.store.get_source(source).await.unwrap();
        let page = PageQuery::first(250, Order::Ascending);
        self.app.store.list_messages(&source.app_id, &Default::default(), &page).await.unwrap().items.len()
    }

    async fn drained(&self) {
        let store = self.app.store.clone();
        wait_until(DEADLINE, || {
            let store = store.clone();
            async move { store.queue_depth().await.is_ok_and(|d| d.pending == 0 && d.sending == 0) }
        })
        .await;
    }
}

#[backends]
async fn a_stripe_event_is_stored_forwarded_byte_for_byte_and_its_retry_is_not(backend: Backend) {
    let setup = Setup::start(backend).await;
    let (source, url) = setup.source("stripe", Some(STRIPE_SECRET)).await;
    let body = "{\"id\": \"evt_1\",  \"object\":\"event\", \"data\": {\"amount\": 1.50, \"name\": \"Zo\u{eb}\"}}";
    let now = Utc::now().timestamp();
    let signature = stripe_signature(STRIPE_SECRET, now, body);
    let headers = [("Stripe-Signature", signature.as_str()), ("Content-Type", "application/json; charset=utf-8")];

    let (status, answer) = setup.receive(&url, &headers, body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let got = setup.receiver.wait_for(1).await;
    assert_eq!(got[0].body, body.as_bytes(), "the body is forwarded byte for byte");
    assert_eq!(got[0].header("content-type"), Some("application/json; charset=utf-8"));
    svix::webhooks::Webhook::new(ENDPOINT_SECRET).unwrap().verify(&got[0].body, &got[0].headers).unwrap();

    // Stripe retries the same event (a new signature, the same event id): 2xx, not forwarded.
    let retry = stripe_signature(STRIPE_SECRET, now + 1, body);
    let (status, _) = setup.receive(&url, &[("Stripe-Signature", retry.as_str())], body).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let other = r#"{"id":"evt_2","object":"event"}"#;
    let signature = stripe_signature(STRIPE_SECRET, now, other);
    assert_eq!(setup.receive(&url, &[("Stripe-Signature", signature.as_str())], other).await.0, StatusCode::NO_CONTENT);
    setup.drained().await;
    let got = setup.receiver.requests();
    let ids: Vec<Value> = got.iter().map(|r| r.json()["id"].clone()).collect();
    assert_eq!(got.len(), 2, "the retry was not forwarded: {ids:?}");
    assert!(ids.contains(&json!("evt_1")) && ids.contains(&json!("evt_2")), "{ids:?}");
    assert_eq!(setup.stored(&source).await, 2);
    // Each forward is an ordinary delivery, with its attempt in the log.
    let hidden = setup.app.store.get_source(&source).await.unwrap().app_id;
    let page = PageQuery::first(10, Order::Ascending);
    for message in setup.app.store.list_messages(&hidden, &Default::default(), &page).await.unwrap().items {
        let attempts = setup.app.store.list_message_attempts(&hidden, &message.id).await.unwrap();
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0].response_status_code, 200);
    }

    let log = setup.log(&source).await;
    let texts: Vec<&str> = log.iter().map(|e| e["error_text"].as_str().unwrap()).collect();
    assert_eq!(log.len(), 3, "{texts:?}");
    assert!(log.iter().all(|e| e["status_code"] == 204), "{log:?}");
    assert_eq!(texts.iter().filter(|t| t.starts_with("accepted as msg_")).count(), 2, "{texts:?}");
    assert_eq!(texts.iter().filter(|t| t.starts_with("duplicate")).count(), 1, "{texts:?}");
}

#[backends]
async fn bad_signatures_get_401_are_logged_and_forward_nothing(backend: Backend) {
    let setup = Setup::start(backend).await;
    let (source, url) = setup.source("stripe", Some(STRIPE_SECRET)).await;
    let body = r#"{"id":"evt_bad","object":"event"}"#;
    let now = Utc::now().timestamp();
    let good = stripe_signature(STRIPE_SECRET, now, body);
    let truncated = &good[..good.len() - 2];
    let wrong = stripe_signature("whsec_someone_else", now, body);
    let stale = stripe_signature(STRIPE_SECRET, now - 301, body);
    // Well past the 300 s tolerance: the server reads its clock later than `now`, on a slow machine by seconds.
    let early = stripe_signature(STRIPE_SECRET, now + 360, body);
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[], "missing"),
        (&[("Stripe-Signature", "")], "empty"),
        (&[("Stripe-Signature", "t=abc,v1=zz")], "malformed"),
        (&[("Stripe-Signature", truncated)], "truncated"),
        (&[("Stripe-Signature", wrong.as_str())], "wrong secret"),
        (&[("Stripe-Signature", stale.as_str())], "stale"),
        (&[("Stripe-Signature", early.as_str())], "from the future"),
    ];
    for (headers, case) in cases {
        let (status, answer) = setup.receive(&url, headers, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {answer}");
        assert_eq!(answer["code"], "authentication_failed", "{case}");
        assert!(answer["detail"].is_string(), "{case}");
    }
    let log = setup.log(&source).await;
    assert_eq!(log.len(), cases.len());
    assert!(log.iter().all(|e| e["status_code"] == 401 && e["error_text"].as_str().unwrap().starts_with("rejected")));
    let reasons: Vec<&str> = log.iter().map(|e| e["error_text"].as_str().unwrap()).collect();
    for expected in ["missing", "malformed", "no signature matched", "too old", "future"] {
        assert!(reasons.iter().any(|r| r.contains(expected)), "no {expected:?} in {reasons:?}");
    }
    assert_eq!(setup.stored(&source).await, 0, "nothing rejected is stored");

    // The genuine request still goes through afterwards, so the 401s were about the signatures.
    let (status, _) = setup.receive(&url, &[("Stripe-Signature", good.as_str())], body).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(setup.receiver.wait_for(1).await.len(), 1);
    setup.drained().await;
    assert_eq!(setup.receiver.requests().len(), 1);
}

#[backends]
async fn github_shopify_slack_and_standard_webhooks_sources_check_their_schemes(backend: Backend) {
    let setup = Setup::start(backend).await;
    let body = r#"{"event":"ping","n":1}"#;
    let now = Utc::now().timestamp();

    let (github, url) = setup.source("github", Some("gh-secret")).await;
    let signature = format!("sha256={}", hex(&hmac(b"gh-secret", body.as_bytes())));
    let delivery = ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    for _ in 0..2 {
        let (status, _) = setup.receive(&url, &[("X-Hub-Signature-256", &signature), delivery], body).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let forged = format!("sha256={}", hex(&hmac(b"not-it", body.as_bytes())));
    assert_eq!(setup.receive(&url, &[("X-Hub-Signature-256", &forged)], body).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(setup.stored(&github).await, 1, "a redelivery with the same X-GitHub-Delivery is stored once");

    let (shopify, url) = setup.source("shopify", Some("shpss_secret")).await;
    let signature = base64::engine::general_purpose::STANDARD.encode(hmac(b"shpss_secret", body.as_bytes()));
    let id = ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    assert_eq!(setup.receive(&url, &[("X-Shopify-Hmac-Sha256", &signature), id], body).await.0, StatusCode::NO_CONTENT);
    assert_eq!(setup.receive(&url, &[("X-Shopify-Hmac-Sha256", "AAAA"), id], body).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(setup.stored(&shopify).await, 1);

    let (slack, url) = setup.source("slack", Some("8f742231b10e8888abcd99yyyzzz85a5")).await;
    let form = "token=x&team_id=T1&text=hello%20world";
    let ts = now.to_string();
    let base = format!("v0:{ts}:{form}");
    let signature = format!("v0={}", hex(&hmac(b"8f742231b10e8888abcd99yyyzzz85a5", base.as_bytes())));
    let headers = [
        ("X-Slack-Signature", signature.as_str()),
        ("X-Slack-Request-Timestamp", ts.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    assert_eq!(setup.receive(&url, &headers, form).await.0, StatusCode::NO_CONTENT);
    let old = (now - 600).to_string();
    let stale =
        format!("v0={}", hex(&hmac(b"8f742231b10e8888abcd99yyyzzz85a5", format!("v0:{old}:{form}").as_bytes())));
    let old_headers = [("X-Slack-Signature", stale.as_str()), ("X-Slack-Request-Timestamp", old.as_str())];
    assert_eq!(setup.receive(&url, &old_headers, form).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(setup.stored(&slack).await, 1);

    let svix_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (standard, url) = setup.source("svix", Some(svix_secret)).await;
    let signature =
        svix::webhooks::Webhook::new(svix_secret).unwrap().sign("msg_p5jXN8AQM9LWM0D4loKWxJek", now, body.as_bytes());
    let signature = signature.unwrap();
    let ts = now.to_string();
    let headers = [("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"), ("webhook-timestamp", ts.as_str())];
    let signed = [headers[0], headers[1], ("webhook-signature", signature.as_str())];
    assert_eq!(setup.receive(&url, &signed, body).await.0, StatusCode::NO_CONTENT);
    assert_eq!(setup.receive(&url, &signed, body).await.0, StatusCode::NO_CONTENT, "a retry is acknowledged");
    let short = &signature[..signature.len() - 4];
    let truncated = [headers[0], headers[1], ("webhook-signature", short)];
    assert_eq!(setup.receive(&url, &truncated, body).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(setup.stored(&standard).await, 1);

    let got = setup.receiver.wait_for(4).await;
    let form_forward = got.iter().find(|r| r.body == form.as_bytes()).expect("the Slack form was forwarded");
    assert_eq!(form_forward.header("content-type"), Some("application/x-www-form-urlencoded"));
    for request in &got {
        svix::webhooks::Webhook::new(ENDPOINT_SECRET).unwrap().verify(&request.body, &request.headers).unwrap();
    }
    setup.drained().await;
    assert_eq!(setup.receiver.requests().len(), 4);
}

#[backends]
async fn a_generic_source_forwards_without_verifying_and_limits_still_apply(backend: Backend) {
    let setup =
        Setup::with(TestApp::builder().backend(backend).allow_loopback().config(|c| c.api.max_body_bytes = 2048)).await;
    let (source, url) = setup.source("generic-webhook", None).await;
    let (status, _) = setup.receive(&url, &[("Content-Type", "text/plain")], "plain text, no signature").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = setup.receiver.wait_for(1).await;
    assert_eq!(got[0].body, "plain text, no signature".as_bytes());
    assert_eq!(got[0].header("content-type"), Some("text/plain"));

    let (status, answer) = setup.receive(&url, &[], &"x".repeat(4096)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["code"], "payload_too_large");
    let binary = setup.app.http.post(&url).body(vec![0xff_u8, 0xfe, 0x00, 0x80]).send().await.unwrap();
    assert_eq!(binary.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "bodies are kept as text");
    let (status, answer) = setup.receive(&setup.app.url("/ingest/not-a-token"), &[], "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["code"], "not_found");
    setup.drained().await;
    assert_eq!(setup.stored(&source).await, 1);
    assert_eq!(setup.receiver.requests().len(), 1);
    let statuses: Vec<Value> = setup.log(&source).await.iter().map(|e| e["status_code"].clone()).collect();
    assert!(statuses.contains(&json!(204)) && statuses.contains(&json!(415)), "{statuses:?}");
}

#[backends]
async fn a_rotated_token_gives_a_new_url_and_the_old_one_keeps_working(backend: Backend) {
    let setup = Setup::start(backend).await;
    let (source, old_url) = setup.source("generic-webhook", None).await;
    let (status, rotated) = setup.call("POST", &format!("/ingest/api/v1/source/{source}/token/rotate"), None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_url = rotated["ingestUrl"].as_str().unwrap();
    assert_ne!(new_url, old_url);
    assert!(new_url.starts_with(&setup.app.base_url), "{new_url}");
    assert_eq!(setup.receive(new_url, &[], "{}").await.0, StatusCode::NO_CONTENT);
    assert_eq!(setup.receive(&old_url, &[], "{}").await.0, StatusCode::NO_CONTENT, "within the grace period");
    let (_, got) = setup.call_get(&format!("/ingest/api/v1/source/{source}")).await;
    assert_eq!(got["ingestUrl"], Value::Null, "the token is stored hashed and shown only when made");
    let log = poll_until(DEADLINE, || async {
        let log = setup.log(&source).await;
        (log.len() == 2).then_some(log)
    })
    .await;
    assert!(log.iter().all(|e| e["status_code"] == 204));
    setup.drained().await;

    // Both URLs were just used (and cached); deleting the source closes them at once.
    let (status, _) = setup.call("DELETE", &format!("/ingest/api/v1/source/{source}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for url in [new_url, old_url.as_str()] {
        let (status, answer) = setup.receive(url, &[], "{}").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    }
}

#[backends]
async fn a_retry_after_the_dedupe_window_is_stored_again(backend: Backend) {
    let clock = TestClock::running();
    let setup = Setup::with(
        TestApp::builder()
            .backend(backend)
            .allow_loopback()
            .clock(clock.clock())
            .config(|c| c.api.ingest_dedup_window = Duration::from_secs(3600)),
    )
    .await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (source, url) = setup.source("svix", Some(secret)).await;
    let body = r#"{"type":"user.created"}"#;
    // Signed at Herald's (moved) clock, so only the dedupe window decides.
    let send = |at: i64| {
        let signature = svix::webhooks::Webhook::new(secret).unwrap().sign("msg_same", at, body.as_bytes()).unwrap();
        let ts = at.to_string();
        let setup = &setup;
        let url = url.clone();
        async move {
            let headers =
                [("webhook-id", "msg_same"), ("webhook-timestamp", ts.as_str()), ("webhook-signature", &signature)];
            setup.receive(&url, &headers, body).await.0
        }
    };
    let now = Utc::now().timestamp();
    assert_eq!(send(now).await, StatusCode::NO_CONTENT);
    // Forwarded and recorded before the clock jumps, so no lease expires mid-send.
    setup.receiver.wait_for(1).await;
    setup.drained().await;
    clock.set_offset(Duration::from_secs(1800));
    assert_eq!(send(now + 1800).await, StatusCode::NO_CONTENT);
    assert_eq!(setup.stored(&source).await, 1, "a retry within the window is not stored");
    clock.set_offset(Duration::from_secs(7200));
    assert_eq!(send(now + 7200).await, StatusCode::NO_CONTENT);
    assert_eq!(setup.stored(&source).await, 2, "past the window the same id is a new event");
    setup.receiver.wait_for(2).await;
    setup.drained().await;
    let forwarded: std::collections::BTreeSet<String> =
        setup.receiver.requests().iter().filter_map(|r| r.header("webhook-id").map(str::to_owned)).collect();
    assert_eq!(forwarded.len(), 2, "two distinct messages were forwarded");
}

#[backends]
async fn after_a_secret_change_the_old_secret_is_still_accepted(backend: Backend) {
    let setup = Setup::start(backend).await;
    let (source, url) = setup.source("stripe", Some(STRIPE_SECRET)).await;
    let change = json!({"name": "stripe source", "type": "stripe", "config": {"secret": "whsec_rolled"}});
    let (status, body) = setup.call("PUT", &format!("/ingest/api/v1/source/{source}"), Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = Utc::now().timestamp();
    for (n, secret) in [STRIPE_SECRET, "whsec_rolled"].into_iter().enumerate() {
        let body = format!(r#"{{"id":"evt_roll_{n}"}}"#);
        let signature = stripe_signature(secret, now, &body);
        let (status, _) = setup.receive(&url, &[("Stripe-Signature", signature.as_str())], &body).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "signed with {secret}");
    }
    let stranger = stripe_signature("whsec_stranger", now, "{}");
    assert_eq!(setup.receive(&url, &[("Stripe-Signature", stranger.as_str())], "{}").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(setup.receiver.wait_for(2).await.len(), 2);
    setup.drained().await;
}

/// A setup whose clock stands still until the test moves it, so the per-second log
/// allowance and the rate limit's refill depend only on the test.
async fn frozen(backend: Backend, change: impl FnOnce(&mut Config)) -> (Setup, TestClock) {
    let clock = TestClock::frozen();
    let builder = TestApp::builder().backend(backend).allow_loopback().clock(clock.clock()).config(change);
    (Setup::with(builder).await, clock)
}

#[backends]
async fn a_flood_of_bad_signatures_logs_a_few_entries_and_counts_the_rest(backend: Backend) {
    let (setup, offset) = frozen(backend, |_| {}).await;
    let (source, url) = setup.source("stripe", Some(STRIPE_SECRET)).await;
    let body = r#"{"id":"evt_flood","object":"event"}"#;
    let forged = stripe_signature("whsec_not_the_secret", offset.now().timestamp(), body);
    for _ in 0..40 {
        let (status, answer) = setup.receive(&url, &[("Stripe-Signature", &forged)], body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    }
    let log = setup.log(&source).await;
    assert_eq!(log.len(), 10, "ten entries per second are written: {log:?}");
    assert!(
        log.iter().all(|e| e["status_code"] == 401 && !e["error_text"].as_str().unwrap().contains("previous entry"))
    );

    // The next second's first entry carries the count of those not written.
    offset.set_offset(Duration::from_secs(1));
    assert_eq!(setup.receive(&url, &[("Stripe-Signature", &forged)], body).await.0, StatusCode::UNAUTHORIZED);
    let log = setup.log(&source).await;
    assert_eq!(log.len(), 11);
    let text = log[10]["error_text"].as_str().unwrap();
    assert!(text.starts_with("rejected: "), "{text}");
    assert!(text.ends_with(" (and since the previous entry: 30 more not stored)"), "{text}");

    // Accepted requests are always logged; the count was reported once and is not repeated.
    offset.set_offset(Duration::from_secs(2));
    let signature = stripe_signature(STRIPE_SECRET, offset.now().timestamp(), body);
    assert_eq!(setup.receive(&url, &[("Stripe-Signature", &signature)], body).await.0, StatusCode::NO_CONTENT);
    let log = setup.log(&source).await;
    assert_eq!(log.len(), 12);
    let text = log[11]["error_text"].as_str().unwrap();
    assert!(text.starts_with("accepted as msg_") && !text.contains("previous entry"), "{text}");
}

#[backends]
async fn over_its_rate_limit_a_source_gets_429_and_others_are_unaffected(backend: Backend) {
    let (setup, offset) = frozen(backend, |c| {
        c.api.ingest_rate_limit = Some(RateLimit { per_second: 1.0, burst: 2 });
    })
    .await;
    let (limited, url) = setup.source("stripe", Some(STRIPE_SECRET)).await;
    let (other, other_url) = setup.source("stripe", Some(STRIPE_SECRET)).await;
    let send = |url: String, event: &'static str| {
        let (setup, clock) = (&setup, &offset);
        async move {
            let body = format!(r#"{{"id":"{event}","object":"event"}}"#);
            let signature = stripe_signature(STRIPE_SECRET, clock.now().timestamp(), &body);
            let mut request = setup.app.http.post(url).body(body);
            request = request.header("Stripe-Signature", signature);
            request.send().await.unwrap()
        }
    };
    assert_eq!(send(url.clone(), "evt_1").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(send(url.clone(), "evt_2").await.status(), StatusCode::NO_CONTENT);
    for event in ["evt_3", "evt_4", "evt_5"] {
        let refused = send(url.clone(), event).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "1");
        let answer: Value = refused.json().await.unwrap();
        assert_eq!(answer["code"], "rate_limited", "{answer}");
        assert!(answer["detail"].is_string(), "{answer}");
    }
    assert_eq!(send(other_url, "evt_1").await.status(), StatusCode::NO_CONTENT, "another source has its own bucket");
    let unknown = setup.app.url("/ingest/not-a-source-token");
    assert_eq!(send(unknown, "evt_1").await.status(), StatusCode::NOT_FOUND, "unknown tokens are still 404");
    assert_eq!(setup.stored(&limited).await, 2, "refused requests store nothing");
    assert_eq!(setup.log(&limited).await.len(), 2, "refusals get no entry of their own");

    // A second later the bucket holds one request again; its entry counts the refusals.
    offset.set_offset(Duration::from_secs(1));
    assert_eq!(send(url.clone(), "evt_3").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(setup.stored(&limited).await, 3);
    let log = setup.log(&limited).await;
    let text = log[2]["error_text"].as_str().unwrap();
    assert!(text.ends_with(" (and since the previous entry: 3 over the rate limit)"), "{text}");
    assert_eq!(setup.stored(&other).await, 1);
}

#[backends]
async fn the_retention_sweep_trims_a_source_log_to_its_cap(backend: Backend) {
    let (setup, offset) = frozen(backend, |c| {
        c.retention.ingest_log_max_per_source = 4;
        c.retention.batch_size = 3;
        c.retention.interval = Duration::from_millis(100);
    })
    .await;
    let (source, url) = setup.source("stripe", Some(STRIPE_SECRET)).await;
    let (other, other_url) = setup.source("stripe", Some(STRIPE_SECRET)).await;
    let body = r#"{"id":"evt_x","object":"event"}"#;
    let forged = stripe_signature("whsec_not_the_secret", offset.now().timestamp(), body);
    // One entry per second, each a distinct second, so every one of them is written.
    for second in 0..10 {
        offset.set_offset(Duration::from_secs(second));
        assert_eq!(setup.receive(&url, &[("Stripe-Signature", &forged)], body).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(setup.receive(&other_url, &[("Stripe-Signature", &forged)], body).await.0, StatusCode::UNAUTHORIZED);
    let store = setup.app.store.clone();
    let id = store.get_source(&source).await.unwrap().id;
    let page = PageQuery::first(50, Order::Ascending);
    let kept = poll_until(DEADLINE, || {
        let (store, id, page) = (store.clone(), id.clone(), page.clone());
        async move {
            let items = store.list_ingest_logs(&id, &page).await.ok()?.items;
            (items.len() <= 4).then_some(items)
        }
    })
    .await;
    assert_eq!(kept.len(), 4, "the cap is kept, not more");
    let newest: Vec<i64> = kept.iter().map(|e| e.created_at.timestamp() - kept[3].created_at.timestamp()).collect();
    assert_eq!(newest, [-3, -2, -1, 0], "the newest entries stay");
    assert_eq!(setup.log(&other).await.len(), 1, "a source under the cap keeps its log");
}
