//! Endpoints: CRUD, filters, secrets and rotation, headers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use herald_testkit::{Backend, backends};

use crate::harness::{TestApp, assert_error, assert_invalid, spawn, spawn_guarded};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

async fn event_type(app: &TestApp, name: &str) {
    let (status, body) = app.post("/api/v1/event-type", json!({"name": name, "description": "d"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[backends]
async fn endpoint_lifecycle_with_aliases_and_uid(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(Some("acme")).await;
    event_type(&app, "a").await;
    let (status, ep) = app
        .post(
            "/api/v1/app/acme/endpoint",
            json!({"url": "https://example.com/hook", "uid": "main", "filterTypes": ["a"], "rateLimit": 10,
                   "channels": ["c1"], "metadata": {"k": "v"}, "version": 1, "description": "main hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");
    assert!(ep["id"].as_str().unwrap().starts_with("ep_"));
    assert_eq!(ep["eventTypes"], json!(["a"]));
    assert_eq!(ep["throttleRate"], 10);
    assert_eq!(ep["channels"], json!(["c1"]));
    assert!(ep.get("secret").is_none() && ep.get("filterTypes").is_none());

    let base = format!("/api/v1/app/{app_id}/endpoint");
    let (status, got) = app.get(&format!("{base}/main")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["id"], ep["id"]);

    let (status, patched) = app.patch(&format!("{base}/main"), json!({"channels": null, "disabled": true})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert!(patched.get("channels").is_none());
    assert_eq!(patched["disabled"], true);
    assert_eq!(patched["eventTypes"], json!(["a"]));

    let (status, put) = app.put(&format!("{base}/main"), json!({"url": "https://example.org/x"})).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["url"], "https://example.org/x");
    assert_eq!(put["disabled"], false);
    let (status, created) = app.put(&format!("{base}/second"), json!({"url": "https://example.org/y"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["uid"], "second");

    let (_, list) = app.get(&base).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);

    let (status, _) = app.delete(&format!("{base}/main")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("{base}/main")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.get("/api/v1/app/nope/endpoint").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[backends]
async fn invalid_endpoints_are_refused(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let path = format!("/api/v1/app/{app_id}/endpoint");
    let cases: [(Value, &[&str]); 8] = [
        (json!({"url": "ftp://example.com"}), &["body", "url"]),
        (json!({"url": "not a url"}), &["body", "url"]),
        (json!({"url": format!("https://e.com/{}", "a".repeat(70_000))}), &["body", "url"]),
        (json!({"url": "https://e.com", "secret": "whsec_short"}), &["body", "secret"]),
        (json!({"url": "https://e.com", "eventTypes": ["missing.type"]}), &["body", "eventTypes"]),
        (json!({"url": "https://e.com", "channels": ["bad channel"]}), &["body", "channels"]),
        (json!({"url": "https://e.com", "headers": {"webhook-id": "x"}}), &["body", "headers", "webhook-id"]),
        (json!({"url": "https://e.com", "uid": ""}), &["body", "uid"]),
    ];
    for (body, loc) in cases {
        let (status, response) = app.post(&path, body).await;
        assert_invalid(status, &response, loc);
    }
    let (_, list) = app.get(&path).await;
    assert_eq!(list["data"], json!([]));
}

#[backends]
async fn given_secret_is_used_and_rotation_keeps_the_old_one(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let (status, ep) =
        app.post(&format!("/api/v1/app/{app_id}/endpoint"), json!({"url": "https://e.com", "secret": SECRET})).await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");
    let ep_path = format!("/api/v1/app/{app_id}/endpoint/{}", ep["id"].as_str().unwrap());
    let (_, secret) = app.get(&format!("{ep_path}/secret")).await;
    assert_eq!(secret, json!({"key": SECRET}));

    let (status, answered) = app.post(&format!("{ep_path}/secret/rotate"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    let (_, rotated) = app.get(&format!("{ep_path}/secret")).await;
    let new_key = rotated["key"].as_str().unwrap();
    assert!(new_key.starts_with("whsec_") && new_key != SECRET);
    assert_eq!(answered, rotated, "the rotation answers with the new secret");

    let app_key = herald_core::AppId::parse(&app_id).unwrap();
    let stored = app.store.get_endpoint(&app_key, ep["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(stored.secrets.len(), 2);
    assert_eq!(stored.secrets[1].key, SECRET);
    let expires = stored.secrets[1].expires_at.unwrap();
    let grace = expires - chrono::Utc::now();
    assert!(grace > chrono::TimeDelta::hours(23) && grace <= chrono::TimeDelta::hours(24), "{grace}");

    // Grace 0 revokes the previous key at once.
    let (status, _) =
        app.post(&format!("{ep_path}/secret/rotate"), json!({"key": SECRET, "gracePeriodSeconds": 0})).await;
    assert_eq!(status, StatusCode::OK);
    let stored = app.store.get_endpoint(&app_key, ep["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(stored.secrets.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), [SECRET]);

    let (status, body) = app.post(&format!("{ep_path}/secret/rotate"), json!({"gracePeriodSeconds": 604801})).await;
    assert_invalid(status, &body, &["body", "gracePeriodSeconds"]);
}

#[backends]
async fn headers_put_get_and_patch(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let (_, ep) = app
        .post(&format!("/api/v1/app/{app_id}/endpoint"), json!({"url": "https://e.com", "headers": {"X-A": "1"}}))
        .await;
    let path = format!("/api/v1/app/{app_id}/endpoint/{}/headers", ep["id"].as_str().unwrap());
    let (_, got) = app.get(&path).await;
    assert_eq!(got, json!({"headers": {"X-A": "1"}, "sensitive": []}));

    let (status, _) = app.put(&path, json!({"headers": {"Authorization": "Bearer x", "X-B": "2"}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = app.get(&path).await;
    assert_eq!(got, json!({"headers": {"Authorization": "Bearer x", "X-B": "2"}, "sensitive": ["Authorization"]}));

    let (status, _) = app
        .patch(&path, json!({"headers": {"x-b": "3", "Authorization": null, "X-C": "4"}, "deleteHeaders": []}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = app.get(&path).await;
    assert_eq!(got["headers"], json!({"X-C": "4", "x-b": "3"}));
    let (status, _) = app.patch(&path, json!({"headers": {}, "deleteHeaders": ["X-C"]})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = app.get(&path).await;
    assert_eq!(got["headers"], json!({"x-b": "3"}));

    for bad in ["Content-Type", "svix-id", "bad name"] {
        let (status, body) = app.put(&path, json!({"headers": {bad: "x"}})).await;
        assert_invalid(status, &body, &["body", "headers", bad]);
    }
}

#[backends]
async fn endpoints_page_by_seven(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let path = format!("/api/v1/app/{app_id}/endpoint");
    let mut ids: Vec<String> = app
        .concurrently(50, {
            let path = path.clone();
            move |app, i| {
                let path = path.clone();
                async move {
                    let (_, ep) = app.post(&path, json!({"url": format!("https://e{i}.com")})).await;
                    ep["id"].as_str().unwrap().to_owned()
                }
            }
        })
        .await;
    ids.sort();
    let (forwards, backwards) = app.walk(&path, 7, "").await;
    assert_eq!(forwards, ids);
    assert_eq!(backwards, ids);
}

#[backends]
async fn guarded_api_refuses_blocked_literals_unless_allowed(backend: Backend) {
    let app = spawn_guarded(backend, "127.0.0.1/32").await;
    let app_id = app.app(None).await;
    let path = format!("/api/v1/app/{app_id}/endpoint");
    for bad in ["http://10.0.0.1/", "http://169.254.169.254/latest", "http://[::1]/", "http://0x7f000002/"] {
        let (status, body) = app.post(&path, json!({"url": bad})).await;
        assert_invalid(status, &body, &["body", "url"]);
    }
    let (status, body) = app.post(&path, json!({"url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ep = body["id"].as_str().unwrap();
    let (status, body) = app.patch(&format!("{path}/{ep}"), json!({"url": "http://192.168.1.1/"})).await;
    assert_invalid(status, &body, &["body", "url"]);
}
