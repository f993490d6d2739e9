//! Ingest sources and their endpoints over HTTP: CRUD by id and uid, the types Herald
//! accepts (an unknown one is refused, never treated as "no check"), the URL token
//! shown only when made, hidden applications, and who may call the ingest API.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use herald_testkit::{Backend, backends};

use crate::harness::{TestApp, assert_error, assert_invalid, spawn};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

async fn source(app: &TestApp, body: Value) -> Value {
    let (status, created) = app.post("/ingest/api/v1/source", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

#[backends]
async fn source_lifecycle_by_id_and_uid(backend: Backend) {
    let app = spawn(backend).await;
    let created = source(
        &app,
        json!({"name": "Stripe live", "uid": "stripe-live", "type": "stripe", "config": {"secret": "whsec_abc"},
               "metadata": {"team": "billing"}}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("src_"), "{created}");
    assert_eq!(created["type"], "stripe");
    assert_eq!(created["config"], json!({}), "secrets are never shown");
    let url = created["ingestUrl"].as_str().unwrap();
    let token = url.strip_prefix("http://127.0.0.1:8071/ingest/").expect("under the public URL");
    assert!(token.len() >= 32, "at least 128 random bits: {token}");

    let (status, got) = app.get("/ingest/api/v1/source/stripe-live").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["id"], id);
    assert_eq!(got["ingestUrl"], Value::Null, "only the token's hash is stored");
    assert_eq!(got["metadata"], json!({"team": "billing"}));

    let (status, patched) =
        app.patch(&format!("/ingest/api/v1/source/{id}"), json!({"name": "Stripe", "uid": null})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Stripe");
    assert!(patched.get("uid").is_none());
    let (status, body) = app.get("/ingest/api/v1/source/stripe-live").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // PUT replaces an existing source (keeping its URL) or creates one named by the key.
    let (status, replaced) = app
        .put(
            &format!("/ingest/api/v1/source/{id}"),
            json!({"name": "GitHub", "type": "github", "config": {"secret": "s"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["type"], "github");
    let (status, upserted) =
        app.put("/ingest/api/v1/source/hooks", json!({"name": "Hooks", "type": "generic-webhook"})).await;
    assert_eq!(status, StatusCode::CREATED, "{upserted}");
    assert_eq!(upserted["uid"], "hooks");
    assert!(upserted["ingestUrl"].is_string());
    assert!(upserted.get("config").is_none());

    let (forwards, backwards) = app.walk("/ingest/api/v1/source", 1, "").await;
    assert_eq!(forwards.len(), 2);
    assert_eq!(forwards, backwards);

    let (status, _) = app.delete(&format!("/ingest/api/v1/source/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/ingest/api/v1/source/{id}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) =
        app.post("/ingest/api/v1/source", json!({"name": "Dup", "uid": "hooks", "type": "generic-webhook"})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
}

#[backends]
async fn unknown_types_and_missing_secrets_are_refused(backend: Backend) {
    let app = spawn(backend).await;
    let cases = [
        (json!({"name": "Zoom", "type": "zoom", "config": {"secret": "x"}}), vec!["body", "type"]),
        (json!({"name": "None", "type": "stripe"}), vec!["body", "config", "secret"]),
        (json!({"name": "Empty", "type": "github", "config": {"secret": ""}}), vec!["body", "config", "secret"]),
        (json!({"name": "Bad", "type": "svix", "config": {"secret": "not-a-key"}}), vec!["body", "config", "secret"]),
        (json!({"name": "x", "type": "generic-webhook"}), vec!["body", "name"]),
        (json!({"name": "Uid", "uid": "src_x", "type": "generic-webhook"}), vec!["body", "uid"]),
    ];
    for (body, loc) in cases {
        let (status, answer) = app.post("/ingest/api/v1/source", body).await;
        assert_invalid(status, &answer, &loc);
    }
    let (status, answer) = app.post("/ingest/api/v1/source", json!({"name": "No type"})).await;
    assert_invalid(status, &answer, &["body", "type"]);
    let (_, list) = app.get("/ingest/api/v1/source").await;
    assert_eq!(list["data"], json!([]), "nothing refused was created");
}

#[backends]
async fn ingest_endpoints_live_under_their_source(backend: Backend) {
    let app = spawn(backend).await;
    let created =
        source(&app, json!({"name": "Stripe", "uid": "stripe", "type": "stripe", "config": {"secret": "s"}})).await;
    let base = "/ingest/api/v1/source/stripe/endpoint";
    let (status, ep) = app
        .post(
            base,
            json!({"url": "https://internal.example.com/stripe", "uid": "billing", "secret": SECRET,
                           "headers": {"x-team": "billing"}, "throttleRate": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ep}");
    assert!(ep["id"].as_str().unwrap().starts_with("ep_"));
    assert_eq!(ep["throttleRate"], 5);
    assert!(ep.get("eventTypes").is_none() && ep.get("secret").is_none());

    let (status, got) = app.get(&format!("{base}/billing")).await;
    assert_eq!((status, &got["id"]), (StatusCode::OK, &ep["id"]));
    let (_, secret) = app.get(&format!("{base}/billing/secret")).await;
    assert_eq!(secret["key"], SECRET);
    let (status, _) = app.post(&format!("{base}/billing/secret/rotate"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, rotated) = app.get(&format!("{base}/billing/secret")).await;
    assert_ne!(rotated["key"], SECRET);
    let (_, headers) = app.get(&format!("{base}/billing/headers")).await;
    assert_eq!(headers["headers"], json!({"x-team": "billing"}));
    let (status, _) =
        app.put(&format!("{base}/billing/headers"), json!({"headers": {"authorization": "Bearer x"}})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, headers) = app.get(&format!("{base}/billing/headers")).await;
    assert_eq!(headers["sensitive"], json!(["authorization"]));

    let (status, replaced) =
        app.put(&format!("{base}/billing"), json!({"url": "https://internal.example.com/v2"})).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    let (status, upserted) = app.put(&format!("{base}/audit"), json!({"url": "https://audit.example.com/"})).await;
    assert_eq!(status, StatusCode::CREATED, "{upserted}");
    let (_, list) = app.get(base).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);

    let (status, body) = app.post(base, json!({"url": "ftp://internal.example.com"})).await;
    assert_invalid(status, &body, &["body", "url"]);
    let (status, body) = app.get("/ingest/api/v1/source/nope/endpoint").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // The source's application is hidden from the applications API.
    let hidden = app.store.get_source(created["id"].as_str().unwrap()).await.unwrap().app_id;
    let (status, body) = app.get(&format!("/api/v1/app/{hidden}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.get(&format!("/api/v1/app/{hidden}/endpoint")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, apps) = app.get("/api/v1/app").await;
    assert_eq!(apps["data"], json!([]));
    let (status, body) = app.post(&format!("/api/v1/app/{hidden}/msg"), json!({"eventType": "x", "payload": {}})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, _) = app.delete(&format!("{base}/billing")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("{base}/billing")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[backends]
async fn only_server_wide_tokens_manage_sources(backend: Backend) {
    let app = spawn(backend).await;
    let app_id = app.app(None).await;
    let scoped = app.scoped_token(&app_id).await;
    let created = source(&app, json!({"name": "Hooks", "type": "generic-webhook"})).await;
    let id = created["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, "/ingest/api/v1/source".to_owned()),
        (Method::GET, format!("/ingest/api/v1/source/{id}")),
        (Method::GET, format!("/ingest/api/v1/source/{id}/log")),
        (Method::POST, format!("/ingest/api/v1/source/{id}/token/rotate")),
        (Method::DELETE, format!("/ingest/api/v1/source/{id}")),
    ] {
        let request = app.client.request(method, format!("{}{path}", app.base)).bearer_auth(&scoped);
        let (status, body) = app.send(request).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "insufficient_access");
    }
    let anonymous = app.client.get(format!("{}/ingest/api/v1/source", app.base));
    let (status, body) = app.send(anonymous).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "authentication_failed");
}
