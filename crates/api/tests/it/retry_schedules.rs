//! Per-event-type retry schedules: set, read back, clear; 404 for an unknown event type,
//! 422 for schedules the core rules refuse, 403 for scoped tokens.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use herald_testkit::{Backend, backends};

use crate::harness::{TestApp, assert_error, assert_invalid, spawn};

const PATH: &str = "/api/v1/event-type/order.paid/retry-schedule";

async fn with_event_type(backend: Backend) -> TestApp {
    let app = spawn(backend).await;
    let (status, body) = app.post("/api/v1/event-type", json!({"name": "order.paid", "description": "d"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app
}

fn secs(list: &[u64]) -> Value {
    json!({"retrySchedule": list.iter().map(|s| json!({"secs": s, "nanos": 0})).collect::<Vec<_>>()})
}

#[backends]
async fn a_schedule_is_set_read_back_and_cleared(backend: Backend) {
    let app = with_event_type(backend).await;
    assert_eq!(app.get(PATH).await, (StatusCode::OK, json!({"retrySchedule": null})));

    let schedule = json!({"retrySchedule": [{"secs": 0, "nanos": 0}, {"secs": 0, "nanos": 10_000_000}, {"secs": 300, "nanos": 0}]});
    assert_eq!(app.put(PATH, schedule.clone()).await, (StatusCode::OK, schedule.clone()));
    assert_eq!(app.get(PATH).await, (StatusCode::OK, schedule));

    assert_eq!(app.put(PATH, json!({"retrySchedule": null})).await, (StatusCode::OK, json!({"retrySchedule": null})));
    assert_eq!(app.get(PATH).await, (StatusCode::OK, json!({"retrySchedule": null})));
    assert_eq!(app.put(PATH, json!({})).await.0, StatusCode::OK);
}

#[backends]
async fn an_unknown_event_type_is_404(backend: Backend) {
    let app = spawn(backend).await;
    let missing = "/api/v1/event-type/nope/retry-schedule";
    let (status, body) = app.get(missing).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.put(missing, secs(&[0, 5])).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[backends]
async fn bad_schedules_are_422_naming_the_field(backend: Backend) {
    let app = with_event_type(backend).await;
    let week = 7 * 24 * 3600;
    let cases: [(Value, &[&str]); 6] = [
        (secs(&[]), &["body", "retrySchedule"]),
        (secs(&[1; 51]), &["body", "retrySchedule"]),
        (secs(&[0, week + 1]), &["body", "retrySchedule", "1"]),
        (json!({"retrySchedule": [{"secs": -1, "nanos": 0}]}), &["body", "retrySchedule", "0", "secs"]),
        (json!({"retrySchedule": [{"secs": 1, "nanos": 1}]}), &["body", "retrySchedule", "0", "nanos"]),
        (json!({"retrySchedule": [{"secs": 1}]}), &["body", "retrySchedule", "0", "nanos"]),
    ];
    for (body, loc) in cases {
        let (status, answer) = app.put(PATH, body).await;
        assert_invalid(status, &answer, loc);
    }
    // The last good value is untouched by the refused ones.
    assert_eq!(app.get(PATH).await, (StatusCode::OK, json!({"retrySchedule": null})));
    let (status, body) = app.put(PATH, secs(&[week])).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = app.put("/api/v1/event-type/bad%20name/retry-schedule", secs(&[0])).await;
    assert_invalid(status, &body, &["path", "event_type_name"]);
}

#[backends]
async fn scoped_tokens_are_refused(backend: Backend) {
    let app = with_event_type(backend).await;
    let app_id = app.app(None).await;
    let token = app.scoped_token(&app_id).await;
    let request = app.client.request(Method::GET, format!("{}{PATH}", app.base)).bearer_auth(&token);
    let (status, body) = app.send(request).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_access");
}
