//! Error answers as the SDK reports them: `Error::Http` with the status and Herald's
//! `{"code","detail"}` body (404, 409, 401, 403, 429), `Error::Validation` with the
//! located `detail` list (422).

use herald_api::RateLimit;
use herald_core::AppId;
use herald_testkit::{Backend, TestApp, backends};
use serde_json::json;
use svix::{
    api::{ApplicationListOptions, MessageListOptions},
    models::{ApplicationIn, MessageIn},
};

use crate::{http_error, validation_error};

/// Well-formed, but no application has it.
const UNKNOWN_APP: &str = "app_27UH4WbU6Z5A5EzD8u03UvzRbpk";

fn app_in(name: &str, uid: Option<&str>) -> ApplicationIn {
    ApplicationIn { uid: uid.map(str::to_owned), ..ApplicationIn::new(name.to_owned()) }
}

#[backends]
async fn unknown_application_is_404_by_id_and_by_uid(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();

    for key in [UNKNOWN_APP, "no-such-uid"] {
        let (status, body) = http_error(svix.application().get(key.to_owned()).await);
        assert_eq!((status, body.code.as_str()), (404, "not_found"), "{key}");
        assert!(!body.detail.is_empty());
    }
    let message = MessageIn::new("a.b".to_owned(), json!({}));
    let (status, _) = http_error(svix.message().create(UNKNOWN_APP.to_owned(), message, None).await);
    assert_eq!(status, 404, "a message to an unknown application without `application`");
}

#[backends]
async fn taken_uid_is_409(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    svix.application().create(app_in("first", Some("taken")), None).await.unwrap();

    let (status, body) = http_error(svix.application().create(app_in("second", Some("taken")), None).await);

    assert_eq!((status, body.code.as_str()), (409, "conflict"));
    assert_eq!(svix.application().list(None).await.unwrap().data.len(), 1, "nothing was created");
}

#[backends]
async fn malformed_uid_is_422_located_at_the_field(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();

    let detail = validation_error(svix.application().create(app_in("bad", Some("has spaces!")), None).await);

    assert_eq!(detail[0].loc, ["body", "uid"]);
    assert!(!detail[0].msg.is_empty());
    assert!(svix.application().list(None).await.unwrap().data.is_empty(), "nothing was created");
}

#[backends]
async fn limit_over_250_is_422_located_at_the_parameter(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let app_id = svix.application().create(app_in("a", None), None).await.unwrap().id;

    let apps = ApplicationListOptions { limit: Some(251), ..Default::default() };
    let detail = validation_error(svix.application().list(Some(apps)).await);
    assert_eq!(detail[0].loc, ["query", "limit"]);

    let messages = MessageListOptions { limit: Some(251), ..Default::default() };
    let detail = validation_error(svix.message().list(app_id, Some(messages)).await);
    assert_eq!(detail[0].loc, ["query", "limit"]);

    let most = ApplicationListOptions { limit: Some(250), ..Default::default() };
    assert_eq!(svix.application().list(Some(most)).await.unwrap().data.len(), 1);
}

#[backends]
async fn wrong_token_is_401(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let intruder = app.svix_client_with("hld_not-a-token-herald-ever-minted");

    let (status, body) = http_error(intruder.application().list(None).await);

    assert_eq!((status, body.code.as_str()), (401, "authentication_failed"));
    let (status, _) = http_error(intruder.application().create(app_in("sneaky", None), None).await);
    assert_eq!(status, 401);
}

#[backends]
async fn application_token_is_403_on_another_application(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let admin = app.svix_client();
    let mine = admin.application().create(app_in("mine", Some("mine")), None).await.unwrap();
    let other = admin.application().create(app_in("other", Some("other")), None).await.unwrap();
    let token = app.app_token(&AppId::parse(&mine.id).unwrap()).await;
    let scoped = app.svix_client_with(&token);

    assert_eq!(scoped.application().get(mine.id.clone()).await.unwrap().id, mine.id);
    let message = MessageIn::new("a.b".to_owned(), json!({}));
    scoped.message().create("mine".to_owned(), message, None).await.unwrap();

    for key in [other.id.as_str(), "other", UNKNOWN_APP] {
        let (status, body) = http_error(scoped.application().get(key.to_owned()).await);
        assert_eq!((status, body.code.as_str()), (403, "insufficient_access"), "{key}");
    }
    let (status, _) = http_error(scoped.message().list(other.id, None).await);
    assert_eq!(status, 403);
    let (status, _) = http_error(scoped.application().list(None).await);
    assert_eq!(status, 403, "listing every application needs a server-wide token");
}

#[backends]
async fn exhausted_rate_limit_is_429(backend: Backend) {
    // A bucket of two that refills once in ~17 minutes: the third request is refused.
    let limit = RateLimit { per_second: 0.001, burst: 2 };
    let app = TestApp::builder().backend(backend).config(|c| c.api.rate_limit = Some(limit)).spawn().await;
    let svix = app.svix_client();
    svix.application().list(None).await.unwrap();
    svix.application().list(None).await.unwrap();

    let (status, body) = http_error(svix.application().list(None).await);

    assert_eq!((status, body.code.as_str()), (429, "rate_limited"));
}
