//! The dispatcher `run` starts: a message accepted over the API reaches a real
//! receiver, signed, and shutdown still returns.

use std::time::Duration;

use herald_testkit::{Backend, Receiver, TestApp, backends};
use serde_json::json;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[backends]
async fn an_accepted_message_is_delivered_signed_to_the_endpoint(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::builder().backend(backend).allow_loopback().spawn().await;
    let post = |path: String, body: serde_json::Value| {
        let request = app.http.post(app.url(&path)).json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{path}: {}", response.status());
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let created = post("/api/v1/app".into(), json!({"name": "shop"})).await;
    let app_id = created["id"].as_str().unwrap().to_owned();
    post(format!("/api/v1/app/{app_id}/endpoint"), json!({"url": receiver.url("/hook"), "secret": SECRET})).await;

    let msg = post(format!("/api/v1/app/{app_id}/msg"), json!({"eventType": "order.paid", "payload": {"id": 1}})).await;

    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("webhook-id"), msg["id"].as_str());
    svix::webhooks::Webhook::new(SECRET).unwrap().verify(&got[0].body, &got[0].headers).unwrap();
    tokio::time::timeout(Duration::from_secs(30), app.stop()).await.expect("stop returns").unwrap();
}
