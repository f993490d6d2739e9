//! A per-event-type retry schedule set over the API is the one the dispatcher follows:
//! with `0s,10ms` (two attempts in all) a delivery to an endpoint answering 500 fails
//! after exactly two attempts, where the global schedule would keep retrying for hours.

use herald_core::{AppId, MessageId, model::DeliveryStatus};
use herald_testkit::{Backend, DEADLINE, Receiver, Reply, TestApp, backends, poll_until};
use reqwest::Method;
use serde_json::{Value, json};

#[backends]
async fn a_type_schedule_set_over_the_api_bounds_the_attempts(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::status(500));
    let app = TestApp::builder().backend(backend).allow_loopback().spawn().await;
    let send = |method: Method, path: &str, body: Value| {
        let request = app.http.request(method, app.url(path)).json(&body);
        let path = path.to_owned();
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{path}: {}", response.status());
            response.json::<Value>().await.unwrap()
        }
    };
    send(Method::POST, "/api/v1/event-type", json!({"name": "order.paid", "description": "paid"})).await;
    let schedule = json!({"retrySchedule": [{"secs": 0, "nanos": 0}, {"secs": 0, "nanos": 10_000_000}]});
    send(Method::PUT, "/api/v1/event-type/order.paid/retry-schedule", schedule).await;
    let app_id = send(Method::POST, "/api/v1/app", json!({"name": "shop"})).await["id"].as_str().unwrap().to_owned();
    send(Method::POST, &format!("/api/v1/app/{app_id}/endpoint"), json!({"url": receiver.url("/hook")})).await;
    let msg =
        send(Method::POST, &format!("/api/v1/app/{app_id}/msg"), json!({"eventType": "order.paid", "payload": {}}))
            .await;

    let (app_id, msg_id) = (AppId::parse(&app_id).unwrap(), MessageId::parse(msg["id"].as_str().unwrap()).unwrap());
    let delivery = poll_until(DEADLINE, || async {
        let deliveries = app.store.list_deliveries(&app_id, &msg_id).await.unwrap();
        deliveries.into_iter().find(|d| d.status == DeliveryStatus::Fail)
    })
    .await;
    assert_eq!(delivery.attempts, 2);
    let attempts = app.store.list_message_attempts(&app_id, &msg_id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| a.status == DeliveryStatus::Fail && a.response_status_code == 500));
    assert_eq!(receiver.requests().len(), 2);
    app.stop().await.unwrap();
}
