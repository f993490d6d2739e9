//! The harness itself: what every other crate's end-to-end tests rely on.

use std::time::Duration;

use herald_testkit::{Receiver, TestApp, spawn_app, wait_until};

#[tokio::test]
async fn spawned_app_answers_with_the_admin_token_and_the_sdk() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/api/v1/app")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let svix = app.svix_client();
    let created = svix.application().create(svix::models::ApplicationIn::new("testkit".into()), None).await.unwrap();
    let listed = svix.application().list(None).await.unwrap();
    assert_eq!(listed.data.len(), 1);
    assert_eq!(listed.data[0].id, created.id);

    // The store handle is the server's: what the API wrote is visible through it.
    let stored = app.store.get_application(&created.id).await.unwrap();
    assert_eq!(stored.name, "testkit");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn app_tokens_reach_only_their_application() {
    let app = spawn_app().await;
    let svix = app.svix_client();
    let mine = svix.application().create(svix::models::ApplicationIn::new("mine".into()), None).await.unwrap();
    let other = svix.application().create(svix::models::ApplicationIn::new("other".into()), None).await.unwrap();

    let token = app.app_token(&herald_core::AppId::parse(&mine.id).unwrap()).await;
    let get = |id: String| {
        let request = reqwest::Client::new().get(app.url(&format!("/api/v1/app/{id}"))).bearer_auth(&token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(mine.id.clone()).await, 200);
    assert_eq!(get(other.id.clone()).await, 403);
}

#[tokio::test]
async fn builder_config_reaches_the_server() {
    let app = TestApp::builder().config(|c| c.api.max_body_bytes = 64).spawn().await;
    let response = app
        .http
        .post(app.url("/api/v1/app"))
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{}\"}}", "x".repeat(100)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn each_app_is_isolated_and_dropping_it_stops_the_server() {
    let first = spawn_app().await;
    let second = spawn_app().await;
    assert_ne!(first.addr, second.addr);
    assert_ne!(first.db_path(), second.db_path());
    let addr = first.addr;
    drop(first);
    wait_until(Duration::from_secs(30), || async move { tokio::net::TcpStream::connect(addr).await.is_err() }).await;
}

#[tokio::test]
async fn receiver_is_reachable_from_a_plain_client() {
    let receiver = Receiver::start().await;
    reqwest::Client::new().post(receiver.url("/hook")).body("hi").send().await.unwrap();
    let got = receiver.wait_for(1).await;
    assert_eq!(&got[0].body[..], b"hi");
}

#[tokio::test]
async fn loopback_endpoints_need_allow_loopback() {
    let receiver = Receiver::start().await;
    let body = serde_json::json!({ "url": receiver.url("/hook") });
    for (app, expected) in [(spawn_app().await, 422), (TestApp::builder().allow_loopback().spawn().await, 201)] {
        let svix = app.svix_client();
        let id = svix.application().create(svix::models::ApplicationIn::new("a".into()), None).await.unwrap().id;
        let response = app.http.post(app.url(&format!("/api/v1/app/{id}/endpoint"))).json(&body).send().await.unwrap();
        assert_eq!(response.status(), expected);
    }
}
