//! Endpoints through `svix.endpoint()`: create (with and without a secret, with every
//! optional field), list, get by id and uid, upsert, patch, delete, the signing secret
//! (get, rotate) and custom headers (get, set, patch).
//!
//! URLs name `example.com`: nothing is sent, as no message is created here.

use std::collections::{BTreeMap, BTreeSet};

use herald_testkit::{Backend, TestApp, backends};
use js_option::JsOption;
use svix::{
    api::Svix,
    models::{
        ApplicationIn, EndpointHeadersIn, EndpointHeadersPatchIn, EndpointIn, EndpointOut, EndpointPatch,
        EndpointSecretRotateIn, EndpointUpsertIn, EventTypeIn,
    },
};

use crate::{http_error, strings};

/// 32 bytes, base64: a secret the SDK user chooses.
const GIVEN_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Another 32 bytes, for rotation.
const ROTATED_SECRET: &str = "whsec_ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";

/// A server, its SDK client and one application to hang endpoints on.
async fn setup(backend: Backend) -> (TestApp, Svix, String) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let app_id = svix.application().create(ApplicationIn::new("endpoints".to_owned()), None).await.unwrap().id;
    (app, svix, app_id)
}

async fn create_event_types(svix: &Svix, names: &[&str]) {
    for name in names {
        let input = EventTypeIn {
            name: (*name).to_owned(),
            description: String::new(),
            archived: None,
            deprecated: None,
            schemas: None,
            group_name: None,
            feature_flags: None,
        };
        svix.event_type().create(input, None).await.unwrap();
    }
}

async fn create(svix: &Svix, app_id: &str, input: EndpointIn) -> EndpointOut {
    svix.endpoint().create(app_id.to_owned(), input, None).await.unwrap()
}

#[backends]
async fn create_returns_every_given_field(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    create_event_types(&svix, &["invoice.paid", "invoice.void"]).await;
    let metadata = BTreeMap::from([("team".to_owned(), "billing".to_owned())]);
    let input = EndpointIn {
        description: Some("Billing hook".to_owned()),
        throttle_rate: Some(100),
        uid: Some("billing".to_owned()),
        disabled: Some(true),
        event_types: Some(strings(&["invoice.paid", "invoice.void"])),
        channels: Some(strings(&["eu", "us"])),
        metadata: Some(metadata.clone()),
        headers: Some(BTreeMap::from([("X-Tenant".to_owned(), "t1".to_owned())])),
        ..EndpointIn::new("https://example.com/billing".to_owned())
    };

    let out = create(&svix, &app_id, input).await;

    assert!(out.id.starts_with("ep_"), "{}", out.id);
    assert_eq!(out.url, "https://example.com/billing");
    assert_eq!(out.description, "Billing hook");
    assert_eq!(out.throttle_rate, Some(100));
    assert_eq!(out.uid.as_deref(), Some("billing"));
    assert_eq!(out.disabled, Some(true));
    assert_eq!(out.event_types, Some(strings(&["invoice.paid", "invoice.void"])));
    assert_eq!(out.channels, Some(strings(&["eu", "us"])));
    assert_eq!(out.metadata, metadata);
}

#[backends]
async fn create_uses_the_given_secret(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let input =
        EndpointIn { secret: Some(GIVEN_SECRET.to_owned()), ..EndpointIn::new("https://example.com/given".to_owned()) };
    let endpoint = create(&svix, &app_id, input).await;

    let secret = svix.endpoint().get_secret(app_id, endpoint.id).await.unwrap();

    assert_eq!(secret.key, GIVEN_SECRET);
}

#[backends]
async fn create_without_a_secret_generates_one_per_endpoint(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let first = create(&svix, &app_id, EndpointIn::new("https://example.com/1".to_owned())).await;
    let second = create(&svix, &app_id, EndpointIn::new("https://example.com/2".to_owned())).await;

    let first = svix.endpoint().get_secret(app_id.clone(), first.id).await.unwrap().key;
    let second = svix.endpoint().get_secret(app_id, second.id).await.unwrap().key;

    assert!(first.starts_with("whsec_"), "{first}");
    assert!(second.starts_with("whsec_"), "{second}");
    assert_ne!(first, second);
}

