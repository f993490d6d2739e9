//! The pull side through the SDK: `message().events(…)` read to the end and continued
//! later, and `message().poller()` with a sink's filters, two server-side consumers and
//! `consumer_seek`.

use std::time::Duration;

use herald_testkit::{Backend, TestApp, backends, poll_until};
use serde_json::json;
use svix::{
    api::{MessagePollerConsumerPollOptions, MessagePollerPollOptions, Svix, V1MessageEventsParams},
    models::{ApplicationIn, EndpointIn, EventTypeIn, MessageIn, PollingEndpointConsumerSeekIn},
};

use crate::strings;

async fn setup(backend: Backend) -> (TestApp, Svix, String) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    let app_id = svix.application().create(ApplicationIn::new("pull".to_owned()), None).await.unwrap().id;
    (app, svix, app_id)
}

async fn send(svix: &Svix, app_id: &str, event_type: &str, channels: Option<&[&str]>) -> String {
    let message = MessageIn {
        channels: channels.map(strings),
        ..MessageIn::new(event_type.to_owned(), json!({"type": event_type}))
    };
    svix.message().create(app_id.to_owned(), message, None).await.unwrap().id
}

/// Every event from `iterator` on, in pages of `limit`, and the iterator to continue with.
async fn events(svix: &Svix, app_id: &str, mut iterator: Option<String>, limit: u64) -> (Vec<String>, String) {
    let mut seen = Vec::new();
    loop {
        let params = V1MessageEventsParams {
            app_id: app_id.to_owned(),
            limit: Some(limit),
            iterator: iterator.clone(),
            event_types: None,
            channels: None,
            after: None,
        };
        let page = svix.message().events(params).await.unwrap();
        seen.extend(page.data.into_iter().map(|m| m.id));
        iterator = Some(page.iterator);
        if page.done {
            return (seen, iterator.unwrap_or_default());
        }
    }
}

#[backends]
async fn the_events_api_reads_to_the_end_and_continues_later(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    let mut sent = Vec::new();
    for event_type in ["a.one", "b.two", "a.one"] {
        sent.push(send(&svix, &app_id, event_type, None).await);
    }
    let (seen, iterator) = events(&svix, &app_id, None, 2).await;
    assert_eq!(seen, sent);
    let later = send(&svix, &app_id, "c.three", None).await;
    assert_eq!(events(&svix, &app_id, Some(iterator), 2).await.0, [later]);

    let params = V1MessageEventsParams {
        app_id: app_id.clone(),
        limit: None,
        iterator: None,
        event_types: Some(strings(&["a.one", "c.three"])),
        channels: None,
        after: None,
    };
    let filtered = svix.message().events(params).await.unwrap();
    assert_eq!(filtered.data.iter().map(|m| m.event_type.as_str()).collect::<Vec<_>>(), ["a.one", "a.one", "c.three"]);
}

#[backends]
async fn pollers_filter_by_their_sink_and_consumers_keep_their_place(backend: Backend) {
    let (_app, svix, app_id) = setup(backend).await;
    svix.event_type().create(EventTypeIn::new("a.one".to_owned(), "A".to_owned()), None).await.unwrap();
    let sink = EndpointIn {
        event_types: Some(strings(&["a.one"])),
        channels: Some(strings(&["eu"])),
        ..EndpointIn::new("https://sink.example.com/hook".to_owned())
    };
    let sink_id = svix.endpoint().create(app_id.clone(), sink, None).await.unwrap().id;
    let m1 = send(&svix, &app_id, "a.one", Some(&["eu"])).await;
    send(&svix, &app_id, "b.two", Some(&["eu"])).await;
    send(&svix, &app_id, "a.one", Some(&["us"])).await;
    let m4 = send(&svix, &app_id, "a.one", Some(&["eu", "us"])).await;

    let poller = svix.message().poller();
    // On PostgreSQL a page stops short (`done: false`) while any older transaction of
    // any client of the database is still open, since it could yet commit before these
    // messages; once a page reaches them, every later read does too.
    let page = poll_until(Duration::from_secs(15), || async {
        let page = poller.poll(app_id.clone(), sink_id.clone(), None).await.unwrap();
        page.done.then_some(page)
    })
    .await;
    assert_eq!(page.data.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), [m1.clone(), m4.clone()]);
    let options = MessagePollerPollOptions { iterator: Some(page.iterator), ..Default::default() };
    assert!(poller.poll(app_id.clone(), sink_id.clone(), Some(options)).await.unwrap().data.is_empty());

    let consume = |consumer: &'static str, limit: u64| {
        let (poller, app_id, sink_id) = (svix.message().poller(), app_id.clone(), sink_id.clone());
        async move {
            let options = MessagePollerConsumerPollOptions { limit: Some(limit), iterator: None };
            let page = poller.consumer_poll(app_id, sink_id, consumer.to_owned(), Some(options)).await.unwrap();
            page.data.into_iter().map(|m| m.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(consume("first", 1).await, [m1.as_str()]);
    assert_eq!(consume("second", 5).await, [m1.clone(), m4.clone()]);
    assert_eq!(consume("first", 1).await, [m4.as_str()]);
    assert!(consume("first", 1).await.is_empty());
    assert!(consume("second", 5).await.is_empty());

    let seek = PollingEndpointConsumerSeekIn::new("2000-01-01T00:00:00Z".parse().unwrap());
    let sought = poller.consumer_seek(app_id.clone(), sink_id.clone(), "first".to_owned(), seek, None).await.unwrap();
    assert!(!sought.iterator.is_empty());
    assert_eq!(consume("first", 5).await, [m1, m4]);
    assert!(consume("second", 5).await.is_empty(), "seeking one consumer leaves the other alone");
}
