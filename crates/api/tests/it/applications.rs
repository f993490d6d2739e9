//! Applications: CRUD by id and uid, get_if_exists, upsert, scope, paging.

use reqwest::StatusCode;
use serde_json::json;

use herald_testkit::{Backend, backends};

use crate::harness::{assert_error, assert_invalid, spawn};

#[backends]
async fn application_lifecycle_by_id_and_uid(backend: Backend) {
    let app = spawn(backend).await;
    let (status, created) =
        app.post("/api/v1/app", json!({"name": "Acme", "uid": "acme", "metadata": {"k": "v"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("app_") && id.len() == 31);
    assert_eq!(created["uid"], "acme");
    assert_eq!(created["metadata"], json!({"k": "v"}));
    assert!(created["createdAt"].is_string() && created["updatedAt"].is_string());

    let (status, by_uid) = app.get("/api/v1/app/acme").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_uid["id"], id);
    let (_, by_id) = app.get(&format!("/api/v1/app/{id}")).await;
    assert_eq!(by_id["uid"], "acme");

    let (status, patched) = app.patch("/api/v1/app/acme", json!({"name": "Acme 2", "rateLimit": 7})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Acme 2");
    assert_eq!(patched["throttleRate"], 7);
    assert_eq!(patched["uid"], "acme");
    let (_, cleared) = app.patch("/api/v1/app/acme", json!({"throttleRate": null})).await;
    assert!(cleared.get("throttleRate").is_none(), "{cleared}");

    let (status, _) = app.delete("/api/v1/app/acme").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/api/v1/app/{id}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[backends]
async fn get_if_exists_returns_the_existing_app(backend: Backend) {
    let app = spawn(backend).await;
    let (status, first) = app.post("/api/v1/app?get_if_exists=true", json!({"name": "a", "uid": "same"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = app.post("/api/v1/app?get_if_exists=true", json!({"name": "b", "uid": "same"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], first["id"]);
    let (status, body) = app.post("/api/v1/app", json!({"name": "b", "uid": "same"})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
}

#[backends]
async fn upsert_creates_with_the_path_uid_then_updates(backend: Backend) {
    let app = spawn(backend).await;
    let (status, created) = app.put("/api/v1/app/my-uid", json!({"name": "one"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["uid"], "my-uid");
    let (status, updated) = app.put("/api/v1/app/my-uid", json!({"name": "two"})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["name"], "two");
    assert_eq!(updated["uid"], "my-uid");
    let (status, body) = app.put("/api/v1/app/app_27UH4WbU6Z5A5EzD8u03UvzRbpk", json!({"name": "x"})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[backends]
async fn bad_application_input_is_422_and_changes_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let (status, body) = app.post("/api/v1/app", json!({"name": "x", "uid": "has space"})).await;
    assert_invalid(status, &body, &["body", "uid"]);
    let (status, body) = app.post("/api/v1/app", json!({"uid": "u"})).await;
    assert_invalid(status, &body, &["body", "name"]);
    let (status, body) = app.post("/api/v1/app", json!({"name": 5})).await;
    assert_invalid(status, &body, &["body", "name"]);
    let (status, body) = app.get("/api/v1/app/bad%20key").await;
    assert_invalid(status, &body, &["path", "app_id"]);
    let (_, list) = app.get("/api/v1/app").await;
    assert_eq!(list["data"], json!([]));
}

#[backends]
async fn tokens_are_checked_and_scoped(backend: Backend) {
    let app = spawn(backend).await;
    let mine = app.app(Some("mine")).await;
    let other = app.app(Some("other")).await;
    let scoped = app.scoped_token(&mine).await;

    let (status, body) = app.send(app.client.get(format!("{}/api/v1/app", app.base))).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "authentication_failed");
    let (status, body) = app.send(app.client.get(format!("{}/api/v1/app", app.base)).bearer_auth("hld_nope")).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "authentication_failed");

    let as_scoped = |path: &str| app.client.get(format!("{}{path}", app.base)).bearer_auth(&scoped);
    let (status, _) = app.send(as_scoped(&format!("/api/v1/app/{mine}"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.send(as_scoped("/api/v1/app/mine")).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        format!("/api/v1/app/{other}"),
        "/api/v1/app/other".into(),
        "/api/v1/app/nonexistent".into(),
        "/api/v1/app".into(),
        "/api/v1/event-type".into(),
        format!("/api/v1/app/{other}/msg"),
    ] {
        let (status, body) = app.send(as_scoped(&path)).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_access");
    }
}

#[backends]
async fn a_thousand_apps_page_by_seven_both_ways(backend: Backend) {
    let app = spawn(backend).await;
    let mut ids = Vec::new();
    for chunk in 0..40 {
        ids.extend(
            app.concurrently(25, move |app, i| async move { app.app(Some(&format!("u{chunk}-{i}"))).await }).await,
        );
    }
    ids.sort();
    let (forwards, backwards) = app.walk("/api/v1/app", 7, "").await;
    assert_eq!(forwards, ids);
    assert_eq!(backwards, ids);

    let (_, desc) = app.get("/api/v1/app?limit=3&order=descending").await;
    let first: Vec<&str> = desc["data"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(first, ids.iter().rev().take(3).map(String::as_str).collect::<Vec<_>>());

    for bad in ["limit=0", "limit=251", "iterator=garbage", "order=sideways"] {
        let (status, body) = app.get(&format!("/api/v1/app?{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
}
