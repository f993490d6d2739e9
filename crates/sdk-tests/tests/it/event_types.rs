//! Event types through `svix.event_type()`: create, get, list (with and without
//! archived ones, with and without schemas), upsert, patch, and delete (archive, or
//! remove with `expunge`).

use herald_testkit::{Backend, TestApp, backends};
use js_option::JsOption;
use serde_json::json;
use svix::{
    api::{EventTypeDeleteOptions, EventTypeListOptions, Svix},
    models::{EventTypeIn, EventTypeOut, EventTypePatch, EventTypeUpsertIn},
};

use crate::{http_error, strings};

fn event_type_in(name: &str) -> EventTypeIn {
    EventTypeIn {
        name: name.to_owned(),
        description: format!("{name} happened"),
        archived: None,
        deprecated: None,
        schemas: None,
        group_name: None,
        feature_flags: None,
    }
}

async fn create(svix: &Svix, name: &str) -> EventTypeOut {
    svix.event_type().create(event_type_in(name), None).await.unwrap()
}

fn names(list: &[EventTypeOut]) -> Vec<&str> {
    list.iter().map(|e| e.name.as_str()).collect()
}

fn schemas() -> serde_json::Value {
    json!({"1": {"type": "object", "properties": {"id": {"type": "string"}}}})
}

#[backends]
async fn create_and_get_return_every_given_field(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let input = EventTypeIn {
        deprecated: Some(true),
        schemas: Some(schemas()),
        group_name: Some("users".to_owned()),
        feature_flags: Some(strings(&["beta"])),
        ..event_type_in("user.created")
    };

    let created = svix.event_type().create(input, None).await.unwrap();
    let fetched = svix.event_type().get("user.created".to_owned()).await.unwrap();

    assert_eq!(created.name, "user.created");
    assert_eq!(created.description, "user.created happened");
    assert!(created.deprecated);
    assert_ne!(created.archived, Some(true));
    assert_eq!(created.schemas, Some(schemas()));
    assert_eq!(created.group_name.as_deref(), Some("users"));
    assert_eq!(created.feature_flags, Some(strings(&["beta"])));
    assert_eq!(fetched, created);
}

#[backends]
async fn list_hides_archived_event_types_unless_asked(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    create(&svix, "a.kept").await;
    create(&svix, "b.archived").await;

    svix.event_type().delete("b.archived".to_owned(), None).await.unwrap();

    let active = svix.event_type().list(None).await.unwrap();
    assert_eq!(names(&active.data), ["a.kept"]);
    let options = EventTypeListOptions { include_archived: Some(true), ..Default::default() };
    let all = svix.event_type().list(Some(options)).await.unwrap();
    assert_eq!(names(&all.data), ["a.kept", "b.archived"]);
    assert_eq!(all.data[1].archived, Some(true));
    let archived = svix.event_type().get("b.archived".to_owned()).await.unwrap();
    assert_eq!(archived.archived, Some(true), "archiving keeps the event type readable");
}

#[backends]
async fn list_carries_schemas_only_with_content(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let input = EventTypeIn { schemas: Some(schemas()), ..event_type_in("with.schema") };
    svix.event_type().create(input, None).await.unwrap();

    // The SDK sends `with_content=false` unless told otherwise.
    let plain = svix.event_type().list(None).await.unwrap();
    let options = EventTypeListOptions { with_content: Some(true), ..Default::default() };
    let full = svix.event_type().list(Some(options)).await.unwrap();

    assert_eq!(plain.data[0].schemas, None);
    assert_eq!(full.data[0].schemas, Some(schemas()));
}

#[backends]
async fn upsert_replaces_an_existing_event_type(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let created = create(&svix, "order.paid").await;
    let replacement = EventTypeUpsertIn { deprecated: Some(true), ..EventTypeUpsertIn::new("Paid in full".to_owned()) };

    let updated = svix.event_type().upsert("order.paid".to_owned(), replacement).await.unwrap();

    assert_eq!(updated.description, "Paid in full");
    assert!(updated.deprecated);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(svix.event_type().get("order.paid".to_owned()).await.unwrap(), updated);
}

#[backends]
async fn upsert_of_an_unknown_name_creates_the_event_type(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();

    let created = svix.event_type().upsert("order.new".to_owned(), EventTypeUpsertIn::new("New".to_owned())).await;

    assert_eq!(created.unwrap().name, "order.new");
    assert_eq!(names(&svix.event_type().list(None).await.unwrap().data), ["order.new"]);
}

#[backends]
async fn patch_changes_only_the_named_fields(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let input = EventTypeIn { schemas: Some(schemas()), group_name: Some("g".to_owned()), ..event_type_in("patched") };
    svix.event_type().create(input, None).await.unwrap();
    let patch = EventTypePatch {
        description: Some("Patched".to_owned()),
        deprecated: Some(true),
        archived: None,
        schemas: JsOption::Undefined,
        feature_flags: JsOption::Undefined,
        group_name: JsOption::Null,
    };

    let patched = svix.event_type().patch("patched".to_owned(), patch).await.unwrap();

    assert_eq!(patched.description, "Patched");
    assert!(patched.deprecated);
    assert_eq!(patched.group_name, None, "null clears the group");
    assert_eq!(patched.schemas, Some(schemas()), "absent fields are kept");
}

#[backends]
async fn delete_with_expunge_removes_the_event_type(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    create(&svix, "gone.for.good").await;

    let options = EventTypeDeleteOptions { expunge: Some(true) };
    svix.event_type().delete("gone.for.good".to_owned(), Some(options)).await.unwrap();

    let (status, body) = http_error(svix.event_type().get("gone.for.good".to_owned()).await);
    assert_eq!((status, body.code.as_str()), (404, "not_found"));
    let options = EventTypeListOptions { include_archived: Some(true), ..Default::default() };
    assert!(svix.event_type().list(Some(options)).await.unwrap().data.is_empty());
}
