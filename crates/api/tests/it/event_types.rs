//! Event types: create, conflict, list with archived/content, upsert, patch, archive, expunge.

use reqwest::StatusCode;
use serde_json::json;

use herald_testkit::{Backend, backends};

use crate::harness::{assert_error, assert_invalid, spawn};

#[backends]
async fn event_type_lifecycle(backend: Backend) {
    let app = spawn(backend).await;
    let schemas = json!({"1": {"type": "object"}});
    let (status, created) =
        app.post("/api/v1/event-type", json!({"name": "user.signup", "description": "d", "schemas": schemas})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "user.signup");
    assert_eq!(created["archived"], false);
    assert_eq!(created["deprecated"], false);

    let (status, body) = app.post("/api/v1/event-type", json!({"name": "user.signup", "description": "d"})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    let (_, list) = app.get("/api/v1/event-type").await;
    assert_eq!(list["data"][0]["name"], "user.signup");
    assert!(list["data"][0].get("schemas").is_none(), "{list}");
    let (_, list) = app.get("/api/v1/event-type?with_content=true").await;
    assert_eq!(list["data"][0]["schemas"], schemas);

    let (status, patched) =
        app.patch("/api/v1/event-type/user.signup", json!({"description": "new", "deprecated": true})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["description"], "new");
    assert_eq!(patched["deprecated"], true);
    assert_eq!(patched["schemas"], schemas);

    let (status, _) = app.delete("/api/v1/event-type/user.signup").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = app.get("/api/v1/event-type/user.signup").await;
    assert_eq!(got["archived"], true);
    let (_, list) = app.get("/api/v1/event-type").await;
    assert_eq!(list["data"], json!([]));
    let (_, list) = app.get("/api/v1/event-type?include_archived=true").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let (status, _) = app.delete("/api/v1/event-type/user.signup?expunge=true").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/api/v1/event-type/user.signup").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[backends]
async fn upsert_creates_then_updates(backend: Backend) {
    let app = spawn(backend).await;
    let (status, body) = app.put("/api/v1/event-type/a.b", json!({"description": "one"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.put("/api/v1/event-type/a.b", json!({"description": "two"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["description"], "two");
}

#[backends]
async fn bad_event_types_are_422(backend: Backend) {
    let app = spawn(backend).await;
    let (status, body) = app.post("/api/v1/event-type", json!({"name": "bad name", "description": "d"})).await;
    assert_invalid(status, &body, &["body", "name"]);
    let (status, body) = app.post("/api/v1/event-type", json!({"name": "ok"})).await;
    assert_invalid(status, &body, &["body", "description"]);
    let (status, body) = app.get("/api/v1/event-type?include_archived=perhaps").await;
    assert_invalid(status, &body, &["query", "include_archived"]);
}

#[backends]
async fn event_types_page_by_name(backend: Backend) {
    let app = spawn(backend).await;
    let mut names: Vec<String> = app
        .concurrently(30, |app, i| async move {
            let name = format!("type.{i:03}");
            let (status, _) = app.post("/api/v1/event-type", json!({"name": name, "description": "d"})).await;
            assert_eq!(status, StatusCode::CREATED);
            name
        })
        .await;
    names.sort();
    let (forwards, backwards) = app.walk("/api/v1/event-type", 7, "").await;
    assert_eq!(forwards, names);
    assert_eq!(backwards, names);
}
