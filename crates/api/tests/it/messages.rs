//! Messages: create with exact payload bytes, fan-out to matching endpoints, eventId,
//! inline application, idempotency (replay and race), listing with filters and paging.

use herald_core::{AppId, MessageId};
use reqwest::{Method, StatusCode};
use serde_json::json;

use herald_testkit::{Backend, backends};

use crate::harness::{TestApp, assert_error, assert_invalid, spawn};

async fn endpoint(app: &TestApp, app_id: &str, body: serde_json::Value) -> String {
    let (status, ep) = app.post(&format!("/api/v1/app/{app_id}/endpoint"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");
    ep["id"].as_str().unwrap().to_owned()
}

#[backends]
async fn message_is_stored_byte_for_byte_with_one_delivery_per_matching_endpoint(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(Some("shop")).await;
    for name in ["order.paid", "order.refunded"] {
        app.post("/api/v1/event-type", json!({"name": name, "description": "d"})).await;
    }
    let all = endpoint(&app, &app_id, json!({"url": "https://a.com"})).await;
    let typed = endpoint(&app, &app_id, json!({"url": "https://b.com", "eventTypes": ["order.paid"]})).await;
    endpoint(&app, &app_id, json!({"url": "https://c.com", "eventTypes": ["order.refunded"]})).await;
    let channeled = endpoint(&app, &app_id, json!({"url": "https://d.com", "channels": ["eu"]})).await;
    endpoint(&app, &app_id, json!({"url": "https://e.com", "channels": ["us"]})).await;
    endpoint(&app, &app_id, json!({"url": "https://f.com", "disabled": true})).await;

    let raw = r#"{"eventType":"order.paid","channels":["eu"],"tags":["t1"],"payload":{ "b": 1.50,  "a": "\u00e9" }}"#;
    let response = app
        .request(Method::POST, "/api/v1/app/shop/msg")
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let text = response.text().await.unwrap();
    assert!(text.contains(r#""payload":{ "b": 1.50,  "a": "\u00e9" }"#), "{text}");
    let out: serde_json::Value = serde_json::from_str(&text).unwrap();
    let msg_id = out["id"].as_str().unwrap();
    assert!(msg_id.starts_with("msg_"));
    assert_eq!(out["eventType"], "order.paid");
    assert_eq!(out["channels"], json!(["eu"]));
    assert_eq!(out["tags"], json!(["t1"]));
    assert!(out["timestamp"].is_string());

    let app_key = AppId::parse(&app_id).unwrap();
    let stored = app.store.get_message(&app_key, msg_id).await.unwrap();
    assert_eq!(stored.payload.as_deref(), Some(r#"{ "b": 1.50,  "a": "\u00e9" }"#));
    let deliveries = app.store.list_deliveries(&app_key, &MessageId::parse(msg_id).unwrap()).await.unwrap();
    let mut got: Vec<String> = deliveries.iter().map(|d| d.endpoint_id.to_string()).collect();
    let mut want = vec![all, typed, channeled];
    got.sort();
    want.sort();
    assert_eq!(got, want);

    let (status, fetched) = app.get(&format!("/api/v1/app/shop/msg/{msg_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["payload"], json!({"b": 1.5, "a": "é"}));
    let (_, fetched) = app.get(&format!("/api/v1/app/shop/msg/{msg_id}?with_content=false")).await;
    assert_eq!(fetched["payload"], json!({}));
}

#[backends]
async fn event_id_is_unique_and_addressable(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let path = format!("/api/v1/app/{app_id}/msg");
    let body = json!({"eventType": "a", "eventId": "evt-1", "payload": {}});
    let (status, first) = app.post(&path, body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = app.post(&path, body).await;
    assert_error(status, &again, StatusCode::CONFLICT, "conflict");
    let (status, by_event_id) = app.get(&format!("{path}/evt-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_event_id["id"], first["id"]);
}

#[backends]
async fn inline_application_is_created_with_the_path_uid(backend: Backend) {
    let app = spawn(backend).await;
    let (status, body) = app.post("/api/v1/app/new-app/msg", json!({"eventType": "a", "payload": {}})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .post(
            "/api/v1/app/new-app/msg?with_content=false",
            json!({"eventType": "a", "payload": {"x": 1}, "application": {"name": "New"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["payload"], json!({}));
    let (status, created) = app.get("/api/v1/app/new-app").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(created["name"], "New");
    let (_, list) = app.get("/api/v1/app/new-app/msg").await;
    assert_eq!(list["data"][0]["payload"], json!({"x": 1}));
}

#[backends]
async fn raw_payload_replaces_the_payload_byte_for_byte(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let app_key = AppId::parse(&app_id).unwrap();
    let path = format!("/api/v1/app/{app_id}/msg");
    for (raw, shown) in [(r#"{ "a":   1.50 }"#, json!({"a": 1.5})), ("plain text, not JSON", json!({}))] {
        let body = json!({"eventType": "raw", "payload": {}, "transformationsParams": {"rawPayload": raw}});
        let (status, out) = app.post(&path, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{out}");
        assert_eq!(out["payload"], shown);
        let stored = app.store.get_message(&app_key, out["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(stored.payload.as_deref(), Some(raw));
    }
}

#[backends]
async fn bad_messages_are_422(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let path = format!("/api/v1/app/{app_id}/msg");
    let too_late = (chrono::Utc::now() + chrono::TimeDelta::hours(25)).to_rfc3339();
    let cases: [(serde_json::Value, &[&str]); 8] = [
        (json!({"eventType": "a", "payload": [1]}), &["body", "payload"]),
        (json!({"eventType": "bad type", "payload": {}}), &["body", "eventType"]),
        (json!({"eventType": "a"}), &["body", "payload"]),
        (json!({"eventType": "a", "payload": {}, "tags": ["1", "2", "3", "4", "5", "6"]}), &["body", "tags"]),
        (json!({"eventType": "a", "payload": {}, "payloadRetentionPeriod": 91}), &["body", "payloadRetentionPeriod"]),
        (json!({"eventType": "a", "payload": {}, "channels": []}), &["body", "channels"]),
        (json!({"eventType": "a", "payload": {}, "deliverAt": too_late}), &["body", "deliverAt"]),
        (
            json!({"eventType": "a", "payload": {}, "transformationsParams": {"rawPayload": {"not": "a string"}}}),
            &["body", "transformationsParams", "rawPayload"],
        ),
    ];
    for (body, loc) in cases {
        let (status, response) = app.post(&path, body).await;
        assert_invalid(status, &response, loc);
    }
    let (_, list) = app.get(&path).await;
    assert_eq!(list["data"], json!([]));
}

#[backends]
async fn idempotency_key_replays_and_races_create_one_message(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let path = format!("/api/v1/app/{app_id}/msg");
    let send = |app: TestApp, key: &'static str, path: String| async move {
        let response = app
            .request(Method::POST, &path)
            .header("idempotency-key", key)
            .json(&json!({"eventType": "a", "payload": {"n": 1}}))
            .send()
            .await
            .unwrap();
        let replayed = response.headers().contains_key("idempotent-replayed");
        (response.status(), replayed, response.json::<serde_json::Value>().await.unwrap())
    };
    let (s1, r1, b1) = send(app.clone(), "k1", path.clone()).await;
    let (s2, r2, b2) = send(app.clone(), "k1", path.clone()).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert!(!r1 && r2);
    assert_eq!(b1, b2);

    let results = app.concurrently(8, move |app, _| send(app, "race", path.clone())).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|(s, _, b)| {
            assert_eq!(*s, StatusCode::ACCEPTED);
            b["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    let (_, list) = app.get(&format!("/api/v1/app/{app_id}/msg")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

#[backends]
async fn generic_idempotency_covers_other_posts_and_races(backend: Backend) {
    let app = spawn(backend).await;
    let send = |app: TestApp, _| async move {
        app.send(app.request(Method::POST, "/api/v1/app").header("idempotency-key", "same").json(&json!({"name": "x"})))
            .await
    };
    let results = app.concurrently(6, send).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, StatusCode::CREATED, "{b}");
            b["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    let (_, list) = app.get("/api/v1/app").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // Another token's identical key is a different request.
    let other = app.scoped_token(ids.iter().next().unwrap()).await;
    let (status, _) = app
        .send(
            app.client
                .post(format!("{}/api/v1/app", app.base))
                .bearer_auth(other)
                .header("idempotency-key", "same")
                .json(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[backends]
async fn thousand_messages_page_by_seven_newest_first_with_filters(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let path = format!("/api/v1/app/{app_id}/msg");
    let mut ids = Vec::new();
    for chunk in 0..20 {
        let path = path.clone();
        ids.extend(
            app.concurrently(50, move |app, i| {
                let path = path.clone();
                async move {
                    let n = chunk * 50 + i;
                    let (event_type, channel) = if n % 10 == 0 { ("rare", "eu") } else { ("common", "us") };
                    let body = json!({"eventType": event_type, "channels": [channel], "tags": [format!("t{}", n % 2)], "payload": {"n": n}});
                    let (status, out) = app.post(&path, body).await;
                    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
                    out["id"].as_str().unwrap().to_owned()
                }
            })
            .await,
        );
    }
    ids.sort();
    ids.reverse();
    let (forwards, backwards) = app.walk(&path, 7, "&with_content=false").await;
    assert_eq!(forwards, ids);
    assert_eq!(backwards, ids);

    let (_, rare) = app.get(&format!("{path}?limit=250&event_types=rare,nothing")).await;
    assert_eq!(rare["data"].as_array().unwrap().len(), 100);
    let (_, rare) = app.get(&format!("{path}?limit=250&event_types=rare&event_types=common")).await;
    assert_eq!(rare["data"].as_array().unwrap().len(), 250);
    let (_, eu) = app.get(&format!("{path}?limit=250&channel=eu")).await;
    assert_eq!(eu["data"].as_array().unwrap().len(), 100);
    let (_, tagged) = app.get(&format!("{path}?limit=250&tag=t1&event_types=rare")).await;
    assert_eq!(tagged["data"].as_array().unwrap().len(), 0);
    let (_, none) = app.get(&format!("{path}?before=2000-01-01T00:00:00Z")).await;
    assert_eq!(none["data"], json!([]));
    let (status, body) = app.get(&format!("{path}?before=yesterday")).await;
    assert_invalid(status, &body, &["query", "before"]);
}
