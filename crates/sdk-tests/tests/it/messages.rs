//! Messages through `svix.message()`: create (with `eventId`, channels, tags, an inline
//! application, with and without content), list with every filter the SDK sends, get
//! by id and by `eventId`, and the 409 for a repeated `eventId`.
//!
//! The applications here have no endpoints, so nothing is delivered.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use herald_testkit::{Backend, TestApp, TestClock, backends};
use serde_json::json;
use svix::{
    api::{MessageCreateOptions, MessageGetOptions, MessageListOptions, Svix},
    models::{ApplicationIn, MessageIn, MessageOut},
};

use crate::{http_error, strings};

fn message_in(event_type: &str, event_id: Option<&str>) -> MessageIn {
    MessageIn { event_id: event_id.map(str::to_owned), ..MessageIn::new(event_type.to_owned(), json!({"n": 1})) }
}

async fn setup(backend: Backend) -> (TestApp, Svix, String) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let app_id = svix.application().create(ApplicationIn::new("messages".to_owned()), None).await.unwrap().id;
    (app, svix, app_id)
}

fn event_ids(list: &[MessageOut]) -> Vec<&str> {
    list.iter().map(|m| m.event_id.as_deref().unwrap_or("-")).collect()
}

#[backends]
async fn create_returns_the_accepted_message_with_every_given_field(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let input = MessageIn {
        channels: Some(strings(&["eu", "project-1"])),
        tags: Some(strings(&["blue"])),
        payload: json!({"user": {"id": "u_1", "emails": ["a@example.com"]}}),
        ..message_in("user.created", Some("evt-1"))
    };
    let options = MessageCreateOptions { with_content: Some(true), ..Default::default() };

    let out = svix.message().create(app_id, input, Some(options)).await.unwrap();

    assert!(out.id.starts_with("msg_"), "{}", out.id);
    assert_eq!(out.event_id.as_deref(), Some("evt-1"));
    assert_eq!(out.event_type, "user.created");
    assert_eq!(out.payload, json!({"user": {"id": "u_1", "emails": ["a@example.com"]}}));
    assert_eq!(out.channels, Some(strings(&["eu", "project-1"])));
    assert_eq!(out.tags, Some(strings(&["blue"])));
}

#[backends]
async fn create_without_content_answers_an_empty_payload_but_keeps_it(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;

    // The SDK sends `with_content=false` unless told otherwise.
    let out = svix.message().create(app_id.clone(), message_in("a.b", None), None).await.unwrap();

    assert_eq!(out.payload, json!({}));
    let options = MessageGetOptions { with_content: Some(true) };
    let stored = svix.message().get(app_id, out.id, Some(options)).await.unwrap();
    assert_eq!(stored.payload, json!({"n": 1}));
}

#[backends]
async fn list_carries_payloads_only_with_content(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    svix.message().create(app_id.clone(), message_in("a.b", None), None).await.unwrap();

    // As on create, the SDK sends `with_content=false` unless told otherwise.
    let plain = svix.message().list(app_id.clone(), None).await.unwrap();
    let options = MessageListOptions { with_content: Some(true), ..Default::default() };
    let full = svix.message().list(app_id, Some(options)).await.unwrap();

    assert_eq!(plain.data[0].payload, json!({}));
    assert_eq!(full.data[0].payload, json!({"n": 1}));
}

#[backends]
async fn inline_application_is_created_with_the_first_message(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let input = MessageIn { application: Some(ApplicationIn::new("Inline".to_owned())), ..message_in("a.b", None) };

    let first = svix.message().create("inline-tenant".to_owned(), input, None).await.unwrap();
    let second = svix.message().create("inline-tenant".to_owned(), message_in("a.b", None), None).await.unwrap();

    let created = svix.application().get("inline-tenant".to_owned()).await.unwrap();
    assert_eq!(created.name, "Inline");
    assert_eq!(created.uid.as_deref(), Some("inline-tenant"));
    let listed = svix.message().list(created.id, None).await.unwrap();
    let mut ids: Vec<_> = listed.data.into_iter().map(|m| m.id).collect();
    ids.sort();
    let mut expected = vec![first.id, second.id];
    expected.sort();
    assert_eq!(ids, expected);
}