#[backends]
async fn list_and_get_by_id_and_uid_agree(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let input = EndpointIn { uid: Some("named".to_owned()), ..EndpointIn::new("https://example.com/a".to_owned()) };
    let named = create(&svix, &app_id, input).await;
    let other = create(&svix, &app_id, EndpointIn::new("https://example.com/b".to_owned())).await;
    let mut expected = vec![named.id.clone(), other.id.clone()];
    expected.sort();

    let list = svix.endpoint().list(app_id.clone(), None).await.unwrap();
    let by_id = svix.endpoint().get(app_id.clone(), named.id.clone()).await.unwrap();
    let by_uid = svix.endpoint().get(app_id, "named".to_owned()).await.unwrap();

    assert_eq!(list.data.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), expected);
    assert!(list.done);
    assert_eq!(by_id, named);
    assert_eq!(by_uid, named);
}

#[backends]
async fn upsert_replaces_fields_but_keeps_secret_and_headers(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let headers = BTreeMap::from([("X-Keep".to_owned(), "yes".to_owned())]);
    let input = EndpointIn {
        secret: Some(GIVEN_SECRET.to_owned()),
        headers: Some(headers.clone()),
        channels: Some(strings(&["old"])),
        ..EndpointIn::new("https://example.com/old".to_owned())
    };
    let created = create(&svix, &app_id, input).await;
    let replacement = EndpointUpsertIn {
        description: Some("replaced".to_owned()),
        ..EndpointUpsertIn::new("https://example.com/new".to_owned())
    };

    let updated = svix.endpoint().upsert(app_id.clone(), created.id.clone(), replacement).await.unwrap();

    assert_eq!(updated.id, created.id);
    assert_eq!(updated.url, "https://example.com/new");
    assert_eq!(updated.description, "replaced");
    assert_eq!(updated.channels, None, "a replacement drops fields it leaves out");
    let secret = svix.endpoint().get_secret(app_id.clone(), created.id.clone()).await.unwrap();
    assert_eq!(secret.key, GIVEN_SECRET);
    assert_eq!(svix.endpoint().get_headers(app_id, created.id).await.unwrap().headers, headers);
}

#[backends]
async fn upsert_of_an_unknown_uid_creates_the_endpoint(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;

    let input = EndpointUpsertIn::new("https://example.com/upserted".to_owned());
    let created = svix.endpoint().upsert(app_id.clone(), "upserted".to_owned(), input).await.unwrap();

    assert_eq!(created.uid.as_deref(), Some("upserted"));
    assert_eq!(svix.endpoint().get(app_id.clone(), "upserted".to_owned()).await.unwrap(), created);
    assert!(svix.endpoint().get_secret(app_id, created.id).await.unwrap().key.starts_with("whsec_"));
}

#[backends]
async fn patch_changes_only_the_named_fields(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    create_event_types(&svix, &["a.one", "a.two"]).await;
    let input = EndpointIn {
        description: Some("kept".to_owned()),
        channels: Some(strings(&["c1"])),
        event_types: Some(strings(&["a.one"])),
        ..EndpointIn::new("https://example.com/p".to_owned())
    };
    let created = create(&svix, &app_id, input).await;
    let patch = EndpointPatch {
        url: Some("https://example.com/patched".to_owned()),
        disabled: Some(true),
        channels: JsOption::Null,
        event_types: JsOption::Some(strings(&["a.one", "a.two"])),
        ..EndpointPatch::new()
    };

    let patched = svix.endpoint().patch(app_id, created.id, patch).await.unwrap();

    assert_eq!(patched.url, "https://example.com/patched");
    assert_eq!(patched.disabled, Some(true));
    assert_eq!(patched.channels, None, "null clears the channels");
    assert_eq!(patched.event_types, Some(strings(&["a.one", "a.two"])));
    assert_eq!(patched.description, "kept", "absent fields are kept");
}

