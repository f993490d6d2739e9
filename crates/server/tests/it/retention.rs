//! The retention sweeper `run` starts on a worker node: with the clock moved past a
//! message's retention the payload is dropped, and past the attempt retention the
//! attempt log entry is deleted, while newer data stays.

use std::time::Duration;

use herald_core::{AppId, MessageId};
use herald_testkit::{Backend, DEADLINE, Receiver, TestApp, TestClock, backends, wait_until};
use serde_json::{Value, json};

#[backends]
async fn expired_payloads_and_old_attempts_are_swept(backend: Backend) {
    let receiver = Receiver::start().await;
    let clock = TestClock::running();
    let app = TestApp::builder()
        .backend(backend)
        .allow_loopback()
        .clock(clock.clock())
        .config(|c| {
            c.retention.interval = Duration::from_millis(20);
            c.retention.attempt_retention_days = 1;
        })
        .spawn()
        .await;
    let post = |path: String, body: Value| {
        let request = app.http.post(app.url(&path)).json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{path}: {}", response.status());
            response.json::<Value>().await.unwrap()
        }
    };
    let app_id = post("/api/v1/app".into(), json!({"name": "shop"})).await["id"].as_str().unwrap().to_owned();
    post(format!("/api/v1/app/{app_id}/endpoint"), json!({"url": receiver.url("/hook")})).await;
    let body = json!({"eventType": "order.paid", "payload": {"id": 1}, "payloadRetentionHours": 1});
    let msg = post(format!("/api/v1/app/{app_id}/msg"), body).await;
    let (app_id, msg_id) = (AppId::parse(&app_id).unwrap(), MessageId::parse(msg["id"].as_str().unwrap()).unwrap());
    let store = app.store.clone();
    let attempts = || async { store.list_message_attempts(&app_id, &msg_id).await.unwrap().len() };
    receiver.wait_for(1).await;
    wait_until(DEADLINE, || async { attempts().await == 1 }).await;
    let payload = || async { store.get_message(&app_id, msg_id.as_str()).await.unwrap().payload };
    assert!(payload().await.is_some(), "kept while within its retention");

    clock.set_offset(Duration::from_secs(2 * 3600));
    wait_until(DEADLINE, || async { payload().await.is_none() }).await;
    assert_eq!(attempts().await, 1, "the attempt is younger than a day");

    clock.set_offset(Duration::from_secs(2 * 24 * 3600));
    wait_until(DEADLINE, || async { attempts().await == 0 }).await;
    app.stop().await.unwrap();
}
