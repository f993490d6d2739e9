//! Applications through `svix.application()`: create (plain, with a uid, and
//! `get_or_create`), list (with its exclude filters), get by id and by uid, upsert, patch and delete.

use std::collections::BTreeMap;

use herald_testkit::{Backend, TestApp, backends};
use js_option::JsOption;
use svix::{
    api::ApplicationListOptions,
    models::{ApplicationIn, ApplicationPatch, EndpointIn},
};

use crate::http_error;

fn app_in(name: &str, uid: Option<&str>) -> ApplicationIn {
    ApplicationIn { uid: uid.map(str::to_owned), ..ApplicationIn::new(name.to_owned()) }
}

#[backends]
async fn create_returns_every_given_field(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let metadata = BTreeMap::from([("tier".to_owned(), "gold".to_owned())]);
    let input =
        ApplicationIn { throttle_rate: Some(50), metadata: Some(metadata.clone()), ..app_in("Acme", Some("acme")) };

    let out = svix.application().create(input, None).await.unwrap();

    assert!(out.id.starts_with("app_"), "{}", out.id);
    assert_eq!(out.name, "Acme");
    assert_eq!(out.uid.as_deref(), Some("acme"));
    assert_eq!(out.throttle_rate, Some(50));
    assert_eq!(out.metadata, metadata);
    assert_eq!(out.created_at, out.updated_at);
}

#[backends]
async fn create_without_a_uid_leaves_it_unset(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();

    let out = svix.application().create(app_in("Plain", None), None).await.unwrap();

    assert_eq!(out.uid, None);
    assert_eq!(out.throttle_rate, None);
    assert!(out.metadata.is_empty());
}

#[backends]
async fn get_or_create_returns_the_existing_application_the_second_time(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();

    let first = svix.application().get_or_create(app_in("First", Some("tenant-1")), None).await.unwrap();
    let second = svix.application().get_or_create(app_in("Second", Some("tenant-1")), None).await.unwrap();

    assert_eq!(second.id, first.id);
    assert_eq!(second.name, "First", "the existing application is returned unchanged");
    assert_eq!(svix.application().list(None).await.unwrap().data.len(), 1);
}

#[backends]
async fn get_finds_an_application_by_id_and_by_uid(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let created = svix.application().create(app_in("Findable", Some("findable")), None).await.unwrap();

    let by_id = svix.application().get(created.id.clone()).await.unwrap();
    let by_uid = svix.application().get("findable".to_owned()).await.unwrap();

    assert_eq!(by_id, created);
    assert_eq!(by_uid, created);
}

#[backends]
async fn list_returns_every_application_in_id_order(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(svix.application().create(app_in(name, None), None).await.unwrap().id);
    }
    ids.sort();

    let list = svix.application().list(None).await.unwrap();

    assert_eq!(list.data.iter().map(|a| a.id.clone()).collect::<Vec<_>>(), ids);
    assert!(list.done);
}

#[backends]
async fn list_can_leave_out_applications_without_live_endpoints(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let mut ids = BTreeMap::new();
    for name in ["bare", "live", "off"] {
        ids.insert(name, svix.application().create(app_in(name, None), None).await.unwrap().id);
    }
    let url = "https://hooks.example.com/h".to_owned();
    svix.endpoint().create(ids["live"].clone(), EndpointIn::new(url.clone()), None).await.unwrap();
    let off = EndpointIn { disabled: Some(true), ..EndpointIn::new(url) };
    svix.endpoint().create(ids["off"].clone(), off, None).await.unwrap();
    let names = |no_endpoints, disabled_endpoints| {
        let svix = &svix;
        async move {
            let options = ApplicationListOptions {
                exclude_apps_with_no_endpoints: Some(no_endpoints),
                exclude_apps_with_disabled_endpoints: Some(disabled_endpoints),
                exclude_apps_with_svix_play_endpoints: Some(true),
                ..Default::default()
            };
            let list = svix.application().list(Some(options)).await.unwrap();
            let mut names: Vec<_> = list.data.into_iter().map(|a| a.name).collect();
            names.sort();
            names
        }
    };

    assert_eq!(names(false, false).await, ["bare", "live", "off"]);
    assert_eq!(names(true, false).await, ["live", "off"]);
    assert_eq!(names(false, true).await, ["bare", "live"]);
    assert_eq!(names(true, true).await, ["live"]);
}

#[backends]
async fn upsert_replaces_an_existing_application(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let created = svix.application().create(app_in("Before", Some("keep-me")), None).await.unwrap();
    let replacement = ApplicationIn {
        metadata: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..app_in("After", Some("keep-me"))
    };

    let updated = svix.application().upsert(created.id.clone(), replacement).await.unwrap();

    assert_eq!(updated.id, created.id);
    assert_eq!(updated.name, "After");
    assert_eq!(updated.metadata["k"], "v");
    assert_eq!(svix.application().get(created.id).await.unwrap(), updated);
}

#[backends]
async fn upsert_of_an_unknown_uid_creates_the_application(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();

    let created = svix.application().upsert("fresh-uid".to_owned(), app_in("Fresh", None)).await.unwrap();

    assert_eq!(created.uid.as_deref(), Some("fresh-uid"));
    assert_eq!(svix.application().get("fresh-uid".to_owned()).await.unwrap().id, created.id);
}

#[backends]
async fn patch_changes_only_the_named_fields(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let metadata = BTreeMap::from([("plan".to_owned(), "pro".to_owned())]);
    let input =
        ApplicationIn { throttle_rate: Some(10), metadata: Some(metadata.clone()), ..app_in("Old", Some("patchy")) };
    let created = svix.application().create(input, None).await.unwrap();
    let patch = ApplicationPatch {
        name: Some("New".to_owned()),
        uid: JsOption::Null,
        throttle_rate: JsOption::Some(20),
        ..ApplicationPatch::new()
    };

    let patched = svix.application().patch(created.id.clone(), patch).await.unwrap();

    assert_eq!(patched.name, "New");
    assert_eq!(patched.uid, None, "null clears the uid");
    assert_eq!(patched.throttle_rate, Some(20));
    assert_eq!(patched.metadata, metadata, "absent fields are kept");
}

#[backends]
async fn deleted_application_is_not_found(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let created = svix.application().create(app_in("Doomed", Some("doomed")), None).await.unwrap();

    svix.application().delete(created.id.clone()).await.unwrap();

    let (status, body) = http_error(svix.application().get(created.id).await);
    assert_eq!(status, 404);
    assert_eq!(body.code, "not_found");
    assert!(!body.detail.is_empty());
    assert_eq!(http_error(svix.application().get("doomed".to_owned()).await).0, 404);
}
