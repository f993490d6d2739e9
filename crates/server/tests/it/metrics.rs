//! `GET /metrics` end to end: a message accepted over the API and delivered by the
//! dispatcher `run` starts shows up in the one registry both share, and the output
//! is the Prometheus text format.

use herald_testkit::{Backend, DEADLINE, Receiver, TestApp, backends, poll_until};
use serde_json::{Value, json};

/// Checks one exposition line, `name{label="v",…} value`, and returns `(series, value)`.
fn parse_sample(line: &str) -> (&str, f64) {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line:?}"));
    let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line:?}"));
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, Some(rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed: {line:?}")))),
        None => (series, None),
    };
    let mut chars = name.chars();
    assert!(chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':'), "bad name: {line:?}");
    assert!(chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad name: {line:?}");
    for pair in labels.into_iter().flat_map(|l| l.split(',')) {
        let (key, quoted) = pair.split_once('=').unwrap_or_else(|| panic!("bad label: {line:?}"));
        assert!(!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line:?}");
        assert!(quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'), "{line:?}");
    }
    (series, value)
}

/// Scrapes without a token; every sample line must parse.
async fn scrape(app: &TestApp) -> Vec<(String, f64)> {
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_sample)
        .map(|(series, value)| (series.to_owned(), value))
        .collect()
}

fn value(samples: &[(String, f64)], series: &str) -> Option<f64> {
    samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

#[backends]
async fn metrics_count_accepted_messages_and_delivered_attempts(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::builder().backend(backend).allow_loopback().spawn().await;
    let before = scrape(&app).await;
    assert_eq!(value(&before, "herald_messages_accepted_total"), Some(0.0));
    assert_eq!(value(&before, "herald_queue_depth{state=\"pending\"}"), Some(0.0));

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
    post(format!("/api/v1/app/{app_id}/msg"), json!({"eventType": "order.paid", "payload": {"id": 1}})).await;
    receiver.wait_for(1).await;

    // The attempt is counted once it is recorded, just after the receiver answered.
    let after = poll_until(DEADLINE, || async {
        let samples = scrape(&app).await;
        (value(&samples, "herald_attempts_total{outcome=\"delivered\"}") == Some(1.0)).then_some(samples)
    })
    .await;
    assert_eq!(value(&after, "herald_messages_accepted_total"), Some(1.0));
    assert_eq!(value(&after, "herald_attempts_total{outcome=\"retry\"}"), Some(0.0));
    assert_eq!(value(&after, "herald_delivery_latency_seconds_count"), Some(1.0));
    assert_eq!(value(&after, "herald_queue_depth{state=\"pending\"}"), Some(0.0));
    assert_eq!(value(&after, "herald_queue_depth{state=\"sending\"}"), Some(0.0));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_worker_node_serves_metrics_too() {
    let app = TestApp::builder().config(|c| c.server.role = herald_server::Role::Worker).spawn().await;
    let samples = scrape(&app).await;
    assert_eq!(value(&samples, "herald_attempts_total{outcome=\"delivered\"}"), Some(0.0));
    assert_eq!(value(&samples, "herald_queue_depth{state=\"pending\"}"), Some(0.0));
    app.stop().await.unwrap();
}