#[backends]
async fn deleted_endpoint_is_not_found(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let created = create(&svix, &app_id, EndpointIn::new("https://example.com/doomed".to_owned())).await;

    svix.endpoint().delete(app_id.clone(), created.id.clone()).await.unwrap();

    let (status, body) = http_error(svix.endpoint().get(app_id.clone(), created.id).await);
    assert_eq!((status, body.code.as_str()), (404, "not_found"));
    assert!(svix.endpoint().list(app_id, None).await.unwrap().data.is_empty());
}

/// `svix` 2.9 declares `rotate_secret` as returning `EndpointSecretOut` (the new key),
/// so it parses the response body; an empty 204 makes the SDK report an error even
/// though the rotation happened.
#[backends]
async fn rotate_secret_returns_the_new_key_which_then_signs(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let input = EndpointIn {
        secret: Some(GIVEN_SECRET.to_owned()),
        ..EndpointIn::new("https://example.com/rotate".to_owned())
    };
    let endpoint = create(&svix, &app_id, input).await;
    let rotate = EndpointSecretRotateIn { key: Some(ROTATED_SECRET.to_owned()), grace_period_seconds: None };

    let rotated = svix.endpoint().rotate_secret(app_id.clone(), endpoint.id.clone(), rotate, None).await;

    assert_eq!(rotated.expect("the SDK accepts Herald's rotate answer").key, ROTATED_SECRET);
    assert_eq!(svix.endpoint().get_secret(app_id, endpoint.id).await.unwrap().key, ROTATED_SECRET);
}

#[backends]
async fn rotate_secret_without_a_key_generates_a_new_one(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let input = EndpointIn {
        secret: Some(GIVEN_SECRET.to_owned()),
        ..EndpointIn::new("https://example.com/rotate".to_owned())
    };
    let endpoint = create(&svix, &app_id, input).await;
    let rotate = EndpointSecretRotateIn { key: None, grace_period_seconds: Some(0) };

    let rotated = svix.endpoint().rotate_secret(app_id.clone(), endpoint.id.clone(), rotate, None).await;

    let new_key = rotated.expect("the SDK accepts Herald's rotate answer").key;
    assert!(new_key.starts_with("whsec_"), "{new_key}");
    assert_ne!(new_key, GIVEN_SECRET);
    assert_eq!(svix.endpoint().get_secret(app_id, endpoint.id).await.unwrap().key, new_key);
}

#[backends]
async fn headers_are_read_replaced_and_patched(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let initial =
        BTreeMap::from([("Authorization".to_owned(), "Bearer abc".to_owned()), ("X-One".to_owned(), "1".to_owned())]);
    let input = EndpointIn { headers: Some(initial.clone()), ..EndpointIn::new("https://example.com/h".to_owned()) };
    let ep = create(&svix, &app_id, input).await.id;
    let endpoint = || svix.endpoint();

    let read = endpoint().get_headers(app_id.clone(), ep.clone()).await.unwrap();
    assert_eq!(read.headers, initial);
    assert_eq!(read.sensitive, BTreeSet::from(["Authorization".to_owned()]));

    let replaced = BTreeMap::from([("X-Two".to_owned(), "2".to_owned()), ("X-Three".to_owned(), "3".to_owned())]);
    endpoint().set_headers(app_id.clone(), ep.clone(), EndpointHeadersIn { headers: replaced.clone() }).await.unwrap();
    assert_eq!(endpoint().get_headers(app_id.clone(), ep.clone()).await.unwrap().headers, replaced);

    let patch = EndpointHeadersPatchIn {
        headers: BTreeMap::from([("X-Four".to_owned(), "4".to_owned()), ("X-Two".to_owned(), "22".to_owned())]),
        delete_headers: Some(strings(&["X-Three"])),
    };
    endpoint().patch_headers(app_id.clone(), ep.clone(), patch).await.unwrap();
    let expected = BTreeMap::from([("X-Four".to_owned(), "4".to_owned()), ("X-Two".to_owned(), "22".to_owned())]);
    assert_eq!(endpoint().get_headers(app_id, ep).await.unwrap().headers, expected);
}
