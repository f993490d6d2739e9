//! The SDK's `idempotency_key` option: the same key gets the first answer back and
//! creates nothing more; another key creates anew. (Without the option the SDK sends
//! a fresh `auto_…` key with every POST, which every other test exercises.)

use herald_testkit::{Backend, TestApp, backends};
use serde_json::json;
use svix::{
    api::{ApplicationCreateOptions, EndpointCreateOptions, MessageCreateOptions},
    models::{ApplicationIn, EndpointIn, MessageIn},
};

fn app_key(key: &str) -> Option<ApplicationCreateOptions> {
    Some(ApplicationCreateOptions { idempotency_key: Some(key.to_owned()) })
}

fn message_key(key: &str) -> Option<MessageCreateOptions> {
    Some(MessageCreateOptions { idempotency_key: Some(key.to_owned()), with_content: None })
}

#[backends]
async fn same_key_returns_the_first_application_and_creates_one(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();

    let first = svix.application().create(ApplicationIn::new("first".to_owned()), app_key("k-1")).await.unwrap();
    let again = svix.application().create(ApplicationIn::new("second".to_owned()), app_key("k-1")).await.unwrap();

    assert_eq!(again, first, "the first answer, body and all");
    assert_eq!(svix.application().list(None).await.unwrap().data.len(), 1);
}

#[backends]
async fn another_key_creates_another_application(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let input = ApplicationIn::new("same body".to_owned());

    let first = svix.application().create(input.clone(), app_key("k-1")).await.unwrap();
    let second = svix.application().create(input, app_key("k-2")).await.unwrap();

    assert_ne!(second.id, first.id);
    assert_eq!(svix.application().list(None).await.unwrap().data.len(), 2);
}

#[backends]
async fn same_key_returns_the_first_message_and_creates_one(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let app_id = svix.application().create(ApplicationIn::new("msgs".to_owned()), None).await.unwrap().id;
    let input = MessageIn::new("order.paid".to_owned(), json!({"order": 1}));

    let first = svix.message().create(app_id.clone(), input.clone(), message_key("m-1")).await.unwrap();
    let again = svix.message().create(app_id.clone(), input.clone(), message_key("m-1")).await.unwrap();
    let other = svix.message().create(app_id.clone(), input, message_key("m-2")).await.unwrap();

    assert_eq!(again, first);
    assert_ne!(other.id, first.id);
    assert_eq!(svix.message().list(app_id, None).await.unwrap().data.len(), 2);
}

#[backends]
async fn same_key_returns_the_first_endpoint_and_creates_one(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let app_id = svix.application().create(ApplicationIn::new("eps".to_owned()), None).await.unwrap().id;
    let input = EndpointIn::new("https://example.com/once".to_owned());
    let key = || Some(EndpointCreateOptions { idempotency_key: Some("e-1".to_owned()) });

    let first = svix.endpoint().create(app_id.clone(), input.clone(), key()).await.unwrap();
    let again = svix.endpoint().create(app_id.clone(), input, key()).await.unwrap();

    assert_eq!(again, first);
    assert_eq!(svix.endpoint().list(app_id, None).await.unwrap().data.len(), 1);
}

#[backends]
async fn keys_of_one_token_do_not_answer_another(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let app_id = svix.application().create(ApplicationIn::new("scoped".to_owned()), None).await.unwrap().id;
    let token = app.app_token(&herald_core::AppId::parse(&app_id).unwrap()).await;
    let scoped = app.svix_client_with(&token);
    let input = MessageIn::new("a.b".to_owned(), json!({}));

    let by_admin = svix.message().create(app_id.clone(), input.clone(), message_key("shared")).await.unwrap();
    let by_scoped = scoped.message().create(app_id.clone(), input, message_key("shared")).await.unwrap();

    assert_ne!(by_scoped.id, by_admin.id);
    assert_eq!(svix.message().list(app_id, None).await.unwrap().data.len(), 2);
}
