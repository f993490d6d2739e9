//! The events API and pollers over HTTP: commit order with an opaque iterator, filters,
//! continuing after the end, racing writers, sink filters, server-side consumers and
//! seek, and bad input answered in the Svix error shapes.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use herald_testkit::{Backend, DEADLINE, backends, poll_until};

use crate::harness::{TestApp, assert_error, assert_invalid, spawn};

async fn send(app: &TestApp, app_id: &str, event_type: &str, channels: Option<&[&str]>) -> String {
    let mut body = json!({"eventType": event_type, "payload": {"n": event_type}});
    if let Some(channels) = channels {
        body["channels"] = json!(channels);
    }
    let (status, out) = app.post(&format!("/api/v1/app/{app_id}/msg"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    out["id"].as_str().unwrap().to_owned()
}

fn ids(body: &Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

/// Reads `path` from `iterator` until `done`, in pages of `limit`: the ids and the last iterator.
async fn read_to_end(app: &TestApp, path: &str, mut iterator: Option<String>, limit: usize) -> (Vec<String>, String) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut seen = Vec::new();
    loop {
        let it = iterator.as_ref().map(|i| format!("&iterator={i}")).unwrap_or_default();
        let (status, body) = app.get(&format!("{path}{sep}limit={limit}{it}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["data"].as_array().unwrap().len() <= limit);
        seen.extend(ids(&body));
        iterator = Some(body["iterator"].as_str().expect("an iterator on every page").to_owned());
        if body["done"].as_bool().unwrap() {
            return (seen, iterator.unwrap());
        }
    }
}

#[backends]
async fn events_page_in_commit_order_and_continue_after_the_end(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(Some("reader")).await;
    let mut sent = Vec::new();
    for (event_type, channels) in
        [("a.one", Some(&["eu"][..])), ("b.two", None), ("a.one", Some(&["us"][..])), ("c.three", Some(&["eu"][..]))]
    {
        sent.push(send(&app, &app_id, event_type, channels).await);
    }
    let (seen, iterator) = read_to_end(&app, "/api/v1/app/reader/events", None, 3).await;
    assert_eq!(seen, sent);

    // Continuing from the last iterator returns only what was created since.
    let (empty, same) = read_to_end(&app, "/api/v1/app/reader/events", Some(iterator.clone()), 3).await;
    assert!(empty.is_empty());
    assert_eq!(same, iterator, "an empty page keeps the position");
    let newer = vec![send(&app, &app_id, "b.two", None).await, send(&app, &app_id, "a.one", None).await];
    assert_eq!(read_to_end(&app, "/api/v1/app/reader/events", Some(iterator), 1).await.0, newer);

    let filtered = |query: &str| {
        let (app, path) = (app.clone(), format!("/api/v1/app/reader/events?{query}"));
        async move { read_to_end(&app, &path, None, 250).await }
    };
    assert_eq!(
        filtered("event_types=a.one,c.three").await.0,
        [sent[0].clone(), sent[2].clone(), sent[3].clone(), newer[1].clone()]
    );
    assert_eq!(filtered("event_types=a.one&event_types=b.two&channels=eu").await.0, [sent[0].clone()]);
    assert_eq!(filtered("channels=eu&channels=us").await.0, [sent[0].clone(), sent[2].clone(), sent[3].clone()]);
    assert!(filtered("after=2999-01-01T00:00:00Z").await.0.is_empty());
    let (status, body) = app.get("/api/v1/app/reader/events?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    let first = &body["data"][0];
    assert_eq!((first["eventType"].as_str(), first["payload"].clone()), (Some("a.one"), json!({"n": "a.one"})));
    assert_eq!(first["channels"], json!(["eu"]));
}

#[backends]
async fn a_reader_racing_concurrent_writers_sees_every_message_once(backend: Backend) {
    const WRITERS: usize = 6;
    const EACH: usize = 20;
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let writers = {
        let app_id = app_id.clone();
        let app = app.clone();
        tokio::spawn(async move {
            app.concurrently(WRITERS, move |app, w| {
                let app_id = app_id.clone();
                async move {
                    let mut ids = Vec::new();
                    for i in 0..EACH {
                        ids.push(send(&app, &app_id, &format!("w{w}.m{i}"), None).await);
                    }
                    ids
                }
            })
            .await
        })
    };
    let (mut seen, mut unique, mut iterator) = (Vec::new(), HashSet::new(), None::<String>);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while seen.len() < WRITERS * EACH {
        assert!(tokio::time::Instant::now() < deadline, "the reader saw only {} messages", seen.len());
        let it = iterator.as_ref().map(|i| format!("&iterator={i}")).unwrap_or_default();
        let (status, body) = app.get(&format!("/api/v1/app/{app_id}/events?limit=7{it}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for id in ids(&body) {
            assert!(unique.insert(id.clone()), "{id} seen twice");
            seen.push(id);
        }
        iterator = Some(body["iterator"].as_str().unwrap().to_owned());
    }
    let written: HashSet<String> = writers.await.unwrap().into_iter().flatten().collect();
    assert_eq!(unique, written);
}

#[backends]
async fn pollers_apply_the_sink_filters_and_consumers_progress_independently(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(Some("polled")).await;
    for name in ["a.one", "b.two"] {
        app.post("/api/v1/event-type", json!({"name": name, "description": "d"})).await;
    }
    let (status, sink) = app
        .post(
            &format!("/api/v1/app/{app_id}/endpoint"),
            json!({"url": "https://sink.example.com", "uid": "sink", "eventTypes": ["a.one", "b.two"], "channels": ["eu", "us"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sink}");
    let m1 = send(&app, &app_id, "a.one", Some(&["eu"])).await;
    send(&app, &app_id, "a.one", None).await; // no channel: the sink wants channels
    send(&app, &app_id, "c.three", Some(&["eu"])).await; // another type
    let m4 = send(&app, &app_id, "b.two", Some(&["us", "ap"])).await;
    let m5 = send(&app, &app_id, "a.one", Some(&["us"])).await;

    let poller = "/api/v1/app/polled/poller/sink";
    assert_eq!(read_to_end(&app, poller, None, 2).await.0, [m1.clone(), m4.clone(), m5.clone()]);
    assert_eq!(read_to_end(&app, &format!("{poller}?event_type=a.one"), None, 2).await.0, [m1.clone(), m5.clone()]);
    assert!(read_to_end(&app, &format!("{poller}?event_type=c.three"), None, 2).await.0.is_empty());
    assert_eq!(read_to_end(&app, &format!("{poller}?channel=us"), None, 2).await.0, [m4.clone(), m5.clone()]);
    let (_, body) = app.get(&format!("{poller}?limit=1")).await;
    assert_eq!(body["data"][0]["eventType"], "a.one");
    assert!(body["data"][0].get("headers").is_none());

    // Two consumers, each with its position kept by the server.
    let consumer = |name: &str, limit: usize| {
        let path = format!("{poller}/consumer/{name}?limit={limit}");
        let app = app.clone();
        async move {
            let (status, body) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            ids(&body)
        }
    };
    assert_eq!(consumer("one", 1).await, [m1.as_str()]);
    assert_eq!(consumer("two", 2).await, [m1.clone(), m4.clone()]);
    assert_eq!(consumer("one", 1).await, [m4.as_str()]);
    assert_eq!(consumer("one", 5).await, [m5.as_str()]);
    assert_eq!(consumer("two", 5).await, [m5.as_str()]);
    assert!(consumer("one", 5).await.is_empty());
    // A message just created can be held back for a moment on PostgreSQL (an older
    // transaction of another client may still be open); an empty read moves nothing.
    let next = |name: &'static str| {
        let consumer = &consumer;
        poll_until(DEADLINE, move || async move {
            let ids = consumer(name, 10).await;
            (!ids.is_empty()).then_some(ids)
        })
    };
    let m6 = send(&app, &app_id, "b.two", Some(&["eu"])).await;
    assert_eq!(next("one").await, [m6.as_str()]);

    // Seek: back to before everything, then past everything.
    let (status, sought) =
        app.post(&format!("{poller}/consumer/one/seek"), json!({"after": "2000-01-01T00:00:00Z"})).await;
    assert_eq!(status, StatusCode::OK, "{sought}");
    assert!(sought["iterator"].is_string());
    assert_eq!(consumer("one", 10).await, [m1.clone(), m4.clone(), m5.clone(), m6.clone()]);
    let (status, _) = app.post(&format!("{poller}/consumer/two/seek"), json!({"after": "2999-01-01T00:00:00Z"})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(consumer("two", 10).await.is_empty());
    let m7 = send(&app, &app_id, "a.one", Some(&["eu"])).await;
    assert_eq!(next("two").await, [m7.as_str()]);
    // An explicit iterator re-reads from there.
    let (_, body) = app.get(&format!("{poller}/consumer/one?iterator={}", sought["iterator"].as_str().unwrap())).await;
    assert_eq!(ids(&body), [m1.clone(), m4.clone(), m5.clone(), m6.clone(), m7.clone()]);
}

#[backends]
async fn bad_pull_requests_get_svix_errors_and_change_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(Some("strict")).await;
    app.post(&format!("/api/v1/app/{app_id}/endpoint"), json!({"url": "https://s.example.com", "uid": "sink"})).await;
    send(&app, &app_id, "a.one", None).await;
    let events = "/api/v1/app/strict/events";
    for iterator in ["garbage", "AAAAAAAAAAAAAAAAAAAAAAAA", "-1", "%00%ff", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"] {
        let (status, body) = app.get(&format!("{events}?iterator={iterator}")).await;
        assert_invalid(status, &body, &["query", "iterator"]);
    }
    for (query, loc) in [
        ("limit=0", "limit"),
        ("limit=251", "limit"),
        ("event_types=bad%20type", "event_types"),
        ("channels=no%20spaces", "channels"),
        ("after=yesterday", "after"),
    ] {
        let (status, body) = app.get(&format!("{events}?{query}")).await;
        assert_invalid(status, &body, &["query", loc]);
    }
    let (status, body) = app.get("/api/v1/app/nope/events").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.get("/api/v1/app/strict/poller/missing").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.get("/api/v1/app/strict/poller/sink/consumer/bad%20name").await;
    assert_invalid(status, &body, &["path", "consumer_id"]);
    let (status, body) = app.get("/api/v1/app/strict/poller/sink?event_type=bad%20type").await;
    assert_invalid(status, &body, &["query", "event_type"]);
    let seek = "/api/v1/app/strict/poller/sink/consumer/c/seek";
    let (status, body) = app.post(seek, json!({"after": "not a time"})).await;
    assert_invalid(status, &body, &["body", "after"]);
    let (status, body) = app.post(seek, json!({})).await;
    assert_invalid(status, &body, &["body", "after"]);
    // Nothing above saved a position: the consumer still starts at the beginning.
    let (status, body) = app.get("/api/v1/app/strict/poller/sink/consumer/c").await;
    assert_eq!((status, ids(&body).len()), (StatusCode::OK, 1), "{body}");

    // A token scoped to another application learns nothing.
    let other = app.app(None).await;
    let scoped = app.scoped_token(&other).await;
    for path in [events, "/api/v1/app/strict/poller/sink", "/api/v1/app/strict/poller/sink/consumer/c"] {
        let (status, body) = app.send(app.client.get(format!("{}{path}", app.base)).bearer_auth(&scoped)).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_access");
    }
    let (status, body) = app.send(app.client.get(format!("{}{events}", app.base))).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "authentication_failed");
}
