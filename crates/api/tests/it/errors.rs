//! Transport-level rejections: body limits, content types, malformed JSON, unknown
//! routes and methods, rate limits, health and the OpenAPI document.

use herald_api::{ApiConfig, RateLimit};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use herald_testkit::{Backend, backends};

use crate::harness::{assert_error, assert_invalid, spawn, spawn_with};

#[backends]
async fn oversized_bodies_get_413_before_and_while_reading(backend: Backend) {
    let app = spawn_with(backend, ApiConfig { max_body_bytes: 1024, ..ApiConfig::default() }).await;
    let big = json!({"name": "x".repeat(2000)});
    let (status, body) = app.post("/api/v1/app", big).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // A chunked body declares no length; it is cut off at the limit.
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let chunk = format!("{{\"name\":\"{}\"}}", "y".repeat(3000));
    let request = format!(
        "POST /api/v1/app HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        app.token,
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("payload_too_large"), "{response}");
    let (_, list) = app.get("/api/v1/app").await;
    assert_eq!(list["data"], json!([]));
}

#[backends]
async fn content_type_and_json_errors_have_the_contract_shape(backend: Backend) {
    let app = spawn(backend).await;
    let (status, body) = app.send(app.request(Method::POST, "/api/v1/app").body(r#"{"name":"x"}"#)).await;
    assert_error(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let (status, body) = app
        .send(app.request(Method::POST, "/api/v1/app").header("content-type", "text/plain").body(r#"{"name":"x"}"#))
        .await;
    assert_error(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let (status, body) = app
        .send(app.request(Method::POST, "/api/v1/app").header("content-type", "application/json").body(r#"{"name":"#))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = app
        .send(
            app.request(Method::POST, "/api/v1/app")
                .header("content-type", "application/json")
                .body(r#""just a string""#),
        )
        .await;
    assert_invalid(status, &body, &["body"]);
}

#[backends]
async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let app = spawn(backend).await;
    let (status, body) = app.get("/api/v1/nothing-here").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.send(app.request(Method::DELETE, "/api/v1/app")).await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[backends]
async fn rate_limit_answers_429_with_retry_after(backend: Backend) {
    let app = spawn_with(
        backend,
        ApiConfig { rate_limit: Some(RateLimit { per_second: 0.5, burst: 3 }), ..ApiConfig::default() },
    )
    .await;
    for _ in 0..3 {
        let (status, _) = app.get("/api/v1/app").await;
        assert_eq!(status, StatusCode::OK);
    }
    let response = app.request(Method::GET, "/api/v1/app").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Health is not rate limited or authenticated.
    let status = app.client.get(format!("{}/api/v1/health", app.base)).send().await.unwrap().status();
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[backends]
async fn openapi_document_is_served_without_a_token(backend: Backend) {
    let app = spawn(backend).await;
    let response = app.client.get(format!("{}/api/v1/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert_eq!(doc["paths"]["/api/v1/app"]["get"]["operationId"], "v1.application.list");
    assert!(doc["components"]["schemas"]["ListResponse_ApplicationOut_"].is_object());
}