#[backends]
async fn get_finds_a_message_by_id_and_by_event_id(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let created = svix.message().create(app_id.clone(), message_in("a.b", Some("order-42")), None).await.unwrap();
    let with_content = || Some(MessageGetOptions { with_content: Some(true) });

    let by_id = svix.message().get(app_id.clone(), created.id.clone(), with_content()).await.unwrap();
    let by_event_id = svix.message().get(app_id, "order-42".to_owned(), with_content()).await.unwrap();

    assert_eq!(by_id.id, created.id);
    assert_eq!(by_id.timestamp, created.timestamp, "the time answered at creation reads back");
    assert_eq!(by_id.payload, json!({"n": 1}));
    assert_eq!(by_event_id, by_id);
}

#[backends]
async fn repeated_event_id_is_a_conflict(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    svix.message().create(app_id.clone(), message_in("a.b", Some("once")), None).await.unwrap();

    let again = svix.message().create(app_id.clone(), message_in("a.b", Some("once")), None).await;

    let (status, body) = http_error(again);
    assert_eq!((status, body.code.as_str()), (409, "conflict"));
    assert_eq!(svix.message().list(app_id, None).await.unwrap().data.len(), 1);
}

/// Three messages an hour apart on one application; returns the first one's time.
async fn three_messages(svix: &Svix, app_id: &str, clock: &TestClock) -> DateTime<Utc> {
    let t0 = clock.now();
    let sent = [
        ("m0", "user.created", "eu", "blue"),
        ("m1", "user.deleted", "us", "red"),
        ("m2", "user.created", "us", "blue"),
    ];
    for (i, (event_id, event_type, channel, tag)) in sent.into_iter().enumerate() {
        if i > 0 {
            clock.advance(Duration::from_secs(3600));
        }
        let input = MessageIn {
            channels: Some(strings(&[channel])),
            tags: Some(strings(&[tag])),
            ..message_in(event_type, Some(event_id))
        };
        let out = svix.message().create(app_id.to_owned(), input, None).await.unwrap();
        assert_eq!(out.timestamp, clock.now());
    }
    t0
}

#[backends]
async fn list_applies_each_filter_the_sdk_sends(backend: Backend) {
    // A whole second: stores keep milliseconds, ids seconds.
    let clock = TestClock::frozen_at(DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now is in range"));
    let app = TestApp::builder().backend(backend).clock(clock.clock()).spawn().await;
    let svix = app.svix_client();
    let app_id = svix.application().create(ApplicationIn::new("filters".to_owned()), None).await.unwrap().id;
    let t0 = three_messages(&svix, &app_id, &clock).await;
    let (after_m0, before_m2) = (t0 + TimeDelta::minutes(30), t0 + TimeDelta::minutes(90));

    let cases: [(&str, MessageListOptions, &[&str]); 9] = [
        ("none, newest first", MessageListOptions::default(), &["m2", "m1", "m0"]),
        (
            "one event type",
            MessageListOptions { event_types: Some(strings(&["user.created"])), ..Default::default() },
            &["m2", "m0"],
        ),
        (
            "two event types, comma-separated",
            MessageListOptions { event_types: Some(strings(&["user.created", "user.deleted"])), ..Default::default() },
            &["m2", "m1", "m0"],
        ),
        ("channel", MessageListOptions { channel: Some("us".to_owned()), ..Default::default() }, &["m2", "m1"]),
        ("tag", MessageListOptions { tag: Some("blue".to_owned()), ..Default::default() }, &["m2", "m0"]),
        ("after", MessageListOptions { after: Some(after_m0), ..Default::default() }, &["m2", "m1"]),
        ("before", MessageListOptions { before: Some(before_m2), ..Default::default() }, &["m1", "m0"]),
        (
            "after and before",
            MessageListOptions { after: Some(after_m0), before: Some(before_m2), ..Default::default() },
            &["m1"],
        ),
        (
            "channel and event type",
            MessageListOptions {
                channel: Some("us".to_owned()),
                event_types: Some(strings(&["user.created"])),
                ..Default::default()
            },
            &["m2"],
        ),
    ];

    for (case, options, expected) in cases {
        let listed = svix.message().list(app_id.clone(), Some(options)).await.unwrap();
        assert_eq!(event_ids(&listed.data), expected, "{case}");
    }
}
