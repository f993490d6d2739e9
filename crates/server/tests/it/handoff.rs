//! The in-memory hand-off: a node that accepts a message gives its due deliveries to
//! its own dispatcher, so they are sent without a table poll, and a full hand-off falls
//! back to the table without losing or repeating a message.

use std::{collections::HashSet, time::Duration};

use herald_core::{AppId, MessageId, model::DeliveryStatus};
use herald_testkit::{Backend, DEADLINE, Receiver, TestApp, backends, wait_until};
use serde_json::json;

/// An application with one endpoint at `receiver`; returns the application's id.
async fn app_with_endpoint(app: &TestApp, receiver: &Receiver) -> String {
    let created: serde_json::Value = app
        .http
        .post(app.url("/api/v1/app"))
        .json(&json!({"name": "shop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = created["id"].as_str().unwrap().to_owned();
    let endpoint = json!({"url": receiver.url("/hook")});
    let response = app.http.post(app.url(&format!("/api/v1/app/{app_id}/endpoint"))).json(&endpoint).send().await;
    assert!(response.unwrap().status().is_success());
    app_id
}

async fn post_message(http: reqwest::Client, url: String, n: usize) -> String {
    let body = json!({"eventType": "order.paid", "payload": {"n": n}});
    let response = http.post(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 202);
    response.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

#[backends]
async fn an_accepted_message_is_sent_without_waiting_for_a_poll(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::builder()
        .backend(backend)
        .allow_loopback()
        .config(|c| c.worker.poll_interval = Duration::from_secs(3600))
        .spawn()
        .await;
    let app_id = app_with_endpoint(&app, &receiver).await;

    let msg = post_message(app.http.clone(), app.url(&format!("/api/v1/app/{app_id}/msg")), 1).await;

    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-id"), Some(msg.as_str()));
    app.stop().await.unwrap();
}

#[backends]
async fn with_room_for_one_hand_off_every_message_is_delivered_once(backend: Backend) {
    const MESSAGES: usize = 40;
    let receiver = Receiver::start().await;
    // The hand-off holds one batch: one delivery, so most messages find it full.
    let app = TestApp::builder().backend(backend).allow_loopback().config(|c| c.worker.batch_size = 1).spawn().await;
    let app_id = app_with_endpoint(&app, &receiver).await;

    let mut posts = tokio::task::JoinSet::new();
    for n in 0..MESSAGES {
        posts.spawn(post_message(app.http.clone(), app.url(&format!("/api/v1/app/{app_id}/msg")), n));
    }
    let ids: Vec<String> = posts.join_all().await;

    let (store, app_key) = (app.store.clone(), AppId::parse(&app_id).unwrap());
    let msg_ids: Vec<MessageId> = ids.iter().map(|id| MessageId::parse(id).unwrap()).collect();
    wait_until(DEADLINE, || {
        let (store, app_key, msg_ids) = (store.clone(), app_key.clone(), msg_ids.clone());
        async move {
            for msg in &msg_ids {
                match store.list_deliveries(&app_key, msg).await {
                    Ok(d) if d.iter().all(|d| d.status == DeliveryStatus::Success) => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await;
    let got = receiver.requests();
    let delivered: HashSet<_> = got.iter().filter_map(|r| r.header("webhook-id").map(str::to_owned)).collect();
    assert_eq!(delivered, ids.into_iter().collect::<HashSet<_>>());
    assert_eq!(got.len(), MESSAGES, "each message is sent once");
    app.stop().await.unwrap();
}
